"""Tables from records: values, deltas, rounding, protocols kept apart, every format's footer."""

import io

import pandas as pd
import pytest

from conftest import CONF_DIR
from evalsuite.errors import ConfigError
from evalsuite.config.paper import load_paper
from evalsuite.results.paper import build_paper_table
from evalsuite.results.render import render
from evalsuite.results.store import ResultStore
from evalsuite.results.tablebuild import build_table
from evalsuite.config.tabledef import ColumnDef, RowDef, TableDef, load_table_def
from evalsuite.results.tablemodel import format_number
from results_factory import make_record


def _variants() -> ResultStore:
    return ResultStore([
        make_record(1, {"fid_clean": 20.0, "clip_score": 0.3000}),  # superseded by record 4
        make_record(2, {"fid_clean": 24.125, "clip_score": 0.2875}, ablations=("shared_kv",)),
        make_record(3, {"fid_clean": 18.5, "clip_score": 0.3125}, ablations=("ffn_ratio",)),
        make_record(4, {"fid_clean": 22.0, "clip_score": 0.3050}),
    ])


def _def(**kw) -> TableDef:
    cols = [ColumnDef(metric="fid_clean", label="FID", round=2),
            ColumnDef(metric="clip_score", label="CLIP", round=3),
            ColumnDef(field="model.unet_params", label="params", thousands=True)]
    return TableDef(title="Ablations", columns=cols, baseline={"ablations": "-"}, **kw)


def test_values_deltas_and_rounding():
    t = build_table(_variants(), _def(), "abl")
    assert t.values("variant") == ["tiny", "tiny+shared_kv", "tiny+ffn_ratio"]
    assert t.values("FID") == [22.0, 24.125, 18.5]  # the latest record of each variant
    # the baseline row is never compared with itself: its delta cells are empty
    assert t.values("Δ FID") == [None, pytest.approx(2.125), pytest.approx(-3.5)]
    assert t.values("Δ% FID") == [None, pytest.approx(9.6590909), pytest.approx(-15.909091)]
    assert t.values("Δ params") == [None, -100_000, -100_000]
    md = render(t, "md")
    # half-up rounding from the decimal value: 24.125 -> 24.13, 2.125 -> +2.13, 9.659% -> +9.7%
    assert "| tiny+shared_kv | 24.13 | +2.13 | +9.7% | 0.288 | -0.018 | -5.7% | 2,900,000 | -100,000 | -3.3% |" in md
    assert "| tiny | 22.00 |  |  | 0.305 |  |  | 3,000,000 |  |  |" in md


def test_no_delta_against_or_from_an_infinite_value():
    """PSNR of identical images is inf: its difference to anything is not a number to print."""
    store = ResultStore([make_record(1, {"fid_clean": float("inf")}),
                         make_record(2, {"fid_clean": 24.0}, ablations=("shared_kv",))])
    t = build_table(store, TableDef(title="t", columns=[ColumnDef(metric="fid_clean", label="F")],
                                    baseline={"ablations": "-"}), "inf")
    assert t.values("F") == [float("inf"), 24.0]
    assert t.values("Δ F") == [None, None] and t.values("Δ% F") == [None, None]


def test_format_number_rounds_half_up_and_never_shows_minus_zero():
    assert format_number(0.125, 2) == "0.13" and format_number(2.675, 2) == "2.68"
    assert format_number(-0.0004, 3, signed=True) == "0.000"
    assert format_number(1234567, None, thousands=True) == "1,234,567"
    assert format_number(0.5, 0, signed=True) == "+1"


def test_sorting_and_row_definitions():
    tdef = _def(sort_by="FID", rows=[RowDef(label="ffn", where={"ablations": "ffn_ratio"}),
                                     RowDef(label="base", where={"ablations": "-"}),
                                     RowDef(label="never run", where={"ablations": "relu_attention"})])
    tdef.baseline = "base"
    t = build_table(_variants(), tdef, "sorted")
    assert t.values("variant") == ["ffn", "base", "never run"]  # ascending FID, unmeasured last
    assert t.values("FID") == [18.5, 22.0, "n/m"]
    assert t.values("Δ FID") == [pytest.approx(-3.5), None, None]


