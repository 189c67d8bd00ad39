"""Non-finite output is a failure (issue 15, item 5): NaN/Inf from a VAE, a generator or a
feature extractor stops the run with an error naming the component, and no record (so no
number computed from NaN) is written."""

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST
from evalsuite.errors import EvalsuiteError
from evalsuite.numerics import NonFiniteError, require_finite
from evalsuite.run import run


def test_require_finite_passes_finite_and_integer_data_and_names_the_component():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    assert require_finite(x, "decoder") is x
    ints = np.full((2, 2), 7, np.uint8)
    assert require_finite(ints, "decoder") is ints
    bad = x.copy()
    bad[0, 1], bad[2, 3] = np.nan, -np.inf
    with pytest.raises(NonFiniteError, match=r"VAE decoder produced non-finite values \(1 NaN, 1 infinite of 12\)"):
        require_finite(bad, "VAE decoder")
    assert issubclass(NonFiniteError, EvalsuiteError)  # the CLI prints it as one paragraph, exit 2


def test_require_finite_reads_torch_tensors_in_half_precision():
    import torch

    t = torch.zeros(2, 3, dtype=torch.float16)
    assert require_finite(t, "latents") is t
    t[1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="latents produced non-finite values \\(1 NaN"):
        require_finite(t, "latents")


def _nan_vae(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.models.tiny import TINY_VAE_CONFIG

    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    with torch.no_grad():
        for p in vae.decoder.parameters():
            p.fill_(float("nan"))
    vae.save_pretrained(folder)
    return folder


def test_a_decoder_with_nan_weights_stops_the_run_and_writes_no_record(compose, tmp_path):
    decoder = _nan_vae(tmp_path / "nan-vae")
    cfg = compose("task=reconstruction", "vae.batch_size=4", "metrics=pixel", f"vae.decoder={decoder}")
    with pytest.raises(NonFiniteError, match="VAE decoder produced non-finite values") as err:
        run(cfg, {"model": "tiny", "metrics": "pixel"})
    assert "NaN" in str(err.value)
    records = tmp_path / "results" / "records"
    assert not records.exists() or not any(records.iterdir())


def _nan_pipeline(folder: Path, component: str) -> Path:
    import torch
    from diffusers import StableDiffusionPipeline

    from evalsuite.models.tiny import build_tiny_components

    parts = build_tiny_components(0)
    with torch.no_grad():
        for p in parts[component].parameters():
            p.fill_(float("nan"))
    StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("component,named", [
    ("vae", r"VAE decoder \(generated images\)"),
    ("unet", r"UNet \(latents after denoising step 1\)")])
def test_a_pipeline_with_nan_weights_fails_at_generation_instead_of_scoring_black_images(
        compose, tmp_path, component, named):
    """The issue's case: all-black PNGs scored as psnr/reconstruction 7.367, status complete."""
    folder = _nan_pipeline(tmp_path / f"nan-{component}", component)
    cfg = compose(*FAST, "dataset.limit=2", "model=pretrained", f"model.path={folder}",
                  "model.resolution=64")
    with pytest.raises(NonFiniteError, match=named):
        run(cfg)
    results = tmp_path / "results"
    assert not list(results.glob("records/*.json"))
    assert not list(results.glob("samples/*/*.png"))  # no black image kept for a later run


def test_nan_features_stop_the_pass_naming_the_extractor(tmp_path):
    from evalsuite.features.cache import FeatureCache
    from evalsuite.features.extract import FeaturePlan

    class Ones:  # the smallest extractor: identity, dims, one micro-batch
        name, dims, micro_batch = "nan_net", 3, 1

        def identity(self):
            return {"name": self.name}

        def load(self):
            pass

        def __call__(self, images):
            rows = np.ones((len(images), 3), np.float32)
            rows[-1, 0] = math.nan
            return rows

    class Images:
        ids = ["a", "b"]

        def identity(self):
            return {"kind": "test"}

        def read(self, i):
            return np.zeros((4, 4, 3), np.uint8)

    plan = FeaturePlan(FeatureCache(tmp_path / "features"))
    plan.request("samples", Images(), Ones())
    with pytest.raises(NonFiniteError, match=r"feature extractor nan_net \(samples images\)"):
        plan.run_pass({"samples": Images()}, batch_size=2)
    assert not list((tmp_path / "features").glob("*.npy"))  # nothing published
