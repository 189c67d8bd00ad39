"""VAEs for decoder evaluation: which AutoencoderKL, validated from its config, loaded lazily.

A ``VaeRef`` names one VAE (a local ``AutoencoderKL`` folder, or the model's own VAE) and
knows its full config without loading any weight: the config is instantiated on the meta
device, which fills in diffusers' defaults and gives parameter counts for free. So every
check (folder exists, is an AutoencoderKL, latent channels and downsampling agree) runs before
anything is loaded or written, and a re-run whose images all exist never loads a VAE.

The round trip mirrors a Stable Diffusion pipeline: the encoder's posterior (its mean, or a
draw seeded per image) is mapped into the diffusion latent space with the *encoder's*
scaling/shift factors, and out of it with the *decoder's*, exactly as a pipeline whose UNet
produced those latents would hand them to the decoder under test.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.io import cached_sha256, sha256_json
from evalsuite.models.sources import config_sha256, load_strict
from evalsuite.numerics import require_finite

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MODEL = "model"  # the literal that names the model's own VAE
LATENT_MODES = ("mode", "sample")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class VaeRef:
    """One VAE: where it comes from, its full config, and (once asked) its identity.

    Args:
        role: the config key it was given under (``vae.decoder``), for error messages.
        path: a local AutoencoderKL folder, or None for the model's own VAE.
        config: the full diffusers config (defaults filled in), without private keys.
        source: the ``ModelSource`` when ``path`` is None.
    """

    role: str
    path: Path | None
    config: dict[str, Any]
    decoder_params: int
    encoder_params: int
    source: Any = None
    digest_cache: Path | None = None
    _identity: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def latent_channels(self) -> int:
        return int(self.config["latent_channels"])

    @property
    def downsampling(self) -> int:
        """Image side / latent side: one factor 2 per block after the first."""
        return 2 ** (len(self.config["block_out_channels"]) - 1)

    def weights_sha256(self) -> str:
        """sha256 over the weight files (name, digest); for the model's VAE, see ``identity``."""
        return self.identity()["weights_sha256"]

    def identity(self) -> dict[str, Any]:
        """What fixes this VAE's outputs: its weights' and config's hashes (path-free)."""
        if self._identity is None:
            if self.path is not None:
                self._identity = {"weights_sha256": _folder_weights_sha256(self.path, self.digest_cache),
                                  "config_sha256": config_sha256(self.config)}
            elif self.source.path is not None:
                folder = Path(self.source.path) / "vae"
                self._identity = {"weights_sha256": _folder_weights_sha256(folder, self.digest_cache),
                                  "config_sha256": config_sha256(self.config)}
            else:  # the tiny model's seeded VAE: its architecture and seed are its weights
                ident = self.source.identity()
                self._identity = {"weights_sha256": sha256_json(ident),
                                  "config_sha256": config_sha256(self.config), "model": ident}
        return self._identity

    def describe(self) -> dict[str, Any]:
        """The record's description of this VAE."""
        return {"path": str(self.path.resolve()) if self.path else MODEL,
                "weights_sha256": self.weights_sha256(),
                "config_sha256": self.identity()["config_sha256"],
                "latent_channels": self.latent_channels,
                "block_out_channels": list(self.config["block_out_channels"]),
                "scaling_factor": self.config.get("scaling_factor"),
                "shift_factor": self.config.get("shift_factor"),
                "encoder_params": self.encoder_params, "decoder_params": self.decoder_params}

    def load(self, dtype: str, device: str) -> Any:
        """The ``AutoencoderKL`` in eval mode on ``device`` in ``dtype``."""
        from diffusers import AutoencoderKL

        from evalsuite.models.generator import DTYPES

        if self.path is None and self.source.path is None:
            vae = self.source.load()["vae"]  # the in-memory model: built as a generation run builds it
        else:
            folder = self.path if self.path is not None else Path(self.source.path) / "vae"
            log.info("loading %s from %s (local files only)", self.role, folder)
            vae = load_strict(AutoencoderKL, Path(folder), f"{self.role}={folder}")
        vae = vae.eval().to(device=device)
        # Cast only when asked: diffusers warns about any dtype cast, even a no-op one.
        return vae if DTYPES[dtype] == vae.dtype else vae.to(dtype=DTYPES[dtype])


def resolve_vae(value: str | None, role: str, source: Any) -> VaeRef:
    """The VAE named by config value ``value`` (a folder, ``"model"`` or None: the model's)."""
    if value is None or value == MODEL:
        if source.path is None:
            from evalsuite.models.tiny import TINY_VAE_CONFIG

            raw: dict[str, Any] = dict(TINY_VAE_CONFIG)
        else:
            raw = _read_config(Path(source.path) / "vae", f"{role} (the VAE of model.path)")
        return _ref(role, None, raw, source)
    path = Path(value).expanduser()
    if not path.exists():
        raise EvalsuiteError(f"{role}={value} does not exist. Give a local AutoencoderKL folder "
                             "(config.json + diffusion_pytorch_model.safetensors, as written by "
                             f"vae.save_pretrained), or leave {role} unset for the model's VAE; "
                             "evalsuite never downloads weights.")
    if not path.is_dir():
        raise EvalsuiteError(f"{role}={value} is a file; give the folder that "
                             "AutoencoderKL.save_pretrained wrote")
    raw = _read_config(path, role)
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file()):
        raise EvalsuiteError(f"{role}={value} has a config.json but no weights "
                             f"({' or '.join(WEIGHT_SUFFIXES)} files); save the VAE with "
                             "save_pretrained")
    return _ref(role, path, raw, None)


