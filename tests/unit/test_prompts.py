from pathlib import Path

import pytest

from evalsuite.data import Prompt, PromptSet, load_demo_prompts, load_text_prompts
from evalsuite.errors import EvalsuiteError
from evalsuite.samples.seeds import prompt_seed


def test_demo_set_has_unique_ids_and_stable_hash():
    ps = load_demo_prompts()
    assert len(ps) == 32
    assert len({p.id for p in ps}) == 32
    assert ps.sha256 == load_demo_prompts().sha256
    assert load_demo_prompts(limit=5).prompts == ps.prompts[:5]


def test_text_file_ids_are_line_numbers_and_blank_lines_are_skipped(tmp_path: Path):
    f = tmp_path / "p.txt"
    f.write_text("a cat\n\n  a dog  \n", encoding="utf-8")
    ps = load_text_prompts("mine", str(f))
    assert [(p.id, p.text) for p in ps] == [("00001", "a cat"), ("00003", "a dog")]


def test_hash_changes_when_and_only_when_prompts_change(tmp_path: Path):
    f = tmp_path / "p.txt"
    f.write_text("a cat\na dog\n", encoding="utf-8")
    h1 = load_text_prompts("x", str(f)).sha256
    f.write_text("a cat\na dog\n", encoding="utf-8")
    assert load_text_prompts("y", str(f)).sha256 == h1  # the name is not part of the content
    f.write_text("a cat\na dog!\n", encoding="utf-8")
    assert load_text_prompts("x", str(f)).sha256 != h1


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"\n  \n\n", "empty"),
    (b"\xff\xfe\x00bad", "UTF-8"),
])
def test_bad_prompt_files_are_rejected_with_the_path(tmp_path: Path, content: bytes, match: str):
    f = tmp_path / "p.txt"
    f.write_bytes(content)
    with pytest.raises(EvalsuiteError, match=match):
        load_text_prompts("x", str(f))


def test_missing_prompt_file(tmp_path: Path):
    with pytest.raises(EvalsuiteError, match="does not exist"):
        load_text_prompts("x", str(tmp_path / "nope.txt"))


def test_prompt_seed_depends_on_run_seed_and_id_only():
    assert prompt_seed(1234, "00001") == prompt_seed(1234, "00001")
    assert prompt_seed(1234, "00001") != prompt_seed(1234, "00002")
    assert prompt_seed(1234, "00001") != prompt_seed(1235, "00001")
    assert 0 <= prompt_seed(7, "x") < 2**63


@pytest.mark.parametrize("bad_id", ["../../x", "/etc/passwd", "a/b", "..", ".", "NUL", "con", "",
                                    "x" * 300, "caf\u00e9", "a\x00b", "a\nb"])
def test_prompt_set_refuses_ids_that_are_not_safe_file_names(bad_id: str):
    prompts = (Prompt("00001", "a cat"), Prompt(bad_id, "a dog"))
    with pytest.raises(EvalsuiteError, match=r"prompt set 'x' from src: id .*Ids name the image"):
        PromptSet("x", prompts, "src")


def test_prompt_set_refuses_ids_differing_only_in_case():
    """On macOS and Windows (case-insensitive by default) "Cat.png" would overwrite "cat.png"."""
    with pytest.raises(EvalsuiteError, match="'Cat' differs from id 'cat' only in case"):
        PromptSet("x", (Prompt("cat", "a cat"), Prompt("Cat", "a big cat")), "src")
    # Taking the first prompts of a valid set keeps it valid.
    assert len(PromptSet("x", (Prompt("cat", "a"), Prompt("dog", "b")), "src").head(1)) == 1
