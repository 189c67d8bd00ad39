"""Training data: clear errors for bad sets, a seeded order, a content identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.recovery import ImageFolder, batch_indices, epoch_order
from recovery_data import image_folder


def test_folder_items_identity_and_jsonl(tmp_path):
    d = image_folder(tmp_path / "d", n=3)
    data = ImageFolder(str(d))
    image, caption = data.item(1, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and caption == "a small picture number 1"
    rows = [json.dumps({"file": f"im{i}.png", "caption": f"a small picture number {i}"}) for i in range(3)]
    (d / "captions.csv").rename(tmp_path / "captions.csv")
    (d / "captions.jsonl").write_text("\n".join(rows) + "\n")
    assert ImageFolder(str(d)).identity()["sha256"] == data.identity()["sha256"]
    (d / "captions.jsonl").write_text("\n".join(rows).replace("number 2", "number two") + "\n")
    assert ImageFolder(str(d)).identity()["sha256"] != data.identity()["sha256"]


def test_order_is_a_function_of_the_seed_and_covers_each_epoch():
    assert sorted(epoch_order(5, 3, 0)) == list(range(5))
    assert list(epoch_order(5, 3, 1)) == list(epoch_order(5, 3, 1))
    assert list(epoch_order(50, 3, 0)) != list(epoch_order(50, 4, 0))
    stream = batch_indices(5, 3, 0, 12)
    assert stream[4:7] == batch_indices(5, 3, 4, 3)  # any window of the stream, from any start
    assert sorted(stream[:5]) == list(range(5)) and sorted(stream[5:10]) == list(range(5))


@pytest.mark.parametrize("break_it, message", [
    (lambda d: (d / "captions.csv").write_text("file,caption\n"), "is empty"),
    (lambda d: (d / "im1.png").write_bytes(b"not a png"), "im1.png"),
    (lambda d: (d / "captions.csv").write_text(
        (d / "captions.csv").read_text().replace("a small picture number 2", "")), "missing or empty caption"),
    (lambda d: (d / "extra.png").write_bytes((d / "im0.png").read_bytes()), "have no caption"),
    (lambda d: (d / "im3.png").unlink(), "im3.png"),
    (lambda d: (d / "captions.csv").write_text("name,text\nim0.png,x\n"), "file,caption"),
    (lambda d: (d / "captions.csv").unlink(), "captions file"),
])
def test_bad_sets_are_refused_naming_the_problem(tmp_path, break_it, message):
    d = image_folder(tmp_path / "d")
    break_it(d)
    with pytest.raises(EvalsuiteError, match=message):
        ImageFolder(str(d))
