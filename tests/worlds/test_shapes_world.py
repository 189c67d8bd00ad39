"""The shapes world: renderer determinism, captions that parse back to the truth, and
seeded, order-independent, disjoint splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalsuite.errors import ConfigError
from evalsuite.worlds.shapes.splits import split_items, split_of, truth_key
from evalsuite.worlds.shapes.world import (COLOURS, N_CAPTION_VARIANTS, POSITIONS, RELATIONS,
                                           SHAPES, Obj, Scene, caption, parse_caption, render,
                                           sample_scene, scene_from_dict, scene_to_dict)


def _scenes(n: int, seed: int = 0) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng) for _ in range(n)]


def test_vocabulary_sizes():
    assert len(SHAPES) >= 4 and len(COLOURS) >= 6 and len(POSITIONS) == 5
    assert set(RELATIONS) == {"left of", "right of", "above", "below"}


def test_render_is_deterministic_uint8_and_seed_dependent():
    scene = _scenes(1, seed=3)[0]
    a, b = render(scene, 64, 7), render(scene, 64, 7)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert a.tobytes() == b.tobytes()
    assert render(scene, 64, 8).tobytes() != a.tobytes()  # jitter (and texture) move
    assert render(scene, 96, 7).shape == (96, 96, 3)


def test_render_draws_the_object_colour_where_it_is():
    scene = Scene((Obj("square", "red", "large", "left"),), None, "white")
    im = render(scene, 64, 0).astype(int)
    cx, cy = (int(v * 64) for v in POSITIONS["left"])
    assert np.abs(im[cy, cx] - np.array(COLOURS["red"])).max() <= 2
    assert np.abs(im[cy, 64 - cx] - np.array([242, 242, 242])).max() <= 2  # right: background
    edge_values = {tuple(px) for px in im[cy, :32]}
    assert len(edge_values) > 2  # antialiased edge: intermediate values, not just two colours


def test_captions_state_the_truth_in_every_variant():
    for scene in _scenes(300):
        texts = {caption(scene, v) for v in range(N_CAPTION_VARIANTS)}
        assert len(texts) == N_CAPTION_VARIANTS
        for text in texts:
            assert parse_caption(text).slots() == scene.slots()


def test_example_captions():
    a = Obj("circle", "red", "small", "left")
    b = Obj("square", "blue", "large", "right")
    assert caption(Scene((a, b), "left of", "grey")) == "a small red circle left of a large blue square"
    one = Scene((Obj("triangle", "green", "small", "top"),), None, "paper")
    assert caption(one) == "a small green triangle at the top"


def test_scene_dict_round_trip_and_validation():
    for scene in _scenes(50):
        assert scene_from_dict(json.loads(json.dumps(scene_to_dict(scene)))) == scene
    a, b = Obj("circle", "red", "small", "left"), Obj("square", "blue", "large", "right")
    with pytest.raises(ConfigError, match="Relation"):
        Scene((a, b), "above", "white")
    with pytest.raises(ConfigError, match="Unknown colour"):
        Obj("circle", "mauve", "small", "left")
    with pytest.raises(ConfigError, match="Not a shapes-world caption"):
        parse_caption("a photograph of a cat")


def test_splits_are_order_independent_prefixes():
    small, large = split_items("test", 7, seed=1), split_items("test", 25, seed=1)
    assert large[:7] == small
    assert split_items("test", 25, seed=2) != large  # the seed changes the items


def test_splits_are_disjoint_by_truth_and_owned_by_their_partition():
    keys = {}
    for split in ("train", "val", "test"):
        items = split_items(split, 400)
        assert all(split_of(it.scene) == split for it in items)
        assert len({it.id for it in items}) == 400
        keys[split] = {truth_key(it.scene) for it in items}
    assert not keys["train"] & keys["val"]
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]


def test_unknown_split_is_refused():
    with pytest.raises(ConfigError, match="Unknown shapes split"):
        split_items("dev", 3)
