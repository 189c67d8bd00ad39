"""Weights that do not fit their config are refused when the pipeline folder loads: diffusers
and transformers only warn about a missing key (and initialise it randomly) or an unexpected
one, which would put numbers of a partly random model in a record."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FAST
from evalsuite.errors import EvalsuiteError, LoadError
from evalsuite.models.sources import ModelSource
from evalsuite.run import run

UNET_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory) -> Path:
    from diffusers import StableDiffusionPipeline

    from evalsuite.models.tiny import build_tiny_components

    folder = tmp_path_factory.mktemp("model") / "pipe"
    StableDiffusionPipeline(**build_tiny_components(0), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(folder)
    return folder


def _edit(folder: Path, weights: Path, drop: str | None = None, add: str | None = None) -> str:
    """Rewrite a safetensors file without the key ``drop`` (default: the first key) or with an
    extra ``add``; return the key dropped or added."""
    from safetensors.torch import load_file, save_file

    state = load_file(folder / weights)
    if add is not None:
        state[add] = next(iter(state.values())).clone()
        key = add
    else:
        key = drop or sorted(state)[0]
        del state[key]
    save_file(state, folder / weights)
    return key


def test_the_intact_folder_loads(pipeline_folder):
    components = ModelSource("pretrained", path=str(pipeline_folder), resolution=64).load()
    assert set(components) == {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}


@pytest.mark.parametrize("component, weights", [
    ("unet", UNET_WEIGHTS), ("vae", Path("vae") / "diffusion_pytorch_model.safetensors"),
    ("text_encoder", Path("text_encoder") / "model.safetensors")])
def test_a_missing_key_is_a_load_error_naming_it(pipeline_folder, tmp_path, component, weights):
    folder = tmp_path / "pipe"
    shutil.copytree(pipeline_folder, folder)
    key = _edit(folder, weights)
    source = ModelSource("pretrained", path=str(folder), resolution=64)  # headers are fine
    with pytest.raises(LoadError, match=rf"{component}/: its weights do not fit .*1 missing keys \({key}\)"):
        source.load()


def test_an_unexpected_key_is_a_load_error_naming_it(pipeline_folder, tmp_path):
    folder = tmp_path / "pipe"
    shutil.copytree(pipeline_folder, folder)
    _edit(folder, UNET_WEIGHTS, add="down_blocks.9.extra.weight")
    with pytest.raises(LoadError, match=r"unet/: .*1 unexpected keys \(down_blocks\.9\.extra\.weight\)"):
        ModelSource("pretrained", path=str(folder), resolution=64).load()


def test_a_run_on_a_folder_missing_unet_keys_writes_no_sample_and_no_record(compose, pipeline_folder,
                                                                            tmp_path):
    folder = tmp_path / "pipe"
    shutil.copytree(pipeline_folder, folder)
    key = _edit(folder, UNET_WEIGHTS, drop="conv_norm_out.weight")
    cfg = compose(*FAST, "model=pretrained", f"model.path={folder}", "model.resolution=64")
    with pytest.raises(LoadError, match=rf"missing keys \({key}\)") as err:
        run(cfg)
    assert isinstance(err.value, EvalsuiteError)  # the CLI's one paragraph, exit status 2
    results = Path(cfg.paths.results_dir)
    assert not (results / "samples").exists() and not list(results.glob("records/*.json"))


def test_a_vae_folder_missing_a_key_is_a_load_error(pipeline_folder, tmp_path):
    from evalsuite.models.vae import resolve_vae

    folder = tmp_path / "vae"
    shutil.copytree(pipeline_folder / "vae", folder)
    key = _edit(folder, Path("diffusion_pytorch_model.safetensors"))
    vae = resolve_vae(str(folder), "vae.decoder", None)  # config and headers are fine
    with pytest.raises(LoadError, match=rf"vae.decoder={folder}: .*1 missing keys \({key}\)"):
        vae.load("float32", "cpu")
