"""Write PNG files that Pillow cannot write: 16-bit colour, with every row filter.

Tests use these to check that ``evalsuite.images.decode_image`` reads both bytes of each
16-bit value. The encoder is the PNG specification's, written out in numpy; rows cycle
through the five filter types so the decoder's unfiltering of each is exercised.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, LA, RGB, RGBA)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filter(row: np.ndarray, prev: np.ndarray, kind: int, bpp: int) -> bytes:
    """One scan line filtered with ``kind`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    x = row.astype(np.int64)
    up = prev.astype(np.int64)
    left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
    up_left = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
    pred = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: _paeth(left, up, up_left)}[kind]
    return bytes([kind]) + ((x - pred) % 256).astype(np.uint8).tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_png16(path: Path, values: np.ndarray) -> Path:
    """Write uint16 ``values`` (H, W) or (H, W, C), C in 1..4, as a 16-bit PNG."""
    arr = np.asarray(values, dtype=np.uint16)
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    rows = arr.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2)
    bpp = 2 * c
    prev = np.zeros_like(rows[0])
    lines = []
    for y in range(h):
        lines.append(_filter(rows[y], prev, y % 5, bpp))
        prev = rows[y]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, COLOUR_TYPES[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"".join(lines))) + _chunk(b"IEND", b""))
    return path


def photo16(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth 16-bit test picture plus noise (every low byte occurs)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 5.0) + np.cos(yy / 7.0) + 2) / 4 * 60000
    extra = shape[2:] or (1,)
    out = base[..., None] + rng.integers(0, 5000, (h, w, *extra))
    return out.reshape(shape).clip(0, 65535).astype(np.uint16)
