"""Image grids: the same prompts and seeds side by side across variants.

One grid per (prompt set, run seed): every variant in it drew each prompt's image from the
same per-prompt seed, so a difference between two columns is the variant's doing. Columns are
the un-ablated baseline first, then the latest record of each variant, plus the shared no-ablation baseline samples of ablated
runs when no record of that baseline is present. A cell whose manifest gives a different seed
for the prompt (which would make the comparison meaningless) is left empty and says so.
Thumbnails are embedded in the page; each links to its full-resolution PNG.

Decoder evaluations get their own grids (``decoder_grids``): per reference set, the original
images (the run's ``reference_preview``) first, then each decoder's reconstructions.

Paths are confined to the results folder: a record's ``samples.dir`` is read relative to it
(an absolute one, as runs store it, is used when inside the folder, else as
``<results>/samples/<its name>``, so a moved folder still renders), and a manifest ``file``
must name a file in its sample folder. Anything that would leave the folder (``../x.png``,
an absolute path, a symlink out) is shown as a problem cell and never read or embedded.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from evalsuite.images import decode_image
from evalsuite.results.tablebuild import variant_key, variant_labels

Rec = Mapping[str, Any]


@dataclass
class GridCell:
    thumb: str | None  # data: URI of the thumbnail
    href: str | None  # relative link to the full image
    problem: str | None = None


@dataclass
class Grid:
    title: str
    variants: list[str]
    prompts: list[tuple[str, str, int | None]]  # (id, text, seed); decoder grids: no text, seed
    cells: list[list[GridCell]] = field(default_factory=list)  # [prompt][variant]


def _inside(path: Path, root: Path) -> bool:
    """True when ``path`` (symlinks resolved) is ``root`` or below it."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def sample_folder(samples_dir: str | None, results: Path) -> Path | None:
    """The sample folder a record names, inside ``results`` (None: none there).

    Relative paths are relative to ``results``; an absolute path outside it (a moved results
    folder, or a crafted record) is looked up as ``<results>/samples/<its name>``.
    """
    if not samples_dir:
        return None
    given = Path(samples_dir)
    candidates = ([given, results / "samples" / given.name] if given.is_absolute()
                  else [results / given])
    for folder in candidates:
        if _inside(folder, results) and folder.is_dir():
            return folder
    return None


def _manifest(folder: Path | None) -> dict[str, dict[str, Any]] | None:
    if folder is None:
        return None
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return {str(e["id"]): e for e in data.get("images", [])
                if isinstance(e, dict) and "id" in e}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None  # a damaged manifest: the column is left out, the report still renders


def thumbnail(path: Path, side: int) -> str:
    """PNG data URI, at most ``side`` px on the long edge. Small images are enlarged by a whole
    factor with nearest-neighbour (a tiny model's pixels stay as they are); large ones are
    shrunk with Lanczos."""
    with Image.fromarray(decode_image(path)) as im:
        longest = max(im.size)
        if longest <= side:
            factor = side // longest
            im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
        else:
            scale = side / longest
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _columns(records: Sequence[Rec]) -> list[tuple[str, str]]:
    """(label, samples dir): the baseline samples of ablated runs that have no record of their
    own, the un-ablated variants, then the ablated ones (each its latest record)."""
    latest: dict[tuple, Rec] = {}
    for rec in records:
        if (rec.get("samples") or {}).get("dir"):
            latest[variant_key(rec)] = rec
    pairs = list(zip(variant_labels(list(latest)), latest.values()))
    # The un-ablated baseline(s) first: every other column is read against them.
    pairs.sort(key=lambda p: bool((p[1].get("model") or {}).get("ablations")))
    cols = [(label, rec["samples"]["dir"]) for label, rec in pairs]
    seen = {d for _, d in cols}
    for rec in latest.values():
        base = rec.get("baseline_samples")
        if base and base not in seen:
            seen.add(base)
            cols.insert(0, (f"{(rec.get('model') or {}).get('preset', '?')} (no ablations)", base))
    return cols


