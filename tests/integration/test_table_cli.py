"""`evalsuite table` as a user runs it: the BK-SDM paper table with parameter counts
regenerated from the presets (meta device, no weights), and a variants table from records."""

import pandas as pd

from conftest import run_cli
from evalsuite.results.record import write_record
from results_factory import make_record

# The BK-SDM model card's U-Net sizes, exactly (tensor sizes of the released checkpoints).
PUBLISHED = {"Stable Diffusion v1.4": 859_520_964, "BK-SDM-Base": 579_384_964,
             "BK-SDM-Small": 482_346_884, "BK-SDM-Tiny": 323_384_964}


def test_bk_sdm_table_regenerates_the_published_parameter_counts(tmp_path):
    results = tmp_path / "results"
    # BK-SDM-Small measured under BK-SDM's protocol; a demo-prompt run of it must not show up
    small = make_record(1, {"fid_legacy": 17.20, "clip_score": 0.2671}, preset="bk_sdm_small",
                        dataset="coco2014_30k", count=30000, steps=25)
    demo = make_record(2, {"fid_legacy": 99.0}, preset="bk_sdm_small", steps=25)
    for rec in (small, demo):
        write_record(results / "records", rec)
    proc = run_cli(["table", "name=bk_sdm", f"paths.results_dir={results}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "U-Net params (paper) | U-Net params (ours) | U-Net params (ours − paper)" in out
    for label, n in PUBLISHED.items():
        assert f"| {label} | {n:,} | {n:,} | 0 |" in out, label
    assert "| BK-SDM-Small | 482,346,884 | 482,346,884 | 0 | 16.98 | 17.20 | +0.22 | 31.68 | n/a |" in out
    assert "| 0.2677 | 0.2671 | -0.0006 |" in out
    assert "| BK-SDM-Tiny | 323,384,964 | 323,384,964 | 0 | 17.12 | n/m |" in out
    assert small["run_id"] in out and demo["run_id"] not in out
    assert "Paper: B.-K. Kim" in out and "U-Net params as printed: 0.86B (Stable Diffusion v1.4)" in out
    for ext in ("md", "csv", "tex", "html"):
        assert (results / "tables" / f"bk_sdm.{ext}").is_file()
    csv = pd.read_csv(results / "tables" / "bk_sdm.csv", comment="#")
    assert (csv["U-Net params (ours − paper)"] == 0).all()
    assert csv["U-Net params (ours)"].tolist()[:4] == [859520964, 579384964, 579384964, 482346884]


def test_variants_table_from_records_with_extra_filter(tmp_path):
    results = tmp_path / "results"
    for rec in (make_record(1, {"psnr/baseline": 30.0}, guidance=3.0),
                make_record(2, {"psnr/baseline": 20.0}, guidance=7.5),
                make_record(3, {"psnr/baseline": 25.0}, guidance=7.5, ablations=("shared_kv",))):
        write_record(results / "records", rec)
    proc = run_cli(["table", f"paths.results_dir={results}", "+where.sampler.guidance_scale=7.5",
                    "print=csv"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("variant,psnr/baseline,Δ psnr/baseline,Δ% psnr/baseline,UNet params")
    assert lines[1:3] == ["tiny,20.00,,,3000000,,",  # the baseline: never compared with itself
                          "tiny+shared_kv,25.00,5.00,25.0,2900000,-100000,-3.3"]  # CSV: plain numbers
    bad = run_cli(["table", "name=nope", f"paths.results_dir={results}"], tmp_path)
    assert bad.returncode == 2 and "no table definition 'nope'" in bad.stderr and "bk_sdm" in bad.stderr
