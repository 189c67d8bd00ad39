"""Friction on the way to results: a COCO preset's size error says to use dataset.n, and
half precision on CPU is warned about (issue 17)."""

import json

import pytest

from evalsuite.data.coco import load_coco_prompts
from evalsuite.errors import EvalsuiteError
from evalsuite.models.generator import half_on_cpu_warning


def _coco(tmp_path, n: int = 4):
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(1, n + 1)],
        "annotations": [{"image_id": i, "id": 100 + i, "caption": f"a photo {i}"}
                        for i in range(1, n + 1)]}))
    return str(path)


def test_limit_on_a_coco_preset_says_to_use_n(tmp_path):
    ann = _coco(tmp_path)
    with pytest.raises(EvalsuiteError, match=r"has 4 captioned images \(dataset.limit=2 only "
                                             r"takes .* set dataset.n=2 instead\)"):
        load_coco_prompts("coco2017_5k", ann, n=5000, limit=2)
    with pytest.raises(EvalsuiteError, match="choose at most dataset.n=4"):
        load_coco_prompts("coco2017_5k", ann, n=5000)
    assert len(load_coco_prompts("c", ann, n=3, limit=2)) == 2


def test_half_precision_on_cpu_warns_and_names_the_dtype():
    text = half_on_cpu_warning("float16", "cpu")
    assert "sampler.dtype=float16 on CPU" in text and "sampler.dtype=float32" in text
    assert "bfloat16" in half_on_cpu_warning("bfloat16", "cpu")
    assert half_on_cpu_warning("float32", "cpu") is None
    assert half_on_cpu_warning("float16", "cuda") is None
