"""The README's protocols table, generated from ``conf/protocol/*.yaml``.

Each preset is composed exactly as ``evalsuite run protocol=<name>`` would compose it, so the
table shows what a run does, not what a comment says. ``python -m evalsuite.protocol_table``
prints it; tests/config/test_protocols.py fails if the README's copy is out of date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalsuite.resources import conf_dir as default_conf_dir

BEGIN, END = "<!-- protocols:begin -->", "<!-- protocols:end -->"


def compose_preset(name: str, conf_dir: str | None = None, overrides: tuple[str, ...] = ()) -> DictConfig:
    """The run config of ``protocol=<name>`` (model left at its default)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir or default_conf_dir(), version_base="1.3"):
        return compose("config", overrides=[f"protocol={name}", *overrides])


def preset_names(conf_dir: str | None = None) -> list[str]:
    """Every protocol option, ``custom`` first."""
    names = sorted(p.stem for p in (Path(conf_dir or default_conf_dir()) / "protocol").glob("*.yaml"))
    return sorted(names, key=lambda n: n != "custom")


def _sampler(cfg: DictConfig) -> str:
    spec, s = cfg.protocol, cfg.sampler
    fixed = [f.split(".", 1)[1] for f in spec.fields if f.startswith("sampler.")]
    if not fixed:
        return "not fixed (variants differ in it)"
    parts = []
    if "scheduler" in fixed:
        parts.append(str(s.scheduler))
    if "steps" in fixed:
        parts.append(f"{s.steps} steps")
    if "guidance_scale" in spec.varies or "sampler.guidance_scale" in spec.varies:
        parts.append("CFG swept")
    elif "guidance_scale" in fixed:
        parts.append(f"CFG {s.guidance_scale}")
    if "dtype" in fixed:
        parts.append(str(s.dtype))
    if "seed" in fixed:
        parts.append(f"seed {s.seed}")
    return ", ".join(parts)


def _reference(cfg: DictConfig) -> str:
    if "reference" not in cfg.protocol.fields:
        return "none"
    r = cfg.reference
    what = str(r.name)
    if "subset" in r:
        what += " (whole split)" if r.subset == "split" else " (the prompts' images)"
    if "resize" in r:
        what += f", {r.resize} to {r.resolution}"
    return what


def _metric(name: str, item: Any) -> str:
    extra = []
    if item.get("resize"):
        extra.append(f"{item.resize} to {item.size}")
    if item.get("model_name"):
        extra.append(f"{item.model_name}")
    return f"{name} ({', '.join(extra)})" if extra else name


def _row(cfg: DictConfig) -> str:
    p, d = cfg.protocol, cfg.dataset
    prompts = f"{d.name}" + (f", n={d.n}" if d.get("n") else "")
    resolution = p.requires.get("model.resolution", "any")
    metrics = ", ".join(_metric(k, v) for k, v in cfg.metrics["items"].items())
    return (f"| `{p.name}` | {p.version} | {prompts} | {resolution} | {_reference(cfg)} | "
            f"{_sampler(cfg)} | {metrics} | {p.source} |")


def markdown_table(conf_dir: str | None = None) -> str:
    """One row per protocol option, from the composed configs."""
    lines = ["| protocol | version | prompts | px | reference images | sampler | metrics | source |",
             "|---|---:|---|---:|---|---|---|---|"]
    lines += [_row(compose_preset(n, conf_dir)) for n in preset_names(conf_dir)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
