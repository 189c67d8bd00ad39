"""The merge claim: with several shards, exactly one computes the metrics and writes the record.

The shard that completes the set claims ``cache/merges/<name>.json``, which records who holds
it (pid, host, time, a random token) and for how long (the lease). A claim blocks other
shards while its holder can still be working; it is taken over when

- the lease has expired (any host), or
- the holder's pid is gone on this host (a killed shard), or it is this very process (an
  earlier attempt here raised);

and never when it is marked done (the record exists). A record carries its claim's token in
``merge_claim``, so a holder killed after writing its record but before marking the claim
done is recognised by the next claimant: the record is not written twice. Check and takeover
happen under an advisory lock, so two retries cannot both take one stale claim.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.io import atomic_write_text, file_lock

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 24 * 3600.0


@dataclass
class Claim:
    """A claim this process holds (``path``), identified in its record by ``token``."""

    path: Path
    token: str

    def done(self, record_path: Path) -> None:
        """Mark the claim done: the record is written, later claimants stop here."""
        body = {**_read(self.path), "done": True, "record": record_path.name}
        atomic_write_text(self.path, json.dumps(body, indent=1, sort_keys=True))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: treated as an expired claim
    return data if isinstance(data, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def why_stale(claim: dict[str, Any], now: float) -> str | None:
    """Why ``claim`` may be taken over (None: its holder may still be working)."""
    if not claim or not isinstance(claim.get("time"), (int, float)):
        return "the claim file is unreadable or from an older evalsuite"
    lease = float(claim.get("lease_s") or DEFAULT_LEASE_S)
    if now - claim["time"] > lease:
        return f"its lease of {lease:.0f} s expired"
    if claim.get("host") == socket.gethostname():
        pid = claim.get("pid")
        if pid == os.getpid():
            return "an earlier attempt in this process did not finish"
        if not isinstance(pid, int) or not _pid_alive(pid):
            return f"its process {pid} on this host is gone"
    return None


def _recorded(records: Path, token: str) -> Path | None:
    """The record written under the claim ``token``, if any."""
    for path in sorted(records.glob("*.json")) if records.is_dir() else []:
        if path.name.startswith("."):
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("merge_claim") == token:
            return path
    return None


def claim_merge(marker: Path, records: Path, shard_index: int,
                lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
    """Claim the merge of a sharded run; None if another shard holds (or finished) it."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(marker.with_suffix(".lock")):
        if marker.exists():
            old = _read(marker)
            if old.get("done"):
                log.info("the metrics of this run were computed already (record %s)",
                         old.get("record"))
                return None
            why = why_stale(old, time.time())
            if why is None:
                log.info("another shard (%s on %s, pid %s) is computing the metrics of this "
                         "run", old.get("shard"), old.get("host"), old.get("pid"))
                return None
            written = _recorded(records, str(old.get("token")))
            if written is not None:
                atomic_write_text(marker, json.dumps({**old, "done": True, "record": written.name}))
                log.info("the metrics of this run were computed already (record %s)", written.name)
                return None
            log.warning("taking over the merge claim of shard %s: %s", old.get("shard"), why)
        token = secrets.token_hex(8)
        body = {"shard": shard_index, "pid": os.getpid(), "host": socket.gethostname(),
                "time": time.time(), "lease_s": lease_s, "token": token, "done": False}
        atomic_write_text(marker, json.dumps(body, indent=1, sort_keys=True))
    return Claim(marker, token)
