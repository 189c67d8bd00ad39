"""Prompt sets: frozen lists of (id, text) identified by a sha256 of their content.

A prompt's id, not its position, is what the rest of the suite keys on: its seed is derived
from the run seed and the id, its image is stored under the id, and paired metrics match
images by id. Reordering a file therefore changes nothing but the manifest hash.

Because images are stored under their ids, a prompt set refuses, when it is made, any id that
is not a safe file name (``evalsuite.samples.store.id_problem``): ids from CSV, JSONL, manifest
and COCO files can never name a path outside the sample store's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Collection, Iterator, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.io import sha256_json
from evalsuite.samples.store import check_ids


@dataclass(frozen=True)
class Prompt:
    """One prompt. ``meta`` carries source facts (COCO image/caption ids, a category) that are
    recorded in the manifest but are not part of the prompt's identity."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PromptSet:
    """An ordered, immutable prompt set with a content hash."""

    name: str
    prompts: tuple[Prompt, ...]
    source: str  # where it was read from (recorded for provenance)

    def __post_init__(self) -> None:
        if not self.prompts:
            raise EvalsuiteError(f"prompt set '{self.name}' from {self.source} is empty: "
                                 "a prompt file needs at least one non-blank line")
        ids = [p.id for p in self.prompts]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise EvalsuiteError(f"prompt set '{self.name}' has duplicate ids {dup}")
        check_ids(ids, f"prompt set '{self.name}' from {self.source}",
                  "For CSV and JSONL files, leaving dataset.id_field unset numbers the prompts "
                  "by row instead.")

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self.prompts)

    @property
    def sha256(self) -> str:
        """Hash of the (id, text) pairs in order: changes when and only when the prompts do."""
        return sha256_json([[p.id, p.text] for p in self.prompts])

    def head(self, limit: int | None) -> "PromptSet":
        if limit is None or limit >= len(self.prompts):
            return self
        if limit < 1:
            raise EvalsuiteError(f"dataset.limit must be >= 1, got {limit}")
        return PromptSet(self.name, self.prompts[:limit], self.source)

    def subset(self, ids: Collection[str], having: str) -> "PromptSet":
        """The prompts whose id is in ``ids``, in order; none is an error saying which prompts
        lack ``having`` (e.g. "an image in the sample store ...")."""
        kept = tuple(p for p in self.prompts if p.id in ids)
        if not kept:
            raise EvalsuiteError(f"none of the {len(self.prompts)} prompts of '{self.name}' has "
                                 f"{having}, so there is nothing to score; generate the "
                                 "images first (stage=generate or stage=all)")
        return PromptSet(self.name, kept, self.source)

    def to_manifest(self) -> list[dict[str, Any]]:
        return [{"id": p.id, "text": p.text, **p.meta} for p in self.prompts]

    def categories(self) -> dict[str, str]:
        """prompt id -> category, for prompt sets that have one (e.g. PartiPrompts)."""
        return {p.id: p.meta["category"] for p in self.prompts if "category" in p.meta}


def split_lines(text: str) -> list[str]:
    r"""The lines of a prompt file's text: split on ``\n`` only, a ``\r`` before it dropped.

    Files are read in text mode, whose universal newlines turn ``\r\n`` and a lone ``\r``
    into ``\n``; nothing else ends a line. ``str.splitlines`` would also split on form feeds,
    vertical tabs, U+001C-U+001E, U+0085 and U+2028/U+2029, which can sit inside a prompt: a
    prompt would become several and every later id would shift.
    """
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _from_lines(name: str, lines: Sequence[str], source: str) -> PromptSet:
    # ids are 1-based line numbers of non-blank lines: stable under edits elsewhere in the file.
    prompts = tuple(
        Prompt(id=f"{i:05d}", text=line.strip())
        for i, line in enumerate(lines, start=1)
        if line.strip()
    )
    return PromptSet(name=name, prompts=prompts, source=source)


def load_text_prompts(name: str, path: str | None, limit: int | None = None) -> PromptSet:
    r"""Read a plain-text prompt file: one prompt per line (lines end at ``\n``, ``\r\n`` or
    ``\r`` only, see ``split_lines``), blank lines ignored, ids the line numbers."""
    if path is None:
        raise EvalsuiteError(f"dataset '{name}' needs dataset.path=<prompt file>")
    p = Path(path).expanduser()
    if not p.is_file():
        raise EvalsuiteError(f"prompt file {p} does not exist (dataset.path={path}). "
                             "Give a UTF-8 text file with one prompt per line.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvalsuiteError(f"prompt file {p} could not be read as UTF-8 text: {e}") from e
    return _from_lines(name, split_lines(text), str(p.resolve())).head(limit)


def load_demo_prompts(name: str = "demo", path: str | None = None, limit: int | None = None) -> PromptSet:
    """The bundled demo set: 32 everyday prompts written for evalsuite."""
    if path is not None:
        raise EvalsuiteError("dataset=demo is the bundled prompt set and takes no path; "
                             f"for your own file use dataset=text dataset.path={path}")
    text = resources.files("evalsuite.data").joinpath("demo_prompts.txt").read_text("utf-8")
    return _from_lines(name, split_lines(text), "evalsuite/data/demo_prompts.txt"
                       ).head(limit)