def _read_config(folder: Path, role: str) -> dict[str, Any]:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise EvalsuiteError(f"{role}: {folder} has no config.json, so it is not an AutoencoderKL "
                             "folder; give the folder AutoencoderKL.save_pretrained wrote")
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise EvalsuiteError(f"{role}: {cfg_file} is not valid JSON: {e}") from e
    cls = raw.get("_class_name") if isinstance(raw, dict) else None
    if cls != "AutoencoderKL":
        raise EvalsuiteError(f"{role}: {cfg_file} describes a {cls or 'non-diffusers model'}, not "
                             "an AutoencoderKL; decoder evaluation takes AutoencoderKL folders")
    return raw


def _ref(role: str, path: Path | None, raw: dict[str, Any], source: Any) -> VaeRef:
    """Instantiate ``raw`` on the meta device: defaults filled in, configs checked, no memory."""
    import torch
    from diffusers import AutoencoderKL

    try:
        with torch.device("meta"):
            meta = AutoencoderKL.from_config(raw)
    except Exception as e:  # a config diffusers cannot build
        raise EvalsuiteError(f"{role}: the AutoencoderKL config of {path or 'the model'} cannot "
                             f"be built: {type(e).__name__}: {e}") from e
    config = {k: v for k, v in dict(meta.config).items() if not k.startswith("_")}
    # Decoding = post_quant_conv + decoder; encoding = encoder + quant_conv.
    dec = _count(meta.decoder) + _count(getattr(meta, "post_quant_conv", None))
    enc = _count(meta.encoder) + _count(getattr(meta, "quant_conv", None))
    return VaeRef(role, path, config, dec, enc, source)


def _count(module: Any) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _folder_weights_sha256(folder: Path, digest_cache: Path | None) -> str:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return sha256_json({p.name: cached_sha256(p, digest_cache) for p in files})


def check_compatible(encoder: VaeRef, decoders: Sequence[VaeRef]) -> None:
    """Refuse decoders that cannot decode the encoder's latents to images of the input size."""
    if encoder.config.get("in_channels") != 3:
        raise EvalsuiteError(f"{encoder.role}: its encoder takes {encoder.config.get('in_channels')} "
                             "channels; reference images are RGB (3)")
    for dec in decoders:
        if dec.latent_channels != encoder.latent_channels:
            raise EvalsuiteError(
                f"{dec.role} decodes {dec.latent_channels}-channel latents but {encoder.role} "
                f"encodes to {encoder.latent_channels} channels (latent_channels in their "
                "config.json); a decoder can only be scored on its own latent space: give "
                f"{encoder.role} the VAE {dec.role} was trained with")
        if dec.downsampling != encoder.downsampling:
            raise EvalsuiteError(
                f"{dec.role} upsamples by {dec.downsampling} but {encoder.role} downsamples by "
                f"{encoder.downsampling} ({len(dec.config['block_out_channels'])} vs "
                f"{len(encoder.config['block_out_channels'])} blocks); reconstructions would not "
                "match the original size")
        if dec.config.get("out_channels") != 3:
            raise EvalsuiteError(f"{dec.role}: its decoder outputs "
                                 f"{dec.config.get('out_channels')} channels, not RGB (3)")


def check_latent_mode(mode: str) -> None:
    if mode not in LATENT_MODES:
        raise EvalsuiteError(f"vae.latents={mode!r}; choose mode (the posterior mean, "
                             "deterministic) or sample (a draw seeded per image by vae.seed)")


def encode(vae: Any, images: np.ndarray, mode: str, seeds: Sequence[int] | None) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> the encoder's latents (posterior mean, or a per-image seeded draw).

    Each draw comes from its own CPU generator, so a latent depends on its image and seed
    only, never on the batch or the device (as the generator's initial noise).
    """
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        x = x.to(vae.device, vae.dtype) / 127.5 - 1.0
        post = vae.encode(x).latent_dist
        require_finite(post.mean, "VAE encoder (latents)")
        if mode == "mode":
            return post.mode()
        assert seeds is not None and len(seeds) == len(images)
        shape = post.mean.shape[1:]
        eps = torch.stack([torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s))
                           for s in seeds]).to(post.mean.device, post.mean.dtype)
        return post.mean + post.std * eps


def to_decoder_latents(z: "torch.Tensor", encoder: VaeRef, decoder: VaeRef) -> "torch.Tensor":
    """Map encoder latents into the decoder's input space through the diffusion latent space.

    A pipeline feeds the UNet ``(z - shift_e) * scale_e`` and the decoder ``latents / scale_d
    + shift_d``; with equal factors that is the identity, so nothing is computed (and no
    float rounding added).
    """
    def factors(v: VaeRef) -> tuple[float, float]:
        return float(v.config.get("scaling_factor") or 1.0), float(v.config.get("shift_factor") or 0.0)

    (se, he), (sd, hd) = factors(encoder), factors(decoder)
    if (se, he) == (sd, hd):
        return z
    return (z - he) * se / sd + hd


def decode(vae: Any, latents: "torch.Tensor") -> np.ndarray:
    """Latents -> uint8 (N, H, W, 3), rounded as diffusers' ``numpy_to_pil``."""
    import torch

    from evalsuite.models.generator import to_uint8

    with torch.inference_mode():
        y = require_finite(vae.decode(latents.to(vae.device, vae.dtype)).sample, "VAE decoder")
        y = (y / 2 + 0.5).permute(0, 2, 3, 1).float().cpu().numpy()
    return to_uint8(y)
