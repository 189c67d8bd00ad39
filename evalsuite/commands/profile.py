"""``evalsuite profile``: parameters and FLOPs of a model's whole pipeline, with no weights.

Text encoder, UNet (per block and total), VAE decoder and encoder, and the whole text-to-image
run (``profile.steps``/``profile.guidance_scale``, default the sampler's: with guidance > 1 the
UNet runs twice a step and the text encoder for prompt + negative). Takes the same overrides as
``evalsuite run`` (``model=``, ``ablation=[...]``); with ablations it also profiles the UNet
without them and prints the change. ``profile.latency=true`` times each component on
``device`` with random weights; ``profile.format=json`` prints one JSON document on stdout
(logs go to stderr). Either way the document is saved under ``results/profiles/``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf

from evalsuite.commands import CONF_DIR, hydra_choices, report_errors
from evalsuite.errors import EvalsuiteError

if TYPE_CHECKING:
    from evalsuite.profile.document import ProfileRequest

log = logging.getLogger("evalsuite")


def _request(cfg: DictConfig) -> "ProfileRequest":
    """The profile request from ``model.*``, ``profile.*`` and ``sampler.*`` (format checked)."""
    from evalsuite.profile.document import FORMATS, ProfileRequest

    pc = cfg.profile
    if pc.format not in FORMATS:
        raise EvalsuiteError(f"profile.format={pc.format!r}: choose one of {', '.join(FORMATS)}")
    steps = pc.steps if pc.steps is not None else cfg.sampler.steps
    guidance = pc.guidance_scale if pc.guidance_scale is not None else cfg.sampler.guidance_scale
    return ProfileRequest(arch=cfg.model.arch, path=cfg.model.path, resolution=cfg.model.resolution,
                          batch=pc.batch, text_len=pc.text_len, steps=steps,
                          guidance_scale=float(guidance), latency=pc.latency, repeats=pc.repeats,
                          device=cfg.device)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@report_errors
def app(cfg: DictConfig) -> None:
    """Print (and save under results/profiles/) the pipeline's params, FLOPs and latency."""
    # torch and diffusers: imported once Hydra has parsed the command (fast --help, errors)
    from evalsuite.io import atomic_write_text, sha256_json
    from evalsuite.profile.document import markdown, profile_document
    from evalsuite.profile.model import unet_architecture
    from evalsuite.tasks.model_facts import build_ablations
    from evalsuite.tasks.setup import check_writable, set_threads

    request = _request(cfg)
    request.check()
    set_threads(cfg.get("threads"))
    base_config, preset = unet_architecture(cfg.model.arch, cfg.model.path)
    extra = build_ablations(cfg.ablation)
    results = check_writable(cfg.paths.results_dir)
    label = "+".join([cfg.model.name, *cfg.ablation.keys()])
    doc = profile_document(request, base_config, preset, extra)
    doc.update(label=label, choices=hydra_choices(), model=OmegaConf.to_container(cfg.model, resolve=True))
    text = json.dumps(doc, indent=1, sort_keys=True)
    out = results / "profiles" / f"{label}-{sha256_json(doc)[:8]}.json"
    atomic_write_text(out, text + "\n")
    if cfg.profile.format == "json":
        sys.stdout.write(text + "\n")
    else:
        print(markdown(doc, cfg.model.name, label))
    log.info("wrote %s", out)
