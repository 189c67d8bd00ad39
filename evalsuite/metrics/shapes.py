"""Metrics of the shapes world, with evaluators trained on it (``evalsuite/worlds/shapes``).

- ``fd_shapes`` / ``kid_shapes``: Frechet distance and KID (evalsuite's FID and KID code) in
  the feature space of the world's image encoder (``features/shapes.py``); never an FID.
- ``shapes_attr_acc``: GenEval-style compositional accuracy. The truth of each image is parsed
  from its prompt (the world's captions state it exactly); the attribute checker reads each
  position slot of the image. Value: the share of images where every check passes; the
  per-attribute and per-category (one/two objects) accuracies are in ``settings.breakdown``
  (definitions: ``evalsuite.worlds.shapes.scoring``).
- ``shapes_clip_score``: the CLIP-score analogue, the mean cosine of the L2-normalised image
  and text embeddings of the world's contrastive pair.
Images that are not 64x64 are squashed to 64x64 (PIL bicubic) before the networks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features import resize
from evalsuite.features.base import RANDOM_INIT_SEED
from evalsuite.features.shapes import IMAGE_ENCODER_ASSET, ShapesEncoderFeatures
from evalsuite.metrics.base import MetricResult, TextImageMetric, check_images
from evalsuite.metrics.fid import FID
from evalsuite.metrics.kid import KID

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

CHECKER_ASSET = "shapes_checker"
TEXT_ENCODER_ASSET = "shapes_text_encoder"
_KIND = {CHECKER_ASSET: "checker", IMAGE_ENCODER_ASSET: "image_encoder",
         TEXT_ENCODER_ASSET: "text_encoder"}


class ShapesFD(FID):
    """Frechet distance in the shapes image encoder's feature space."""

    name, protocol = "fd_shapes", "shapes world image encoder"

    def __init__(self, device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(ShapesEncoderFeatures(device), resize, size)


class ShapesKID(KID):
    """KID in the shapes image encoder's feature space."""

    name, protocol = "kid_shapes", "shapes world image encoder"

    def __init__(self, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0,
                 device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(ShapesEncoderFeatures(device), num_subsets, subset_size, seed,
                         resize, size)


def _at_64(images: np.ndarray) -> np.ndarray:
    if images.shape[1:3] == (64, 64):
        return images
    return np.stack([resize.resize_square(im, "squash", 64) for im in images])


def _record(found: "ResolvedAsset | None") -> dict[str, Any]:
    if found is None:
        return {"file": None, "random_init": True, "seed": RANDOM_INIT_SEED, "verified": False}
    return found.to_record()


class _ShapesTextImage(TextImageMetric):
    """Shared loading: the named networks, from the resolved assets (None: random)."""

    assets: tuple[str, ...] = ()

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._nets: dict[str, Any] = {}
        self._weights: dict[str, Any] = {}
        self.reset()

    def required_assets(self) -> list[str]:
        return list(self.assets)

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        from evalsuite.worlds.shapes.nets import load_net

        for name in self.assets:
            found = weights[name]
            self._nets[name] = load_net(_KIND[name], found.path if found else None).to(self.device)
            self._weights[name] = _record(found)

    def _check(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        check_images(images)
        if len(texts) != len(images):
            raise EvalsuiteError(f"{self.name}: {len(images)} images but {len(texts)} prompts")
        if not self._nets:
            raise RuntimeError(f"{self.name}: prepare() must be called before update()")
        return _at_64(images)

    def _weights_record(self) -> dict[str, Any]:
        """One file: its record; several: asset name -> record (as feature extractors do)."""
        if len(self._weights) == 1:
            return next(iter(self._weights.values()))
        return dict(self._weights)


class ShapesAttributeAccuracy(_ShapesTextImage):
    """Share of images whose every object (and relation) the checker reads as prompted."""

    name, version, higher_is_better = "shapes_attr_acc", "1", True
    assets = (CHECKER_ASSET,)

    def params(self) -> dict[str, Any]:
        return {"truth": "parsed from the prompt (shapes-world caption)",
                "checker": "per-slot shape/colour/size CNN at 64x64",
                "value": "share of images where shape, colour, size, position, count and "
                         "relation all check (evalsuite.worlds.shapes.scoring)"}

    def settings(self) -> dict[str, Any]:
        return {**self.params(), "breakdown": self._breakdown}

    def reset(self) -> None:
        self._truths: list[Any] = []
        self._found: list[Any] = []
        self._passed: list[float] = []  # per image: 1.0 when every check holds (the value's terms)
        self._breakdown: dict[str, Any] = {}

    def update(self, images: np.ndarray, texts: Sequence[str]) -> None:
        from evalsuite.worlds.shapes.scoring import check_scene, read_images
        from evalsuite.worlds.shapes.world import parse_caption

        images = self._check(images, texts)
        try:
            truths = [parse_caption(t) for t in texts]
        except EvalsuiteError as e:
            raise EvalsuiteError(f"{self.name} scores prompts of the shapes world "
                                 f"(dataset=shapes) only: {e}") from e
        found = read_images(self._nets[CHECKER_ASSET], images)
        self._passed.extend(float(check_scene(t, f)["all"][0]) for t, f in zip(truths, found))
        self._found.extend(found)
        self._truths.extend(truths)

    def item_values(self) -> np.ndarray:
        """Per image, 1.0 where every check holds (their mean is the value), in the order fed."""
        return np.asarray(self._passed, dtype=np.float64)

    def compute(self) -> MetricResult:
        from evalsuite.worlds.shapes.scoring import summarise

        if not self._truths:
            raise EvalsuiteError(f"{self.name}: no images were given")
        self._breakdown = summarise(self._truths, self._found)
        value = self._breakdown["overall"]["all"]["accuracy"]
        return self._result(value, len(self._truths), self._weights_record())


class ShapesCLIPScore(_ShapesTextImage):
    """Mean cosine of the world's contrastive image and text embeddings."""

    name, version, higher_is_better = "shapes_clip_score", "1", True
    assets = (IMAGE_ENCODER_ASSET, TEXT_ENCODER_ASSET)

    def params(self) -> dict[str, Any]:
        return {"definition": "mean cosine of L2-normalised shapes image and text embeddings",
                "scale": "cosine"}

    def reset(self) -> None:
        self._cos: list[float] = []

    def update(self, images: np.ndarray, texts: Sequence[str]) -> None:
        from evalsuite.worlds.shapes.scoring import embed_images, embed_texts

        images = self._check(images, texts)
        img = embed_images(self._nets[IMAGE_ENCODER_ASSET], images)
        txt = embed_texts(self._nets[TEXT_ENCODER_ASSET], texts)
        self._cos.extend((img * txt).sum(-1).double().tolist())

    def item_values(self) -> np.ndarray:
        """Per-image cosines in the order fed."""
        return np.asarray(self._cos, dtype=np.float64)

    def compute(self) -> MetricResult:
        if not self._cos:
            raise EvalsuiteError(f"{self.name}: no images were given")
        return self._result(float(np.mean(self._cos)), len(self._cos), self._weights_record())
