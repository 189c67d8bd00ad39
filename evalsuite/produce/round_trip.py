"""The VAE round-trip producer: encode real images, decode them with the decoder under test.

One producer per decoder; decoders that decode the same latents (``vae.decoder`` and
``vae.compare_decoder``) share one ``Encoder``, which remembers the latents of the last chunk
so each chunk is encoded once. Images of different sizes in one chunk (a reference kept at
its stored sizes) are encoded and decoded one size at a time.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features.sources import ImageSource
from evalsuite.models.vae import MODEL, VaeRef, decode, encode, to_decoder_latents
from evalsuite.samples.identity import device_factors
from evalsuite.samples.seeds import prompt_seed


class LoadedVaes:
    """Each VAE loaded on first use, once (the model's VAE serves every role it is named in)."""

    def __init__(self, dtype: str, device: str) -> None:
        self.dtype, self.device = dtype, device
        self._vaes: dict[str, Any] = {}

    def get(self, ref: VaeRef) -> Any:
        key = str(ref.path.resolve()) if ref.path else MODEL
        if key not in self._vaes:
            self._vaes[key] = ref.load(self.dtype, self.device)
        return self._vaes[key]

    @property
    def loaded(self) -> bool:
        return bool(self._vaes)


def check_side(h: int, w: int, image_id: str, encoder: VaeRef) -> None:
    """Refuse an image whose sides the encoder cannot downsample exactly."""
    f = encoder.downsampling
    if h % f or w % f:
        raise EvalsuiteError(f"reference image {image_id!r} is {w}x{h}, not a multiple of "
                             f"{f} (the downsampling of {encoder.role}); set "
                             f"reference.resolution to a multiple of {f}")


def same_shape_groups(images: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices of the images of each shape, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, im in enumerate(images):
        groups.setdefault(im.shape, []).append(k)
    return list(groups.values())


class Encoder:
    """The images' latents (posterior mean, or a draw seeded per image by ``seed``)."""

    def __init__(self, images: ImageSource, ref: VaeRef, mode: str, seed: int | None,
                 vaes: LoadedVaes) -> None:
        self.images, self.ref, self.mode, self.seed, self.vaes = images, ref, mode, seed, vaes
        self._last: tuple[tuple[str, ...], list[tuple[list[int], Any]]] | None = None

    def latents_info(self) -> dict[str, Any]:
        """How latents are drawn (part of every decoder's store key)."""
        return {"mode": self.mode, **({"seed": self.seed} if self.mode == "sample" else {})}

    def image_seed(self, image_id: str) -> int | None:
        return prompt_seed(self.seed, image_id) if self.mode == "sample" else None

    def encode(self, ids: Sequence[str]) -> list[tuple[list[int], Any]]:
        """(positions in ``ids``, latents) per image size; the last chunk's are remembered."""
        if self._last is not None and self._last[0] == tuple(ids):
            return self._last[1]
        images = [self.images.read(i) for i in ids]
        out = []
        for group in same_shape_groups(images):
            batch = np.stack([images[k] for k in group])
            check_side(batch.shape[1], batch.shape[2], ids[group[0]], self.ref)
            seeds = [self.image_seed(ids[k]) for k in group] if self.mode == "sample" else None
            out.append((group, encode(self.vaes.get(self.ref), batch, self.mode, seeds)))
        self._last = (tuple(ids), out)
        return out


class VaeRoundTrip:
    """An ``ImageProducer``: the reconstructions of ``encoder``'s images by ``decoder``.

    ``batch_size`` is part of the key: batched convolutions round the last bits differently
    for different batch shapes, which can move a pixel across a uint8 rounding boundary.
    """

    verb = "decode"

    def __init__(self, encoder: Encoder, decoder: VaeRef, dtype: str, device_type: str,
                 batch_size: int) -> None:
        self.encoder, self.decoder = encoder, decoder
        self._factors = {"task": "reconstruction", "reference": encoder.images.identity(),
                         "encoder": encoder.ref.identity(), "decoder": decoder.identity(),
                         "latents": encoder.latents_info(), "dtype": dtype,
                         **device_factors(device_type), "batch_size": batch_size}

    def factors(self) -> dict[str, Any]:
        return self._factors

    def make(self, ids: Sequence[str]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(ids)
        for group, z in self.encoder.encode(ids):
            vae = self.encoder.vaes.get(self.decoder)
            decoded = decode(vae, to_decoder_latents(z, self.encoder.ref, self.decoder))
            for k, img in zip(group, decoded):
                out[k] = img
        return out  # type: ignore[return-value]

    def info(self, image_id: str) -> dict[str, Any]:
        seed = self.encoder.image_seed(image_id)
        return {"seed": seed} if seed is not None else {}

    def manifest(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [{"id": i, "seed": self.encoder.image_seed(i)} for i in ids]
