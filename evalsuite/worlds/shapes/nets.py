"""The shapes world's evaluator networks, their tokenizer, and safetensors I/O.

Three small networks, each in its own safetensors file (``weights/``):
- ``AttributeChecker``: a CNN reading, for each of the five positions, whether an object is
  there and its shape, colour and size (65 logits: per slot 1+4 shape-or-empty, 6 colour,
  2 size);
- ``ImageEncoder``: a CNN whose 64-d projection is the image tower of the contrastive pair;
  that projection (not normalised) and the 32 channel means of its 16x16 mid-level maps are
  the 96-d Frechet/KID feature space (``fd_features``);
- ``TextEncoder``: a 2-layer transformer over caption words, the text tower.

Inputs: uint8 64x64 RGB images -> float in [0, 1], channels first, minus 0.5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_bytes
from evalsuite.worlds.shapes.world import COLOURS, POSITIONS, SHAPES, SIZES

IMAGE_SIZE = 64
SLOTS: tuple[str, ...] = tuple(POSITIONS)  # left, right, top, bottom, centre
SHAPE_CLASSES: tuple[str, ...] = ("empty", *SHAPES)
COLOUR_CLASSES: tuple[str, ...] = tuple(COLOURS)
SIZE_CLASSES: tuple[str, ...] = tuple(SIZES)
PER_SLOT = len(SHAPE_CLASSES) + len(COLOUR_CLASSES) + len(SIZE_CLASSES)
EMBED_DIM = 64
FEATURE_DIM = 160
FD_DIM = EMBED_DIM + 32
MAX_TOKENS = 16
VOCAB: tuple[str, ...] = (
    "<pad>", "<unk>", ",", "a", "picture", "of", "on", "the", "at", "in", "left", "right",
    "top", "bottom", "centre", "above", "below", *SIZES, *COLOURS, *SHAPES,
)
_INDEX = {w: i for i, w in enumerate(VOCAB)}


def tokenize(texts: list[str]) -> torch.Tensor:
    """Word ids (N, MAX_TOKENS), 0-padded; unknown words -> <unk>, long texts truncated."""
    out = torch.zeros((len(texts), MAX_TOKENS), dtype=torch.long)
    for i, text in enumerate(texts):
        words = re.findall(r"[a-z]+|,", text.lower())[:MAX_TOKENS]
        out[i, : len(words)] = torch.tensor([_INDEX.get(w, 1) for w in words], dtype=torch.long)
    return out


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float32 (N, 3, 64, 64) in [-0.5, 0.5]."""
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise EvalsuiteError(f"shapes evaluators take (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) images, "
                             f"got {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 255.0 - 0.5


def _conv_stack(layers: tuple[tuple[int, int], ...], c_in: int = 3) -> nn.Sequential:
    """3x3 convolutions with ReLU, given as (channels, stride) pairs."""
    mods: list[nn.Module] = []
    for c_out, stride in layers:
        mods += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*mods)


# Small on purpose (~9 M multiply-adds per image): trainable on 2 CPU cores in minutes.
_LOW = ((16, 2), (32, 2), (32, 1))  # 64 -> 16 px, 32 channels
_HIGH = ((64, 2), (64, 1), (128, 2))  # 16 -> 4 px, 128 channels


class AttributeChecker(nn.Module):
    """Per-slot shape-or-empty, colour and size logits: (N, 5, 13)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv_stack(_LOW), _conv_stack(_HIGH, c_in=32))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 16, 256), nn.ReLU(),
                                  nn.Linear(256, len(SLOTS) * PER_SLOT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).view(-1, len(SLOTS), PER_SLOT)


class ImageEncoder(nn.Module):
    """160-d features (``features``) and a 64-d contrastive embedding (``forward``)."""

    def __init__(self) -> None:
        super().__init__()
        self.low = _conv_stack(_LOW)
        self.high = _conv_stack(_HIGH, c_in=32)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(128 * 16, 128), nn.ReLU())
        self.proj = nn.Linear(FEATURE_DIM, EMBED_DIM)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low(x)
        # Mid-level channel means keep the features sensitive to blur and noise, as
        # Inception's are; the hidden layer carries what the objects are and where.
        return torch.cat([low.mean(dim=(2, 3)), self.hidden(self.high(low))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))

    def fd_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 96-d distribution-metric features: the embedding and the mid-level means.

        The embedding separates this world's scene distributions (a collapsed one is 5-10x
        farther than another split); the mid-level means add sensitivity to blur and noise.
        """
        low = self.low(x)
        means = low.mean(dim=(2, 3))
        return torch.cat([self.proj(torch.cat([means, self.hidden(self.high(low))], dim=1)),
                          means], dim=1)