def test_mixed_protocols_and_metric_versions_never_share_a_column():
    store = ResultStore([
        make_record(1, {"fid_clean": 20.0}),
        make_record(2, {"fid_clean": 30.0}, count=6),  # another prompt subset: another protocol
        make_record(3, {"fid_clean": {"value": 21.0, "version": "2"}}, ablations=("shared_kv",)),
        make_record(4, {"fid_clean": 25.0}, ablations=("shared_kv",)),
    ])
    t = build_table(store, TableDef(title="t", columns=[ColumnDef(metric="fid_clean", round=1)],
                                    baseline={"ablations": "-"}), "mixed")
    labels = [c.label for c in t.columns if not c.label.startswith("Δ")]
    assert labels == ["variant", "fid_clean [P1 v1]", "fid_clean [P2]", "fid_clean [P1 v2]"]
    assert t.values("fid_clean [P1 v1]") == [20.0, 25.0]
    assert t.values("fid_clean [P2]") == [30.0, "n/m"]
    assert t.values("fid_clean [P1 v2]") == ["n/m", 21.0]
    assert t.values("Δ fid_clean [P1 v2]") == [None, None]  # the baseline has no v2 value
    footer = "\n".join(t.footer)
    assert "Protocol P1: dataset.name=demo" in footer and "dataset.count=32" in footer
    assert "Protocol P2:" in footer and "dataset.count=6" in footer
    assert "Images: P1: 32 per variant; P2: 6 per variant." in footer


def test_every_format_carries_the_footer(tmp_path):
    t = build_table(_variants(), _def(), "abl")
    ids = sorted(r["run_id"] for r in _variants().records[1:])  # record 1 is superseded
    for fmt in ("md", "csv", "tex", "html"):
        text = render(t, fmt)
        assert "Protocol: dataset.name=demo" in text, fmt
        assert "Images: 32 per variant" in text, fmt
        assert all(i in text for i in ids) and _variants().records[0]["run_id"] not in text, fmt
    tex = render(t, "tex")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"tiny+shared\_kv & 24.13 & +2.13 & +9.7\%" in tex
    df = pd.read_csv(io.StringIO(render(t, "csv")), comment="#")
    assert list(df["FID"]) == [22.0, 24.13, 18.5] and list(df["Δ% FID"])[1:] == [9.7, -15.9]
    html = render(t, "html")
    assert html.startswith("<!doctype html>") and "<td class=\"num\">24.13</td>" in html


def test_confidence_intervals_are_shown_and_exported():
    store = ResultStore([make_record(1, {"fid_clean": {"value": 20.0, "ci": (19.0, 21.5)}})])
    t = build_table(store, TableDef(title="t", columns=[ColumnDef(metric="fid_clean", round=2)]), "ci")
    assert "| tiny | 20.00 ± 1.25 |" in render(t, "md")
    df = pd.read_csv(io.StringIO(render(t, "csv")), comment="#")
    assert (df["fid_clean CI low"][0], df["fid_clean CI high"][0]) == (19.0, 21.5)


def test_auto_table_lists_every_metric_and_the_parameter_count():
    t = build_table(_variants(), load_table_def("variants", CONF_DIR), "variants")
    assert [c.label for c in t.columns if c.kind == "value"] == ["clip_score", "fid_clean", "UNet params"]
    assert t.values("Δ UNet params") == [None, -100_000, -100_000]


def test_bad_definitions_fail_naming_the_problem(tmp_path):
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "two.yaml").write_text("title: x\ncolumns: [{metric: fid, field: a}]\n")
    (tmp_path / "table" / "typo.yaml").write_text("title: x\ncolums: []\n")
    with pytest.raises(ConfigError, match="exactly one of metric"):
        load_table_def("two", tmp_path)
    with pytest.raises(ConfigError, match="colums"):
        load_table_def("typo", tmp_path)
    with pytest.raises(ConfigError, match="known: two, typo"):
        load_table_def("nope", tmp_path)


