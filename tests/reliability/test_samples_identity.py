"""Issue 15, content addressing of samples: a stored sample is reused only if it is the sample
requested (generation key, id, prompt text, seed) and its file is the one that was written.

These use a numpy generator whose pixels depend on the prompt text and seed, so they need no
model; the end-to-end runs with the tiny model are in ``test_samples_runs.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import EvalsuiteError
from evalsuite.produce import TextToImage, manifest_entries, materialise, missing_by_shard
from evalsuite.samples.identity import device_factors, sample_identity
from evalsuite.samples.store import SampleStore, encode_png



def generate_samples(gen, ps: PromptSet, store: SampleStore, run_seed: int, batch: int):
    """The text-to-image producer through the one materialise loop."""
    return materialise(TextToImage(gen, ps, run_seed, store.factors), [p.id for p in ps],
                       store, batch)

class TextSeedGenerator:
    """Pixels from a hash of (text, seed): any change of either changes the image."""

    resolution = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, texts, seeds):
        self.calls.append(list(texts))
        out = []
        for text, seed in zip(texts, seeds):
            digest = hashlib.sha256(f"{text}/{seed}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
            out.append(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        return np.stack(out)


def prompts(*texts: str, name: str = "p") -> PromptSet:
    return PromptSet(name, tuple(Prompt(f"{i:05d}", t) for i, t in enumerate(texts, 1)), name)


def chunk_text(path: Path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.text["evalsuite"])


@pytest.fixture
def store(tmp_path):
    return SampleStore(tmp_path / "samples", {"model": "numpy", "device_type": "cpu"})


def test_same_ids_with_other_texts_are_generated_again_and_the_manifest_matches(store):
    gen = TextSeedGenerator()
    first = generate_samples(gen, prompts("a cat", "a dog", "a fox", "an owl"), store, 7, 2)
    assert first.made == 4
    new = prompts("a red car", "a blue bus", "a fox", "a green tram")  # 00003 is unchanged
    second = generate_samples(gen, new, store, 7, 2)
    assert second.made == 3 and second.reused == 1
    # every PNG carries the identity of the new prompt, and so does the manifest
    doc = json.loads((store.dir / "manifest.json").read_text())
    for row, p in zip(doc["images"], new):
        meta = chunk_text(store.path(p.id))
        assert row["text"] == meta["prompt"] == p.text
        assert row["identity"] == meta["identity"] == sample_identity(store.key, p.id, p.text,
                                                                      row["seed"])
        assert row["sha256"] == hashlib.sha256(store.path(p.id).read_bytes()).hexdigest()
    want = TextSeedGenerator().generate([p.text for p in new], [e["seed"] for e in doc["images"]])
    assert all(np.array_equal(store.read(p.id), want[k]) for k, p in enumerate(new))


def test_another_seed_is_another_sample(store):
    ps = prompts("a cat", "a dog")
    generate_samples(TextSeedGenerator(), ps, store, 1, 2)
    assert generate_samples(TextSeedGenerator(), ps, store, 2, 2).made == 2


@pytest.mark.parametrize("damage", ["swap", "edit", "no_record", "foreign_record"])
def test_a_damaged_sample_is_generated_again_with_one_warning(store, damage, caplog):
    ps = prompts("a cat", "a dog", "a fox", "an owl")
    gen = TextSeedGenerator()
    generate_samples(gen, ps, store, 7, 2)
    good = store.path("00001").read_bytes()
    target = store.path("00001")
    if damage == "swap":  # another valid evalsuite PNG under this name
        shutil.copyfile(store.path("00002"), target)
    elif damage == "edit":  # pixels changed, text chunk (and identity) kept
        img = store.read("00001").copy()
        img[0, 0] ^= 1
        target.write_bytes(encode_png(img, chunk_text(target)))
    elif damage == "no_record":  # killed between the PNG and its identity record
        store.record_path("00001").unlink()
    else:  # the PNG and identity record of another id copied over both
        shutil.copyfile(store.path("00002"), target)
        shutil.copyfile(store.record_path("00002"), store.record_path("00001"))
    assert "00001" not in store.valid_ids(manifest_entries(ps, 7))
    assert missing_by_shard(manifest_entries(ps, 7), store, 2, 1) == {0: ["00001"]}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="evalsuite.samples.store"):
        again = generate_samples(gen, ps, store, 7, 2)
    assert again.made == 1 and again.reused == 3
    assert store.path("00001").read_bytes() == good  # the same bytes as the first time
    warned = [r.getMessage() for r in caplog.records if "not reused" in r.getMessage()]
    if damage == "no_record":  # a kill between PNG and record is routine: no warning
        assert warned == []
    else:
        assert len(warned) == 1 and "00001" in warned[0]


def test_a_file_changed_after_the_manifest_is_refused_when_read(store):
    ps = prompts("a cat", "a dog")
    generate_samples(TextSeedGenerator(), ps, store, 7, 2)
    store.write_manifest(manifest_entries(ps, 7))
    shutil.copyfile(store.path("00002"), store.path("00001"))
    with pytest.raises(EvalsuiteError, match=r"00001\.png has changed since it was generated"):
        store.read("00001")
    # a fresh store object (another process) checks against manifest.json
    with pytest.raises(EvalsuiteError, match="has changed"):
        SampleStore(store.dir.parent, store.factors).read("00001")


def test_a_manifest_is_never_written_over_samples_of_other_prompts(store):
    generate_samples(TextSeedGenerator(), prompts("a cat", "a dog"), store, 7, 2)
    before = (store.dir / "manifest.json").read_bytes()
    with pytest.raises(EvalsuiteError, match=r"2 samples do not match the prompts of this run"):
        store.write_manifest(manifest_entries(prompts("a car", "a bus"), 7))
    assert (store.dir / "manifest.json").read_bytes() == before


def test_identity_covers_each_factor():
    base = sample_identity("k1", "00001", "a cat", 5)
    assert len({base, sample_identity("k2", "00001", "a cat", 5),
                sample_identity("k1", "00002", "a cat", 5),
                sample_identity("k1", "00001", "a dog", 5),
                sample_identity("k1", "00001", "a cat", 6)}) == 5


def test_cpu_thread_count_is_part_of_the_generation_key():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = device_factors("cpu")
        torch.set_num_threads(2)
        two = device_factors("cpu")
    finally:
        torch.set_num_threads(before)
    assert one == {"device_type": "cpu", "cpu_threads": 1}
    assert two == {"device_type": "cpu", "cpu_threads": 2}
    assert SampleStore("x", {"m": 1, **one}).key != SampleStore("x", {"m": 1, **two}).key
    assert device_factors("cuda:1") == {"device_type": "cuda"}  # GPU kernels ignore it
