"""``evalsuite profile``: UNet parameters and FLOPs of a model config, with no weights.

Takes the same overrides as ``evalsuite run`` (``model=``, ``ablation=[...]``); with ablations
it also profiles the model without them and prints the change. ``profile.latency=true``
times a CPU forward pass with random weights (small models only).
"""

from __future__ import annotations

import json
import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from evalsuite.commands import CONF_DIR, hydra_choices, report_errors

log = logging.getLogger("evalsuite")


def _row(label: str, p: dict, base: dict | None) -> str:
    def delta(key: str) -> str:
        return f" ({100 * (p[key] / base[key] - 1):+.1f}%)" if base else ""

    lat = f"{p['latency']['median_ms']:.1f} ms" if "latency" in p else "-"
    return (f"| {label} | {p['unet_params']:,}{delta('unet_params')} | "
            f"{p['flops'] / 1e9:.2f}{delta('flops')} | {100 * p['attention_share']:.1f}% | {lat} |")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@report_errors
def app(cfg: DictConfig) -> None:
    """Print (and save under results/profiles/) the UNet's params, FLOPs and latency."""
    # torch and diffusers: imported once Hydra has parsed the command (fast --help, errors)
    from evalsuite.io import atomic_write_text, sha256_json
    from evalsuite.profile.model import profile_unet, unet_architecture
    from evalsuite.tasks.model_facts import build_ablations
    from evalsuite.tasks.setup import check_writable

    base_config, preset = unet_architecture(cfg.model.arch, cfg.model.path)
    extra = build_ablations(cfg.ablation)
    pc = cfg.profile
    latent = cfg.model.resolution // 8
    kw = dict(sample_size=latent, batch=pc.batch, text_len=pc.text_len, latency=pc.latency,
              repeats=pc.repeats)
    results = check_writable(cfg.paths.results_dir)
    ours = profile_unet(base_config, preset + extra, **kw)
    base = profile_unet(base_config, preset, **kw) if extra else None
    label = "+".join([cfg.model.name, *cfg.ablation.keys()])
    lines = ["| model | UNet params | GFLOPs | attention share | CPU latency |",
             "|---|---:|---:|---:|---:|"]
    if base:
        lines.append(_row(cfg.model.name, base, None))
    lines.append(_row(label, ours, base))
    print("\n".join(lines))
    print(f"\none UNet forward, latent {latent}x{latent}, batch {pc.batch}, {pc.text_len} tokens; "
          f"{ours['flops_counted']}")
    doc = {"profile": ours, "baseline": base, "choices": hydra_choices(),
           "model": OmegaConf.to_container(cfg.model, resolve=True)}
    out = results / "profiles" / f"{label}-{sha256_json(doc)[:8]}.json"
    atomic_write_text(out, json.dumps(doc, indent=1, sort_keys=True))
    log.info("wrote %s", out)
