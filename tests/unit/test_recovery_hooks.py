"""Feature KD hooks capture the intended stages for every ablation in conf/ablation/."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from evalsuite.ablations import apply_ablations
from evalsuite.recovery import capture, match_stages
from tiny_unet import one_thread, tiny_inputs, tiny_unet  # noqa: F401  (one_thread: fixture)

CONF = Path(__file__).resolve().parents[2] / "conf" / "ablation"
ALL = [f"down_blocks.{i}" for i in range(4)] + ["mid_block"] + [f"up_blocks.{j}" for j in range(4)]
SAME = [(s, s) for s in ALL]
# drop_stages(1): the innermost stage goes; up stages shift by one; the new innermost down
# stage has no downsampler and the mid block runs one level higher, so neither is compared.
SHIFTED = [("down_blocks.0", "down_blocks.0"), ("down_blocks.1", "down_blocks.1"),
           ("up_blocks.0", "up_blocks.1"), ("up_blocks.1", "up_blocks.2"), ("up_blocks.2", "up_blocks.3")]
EXPECTED = {
    "drop_stages": (SHIFTED, {"student:down_blocks.2", "student:mid_block", "teacher:down_blocks.3",
                              "teacher:up_blocks.0"}),
    "preset_bk_sdm_tiny": (SHIFTED, {"student:down_blocks.2", "student:mid_block",
                                     "teacher:down_blocks.3", "teacher:up_blocks.0"}),
    "preset_bk_sdm_small": ([p for p in SAME if p[0] != "mid_block"], {"student:mid_block"}),
}
NAMES = sorted(p.stem for p in CONF.glob("*.yaml"))


def _specs(name: str) -> list:
    node = OmegaConf.load(CONF / f"{name}.yaml")[name]
    built = instantiate(node)
    return list(built) if isinstance(built, (list, tuple)) else [built]


def test_every_ablation_option_is_covered():
    assert len(NAMES) == 16 and set(EXPECTED) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_hooks_capture_the_matched_stages(name):
    teacher = tiny_unet()
    specs = _specs(name)
    student = apply_ablations(copy.deepcopy(teacher), specs)
    match = match_stages(teacher.config, specs)
    pairs, unmatched = EXPECTED.get(name, (SAME, set()))
    assert [tuple(p) for p in match.pairs] == [tuple(p) for p in pairs]
    assert set(match.unmatched) == unmatched
    x, t, emb = tiny_inputs()
    with torch.no_grad(), capture(teacher, [b for _, b in match.pairs]) as tf, \
            capture(student, [a for a, _ in match.pairs]) as sf:
        teacher(x, t, emb)
        student(x, t, emb)
    assert sorted(sf) == sorted(a for a, _ in match.pairs)
    for s, te in match.pairs:
        assert sf[s].shape == tf[te].shape, (s, te)
    # the hooks are removed when the block ends
    assert not student.get_submodule(match.pairs[0][0])._forward_hooks


def test_hooked_output_is_the_stage_output_the_next_stage_receives():
    unet = tiny_unet()
    x, t, emb = tiny_inputs()
    seen = {}
    handle = unet.up_blocks[0].register_forward_pre_hook(lambda m, a, k: seen.update(h=k["hidden_states"]),
                                                         with_kwargs=True)
    with torch.no_grad(), capture(unet, ["mid_block", "down_blocks.3", "down_blocks.0"]) as f:
        unet(x, t, emb)
    handle.remove()
    assert torch.equal(f["mid_block"], seen["h"])
    assert f["down_blocks.0"].shape == (2, 32, 4, 4)  # after the downsampler: level 2
    assert f["down_blocks.3"].shape == (2, 64, 1, 1)  # innermost: no downsampler
