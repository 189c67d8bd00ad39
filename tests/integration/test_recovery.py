"""Recovery by distillation on the tiny model: resume after a stop gives identical weights,
the recovered UNet reloads strictly, bad inputs write nothing, and ``recovery=kd`` runs end to
end into a record (a rerun trains nothing)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from evalsuite.ablations import (DropStages, NoSelfAttention, PruneResblocks, build_ablated_unet,
                                 load_ablated_unet, load_state_dict_strict, recorded_specs)
from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.models.tiny import TINY_UNET_CONFIG, build_tiny_components
from evalsuite.recovery import ImageFolder, Recovery, RecoverySettings, RecoveryStopped
from evalsuite.run import run
from conftest import FAST
from recovery_data import image_folder
from tiny_unet import one_thread  # noqa: F401  (fixture)

TEACHER = {"preset": "tiny", "init_seed": 0}
WEIGHTS = "diffusion_pytorch_model.safetensors"


def _recovery(tmp_path, results: str, specs, **settings) -> Recovery:
    base = dict(steps=4, batch_size=2, checkpoint_every=2, progress=False)
    data = ImageFolder(str(image_folder(tmp_path / "data")))
    return Recovery(RecoverySettings(**{**base, **settings}), data, TEACHER, specs,
                    tmp_path / results, "cpu", 32)


def test_stopped_and_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    specs = [DropStages(1)]
    whole = _recovery(tmp_path, "a", specs, ema_decay=0.9, grad_accumulation=2)
    whole.ensure(lambda: build_tiny_components(0))
    cut = _recovery(tmp_path, "b", specs, ema_decay=0.9, grad_accumulation=2, stop_after=3)
    assert cut.key == whole.key  # stop_after does not change what is trained
    with pytest.raises(RecoveryStopped):
        cut.ensure(lambda: build_tiny_components(0))
    assert [p.name for p in (cut.folder / "checkpoints").iterdir()] == ["step-000002"]
    again = _recovery(tmp_path, "b", specs, ema_decay=0.9, grad_accumulation=2)
    summary = again.ensure(lambda: build_tiny_components(0))
    a = load_file(str(whole.unet_folder / WEIGHTS))
    b = load_file(str(again.unet_folder / WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert summary["weights_sha256"] == whole.summary["weights_sha256"]
    assert summary["loss_curve"] == whole.summary["loss_curve"] and summary["steps"] == 4
    last = {k: v for k, v in load_file(str(whole.folder / "checkpoints/step-000004/ema.safetensors")).items()}
    assert all(torch.equal(a[k], last[k]) for k in last)  # with EMA, the EMA weights are the model
    teacher = build_tiny_components(0)["unet"].state_dict()
    assert any(not torch.equal(a[k], teacher[k]) for k in a if k in teacher)  # it trained


def test_recovered_unet_reloads_strictly_with_its_surgery(tmp_path):
    rec = _recovery(tmp_path, "r", [NoSelfAttention((1, 2)), PruneResblocks((1, 1, 1, 0))], steps=2)
    rec.ensure(lambda: build_tiny_components(0))
    unet = load_ablated_unet(rec.unet_folder)
    saved = load_file(str(rec.unet_folder / WEIGHTS))
    assert unet.state_dict().keys() == saved.keys()
    assert all(torch.equal(unet.state_dict()[k], saved[k]) for k in saved)
    assert [s.name for s in recorded_specs(unet)[1]] == ["no_sa_highres", "prune_resblocks"]
    # the same weights do not fit another ablation list: a strict error, not a silent partial load
    with pytest.raises(ConfigError, match="does not fit"):
        load_state_dict_strict(build_ablated_unet(TINY_UNET_CONFIG, [DropStages(1)]), saved, "x")


def test_mismatched_teacher_and_ablations_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="no ablation"):
        _recovery(tmp_path, "n", [])
    rec = _recovery(tmp_path, "m", [DropStages(4)])  # the tiny UNet has 4 stages
    with pytest.raises(ConfigError, match="drop_stages"):
        rec.ensure(lambda: build_tiny_components(0))
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="mixed_precision"):
        _recovery(tmp_path, "p", [DropStages(1)], mixed_precision="bf16")


def test_run_with_bad_training_data_writes_nothing(compose, tmp_path):
    d = image_folder(tmp_path / "data")
    (d / "im2.png").write_bytes(b"garbage")
    with pytest.raises(EvalsuiteError, match="im2.png"):
        run(compose(*FAST, "ablation=[no_sa_highres]", "recovery=kd", f"recovery.data.path={d}"))
    with pytest.raises(EvalsuiteError, match="recovery.data.path is required"):
        run(compose(*FAST, "ablation=[no_sa_highres]", "recovery=kd"))
    assert not (tmp_path / "results").exists()


def test_recovery_kd_run_end_to_end_then_rerun_trains_nothing(compose, tmp_path):
    d = image_folder(tmp_path / "data")
    args = (*FAST, "ablation=[no_sa_highres]", "recovery=kd", "recovery.steps=3",
            "recovery.batch_size=2", "recovery.checkpoint_every=2", "recovery.progress=false",
            f"recovery.data.path={d}")
    rec = run(compose(*args))
    r = rec["recovery"]
    assert r["trained_this_run"] and r["steps"] == 3 and r["method"] == "kd"
    assert r["data"]["sha256"] == ImageFolder(str(d)).identity()["sha256"] and r["data"]["count"] == 4
    assert r["loss_curve"]["step"] == [1, 2, 3] and len(r["loss_curve"]["feature_kd"]) == 3
    assert r["teacher"]["preset"] == "tiny" and r["teacher"]["init_seed"] == 0
    assert len(r["stages"]["pairs"]) == 9 and r["wall_s"] > 0 and len(r["weights_sha256"]) == 64
    zero_shot = run(compose(*FAST, "ablation=[no_sa_highres]"))
    assert zero_shot["samples"]["generation_key"] != rec["samples"]["generation_key"]
    assert r["zero_shot_generation_key"] == zero_shot["samples"]["generation_key"]
    assert "recovery" not in zero_shot
    again = run(compose(*args))
    assert again["recovery"]["trained_this_run"] is False
    assert again["recovery"]["weights_sha256"] == r["weights_sha256"]
    assert again["samples"]["generated"] == 0 and again["model"]["loaded_this_run"] is False
    assert again["metrics"] == rec["metrics"]


TRAIN_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
import nonet
torch.set_num_threads(1)
from pathlib import Path
from evalsuite.models.tiny import build_tiny_components
from evalsuite.recovery import ImageFolder, Recovery, RecoverySettings
from evalsuite.ablations import PruneResblocks
s = RecoverySettings(steps=8, batch_size=2, checkpoint_every=2, progress=False, ema_decay=0.9)
r = Recovery(s, ImageFolder({data!r}), {teacher!r}, [PruneResblocks((1, 1, 1, 0))], Path({results!r}),
             "cpu", 32)
r.ensure(lambda: build_tiny_components(0))
"""


