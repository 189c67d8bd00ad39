"""The ``evalsuite`` command as a user runs it: subprocesses, network blocked.

Bad input must produce one clear paragraph, a non-zero exit status and no change on disk.
A run killed with SIGKILL must resume to exactly the images and metrics of an uninterrupted
run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from conftest import FAST, run_cli


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def _bad_cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "empty.txt").write_text("\n \n")
    (tmp / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    (tmp / "notpipe").mkdir()
    (tmp / "notpipe" / "config.json").write_text("{}")
    (tmp / "afile").write_text("x")
    return [
        (["sampler.stepz=3"], "stepz"),
        (["sampler.steps=abc"], "steps"),
        (["model=pretrained", f"model.path={tmp}/nothing-here"], "does not exist"),
        (["model=pretrained", f"model.path={tmp}/notpipe"], "not a diffusers pipeline folder"),
        (["dataset=text", f"dataset.path={tmp}/empty.txt"], "empty"),
        (["dataset=text", f"dataset.path={tmp}/binary.txt"], "UTF-8"),
        ([f"paths.results_dir={tmp}/afile/results"], "not writable"),
        (["sampler.scheduler=nope"], "sampler.scheduler"),
        (["ablation=[no_sa_highres]", "ablation.no_sa_highres.levels=[16]"], "level 16 does not exist"),
        (["ablation=[ffn_ratio]", "ablation.ffn_ratio.ratio=0"], "ffn_ratio"),
    ]


def test_bad_inputs_fail_clearly_and_change_nothing(tmp_path):
    cases = _bad_cases(tmp_path)
    before = _snapshot(tmp_path)
    for args, expected in cases:
        proc = run_cli(["run", *args], cwd=tmp_path)
        assert proc.returncode != 0, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        assert _snapshot(tmp_path) == before, f"{args} changed files on disk"


def test_help_lists_subcommands(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path)
    assert proc.returncode == 0 and "run" in proc.stderr


def _pngs(results: Path) -> dict[str, bytes]:
    """The stored samples; a kill mid-write leaves a ``.tmp-*.png`` (pathlib's glob matches
    dotfiles), which is not a sample."""
    return {p.name: p.read_bytes() for p in sorted((results / "samples").glob("*/*.png"))
            if not p.name.startswith(".")}


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["run", "dataset.limit=8", "sampler.steps=3", "sampler.batch_size=2", "metrics=pixel",
            "world=tiny"]  # the killed process is started without run_cli: name the world
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    ref_dir.mkdir(), killed_dir.mkdir()
    ref = run_cli(args, cwd=ref_dir)
    assert ref.returncode == 0, ref.stderr[-3000:]

    code = ("import sys; sys.path.insert(0, %r); import nonet; from evalsuite.cli import main; "
            "sys.argv = ['evalsuite'] + sys.argv[1:]; main()" % str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=killed_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(_pngs(killed_dir / "results")) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _pngs(killed_dir / "results")
    assert 2 <= len(partial) < 8, "the run must be killed part-way"
    assert not list((killed_dir / "results").glob("records/*.json"))
    # a PNG counts once its identity record is written (a kill may fall in between)
    done = [p for p in (killed_dir / "results").glob("samples/*/identity/*.json")
            if not p.name.startswith(".")]  # not a ".tmp-*.json" write the kill cut short

    resumed = run_cli(args, cwd=killed_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{8 - len(done)} of 8 images to generate" in resumed.stderr
    assert _pngs(killed_dir / "results") == _pngs(ref_dir / "results")
    rec_ref = json.loads(next((ref_dir / "results" / "records").glob("*.json")).read_text())
    rec_res = json.loads(next((killed_dir / "results" / "records").glob("*.json")).read_text())
    assert rec_res["metrics"] == rec_ref["metrics"]
    assert rec_res["samples"]["manifest_sha256"] == rec_ref["samples"]["manifest_sha256"]


def test_profile_sd15_without_weights(tmp_path):
    proc = run_cli(["profile", "model=sd15"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| sd15 | 859,520,964 | 803.27 |" in proc.stdout
    assert "attention score" in proc.stdout  # the output says what is counted
    saved = list((tmp_path / "results" / "profiles").glob("sd15-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["profile"]["unet_params"] == 859_520_964


def test_a_fully_cached_rerun_does_not_load_torch(tmp_path):
    """Everything is in place on the second run: it reads no model and computes no metric,
    so it need not pay torch's import (1.4 s) nor scipy.stats' (1.1 s; skimage.metrics)."""
    args = ["run", "world=tiny", "dataset.limit=2", "sampler.steps=1", "metrics=pixel"]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    code = ("import sys; sys.path.insert(0, %r); import nonet; from evalsuite.cli import main; "
            "sys.argv = ['evalsuite'] + sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n    print('loaded:', 'torch' in sys.modules, 'scipy.stats' in sys.modules)"
            % str(Path(__file__).parents[1]))
    second = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 of 2 images to generate" in second.stderr
    assert "loaded: False False" in second.stdout  # neither torch nor scipy.stats (via skimage)
