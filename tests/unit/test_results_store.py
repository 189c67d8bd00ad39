"""The results store: schema migration, field access, filters, protocols, the pandas frame."""

import json

import pytest

from evalsuite.results import record as record_mod
from evalsuite.results.protocol import CellKey, differing_fields, protocol_of
from evalsuite.results.record import RecordError, load_records, read_record, write_record
from evalsuite.results.store import ResultStore, get_field, matches
from results_factory import make_record


def test_a_v1_record_still_loads_after_a_schema_bump(tmp_path, monkeypatch):
    old = make_record(1, {"psnr/baseline": 20.0})
    path = write_record(tmp_path, old)  # written as schema 1, as every record on disk today
    before = path.read_bytes()

    def v1_to_v2(rec):  # a synthetic bump: the parameter count moves under model.params
        rec = json.loads(json.dumps(rec))
        rec["model"]["params"] = {"unet": rec["model"].pop("unet_params")}
        return rec

    monkeypatch.setattr(record_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(record_mod.MIGRATIONS, 1, v1_to_v2)
    [loaded] = load_records(tmp_path)
    assert loaded["schema_version"] == 2
    assert loaded["model"]["params"] == {"unet": 3_000_000} and "unet_params" not in loaded["model"]
    assert loaded["metrics"]["psnr/baseline"]["value"] == 20.0
    assert path.read_bytes() == before  # records stay immutable: migration happens in memory


def test_records_from_a_newer_schema_or_without_one_are_refused(tmp_path, caplog):
    future = {**make_record(1, {}), "schema_version": 99}
    (tmp_path / "a.json").write_text(json.dumps(future))
    with pytest.raises(RecordError, match="schema_version 99 is newer"):
        read_record(tmp_path / "a.json")
    assert load_records(tmp_path) == [] and "schema_version 99 is newer" in caplog.text
    (tmp_path / "a.json").write_text(json.dumps({"run_id": "x"}))
    with pytest.raises(RecordError, match="no valid schema_version"):
        read_record(tmp_path / "a.json")
    assert load_records(tmp_path) == []  # skipped with a warning, never a guess


def test_a_missing_migration_step_is_an_error_not_a_guess(monkeypatch):
    monkeypatch.setattr(record_mod, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(record_mod.MIGRATIONS, 1, lambda r: r)
    with pytest.raises(RecordError, match="no migration from schema_version 2"):
        record_mod.migrate_record(make_record(1, {}))


def test_fields_choices_dotted_paths_and_computed_ones():
    rec = make_record(3, {"fid_clean": 12.0}, ablations=("shared_kv", "ffn_ratio"), guidance=5.0)
    assert get_field(rec, "model") == "tiny"  # a bare group name is the config choice
    assert get_field(rec, "sampler.guidance_scale") == 5.0
    assert get_field(rec, "metrics.fid_clean.value") == 12.0
    assert get_field(rec, "ablations") == "shared_kv+ffn_ratio"
    assert get_field(rec, "variant") == "tiny+shared_kv+ffn_ratio"
    assert get_field(rec, "protocol.dataset.count") == 32
    assert get_field(rec, "no.such.field") is None


def test_where_filters_values_lists_nested_keys_and_wildcards():
    a = make_record(1, {}, guidance=3.0)
    b = make_record(2, {}, guidance=7.5, ablations=("shared_kv",))
    store = ResultStore([a, b])
    assert store.filter({"sampler.guidance_scale": 7.5}) == [b]
    assert store.filter({"sampler": {"guidance_scale": "3.0"}}) == [a]  # Hydra-style nesting, text
    assert store.filter({"ablations": ["-", "shared_kv"]}) == [a, b]  # a list: any of
    assert store.filter({"model.ablations": []}) == [a]  # [] is a value: no ablations
    assert store.filter({"sampler.guidance_scale": "*"}) == [a, b]
    assert not matches(a, {"dataset": "coco2014_30k"})
    assert store.latest({"model": "tiny"}) == b
    assert store.get(b["run_id"][:26]) == b


def test_protocol_is_named_when_recorded_and_derived_otherwise():
    demo = make_record(1, {"fid_clean": 1.0})
    small = make_record(2, {"fid_clean": 1.0}, count=6)
    named = make_record(3, {"fid_clean": 1.0},
                        protocol={"name": "bk_sdm_coco30k", "hash": "ab" * 32, "fields": {"n": 30000}})
    assert protocol_of(demo).key != protocol_of(small).key
    assert {k for k, _, _ in differing_fields(protocol_of(demo).fields, protocol_of(small).fields)} \
        == {"dataset.count", "dataset.sha256"}
    assert protocol_of(named).name == "bk_sdm_coco30k" and protocol_of(named).key == "ab" * 6
    v2 = make_record(4, {"fid_clean": {"value": 1.0, "version": "2"}})
    assert CellKey.of(demo, "fid_clean") != CellKey.of(v2, "fid_clean")
    # the device a metric ran on does not change its value, so it is not part of its identity
    on_gpu = make_record(5, {"fid_clean": 1.0}, metric_params={"fid_clean": {"device": "cuda"}})
    assert CellKey.of(demo, "fid_clean") == CellKey.of(on_gpu, "fid_clean")


def test_frame_has_one_row_per_record_and_metric_with_its_key():
    store = ResultStore([make_record(1, {"psnr/baseline": 20.0, "fid_clean": {"value": 9.0, "ci": (8.5, 9.5)}}),
                         make_record(2, {"psnr/baseline": 21.0}, count=6)])
    df = store.frame()
    assert len(df) == 3
    fid = df[df.metric == "fid_clean"].iloc[0]
    assert (fid.value, fid.ci_low, fid.ci_high, fid.higher_is_better) == (9.0, 8.5, 9.5, False)
    psnr = df[df.metric == "psnr/baseline"]
    assert psnr.protocol.nunique() == 2 and list(psnr.n_images) == [32, 6]
    assert len(store.frame({"dataset.count": 6})) == 1
