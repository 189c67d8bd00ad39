"""Table hygiene: a section per protocol, deltas against the baseline of the same model, no
row compared with itself, unreliable values marked, per-category tables with bootstrap CIs."""

import numpy as np
import pytest

from evalsuite.metrics.bootstrap import mean_ci, resample_counts
from evalsuite.results.categories import category_tables, per_category
from evalsuite.results.render import render
from evalsuite.results.store import ResultStore
from evalsuite.results.tablebuild import build_table, build_tables
from evalsuite.config.tabledef import ColumnDef, TableDef
from results_factory import make_record


def _def(**kw) -> TableDef:
    return TableDef(title="T", columns=[ColumnDef(metric="fid_clean", label="FID", round=2)],
                    baseline={"ablations": "-"}, **kw)


def test_each_model_is_compared_with_its_own_baseline():
    store = ResultStore([
        make_record(1, {"fid_clean": 20.0}),
        make_record(2, {"fid_clean": 25.0}, ablations=("shared_kv",)),
        make_record(3, {"fid_clean": 30.0}, preset="sd15"),
        make_record(4, {"fid_clean": 33.0}, preset="sd15", ablations=("shared_kv",)),
        make_record(5, {"fid_clean": 40.0}, preset="bk_sdm_small", ablations=("ffn_ratio",)),
    ])
    t = build_table(store, _def(), "t")
    assert t.values("variant") == ["tiny", "tiny+shared_kv", "sd15", "sd15+shared_kv",
                                   "bk_sdm_small+ffn_ratio"]
    # bk_sdm_small has a checkpoint of the same sha256 as sd15 in the factory: same model
    assert t.values("Δ FID") == [None, 5.0, None, 3.0, 10.0]
    assert any("baseline row of the same model ('tiny', 'sd15')" in line for line in t.footer)


def test_a_model_without_a_baseline_row_gets_no_delta():
    store = ResultStore([make_record(1, {"fid_clean": 20.0}),
                         make_record(2, {"fid_clean": 25.0}, ablations=("shared_kv",)),
                         make_record(3, {"fid_clean": 1.0}, name="other", preset="sd15",
                                     ablations=("shared_kv",))])
    t = build_table(store, _def(), "t")
    assert t.values("Δ FID") == [None, 5.0, None]


def test_one_variant_has_no_delta_column_at_all():
    t = build_table(ResultStore([make_record(1, {"fid_clean": 20.0})]), _def(), "one")
    assert [c.label for c in t.columns] == ["variant", "FID"]
    assert "Δ" not in render(t, "md").split("\n- ")[0]
    assert any("never compared with itself" in line for line in t.footer)


def test_unreliable_values_carry_a_dagger_and_the_reason():
    rec = make_record(1, {"fid_clean": 20.0})
    rec["metrics"]["fid_clean"]["settings"] = {
        "reliable": False, "unreliable_because": ["32 generated images <= 2048 feature dims"]}
    ok = make_record(2, {"fid_clean": 22.0}, ablations=("shared_kv",))
    t = build_table(ResultStore([rec, ok]), _def(), "dag")
    md = render(t, "md")
    assert "| tiny | 20.00† |" in md and "| tiny+shared_kv | 22.00 | +2.00 |" in md
    assert "- † unreliable fid_clean: 32 generated images <= 2048 feature dims." in md
    assert "20.00†" in render(t, "html") and "20.00" in render(t, "csv")


def test_each_protocol_is_its_own_table_section():
    store = ResultStore([make_record(1, {"fid_clean": 20.0}),
                         make_record(2, {"fid_clean": 25.0}, ablations=("shared_kv",)),
                         make_record(3, {"fid_clean": 30.0}, count=6)])
    tables = build_tables(store, _def(), "abl")
    assert [t.name for t in tables] == ["abl-p1", "abl-p2"]
    assert tables[0].title == "T — P1: demo, 32 prompts, 64 px [" + tables[0].title.split("[")[1]
    assert [c.label for c in tables[0].columns] == ["variant", "FID", "Δ FID", "Δ% FID"]
    assert tables[0].values("FID") == [20.0, 25.0]
    assert [c.label for c in tables[1].columns] == ["variant", "FID"]  # one row: no delta
    assert tables[1].values("FID") == [30.0]
    assert [t.name for t in build_tables(ResultStore(store.records[:2]), _def(), "abl")] == ["abl"]


def _with_categories(rec, metric, values, cats):
    names = sorted(set(cats))
    rec["metrics"][metric]["per_image"] = {
        "n": len(values), "ids_sha256": "0" * 64, "values": values,
        "categories": {"names": names, "of": [names.index(c) for c in cats]}}
    return rec


