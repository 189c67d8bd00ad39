"""The shapes pipeline: a small Stable-Diffusion-shaped text-to-image model trained on the world.

Same component types and UNet block layout as SD v1.5 and the tiny model (three
cross-attention down stages and a plain one, a cross-attention mid block, a plain up stage and
three cross-attention ones, two resnets per down stage), so every ablation, preset, study and
the block-sensitivity study applies to it. Differences from the tiny model, chosen so it can
learn the world on a CPU:

* the VAE downsamples 8x as SD's does, but into 16 latent channels (SD3's count, not SD
  v1.5's 4), so a 64 px image is a 16 x 8 x 8 latent that still says a small object's shape;
* the UNet is a little wider and uses two attention heads, and everything is trained
  (``python -m evalsuite.worlds.shapes.train_pipeline``).

The trained pipeline ships inside the package (``sd_shapes/``, written by ``save_pretrained``)
and is loaded the way SD v1.5 is: ``ModelSource(path=...)`` -> ``from_pretrained`` with local
files only and strict loading. ``model=shapes`` points ``model.path`` at it with a
``pkg://`` path, which :func:`resolve_pkg_path` turns into a file system path (also inside an
installed wheel).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from evalsuite.assets import SHAPES_PIPELINE_FILES
from evalsuite.errors import ConfigError, MissingAssetError
from evalsuite.io import sha256_file
from evalsuite.models.tiny import (TINY_TEXT_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG,
                                   build_tiny_components)

PKG_SCHEME = "pkg://"
#: model.path of the shipped pipeline (conf/model/shapes.yaml).
SHIPPED_PATH = "pkg://evalsuite.worlds.shapes/sd_shapes"
#: Weight files of the shipped pipeline, relative to its folder: their sha256 is in the asset
#: registry (evalsuite.assets, names ``shapes_pipeline_<component>``).
WEIGHT_FILES: dict[str, str] = SHAPES_PIPELINE_FILES

# The tiny model's layout (evalsuite/models/tiny.py), sized to learn the world: only what
# differs is written here.
SHAPES_UNET_CONFIG: dict[str, Any] = {
    **TINY_UNET_CONFIG,
    "in_channels": 16,
    "out_channels": 16,
    "block_out_channels": (48, 64, 64, 64),
    # Legacy diffusers name: the number of heads, as in SD v1.5. Two, not tiny's four: with
    # 8-wide heads CPU flash attention takes a third of a training step; 24/32-wide, far less.
    "attention_head_dim": 2,
}

SHAPES_VAE_CONFIG: dict[str, Any] = {
    **TINY_VAE_CONFIG,
    # 16 latent channels (as SD3/FLUX), not SD v1.5's 4: with SD's 8x downsampling a small
    # object covers about 2x2 latent cells, and 4 numbers per cell cannot say its shape.
    "latent_channels": 16,
    "block_out_channels": (16, 32, 64, 64),  # 4 blocks -> 8x downsampling, as in SD
}

SHAPES_TEXT_CONFIG: dict[str, Any] = {**TINY_TEXT_CONFIG, "intermediate_size": 128}


def sampler_defaults() -> dict[str, Any]:
    """The sampler the shipped pipeline was tuned for, read from its one home,
    conf/sampler/shapes.yaml (what `world=shapes` selects)."""
    from omegaconf import OmegaConf

    from evalsuite.resources import conf_dir

    cfg = OmegaConf.load(os.path.join(conf_dir(), "sampler", "shapes.yaml"))
    return {k: cfg[k] for k in ("scheduler", "steps", "guidance_scale")}


def build_shapes_components(init_seed: int = 0) -> dict[str, Any]:
    """The untrained shapes pipeline: fixed-seed initialisation of every component.

    This is both the starting point of training and the random-init baseline the trained
    pipeline is compared against. Each component gets its own seed inside a forked RNG.
    """
    return build_tiny_components(init_seed, SHAPES_UNET_CONFIG, SHAPES_VAE_CONFIG,
                                 SHAPES_TEXT_CONFIG)


def resolve_pkg_path(path: str) -> str:
    """``pkg://<package>/<relative path>`` -> that file system path; other paths unchanged.

    Uses ``importlib.resources``, so it finds data installed inside a wheel as well as in a
    source checkout. Raises ``ConfigError`` for an unknown package.
    """
    if not path.startswith(PKG_SCHEME):
        return path
    package, _, rel = path[len(PKG_SCHEME):].partition("/")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as e:
        raise ConfigError(f"model.path={path}: package {package!r} is not importable; a pkg:// "
                          "path names an installed Python package and a folder inside it") from e
    return str(Path(str(root)) / rel)


def shipped_pipeline_dir() -> Path:
    """The shipped trained pipeline's folder; ``MissingAssetError`` if it is not installed."""
    folder = Path(resolve_pkg_path(SHIPPED_PATH))
    if not (folder / "model_index.json").is_file():
        raise MissingAssetError(
            f"the trained shapes pipeline is missing from {folder} (it ships inside the "
            "evalsuite package). Reinstall evalsuite, or retrain it with "
            f"`python -m evalsuite.worlds.shapes.train_pipeline --out {folder}`.")
    return folder


def shapes_model_source(name: str = "shapes", arch: str | None = None,
                        path: str | None = SHIPPED_PATH, init_seed: int = 0,
                        resolution: int = 64) -> Any:
    """A ``ModelSource`` whose ``path`` may be a ``pkg://`` path (conf/model/shapes.yaml).

    Everything else is the ordinary pretrained path: the folder is loaded with
    ``StableDiffusionPipeline.from_pretrained(local_files_only=True)``.
    """
    from evalsuite.models.sources import ModelSource

    return ModelSource(name=name, arch=arch, path=resolve_pkg_path(path) if path else None,
                       init_seed=init_seed, resolution=resolution)


def weight_sha256(folder: str | os.PathLike) -> dict[str, str]:
    """sha256 of each weight file of a pipeline folder, keyed by component."""
    return {c: sha256_file(Path(folder) / rel) for c, rel in WEIGHT_FILES.items()}


def _make_readable(folder: Path) -> None:
    """mkdtemp makes a private folder (and some writers private files); a shipped pipeline is
    read by everyone, as files written by evalsuite.io are."""
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def save_pipeline(components: dict[str, Any], out: str | os.PathLike,
                  extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``components`` as a diffusers folder with ``save_pretrained``, atomically.

    ``extra_files`` (name -> bytes) are written beside ``model_index.json`` (training log,
    loss curves).
    The pipeline is written to a temporary folder beside ``out`` and renamed over it, so a
    reader never sees a half-written pipeline (an older one is replaced only when complete).
    """
    from diffusers import StableDiffusionPipeline

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-{out.name}-"))
    old = out.parent / f".old-{out.name}"
    try:
        pipe = StableDiffusionPipeline(**{k: components[k] for k in
                                          ("unet", "vae", "text_encoder", "tokenizer", "scheduler")},
                                       safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        pipe.save_pretrained(tmp, safe_serialization=True)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        _make_readable(tmp)
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out