class TextEncoder(nn.Module):
    """Caption words -> 64-d embedding (mean over the words of a 2-layer transformer)."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim)
        self.pos = nn.Parameter(torch.zeros(MAX_TOKENS, dim))
        layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.proj = nn.Linear(dim, EMBED_DIM)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pad = tokens == 0
        h = self.encoder(self.embed(tokens) + self.pos, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.proj((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))


NETS: dict[str, type[nn.Module]] = {
    "checker": AttributeChecker,
    "image_encoder": ImageEncoder,
    "text_encoder": TextEncoder,
}


def save_net(net: nn.Module, kind: str, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``net``'s state dict as safetensors (atomically) with ``kind`` and ``meta``.

    The metadata is one JSON string under one key: safetensors keeps metadata in a hash map
    whose order varies between calls, so several keys would make the bytes irreproducible.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    info = json.dumps({"kind": kind, **meta}, sort_keys=True)
    return atomic_write_bytes(path, save(tensors, metadata={"evalsuite": info}))


def load_net(kind: str, path: str | Path | None) -> nn.Module:
    """Build net ``kind`` and load ``path`` strictly (None: random init, seed 0), eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = NETS[kind]()
    if path is not None:
        with safe_open(str(path), "pt") as f:
            info = json.loads((f.metadata() or {}).get("evalsuite", "{}"))
        if info.get("kind") != kind:
            raise EvalsuiteError(f"{path} holds a shapes {info.get('kind')!r} network, not "
                                 f"{kind!r}; the shapes evaluators' files are in "
                                 "evalsuite/worlds/shapes/weights/")
        net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()


def decode_slots(logits: torch.Tensor) -> list[dict[str, dict[str, str]]]:
    """Checker logits (N, 5, 13) -> per image {position: {shape, colour, size}} (objects only)."""
    ns, nc = len(SHAPE_CLASSES), len(COLOUR_CLASSES)
    shape = logits[..., :ns].argmax(-1)
    colour = logits[..., ns:ns + nc].argmax(-1)
    size = logits[..., ns + nc:].argmax(-1)
    out = []
    for i in range(logits.shape[0]):
        found = {}
        for j, slot in enumerate(SLOTS):
            if int(shape[i, j]) != 0:
                found[slot] = {"shape": SHAPE_CLASSES[int(shape[i, j])],
                               "colour": COLOUR_CLASSES[int(colour[i, j])],
                               "size": SIZE_CLASSES[int(size[i, j])]}
        out.append(found)
    return out


def slot_targets(slots: list[dict[str, Any]]) -> torch.Tensor:
    """Per image {position: Obj} -> targets (N, 5, 3): shape class, colour, size (-100: none)."""
    t = torch.full((len(slots), len(SLOTS), 3), -100, dtype=torch.long)
    for i, s in enumerate(slots):
        for j, slot in enumerate(SLOTS):
            obj = s.get(slot)
            if obj is None:
                t[i, j, 0] = 0
            else:
                t[i, j] = torch.tensor([SHAPE_CLASSES.index(obj.shape),
                                        COLOUR_CLASSES.index(obj.colour),
                                        SIZE_CLASSES.index(obj.size)])
    return t


def checker_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum of the three cross-entropies; colour and size only where an object is."""
    ns, nc = len(SHAPE_CLASSES), len(COLOUR_CLASSES)
    return (F.cross_entropy(logits[..., :ns].reshape(-1, ns), targets[..., 0].reshape(-1))
            + F.cross_entropy(logits[..., ns:ns + nc].reshape(-1, nc), targets[..., 1].reshape(-1))
            + F.cross_entropy(logits[..., ns + nc:].reshape(-1, len(SIZE_CLASSES)),
                              targets[..., 2].reshape(-1)))
