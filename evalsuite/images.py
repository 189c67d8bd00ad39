"""Decode an image file to uint8 RGB exactly, by one set of written rules.

Every image evalsuite reads (samples, image folders, reference photographs, report
thumbnails) goes through ``decode_image``, so a file gives the same pixels wherever it is read:

- **8-bit** RGB is read as stored; grey (``L``, ``1``) is replicated to three channels; palette
  images are expanded; ``CMYK`` and ``YCbCr`` are converted by Pillow.
- **16-bit** PNGs (grey, RGB, RGBA) are converted to 8 bits as ``round(v / 257)``,
  the nearest 8-bit level. Pillow reports 16-bit RGB as ``RGB`` but keeps only the high byte
  (21.7% of values one level low on a photograph), so both bytes are read here. 16-bit grey
  images of other formats (TIFF) follow the same rule; 16-bit grey+alpha PNGs (Pillow cannot
  read their low bytes), 32-bit integer and float images are refused.
- **Alpha**: an alpha channel that is fully opaque is dropped. An image with any transparent
  pixel is refused: the colour under a transparent pixel is not part of the picture, and
  choosing a background would change every metric, so the user composites it first.
- **EXIF orientation and ICC profiles are not applied**: pixels are read as stored and treated
  as sRGB, as clean-fid, pytorch-fid, torchvision's decoders and the papers' pipelines do, so
  reference statistics stay comparable with theirs.
- A path that is not a regular file (a folder named ``x.png``, a dangling symbolic link) or
  that Pillow cannot decode is an ``EvalsuiteError`` naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite.errors import EvalsuiteError

# 16-bit raw modes of Pillow's PNG decoder: the big-endian tile mode, and the little-endian
# one whose unpacker takes the second byte of each big-endian pair: the low byte.
_PNG16 = {"RGB;16B": ("RGB;16L", "RGB"), "RGBA;16B": ("RGBA;16L", "RGBA")}
_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N")
_CONVERTED = ("RGB", "L", "1", "CMYK", "YCbCr")  # 8-bit modes without alpha


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an image file (None: it is a regular file)."""
    if path.is_symlink() and not path.exists():
        return f"is a symbolic link to {os.readlink(path)}, which does not exist"
    if path.is_dir():
        return "is a folder, not an image file"
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a regular file"
    return None


def to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit levels to the nearest 8-bit level, ``round(v / 257)`` (never a tie)."""
    v = values.astype(np.uint32)
    return ((2 * v + 257) // 514).astype(np.uint8)


def decode_image(path: str | os.PathLike, data: bytes | None = None) -> np.ndarray:
    """The image at ``path`` as uint8 (H, W, 3) by the module's rules.

    ``data``: the file's bytes when the caller has read them already (to hash them); ``path``
    then only names the file in messages.
    """
    path = Path(path)
    if data is None:
        problem = file_problem(path)
        if problem is not None:
            raise EvalsuiteError(f"image {path} {problem}; remove it from the image folder")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise EvalsuiteError(f"image {path} could not be read: {e}") from None
    try:
        rgb, transparent = _decode(data)
    except EvalsuiteError as e:
        raise EvalsuiteError(f"image {path} {e}") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for corrupt files
        raise EvalsuiteError(f"image {path} is unreadable or corrupt ({type(e).__name__}: "
                             f"{e}); replace or remove it") from None
    if transparent:
        raise EvalsuiteError(
            f"image {path} has transparent pixels; evalsuite does not choose a background for "
            "them (it would change every metric): composite the image onto the background "
            "you mean (e.g. white) and save it without alpha")
    return rgb


def _decode(data: bytes) -> tuple[np.ndarray, bool]:
    """(uint8 RGB, whether any pixel is transparent) of an encoded image.

    An ``EvalsuiteError`` raised here continues a sentence that starts with the file's name.
    """
    with Image.open(io.BytesIO(data)) as im:
        tile_mode = _tile_mode(im)
        if tile_mode in _PNG16:
            return _png16(data, tile_mode)
        if tile_mode == "LA;16B":  # Pillow has no raw mode that reads its low bytes
            raise EvalsuiteError("is a 16-bit grey PNG with an alpha channel, which cannot be "
                                 "read exactly; save it as 16-bit grey without alpha, or 8-bit")
        im.load()
        if im.mode in _SIXTEEN_BIT_GREY or (im.mode == "I" and im.format == "PNG"):
            grey = to_8bit(np.asarray(im).astype(np.int64).clip(0, 65535))
            return np.repeat(grey[..., None], 3, axis=2), False
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.mode in ("RGBA", "LA", "PA"):
            arr = np.asarray(im.convert("RGBA"), dtype=np.uint8)
            return np.ascontiguousarray(arr[..., :3]), bool((arr[..., 3] != 255).any())
        if im.mode in _CONVERTED:
            return np.asarray(im.convert("RGB"), dtype=np.uint8), False
        raise EvalsuiteError(f"has mode {im.mode} ({im.format}); evalsuite reads 8-bit images "
                             "and 16-bit PNGs or grey TIFFs only: convert it to 8-bit RGB")


def _tile_mode(im: Image.Image) -> str | None:
    """The raw mode of a PNG's pixel data (e.g. ``RGB;16B``), None for other formats."""
    if im.format != "PNG" or not im.tile:
        return None
    args = im.tile[0].args
    return args[0] if isinstance(args, tuple) else args


def _png16(data: bytes, tile_mode: str) -> tuple[np.ndarray, bool]:
    """Both bytes of a 16-bit PNG: Pillow decodes the high bytes; decoding again with the
    little-endian raw mode makes its unpacker take the second byte of each pair, the low one
    (the unfiltering, which works on bytes, is the same for both)."""
    low_mode, mode = _PNG16[tile_mode]
    with Image.open(io.BytesIO(data)) as im:
        high = np.asarray(im.convert(mode) if im.mode != mode else im, dtype=np.uint8)
    with Image.open(io.BytesIO(data)) as im:
        tile = im.tile[0]
        im.tile = [tile._replace(args=(low_mode, *tile.args[1:])
                                 if isinstance(tile.args, tuple) else low_mode)]
        low = np.asarray(im, dtype=np.uint8)
    if high.shape != low.shape:
        raise EvalsuiteError("is a 16-bit PNG this Pillow version cannot decode exactly; "
                             "convert it to 8 bits")
    full = (high.astype(np.uint16) << 8) | low
    colour = to_8bit(full[..., :3])
    transparent = mode != "RGB" and bool((full[..., -1] != 65535).any())
    return np.ascontiguousarray(colour), transparent
