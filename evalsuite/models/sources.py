"""Model sources: where a pipeline's architecture and weights come from.

A ``ModelSource`` is what ``conf/model/*.yaml`` instantiates. It validates its inputs when it
is constructed (before anything is written or built), loads components on ``load()``, and
describes itself for the result record with ``identity()``. Weights come either from a local
diffusers pipeline folder (``path``), loaded with ``from_pretrained(local_files_only=True)``, or
from a fixed-seed random initialisation of a named architecture.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any, Collection, Iterator

from evalsuite.errors import EvalsuiteError, LoadError
from evalsuite.io import cached_sha256, sha256_json

log = logging.getLogger(__name__)

# Weight files and the configs that give them their architecture.
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json", ".txt")
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _check_pipeline_folder(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise EvalsuiteError(f"model.path={path} does not exist. Point it at a local diffusers "
                             "pipeline folder (one with model_index.json, as written by "
                             "pipeline.save_pretrained); evalsuite never downloads models.")
    if not p.is_dir() or not (p / "model_index.json").is_file():
        raise EvalsuiteError(f"model.path={path} is not a diffusers pipeline folder: it has no "
                             "model_index.json. Give the folder that pipeline.save_pretrained "
                             "wrote (containing unet/, vae/, text_encoder/, tokenizer/, scheduler/).")
    missing = [c for c in COMPONENTS if not (p / c).is_dir()]
    if missing:
        raise EvalsuiteError(f"model.path={path} is missing the component folders {missing}; "
                             "a Stable Diffusion pipeline needs all of " + ", ".join(COMPONENTS))
    for problem in _component_problems(p):
        raise EvalsuiteError(f"model.path={path} is damaged: {problem}. Nothing was generated "
                             "or written; restore the folder (pipeline.save_pretrained writes "
                             "a complete one)")
    return p


# Each component's config file, and whether the component has weights.
COMPONENT_FILES = {"unet": ("config.json", True), "vae": ("config.json", True),
                   "text_encoder": ("config.json", True),
                   "scheduler": ("scheduler_config.json", False)}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt")


def _component_problems(folder: Path) -> Iterator[str]:
    """What is wrong with a pipeline folder's configs and weight files, found by reading the
    configs and the weight files' headers only (milliseconds, no model built)."""
    configs = [folder / "model_index.json", *(folder / c / f for c, (f, _) in COMPONENT_FILES.items())]
    for config in configs:
        yield from _json_problem(config, folder)
    for component, (_, weighted) in COMPONENT_FILES.items():
        weights = [f for f in sorted((folder / component).iterdir())
                   if f.suffix in WEIGHT_SUFFIXES and f.is_file()]
        if weighted and not weights and not list((folder / component).glob("*.index.json")):
            yield (f"{component}/ has no weight file ({', '.join(WEIGHT_SUFFIXES)})")
        for f in weights:
            if f.suffix == ".safetensors":
                yield from _safetensors_problem(f, folder)


def _json_problem(path: Path, folder: Path) -> Iterator[str]:
    name = path.relative_to(folder)
    if not path.is_file():
        yield f"{name} is missing"
        return
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        yield f"{name} is not valid JSON ({e})"
        return
    if not isinstance(data, dict):
        yield f"{name} holds a JSON {type(data).__name__}, not an object"


