"""dataset=shapes and reference=shapes: the test split's prompts and their renders."""

from __future__ import annotations

import numpy as np

from evalsuite.config.build import build
from evalsuite.worlds.shapes.data import load_shapes_prompts, shapes_reference
from evalsuite.worlds.shapes.splits import split_items
from evalsuite.worlds.shapes.world import parse_caption, render, scene_from_dict


def test_config_options_build_matching_prompts_and_references(compose):
    cfg = compose("dataset=shapes", "reference=shapes", "dataset.n=12")
    prompts = build(cfg.dataset, "dataset")
    reference = build(cfg.reference, "reference")
    assert len(prompts) == 12 and reference.ids == tuple(p.id for p in prompts)
    assert reference.images.shape == (12, cfg.model.resolution, cfg.model.resolution, 3)
    items = split_items("test", 12)
    for p, it, im in zip(prompts, items, reference.images):
        assert p.text == it.caption and p.id == it.id
        truth = scene_from_dict(p.meta["scene"])
        assert truth == it.scene and parse_caption(p.text).slots() == truth.slots()
        assert p.meta["category"] == ("one_object" if len(truth.objects) == 1 else "two_objects")
        assert np.array_equal(im, render(truth, cfg.model.resolution, p.meta["texture_seed"]))


def test_default_size_and_categories():
    prompts = load_shapes_prompts()
    assert len(prompts) == 64
    assert set(prompts.categories().values()) == {"one_object", "two_objects"}
    assert load_shapes_prompts(n=64, limit=5).prompts == prompts.prompts[:5]


def test_reference_without_dataset_n_uses_64_and_follows_resolution():
    ref = shapes_reference(n=None, resolution=32)
    assert ref.images.shape == (64, 32, 32, 3)
    assert ref.describe()["n"] == 64 and "split=test" in ref.describe()["preprocess"]
