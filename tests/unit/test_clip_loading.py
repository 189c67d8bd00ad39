"""open_clip models from a file: built without drawing random weights first (the file sets
every parameter), shared between the metrics asking for the same one while in use."""

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from evalsuite.features.clip import load_open_clip
from evalsuite.features.standins import register_tiny_clip

REPO = Path(__file__).resolve().parents[2]


def test_a_model_from_a_file_equals_open_clips_own_load_and_is_shared(tmp_path):
    import open_clip

    name = register_tiny_clip()
    path = tmp_path / "w.bin"
    torch.save(load_open_clip(name, "test", None).state_dict(), path)
    init_before = {n: getattr(torch.nn.init, n) for n in ("uniform_", "normal_", "zeros_")}
    mine = load_open_clip(name, "test", str(path))
    assert {n: getattr(torch.nn.init, n) for n in init_before} == init_before  # restored
    theirs = open_clip.create_model(name, pretrained=str(path)).eval()
    ours, ref = mine.state_dict(), theirs.state_dict()
    assert ours.keys() == ref.keys()
    for k in ref:
        assert torch.equal(ours[k], ref[k]), k
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(mine.encode_image(x), theirs.encode_image(x))
    assert load_open_clip(name, "test", str(path)) is mine  # one build while in use
    assert load_open_clip(name, "test", None) is not load_open_clip(name, "test", None)
    alive = weakref.ref(mine)
    del mine, ours
    gc.collect()
    assert alive() is None  # the sharing does not keep a model in memory


@pytest.mark.parametrize("model", ["ViT-B-32", "ViT-L-14-336"])
def test_geometry_is_read_without_open_clip_and_equals_open_clips(model):
    """A cached run builds no model, so it need not import open_clip (3 s) for a size."""
    code = ("import sys; from evalsuite.features.clip import CLIPImageEmbedding as E; "
            f"e = E({model!r}, 'openai'); print(e.size, e.dims, 'open_clip' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    import open_clip

    cfg = open_clip.get_model_config(model)
    size = cfg["vision_cfg"]["image_size"]
    assert out == [str(size if isinstance(size, int) else size[0]), str(cfg["embed_dim"]),
                   "False"]
