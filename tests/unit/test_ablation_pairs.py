"""Every ablation alone and in every pair: builds, runs a forward pass on the tiny UNet, and
moves parameters and FLOPs in the expected direction (or fails as a known contradiction)."""

from __future__ import annotations

import itertools

import pytest
import torch

from evalsuite.ablations import ABLATIONS, AblationSpec, build_ablated_unet
from evalsuite.errors import ConfigError
from evalsuite.models.tiny import TINY_UNET_CONFIG
from evalsuite.profile import count_flops, count_parameters
from tiny_unet import forward, one_thread, tiny_inputs, tiny_unet  # noqa: F401 (one_thread: autouse)

# Expected sign of (params, FLOPs) change for each ablation's default config on the tiny UNet.
# relu_attention and swish_glu change no weight and no counted (matmul/conv) FLOP. None: no
# fixed direction -- drop_stages moves the mid block up one resolution level, which can cost
# more FLOPs than the removed stage saved (alone on the tiny UNet it saves a little).
DIRECTION = {
    "no_sa_highres": (-1, -1),
    "no_transformer_highres": (-1, -1),
    "shared_kv": (-1, -1),
    "ffn_ratio": (-1, -1),
    "swish_glu": (0, 0),
    "relu_attention": (0, 0),
    "separable_conv": (-1, -1),
    "prune_resblocks": (-1, -1),
    "drop_blocks": (-1, -1),
    "more_transformers_middle": (1, 1),
    "drop_stages": (-1, None),
}

# Default configs that contradict each other (the error must name this ablation + parameter).
CONFLICTS = {
    frozenset({"no_sa_highres", "no_transformer_highres"}): ("no_sa_highres", "levels"),
    frozenset({"no_sa_highres", "drop_blocks"}): ("no_sa_highres", "levels"),
    frozenset({"drop_blocks", "no_transformer_highres"}): ("drop_blocks", "actions"),
    frozenset({"drop_blocks", "prune_resblocks"}): ("drop_blocks", "actions"),
    frozenset({"drop_blocks", "drop_stages"}): ("drop_blocks", "actions"),
    frozenset({"prune_resblocks", "drop_stages"}): ("prune_resblocks", "layers_per_block"),
    frozenset({"more_transformers_middle", "drop_stages"}): ("more_transformers_middle", "depths"),
}

NAMES = sorted(ABLATIONS)
PAIRS = list(itertools.combinations(NAMES, 2))


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def run(specs: list[AblationSpec]) -> tuple[int, int]:
    """Build on CPU (seeded), run a forward pass, return (params, FLOPs)."""
    unet = tiny_unet(specs)
    inputs = tiny_inputs()
    out = forward(unet, inputs)
    assert out.shape == inputs[0].shape and torch.isfinite(out).all()
    return count_parameters(unet), count_flops(unet, by_block=False).total_flops


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[int, int]]:
    """(params, FLOPs) of the plain tiny UNet ('') and of each ablation alone."""
    out = {"": run([])}
    for name in NAMES:
        out[name] = run([ABLATIONS[name]()])
    return out


@pytest.mark.parametrize("name", NAMES)
def test_each_ablation_alone_moves_params_and_flops_as_expected(counts, name):
    (p0, f0), (p, f) = counts[""], counts[name]
    dp, df = DIRECTION[name]
    assert sign(p - p0) == dp
    assert sign(f - f0) == (df if df is not None else -1)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_every_pair_builds_runs_and_composes(counts, a, b):
    conflict = CONFLICTS.get(frozenset({a, b}))
    specs = [ABLATIONS[a](), ABLATIONS[b]()]
    if conflict:
        for ordered in (specs, specs[::-1]):
            with pytest.raises(ConfigError, match=rf"ablation '{conflict[0]}', parameter '{conflict[1]}'"):
                build_ablated_unet(TINY_UNET_CONFIG, ordered)
        return
    p, f = run(specs)
    # Adding b to a moves counts in b's direction, and adding a to b in a's.
    for first, second in ((a, b), (b, a)):
        p1, f1 = counts[first]
        dp, df = DIRECTION[second]
        assert sign(p - p1) == dp, f"params of {first}+{second} vs {first}"
        if df is not None:
            assert sign(f - f1) == df, f"FLOPs of {first}+{second} vs {first}"
