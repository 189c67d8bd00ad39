"""The README table: parameters and GFLOPs of every preset and ablation on SD v1.5.

Run ``python -m evalsuite.profile.table`` (meta device: no weights, a few seconds).
"""

from __future__ import annotations

from evalsuite.ablations import ABLATIONS, AblationSpec, build_ablated_unet, spec_to_dict
from evalsuite.models.presets import PRESETS, SD15_UNET_CONFIG
from evalsuite.profile.components import SD15_TEXT_CONFIG, SD15_VAE_CONFIG, profile_text_encoder, profile_vae
from evalsuite.profile.flops import COUNTED, count_flops
from evalsuite.profile.params import count_parameters
from evalsuite.profile.pipeline import pipeline_cost

STEPS, GUIDANCE = 25, 7.5  # the whole-pipeline column: BK-SDM's sampler (PNDM, 25 steps, CFG 7.5)


def _row(label: str, specs: tuple[AblationSpec, ...], base: tuple[int, int] | None) -> tuple[str, tuple[int, int]]:
    unet = build_ablated_unet(SD15_UNET_CONFIG, specs, device="meta")
    params, flops = count_parameters(unet), count_flops(unet, by_block=False).total_flops
    if base is None:
        return f"| {label} | {params:,} | | {flops / 1e9:.1f} | |", (params, flops)
    dp, df = 100 * (params / base[0] - 1), 100 * (flops / base[1] - 1)
    return f"| {label} | {params:,} | {dp:+.1f}% | {flops / 1e9:.1f} | {df:+.1f}% |", (params, flops)


def markdown_table() -> str:
    """Presets, then each ablation alone with its default parameters, vs SD v1.5."""
    lines = [
        "| variant (on SD v1.5) | UNet params | vs SD | GFLOPs (64x64, batch 1) | vs SD |",
        "|---|---:|---:|---:|---:|",
    ]
    row, base = _row("sd15", (), None)
    lines.append(row)
    for name, specs in PRESETS.items():
        if name != "sd15":
            lines.append(_row(f"preset `{name}`", specs, base)[0])
    for name, cls in sorted(ABLATIONS.items()):
        params = spec_to_dict(cls())["params"]
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if k != "actions") or "-"
        if "actions" in params:
            shown = f"{len(params['actions'])} SnapFusion removals"
        lines.append(_row(f"ablation `{name}` ({shown})", (cls(),), base)[0])
    lines.append("")
    lines.append(f"FLOPs: {COUNTED}")
    return "\n".join(lines)


def _cell(c: dict) -> str:
    return f"{c['params'] / 1e6:.1f}M / {c['flops'] / 1e9:.1f}"


def pipeline_table() -> str:
    """Every preset's whole pipeline at 512x512: text encoder, UNet, VAE decoder and encoder
    (params / GFLOPs of one call), and the text-to-image run's TFLOPs (CFG: 2 UNet calls a step)."""
    text = profile_text_encoder(SD15_TEXT_CONFIG, batch=1, text_len=77)
    vae = profile_vae(SD15_VAE_CONFIG, batch=1, resolution=512)
    lines = [
        "| model (512x512) | text encoder | UNet | VAE decoder (+ post_quant_conv) "
        f"| VAE encoder (+ quant_conv) | TFLOPs, {STEPS} steps, CFG {GUIDANCE} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, specs in PRESETS.items():
        unet = build_ablated_unet(SD15_UNET_CONFIG, specs, device="meta")
        u = {"params": count_parameters(unet), "flops": count_flops(unet, by_block=False).total_flops}
        cost = pipeline_cost({"text_encoder": text, "unet": u, **vae}, STEPS, GUIDANCE)
        lines.append(f"| {name} | {_cell(text)} | {_cell(u)} | {_cell(vae['vae_decoder'])} | "
                     f"{_cell(vae['vae_encoder'])} | {cost['flops'] / 1e12:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
    print()
    print(pipeline_table())
