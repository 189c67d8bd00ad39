"""How many CPU threads torch uses: the ``threads`` setting, else what the machine allows.

torch's own default is the number of cores it sees, which ignores a container's CPU quota:
a job limited to 2 CPUs on a 64-core host would start 64 threads and spend its time waiting
for them (a run on a busy 2-core machine measured the tiny model 30x slower with torch's
default than with one thread). So when ``threads`` is not set, evalsuite uses the smallest of
- the CPUs this process may run on (``os.sched_getaffinity``, e.g. ``taskset`` or a Slurm
  allocation),
- the cgroup CPU quota, rounded up (``/sys/fs/cgroup/cpu.max`` in cgroup v2,
  ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in v1: a Docker ``--cpus`` limit),
and ``OMP_NUM_THREADS`` when it is set (the user's explicit choice wins over the machine's).
The count, and what set it, are kept for the record (``provenance.environment.threads``).

The count is a deterministic function of the machine's limits, never of its current load:
on CPU it is part of the generation key (``evalsuite.samples.identity``), so a load-dependent
default would change which samples a run reuses.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)
_CHOSEN: dict[str, Any] | None = None
# The user's OMP_NUM_THREADS, read once: ``apply_threads`` may set the variable itself, and a
# second run in the same process (a multirun) must not take that for the user's choice.
_USER_OMP = os.environ.get("OMP_NUM_THREADS")


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup CPU quota in CPUs (2.5 = two and a half), or None when unlimited/unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def allowed_threads(affinity: int, quota: float | None, omp: str | None) -> tuple[int, str]:
    """(count, what set it) from the machine's limits (pure: see the module docstring)."""
    if omp is not None and omp.strip().isdigit() and int(omp) > 0:
        return int(omp), "OMP_NUM_THREADS"
    limits = [(max(1, affinity), "CPU affinity")]
    if quota is not None and quota > 0:
        limits.append((max(1, math.ceil(quota)), "cgroup CPU quota"))
    return min(limits)  # on a tie the affinity is named


def machine_threads() -> tuple[int, str]:
    """What this machine allows this process, read from the system."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
    return allowed_threads(affinity, cgroup_quota(), _USER_OMP)


def apply_threads(threads: int | None) -> dict[str, Any]:
    """Set torch's intra-op threads to ``threads`` (None: ``machine_threads()``) and return
    {count, source}. torch is not imported for this (a fully cached re-run never needs it):
    when it is not loaded yet, ``OMP_NUM_THREADS`` is set, which torch reads on import."""
    global _CHOSEN
    count, source = (threads, "threads setting") if threads else machine_threads()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    else:
        os.environ["OMP_NUM_THREADS"] = str(count)
    _CHOSEN = {"count": count, "source": source}
    log.info("torch threads: %d (%s; threads=<n> sets it)", count, source)
    busy = busy_warning(count, _load())
    if busy:
        log.warning(busy)
    return dict(_CHOSEN)


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy_warning(count: int, load: float | None) -> str | None:
    """A warning when other processes already keep the CPUs busy (load average above the
    CPUs this process may use): threads then wait for each other. Only a message: the count
    is never chosen from the load (see the module docstring)."""
    cpus, _ = machine_threads()
    if load is None or count <= 1 or load <= cpus:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cpus} CPUs) and torch uses "
            f"{count} threads, which then wait for each other: threads=1 can be many times "
            "faster here (a tiny-model run measured 122.5 s with torch's default vs 4.2 s). "
            "Samples made with another thread count are other samples (generation key).")


def chosen_threads() -> dict[str, Any] | None:
    """The last ``apply_threads`` decision in this process (None: never applied)."""
    return dict(_CHOSEN) if _CHOSEN else None


def pass_workers() -> int:
    """How many network forwards a scoring pass runs at once: the count ``apply_threads``
    chose (the ``threads`` setting, else what the machine allows), else the machine's."""
    return _CHOSEN["count"] if _CHOSEN else machine_threads()[0]


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` inside the block, restored after
    (nothing is done for ``count`` 0, or when torch is not loaded: then nothing in the block
    runs a network).

    A scoring pass runs one forward per thread with one intra-op thread each
    (``evalsuite.features.workers``): on a small or shared machine, intra-op threads of one
    forward spin waiting for each other (two threads on a busy 2-core machine measured 3.5x
    the CPU time of one for the same Inception forwards)."""
    torch = sys.modules.get("torch")
    if torch is None or count < 1:  # 0: leave it as it is
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
