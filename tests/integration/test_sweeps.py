"""Study sweeps (ablations/*.yaml): every cell composes and builds; studies run end to end.

As in lightning-hydra-template's sweep tests, the studies run with the real launchers on the
tiny model with tiny settings, and every cell must leave exactly one record.
"""


import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from conftest import CONF_DIR, ROOT, read_records, run_cli
from evalsuite.config import register_configs
from evalsuite.io import JsonCache
from evalsuite.models.sources import ModelSource
from evalsuite.run import architecture_facts, build_ablations

STUDIES_DIR = ROOT / "ablations"
STUDIES = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))
TINY = ["dataset.limit=2", "sampler.steps=1", "sampler.batch_size=2", "metrics=pixel"]


def compose_study(study: str, overrides: list[str]):
    """The study's config with ``overrides`` (conf/ on the search path, as the CLI does)."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(STUDIES_DIR), version_base="1.3"):
        return compose(study, overrides=[f"hydra.searchpath=[file://{CONF_DIR}]", "world=tiny", *overrides],
                       return_hydra_config=True)


def cells(study: str) -> list[list[str]]:
    """Every cell of a study's sweep, as a list of overrides."""
    params = compose_study(study, []).hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    out: list[list[str]] = [[]]
    for ov in parsed:
        out = [c + [f"{ov.key_or_group}={v}"] for c in out for v in ov.sweep_string_iterator()]
    return out


@pytest.mark.parametrize("study", STUDIES)
def test_every_cell_of_every_study_composes_and_builds(study):
    all_cells = cells(study)
    assert len(all_cells) >= 4
    for cell in all_cells:
        cfg = compose_study(study, cell)
        assert cfg.tags == [f"study={study}"]
        specs = build_ablations(cfg.ablation)  # ablations valid on the tiny UNet, in order
        facts = architecture_facts(ModelSource("tiny", arch="tiny", resolution=64), specs,
                                   JsonCache(None), "unused")
        assert facts["unet_params"] > 0


def _check_study_output(tmp_path, study: str, n_cells: int) -> list[dict]:
    records = read_records(tmp_path / "results")
    assert len(records) == n_cells
    assert all(r["tags"] == [f"study={study}"] for r in records)
    table = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert sorted(table["run_id"]) == sorted(r["run_id"] for r in records)
    return records


def test_mobilediffusion_study_runs_locally_one_record_per_cell(tmp_path):
    proc = run_cli(["run", "-m", "-cn", "mobilediffusion", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = _check_study_output(tmp_path, "mobilediffusion", len(cells("mobilediffusion")))
    # nothing outside paths.results_dir; in it, Hydra's multirun.yaml but no empty job folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert [p.name for p in (tmp_path / "results" / "multirun").iterdir()] == ["multirun.yaml"]
    # the report is written once, when the sweep ends, and shows every cell
    assert (proc.stdout + proc.stderr).count("updated report") == 1, proc.stderr[-3000:]
    page = (tmp_path / "results" / "report.html").read_text()
    assert all(r["run_id"] in page for r in records)
    by_cell = {r["choices"]["ablation"]: r for r in records}
    base = by_cell["[]"]
    for r in records:
        if r is not base:  # every variant is compared with the same baseline samples
            assert r["baseline_samples"] == base["samples"]["dir"]
            assert "psnr/baseline" in r["metrics"]
    combined = by_cell["[preset_mobilediffusion_like]"]
    assert len(combined["model"]["ablations"]) == 9
    assert combined["model"]["unet_params"] < base["model"]["unet_params"]


def test_bk_sdm_study_runs_as_parallel_local_jobs(tmp_path):
    proc = run_cli(["run", "-m", "-cn", "bk_sdm", "launcher=local_parallel", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = _check_study_output(tmp_path, "bk_sdm", 4)
    params = {r["choices"]["ablation"]: r["model"]["unet_params"] for r in records}
    assert params["[]"] > params["[preset_bk_sdm_base]"] > params["[preset_bk_sdm_small]"] \
        > params["[preset_bk_sdm_tiny]"]
    assert all(r["config"]["threads"] == 1 for r in records)


@pytest.mark.slow
def test_mobilediffusion_study_runs_as_parallel_local_jobs(tmp_path):
    proc = run_cli(["run", "-m", "-cn", "mobilediffusion", "launcher=local_parallel", *TINY],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_study_output(tmp_path, "mobilediffusion", len(cells("mobilediffusion")))


def test_cells_with_their_own_results_folder_write_their_own_report(tmp_path):
    proc = run_cli(["run", "-m", "paths.results_dir=ra,rb", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ("ra", "rb"):
        page = (tmp_path / folder / "report.html").read_text()
        (record,) = read_records(tmp_path / folder)
        assert record["run_id"] in page
