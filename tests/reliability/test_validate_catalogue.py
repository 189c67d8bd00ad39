"""Issue 15, "validate before any work" and "one-paragraph errors": every case of the
catalogue with its expected outcome. A refused run raises an ``EvalsuiteError`` (the CLI
prints it as one paragraph and exits with status 2) and leaves the results folder exactly as
it was: each case snapshots the folder before and after."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONF_DIR, FAST, run_cli
from evalsuite.assets import fetch
from evalsuite.config.validate import MAX_RESOLUTION, check_device, validate_config
from evalsuite.errors import ConfigError, EvalsuiteError, MissingAssetError
from evalsuite.io import atomic_write_bytes
from evalsuite.run import run
from evalsuite.score import score


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``folder``, by relative path."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def results(tmp_path) -> Path:
    """A results folder that already holds something (a refusal must leave it untouched)."""
    folder = tmp_path / "results"
    (folder / "records").mkdir(parents=True)
    (folder / "records" / "keep.txt").write_text("an earlier run's file\n")
    return folder


def refused(fn, folder: Path, match: str, error: type = EvalsuiteError) -> None:
    """``fn()`` raises ``error`` matching ``match`` and ``folder`` is unchanged."""
    before = snapshot(folder)
    with pytest.raises(error, match=match):
        fn()
    assert snapshot(folder) == before


# --- every setting validated before the first sample -------------------------------------

CONFIG_CASES = [
    (["threads=-1"], r"threads=-1: give a positive number"),
    (["threads=0"], r"threads=0: give a positive number"),
    (["metrics.batch_size=0"], r"metrics.batch_size must be >= 1, got 0"),
    (["metrics.bootstrap=-5"], r"metrics.bootstrap must be >= 0, got -5"),
    (["sampler.batch_size=0"], r"sampler.batch_size must be >= 1, got 0"),
    (["dataset.limit=0"], r"dataset.limit must be >= 1, got 0"),
    (["model.resolution=100000"], r"model.resolution=100000 is above the limit of 2048 .*"
                                  r"limits.max_resolution=100000"),
    (["model.resolution=4096"], r"above the limit of 2048"),
    (["model.resolution=100"], r"model.resolution=100: .*multiples of 8"),
    (["model.resolution=0"], r"model.resolution=0: .*multiples of 8"),
    (["reference.resolution=100000"], r"reference.resolution=100000 is above the limit"),
    (["model.resolution=4096", "limits.max_resolution=2048"], r"above the limit of 2048"),
    (["shard.index=2", "shard.count=2"], r"shard.index=2, shard.count=2: shards are numbered 0 to 1"),
    (["shard.count=0"], r"shard.count must be >= 1, got 0"),
    (["shard.index=-1"], r"shard.index must be >= 0, got -1"),
    (["shard.merge_lease_s=0"], r"shard.merge_lease_s=0.0: .*positive"),
    (["device=foo"], r"device='foo' is not a device evalsuite runs on"),
    (["device=cuda:x"], r"device='cuda:x' is not a device"),
    (["+metrics.items.psnr.device=gpu0"], r"metrics.items.psnr.device='gpu0' is not a device"),
    (["metrics.paired_with=[foo]"], r"foo"),
]


@pytest.mark.parametrize("overrides, match", CONFIG_CASES,
                         ids=[" ".join(o) for o, _ in CONFIG_CASES])
def test_a_bad_setting_is_refused_before_any_work_and_writes_nothing(compose, results,
                                                                     overrides, match):
    cfg = compose(*FAST, *overrides)
    refused(lambda: run(cfg), results, match)


def test_a_device_this_machine_lacks_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"device=cuda: this machine has no cuda device"):
        check_device("cuda", available=lambda kind: 0)
    with pytest.raises(ConfigError, match=r"device=cuda:2: this machine has 2 cuda devices"):
        check_device("cuda:2", available=lambda kind: 2)
    check_device("cuda:1", available=lambda kind: 2)  # present: accepted
    check_device("cpu")


def test_device_cuda_without_a_gpu_writes_nothing(compose, results):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    refused(lambda: run(compose(*FAST, "device=cuda")), results, r"no cuda device")


def test_the_resolution_limit_can_be_raised_for_a_big_gpu(compose):
    assert MAX_RESOLUTION == 2048
    validate_config(compose("model.resolution=2048"))
    validate_config(compose("model.resolution=4096", "limits.max_resolution=4096"))


def test_the_limit_is_not_part_of_the_config_hash(compose):
    from evalsuite.tasks import config_hash

    assert config_hash(compose()) == config_hash(compose("limits.max_resolution=4096"))


# --- damaged model folders: refused before the digest caches or sample folders ---------

@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory) -> Path:
    from diffusers import StableDiffusionPipeline

    from evalsuite.models.tiny import build_tiny_components

    folder = tmp_path_factory.mktemp("model") / "pipe"
    StableDiffusionPipeline(**build_tiny_components(0), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(folder)
    return folder


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "invalid unet/config.json": (lambda p: (p / "unet" / "config.json").write_text('{"_class'),
                                 r"unet/config.json is not valid JSON"),
    "model_index.json a list": (lambda p: (p / "model_index.json").write_text("[]"),
                                r"model_index.json holds a JSON list, not an object"),
    "scheduler config missing": (lambda p: (p / "scheduler" / "scheduler_config.json").unlink(),
                                 r"scheduler/scheduler_config.json is missing"),
    "truncated unet weights": (lambda p: _truncate(p / "unet" / "diffusion_pytorch_model.safetensors"),
                               r"unet/diffusion_pytorch_model.safetensors is \d+ bytes but its "
                               r"header describes \d+ \(truncated"),
    "vae weights missing": (lambda p: (p / "vae" / "diffusion_pytorch_model.safetensors").unlink(),
                            r"vae/ has no weight file"),
    "text encoder not safetensors": (lambda p: (p / "text_encoder" / "model.safetensors")
                                     .write_bytes(b"\x05" * 64),
                                     r"text_encoder/model.safetensors is not a safetensors file"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_model_folder_is_refused_and_writes_nothing(compose, results, tmp_path,
                                                              pipeline_folder, case):
    damage, match = DAMAGE[case]
    folder = tmp_path / "damaged"
    shutil.copytree(pipeline_folder, folder)
    damage(folder)
    cfg = compose(*FAST, "model=pretrained", f"model.path={folder}", "model.resolution=64")
    refused(lambda: run(cfg), results, r"model.path=.* is damaged: " + match)
    assert not (results / "cache").exists() and not (results / "samples").exists()


# --- bad image folders: refused before cache/folders/ is written --------------------------

def _images(folder: Path, n: int = 4, size: int = 32, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png")
    return folder


def _score_cfg(results: Path, *overrides: str):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose("score", overrides=[f"paths.results_dir={results}", "metrics=pixel",
                                                 *overrides])


def _spoil(folder: Path, how: str) -> None:
    target = folder / "00001.png"
    if how == "truncated png":
        _truncate(target)
    elif how == "text named x.png":
        target.write_text("not an image")
    elif how == "folder named x.png":
        target.unlink()
        target.mkdir()
    elif how == "dangling symlink":
        target.unlink()
        target.symlink_to(folder / "gone.png")
    elif how == "smaller image":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(target)


FOLDER_CASES = {"truncated png": r"00001.png is unreadable or corrupt \(a truncated PNG",
                "text named x.png": r"00001.png is unreadable or corrupt \(not an image",
                "folder named x.png": r"00001.png is a folder, not an image file",
                "dangling symlink": r"00001.png is a symbolic link to .*which does not exist",
                "smaller image": r"image '00001' is 16x16 in .* and 32x32 in"}


@pytest.mark.parametrize("how", list(FOLDER_CASES))
@pytest.mark.parametrize("side", ["gen", "ref"])
def test_a_bad_image_folder_is_refused_before_any_cache_is_written(tmp_path, results, how, side):
    gen, ref = _images(tmp_path / "gen"), _images(tmp_path / "ref", seed=1)
    _spoil(gen if side == "gen" else ref, how)
    if how == "smaller image" and side == "ref":
        match = r"image '00001' is 32x32 in .* and 16x16 in"
    else:
        match = FOLDER_CASES[how]
    cfg = _score_cfg(results, f"score.gen_dir={gen}", f"score.ref_dir={ref}")
    refused(lambda: score(cfg), results, match)


def test_images_smaller_than_the_ssim_window_are_refused_before_any_work(tmp_path, results):
    gen, ref = _images(tmp_path / "gen", size=4), _images(tmp_path / "ref", size=4, seed=1)
    cfg = _score_cfg(results, f"score.gen_dir={gen}", f"score.ref_dir={ref}")
    refused(lambda: score(cfg), results, r"ssim: image '00000' is 4x4 pixels, smaller than "
                                         r"SSIM's 11x11 window")


# --- output folders checked up front ---------------------------------------------------------

@pytest.mark.parametrize("sub", ["records", "tables"])
def test_an_output_subfolder_that_is_a_file_is_refused_before_the_work(tmp_path, results, sub):
    shutil.rmtree(results / "records")
    results.mkdir(exist_ok=True)
    (results / sub).write_text("a file where a folder belongs\n")
    gen, ref = _images(tmp_path / "gen"), _images(tmp_path / "ref", seed=1)
    cfg = _score_cfg(results, f"score.gen_dir={gen}", f"score.ref_dir={ref}")
    refused(lambda: score(cfg), results, rf"output folder .*{sub} is not writable .*is not a "
                                         r"folder.*nothing was done")


@pytest.mark.parametrize("sub", ["records", "tables"])
def test_a_read_only_output_subfolder_is_refused_before_the_work(tmp_path, results, monkeypatch,
                                                                 sub):
    (results / sub).mkdir(exist_ok=True)
    gen, ref = _images(tmp_path / "gen"), _images(tmp_path / "ref", seed=1)
    cfg = _score_cfg(results, f"score.gen_dir={gen}", f"score.ref_dir={ref}")
    if os.geteuid() == 0:  # root writes anywhere: let access(2) answer as it would for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: real(p, m) and Path(p).name != sub)
    else:
        os.chmod(results / sub, 0o555)
    refused(lambda: score(cfg), results, rf"output folder .*{sub} is not writable .*denies "
                                         r"writing.*nothing was done")


# --- a full disk ----------------------------------------------------------------------------

def _disk_full(monkeypatch) -> None:
    def fsync(fd: int) -> None:  # where a full disk shows first with delayed allocation
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_is_one_paragraph_and_leaves_no_file(tmp_path, monkeypatch):
    (tmp_path / "old.json").write_text("old")
    _disk_full(monkeypatch)
    with pytest.raises(EvalsuiteError, match=r"no space left on the device holding .* while "
                                             r"writing new.json .*paths.results_dir"):
        atomic_write_bytes(tmp_path / "new.json", b"{}")
    with pytest.raises(EvalsuiteError, match=r"no space left"):
        atomic_write_bytes(tmp_path / "old.json", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]  # no .tmp-*, old kept
    assert (tmp_path / "old.json").read_text() == "old"


def test_a_run_on_a_full_disk_stops_with_one_paragraph(tmp_path, results, monkeypatch):
    gen, ref = _images(tmp_path / "gen"), _images(tmp_path / "ref", seed=1)
    cfg = _score_cfg(results, f"score.gen_dir={gen}", f"score.ref_dir={ref}")
    _disk_full(monkeypatch)
    with pytest.raises(EvalsuiteError, match=r"no space left on the device"):
        score(cfg)
    assert not list(results.rglob(".tmp-*"))
    assert [p.name for p in (results / "records").iterdir()] == ["keep.txt"]


# --- offline asset fetch ----------------------------------------------------------------------

def test_an_offline_fetch_names_the_asset_and_writes_nothing(tmp_path, monkeypatch):
    import socket
    import urllib.request
    from urllib.error import URLError

    def offline(*args, **kwargs):  # what urlopen raises on a machine without DNS
        raise URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))

    folder = tmp_path / "assets"
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(MissingAssetError, match=r"could not download asset lpips_alexnet from "
                                                r"https://.*Name or service not known.*evalsuite "
                                                r"runs offline.*copy it to "):
        fetch("lpips_alexnet", folder)
    assert not folder.exists()


def test_an_unreachable_mirror_names_the_asset_and_writes_nothing(tmp_path):
    folder = tmp_path / "assets"
    with pytest.raises(MissingAssetError, match=r"could not download asset lpips_alexnet from "
                                                r"file://.*evalsuite runs offline"):
        fetch("lpips_alexnet", folder, mirror=f"file://{tmp_path}/no-mirror")
    assert not folder.exists()


# --- the CLI: exit status 2, one paragraph, no traceback ----------------------------------------

def _one_paragraph(proc, match: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr
    line = [s for s in proc.stderr.splitlines() if s.startswith("evalsuite: error:")]
    assert len(line) == 1 and __import__("re").search(match, line[0]), proc.stderr[-2000:]


def test_cli_a_bad_setting_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "results"
    proc = run_cli(["run", f"paths.results_dir={out}", "device=foo", *FAST], cwd=tmp_path)
    _one_paragraph(proc, r"device='foo' is not a device")
    assert not out.exists()


def test_cli_a_missing_mandatory_key_exits_2(tmp_path):
    proc = run_cli(["score", f"paths.results_dir={tmp_path / 'r'}"], cwd=tmp_path)
    _one_paragraph(proc, r"score.gen_dir is required but not set; .*score.gen_dir=<value>")
    assert not (tmp_path / "r").exists()


def test_cli_an_offline_fetch_exits_2(tmp_path):
    proc = run_cli(["assets", "assets.fetch=true", "assets.names=[lpips_alexnet]",
                    f"assets.mirror=file://{tmp_path}/no-mirror",
                    f"paths.assets_dir={tmp_path / 'a'}"], cwd=tmp_path)
    _one_paragraph(proc, r"could not download asset lpips_alexnet .*evalsuite runs offline")


def test_cli_an_invalid_component_config_exits_2_and_writes_nothing(tmp_path, pipeline_folder):
    folder = tmp_path / "damaged"
    shutil.copytree(pipeline_folder, folder)
    (folder / "unet" / "config.json").write_text(json.dumps({"a": 1})[:-1])
    out = tmp_path / "results"
    proc = run_cli(["run", f"paths.results_dir={out}", "model=pretrained",
                    f"model.path={folder}", "model.resolution=64", *FAST], cwd=tmp_path)
    _one_paragraph(proc, r"is damaged: unet/config.json is not valid JSON")
    assert not out.exists()


def test_every_subcommand_reports_a_missing_mandatory_key_as_one_paragraph(capsys):
    from omegaconf import OmegaConf

    from evalsuite.commands import report_errors

    cfg = OmegaConf.create({"stats": {"out_dir": "???"}})
    with pytest.raises(SystemExit) as exit_:
        report_errors(lambda c: c.stats.out_dir)(cfg)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("evalsuite: error: stats.out_dir is required but not set; "
                                       "give it on the command line (stats.out_dir=<value>)\n")


def test_held_writes_are_read_back_written_on_success_and_dropped_on_refusal(tmp_path):
    from evalsuite.io import JsonCache, writes_held

    cache = JsonCache(tmp_path / "cache")
    with writes_held():
        cache.put("k", {"v": 1})
        assert cache.get("k") == {"v": 1}  # later checks in the block see the held value
        assert not (tmp_path / "cache").exists()
    assert JsonCache(tmp_path / "cache").get("k") == {"v": 1}
    with pytest.raises(ConfigError):
        with writes_held():
            cache.put("k", {"v": 2})
            cache.put("other", 3)
            raise ConfigError("refused")
    assert cache.get("k") == {"v": 1} and cache.get("other") is None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k.json"]
