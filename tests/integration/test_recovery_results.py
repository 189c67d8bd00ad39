"""Recovery in the results: the recovered record beside its zero-shot counterpart (table,
report, variants), caption dropout, the shapes world's own data, and doctor's check."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from evalsuite.ablations import NoSelfAttention
from evalsuite.doctor import check_folder, fix
from evalsuite.io import sha256_json
from evalsuite.models.tiny import build_tiny_components
from evalsuite.recovery import Recovery, RecoverySettings, ShapesTrainData
from evalsuite.results.identity import variant_of
from evalsuite.results.recovery_section import recovery_table, records_in
from evalsuite.results.report import write_report
from evalsuite.run import run
from conftest import FAST
from recovery_data import image_folder
from tiny_unet import one_thread  # noqa: F401  (fixture)

WEIGHTS = "diffusion_pytorch_model.safetensors"
KD = ("recovery=kd", "recovery.steps=3", "recovery.batch_size=2", "recovery.checkpoint_every=2",
      "recovery.progress=false")


def test_zero_shot_and_recovered_side_by_side(compose, tmp_path):
    d = image_folder(tmp_path / "data")
    results = tmp_path / "results"
    zero = run(compose(*FAST, "ablation=[no_sa_highres]"))
    # every run rewrites the report: without a recovered record it has no recovery section
    assert 'id="recovery"' not in (results / "report.html").read_text()
    assert not (results / "tables" / "recovery.md").exists()
    rec = run(compose(*FAST, "ablation=[no_sa_highres]", *KD, f"recovery.data.path={d}"))
    table = recovery_table(records_in(results))
    assert len(table) == 1
    row = table.iloc[0]
    assert row["zero_shot_run"] == zero["run_id"] and row["recovered_run"] == rec["run_id"]
    assert row["unet_params"] == rec["model"]["unet_params"] == zero["model"]["unet_params"]
    assert row["unet_gflops"] == rec["model"]["unet_gflops"] and row["recovery_steps"] == 3
    for name in rec["metrics"]:
        assert row[f"{name} recovered"] == pytest.approx(rec["metrics"][name]["value"])
        assert row[f"{name} zero-shot"] == pytest.approx(zero["metrics"][name]["value"])
    assert row["recovery_cpu_s"] == rec["recovery"]["cpu_s"] > 0
    assert variant_of(rec).key != variant_of(zero).key and variant_of(rec).label.endswith("[recovered]")
    page = (results / "report.html").read_text()
    assert 'id="recovery"' in page and page.count("<polyline") == 4  # total + three terms
    assert rec["run_id"] in (results / "tables" / "recovery.md").read_text()
    assert write_report(results).read_text() == page  # a function of the records


class Captioned:
    """Four latents with the captions ``texts`` (a source may hold empty captions)."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def item(self, index: int, resolution: int):
        import numpy as np

        z = np.random.default_rng(index).standard_normal((4, resolution // 8, resolution // 8))
        return z.astype("float32"), self.texts[index]

    def identity(self) -> dict:
        return {"source": "test", "sha256": sha256_json(self.texts)}


def _train(tmp_path, name: str, texts: list[str], dropout: float):
    s = RecoverySettings(steps=2, batch_size=2, progress=False, caption_dropout=dropout)
    r = Recovery(s, Captioned(texts), {"preset": "tiny"}, [NoSelfAttention((1,))], tmp_path / name, "cpu", 32)
    r.ensure(lambda: build_tiny_components(0))
    return load_file(str(r.unet_folder / WEIGHTS))


def test_caption_dropout_trains_on_empty_captions(tmp_path):
    texts = [f"a shape number {i}" for i in range(4)]
    dropped = _train(tmp_path, "all", texts, 0.999999)  # every caption dropped
    empty = _train(tmp_path, "empty", [""] * 4, 0.0)
    kept = _train(tmp_path, "kept", texts, 0.0)
    assert all(torch.equal(dropped[k], empty[k]) for k in dropped)
    assert any(not torch.equal(dropped[k], kept[k]) for k in dropped)
    with pytest.raises(Exception, match="caption_dropout"):
        RecoverySettings(caption_dropout=1.0).check("cpu")


def test_doctor_finds_damaged_recovery_checkpoints_and_a_rerun_recovers(tmp_path):
    s = RecoverySettings(steps=2, batch_size=2, checkpoint_every=1, progress=False)
    data = Captioned(["a", "b", "c", "d"])

    def recovery() -> Recovery:
        return Recovery(s, data, {"preset": "tiny"}, [NoSelfAttention((1,))], tmp_path, "cpu", 32)

    first = recovery()
    first.ensure(lambda: build_tiny_components(0))
    assert check_folder(tmp_path) == []
    weights = first.unet_folder / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-4])  # truncated
    step1 = first.folder / "checkpoints" / "step-000001" / "state.pt"
    step1.write_bytes(step1.read_bytes()[:100])
    found = {f.path: f for f in check_folder(tmp_path)}
    assert set(found) == {str((first.folder / "final").relative_to(tmp_path)),
                          str(step1.parent.relative_to(tmp_path))}
    assert all(f.kind == "recovery checkpoint" and f.action == "quarantine" for f in found.values())
    fix(tmp_path, list(found.values()))
    assert check_folder(tmp_path) == [] and not (first.folder / "final").exists()
    again = recovery()  # final/ rebuilt from the last checkpoint: the same weights, no training
    assert again.ensure(lambda: build_tiny_components(0))["weights_sha256"] == first.summary["weights_sha256"]


def test_shapes_world_recovers_without_user_data(compose, tmp_path):
    rec = run(compose("world=shapes", "ablation=[no_sa_highres]", "recovery=kd", "recovery.steps=2",
                      "recovery.batch_size=2", "recovery.data.n=4", "recovery.progress=false",
                      "dataset.n=2", "sampler.steps=2", "metrics=pixel", "metrics.paired_with=[baseline]"))
    r = rec["recovery"]
    assert r["data"]["source"] == "shapes_world" and r["data"]["split"] == "train" and r["steps"] == 2
    assert rec["model"]["preset"] == "shapes" and r["stages"]["pairs"]
    assert r["data"]["sha256"] == ShapesTrainData(n=4).identity()["sha256"]
