"""Prompt sets from CSV, JSONL (PartiPrompts-style, with categories) and shared manifests.

A manifest is the JSON file evalsuite writes for a prompt set (``write_manifest``): every
prompt's id, text and source facts, plus the set's sha256. Loading a manifest gives exactly
the prompts another lab used, and the hash proves it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_text


def _open_text(path: str | None, what: str) -> tuple[Path, str]:
    if path is None:
        raise EvalsuiteError(f"{what} needs dataset.path=<file>")
    p = Path(path).expanduser()
    if not p.is_file():
        raise EvalsuiteError(f"{what} file {p} does not exist")
    try:
        return p, p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvalsuiteError(f"{what} file {p} could not be read as UTF-8 text: {e}") from e


def _fields(row: dict[str, Any]) -> list[str]:
    """A row's field names for messages (csv keeps the extra cells of a long row under None)."""
    return sorted(str(k) for k in row if k is not None)


def _rows_to_prompts(rows: Iterable[dict[str, Any]], text_field: str, id_field: str | None,
                     category_field: str | None, where: Path) -> tuple[Prompt, ...]:
    prompts = []
    for i, row in enumerate(rows, start=1):
        if text_field not in row:
            raise EvalsuiteError(f"{where}: row {i} has no field {text_field!r} "
                                 f"(fields: {_fields(row)}); set dataset.text_field")
        text = " ".join(str(row[text_field]).split())
        if not text:
            continue
        # A missing id cell (csv gives None for a short row) must not become the id "None";
        # whether an id is safe as a file name is checked by PromptSet.
        if id_field and row.get(id_field) in (None, ""):
            raise EvalsuiteError(f"{where}: row {i} has no value in the id field {id_field!r} "
                                 f"(fields: {_fields(row)}); set dataset.id_field, or leave it "
                                 "unset to number the prompts by row")
        pid = str(row[id_field]) if id_field else f"{i:05d}"
        meta = {"category": str(row[category_field])} if category_field and row.get(category_field) else {}
        prompts.append(Prompt(pid, text, meta))
    return tuple(prompts)


def load_csv_prompts(name: str, path: str | None, text_field: str = "prompt",
                     id_field: str | None = None, category_field: str | None = None,
                     limit: int | None = None, delimiter: str = ",") -> PromptSet:
    """A CSV/TSV file with a header row; ids are row numbers unless ``id_field`` is given."""
    p, text = _open_text(path, "CSV prompt")
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    return PromptSet(name, _rows_to_prompts(rows, text_field, id_field, category_field, p),
                     str(p.resolve())).head(limit)


def load_jsonl_prompts(name: str, path: str | None, text_field: str = "prompt",
                       id_field: str | None = None, category_field: str | None = None,
                       limit: int | None = None) -> PromptSet:
    """One JSON object per line (PartiPrompts: ``{"Prompt":..., "Category":...}``)."""
    p, text = _open_text(path, "JSONL prompt")
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise EvalsuiteError(f"{p}: line {n} is not valid JSON: {e}") from e
    return PromptSet(name, _rows_to_prompts(rows, text_field, id_field, category_field, p),
                     str(p.resolve())).head(limit)


def write_manifest(prompts: PromptSet, path: str | Path) -> Path:
    """Write a prompt set as a shareable manifest (atomic); returns the path."""
    doc = {"name": prompts.name, "source": prompts.source, "sha256": prompts.sha256,
           "count": len(prompts), "prompts": prompts.to_manifest()}
    return atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def load_manifest_prompts(name: str, path: str | None, limit: int | None = None) -> PromptSet:
    """A manifest written by ``write_manifest``; its recorded sha256 must match its prompts."""
    p, text = _open_text(path, "prompt manifest")
    try:
        doc = json.loads(text)
        prompts = tuple(Prompt(str(e["id"]), str(e["text"]),
                               {k: v for k, v in e.items() if k not in ("id", "text")})
                        for e in doc["prompts"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise EvalsuiteError(f"{p} is not an evalsuite prompt manifest: {e}") from e
    ps = PromptSet(name, prompts, str(p.resolve()))
    if doc.get("sha256") and doc["sha256"] != ps.sha256:
        raise EvalsuiteError(f"prompt manifest {p} says sha256 {doc['sha256'][:12]}... but its "
                             f"prompts hash to {ps.sha256[:12]}...: the file was edited")
    return ps.head(limit)
