"""The shipped shapes pipeline: loaded the way SD v1.5 is (offline), its weights are the ones
the asset registry names, every ablation in conf/ablation applies to its UNet, and sampling
is deterministic and follows the prompt."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from evalsuite import assets
from evalsuite.ablations import apply_ablations, load_ablated_unet
from evalsuite.config.build import build
from evalsuite.errors import ConfigError
from evalsuite.metrics.bootstrap import mean_ci, per_item_values
from evalsuite.metrics.shapes import ShapesCLIPScore
from evalsuite.models.generator import DiffusersGenerator
from evalsuite.worlds.shapes.pipeline import (
    SHIPPED_PATH,
    WEIGHT_FILES,
    resolve_pkg_path,
    sampler_defaults,
    shapes_model_source,
    shipped_pipeline_dir,
)
from evalsuite.worlds.shapes.nets import load_net
from evalsuite.worlds.shapes.world import COLOURS
from tiny_unet import one_thread  # noqa: F401  (autouse: one torch thread)

ABLATION_CONF = Path(__file__).resolve().parents[2] / "conf" / "ablation"


@pytest.fixture(scope="module")
def components() -> dict:
    return shapes_model_source().load()


def sampler(**overrides) -> SimpleNamespace:
    return SimpleNamespace(**{**sampler_defaults(), "negative_prompt": None, "prediction_type": None,
                              "batch_size": 8, "dtype": "float32", **overrides})


def test_model_shapes_resolves_to_the_shipped_folder(compose):
    source = build(compose("model=shapes").model, "model")
    assert source.path == shipped_pipeline_dir()
    assert (source.path / "model_index.json").is_file()
    assert source.identity()["weights"] == "checkpoint" and source.resolution == 64
    assert resolve_pkg_path("/some/folder") == "/some/folder"
    with pytest.raises(ConfigError, match="not importable"):
        resolve_pkg_path("pkg://no_such_package_xyz/sd")


def test_shipped_weights_are_small_and_match_the_asset_registry(tmp_path):
    folder = shipped_pipeline_dir()
    assert Path(resolve_pkg_path(SHIPPED_PATH)) == folder
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total < 30_000_000, total
    log = json.loads((folder / "train_log.json").read_text())
    for component, rel in WEIGHT_FILES.items():
        found = assets.resolve(f"shapes_pipeline_{component}", assets_dir=tmp_path / "none")
        assert found.verified and found.path == folder / rel
        assert found.sha256 == assets.get(f"shapes_pipeline_{component}").sha256
        assert log["weights_sha256"][component] == found.sha256


def test_every_weight_file_loads_completely(components):
    """Strictness checked by value: each file's tensors are exactly the loaded module's, no key
    missing on either side (diffusers itself only warns about a missing key)."""
    folder = shipped_pipeline_dir()
    for component, rel in WEIGHT_FILES.items():
        state = load_file(str(folder / rel))
        own = components[component].state_dict()
        assert set(state) == set(own), component
        assert all(torch.equal(state[k], own[k]) for k in state), component
    strict = load_ablated_unet(folder / "unet")  # evalsuite's strict loader agrees
    assert all(torch.equal(a, b) for a, b in zip(strict.state_dict().values(),
                                                   components["unet"].state_dict().values()))


def _ablation_configs() -> list[Path]:
    return sorted(ABLATION_CONF.glob("*.yaml"))


@pytest.mark.parametrize("path", _ablation_configs(), ids=lambda p: p.stem)
def test_every_ablation_applies_to_the_trained_unet(components, path):
    specs = hydra.utils.instantiate(OmegaConf.load(path)[path.stem])
    specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
    base = components["unet"]
    unet = apply_ablations(copy.deepcopy(base), specs).eval()
    g = torch.Generator().manual_seed(0)
    side, ch = base.config.sample_size, base.config.in_channels
    x = torch.randn(2, ch, side, side, generator=g)
    text = torch.randn(2, 77, base.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        out = unet(x, torch.tensor([10, 900]), encoder_hidden_states=text).sample
        ref = base(x, torch.tensor([10, 900]), encoder_hidden_states=text).sample
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.equal(out, ref)  # the ablation changed the network


def test_two_step_generation_is_deterministic_per_prompt(components):
    gen = DiffusersGenerator(components, sampler(steps=2), resolution=64)
    texts = ["a large red circle in the centre", "a small blue square on the left"]
    a = gen.generate(texts, [1, 2])
    b = gen.generate(texts[::-1], [2, 1])[::-1]  # batch order does not matter
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])


def _nearest_colour(pixel: np.ndarray) -> str:
    return min(COLOURS, key=lambda c: float(np.sum((np.asarray(COLOURS[c], float) - pixel) ** 2)))


def _object_colour(image: np.ndarray) -> str:
    """The world colour nearest to the mean of the pixels far from the background (the
    median of the border, which objects do not reach)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(float)
    far = np.linalg.norm(image.astype(float) - np.median(border, axis=0), axis=-1) > 60
    assert far.sum() >= 20, "no object in the image"
    return _nearest_colour(image[far].mean(0))