@pytest.mark.slow
def test_sigkilled_training_resumes_to_identical_weights(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    data = image_folder(tmp_path / "data")
    tests = str(Path(__file__).resolve().parents[1])

    def script(results: Path) -> list[str]:
        code = TRAIN_SCRIPT.format(tests=tests, data=str(data), teacher=TEACHER, results=str(results))
        return [sys.executable, "-c", code]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(script(tmp_path / "whole"), env=env, check=True, timeout=600)
    proc = subprocess.Popen(script(tmp_path / "killed"), env=env)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if list((tmp_path / "killed").glob("cache/recovery/*/checkpoints/step-000004")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not list((tmp_path / "killed").glob("cache/recovery/*/final"))
    subprocess.run(script(tmp_path / "killed"), env=env, check=True, timeout=600)
    a = load_file(str(next((tmp_path / "whole").glob("cache/recovery/*/final/unet")) / WEIGHTS))
    b = load_file(str(next((tmp_path / "killed").glob("cache/recovery/*/final/unet")) / WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gradient_checkpointing_trains_the_same_weights_on_cpu(tmp_path):
    plain = _recovery(tmp_path, "plain", [NoSelfAttention((1,))], steps=2)
    plain.ensure(lambda: build_tiny_components(0))
    ckpt = _recovery(tmp_path, "gc", [NoSelfAttention((1,))], steps=2, gradient_checkpointing=True)
    assert ckpt.key != plain.key
    ckpt.ensure(lambda: build_tiny_components(0))
    a = load_file(str(plain.unet_folder / WEIGHTS))
    b = load_file(str(ckpt.unet_folder / WEIGHTS))
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def test_a_run_without_ablations_has_nothing_to_recover(compose, tmp_path):
    d = image_folder(tmp_path / "data")
    rec = run(compose(*FAST, "recovery=kd", f"recovery.data.path={d}"))
    assert "recovery" not in rec and not (tmp_path / "results" / "cache" / "recovery").exists()


class LatentSource:
    """A TrainingData source that yields latents (as a synthetic world can): no VAE needed."""

    def __len__(self) -> int:
        return 3

    def item(self, index: int, resolution: int):
        import numpy as np

        rng = np.random.default_rng(index)
        return rng.standard_normal((4, resolution // 8, resolution // 8)).astype("float32"), f"shape {index}"

    def identity(self) -> dict:
        return {"source": "test_latents", "sha256": "0" * 64}


def test_a_source_of_latents_trains_without_the_vae(tmp_path):
    parts = build_tiny_components(0)
    parts["vae"] = None  # any use of the VAE would fail
    rec = Recovery(RecoverySettings(steps=2, batch_size=2, progress=False), LatentSource(), TEACHER,
                   [NoSelfAttention((1,))], tmp_path / "res", "cpu", 32)
    summary = rec.ensure(lambda: parts)
    assert summary["steps"] == 2 and summary["data"]["source"] == "test_latents"


def test_cached_weights_that_changed_on_disk_are_refused(tmp_path):
    rec = _recovery(tmp_path, "c", [NoSelfAttention((1,))], steps=1)
    rec.ensure(lambda: build_tiny_components(0))
    again = _recovery(tmp_path, "c", [NoSelfAttention((1,))], steps=1)
    again.ensure(lambda: pytest.fail("a cached recovery must not load the teacher"))
    weights = rec.unet_folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(EvalsuiteError, match="do not match"):
        _recovery(tmp_path, "c", [NoSelfAttention((1,))], steps=1).ensure(build_tiny_components)
