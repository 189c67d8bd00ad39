"""Issue 15, prompt files read strictly: lines end at \\n only, and JSONL rows, prompt values
and manifests that are not what they must be are refused naming the line or entry."""

from __future__ import annotations

import json

import pytest

from evalsuite.data import load_demo_prompts, load_text_prompts
from evalsuite.data.formats import (load_csv_prompts, load_jsonl_prompts, load_manifest_prompts,
                                    write_manifest)
from evalsuite.errors import EvalsuiteError
from evalsuite.score import load_prompts

# Characters str.splitlines() splits on, besides \n and \r.
INSIDE = ["\u2028", "\u2029", "\f", "\v", "\x1c", "\x1d", "\x1e", "\x85"]


@pytest.mark.parametrize("sep", INSIDE, ids=[f"U+{ord(c):04X}" for c in INSIDE])
def test_text_files_split_on_newline_only(tmp_path, sep):
    f = tmp_path / "p.txt"
    f.write_text(f"a cat{sep}on a mat\na dog\n\na fox\n", encoding="utf-8")
    ps = load_text_prompts("t", str(f))
    assert [(p.id, p.text) for p in ps] == [("00001", f"a cat{sep}on a mat"), ("00002", "a dog"),
                                           ("00004", "a fox")]


def test_crlf_and_cr_line_ends_read_as_lf(tmp_path):
    files = {}
    for name, data in (("lf", b"a cat\na dog\n"), ("crlf", b"a cat\r\na dog\r\n"),
                       ("cr", b"a cat\ra dog\r")):
        files[name] = tmp_path / f"{name}.txt"
        files[name].write_bytes(data)
    want = load_text_prompts("t", str(files["lf"])).prompts
    assert [p.text for p in want] == ["a cat", "a dog"]
    assert load_text_prompts("t", str(files["crlf"])).prompts == want
    assert load_text_prompts("t", str(files["cr"])).prompts == want


def test_the_demo_set_is_unchanged_by_the_stricter_split():
    ps = load_demo_prompts()
    assert len(ps) == 32 and [p.id for p in ps] == [f"{i:05d}" for i in range(1, 33)]


@pytest.mark.parametrize("line, match", [
    ("5", r"line 3 is a JSON int, not an object with a 'Prompt' field"),
    ('["a cat"]', r"line 3 is a JSON list, not an object"),
    ("null", r"line 3 is null, not an object"),
    ('"a cat"', r"line 3 is a JSON str, not an object"),
    ('{"Prompt": null}', r"line 3: field 'Prompt' is null; prompts must be strings"),
    ('{"Prompt": 5}', r"line 3: field 'Prompt' is a int \(5\); prompts must be strings"),
    ('{"Prompt": ["a", "b"]}', r"line 3: field 'Prompt' is a list"),
])
def test_jsonl_rows_and_values_that_are_not_prompts_are_refused(tmp_path, line, match):
    f = tmp_path / "p.jsonl"
    f.write_text('{"Prompt": "a cat"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(EvalsuiteError, match=r"p\.jsonl: " + match):
        load_jsonl_prompts("j", str(f), text_field="Prompt")


def test_jsonl_strings_may_hold_line_separators(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a cat\u2028on a mat"}\n{"prompt": "a dog"}\n', encoding="utf-8")
    assert [p.id for p in load_jsonl_prompts("j", str(f))] == ["00001", "00002"]


def test_csv_cells_keep_separators_and_a_missing_prompt_cell_is_refused(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('prompt,id\n"a cat\u2028on a mat",a\n"a dog\fbarking",b\n', encoding="utf-8")
    assert [p.id for p in load_csv_prompts("c", str(f), id_field="id")] == ["a", "b"]
    f.write_text("id,prompt\na,a cat\nb\n", encoding="utf-8")  # row 2 has no prompt cell
    with pytest.raises(EvalsuiteError, match=r"p\.csv: row 2: field 'prompt' is null"):
        load_csv_prompts("c", str(f))


def test_manifests_need_a_sha256_and_prompt_objects(tmp_path):
    src = tmp_path / "p.txt"
    src.write_text("a cat\na dog\n", encoding="utf-8")
    path = write_manifest(load_text_prompts("t", str(src)), tmp_path / "m.json")
    good = json.loads(path.read_text())
    assert load_manifest_prompts("m", str(path)).sha256 == good["sha256"]
    for change, match in [(lambda d: d.pop("sha256"), r"m\.json records no sha256"),
                          (lambda d: d.update(sha256=None), r"m\.json records no sha256"),
                          (lambda d: d["prompts"].__setitem__(1, "a dog"),
                           r"m\.json: prompt 2 is not an object with 'id' and 'text'"),
                          (lambda d: d["prompts"][0].update(text=None),
                           r"m\.json: prompt 1: field 'text' is null"),
                          (lambda d: d.update(prompts={"a": 1}), r"needs an object with a "
                                                                 r"'prompts' list")]:
        doc = json.loads(json.dumps(good))
        change(doc)
        path.write_text(json.dumps(doc))
        with pytest.raises(EvalsuiteError, match=match):
            load_manifest_prompts("m", str(path))


def test_score_prompt_files_split_on_newline_only(tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("a cat\u2028on a mat\na dog\n", encoding="utf-8")
    assert load_prompts(f, ["a", "b"]) == {"a": "a cat\u2028on a mat", "b": "a dog"}
