"""Variant identity in tables: different variants never share a row, reruns never add one.

The colliding cases of issue 17: BK-SDM-Base, BK-SDM-Small and a plain ``prune_resblocks``
all apply ``prune_resblocks`` (with different parameters); two checkpoints evaluated without
``name=`` both come from ``model=pretrained``.
"""

import pandas as pd
import pytest

from evalsuite.ablations import PruneResblocks, spec_to_dict
from evalsuite.models.presets import preset_specs
from evalsuite.results.compare import compare_records, render_comparison
from evalsuite.results.identity import distinct_labels, variant_of
from evalsuite.results.record import write_record
from evalsuite.results.render import render
from evalsuite.results.store import ResultStore
from evalsuite.results.tablebuild import build_table
from evalsuite.config.tabledef import ColumnDef, TableDef
from evalsuite.results.tables import runs_table, write_tables
from results_factory import make_record

PRUNE_CONF = {"_target_": "evalsuite.ablations.stages.PruneResblocks",
              "layers_per_block": [1, 1, 1, 0], "mid_block": True}


def _specs(preset: str) -> tuple:
    return tuple(spec_to_dict(s) for s in preset_specs(preset))


def _as_run(rec: dict, option: str, node: dict, overrides: tuple = (), chash: str | None = None) -> dict:
    """``rec`` as `evalsuite run ablation=[<option>]` records it: the resolved config and the
    command line's overrides."""
    rec["config"] = {**rec["config"], "ablation": {option: node}}
    rec["overrides"] = [f"ablation=[{option}]", *overrides]
    if chash:
        rec["config_hash"] = chash
    return rec


def _table(records: list) -> "object":
    tdef = TableDef(title="t", columns=[ColumnDef(metric="fid_clean", label="FID", round=2)],
                    baseline={"ablations": "-"})
    return build_table(ResultStore(records), tdef, "t")


def test_the_three_prune_resblocks_variants_keep_three_rows():
    prune = spec_to_dict(PruneResblocks(layers_per_block=(1, 1, 1, 0), mid_block=True))
    base = make_record(1, {"fid_clean": 30.0}, ablations=_specs("bk_sdm_base"))
    small = make_record(2, {"fid_clean": 31.0}, ablations=_specs("bk_sdm_small"))
    plain = make_record(3, {"fid_clean": 32.0}, ablations=(prune,))
    # Older records (no config in the record): the labels grow by the differing parameters.
    t = _table([base, small, plain])
    assert t.values("FID") == [30.0, 31.0, 32.0]
    labels = t.values("variant")
    assert len(set(labels)) == 3 and all(x.startswith("tiny+prune_resblocks(") for x in labels)
    assert labels[1] == "tiny+prune_resblocks(layers_per_block=1,mid_block=false)"
    # As runs record them: the options as chosen, short.
    runs = [_as_run(base, "preset_bk_sdm_base", {"name": "bk_sdm_base"}),
            _as_run(small, "preset_bk_sdm_small", {"name": "bk_sdm_small"}),
            _as_run(plain, "prune_resblocks", PRUNE_CONF)]
    t = _table(runs)
    assert t.values("variant") == ["tiny+preset_bk_sdm_base", "tiny+preset_bk_sdm_small",
                                   "tiny+prune_resblocks"]
    md = render(t, "md")
    assert ("tiny+preset_bk_sdm_small = model tiny (64 px); ablations: "
            "prune_resblocks(layers_per_block=1,mid_block=false).") in md
    assert 'title="model tiny (64 px); ablations: prune_resblocks(layers_per_block=1,mid_block=true)"' \
        in render(t, "html")


def test_two_checkpoints_without_a_name_keep_two_rows():
    a = make_record(1, {"fid_clean": 20.0}, preset="pretrained")
    b = make_record(2, {"fid_clean": 25.0}, preset="pretrained")
    b["model"]["checkpoint_sha256"] = "d" * 64
    t = _table([a, b])
    assert t.values("variant") == ["pretrained [ckpt cccccccc]", "pretrained [ckpt dddddddd]"]
    assert t.values("FID") == [20.0, 25.0]
    # the same files at another path are the same model: one row, the newer record
    c = make_record(3, {"fid_clean": 26.0}, preset="pretrained")
    c["model"]["path"] = "/elsewhere"
    assert _table([a, b, c]).values("FID") == [26.0, 25.0]
    cmp = compare_records(a, b, {})
    assert "(pretrained [ckpt cccccccc])" in render_comparison(cmp)


