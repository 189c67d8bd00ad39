"""The shapes world's train split as recovery data, and which data recovery=kd picks per world."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from evalsuite.config.build import build
from evalsuite.errors import ConfigError
from evalsuite.recovery import ShapesTrainData
from evalsuite.worlds.shapes.splits import split_items, split_of
from evalsuite.worlds.shapes.world import parse_caption, render


def test_items_are_the_train_split_rendered_with_their_captions():
    data = ShapesTrainData(n=6, seed=0)
    expected = split_items("train", 6, 0)
    assert len(data) == 6
    for i, it in enumerate(expected):
        image, caption = data.item(i, 32)
        assert caption == it.caption and image.dtype == np.uint8 and image.shape == (32, 32, 3)
        assert np.array_equal(image, render(it.scene, 32, it.seed))
        assert split_of(parse_caption(caption)) == "train"  # never a test-split truth


def test_identity_is_a_function_of_split_n_and_seed():
    a = ShapesTrainData(n=5).identity()
    assert a == ShapesTrainData(n=5).identity() and a["count"] == 5 and a["source"] == "shapes_world"
    assert len({a["sha256"], ShapesTrainData(n=6).identity()["sha256"],
                ShapesTrainData(n=5, seed=1).identity()["sha256"],
                ShapesTrainData(split="val", n=5).identity()["sha256"]}) == 4


@pytest.mark.parametrize("kwargs, match", [({"split": "test"}, "test split"),
                                           ({"split": "nope"}, "split"), ({"n": 0}, "n >= 1")])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ShapesTrainData(**kwargs)


def test_recovery_kd_trains_on_the_worlds_data(compose):
    """The shapes world needs no user data; the tiny world asks for a folder; recovery=none
    carries no data at all (its config, hence its hash, is what it was)."""
    shapes = compose("world=shapes", "recovery=kd", "recovery.data.n=3")
    data = build(shapes.recovery.data, "recovery.data")
    assert isinstance(data, ShapesTrainData) and len(data) == 3
    tiny = compose("recovery=kd")
    assert tiny.recovery.data._target_.endswith("ImageFolder") and OmegaConf.is_missing(tiny.recovery.data, "path")
    folder = compose("world=shapes", "recovery=kd", "recovery/data=folder", "recovery.data.path=/x")
    assert folder.recovery.data.path == "/x" and folder.model.name == "shapes"
    assert OmegaConf.to_container(compose("world=shapes").recovery.data) == {}
    assert compose("world=shapes", "recovery=kd").recovery.caption_dropout == 0.0
