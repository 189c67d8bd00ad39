"""Pieces of decoder evaluation: VAE folders and their checks, latents, non-finite values in
records, and the runs table / report with decoder records next to generation records."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import CONF_DIR
from evalsuite.errors import EvalsuiteError
from evalsuite.results.record import encode_nonfinite, restore_nonfinite, write_record
from evalsuite.results.store import reconstruction_label
from evalsuite.results.tables import runs_table, write_tables
from results_factory import make_record


class _TinyModel:
    """What ``resolve_vae`` reads of a ``ModelSource``: no folder (the in-memory tiny model)."""

    path = None


def _save_vae(folder, seed=0, **changes):
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.models.tiny import TINY_VAE_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(**{**TINY_VAE_CONFIG, **changes})
    vae.save_pretrained(folder)
    return vae


# -- non-finite values in records ---------------------------------------------------------------

def test_nonfinite_values_become_strict_json_and_come_back():
    rec = {"metrics": {"psnr/x": {"value": math.inf, "n": 3, "settings": {"low": -math.inf}},
                       "ssim/x": {"value": 1.0}},
           "list": [1.0, math.nan], "nested": [{"v": math.nan}]}
    enc = encode_nonfinite(rec)
    text = json.dumps(enc, allow_nan=False)  # would raise on inf / nan
    assert enc["metrics"]["psnr/x"] == {"value": None, "value_nonfinite": "inf", "n": 3,
                                        "settings": {"low": None, "low_nonfinite": "-inf"}}
    back = restore_nonfinite(json.loads(text))
    assert back["metrics"]["psnr/x"]["value"] == math.inf
    assert back["metrics"]["psnr/x"]["settings"] == {"low": -math.inf}
    assert math.isnan(back["nested"][0]["v"]) and back["metrics"]["ssim/x"] == {"value": 1.0}
    assert back["list"] == [1.0, None]  # a bare list item has no key to carry the marker
    assert rec["metrics"]["psnr/x"]["value"] == math.inf  # the input is not modified


def test_a_marker_without_a_null_value_is_left_alone():
    data = {"value": 3.0, "value_nonfinite": "inf", "note_nonfinite": "inf"}
    assert restore_nonfinite(data) == data


def _recon_record(i: int, psnr: float, decoder: str = "model", **vae) -> dict:
    return {"schema_version": 1, "run_id": f"20260201T0000{i:02d}-recon{i:03d}-abcdef",
            "created_at": f"2026-02-01T00:00:{i:02d}+00:00", "status": "complete",
            "task": "reconstruction", "name": None, "tags": [], "choices": {"model": "tiny"},
            "config": {"metrics": {"items": {}}},
            "vae": {"encoder": {"path": "model"}, "decoder": {"path": decoder, "decoder_params": 10},
                    "latents": "mode", "seed": None, **vae},
            "reference": {"name": "skimage_photos", "sha256": "a" * 64, "n": 14},
            "reconstructions": {"count": 14},
            "metrics": {"psnr/original": {"value": psnr, "version": "1", "n": 14,
                                          "higher_is_better": True, "settings": {}}},
            "durations": {"total": 1.0}, "provenance": {}}


def test_decoder_labels():
    assert reconstruction_label(_recon_record(1, 20.0)) == "tiny VAE"
    assert reconstruction_label(_recon_record(1, 20.0, "/x/pruned")) == "pruned (encoder tiny VAE)"
    sampled = _recon_record(1, 20.0, latents="sample", seed=3)
    assert reconstruction_label(sampled) == "tiny VAE (sampled latents, seed 3)"
    assert reconstruction_label(make_record(1, {"fid_clean": 1.0})) is None


def test_runs_table_and_report_take_decoder_records_next_to_generation_records(tmp_path):
    from evalsuite.results.report import write_report
    from evalsuite.config.results import ReportSettings, root_settings

    results = tmp_path / "results"
    write_record(results / "records", make_record(1, {"fid_clean": 20.0}))
    for rec in (_recon_record(2, math.inf), _recon_record(3, 17.25, "/x/pruned")):
        write_record(results / "records", rec)
    df = runs_table([make_record(1, {"fid_clean": 20.0})])
    assert "task" not in df.columns  # generation-only tables are unchanged

    write_tables(results)
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert runs["task"].tolist() == ["generate", "reconstruction", "reconstruction"]
    assert runs["decoder"].fillna("-").tolist() == ["-", "tiny VAE", "pruned (encoder tiny VAE)"]
    # (records of two protocols: each metric column carries its protocol key)
    # schema-1 decoder records said psnr/original: they are read under today's name
    psnr = next(c for c in runs.columns if c.startswith("psnr/reconstruction@v1"))
    assert runs[psnr].tolist()[1:] == [math.inf, 17.25]
    assert runs["n_prompts"].tolist()[0] == 32 and math.isnan(runs["n_prompts"].tolist()[1])

    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    page = write_report(results, settings, CONF_DIR).read_text()
    variants = page[page.index('id="table-variants"'):page.index('id="decoders"')]
    assert "tiny" in variants and "psnr" not in variants  # decoders are not text-to-image variants
    decoders = page[page.index('id="table-decoders"'):]
    assert "tiny VAE" in decoders and "pruned (encoder tiny VAE)" in decoders and ">inf<" in decoders
    assert "Images: 14 per variant" in decoders
    md = (results / "tables" / "decoders.md").read_text()
    assert "Δ decoder params" in md or "Δ psnr/reconstruction" in md  # the model's decoder is the baseline


# -- VAE folders ---------------------------------------------------------------------------------

def test_folder_vae_config_identity_and_parameter_counts(tmp_path):
    from evalsuite.models.vae import resolve_vae

    real = _save_vae(tmp_path / "pruned", block_out_channels=(8, 8, 16, 16))
    ref = resolve_vae(str(tmp_path / "pruned"), "vae.decoder", _TinyModel())
    assert ref.latent_channels == 4 and ref.downsampling == 8
    assert ref.decoder_params == sum(p.numel() for p in real.decoder.parameters()) + \
        sum(p.numel() for p in real.post_quant_conv.parameters())
    assert ref.config["scaling_factor"] == pytest.approx(0.18215)  # default filled in
    # the identity is of the files' content, not of where they are
    _save_vae(tmp_path / "copy", block_out_channels=(8, 8, 16, 16))
    other = resolve_vae(str(tmp_path / "copy"), "vae.decoder", _TinyModel())
    assert ref.identity() == other.identity() and len(ref.weights_sha256()) == 64
    _save_vae(tmp_path / "reseeded", seed=1, block_out_channels=(8, 8, 16, 16))
    assert resolve_vae(str(tmp_path / "reseeded"), "vae.decoder", _TinyModel()).identity() \
        != ref.identity()


def test_folder_problems_are_named(tmp_path):
    from evalsuite.models.vae import resolve_vae

    (tmp_path / "file.json").write_text("{}")
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / "config.json").write_text("{not json")
    _save_vae(tmp_path / "no-weights")
    (tmp_path / "no-weights" / "diffusion_pytorch_model.safetensors").unlink()
    cases = {"file.json": "is a file", "bad-json": "is not valid JSON",
             "no-weights": "has a config.json but no weights"}
    for name, message in cases.items():
        with pytest.raises(EvalsuiteError, match=message) as err:
            resolve_vae(str(tmp_path / name), "vae.compare_decoder", _TinyModel())
        assert "vae.compare_decoder" in str(err.value)


def test_model_vae_and_compatibility_checks(tmp_path):
    from evalsuite.models.vae import check_compatible, check_latent_mode, resolve_vae

    model = resolve_vae(None, "vae.encoder", _TinyModel())
    assert model.path is None and model.latent_channels == 4 and model.decoder_params > 0
    assert resolve_vae("model", "vae.compare_decoder", _TinyModel()).config == model.config
    _save_vae(tmp_path / "eight", latent_channels=8)
    eight = resolve_vae(str(tmp_path / "eight"), "vae.decoder", _TinyModel())
    with pytest.raises(EvalsuiteError, match="8-channel latents but vae.encoder encodes to 4"):
        check_compatible(model, [eight])
    check_compatible(model, [model])
    with pytest.raises(EvalsuiteError, match="choose mode"):
        check_latent_mode("mean")


# -- latents ---------------------------------------------------------------------------------------

def test_sampled_latents_depend_on_each_image_seed_not_on_the_batch():
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.models.tiny import TINY_VAE_CONFIG
    from evalsuite.models.vae import encode

    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_VAE_CONFIG).eval()
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    a = encode(vae, images, "sample", [11, 12, 13])
    b = encode(vae, images[::-1].copy(), "sample", [13, 12, 11]).flip(0)
    assert torch.allclose(a, b, atol=1e-5)  # batch order only changes float rounding
    assert not torch.allclose(a, encode(vae, images, "sample", [11, 12, 14]), atol=1e-3)
    mode = encode(vae, images, "mode", None)
    assert torch.equal(mode, encode(vae, images, "mode", None)) and not torch.allclose(a, mode)


def test_latents_pass_between_latent_spaces_as_a_pipeline_would():
    import torch

    from evalsuite.models.vae import VaeRef, to_decoder_latents

    def ref(scale, shift=None):
        return VaeRef("vae.x", None, {"scaling_factor": scale, "shift_factor": shift}, 0, 0)

    z = torch.randn(1, 4, 2, 2)
    assert to_decoder_latents(z, ref(0.18215), ref(0.18215)) is z  # nothing computed
    out = to_decoder_latents(z, ref(0.5, 0.1), ref(0.25))
    assert torch.allclose(out, (z - 0.1) * 0.5 / 0.25)
