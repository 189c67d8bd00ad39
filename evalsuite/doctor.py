"""``evalsuite doctor``: check every file of a results folder; with ``fix``, repair it.

Checks (each file read the way the code that uses it reads it):
- ``records/*.json``: readable, a JSON object, a known schema, the fields readers rely on
  (``results.record.read_record``); a record from a newer evalsuite is noted, not touched;
- ``samples/<key>/`` and ``reconstructions/<key>/``: ``manifest.json`` parses and matches its
  own sha256; every image it lists exists, lies in the folder and has the listed sha256;
  images no valid manifest covers decode; ``generation.json`` parses;
- caches: sealed JSON caches (``cache/metrics``, ``cache/models``, ``cache/folders``,
  ``cache/sha256.json``) against their digests; feature files (``cache/features``: ``.npy``
  against the sha256 in its sidecar, ``.stats.npz`` against its digest and its ``.npy``);
- ``cache/merges/*.json``: merge claims whose lease expired or whose process is gone;
- ``.tmp-*`` files older than ``tmp_age_s``: left by killed writers (younger ones may belong
  to a run in progress and are only noted);
- ``tables/``: empty or non-text files, and a ``runs.csv`` that does not list the records.

``fix`` moves what is broken to ``<results>/quarantine/<relative path>`` (never deletes; a
name already there gets a ``.1``, ``.2`` suffix), deletes stale temporary files (partial
writes, never valid data) and rebuilds ``tables/runs.*`` from the records. Everything that
was quarantined is something evalsuite recomputes on the next run (a cache entry, a sample, a
manifest), or a record that no reader could use anyway.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from evalsuite.features.cache import STATS_SUFFIX, entry_problem, read_stats
from evalsuite.io import sha256_file, sha256_json, unseal
from evalsuite.results.record import NewerRecordError, RecordError, read_record

QUARANTINE = "quarantine"
SEALED_CACHES = ("metrics", "models", "folders")  # cache/<name>/*.json, written by JsonCache
STORES = ("samples", "reconstructions")  # sample store roots (evalsuite/samples/store.py)
DEFAULT_TMP_AGE_S = 3600.0
CLAIM_LEASE_S = 24 * 3600.0  # a claim without a lease of its own


@dataclass
class Finding:
    """One thing doctor found: ``action`` is what ``fix`` does ("quarantine", "delete",
    "rebuild") or "note" (reported, nothing to do)."""

    path: str  # relative to the results folder
    kind: str
    problem: str
    action: str
    done: bool = False

    @property
    def is_problem(self) -> bool:
        return self.action != "note" and not self.done


def _files(folder: Path, pattern: str) -> Iterator[Path]:
    """Regular files matching ``pattern``, temporary files and dotfiles excluded."""
    if folder.is_dir():
        yield from (p for p in sorted(folder.glob(pattern))
                    if p.is_file() and not p.name.startswith("."))


def check_records(results: Path) -> Iterator[Finding]:
    for path in _files(results / "records", "*.json"):
        try:
            read_record(path)
        except NewerRecordError as e:
            yield Finding(_rel(path, results), "record", str(e).split(": ", 1)[-1], "note")
        except (RecordError, OSError) as e:
            yield Finding(_rel(path, results), "record", str(e).split(": ", 1)[-1], "quarantine")


def _manifest_problem(path: Path) -> tuple[list[dict] | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"unreadable ({e})"
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not all(isinstance(e, dict) for e in data["images"]):
        return None, "not a manifest (an object with a list of images)"
    if data.get("sha256") != sha256_json(data["images"]):
        return None, "does not match its own sha256 (edited or corrupted)"
    return data["images"], None


def _image_problem(folder: Path, entry: dict) -> tuple[Path | None, str | None]:
    """The image an entry names and what is wrong with it (None, None: nothing)."""
    name = str(entry.get("file") or f"{entry.get('id')}.png")
    path = folder / name
    if Path(name).name != name or name.startswith("."):
        return None, f"lists file {name!r}, outside its folder"
    if not path.is_file():
        return None, f"lists {name}, which is missing"
    if entry.get("sha256") != sha256_file(path):
        return path, "does not match the sha256 in manifest.json (swapped or edited)"
    return None, None


def _undecodable(path: Path) -> str | None:
    from evalsuite.errors import EvalsuiteError
    from evalsuite.samples.store import decode_png

    try:
        decode_png(path)
    except EvalsuiteError as e:
        return f"does not decode ({e})"
    return None


def check_samples(results: Path) -> Iterator[Finding]:
    for folder in _store_folders(results):
        gen = folder / "generation.json"
        if gen.is_file():
            try:
                json.loads(gen.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                yield Finding(_rel(gen, results), "generation.json", f"unreadable ({e})",
                              "quarantine")
        manifest = folder / "manifest.json"
        images, problem = _manifest_problem(manifest) if manifest.is_file() else ([], None)
        bad: list[Finding] = []
        verified: set[str] = set()  # files whose sha256 matches the manifest: decodable
        for entry in images or []:
            path, why = _image_problem(folder, entry)
            if why and path is not None:
                bad.append(Finding(_rel(path, results), "sample image", why, "quarantine"))
            elif why:
                problem = problem or f"{why} (and possibly more)"
            else:
                verified.add(str(entry.get("file") or f"{entry.get('id')}.png"))
        for path in _files(folder, "*.png"):  # not covered by a valid manifest: decode it
            if path.name not in verified and not any(f.path == _rel(path, results) for f in bad):
                why = _undecodable(path)
                if why:
                    bad.append(Finding(_rel(path, results), "sample image", why, "quarantine"))
        yield from bad
        if manifest.is_file() and (problem or bad):  # it no longer describes the folder
            yield Finding(_rel(manifest, results), "manifest",
                          problem or f"{len(bad)} image(s) in its folder are damaged", "quarantine")


def check_caches(results: Path) -> Iterator[Finding]:
    cache = results / "cache"
    for name in SEALED_CACHES:
        for path in _files(cache / name, "*.json"):
            _, problem = unseal(path)
            if problem:
                yield Finding(_rel(path, results), f"{name} cache", problem, "quarantine")
    digests = cache / "sha256.json"
    if digests.is_file():
        _, problem = unseal(digests)
        if problem:
            yield Finding(_rel(digests, results), "sha256 cache", problem, "quarantine")
    yield from _check_features(results, cache / "features")


def _check_features(results: Path, folder: Path) -> Iterator[Finding]:
    for npy in _files(folder, "*.npy"):
        meta_path = npy.with_suffix(".json")
        stats = npy.with_name(npy.stem + STATS_SUFFIX)
        if not meta_path.is_file():
            problem, meta = "has no sidecar .json (a write was cut short)", None
        else:
            meta, problem = entry_problem(npy, meta_path)
        if problem:
            for p in (npy, meta_path, stats):
                if p.is_file():
                    yield Finding(_rel(p, results), "feature cache", problem, "quarantine")
            continue
        _, why = read_stats(stats, (meta or {}).get("npy_sha256"))
        if why:
            yield Finding(_rel(stats, results), "feature statistics", why, "quarantine")
    for path in _files(folder, "*"):
        if path.name.endswith(STATS_SUFFIX):
            owner = path.with_name(path.name[:-len(STATS_SUFFIX)] + ".npy")
        elif path.suffix == ".json":
            owner = path.with_suffix(".npy")
        else:
            continue
        if not owner.is_file():
            yield Finding(_rel(path, results), "feature cache", "belongs to no feature file",
                          "quarantine")


def claim_expired(claim: object, mtime: float, now: float) -> str | None:
    """Why a merge claim no longer holds (None: it still does, or it is done).

    Claims record ``pid``, ``host``, ``time`` and ``lease_s``; older ones (``{"shard": n}``)
    hold for ``CLAIM_LEASE_S`` after their file was written.
    """
    if not isinstance(claim, dict):
        return "unreadable"
    if claim.get("done"):
        return None
    since = claim.get("time") if isinstance(claim.get("time"), (int, float)) else mtime
    lease = float(claim.get("lease_s") or CLAIM_LEASE_S)
    if now - since > lease:
        return f"its lease of {lease:.0f} s expired {now - since - lease:.0f} s ago"
    pid = claim.get("pid")
    if claim.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"its process {pid} on this host is gone"
        except PermissionError:
            pass
    return None


def check_claims(results: Path, now: float) -> Iterator[Finding]:
    for path in _files(results / "cache" / "merges", "*.json"):
        try:
            claim = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            claim = None
        why = claim_expired(claim, path.stat().st_mtime, now)
        if why:
            yield Finding(_rel(path, results), "merge claim", f"expired: {why}", "quarantine")


def check_temp_files(results: Path, now: float, tmp_age_s: float) -> Iterator[Finding]:
    for path in sorted(results.rglob(".tmp-*")):
        rel = _rel(path, results)
        if rel.startswith(QUARANTINE + "/") or not path.is_file():
            continue
        age = now - path.stat().st_mtime
        if age >= tmp_age_s:
            yield Finding(rel, "temporary file",
                          f"left by a killed writer ({age / 3600:.1f} h old)", "delete")
        else:
            yield Finding(rel, "temporary file", f"{age:.0f} s old: a run may be writing it "
                          f"(deleted once older than tmp_age_s={tmp_age_s:.0f})", "note")


def _record_ids(results: Path) -> list[str]:
    """Run ids of the readable records, in ``load_records`` order (without its warnings:
    ``check_records`` reports the others)."""
    records = []
    for path in _files(results / "records", "*.json"):
        try:
            records.append(read_record(path))
        except (RecordError, OSError):
            continue
    records.sort(key=lambda r: (r.get("created_at", ""), r.get("run_id", "")))
    return [r["run_id"] for r in records]


def check_tables(results: Path) -> Iterator[Finding]:
    for path in _files(results / "tables", "*"):
        if path.suffix not in (".md", ".csv", ".tex", ".html"):
            continue
        try:
            ok = bool(path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            ok = False
        if not ok:
            yield Finding(_rel(path, results), "table", "empty or not text", "quarantine")
        elif path.name == "runs.csv":
            import pandas as pd

            try:
                listed = list(pd.read_csv(path)["run_id"])
            except Exception:  # noqa: BLE001  pandas raises many types for a damaged file
                listed = None
            if listed != _record_ids(results):
                yield Finding(_rel(path, results), "table", "does not list the records", "rebuild")


def check_recovery(results: Path) -> Iterator[Finding]:
    """Damaged recovery checkpoints (``cache/recovery/``): quarantined by ``fix``, so the next
    run resumes from the newest complete one."""
    from evalsuite.recovery.doctor import recovery_problems  # here: keeps doctor's start light

    for rel, problem in recovery_problems(results):
        yield Finding(rel, "recovery checkpoint", problem, "quarantine")


def check_folder(results: str | os.PathLike, tmp_age_s: float = DEFAULT_TMP_AGE_S,
                 now: float | None = None) -> list[Finding]:
    """Every finding in ``results`` (read only)."""
    results, now = Path(results), time.time() if now is None else now
    checks: list[Callable[[], Iterator[Finding]]] = [
        lambda: check_records(results), lambda: check_samples(results),
        lambda: check_caches(results), lambda: check_claims(results, now),
        lambda: check_temp_files(results, now, tmp_age_s), lambda: check_tables(results),
        lambda: check_recovery(results)]
    return [f for check in checks for f in check()]


def quarantine(results: Path, rel: str) -> Path:
    """Move ``results/rel`` to ``results/quarantine/rel`` (a free name; never overwrites)."""
    target = results / QUARANTINE / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.name}.{n}")
    os.rename(results / rel, candidate)
    return candidate


def fix(results: str | os.PathLike, findings: list[Finding]) -> None:
    """Quarantine, delete (stale temporary files only) or rebuild what ``findings`` name."""
    from evalsuite.results.tables import write_tables

    results = Path(results)
    seen: set[str] = set()
    for f in findings:
        if f.action not in ("quarantine", "delete") or f.path in seen:
            continue
        seen.add(f.path)
        try:
            if (results / f.path).exists():
                if f.action == "quarantine":
                    quarantine(results, f.path)
                else:
                    (results / f.path).unlink()
            f.done = True
        except OSError as e:  # e.g. a read-only folder: reported, the rest still fixed
            f.problem += f" (could not {f.action} it: {e.strerror or e})"
    for f in findings:  # a file listed twice (a manifest and its folder) was handled once
        f.done = f.done or (f.action in ("quarantine", "delete") and f.path in seen
                            and not (results / f.path).exists())
    if any(f.kind in ("record", "table") for f in findings):
        write_tables(results)  # tables list what the records now are
        for f in findings:
            f.done = f.done or f.action == "rebuild"


def summary(results: Path) -> str:
    """What there is to check: counts of records, sample images, cache files and claims."""
    cache = results / "cache"
    counts = {"records": len(list(_files(results / "records", "*.json"))),
              "sample images": sum(len(list(_files(d, "*.png"))) for d in _store_folders(results)),
              "cache files": (cache / "sha256.json").is_file()
              + sum(len(list(_files(cache / d, "*"))) for d in (*SEALED_CACHES, "features")),
              "merge claims": len(list(_files(cache / "merges", "*.json")))}
    return ", ".join(f"{n} {what}" for what, n in counts.items())


def _store_folders(results: Path) -> list[Path]:
    """Every sample store folder: generated samples and a decoder's reconstructions."""
    roots = [results / name for name in STORES]
    return [p for root in roots if root.is_dir() for p in sorted(root.iterdir()) if p.is_dir()]


def render(results: Path, findings: list[Finding], fixed: bool) -> str:
    """The readable report: what was checked, one line per finding, then the verdict."""
    lines = [f"evalsuite doctor: {results}", f"  checked {summary(results)}"]
    verbs = {"quarantine": "QUARANTINED" if fixed else "BROKEN", "delete": "DELETED" if fixed
             else "STALE", "rebuild": "REBUILT" if fixed else "STALE", "note": "note"}
    for f in findings:
        lines.append(f"  {verbs[f.action]:<12} {f.kind}: {f.path}: {f.problem}")
    left = [f for f in findings if f.is_problem]
    done = [f for f in findings if f.done]
    if not left:
        repaired = f" ({len(done)} repaired; see {QUARANTINE}/)" if done else ""
        lines.append(f"result: clean{repaired}")
    else:
        lines.append(f"result: {len(left)} problem(s); `evalsuite doctor fix=true` moves broken "
                     f"files to {results / QUARANTINE} and deletes stale temporary files")
    return "\n".join(lines) + "\n"


def _rel(path: Path, results: Path) -> str:
    return path.relative_to(results).as_posix()