def test_samples_have_the_prompted_colour_and_shape(components):
    """A meaning check with the default sampler: for every colour of the world, the object
    drawn has the prompted colour, and circles and squares are told apart (the checker).
    Where it is drawn is not checked: position is the attribute the shipped run learned least
    (README, 'The shapes pipeline')."""
    from evalsuite.worlds.shapes.scoring import read_images

    gen = DiffusersGenerator(components, sampler(), resolution=64)
    texts = [f"a large {c} {s} in the centre" for s in ("circle", "square") for c in COLOURS]
    images = gen.generate(texts, list(range(len(texts))))
    found = [_object_colour(im) for im in images]
    wanted = [c for _ in range(2) for c in COLOURS]
    assert sum(f == c for f, c in zip(found, wanted)) >= len(texts) - 1, found
    checker = load_net("checker", assets.resolve("shapes_checker", None).path)
    shapes = [next(iter(slots.values()))["shape"] if slots else None
              for slots in read_images(checker, images)]
    assert sum(s == w for s, w in zip(shapes, ["circle"] * 6 + ["square"] * 6)) >= 10, shapes


def _clip_analogue(images: np.ndarray, texts: list[str]) -> np.ndarray:
    """Per-image values of the world's CLIP-score analogue (the metric itself)."""
    metric = ShapesCLIPScore()
    metric.prepare({name: assets.resolve(name, None)
                    for name in ("shapes_image_encoder", "shapes_text_encoder")})
    metric.update(images, texts)
    return per_item_values(metric)


def test_clear_cut_ablation_orderings_hold_on_the_shipped_pipeline(components):
    """Zero-shot, on the same 24 test prompts and seeds: removing whole stages and resblocks
    (BK-SDM-Tiny) loses prompt agreement against the baseline and against a change of FFN
    activation (SwiGLU), each with a paired 95% bootstrap interval above zero. The README's
    ablation table (benchmarks/shapes_studies.py, 64 prompts) holds the full ordering."""
    from evalsuite.worlds.shapes.splits import split_items

    texts = [it.caption for it in split_items("test", 24)]
    scores = {}
    for name in ("baseline", "swish_glu", "preset_bk_sdm_tiny"):
        unet = components["unet"]
        if name != "baseline":
            conf = OmegaConf.load(ABLATION_CONF / f"{name}.yaml")[name]
            specs = hydra.utils.instantiate(conf)
            specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
            unet = apply_ablations(copy.deepcopy(unet), specs).eval()
        gen = DiffusersGenerator({**components, "unet": unet}, sampler(batch_size=24), resolution=64)
        scores[name] = _clip_analogue(gen.generate(texts, list(range(len(texts)))), texts)
    for better in ("baseline", "swish_glu"):  # paired: same prompts and seeds
        mean, low, _ = mean_ci(scores[better] - scores["preset_bk_sdm_tiny"], 2000)
        assert low > 0.2, (better, mean, low)
    # The control: a change that keeps the network (SwiGLU for GEGLU) stays close to baseline.
    assert abs(scores["swish_glu"].mean() - scores["baseline"].mean()) < 0.1
