"""Prompt sets from CSV, JSONL (PartiPrompts-style, with categories) and shared manifests.

A manifest is the JSON file evalsuite writes for a prompt set (``write_manifest``): every
prompt's id, text and source facts, plus the set's sha256. Loading a manifest gives exactly
the prompts another lab used, and the hash proves it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

from evalsuite.data.prompts import Prompt, PromptSet, split_lines
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


def _string_value(value: Any, where: str, field: str) -> str:
    """A text cell: JSON null, numbers, lists and objects are refused, never turned into text
    such as "None"."""
    if not isinstance(value, str):
        shown = "null" if value is None else f"a {type(value).__name__} ({str(value)[:40]})"
        raise EvalsuiteError(f"{where}: field {field!r} is {shown}; prompts must be strings")
    return value


def _rows_to_prompts(rows: Iterable[tuple[str, Any]], text_field: str, id_field: str | None,
                     category_field: str | None, where: Path) -> tuple[Prompt, ...]:
    """Prompts from (position for messages, e.g. "line 3", row) pairs; default ids number the
    rows 00001, 00002, ... in order."""
    prompts = []
    for i, (at, row) in enumerate(rows, start=1):
        here = f"{where}: {at}"
        if not isinstance(row, dict):
            shown = "null" if row is None else f"a JSON {type(row).__name__}"
            raise EvalsuiteError(f"{here} is {shown}, not an object with a {text_field!r} field")
        if text_field not in row:
            raise EvalsuiteError(f"{here} has no field {text_field!r} "
                                 f"(fields: {_fields(row)}); set dataset.text_field")
        text = " ".join(_string_value(row[text_field], here, text_field).split())
        if not text:
            continue
        # A missing id cell (csv gives None for a short row) must not become the id "None";
        # whether an id is safe as a file name is checked by PromptSet.
        if id_field and row.get(id_field) in (None, ""):
            raise EvalsuiteError(f"{here} has no value in the id field {id_field!r} "
                                 f"(fields: {_fields(row)}); set dataset.id_field, or leave it "
                                 "unset to number the prompts by row")
        if id_field and (isinstance(row[id_field], bool)
                         or not isinstance(row[id_field], (str, int))):
            raise EvalsuiteError(f"{here}: the id field {id_field!r} is "
                                 f"{row[id_field]!r}; ids must be strings or integers")
        pid = str(row[id_field]) if id_field else f"{i:05d}"
        meta = {"category": str(row[category_field])} if category_field and row.get(category_field) else {}
        prompts.append(Prompt(pid, text, meta))
    return tuple(prompts)


def load_csv_prompts(name: str, path: str | None, text_field: str = "prompt",
                     id_field: str | None = None, category_field: str | None = None,
                     limit: int | None = None, delimiter: str = ",") -> PromptSet:
    r"""A CSV/TSV file with a header row; ids are row numbers unless ``id_field`` is given.

    Records end at ``\n`` or ``\r\n`` (the csv module's rule, so quoted cells may hold line
    breaks); form feeds and U+2028 inside a cell never split it.
    """
    p, text = _open_text(path, "CSV prompt")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [(f"row {n}", row) for n, row in enumerate(reader, start=1)]
    return PromptSet(name, _rows_to_prompts(rows, text_field, id_field, category_field, p),
                     str(p.resolve())).head(limit)


def load_jsonl_prompts(name: str, path: str | None, text_field: str = "prompt",
                       id_field: str | None = None, category_field: str | None = None,
                       limit: int | None = None) -> PromptSet:
    r"""One JSON object per line (PartiPrompts: ``{"Prompt":..., "Category":...}``).

    Lines end at ``\n`` only (``split_lines``; files are read with universal newlines); a
    line that is not a JSON object, or whose prompt is null or not a string, is refused
    naming the line.
    """
    p, text = _open_text(path, "JSONL prompt")
    rows = []
    for n, line in enumerate(split_lines(text), start=1):
        if line.strip():
            try:
                rows.append((f"line {n}", json.loads(line)))
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
    """A manifest written by ``write_manifest``; it must record a sha256 that its prompts match."""
    p, text = _open_text(path, "prompt manifest")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise EvalsuiteError(f"{p} is not an evalsuite prompt manifest: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("prompts"), list):
        raise EvalsuiteError(f"{p} is not an evalsuite prompt manifest: it needs an object with "
                             "a 'prompts' list and a 'sha256' (as written by write_manifest)")
    if not isinstance(doc.get("sha256"), str) or not doc["sha256"]:
        raise EvalsuiteError(f"prompt manifest {p} records no sha256, so nothing proves its "
                             "prompts are the ones it was made with; use a manifest written by "
                             "evalsuite, or give the prompts as a JSONL or CSV file")
    prompts = tuple(_manifest_prompt(e, f"{p}: prompt {n}")
                    for n, e in enumerate(doc["prompts"], start=1))
    ps = PromptSet(name, prompts, str(p.resolve()))
    if doc["sha256"] != ps.sha256:
        raise EvalsuiteError(f"prompt manifest {p} says sha256 {doc['sha256'][:12]}... but its "
                             f"prompts hash to {ps.sha256[:12]}...: the file was edited")
    return ps.head(limit)


def _manifest_prompt(entry: Any, where: str) -> Prompt:
    if not isinstance(entry, dict) or "id" not in entry or "text" not in entry:
        raise EvalsuiteError(f"{where} is not an object with 'id' and 'text'")
    pid = entry["id"]
    if not isinstance(pid, str):
        raise EvalsuiteError(f"{where}: id {pid!r} is not a string")
    text = _string_value(entry["text"], where, "text")
    return Prompt(pid, text, {k: v for k, v in entry.items() if k not in ("id", "text")})
