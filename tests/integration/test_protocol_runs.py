"""Protocols in real runs: the record names its protocol, a modified preset says so, and a CFG
sweep yields records that differ only in the scale and share one reference-statistics pass."""

import json
import re

import pandas as pd

from conftest import read_records, run_cli
from evalsuite.results.protocol import flatten, protocol_of
from evalsuite.run import run
from fixtures import write_coco


def test_a_modified_preset_is_recorded_as_such_and_kept_apart(compose, tmp_path):
    write_coco(tmp_path / "coco", n_images=6)
    overrides = ["protocol=snapfusion_coco2k_search", f"paths.coco_dir={tmp_path}/coco",
                 "dataset.n=3", "sampler.steps=1", "sampler.batch_size=3", "metrics=pixel",
                 "metrics.paired_with=[]"]
    rec = run(compose(*overrides), overrides=overrides)
    p = rec["protocol"]
    assert (p["name"], p["version"]) == ("snapfusion_coco2k_search", 1)
    # metrics.paired_with is not a field of this protocol (no pairing is); the rest are
    assert p["modified"] == ["dataset.n=3 (protocol: 2000)",
                             "metrics.items.clip_score=absent (protocol: {...})",
                             "metrics.items.psnr={...} (protocol: absent)",
                             "metrics.items.ssim={...} (protocol: absent)",
                             "sampler.steps=1 (protocol: 50)", "model.resolution=64 (protocol: 512)"]
    assert p["fields"]["dataset"]["count"] == 3 and p["fields"]["sampler.steps"] == 1
    assert rec["overrides"] == overrides
    label = protocol_of(rec)
    assert label.name.startswith("snapfusion_coco2k_search (modified: dataset.n=3 (protocol: 2000)")
    assert label.key.endswith("~modified")
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert runs["protocol_name"].tolist() == [label.name]


def test_cfg_sweep_records_differ_only_in_the_scale_and_share_reference_statistics(tmp_path):
    scales = ["1.0", "4.0", "7.5"]
    args = ["run", "-m", "-cn", "cfg_sweep", f"sampler.guidance_scale={','.join(scales)}",
            "dataset.limit=3", "sampler.steps=1", "sampler.batch_size=3", "metrics=fid_legacy",
            "~metrics.items.clip_score", "metrics.items.fid_legacy.dims=64",
            "metrics.allow_random_weights=true", f"paths.results_dir={tmp_path}/results"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = read_records(tmp_path / "results")
    assert sorted(r["sampler"]["guidance_scale"] for r in recs) == [1.0, 4.0, 7.5]

    # the resolved configs differ in the scale and nothing else
    flat = [flatten(r["config"]) for r in recs]
    differing = {k for k in set().union(*flat) if len({json.dumps(f.get(k)) for f in flat}) > 1}
    assert differing == {"sampler.guidance_scale"}
    assert len({r["protocol"]["hash"] for r in recs}) == 1
    assert len({json.dumps(r["reference"], sort_keys=True) for r in recs}) == 1
    assert all("fid_legacy" in r["metrics"] for r in recs)

    # reference statistics: computed by the first cell, reused by the other two
    log = proc.stderr
    assert len(re.findall(r"reference statistics computed: skimage_photos", log)) == 1, log[-3000:]
    assert len(re.findall(r"reference statistics reused: skimage_photos", log)) == 2, log[-3000:]
    reused = [r for r in recs if any(f.startswith("reference:") for f in r["features_from_cache"])]
    assert len(reused) == 2
    sidecars = [json.loads(p.read_text())
                for p in (tmp_path / "results" / "cache" / "features").glob("*.json")]
    assert sum(1 for s in sidecars if s["images"].get("name") == "skimage_photos") == 1


def test_bk_sdm_protocol_squashes_samples_and_uses_the_whole_split_as_reference(compose, tmp_path):
    """BK-SDM's pipeline on a COCO fixture: 3 prompts of 6 images, FID on samples squashed to
    256 against all 6 split images squashed to 256 (stand-in Inception, 64-d)."""
    write_coco(tmp_path / "coco", n_images=6)
    overrides = ["protocol=bk_sdm_coco30k", f"paths.coco_dir={tmp_path}/coco", "dataset.n=3",
                 "sampler.steps=1", "sampler.batch_size=3", "sampler.dtype=float32",
                 "~metrics.items.clip_score", "metrics.items.fid_legacy.dims=64",
                 "metrics.allow_random_weights=true"]
    rec = run(compose(*overrides), overrides=overrides)
    ref = rec["reference"]
    assert (ref["n"], ref["resolution"], ref["subset"]) == (6, 256, "split")
    assert ref["preprocess"].startswith("squash")
    fid = rec["metrics"]["fid_legacy"]
    assert (fid["n"], fid["settings"]["n_ref"]) == (3, 6)
    resize = fid["settings"]["features"]["eval_resize"]
    assert (resize["mode"], resize["size"]) == ("squash", 256)
    p = rec["protocol"]
    assert p["fields"]["reference"]["sha256"] == ref["sha256"]
    assert "annotations" not in json.dumps(p["fields"])  # locations are not the protocol
    assert p["modified"] == ["dataset.n=3 (protocol: 30000)",
                             "metrics.items.clip_score=absent (protocol: {...})",
                             "metrics.items.fid_legacy.dims=64 (protocol: 2048)",
                             "sampler.dtype=float32 (protocol: float16)",
                             "sampler.steps=1 (protocol: 25)",
                             "model.resolution=64 (protocol: 512)"]
