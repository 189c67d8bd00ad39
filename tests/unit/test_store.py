import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_create_bytes, atomic_write_bytes, cached_sha256, sha256_file, unseal
from evalsuite.samples.identity import sample_identity
from evalsuite.samples.store import SampleStore, check_ids, decode_png, encode_png, id_problem


def test_png_round_trip_is_lossless_and_carries_metadata(tmp_path: Path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    store = SampleStore(tmp_path, {"model": "x"})
    store.open()
    store.write("00001", img, {"prompt": "a cat", "seed": 5})
    np.testing.assert_array_equal(store.read("00001"), img)
    with Image.open(store.path("00001")) as im:
        meta = json.loads(im.text["evalsuite"])
    assert meta == {"prompt": "a cat", "seed": 5, "id": "00001", "generation_key": store.key,
                    "identity": sample_identity(store.key, "00001", "a cat", 5)}
    assert encode_png(img) == encode_png(img)  # deterministic bytes


def test_store_key_names_its_factors(tmp_path: Path):
    a, b = SampleStore(tmp_path, {"steps": 2}), SampleStore(tmp_path, {"steps": 3})
    assert a.key != b.key and a.key == SampleStore(tmp_path, {"steps": 2}).key


def test_decode_converts_16_bit_and_names_corrupt_files(tmp_path: Path):
    p16 = tmp_path / "g16.png"
    Image.fromarray(np.full((4, 4), 255, dtype=np.uint16)).save(p16)
    assert (decode_png(p16) == 1).all()  # round(255 / 257); the high byte alone would be 0
    bad = tmp_path / "trunc.png"
    bad.write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8))[:40])
    with pytest.raises(EvalsuiteError, match="trunc.png"):
        decode_png(bad)


def test_atomic_create_never_overwrites(tmp_path: Path):
    p = tmp_path / "r.json"
    atomic_create_bytes(p, b"first")
    with pytest.raises(FileExistsError):
        atomic_create_bytes(p, b"second")
    assert p.read_bytes() == b"first"
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_atomic_write_survives_sigkill_of_the_writer(tmp_path: Path):
    """A writer killed mid-way leaves either the old file or the new one, never a torn one."""
    target = tmp_path / "big.bin"
    atomic_write_bytes(target, b"old" * 10)
    code = ("import sys; from evalsuite.io import atomic_write_bytes\n"
            "while True: atomic_write_bytes(sys.argv[1], b'x' * 50_000_000)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
    time.sleep(3.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    data = target.read_bytes()
    assert data in (b"old" * 10, b"x" * 50_000_000)


def test_cached_sha256_rehashes_only_changed_files(tmp_path: Path):
    f, cache = tmp_path / "w.bin", tmp_path / "cache.json"
    f.write_bytes(b"abc")
    assert cached_sha256(f, cache) == sha256_file(f)
    assert str(f.resolve()) in unseal(cache)[0]  # sealed: {"digest", "value"}
    f.write_bytes(b"abcd")  # size changes -> re-hash
    assert cached_sha256(f, cache) == sha256_file(f)


# Ids that must never become file names: path escapes, absolute paths, separators, dot names,
# the store's own temporary prefix, Windows device names, control characters, non-ASCII text
# and names longer than file systems take. "{tmp}" stands for the test's folder, so that an
# absolute id that got through would land where the test looks.
UNSAFE_IDS = ["../../x", "..", ".", "/etc/passwd", "{tmp}/abs", "a/b", "a\\b", "C:x", ".tmp-1", "-rf", "",
              "NUL", "con", "Com1.txt", "lpt9", "a\x00b", "a\nb", "a b", "caf\u00e9",
              "\u30c6\u30b9\u30c8", "x" * 300]


@pytest.mark.parametrize("bad_id", UNSAFE_IDS)
def test_store_refuses_unsafe_ids_and_writes_nothing(tmp_path: Path, bad_id: str):
    bad_id = bad_id.replace("{tmp}", str(tmp_path))
    root = tmp_path / "results" / "samples"  # "../../x" from the store's folder is results/x
    store = SampleStore(root, {"model": "x"})
    store.open()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    img = np.zeros((4, 4, 3), np.uint8)
    for call in (lambda: store.write(bad_id, img, {}), lambda: store.read(bad_id),
                 lambda: store.path(bad_id),
                 lambda: store.write_manifest([{"id": bad_id, "text": "t", "seed": 0}])):
        with pytest.raises(EvalsuiteError, match="Ids name the image files"):
            call()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("good_id", ["00001", "000000001003", "astronaut", "hubble_deep_field",
                                     "COCO_val2014_000000001003", "x1.v2-final", "x" * 128])
def test_safe_ids_are_their_own_file_names(tmp_path: Path, good_id: str):
    """Accepted ids are stored under exactly ``<id>.png`` (no mapping: existing stores keep
    their file names) and are found again by ``existing_ids``."""
    store = SampleStore(tmp_path, {"model": "x"})
    store.open()
    path = store.write(good_id, np.zeros((4, 4, 3), np.uint8), {})
    assert path == store.dir / f"{good_id}.png" and path.parent == store.dir
    assert store.existing_ids() == {good_id}
    assert id_problem(good_id) is None


def test_check_ids_refuses_ids_differing_only_in_case_and_names_them():
    check_ids(["a1", "b1", "A2"], "here")  # different ids whatever the case: fine
    with pytest.raises(EvalsuiteError, match=r"here: id 'Cat' differs from id 'cat' only in case"):
        check_ids(["cat", "dog", "Cat"], "here")
    with pytest.raises(EvalsuiteError, match=r"'\.\./x'.*'NUL'.*\(and 1 more\).*Use row numbers"):
        check_ids(["../x", "ok", "NUL", "a/b", "", "..", "\n", "ok2"], "here",
                  "Use row numbers.")
