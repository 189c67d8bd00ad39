"""``evalsuite profile``'s document: every component's cost, the pipeline's, and its tables.

One JSON-ready dict holds the UNet's detailed profile (per block, ``profile``; the model
without the run's extra ablations in ``baseline``), each component's params/FLOPs/latency
(``components``), the whole pipeline's cost (``pipeline``) and the settings counted at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.profile.flops import COUNTED

VERSION = "2"  # 2: text encoder, VAE and whole-pipeline cost next to the UNet's
FORMATS = ("table", "json")
_NAMES = {"text_encoder": "text encoder", "unet": "UNet",
          "vae_decoder": "VAE decoder (+ post_quant_conv)", "vae_encoder": "VAE encoder (+ quant_conv)"}


@dataclass(frozen=True)
class ProfileRequest:
    """What to profile and at which settings (from ``model.*``, ``profile.*``, ``sampler.*``)."""

    arch: str | None
    path: str | None
    resolution: int
    batch: int = 1
    text_len: int = 77
    steps: int = 25
    guidance_scale: float = 7.5
    latency: bool = False
    repeats: int = 5
    device: str = "cpu"

    def check(self) -> None:
        """Refuse impossible settings before anything is built."""
        bad = [f"{k}={v} (must be >= 1)" for k, v in
               (("profile.batch", self.batch), ("profile.repeats", self.repeats),
                ("profile.steps", self.steps), ("profile.text_len", self.text_len)) if v < 1]
        if self.resolution < 8 or self.resolution % 8:
            bad.append(f"model.resolution={self.resolution} (must be a positive multiple of 8)")
        if bad:
            raise EvalsuiteError("cannot profile: " + "; ".join(bad))


def _unet_summary(unet: dict[str, Any]) -> dict[str, Any]:
    keys = ("flops", "macs", "flops_by_kind", "latency")
    return {"params": unet["unet_params"], **{k: unet[k] for k in keys if k in unet},
            "inputs": unet["inputs"]}


def _components(req: ProfileRequest, unet: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    from evalsuite.profile.components import component_configs, profile_text_encoder, profile_vae
    from evalsuite.profile.pipeline import text_encoder_latency, vae_latency

    configs = component_configs(req.arch, req.path)
    out: dict[str, dict[str, Any] | None] = {"text_encoder": None, "unet": _unet_summary(unet),
                                             "vae_decoder": None, "vae_encoder": None}
    if configs.text_encoder is not None:
        out["text_encoder"] = profile_text_encoder(configs.text_encoder, req.batch, req.text_len)
        if req.latency:
            out["text_encoder"]["latency"] = text_encoder_latency(
                configs.text_encoder, req.batch, req.text_len, req.device, req.repeats)
    if configs.vae is not None:
        out.update(profile_vae(configs.vae, req.batch, req.resolution))
        if req.latency:
            for name, rep in vae_latency(configs.vae, req.batch, req.resolution, req.device,
                                         req.repeats).items():
                out[name]["latency"] = rep  # type: ignore[index]
    return out


def _latent(req: ProfileRequest) -> int:
    from evalsuite.profile.components import component_configs, vae_factor

    vae = component_configs(req.arch, req.path).vae
    factor = vae_factor(vae) if vae is not None else 8
    if req.resolution % factor:
        raise EvalsuiteError(f"model.resolution={req.resolution} is not a multiple of the VAE's factor {factor}")
    return req.resolution // factor


def profile_document(req: ProfileRequest, base_config: dict[str, Any], preset: Sequence[Any],
                     extra: Sequence[Any] = ()) -> dict[str, Any]:
    """The profile of ``base_config`` + ``preset`` + ``extra`` ablations, with the pipeline's cost.

    With ``extra`` ablations the model without them is profiled too (``baseline``, UNet only).
    """
    import torch

    from evalsuite.profile.model import profile_unet
    from evalsuite.profile.pipeline import pipeline_cost

    req.check()
    latent = _latent(req)
    kw = dict(sample_size=latent, batch=req.batch, text_len=req.text_len, latency=req.latency,
              repeats=req.repeats, device=req.device)
    ours = profile_unet(base_config, [*preset, *extra], **kw)
    base = profile_unet(base_config, list(preset), **{**kw, "latency": False}) if extra else None
    components = _components(req, ours)
    settings = {**asdict(req), "latent": latent, "threads": torch.get_num_threads()}
    return {"version": VERSION, "profile": ours, "baseline": base, "components": components,
            "pipeline": pipeline_cost(components, req.steps, req.guidance_scale),
            "settings": settings, "counted": COUNTED}


def _unet_row(label: str, p: dict[str, Any], base: dict[str, Any] | None) -> str:
    def delta(key: str) -> str:
        return f" ({100 * (p[key] / base[key] - 1):+.1f}%)" if base else ""

    lat = f"{p['latency']['median_ms']:.1f} ms" if "latency" in p else "-"
    return (f"| {label} | {p['unet_params']:,}{delta('unet_params')} | "
            f"{p['flops'] / 1e9:.2f}{delta('flops')} | {100 * p['attention_share']:.1f}% | {lat} |")


def unet_table(doc: dict[str, Any], name: str, label: str) -> list[str]:
    """The UNet table: the model (and, with extra ablations, its baseline first)."""
    lines = ["| model | UNet params | GFLOPs | attention share | latency |", "|---|---:|---:|---:|---:|"]
    if doc["baseline"]:
        lines.append(_unet_row(name, doc["baseline"], None))
    lines.append(_unet_row(label, doc["profile"], doc["baseline"]))
    return lines


def block_table(doc: dict[str, Any]) -> list[str]:
    """The UNet's parameters and FLOPs per top-level block."""
    p = doc["profile"]
    blocks = dict.fromkeys([*p["params_by_block"], *p["flops_by_block"]])
    lines = ["| UNet block | params | GFLOPs |", "|---|---:|---:|"]
    for b in blocks:
        lines.append(f"| {b} | {p['params_by_block'].get(b, 0):,} | {p['flops_by_block'].get(b, 0) / 1e9:.2f} |")
    return lines


