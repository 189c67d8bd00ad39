"""``evalsuite score`` on image folders: the record, the cache, and every input error."""

import json

import pandas as pd
import pytest

from conftest import CONF_DIR, run_cli
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.features.standins import (photo_crops, register_tiny_clip,
                                         save_clean_fid_standin, save_pytorch_fid_standin,
                                         write_folder)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("assets")
    save_clean_fid_standin(d / "inception-2015-12-05.pt", seed=1)
    save_pytorch_fid_standin(d / "pt_inception-2015-12-05-6726825d.pth", seed=2)
    return d


@pytest.fixture
def folders(tmp_path):
    gen = write_folder(tmp_path / "gen", photo_crops(6, 64, seed=1, noise=30))
    ref = write_folder(tmp_path / "ref", photo_crops(6, 64, seed=2))
    (tmp_path / "prompts.txt").write_text("\n".join(f"photo number {i}" for i in range(6)))
    return gen, ref, tmp_path / "prompts.txt"


def compose_score(tmp_path, *overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("score", [f"paths.results_dir={tmp_path}/results", *overrides])


def full_metrics(weights):
    clip = register_tiny_clip()  # in-process only: a tiny open_clip config
    return [f"assets.dir={weights}", "assets.verify=false", "metrics.allow_random_weights=true",
            f"metrics.items.cmmd.model_name={clip}", "metrics.items.cmmd.pretrained=test",
            f"metrics.items.clip_score.model_name={clip}",
            "metrics.items.clip_score.pretrained=test", "metrics.items.fid_legacy.dims=64",
            "metrics.items.kid_clean.num_subsets=5"]


def test_score_writes_a_record_and_reuses_everything(tmp_path, folders, weights):
    from evalsuite.score import score

    gen, ref, prompts = folders
    cfg = compose_score(tmp_path, f"score.gen_dir={gen}", f"score.ref_dir={ref}",
                        f"score.prompts={prompts}", "score.bootstrap=10", *full_metrics(weights))
    rec = score(cfg, {"metrics": "full"})
    assert set(rec["metrics"]) == {"fid_clean", "fid_legacy", "kid_clean", "cmmd", "clip_score",
                                   "psnr/reference", "ssim/reference", "lpips/reference"}
    fid = rec["metrics"]["fid_clean"]
    assert fid["settings"]["protocol"] == "clean-fid mode=clean" and fid["n"] == 6
    assert fid["settings"]["reliable"] is False  # 6 images, 2048 dims: said in the record
    assert fid["weights"]["verified"] is False and fid["ci"]["n_resamples"] == 10
    assert rec["metrics"]["fid_legacy"]["weights"]["verification"].startswith("stand-in")
    assert rec["weights_verified"] is False and rec["kind"] == "score"
    assert rec["inputs"]["gen"]["n"] == 6 and rec["inputs"]["prompts"]["n"] == 6
    on_disk = json.loads((tmp_path / "results" / "records" / f"{rec['run_id']}.json").read_text())
    assert on_disk["metrics"] == rec["metrics"]

    again = score(cfg, {"metrics": "full"})
    assert sorted(again["metrics_from_cache"]) == sorted(rec["metrics"])
    assert again["metrics"] == rec["metrics"]
    table = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert table["fid_clean@v1"].tolist() == pytest.approx([fid["value"]] * 2)


def test_without_ref_or_prompts_those_metrics_are_skipped_with_reasons(tmp_path, folders, weights):
    from evalsuite.score import score

    gen, _, _ = folders
    rec = score(compose_score(tmp_path, f"score.gen_dir={gen}", *full_metrics(weights)))
    assert rec["metrics"] == {}
    assert "no reference images" in rec["skipped_metrics"]["fid_clean"]
    assert "no prompts" in rec["skipped_metrics"]["clip_score"]
    assert "ref_dir" in rec["skipped_metrics"]["psnr/reference"]


@pytest.mark.parametrize("case, expected", [
    ("truncated", "is unreadable or corrupt"),
    ("sizes", "score.pairs=false"),
    ("one_image", "FID needs at least 2 generated images, got 1"),
    ("missing_asset", "inception-2015-12-05.pt (inception_clean_fid) is missing"),
    ("wrong_sha256", "expected 7be5be79"),
])
def test_bad_inputs_are_one_clear_error(tmp_path, folders, weights, case, expected):
    from evalsuite.score import score

    gen, ref, _ = folders
    over = [f"score.gen_dir={gen}", f"score.ref_dir={ref}", "metrics=fid_clean",
            f"assets.dir={weights}", "assets.verify=false"]
    if case == "truncated":
        data = (gen / "00003.png").read_bytes()
        (gen / "00003.png").write_bytes(data[:len(data) // 2])
        expected = f"{gen / '00003.png'} {expected}"
    elif case == "sizes":
        (ref / "00005.png").unlink()
        over[2] = "metrics=pixel"
    elif case == "one_image":
        one = write_folder(tmp_path / "one", photo_crops(1, 24))
        over[0] = f"score.gen_dir={one}"
    elif case == "missing_asset":
        over[3] = f"assets.dir={tmp_path}/empty"
    elif case == "wrong_sha256":
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "alexnet-owt-7be5be79.pth").write_bytes(b"not alexnet")
        over = over[:2] + ["metrics=default", "~metrics.items.clip_score",
                           f"assets.dir={tmp_path}/bad", "assets.verify=true"]
    with pytest.raises((EvalsuiteError, MissingAssetError)) as e:
        score(compose_score(tmp_path, *over))
    assert expected in str(e.value)
    assert not list((tmp_path / "results").glob("records/*.json"))


def test_cli_reports_a_corrupt_image_as_one_paragraph(tmp_path, folders):
    gen, ref, _ = folders
    (gen / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    proc = run_cli(["score", f"score.gen_dir={gen}", f"score.ref_dir={ref}", "metrics=pixel"],
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(gen / "00002.png") in proc.stderr and "Traceback" not in proc.stderr
    ok = run_cli(["score", f"score.gen_dir={ref}", f"score.ref_dir={ref}", "metrics=pixel"],
                 cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    rec = json.loads(next((tmp_path / "results" / "records").glob("*.json")).read_text())
    assert rec["metrics"]["ssim/reference"]["value"] == pytest.approx(1.0)


def test_rfid_needs_the_images_declared_as_reconstructions(tmp_path, folders, weights):
    """rFID on folders: only when score.reconstructions says gen_dir holds VAE round trips of
    ref_dir; otherwise the same numbers would be an ordinary FID under the name rFID."""
    from evalsuite.score import score

    gen, ref, _ = folders
    base = [f"score.gen_dir={gen}", f"score.ref_dir={ref}", "metrics=reconstruction",
            "~metrics.items.lpips", f"assets.dir={weights}", "assets.verify=false"]
    plain = score(compose_score(tmp_path, *base))
    assert "task=reconstruction" in plain["skipped_metrics"]["rfid_clean"]
    recon = score(compose_score(tmp_path, *base, "score.reconstructions=true"))
    assert recon["metrics"]["rfid_clean"]["n"] == 6