def _safetensors_problem(path: Path, folder: Path) -> Iterator[str]:
    """A truncated or foreign ``.safetensors`` file: its header must parse and its tensors'
    byte ranges must end exactly at the end of the file."""
    name, size = path.relative_to(folder), path.stat().st_size
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n).decode("utf-8")) if 8 + n <= size else None
        ends = [int(v["data_offsets"][1]) for k, v in (header or {}).items() if k != "__metadata__"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
        header, ends = None, []
    if header is None or not isinstance(header, dict):
        yield f"{name} is not a safetensors file (its header does not parse: truncated?)"
    elif 8 + n + max(ends, default=0) != size:
        yield (f"{name} is {size} bytes but its header describes "
               f"{8 + n + max(ends, default=0)} (truncated or appended to)")


class ModelSource:
    """A text-to-image pipeline's components, from a folder or from a seeded initialisation.

    Args:
        name: the preset's name, as it appears in tables.
        arch: the UNet architecture: ``tiny`` (built in memory when no ``path`` is given),
            a preset of ``evalsuite.models.presets`` (``sd15``, ``bk_sdm_small``, ...; needs a
            ``path``, see ``evalsuite.models.arch`` for how the folder is matched to it), or
            ``None``: whatever the folder holds.
        path: local diffusers pipeline folder; when set, every component comes from it.
        init_seed: seed of the random initialisation when no weights are loaded.
        resolution: generated image side in pixels.
    """

    def __init__(self, name: str, arch: str | None = None, path: str | None = None,
                 init_seed: int = 0, resolution: int = 512):
        self.name, self.arch, self.init_seed, self.resolution = name, arch, init_seed, resolution
        if arch not in (None, "tiny"):
            from evalsuite.models.presets import PRESETS

            if arch not in PRESETS:
                raise EvalsuiteError(f"model.arch={arch!r} is not a known architecture; choose "
                                     f"tiny, one of {sorted(PRESETS)}, or null")
        self.path = _check_pipeline_folder(path) if path else None
        if self.path is not None and arch not in (None, "tiny"):
            from evalsuite.models.arch import check_unet_folder

            check_unet_folder(self.path, arch)  # refused here, before anything is loaded
        if self.path is None and arch is None:
            raise EvalsuiteError(f"model={name} loads weights from a folder: set "
                                 "model.path=<local diffusers pipeline folder>")
        if self.path is None and arch != "tiny":
            raise EvalsuiteError(f"model={name} needs its weights: set model.path=<local diffusers "
                                 f"pipeline folder> (SD v1.5, or a {arch} checkpoint). Parameters "
                                 f"and FLOPs need no weights: evalsuite profile model={name}")
        if resolution < 8 or resolution % 8:
            raise EvalsuiteError(f"model.resolution must be a positive multiple of 8, got {resolution}")
        self._checkpoint: dict[str, Any] | None = None
        self.digest_cache: Path | None = None  # remembers checkpoint digests between runs
        self.unet_origin: str | None = None  # "as_is" | "derived_from_base", once loaded

    def load(self) -> dict[str, Any]:
        """Return the pipeline components (unet, vae, text_encoder, tokenizer, scheduler)."""
        if self.path is None:
            from evalsuite.models.tiny import build_tiny_components

            log.info("building the tiny pipeline in memory (init_seed=%d)", self.init_seed)
            return build_tiny_components(self.init_seed)
        return self._load_folder(self.path)

    def _load_folder(self, path: Path) -> dict[str, Any]:
        from diffusers import StableDiffusionPipeline

        log.info("loading pipeline from %s (local files only)", path)
        extra: dict[str, Any] = {}
        unet_config = json.loads((path / "unet" / "config.json").read_text()) \
            if (path / "unet" / "config.json").is_file() else {}
        if "evalsuite_ablations" in unet_config:
            # A variant saved by evalsuite: rebuilt from its recorded ablations, then loaded.
            from evalsuite.ablations import load_ablated_unet

            extra["unet"] = load_ablated_unet(path / "unet")
        # Every weighted component strictly: diffusers and transformers only warn about
        # missing keys (and initialise those parameters randomly) or unexpected ones.
        for component in ("unet", "vae", "text_encoder"):
            if component not in extra:
                extra[component] = load_component_strict(path, component)
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                path, safety_checker=None, feature_extractor=None,
                requires_safety_checker=False, local_files_only=True, **extra)
        except Exception as e:  # diffusers raises OSError/ValueError/EnvironmentError variants
            raise EvalsuiteError(f"model.path={path} could not be loaded as a Stable Diffusion "
                                 f"pipeline: {type(e).__name__}: {e}") from e
        components = {c: getattr(pipe, c) for c in COMPONENTS}
        if self.arch not in (None, "tiny"):
            from evalsuite.models.arch import fit_unet_to_preset

            components["unet"], self.unet_origin = fit_unet_to_preset(components["unet"], self.arch)
        return components

    def checkpoint(self) -> dict[str, Any] | None:
        """sha256 of every weight and config file under ``path`` (None for in-memory models)."""
        if self.path is None:
            return None
        if self._checkpoint is None:
            files = sorted(f for f in self.path.rglob("*") if f.is_file() and f.suffix in CHECKPOINT_SUFFIXES)
            per_file = {str(f.relative_to(self.path)): cached_sha256(f, self.digest_cache)
                        for f in files}
            self._checkpoint = {"path": str(self.path.resolve()), "files": per_file,
                                "sha256": sha256_json(per_file)}
        return self._checkpoint

    def identity(self) -> dict[str, Any]:
        """What identifies the weights: the checkpoint hash, or the architecture and seed."""
        ckpt = self.checkpoint()
        if ckpt is not None:
            # The path is not part of the identity: the same files elsewhere are the same model.
            return {"preset": self.name, "arch": self.arch, "weights": "checkpoint",
                    "checkpoint_sha256": ckpt["sha256"]}
        from evalsuite.models.tiny import tiny_architecture_sha256

        return {"preset": self.name, "weights": "random_init", "arch": self.arch,
                "arch_sha256": tiny_architecture_sha256(), "init_seed": self.init_seed}


