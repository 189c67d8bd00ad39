"""COCO subsets, CSV/JSONL/PartiPrompts files and manifests, on files the tests write."""

import json

import pytest

from evalsuite.data.coco import load_coco_prompts
from evalsuite.data.formats import (load_csv_prompts, load_jsonl_prompts, load_manifest_prompts,
                                    write_manifest)
from evalsuite.errors import EvalsuiteError
from fixtures import write_coco


def test_coco_subset_is_deterministic_and_independent_of_file_order(tmp_path):
    a = write_coco(tmp_path / "a")
    b = write_coco(tmp_path / "b", shuffle_seed=3)
    pa = load_coco_prompts("c", str(a), n=5, seed=7)
    pb = load_coco_prompts("c", str(b), n=5, seed=7)
    assert [(p.id, p.text) for p in pa] == [(p.id, p.text) for p in pb]
    assert pa.sha256 == pb.sha256 and len(pa) == 5
    assert all(p.meta["caption_id"] // 10 - 5000 == p.meta["image_id"] - 1000 for p in pa)
    other = load_coco_prompts("c", str(a), n=5, seed=8)
    assert other.sha256 != pa.sha256  # another seed, another subset or captions


def test_coco_larger_subset_contains_the_smaller_one(tmp_path):
    ann = write_coco(tmp_path)
    small = {p.id for p in load_coco_prompts("c", str(ann), n=4, seed=1)}
    large = {p.id for p in load_coco_prompts("c", str(ann), n=8, seed=1)}
    assert small < large


def test_coco_one_caption_per_image_chosen_by_seed(tmp_path):
    ann = write_coco(tmp_path, n_images=3, captions_per_image=5)
    texts = {s: [p.text for p in load_coco_prompts("c", str(ann), seed=s)] for s in range(6)}
    assert all(len(t) == 3 for t in texts.values())
    assert len({tuple(t) for t in texts.values()}) > 1  # the caption choice depends on the seed


def test_coco_errors_name_the_file(tmp_path):
    ann = write_coco(tmp_path)
    with pytest.raises(EvalsuiteError, match="does not exist"):
        load_coco_prompts("c", str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annot')
    with pytest.raises(EvalsuiteError, match="bad.json.*not valid JSON"):
        load_coco_prompts("c", str(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"images": [{"id": 1}]}))
    with pytest.raises(EvalsuiteError, match="wrong.json.*not a captions file"):
        load_coco_prompts("c", str(wrong))
    victim = tmp_path / "val2014" / "COCO_val2014_000000001003.jpg"
    victim.unlink()
    with pytest.raises(EvalsuiteError, match="COCO_val2014_000000001003.jpg"):
        load_coco_prompts("c", str(ann), images_dir=str(tmp_path / "val2014"))
    with pytest.raises(EvalsuiteError, match="dataset.n=99"):
        load_coco_prompts("c", str(ann), n=99)


def test_csv_and_jsonl_with_categories(tmp_path):
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("id,prompt,cat\nx1,a red car,Vehicles\nx2,  a   dog ,Animals\n")
    ps = load_csv_prompts("c", str(csv_file), id_field="id", category_field="cat")
    assert [(p.id, p.text) for p in ps] == [("x1", "a red car"), ("x2", "a dog")]
    assert ps.categories() == {"x1": "Vehicles", "x2": "Animals"}
    jl = tmp_path / "parti.jsonl"
    jl.write_text('{"Prompt": "a cat", "Category": "Animals"}\n\n{"Prompt": "a bus", "Category": "Vehicles"}\n')
    pj = load_jsonl_prompts("p", str(jl), text_field="Prompt", category_field="Category")
    assert [p.id for p in pj] == ["00001", "00002"] and pj.categories()["00002"] == "Vehicles"
    with pytest.raises(EvalsuiteError, match="no field 'text'"):
        load_jsonl_prompts("p", str(jl), text_field="text")
    jl.write_text('{"Prompt": "a cat"}\nnot json\n')
    with pytest.raises(EvalsuiteError, match="line 2"):
        load_jsonl_prompts("p", str(jl), text_field="Prompt")


def test_manifest_round_trip_and_tamper_detection(tmp_path):
    ps = load_coco_prompts("c", str(write_coco(tmp_path)), n=4, seed=2)
    path = write_manifest(ps, tmp_path / "m.json")
    back = load_manifest_prompts("m", str(path))
    assert back.sha256 == ps.sha256 and back.prompts == ps.prompts
    assert back.prompts[0].meta["caption_id"] == ps.prompts[0].meta["caption_id"]
    doc = json.loads(path.read_text())
    doc["prompts"][0]["text"] = "edited"
    path.write_text(json.dumps(doc))
    with pytest.raises(EvalsuiteError, match="edited"):
        load_manifest_prompts("m", str(path))


def test_unsafe_ids_in_csv_jsonl_and_manifests_are_refused_at_load_time(tmp_path):
    """Ids from files become sample file names: one that could leave the store's folder (or
    clash with another on a case-insensitive disk) fails when the prompt set is loaded, naming
    the file and the id, before anything is generated or written."""
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("id,prompt\nok,a red car\n../../evil,a dog\n")
    with pytest.raises(EvalsuiteError, match=r"p\.csv.*'\.\./\.\./evil'.*dataset\.id_field unset"):
        load_csv_prompts("c", str(csv_file), id_field="id")
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"id": "Cat", "prompt": "a cat"}\n{"id": "cat", "prompt": "a kitten"}\n')
    with pytest.raises(EvalsuiteError, match="p.jsonl.*only in case"):
        load_jsonl_prompts("j", str(jl), id_field="id")
    manifest = write_manifest(load_csv_prompts("c", str(csv_file)), tmp_path / "m.json")
    doc = json.loads(manifest.read_text())
    doc["prompts"][0]["id"] = "/etc/passwd"  # ids are checked before the hash
    manifest.write_text(json.dumps(doc))
    with pytest.raises(EvalsuiteError, match=r"m\.json.*'/etc/passwd'"):
        load_manifest_prompts("m", str(manifest))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "p.csv", "p.jsonl"]


def test_missing_id_cell_is_an_error_not_the_id_none(tmp_path):
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("prompt,id\na red car,x1\na dog\n")  # short row: no id cell
    with pytest.raises(EvalsuiteError, match=r"row 2 has no value in the id field 'id'"):
        load_csv_prompts("c", str(csv_file), id_field="id")


def test_coco_negative_image_id_is_refused_as_a_file_name(tmp_path):
    ann = write_coco(tmp_path, n_images=2, captions_per_image=1)
    doc = json.loads(ann.read_text())
    doc["images"][0]["id"] = doc["annotations"][0]["image_id"] = -5
    ann.write_text(json.dumps(doc))
    with pytest.raises(EvalsuiteError, match="'-00000000005'"):  # f"{-5:012d}": sign counts
        load_coco_prompts("c", str(ann))
