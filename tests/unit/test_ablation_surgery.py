"""Surgery on loaded weights: what must stay exactly equal does, weights map by the documented
rules, and a saved ablated model reloads bit for bit."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.activations import SwiGLU

from evalsuite.ablations import (
    AblatedAttnProcessor,
    DropBlocks,
    DropStages,
    FFNRatio,
    MoreTransformers,
    NoSelfAttention,
    NoTransformer,
    PruneResblocks,
    ReluAttention,
    SeparableConv,
    SharedKV,
    SwishGLU,
    apply_ablations,
    build_ablated_unet,
    load_ablated_unet,
    recorded_specs,
    save_ablated_unet,
)
from evalsuite.errors import ConfigError
from evalsuite.models.tiny import TINY_UNET_CONFIG
from tiny_unet import forward, one_thread, tiny_inputs, tiny_unet  # noqa: F401 (one_thread: autouse)


@pytest.fixture(scope="module")
def base():
    unet = tiny_unet()
    with torch.no_grad():  # non-zero biases, so bias handling is exercised too
        for name, p in unet.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.05)
    return unet


@pytest.fixture(scope="module")
def inputs():
    return tiny_inputs()


def fresh(unet):
    """A copy of the tiny ``unet`` (faster than deepcopy: build, then load its weights)."""
    new = build_ablated_unet(TINY_UNET_CONFIG, [], device="cpu").eval()
    new.load_state_dict(unet.state_dict())
    return new


def tblocks(unet):
    for name, mod in unet.named_modules():
        if name.endswith(tuple(f"transformer_blocks.{i}" for i in range(8))):
            yield name, mod


def test_shared_kv_equals_original_bit_for_bit_when_wv_is_wk(base, inputs):
    original = fresh(base)
    with torch.no_grad():
        for _, block in tblocks(original):
            for attn in (block.attn1, block.attn2):
                attn.to_v.weight.copy_(attn.to_k.weight)
    shared = apply_ablations(fresh(original), [SharedKV()])
    assert all(b.attn1.to_v is None and b.attn2.to_v is None for _, b in tblocks(shared))
    assert not any(".to_v." in k for k in shared.state_dict())
    assert torch.equal(forward(shared, inputs), forward(original, inputs))


def test_shared_kv_keeps_wk_and_selects_attention_kinds(base):
    unet = apply_ablations(fresh(base), [SharedKV(self_attention=False, cross_attention=True)])
    for (_, new), (_, old) in zip(tblocks(unet), tblocks(base)):
        assert new.attn1.to_v is not None and new.attn2.to_v is None
        assert torch.equal(new.attn2.to_k.weight, old.attn2.to_k.weight)
        assert new.attn2.processor == AblatedAttnProcessor(shared_kv=True)


def test_ffn_ratio_8_is_the_identity(base, inputs):
    unet = apply_ablations(fresh(base), [FFNRatio(ratio=8)])
    assert torch.equal(forward(unet, inputs), forward(base, inputs))


def test_ffn_ratio_widening_leaves_outputs_unchanged(base, inputs):
    unet = apply_ablations(fresh(base), [FFNRatio(ratio=10)])
    assert unet.down_blocks[0].attentions[0].transformer_blocks[0].ff.net[2].in_features == 160
    torch.testing.assert_close(forward(unet, inputs), forward(base, inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("keep", ["first", "magnitude"])
def test_ffn_ratio_6_keeps_value_gate_and_output_of_the_same_units(base, keep):
    unet = apply_ablations(fresh(base), [FFNRatio(ratio=6, keep=keep)])
    old = base.down_blocks[0].attentions[0].transformer_blocks[0].ff
    new = unet.down_blocks[0].attentions[0].transformer_blocks[0].ff
    w, w2 = old.net[0].proj.weight, old.net[2].weight  # (2*128, 32), (32, 128)
    assert new.net[0].proj.weight.shape == (2 * 96, 32) and new.net[2].weight.shape == (32, 96)
    if keep == "first":
        idx = torch.arange(96)
    else:
        score = torch.cat([w[:128], w[128:]], 1).norm(dim=1) * w2.norm(dim=0)
        idx = torch.topk(score, 96).indices.sort().values
        assert not torch.equal(idx, torch.arange(96))
    assert torch.equal(new.net[0].proj.weight[:96], w[idx])
    assert torch.equal(new.net[0].proj.weight[96:], w[128 + idx])
    assert torch.equal(new.net[2].weight, w2[:, idx])
    assert torch.equal(new.net[2].bias, old.net[2].bias)


def test_swish_glu_only_swaps_the_activation(base, inputs):
    unet = apply_ablations(fresh(base), [SwishGLU()])
    new_sd, old_sd = unet.state_dict(), base.state_dict()
    assert new_sd.keys() == old_sd.keys() and all(torch.equal(new_sd[k], old_sd[k]) for k in old_sd)
    ff = unet.down_blocks[0].attentions[0].transformer_blocks[0].ff
    assert isinstance(ff.net[0], SwiGLU)
    x = torch.randn(3, 32)
    h, gate = F.linear(x, ff.net[0].proj.weight, ff.net[0].proj.bias).chunk(2, dim=-1)
    torch.testing.assert_close(ff.net[0](x), h * F.silu(gate), rtol=0, atol=0)
    assert not torch.allclose(forward(unet, inputs), forward(base, inputs))


def test_relu_attention_follows_the_documented_formula(base):
    unet = apply_ablations(fresh(base), [ReluAttention()])
    attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    x, text = torch.randn(2, 64, 32), torch.randn(2, 77, 32)
    q, k, v = attn.to_q(x), attn.to_k(text), attn.to_v(text)
    heads, d = attn.heads, 32 // attn.heads
    q, k, v = (t.view(2, -1, heads, d).transpose(1, 2) for t in (q, k, v))
    expected = (F.relu(q @ k.transpose(-1, -2) / d**0.5) / 77) @ v
    expected = attn.to_out[0](expected.transpose(1, 2).reshape(2, 64, 32))
    with torch.no_grad():
        torch.testing.assert_close(attn(x, encoder_hidden_states=text), expected.detach())


def zero_outputs(unet, paths):
    """Make the listed submodules contribute nothing to their residual stream."""
    with torch.no_grad():
        for path in paths:
            module = unet.get_submodule(path)
            for name in ("proj_out", "to_out.0", "conv2"):
                try:
                    target = module.get_submodule(name)
                except AttributeError:
                    continue
                target.weight.zero_()
                target.bias.zero_()


def test_no_sa_equals_a_zeroed_self_attention_branch(base, inputs):
    reference = fresh(base)
    level_1_2 = ("down_blocks.0", "down_blocks.1", "up_blocks.2", "up_blocks.3")
    zero_outputs(reference, [f"{p}.attn1" for p, _ in tblocks(reference) if p.startswith(level_1_2)])
    unet = apply_ablations(fresh(base), [NoSelfAttention(levels=(1, 2))])
    keys = [k for k in unet.state_dict() if ".transformer_blocks." in k]
    assert not any(".attn1." in k or ".norm1." in k for k in keys if k.startswith(("down_blocks.0", "up_blocks.3")))
    assert any(".attn1." in k for k in keys if k.startswith("down_blocks.2"))
    assert torch.equal(forward(unet, inputs), forward(reference, inputs))


def test_no_transformer_and_dropped_blocks_equal_zeroed_branches(base, inputs):
    removed = ["down_blocks.0.attentions.0", "down_blocks.0.attentions.1", "mid_block.attentions.0"]
    removed += [f"up_blocks.3.attentions.{i}" for i in range(3)] + ["down_blocks.2.resnets.1", "mid_block.resnets.1"]
    reference = fresh(base)
    zero_outputs(reference, removed)
    specs = [NoTransformer(levels=(1, 8)), DropBlocks(actions=("down_blocks.2.resnets.1", "mid_block.resnets.1"))]
    unet = apply_ablations(base, specs)  # config-level: returns a new model, base untouched
    assert unet is not base and unet.config.down_block_types[0] == "DownBlock2D"
    assert torch.equal(forward(unet, inputs), forward(reference, inputs))


def test_more_transformers_leaves_outputs_unchanged(base, inputs):
    unet = apply_ablations(base, [MoreTransformers(depths=(1, 2, 3, 4), up_depths=(2, 1, 1, 1))])
    assert len(unet.mid_block.attentions[0].transformer_blocks) == 4
    assert len(unet.up_blocks[3].attentions[0].transformer_blocks) == 2
    assert len(unet.down_blocks[2].attentions[0].transformer_blocks) == 3
    assert torch.equal(forward(unet, inputs), forward(base, inputs))


def test_prune_and_drop_stages_follow_bk_sdm_weight_mapping(base):
    unet = apply_ablations(base, [PruneResblocks(layers_per_block=1, mid_block=False), DropStages(count=1)])
    new, old = unet.state_dict(), base.state_dict()
    pairs = {  # new prefix -> original prefix (BK-SDM-Tiny's copy_weight_from_teacher)
        "down_blocks.2.resnets.0.": "down_blocks.2.resnets.0.",
        "down_blocks.2.attentions.0.": "down_blocks.2.attentions.0.",
        "up_blocks.0.resnets.0.": "up_blocks.1.resnets.0.",
        "up_blocks.0.attentions.1.": "up_blocks.1.attentions.2.",
        "up_blocks.2.resnets.1.": "up_blocks.3.resnets.2.",
    }
    for new_prefix, old_prefix in pairs.items():
        keys = [k for k in new if k.startswith(new_prefix)]
        assert keys and all(torch.equal(new[k], old[old_prefix + k[len(new_prefix):]]) for k in keys)
    assert unet.mid_block is None and len(unet.down_blocks) == 3


def test_separable_conv_is_exact_on_separable_kernels(base, inputs):
    reference = fresh(base)
    with torch.no_grad():  # make every resnet 3x3 conv separable: W[o,i] = P[o,i] * D[i]
        for name, mod in reference.named_modules():
            if name.endswith((".conv1", ".conv2")) and ".resnets." in name:
                o, i = mod.weight.shape[:2]
                mod.weight.copy_(torch.randn(o, i, 1, 1) * torch.randn(1, i, 3, 3) * 0.1)
    unet = apply_ablations(fresh(reference), [SeparableConv(levels=(1, 2, 4, 8))])
    assert "down_blocks.0.resnets.0.conv1.depthwise.weight" in unet.state_dict()
    torch.testing.assert_close(forward(unet, inputs), forward(reference, inputs), rtol=1e-4, atol=1e-5)


def test_separable_conv_default_skips_the_outermost_blocks(base):
    unet = apply_ablations(fresh(base), [SeparableConv()])
    keys = unet.state_dict().keys()
    assert "down_blocks.0.resnets.0.conv1.weight" in keys and "up_blocks.3.resnets.2.conv2.weight" in keys
    assert "down_blocks.1.resnets.0.conv1.pointwise.weight" in keys
    assert "mid_block.resnets.0.conv2.depthwise.weight" in keys


def test_save_reload_round_trip_is_exact(base, inputs, tmp_path):
    specs = [
        NoTransformer(levels=(1,)),
        MoreTransformers(depths=(1, 1, 2, 2), up_depths=(1, 2, 1, 1)),  # nested diffusers config
        PruneResblocks(layers_per_block=(1, 1, 1, 0)),
        NoSelfAttention(levels=(2,)), SharedKV(), SwishGLU(), ReluAttention(), FFNRatio(ratio=6), SeparableConv(),
        DropBlocks(actions=("up_blocks.1.resnets.1",)),
    ]
    unet = apply_ablations(base, specs)
    save_ablated_unet(unet, tmp_path)
    assert [d["name"] for d in json.loads((tmp_path / "config.json").read_text())["evalsuite_ablations"]["specs"]] == [
        s.name for s in specs
    ]
    loaded = load_ablated_unet(tmp_path)
    a, b = unet.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(forward(loaded, inputs), forward(unet, inputs))
    assert recorded_specs(loaded)[1] == specs
    again = tmp_path / "again"
    save_ablated_unet(loaded, again)
    assert json.loads((again / "config.json").read_text()) == json.loads((tmp_path / "config.json").read_text())


def test_checkpoint_that_does_not_fit_lists_the_keys(base, tmp_path):
    save_ablated_unet(apply_ablations(fresh(base), [SharedKV()]), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["evalsuite_ablations"]["specs"] = []  # claim: plain tiny UNet
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"Missing keys: .*to_v\.weight.*Likely cause"):
        load_ablated_unet(tmp_path)


def test_ablations_applied_in_two_calls_equal_one_call(base, inputs):
    one = apply_ablations(fresh(base), [SharedKV(), FFNRatio(ratio=6)])
    two = apply_ablations(apply_ablations(fresh(base), [SharedKV()]), [FFNRatio(ratio=6)])
    assert torch.equal(forward(one, inputs), forward(two, inputs))
    assert [s.name for s in recorded_specs(two)[1]] == ["shared_kv", "ffn_ratio"]


def test_half_precision_variant_reloads_in_half_precision(base, tmp_path):
    unet = apply_ablations(fresh(base), [SharedKV(), SeparableConv()]).half()
    save_ablated_unet(unet, tmp_path)
    loaded = load_ablated_unet(tmp_path)
    assert loaded.dtype == torch.float16
    a, b = unet.state_dict(), loaded.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
