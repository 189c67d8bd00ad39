"""MS-COCO caption prompt sets, read from the official annotation files on local disk.

evalsuite never downloads COCO. Get ``annotations_trainval2014.zip`` / ``..2017.zip`` (for
``captions_val2014.json`` / ``captions_val2017.json``) and, for reference statistics, the
``val2014`` / ``val2017`` image folders from the COCO website, and point the config at them.

Selection is deterministic and independent of the order of the annotation file: every image
gets a rank ``sha256(seed/image_id)`` and the N lowest ranks are taken; each image's caption
is picked among its captions (sorted by caption id) by ``sha256(seed/image_id/caption)``.
Adding images to the pool never reshuffles the ones already chosen below the cut.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import EvalsuiteError


def _rank(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def read_coco_captions(annotations: str | Path) -> tuple[dict[int, str], dict[int, list[tuple[int, str]]]]:
    """Return (image id -> file name, image id -> [(caption id, caption)] sorted by caption id)."""
    path = Path(annotations).expanduser()
    if not path.is_file():
        raise EvalsuiteError(f"COCO annotation file {path} does not exist; download the COCO "
                             "annotations (captions_val2014.json / captions_val2017.json) and "
                             "set dataset.annotations=<path>")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        captions: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for ann in data["annotations"]:
            captions[int(ann["image_id"])].append((int(ann["id"]), " ".join(ann["caption"].split())))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvalsuiteError(f"COCO annotation file {path} is not valid JSON: {e}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise EvalsuiteError(f"COCO annotation file {path} is not a captions file "
                             f"(missing or malformed field {e}); expected 'images' and "
                             "'annotations' with 'image_id', 'id', 'caption'") from e
    missing = sorted(set(captions) - set(files))[:3]
    if missing:
        raise EvalsuiteError(f"COCO annotation file {path} has captions for images {missing} "
                             "that are not listed under 'images'")
    return files, {k: sorted(v) for k, v in captions.items()}


def load_coco_prompts(name: str, annotations: str, n: int | None = None, seed: int = 0,
                      images_dir: str | None = None, limit: int | None = None) -> PromptSet:
    """N images of a COCO captions file, one caption each, chosen by ``seed``.

    Args:
        n: number of images (None: all images with captions).
        images_dir: if given, every chosen image must exist there (checked now, so a missing
            file is reported before any generation); its path is kept in the prompt's meta.
    """
    files, captions = read_coco_captions(annotations)
    ids = sorted(captions, key=lambda i: (_rank(seed, i), i))
    if n is not None:
        if n < 1 or n > len(ids):
            hint = (f" (dataset.limit={limit} only takes the first images of the dataset.n "
                    f"chosen; for a smaller set, set dataset.n={min(limit, len(ids))} instead)"
                    if limit is not None else
                    f"; choose at most dataset.n={len(ids)}")
            raise EvalsuiteError(f"dataset.n={n}, but {annotations} has {len(ids)} captioned "
                                 f"images{hint}")
        ids = ids[:n]
    ids.sort()  # generation order: by image id, so the set reads naturally
    folder = Path(images_dir).expanduser() if images_dir else None
    prompts = []
    for image_id in ids:
        caps = captions[image_id]
        cap_id, text = caps[_rank(seed, image_id, "caption") % len(caps)]
        meta: dict[str, Any] = {"image_id": image_id, "caption_id": cap_id,
                                "file_name": files[image_id]}
        if folder is not None:
            img = folder / files[image_id]
            if not img.is_file():
                raise EvalsuiteError(f"COCO image {img} (image id {image_id}) is missing from "
                                     f"dataset.images_dir={images_dir}")
        prompts.append(Prompt(id=f"{image_id:012d}", text=text, meta=meta))
    source = f"{Path(annotations).expanduser().resolve()} (n={n}, seed={seed})"
    return PromptSet(name, tuple(prompts), source).head(limit)
