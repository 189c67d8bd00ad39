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
from evalsuite.io import atomic_create_bytes, atomic_write_bytes, cached_sha256, sha256_file
from evalsuite.samples.store import SampleStore, decode_png, encode_png


def test_png_round_trip_is_lossless_and_carries_metadata(tmp_path: Path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    store = SampleStore(tmp_path, {"model": "x"})
    store.open()
    store.write("00001", img, {"prompt": "a cat", "seed": 5})
    np.testing.assert_array_equal(store.read("00001"), img)
    with Image.open(store.path("00001")) as im:
        meta = json.loads(im.text["evalsuite"])
    assert meta == {"prompt": "a cat", "seed": 5, "id": "00001", "generation_key": store.key}
    assert encode_png(img) == encode_png(img)  # deterministic bytes


def test_store_key_names_its_factors(tmp_path: Path):
    a, b = SampleStore(tmp_path, {"steps": 2}), SampleStore(tmp_path, {"steps": 3})
    assert a.key != b.key and a.key == SampleStore(tmp_path, {"steps": 2}).key


def test_decode_refuses_16_bit_and_names_corrupt_files(tmp_path: Path):
    p16 = tmp_path / "g16.png"
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(p16)
    with pytest.raises(EvalsuiteError, match="16-bit|mode"):
        decode_png(p16)
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
    assert str(f.resolve()) in json.loads(cache.read_text())
    f.write_bytes(b"abcd")  # size changes -> re-hash
    assert cached_sha256(f, cache) == sha256_file(f)
