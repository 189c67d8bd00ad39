"""The default thread count is what the machine allows: CPU affinity, cgroup quota (v1 and
v2), or the user's OMP_NUM_THREADS; never more than the quota."""

import os
import subprocess
import sys
from pathlib import Path

from evalsuite.threads import allowed_threads, cgroup_quota

ROOT = Path(__file__).resolve().parents[2]


def test_the_smallest_limit_wins_and_omp_num_threads_is_the_users_choice():
    assert allowed_threads(64, 2.0, None) == (2, "cgroup CPU quota")  # docker --cpus=2
    assert allowed_threads(64, 1.5, None) == (2, "cgroup CPU quota")  # rounded up
    assert allowed_threads(4, None, None) == (4, "CPU affinity")
    assert allowed_threads(2, 8.0, None) == (2, "CPU affinity")
    assert allowed_threads(64, 2.0, "3") == (3, "OMP_NUM_THREADS")
    assert allowed_threads(4, None, "zero") == (4, "CPU affinity")  # not a count: ignored
    assert allowed_threads(4, None, "0") == (4, "CPU affinity")


def test_cgroup_quota_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("250000 100000\n")
    assert cgroup_quota(v2) == 2.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path / "v1") == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota(tmp_path / "v1") is None
    assert cgroup_quota(tmp_path / "none") is None


def test_torch_runs_with_the_chosen_count_imported_before_or_after():
    """Set before torch is imported (through OMP_NUM_THREADS) or after (set_num_threads);
    a second run in the process does not take the first one's setting for the user's."""
    code = ("from evalsuite.threads import apply_threads, machine_threads; "
            "print(apply_threads(1)); import torch; print(torch.get_num_threads()); "
            "print(apply_threads(None) == dict(zip(('count', 'source'), machine_threads()))); "
            "print(torch.get_num_threads() == machine_threads()[0])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120).stdout.split("\n")
    assert out[:4] == ["{'count': 1, 'source': 'threads setting'}", "1", "True", "True"]


def test_a_busy_machine_is_named_but_never_changes_the_count():
    from evalsuite.threads import busy_warning, machine_threads

    cpus = machine_threads()[0]
    assert busy_warning(1, 100.0) is None  # one thread has nobody to wait for
    assert busy_warning(2, 0.1) is None
    if cpus >= 2:
        assert "threads=1 can be many times faster" in busy_warning(2, cpus + 5.0)


def test_the_generation_key_names_the_thread_count_the_run_used(compose):
    """threads=2 in a process whose torch runs 1 thread: the samples' key, the record and
    torch all say 2 (the count is set before the key is computed)."""
    import json

    import torch

    from conftest import FAST
    from evalsuite.run import run

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rec = run(compose(*FAST, "dataset.limit=2", "threads=2"))
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    factors = json.loads((Path(rec["samples"]["dir"]) / "generation.json").read_text())
    assert used == 2 and rec["provenance"]["environment"]["torch_threads"] == 2
    assert factors["factors"]["cpu_threads"] == 2
    assert rec["provenance"]["environment"]["threads"] == {"count": 2, "source": "threads setting"}
