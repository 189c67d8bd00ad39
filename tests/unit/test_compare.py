"""The regression gate: verdicts, bootstrap noise, protocol refusal, and the CLI's exit status."""

import pytest

from conftest import run_cli
from evalsuite.results.compare import ProtocolMismatch, compare_records, judge, noise
from evalsuite.results.record import write_record
from results_factory import make_record

TOL = {"default": {"abs": 0.0, "rel": 0.0}, "fid_clean": {"abs": 0.5}, "clip_score": {"rel": 0.01}}


def test_equal_records_pass():
    base = make_record(1, {"fid_clean": 20.0, "clip_score": 0.30, "psnr/baseline": 25.0})
    cand = make_record(2, {"fid_clean": 20.0, "clip_score": 0.30, "psnr/baseline": 25.0})
    cmp = compare_records(base, cand, TOL)
    assert cmp.passed and [v.verdict for v in cmp.verdicts] == ["ok", "ok", "ok"]


def test_direction_and_tolerances():
    # FID is lower-is-better: +0.4 is inside the 0.5 tolerance, +0.6 is a regression
    assert judge("fid_clean", {"value": 20.0, "higher_is_better": False},
                 {"value": 20.4, "higher_is_better": False}, TOL).verdict == "ok"
    v = judge("fid_clean", {"value": 20.0, "higher_is_better": False},
              {"value": 20.6, "higher_is_better": False}, TOL)
    assert v.verdict == "regression" and v.worse_by == pytest.approx(0.6) and v.tolerance == 0.5
    assert judge("fid_clean", {"value": 20.0, "higher_is_better": False},
                 {"value": 19.0, "higher_is_better": False}, TOL).verdict == "better"
    # CLIP score is higher-is-better with a 1% relative tolerance of 0.30 = 0.003
    assert judge("clip_score", {"value": 0.30}, {"value": 0.2975}, TOL).verdict == "ok"
    assert judge("clip_score", {"value": 0.30}, {"value": 0.2960}, TOL).verdict == "regression"
    # psnr/baseline falls back to "psnr", then to "default" (exact)
    assert judge("psnr/baseline", {"value": 25.0}, {"value": 24.99}, TOL).verdict == "regression"
    assert judge("psnr/baseline", {"value": 25.0}, {"value": 24.99},
                 {**TOL, "psnr": {"abs": 0.1}}).verdict == "ok"


def test_bootstrap_noise_separates_noise_from_regression():
    base = {"value": 20.0, "higher_is_better": False, "ci": {"low": 19.0, "high": 21.0, "level": 0.95}}
    # each interval has half-width 1.0: the difference's half-width is sqrt(2) = 1.414
    near = {**base, "value": 21.2, "ci": {"low": 20.2, "high": 22.2, "level": 0.95}}
    far = {**base, "value": 22.5, "ci": {"low": 21.5, "high": 23.5, "level": 0.95}}
    assert noise(base, near) == pytest.approx(2 ** 0.5)
    v = judge("fid_clean", base, near, TOL)  # 1.2 worse: beyond 0.5, inside 0.5 + 1.414
    assert v.verdict == "within noise"
    assert judge("fid_clean", base, far, TOL).verdict == "regression"  # 2.5 > 0.5 + 1.414
    assert judge("fid_clean", {k: v for k, v in base.items() if k != "ci"},
                 {k: v for k, v in near.items() if k != "ci"}, TOL).verdict == "regression"


def test_missing_metric_fails_new_metric_does_not():
    base = make_record(1, {"fid_clean": 20.0, "clip_score": 0.3})
    cand = make_record(2, {"fid_clean": 20.0, "cmmd": 0.1})
    cmp = compare_records(base, cand, TOL)
    verdicts = {v.metric: v.verdict for v in cmp.verdicts}
    assert verdicts == {"clip_score": "missing", "cmmd": "new", "fid_clean": "ok"}
    assert not cmp.passed
    assert compare_records(base, cand, TOL, fail_on_missing=False).passed


def test_different_protocols_are_refused_naming_the_fields():
    base = make_record(1, {"fid_clean": 20.0})
    with pytest.raises(ProtocolMismatch, match=r"dataset\.count \(32 vs 6\).*dataset\.sha256"):
        compare_records(base, make_record(2, {"fid_clean": 20.0}, count=6), TOL)
    with pytest.raises(ProtocolMismatch, match=r"fid_clean.*version \(1 vs 2\)"):
        compare_records(base, make_record(2, {"fid_clean": {"value": 20.0, "version": "2"}}), TOL)


def _store(tmp_path, *records):
    for rec in records:
        write_record(tmp_path / "results" / "records", rec)
    return [f"paths.results_dir={tmp_path / 'results'}"]


def test_cli_exit_status_gates_ci(tmp_path):
    base = make_record(1, {"fid_clean": {"value": 20.0, "ci": (19.0, 21.0)}, "clip_score": 0.30})
    same = make_record(2, {"fid_clean": {"value": 20.0, "ci": (19.0, 21.0)}, "clip_score": 0.30},
                       ablations=("shared_kv",))
    noisy = make_record(3, {"fid_clean": {"value": 21.2, "ci": (20.2, 22.2)}, "clip_score": 0.30},
                        ablations=("ffn_ratio",))
    worse = make_record(4, {"fid_clean": {"value": 23.0, "ci": (22.0, 24.0)}, "clip_score": 0.30},
                        ablations=("relu_attention",))
    other = make_record(5, {"fid_clean": 20.0}, count=6)
    args = _store(tmp_path, base, same, noisy, worse, other)

    ok = run_cli(["compare", f"baseline={base['run_id']}", f"candidate={same['run_id']}", *args], tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "| fid_clean  | 20         | 20          | +0         | ±1.41   | 0.25        | ok" in ok.stdout
    assert "PASS: no regression" in ok.stdout

    inside = run_cli(["compare", f"baseline={base['run_id']}", "candidate={ablations:ffn_ratio}", *args], tmp_path)
    assert inside.returncode == 0 and "within noise" in inside.stdout, inside.stdout + inside.stderr[-2000:]

    bad = run_cli(["compare", f"baseline={base['run_id'][:20]}", f"candidate={worse['run_id']}", *args], tmp_path)
    assert bad.returncode == 1 and "FAIL: fid_clean (regression)" in bad.stdout, bad.stdout

    refused = run_cli(["compare", f"baseline={base['run_id']}", "candidate=latest", *args], tmp_path)
    assert refused.returncode == 2 and "different protocols" in refused.stderr
    assert "dataset.count (32 vs 6)" in refused.stderr and "Traceback" not in refused.stderr