def build_grids(records: Sequence[Rec], n_prompts: int, max_variants: int, thumb: int,
                page_dir: Path) -> list[Grid]:
    """One grid per (prompt set sha256, run seed) with at least one variant's samples on disk."""
    groups: dict[tuple, list[Rec]] = {}
    for rec in records:
        key = ((rec.get("dataset") or {}).get("sha256"), (rec.get("sampler") or {}).get("seed"))
        groups.setdefault(key, []).append(rec)
    grids = []
    for (sha, seed), recs in groups.items():
        folders = [(label, sample_folder(d, page_dir)) for label, d in _columns(recs)]
        cols = [(label, d, _manifest(d)) for label, d in folders]
        cols = [c for c in cols if c[2]][:max_variants]
        if not cols:
            continue
        common = [i for i in cols[0][2] if all(i in m for _, _, m in cols)][:n_prompts]
        first = cols[0][2]
        name = (recs[-1].get("dataset") or {}).get("name", "?")
        grid = Grid(f"Prompt set {name} (sha256 {str(sha)[:12]}), run seed {seed}",
                    [label for label, _, _ in cols],
                    [(i, first[i].get("text", ""), first[i].get("seed")) for i in common])
        for pid, _, pseed in grid.prompts:
            grid.cells.append([_cell(d, m[pid], pseed, thumb, page_dir) for _, d, m in cols])
        grids.append(grid)
    return grids


def decoder_grids(records: Sequence[Rec], n_images: int, max_decoders: int, thumb: int,
                  page_dir: Path) -> list[Grid]:
    """For decoder evaluations (``task=reconstruction``): one grid per reference set, the
    original images first (``reference_preview``, written by the run), then each decoder's
    reconstructions of them (its latest record), then any comparison decoder's."""
    groups: dict[str, list[Rec]] = {}
    for rec in records:
        groups.setdefault(str((rec.get("reference") or {}).get("sha256")), []).append(rec)
    grids = []
    for sha, recs in groups.items():
        latest: dict[tuple, Rec] = {variant_key(r): r for r in recs}
        cols: list[tuple[str, str | None]] = [
            ("reference image", next((r["reference_preview"]["dir"] for r in reversed(recs)
                                      if (r.get("reference_preview") or {}).get("dir")), None))]
        for label, rec in zip(variant_labels(list(latest)), latest.values()):
            cols.append((label, (rec.get("reconstructions") or {}).get("dir")))
            other = (rec.get("compare_reconstructions") or {}).get("dir")
            if other and other not in {d for _, d in cols}:
                cols.append((f"{label}: comparison decoder", other))
        found = [(label, d, _manifest(d)) for label, d in
                 ((label, sample_folder(d, page_dir)) for label, d in cols)]
        found = [c for c in found if c[2]][:max_decoders + 1]
        if not found:
            continue
        common = [i for i in found[0][2] if all(i in m for _, _, m in found)][:n_images]
        name = (recs[-1].get("reference") or {}).get("name", "?")
        grid = Grid(f"Reference set {name} (sha256 {sha[:12]}): originals and reconstructions",
                    [label for label, _, _ in found], [(i, "", None) for i in common])
        for pid in common:
            grid.cells.append([_cell(d, m[pid], m[pid].get("seed"), thumb, page_dir)
                               for _, d, m in found])
        grids.append(grid)
    return grids


def _cell(folder: Path, entry: Mapping[str, Any], seed: int | None, thumb: int,
          page_dir: Path) -> GridCell:
    if entry.get("seed") != seed:
        return GridCell(None, None, f"seed {entry.get('seed')} differs from {seed}")
    name = str(entry.get("file") or f"{entry['id']}.png")
    path = folder / name
    if Path(name).name != name or name.startswith(".") or not _inside(path, folder):
        return GridCell(None, None, "file outside the sample folder (not shown)")
    if not path.is_file():
        return GridCell(None, None, "image missing")
    try:
        uri = thumbnail(path, thumb)
    except Exception as e:  # noqa: BLE001  PIL raises many types; a bad PNG costs one cell
        return GridCell(None, None, f"image unreadable ({type(e).__name__})")
    return GridCell(uri, os.path.relpath(path, page_dir))