def config_sha256(config: Any) -> str:
    """Hash of a diffusers config, without its private keys.

    diffusers keeps bookkeeping such as ``_use_default_values`` (built from a set, so its
    order changes between processes) and ``_name_or_path`` in the config; neither changes
    the architecture.
    """
    return sha256_json({k: v for k, v in dict(config).items() if not k.startswith("_")})


def load_component_strict(path: Path, component: str) -> Any:
    """The ``component`` of the pipeline folder ``path`` (the class its ``model_index.json``
    names), loaded by ``load_strict``."""
    entry = json.loads((path / "model_index.json").read_text()).get(component)
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
        raise LoadError(f"model.path={path}: model_index.json names no class for {component} "
                        f"({entry!r}); a Stable Diffusion pipeline needs one")
    library, class_name = entry
    try:
        cls = getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError) as e:
        raise EvalsuiteError(f"model.path={path}: model_index.json names {library}.{class_name} "
                             f"for {component}, which this environment does not have ({e})") from e
    return load_strict(cls, path / component, f"model.path={path}: {component}/")


def load_strict(cls: Any, folder: Path, what: str) -> Any:
    """``cls.from_pretrained(folder)`` (local files only), refused with a ``LoadError`` unless
    the weight files hold exactly the model's parameters: no missing, unexpected or wrongly
    shaped tensors. ``what`` names the folder in messages."""
    try:
        model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    except Exception as e:  # diffusers/transformers raise OSError/ValueError/... variants
        raise EvalsuiteError(f"{what} could not be loaded ({cls.__name__}): "
                             f"{type(e).__name__}: {e}") from e
    problem = loading_problem(info, {name for name, _ in model.named_buffers()})
    if problem:
        raise LoadError(f"{what}: its weights do not fit its config ({cls.__name__}): {problem}. "
                        "Nothing was generated or written; give a folder whose weights match "
                        "its config (save_pretrained writes one)")
    return model


def loading_problem(info: dict[str, Any], buffers: Collection[str] = ()) -> str | None:
    """What ``from_pretrained(..., output_loading_info=True)`` reported wrong, or None.

    An unexpected key that names one of the model's buffers is harmless: older checkpoints
    saved buffers (``position_ids``) that are now rebuilt, not loaded."""
    def show(keys: Any) -> str:
        keys = sorted(str(k) for k in keys)
        return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")

    parts = []
    if info.get("missing_keys"):
        parts.append(f"{len(info['missing_keys'])} missing keys ({show(info['missing_keys'])})")
    unexpected = [k for k in info.get("unexpected_keys") or () if k not in buffers]
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({show(unexpected)})")
    mismatched = [k[0] if isinstance(k, (tuple, list)) else k
                  for k in info.get("mismatched_keys") or ()]
    if mismatched:
        parts.append(f"{len(mismatched)} keys of the wrong shape ({show(mismatched)})")
    parts += [str(m) for m in info.get("error_msgs") or ()]
    return "; ".join(parts) or None
