"""Profiler: parameter counts, FLOPs against hand counts (CPU and meta), latency reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evalsuite.ablations import ReluAttention, build_ablated_unet
from evalsuite.models.presets import build_preset_unet
from evalsuite.models.tiny import TINY_UNET_CONFIG
from evalsuite.profile import (
    block_latency_table,
    count_flops,
    count_module_flops,
    count_parameters,
    measure_latency,
    parameters_by_block,
)
from tiny_unet import one_thread, tiny_unet  # noqa: F401 (one_thread: autouse)

TEXT = 77


@pytest.fixture(scope="module")
def tiny_cpu():
    return tiny_unet()


def tiny_attention_flops(batch: int = 1) -> int:
    """Hand count of the tiny UNet's attention score + value matmuls.

    Per transformer block with N image tokens of width C: self-attention QK^T and AV are
    2 * N*N*C FLOPs each, cross-attention (77 text tokens) 2 * N*77*C each. Blocks per level
    (down + up + mid): level 1: 8x8 tokens, C=32, 2+3 blocks; level 2: 4x4, C=64, 2+3;
    level 4: 2x2, C=64, 2+3; level 8: 1x1, C=64, mid block only.
    """
    levels = [(64, 32, 5), (16, 64, 5), (4, 64, 5), (1, 64, 1)]
    return batch * sum(n * (4 * N * N * C + 4 * N * TEXT * C) for N, C, n in levels)


def test_count_parameters_counts_shared_weights_once():
    lin = nn.Linear(3, 4)
    assert count_parameters(lin) == 16
    tied = nn.Sequential(lin, lin)
    assert count_parameters(tied) == 16
    lin.bias.requires_grad_(False)
    assert count_parameters(lin, trainable_only=True) == 12


def test_parameters_by_block_partition_the_unet():
    unet = build_preset_unet("sd15")
    blocks = parameters_by_block(unet)
    assert sum(blocks.values()) == 859_520_964
    assert blocks["conv_in"] == 4 * 320 * 9 + 320


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_tiny_unet_flops_match_hand_counts(tiny_cpu, device):
    unet = tiny_cpu if device == "cpu" else build_ablated_unet(TINY_UNET_CONFIG, [], device="meta")
    report = count_flops(unet, batch=2)
    # conv_in: 4 -> 32 channels, 3x3 kernel, 8x8 output, batch 2: 2 FLOPs per MAC.
    assert report.by_block["conv_in"] == 2 * 2 * (32 * 4 * 9) * 64
    # Attention score/value matmuls are counted on both devices (CPU needs the custom mapping).
    assert report.by_kind["attention"] == tiny_attention_flops(batch=2) == 16_229_376
    assert report.total_flops == sum(report.by_kind.values()) == sum(report.by_block.values())
    assert report.total_flops == 2 * 91_505_152 and report.macs == report.total_flops // 2
    assert report.attention_share == pytest.approx(8_114_688 / 91_505_152)
    assert "attention" in report.counted and report.device == device


def test_one_attention_layer_by_hand(tiny_cpu):
    attn = tiny_cpu.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    x, text = torch.randn(1, 64, 32), torch.randn(1, TEXT, 32)
    report = count_module_flops(attn, lambda: attn(x, encoder_hidden_states=text))
    projections = 2 * (64 * 32 * 32 + 2 * TEXT * 32 * 32 + 64 * 32 * 32)  # q, k, v, out
    scores_values = 2 * 2 * 64 * TEXT * 32
    assert report.by_kind == {"linear": projections, "attention": scores_values}


def test_sd15_flops_on_meta_count_attention_beyond_the_quoted_339g_macs():
    report = count_flops(build_preset_unet("sd15"))
    assert report.total_flops == 803_273_441_280
    assert report.by_kind["attention"] == 126_052_270_080
    # Without attention matmuls: the commonly quoted ~339G MACs.
    assert (report.total_flops - report.by_kind["attention"]) / 2 / 1e9 == pytest.approx(338.6, abs=0.1)
    assert report.inputs == {"sample": [1, 4, 64, 64], "encoder_hidden_states": [1, 77, 768]}


def test_relu_attention_counts_the_same_matmuls(tiny_cpu):
    relu = build_ablated_unet(TINY_UNET_CONFIG, [ReluAttention()], device="cpu")
    assert count_flops(relu, by_block=False).by_kind == count_flops(tiny_cpu, by_block=False).by_kind


def test_fast_totals_equal_the_full_breakdown(tiny_cpu):
    fast, full = count_flops(tiny_cpu, by_block=False), count_flops(tiny_cpu)
    assert fast.by_kind == full.by_kind and fast.total_flops == full.total_flops and fast.by_block == {}


def test_measure_latency_reports_median_and_iqr(tiny_cpu):
    inputs = {"sample": torch.randn(1, 4, 8, 8), "timestep": 10, "encoder_hidden_states": torch.randn(1, TEXT, 32)}
    report = measure_latency(tiny_cpu, inputs, warmup=1, repeats=5)
    assert report.repeats == 5 and report.warmup == 1 and report.device == "cpu"
    assert report.threads == torch.get_num_threads() == 1
    assert 0 < report.min_ms <= report.p25_ms <= report.median_ms <= report.p75_ms
    assert report.iqr_ms == pytest.approx(report.p75_ms - report.p25_ms)
    assert report.peak_memory_mb is None and report.process_max_rss_mb > 0
    assert measure_latency(nn.Linear(4, 4), torch.randn(2, 4), warmup=0, repeats=1).median_ms > 0


def test_latency_on_meta_is_refused():
    with pytest.raises(ValueError, match="meta"):
        measure_latency(nn.Linear(2, 2, device="meta"), torch.randn(1, 2, device="meta"))


def test_block_latency_table_times_every_residual_and_attention_block(tiny_cpu):
    inputs = {"sample": torch.randn(1, 4, 8, 8), "timestep": 10, "encoder_hidden_states": torch.randn(1, TEXT, 32)}
    table = block_latency_table(tiny_cpu, inputs, warmup=0, repeats=1)
    resnets = [k for k in table if ".resnets." in k]
    attentions = [k for k in table if ".attentions." in k]
    assert len(resnets) == 22 and len(attentions) == 16  # SD v1.5's layout
    assert "mid_block.attentions.0" in table and all(r.median_ms > 0 for r in table.values())


@pytest.mark.slow
def test_readme_table_lists_every_preset_and_ablation():
    from evalsuite.ablations import ABLATIONS
    from evalsuite.models.presets import PRESETS
    from evalsuite.profile.table import markdown_table

    table = markdown_table()
    assert "| sd15 | 859,520,964 | | 803.3 | |" in table
    assert "| preset `bk_sdm_tiny` | 323,384,964 | -62.4% | 485.5 | -39.6% |" in table
    assert all(f"`{name}`" in table for name in [*ABLATIONS, *PRESETS] if name != "sd15")
