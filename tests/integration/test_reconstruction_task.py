"""``evalsuite run task=reconstruction``: decoder evaluation on scikit-image's photographs.

Tiny AutoencoderKL folders with seeded random weights stand in for real VAEs: the model's own
(tiny) VAE encodes, a "pruned" decoder (narrower blocks, same 4 latent channels) is scored,
and folders with 8 latent channels or a missing config must be refused before any write.
"""

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from evalsuite.errors import EvalsuiteError
from evalsuite.run import run
from evalsuite.samples.store import decode_png

RECON = ["task=reconstruction", "vae.batch_size=4"]
PIXEL = [*RECON, "metrics=pixel"]


def _save_vae(folder: Path, seed: int, **changes) -> Path:
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.models.tiny import TINY_VAE_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        AutoencoderKL(**{**TINY_VAE_CONFIG, **changes}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vaes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vaes")
    out = {"full": _save_vae(root / "full", 1),
           "pruned": _save_vae(root / "pruned", 2, block_out_channels=(8, 8, 16, 16)),
           "eight": _save_vae(root / "eight-channels", 3, latent_channels=8),
           "shallow": _save_vae(root / "three-blocks", 4, block_out_channels=(16, 32, 32),
                                down_block_types=("DownEncoderBlock2D",) * 3,
                                up_block_types=("UpDecoderBlock2D",) * 3)}
    no_config = root / "weights-only"
    no_config.mkdir()
    shutil.copy(out["full"] / "diffusion_pytorch_model.safetensors", no_config)
    out["no_config"] = no_config
    unet_like = root / "unet-config"
    unet_like.mkdir()
    (unet_like / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    out["unet_like"] = unet_like
    return out


def _strict_json(path: Path) -> dict:
    """Parse as strict JSON: ``Infinity``/``NaN`` (what json.dumps writes for inf) are refused."""
    def refuse(token: str):
        raise ValueError(f"{path.name} is not strict JSON: it contains {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def _record_file(results: Path, rec: dict) -> Path:
    return results / "records" / f"{rec['run_id']}.json"


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with the sha256 of its bytes ("dir" for folders)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


def _round_trip_reference(pruned: Path, ids: slice) -> np.ndarray:
    """The expected reconstructions, computed with diffusers directly: the tiny model's VAE
    encodes (posterior mean), the pruned decoder decodes; one batch, as the task batches."""
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.data.reference import skimage_photos
    from evalsuite.models.tiny import build_tiny_components

    images = skimage_photos(resolution=64).images[ids]
    enc = build_tiny_components(0)["vae"].eval()
    dec = AutoencoderKL.from_pretrained(pruned, local_files_only=True).eval()
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = dec.decode(enc.encode(x).latent_dist.mode()).sample
    y = (y / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return (y * 255).round().astype(np.uint8)


def test_pruned_decoder_is_scored_on_real_photographs_then_everything_is_reused(compose, tmp_path,
                                                                               vaes):
    from evalsuite.features.standins import save_clean_fid_standin

    save_clean_fid_standin(tmp_path / "assets" / "inception-2015-12-05.pt", seed=1)
    results = tmp_path / "results"
    args = [*RECON, "metrics=reconstruction", "metrics.verify_assets=false",
            "metrics.allow_random_weights=true", f"vae.decoder={vaes['pruned']}"]
    rec = run(compose(*args), {"model": "tiny", "metrics": "reconstruction"})

    assert rec["task"] == "reconstruction" and rec["status"] == "complete"
    for key in ("schema_version", "run_id", "created_at", "choices", "config", "config_hash",
                "protocol", "vae", "reference", "metrics", "durations", "provenance"):
        assert key in rec, key
    assert "dataset" not in rec and "sampler" not in rec and "samples" not in rec
    vae = rec["vae"]
    assert vae["encoder"]["path"] == "model" and vae["decoder"]["path"] == str(vaes["pruned"])
    assert vae["decoder"]["latent_channels"] == vae["encoder"]["latent_channels"] == 4
    assert 0 < vae["decoder"]["decoder_params"] < vae["encoder"]["decoder_params"]
    assert len(vae["decoder"]["weights_sha256"]) == 64 and vae["latents"] == "mode"
    assert rec["reference"]["name"] == "skimage_photos" and rec["reference"]["n"] == 14

    m = rec["metrics"]
    assert m["psnr/reconstruction"]["pairing"] == "reconstruction" and m["psnr/reconstruction"]["n"] == 14
    assert 3 < m["psnr/reconstruction"]["value"] < 40
    assert 0 < m["ssim/reconstruction"]["value"] < 1
    assert 0 < m["lpips/reconstruction"]["value"] < 2
    assert m["lpips/reconstruction"]["weights"]["random_backbone"] is True
    assert m["rfid_clean"]["value"] > 0 and m["rfid_clean"]["n"] == 14
    assert m["rfid_clean"]["weights"]["verified"] is False  # the stand-in Inception file
    assert not any(k.endswith("/compare_decoder") for k in m)  # no compare_decoder set

    # The stored images are exactly diffusers' round trip (first batch of 4).
    store = Path(rec["reconstructions"]["dir"])
    assert rec["reconstructions"]["decoded"] == 14 and vae["loaded_this_run"]
    ids = [e["id"] for e in json.loads((store / "manifest.json").read_text())["images"]]
    assert len(ids) == 14 and sorted(p.stem for p in store.glob("*.png")) == sorted(ids)
    expected = _round_trip_reference(vaes["pruned"], slice(0, 4))
    for k, image_id in enumerate(ids[:4]):
        assert np.array_equal(decode_png(store / f"{image_id}.png"), expected[k]), image_id

    assert _strict_json(_record_file(results, rec))["run_id"] == rec["run_id"]
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert runs["task"].tolist() == ["reconstruction"]
    assert runs["decoder"].tolist() == ["pruned (encoder tiny VAE)"]
    assert runs["psnr/reconstruction@v1"].tolist() == pytest.approx([m["psnr/reconstruction"]["value"]])
    assert "pruned (encoder tiny VAE)" in (results / "tables" / "decoders.md").read_text()
    assert "Decoders" in (results / "report.html").read_text()

    again = run(compose(*args), {"model": "tiny", "metrics": "reconstruction"})
    assert again["reconstructions"]["decoded"] == 0 and again["reconstructions"]["reused"] == 14
    assert again["vae"]["loaded_this_run"] is False  # nothing to decode: no VAE is loaded
    assert sorted(again["metrics_from_cache"]) == sorted(m)
    assert again["metrics"] == m and again["run_id"] != rec["run_id"]
    assert len(pd.read_csv(results / "tables" / "runs.csv")) == 2


def test_same_decoder_twice_gives_inf_psnr_that_record_table_and_report_handle(compose, tmp_path,
                                                                              vaes):
    results = tmp_path / "results"
    rec = run(compose(*RECON, "metrics=default", f"vae.encoder={vaes['full']}",
                      f"vae.decoder={vaes['full']}", f"vae.compare_decoder={vaes['full']}"))
    psnr, ssim = rec["metrics"]["psnr/compare_decoder"], rec["metrics"]["ssim/compare_decoder"]
    assert psnr["value"] == math.inf and psnr["settings"]["n_identical"] == 14
    assert ssim["value"] == pytest.approx(1.0)
    assert math.isfinite(rec["metrics"]["psnr/reconstruction"]["value"])
    # the same decoder on the same latents is one set of images, decoded once
    assert rec["compare_reconstructions"]["key"] == rec["reconstructions"]["key"]
    assert "without prompts" in rec["skipped_metrics"]["clip_score"]
    assert "alexnet-owt-7be5be79.pth" in rec["skipped_metrics"]["lpips/reconstruction"]

    on_disk = _strict_json(_record_file(results, rec))  # valid JSON despite the inf
    assert on_disk["metrics"]["psnr/compare_decoder"]["value"] is None
    assert on_disk["metrics"]["psnr/compare_decoder"]["value_nonfinite"] == "inf"
    from evalsuite.results.record import load_records

    assert load_records(results / "records")[0]["metrics"] == json.loads(json.dumps(rec["metrics"]))
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert runs["psnr/compare_decoder@v1"].tolist() == [math.inf]
    assert re.search(r"\|\s+inf\s+\|", (results / "tables" / "runs.md").read_text())
    decoders = (results / "tables" / "decoders.md").read_text()
    assert "full (encoder" not in decoders and "| full |" in decoders and " inf " in decoders
    assert ">inf<" in (results / "report.html").read_text()

    # The model's own decoder compared with itself: the same, through "model".
    model = run(compose(*PIXEL, "vae.compare_decoder=model"))
    assert model["metrics"]["psnr/compare_decoder"]["value"] == math.inf
    assert model["vae"]["compare_decoder"]["path"] == "model"
    assert model["reconstructions"]["key"] == model["compare_reconstructions"]["key"]


def test_latent_draws_are_seeded_per_image_and_a_resumed_run_stores_the_same_bytes(compose, vaes):
    args = [*PIXEL, f"vae.decoder={vaes['pruned']}", "vae.latents=sample", "vae.seed=3"]
    first = run(compose(*args))
    store = Path(first["reconstructions"]["dir"])
    assert first["vae"]["seed"] == 3 and first["reconstructions"]["decoded"] == 14
    pngs = {p.name: p.read_bytes() for p in store.glob("*.png")}
    lost = sorted(pngs)[5::4]  # in different batches of 4
    for name in lost:
        (store / name).unlink()
    resumed = run(compose(*args))
    assert resumed["reconstructions"]["decoded"] == len(lost)
    assert {p.name: p.read_bytes() for p in store.glob("*.png")} == pngs
    assert resumed["reconstructions"]["manifest_sha256"] == first["reconstructions"]["manifest_sha256"]
    assert resumed["metrics"] == first["metrics"]

    other_seed = run(compose(*args[:-1], "vae.seed=4"))
    mode = run(compose(*PIXEL, f"vae.decoder={vaes['pruned']}"))
    keys = {r["reconstructions"]["key"] for r in (first, other_seed, mode)}
    assert len(keys) == 3
    name = sorted(pngs)[0]
    a, b, c = (decode_png(Path(r["reconstructions"]["dir"]) / name) for r in (first, other_seed, mode))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    # batch size can move a pixel (batched kernels round differently), so it is keyed too
    batch5 = run(compose(*PIXEL, f"vae.decoder={vaes['pruned']}", "vae.batch_size=5"))
    assert batch5["reconstructions"]["key"] != mode["reconstructions"]["key"]
    # the latents decoded are part of the protocol; the decoder and the batch size are not
    hashes = {r["protocol"]["hash"] for r in (first, other_seed, mode)}
    assert len(hashes) == 3 and batch5["protocol"]["hash"] == mode["protocol"]["hash"]
    assert "dataset" not in mode["protocol"]["fields"]
    assert mode["protocol"]["fields"]["vae.latents"] == {"mode": "mode"}
    model_vae = run(compose(*PIXEL))  # another decoder (the model's own), same latents
    assert model_vae["protocol"]["hash"] == mode["protocol"]["hash"]


def test_the_vae_of_a_pipeline_folder_is_loaded_offline_and_matches_the_in_memory_one(compose,
                                                                                    tmp_path):
    from diffusers import StableDiffusionPipeline

    from evalsuite.models.tiny import build_tiny_components

    folder = tmp_path / "tiny-pipeline"
    StableDiffusionPipeline(**build_tiny_components(0), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(folder)
    ours = run(compose(*PIXEL))
    loaded = run(compose(*PIXEL, "model=pretrained", f"model.path={folder}", "model.resolution=64"))
    assert loaded["vae"]["decoder"]["path"] == "model"
    assert loaded["vae"]["decoder"]["weights_sha256"] != ours["vae"]["decoder"]["weights_sha256"]
    a, b = (Path(r["reconstructions"]["dir"]) for r in (ours, loaded))
    assert a != b and len(list(b.glob("*.png"))) == 14
    for p in sorted(a.glob("*.png")):
        assert np.array_equal(decode_png(p), decode_png(b / p.name)), p.name
    assert loaded["metrics"]["psnr/reconstruction"] == ours["metrics"]["psnr/reconstruction"]


BAD_INPUTS = [
    (["vae.decoder={eight}"], "vae.decoder decodes 8-channel latents but vae.encoder encodes to 4"),
    (["vae.compare_decoder={eight}"], "vae.compare_decoder decodes 8-channel latents"),
    (["vae.encoder={eight}", "vae.decoder={pruned}"], "encodes to 8 channels"),
    (["vae.decoder={shallow}"], "upsamples by 4 but vae.encoder downsamples by 8"),
    (["vae.decoder={missing}"], "vae.decoder={missing} does not exist"),
    (["vae.encoder={no_config}"], "has no config.json"),
    (["vae.decoder={unet_like}"], "describes a UNet2DConditionModel, not an AutoencoderKL"),
    (["vae.latents=median"], "vae.latents='median'; choose mode"),
    (["vae.batch_size=0"], "vae.batch_size must be >= 1"),
    (["task=reconstrution"], "task='reconstrution'"),
    (["reference=stats_only", "+reference.stats={{fid_clean:{stats}}}"],
     "reference=stats_only has imported statistics but no images"),
]


def test_bad_inputs_fail_before_anything_is_written(compose, tmp_path, vaes):
    """Each bad input fails with a message naming it, and no file under results/ changes (one
    good run first, so there is something to protect: stores, caches, records, tables)."""
    results = tmp_path / "results"
    run(compose(*PIXEL, f"vae.decoder={vaes['pruned']}"))
    before = _snapshot(results)
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.zeros(4), sigma=np.eye(4))
    paths = {**{k: str(v) for k, v in vaes.items()}, "missing": str(tmp_path / "nope"),
             "stats": str(stats)}
    for overrides, message in BAD_INPUTS:
        overrides = [o.format(**paths) for o in overrides]
        cfg = compose(*PIXEL, *overrides)
        with pytest.raises(EvalsuiteError) as err:
            run(cfg)
        assert message.format(**paths) in str(err.value), (overrides, str(err.value))
        assert _snapshot(results) == before, f"{overrides} changed files under results/"


def test_cli_refuses_mismatched_latent_channels_with_one_message(tmp_path, vaes):
    proc = run_cli(["run", *RECON, f"vae.decoder={vaes['eight']}"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "latent_channels" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_rfid_is_skipped_on_generated_samples(compose):
    """rFID compares reconstructions with their originals; on a generation run's samples the
    same network would give an FID of samples vs. photographs under the name rFID."""
    rec = run(compose("dataset.limit=2", "sampler.steps=1", "metrics=reconstruction",
                      "~metrics.items.lpips", "metrics.allow_random_weights=true"))
    assert "rfid_clean" not in rec["metrics"]
    assert "task=reconstruction" in rec["skipped_metrics"]["rfid_clean"]
    assert "psnr/reconstruction" in rec["metrics"]  # the model's VAE round trip still runs