def test_a_name_and_the_parameters_the_command_line_set_are_in_the_label():
    ffn = {"_target_": "evalsuite.ablations.ffn.FFNRatio", "ratio": 4, "keep": "first"}
    four = _as_run(make_record(1, {"fid_clean": 20.0}, ablations=({"name": "ffn_ratio",
                                                                      "params": {"ratio": 4}},)),
                   "ffn_ratio", ffn, ("ablation.ffn_ratio.ratio=4",))
    six = _as_run(make_record(2, {"fid_clean": 21.0}, ablations=({"name": "ffn_ratio",
                                                                     "params": {"ratio": 6}},)),
                  "ffn_ratio", {**ffn, "ratio": 6})
    assert _table([four, six]).values("variant") == ["tiny+ffn_ratio(4)", "tiny+ffn_ratio"]
    # name= labels the run; the same name on two different variants still gives two rows
    n1 = make_record(3, {"fid_clean": 1.0}, name="mine")
    n2 = make_record(4, {"fid_clean": 2.0}, name="mine", ablations=("shared_kv",))
    assert _table([n1, n2]).values("variant") == ["mine", "mine+shared_kv"]
    # ... and the same model under two names is two variants (name is part of the identity)
    assert variant_of(n1) != variant_of(make_record(5, {}, name="other"))
    v1, v2 = variant_of(make_record(6, {})), variant_of(make_record(7, {}))
    assert v1 == v2 and distinct_labels([v1, v2]) == ["tiny", "tiny"]


def test_a_rerun_supersedes_its_row_and_is_listed(tmp_path):
    first = _as_run(make_record(1, {"fid_clean": 20.0}), "prune_resblocks", PRUNE_CONF, chash="h1")
    other = _as_run(make_record(2, {"fid_clean": 21.0}), "prune_resblocks", PRUNE_CONF, chash="h2")
    again = _as_run(make_record(3, {"fid_clean": 20.5}), "prune_resblocks", PRUNE_CONF, chash="h1")
    for rec in (first, other, again):
        write_record(tmp_path / "records", rec)
    write_tables(tmp_path)
    csv = pd.read_csv(tmp_path / "tables" / "runs.csv", keep_default_na=False)
    assert csv["run_id"].tolist() == [first["run_id"], other["run_id"], again["run_id"]]
    assert csv["superseded_by"].tolist() == [again["run_id"], "", ""]
    md = (tmp_path / "tables" / "runs.md").read_text()
    table, superseded = md.split("## Superseded")
    assert first["run_id"] not in table and other["run_id"] in table and again["run_id"] in table
    assert f"- {first['run_id']} (tiny+prune_resblocks): superseded by {again['run_id']}" in superseded
    # the variants table: one row, the newest value, the older record counted as superseded
    t = _table([first, again])
    assert t.values("FID") == [20.5] and any("1 older record(s)" in line for line in t.footer)
    assert runs_table([first])["superseded_by"].tolist() == [""]


def test_plots_and_grids_group_by_identity_too():
    from evalsuite.results.tablebuild import variant_key, variant_labels

    a = make_record(1, {}, preset="pretrained")
    b = make_record(2, {}, preset="pretrained", steps=20)
    c = make_record(3, {}, preset="pretrained")
    c["model"]["checkpoint_sha256"] = "e" * 64
    keys = [variant_key(r) for r in (a, b, c)]
    assert variant_labels(keys) == ["pretrained [ckpt cccccccc] (steps=10)",
                                    "pretrained [ckpt cccccccc] (steps=20)",
                                    "pretrained [ckpt eeeeeeee]"]


@pytest.mark.parametrize("task", ["reconstruction"])
def test_decoder_records_are_told_apart_by_their_decoder(task):
    a, b = make_record(1, {}), make_record(2, {})
    for rec, path in ((a, "/vae/one"), (b, "/vae/two")):
        rec["task"] = task
        rec["vae"] = {"decoder": {"path": path}, "encoder": {"path": path}}
    assert distinct_labels([variant_of(a), variant_of(b)]) == ["one", "two"]


def test_records_that_say_nothing_more_still_get_different_labels():
    a, b = make_record(1, {}), make_record(2, {})
    b["model"]["path"] = None
    b["model"]["weights"] = "something else"  # differs in identity, in no label facet
    la, lb = distinct_labels([variant_of(a), variant_of(b)])
    assert la != lb and la.startswith("tiny [") and lb.startswith("tiny [")


def test_scored_folders_are_told_apart_by_their_images():
    a, b = make_record(1, {}), make_record(2, {})
    for rec, (folder, sha) in ((a, ("gen", "1" * 64)), (b, ("gen", "2" * 64))):
        del rec["model"]
        rec.update(kind="score", inputs={"gen": {"dir": f"/x/{folder}", "sha256": sha}},
                   dataset={"name": f"folder:{folder}", "sha256": sha, "count": 4})
    va, vb = variant_of(a), variant_of(b)
    assert va != vb and va.label == "folder:gen"
    assert distinct_labels([va, vb]) == ["folder:gen [images 11111111]", "folder:gen [images 22222222]"]