def test_per_category_table_means_and_bootstrap_intervals():
    cats = ["Animals", "Vehicles", "Animals", "Animals", "Vehicles", "People"]
    base_v = [30.0, 20.0, 32.0, 28.0, 22.0, None]  # None: an identical pair (inf PSNR)
    var_v = [25.0, 15.0, 27.0, 26.0, 18.0, 21.0]
    base = _with_categories(make_record(1, {"psnr/baseline": 26.4}), "psnr/baseline", base_v, cats)
    var = _with_categories(make_record(2, {"psnr/baseline": 22.0}, ablations=("shared_kv",)),
                           "psnr/baseline", var_v, cats)
    plain = make_record(3, {"psnr/baseline": 1.0}, ablations=("ffn_ratio",))  # no per-image values
    [t] = category_tables(ResultStore([base, var, plain]), TableDef(title="Abl"), "abl")
    assert t.name == "abl-categories-psnr-baseline"
    assert t.values("category") == ["Animals", "People", "Vehicles", "all"]
    assert t.values("images") == [3, 1, 2, 6]
    assert [c.label for c in t.columns] == ["category", "images", "tiny", "tiny+shared_kv"]
    animals = t.column("tiny+shared_kv")[0]
    assert animals.value == pytest.approx(26.0)
    # the interval is numpy's percentile of resampled means, as bootstrap.py draws them
    v = np.array([25.0, 27.0, 26.0])
    means = resample_counts(3, 1000, 0) @ v / 3
    assert animals.ci == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert t.column("tiny")[1].mark == "n/m"  # People: only a non-finite value
    assert t.column("tiny")[3].value == pytest.approx(26.4)  # all: the recorded mean
    md = render(t, "md")
    assert "| Animals | 3 |" in md and "bootstrap interval (1000 resamples" in md
    assert plain["run_id"] not in md


def test_mean_ci_and_per_category_split():
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0, np.inf]), 500, seed=1)
    assert mean == 2.0 and 1.0 <= lo <= mean <= hi <= 3.0
    split = per_category({"values": [1.0, None, 3.0], "categories": {"names": ["a", "b"],
                                                                      "of": [0, 1, 0]}})
    assert list(split["a"]) == [1.0, 3.0] and np.isnan(split["b"][0])
    assert per_category({"values": [1.0]}) == {}


def test_the_baseline_has_the_same_sampler_settings():
    store = ResultStore([make_record(1, {"fid_clean": 20.0}, guidance=3.0),
                         make_record(2, {"fid_clean": 18.0}, guidance=7.5),
                         make_record(3, {"fid_clean": 25.0}, guidance=3.0, ablations=("shared_kv",)),
                         make_record(4, {"fid_clean": 21.0}, guidance=7.5, ablations=("shared_kv",))])
    t = build_table(store, _def(), "cfg")
    assert t.values("Δ FID") == [None, None, 5.0, 3.0]


def test_plot_points_that_touch_share_one_label():
    from evalsuite.results.plots import point_labels

    labels = point_labels([(1.0, 10.0), (1.0, 10.01), (2.0, 12.0), (3.0, 10.0)])
    assert [t for t, _ in labels] == ["1,2", "3", "4"]


def test_html_folds_the_protocol_under_a_one_line_summary():
    t = build_table(ResultStore([make_record(1, {"fid_clean": 20.0})]), _def(), "one")
    html = render(t, "html")
    assert "<details><summary>Protocol: demo, 32 prompts, 64 px [" in html
    assert "<details><summary>Records: 1 (ids)</summary>Records (1): " in html
    assert "Protocol: dataset.name=demo" in render(t, "md")  # text formats keep the full line


def test_deltas_are_coloured_by_improvement_not_by_sign():
    """A lower FID is better (green), a lower CLIP score worse (red); counts stay neutral."""
    store = ResultStore([make_record(1, {"fid_clean": 20.0, "clip_score": 0.30}),
                         make_record(2, {"fid_clean": 18.0, "clip_score": 0.28},
                                     ablations=("shared_kv",))])
    tdef = TableDef(title="T", baseline={"ablations": "-"},
                    columns=[ColumnDef(metric="fid_clean", label="FID", round=2),
                             ColumnDef(metric="clip_score", label="CLIP", round=3),
                             ColumnDef(field="model.unet_params", label="params", delta=True)])
    html = render(build_table(store, tdef, "dir"), "html")
    assert '<td class="num better" title="better than the baseline">-2.00</td>' in html
    assert '<td class="num worse" title="worse than the baseline">-0.020</td>' in html
    assert '<td class="num">-100000</td>' in html  # no direction: not coloured
    assert "Δ in <span class=\"better\">green</span>" in html
    one = render(build_table(ResultStore([make_record(1, {"fid_clean": 20.0})]), tdef, "o"), "html")
    assert 'class="num better"' not in one and "Δ in" not in one  # no delta, no legend