def pipeline_table(doc: dict[str, Any]) -> list[str]:
    """One row per component (per call, calls per run, share of the run), then the total."""
    pipe = doc["pipeline"]
    lines = ["| component | params | GFLOPs per call | calls | GFLOPs per run | share | latency per call |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in _NAMES.items():
        c = doc["components"][key]
        if c is None:
            lines.append(f"| {label} | not known | | | | | |")
            continue
        lat = f"{c['latency']['median_ms']:.1f} ms" if "latency" in c else "-"
        lines.append(f"| {label} | {c['params']:,} | {c['flops'] / 1e9:.2f} | {pipe['calls'][key]} | "
                     f"{pipe['flops_by_component'][key] / 1e9:.1f} | {100 * pipe['share'][key]:.1f}% | {lat} |")
    lat = f"{pipe['latency_ms']:.0f} ms (estimate)" if "latency_ms" in pipe else "-"
    lines.append(f"| **pipeline** | | | | {pipe['flops'] / 1e9:.1f} | 100% | {lat} |")
    return lines


def markdown(doc: dict[str, Any], name: str, label: str) -> str:
    """The ``profile.format=table`` output: UNet table, pipeline table, what was counted."""
    s, pipe = doc["settings"], doc["pipeline"]
    cfg = "CFG: 2 UNet calls a step, text encoder for prompt + negative" if pipe["classifier_free_guidance"] \
        else "no CFG"
    return "\n".join([
        *unet_table(doc, name, label), "",
        f"one UNet forward, latent {s['latent']}x{s['latent']}, batch {s['batch']}, {s['text_len']} tokens",
        "", *block_table(doc), "", *pipeline_table(doc), "",
        f"whole pipeline: {s['resolution']}x{s['resolution']}, batch {s['batch']}, {pipe['steps']} steps, "
        f"guidance {pipe['guidance_scale']} ({cfg})" + (
            f"; latency on {s['device']}, {s['threads']} thread(s), random weights" if s["latency"] else ""),
        "", doc["counted"],
    ])