def test_paper_table_shows_theirs_ours_and_the_difference_and_marks_the_rest():
    dpmpp = make_record(1, {"fid_clean": 26.1, "clip_score": 0.3112}, preset="sd15",
                        dataset="coco2017_5k", count=5000, steps=8)
    dpmpp["sampler"]["scheduler"] = "dpmpp_2m"
    other = make_record(2, {"fid_clean": 99.0}, preset="sd15", dataset="coco2017_5k", count=5000)
    t = build_paper_table(ResultStore([dpmpp, other]), load_table_def("snapfusion_table2", CONF_DIR),
                          "snapfusion_table2")
    assert t.values("model") == [r.label for r in load_paper("snapfusion_table2").rows]
    assert t.values("FID (paper)") == [31.7, 25.6, 26.9, 24.2]
    assert t.values("FID (ours)") == ["n/a", 26.1, "n/a", "n/a"]  # 25 steps: not this table
    assert t.values("FID (ours − paper)")[1] == pytest.approx(0.5)
    assert t.values("CLIP score (ours − paper)")[1] == pytest.approx(-0.0088)
    md = render(t, "md")
    assert "| DPM-Solver++ (SD-v1.5) | 25.6 | 26.1 | +0.5 | 0.32 | 0.31 | -0.01 |" in md
    assert "Paper: Y. Li, H. Wang" in md and "arXiv:2306.00980v3, Table 2" in md
    assert "Meng et al.'s distilled weights are not public" in md
    assert dpmpp["run_id"] in md and other["run_id"] not in md


def test_runs_table_splits_metric_columns_by_protocol_only_when_needed():
    from evalsuite.results.protocol import protocol_of
    from evalsuite.results.tables import runs_table

    a, b = make_record(1, {"psnr/baseline": 20.0}), make_record(2, {"psnr/baseline": 21.0})
    assert "psnr/baseline@v1" in runs_table([a, b]).columns
    c = make_record(3, {"psnr/baseline": 30.0}, count=6)
    df = runs_table([a, c])
    ka, kc = protocol_of(a).key, protocol_of(c).key
    assert df[f"psnr/baseline@v1 [{ka}]"].tolist()[0] == 20.0 and pd.isna(df[f"psnr/baseline@v1 [{ka}]"][1])
    assert df[f"psnr/baseline@v1 [{kc}]"].tolist()[1] == 30.0
    assert df["protocol"].tolist() == [ka, kc]


def test_paper_table_shows_zero_shot_runs_labelled_and_says_what_setting_is_missing():
    """The bk_sdm study's records (SD v1.5 cut zero-shot, under the paper's protocol; and the
    shapes world's, under another) fill labelled columns, never (ours); only the paper-setting
    ones get a difference to the published number."""
    from evalsuite.ablations import spec_to_dict
    from evalsuite.models.presets import preset_specs

    small = tuple(spec_to_dict(s) for s in preset_specs("bk_sdm_small"))
    coco = {"preset": "sd15", "dataset": "coco2014_30k", "count": 30000, "steps": 25}
    base = make_record(1, {"fid_legacy": 20.0, "clip_score": 0.30}, **coco)
    cut = make_record(2, {"fid_legacy": 30.0, "clip_score": 0.25}, ablations=small, **coco)
    on_load = make_record(3, {"fid_legacy": 31.0}, **{**coco, "preset": "bk_sdm_small"})
    on_load["model"]["unet_origin"] = "derived_from_base"  # model=bk_sdm_small model.path=<SD>
    shapes = [make_record(4 + i, {"fd_shapes": v}, preset="shapes", dataset="shapes", steps=20,
                          ablations=abl) for i, (v, abl) in enumerate([(0.04, ()), (0.07, small)])]
    t = build_paper_table(ResultStore([base, cut, on_load, *shapes]),
                          load_table_def("bk_sdm", CONF_DIR), "bk_sdm")
    labels = [r.label for r in load_paper("bk_sdm").rows]
    small_row, base_row = labels.index("BK-SDM-Small"), labels.index("BK-SDM-Base")
    # (ours): SD's own weights; no BK-SDM checkpoint was measured, and a cut never counts
    assert t.values("FID (ours)") == [20.0] + ["n/m"] * 6
    zs = t.values("FID (ours, zero-shot) [P1]")
    assert zs[0] == 20.0 and zs[small_row] == 31.0 and zs[base_row] == "n/m"  # latest of the cut
    diff = t.values("FID (ours − paper, zero-shot) [P1]")
    assert diff[0] == pytest.approx(20.0 - 13.05) and diff[small_row] == pytest.approx(31.0 - 16.98)
    other = t.values("FID (ours, zero-shot: fd_shapes) [P2]")
    assert other[0] == 0.04 and other[small_row] == 0.07
    assert not any("zero-shot: fd_shapes) [P2]" in c.label and "paper" in c.label for c in t.columns)
    foot = "\n".join(t.footer)
    assert "dataset=shapes (paper: coco2014_30k)" in foot and "sampler.steps=20 (paper: 25)" in foot
    assert "fd_shapes stands in for fid_legacy" in foot
    assert "(ours) n/m: no record of the row's own weights under the paper's setting" in foot
