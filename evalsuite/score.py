"""score(cfg): metrics on existing image folders (no model), written as a result record.

``evalsuite score score.gen_dir=A score.ref_dir=B [score.prompts=P]`` scores the images in A:
distribution metrics (FID, KID, CMMD) against B, paired metrics (PSNR, SSIM, LPIPS) against
the file with the same name in B, text-image metrics (CLIP score) against the prompts in P.
Every input is validated before anything is written; a missing or corrupt weight file, an
unreadable image, folders that do not pair up or too few images for a metric are one clear
error (exit status 2). The record has the same layout as ``evalsuite run``'s (``kind:
"score"``, ``inputs`` instead of model and sampler) and joins the same tables.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.data.prompts import split_lines
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import EvalOptions, Inputs, evaluate_sources
from evalsuite.features.sources import FolderSource
from evalsuite.io import sha256_json
from evalsuite.metrics.base import PairedMetric
from evalsuite.results.provenance import provenance
from evalsuite.results.record import SCHEMA_VERSION, new_run_id, utc_now, write_record
from evalsuite.results.tables import write_tables
from evalsuite.run import check_writable

log = logging.getLogger(__name__)

NOT_HASHED = ("paths", "device", "threads", "name", "tags", "assets")  # where, not what
PAIRING = "reference"


def load_prompts(path: str | Path, ids: list[str]) -> dict[str, str]:
    """Prompts for the images ``ids`` (sorted file order).

    ``.txt``: one prompt per non-empty line, matched to the images in sorted file-name order
    (counts must agree). ``.json``: an object {file stem: prompt}, or an evalsuite sample
    manifest ({"images": [{"id", "text"}, ...]}).
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvalsuiteError(f"prompts file {p} cannot be read as UTF-8 text: {e}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise EvalsuiteError(f"prompts file {p} is not valid JSON: {e}") from None
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            data = {e["id"]: e["text"] for e in data["images"]}
        if not isinstance(data, dict):
            raise EvalsuiteError(f"prompts file {p}: expected an object {{id: prompt}}")
        missing = [i for i in ids if i not in data]
        if missing:
            raise EvalsuiteError(f"prompts file {p} has no prompt for {len(missing)} images, "
                                 f"e.g. {missing[:3]}")
        return {i: str(data[i]) for i in ids}
    lines = [ln.strip() for ln in split_lines(text) if ln.strip()]
    if len(lines) != len(ids):
        raise EvalsuiteError(f"prompts file {p} has {len(lines)} prompts for {len(ids)} images; "
                             "a .txt file needs one prompt per image, in sorted file-name order")
    return dict(zip(ids, lines))


def _pairing(gen: FolderSource, ref: FolderSource | None, want: bool,
             factories: dict[str, Any]) -> tuple[dict[str, FolderSource], dict[str, str]]:
    """The paired source (if any) and why pairing is unavailable otherwise."""
    paired_metrics = [n for n, f in factories.items() if isinstance(f(), PairedMetric)]
    if ref is None:
        return {}, {PAIRING: "no score.ref_dir to pair with"}
    if not want:
        return {}, {PAIRING: "score.pairs=false"}
    if paired_metrics and gen.ids != ref.ids:
        only_gen = sorted(set(gen.ids) - set(ref.ids))
        only_ref = sorted(set(ref.ids) - set(gen.ids))
        raise EvalsuiteError(
            f"paired metrics ({', '.join(paired_metrics)}) compare files with the same name, "
            f"but {gen.dir} has {len(gen.ids)} images and {ref.dir} has {len(ref.ids)}; only in "
            f"the first: {only_gen[:3]}, only in the second: {only_ref[:3]}. Set "
            "score.pairs=false to compute only the other metrics.")
    return {PAIRING: ref}, {}


def config_hash(cfg: DictConfig, inputs: dict[str, Any]) -> str:
    """sha256 of what was measured: settings and the folders' contents, not their paths."""
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    d = {k: v for k, v in d.items() if k not in NOT_HASHED}
    d["score"] = {k: v for k, v in d["score"].items() if k not in ("gen_dir", "ref_dir", "prompts")}
    return sha256_json({"config": d, "inputs": inputs})


def score(cfg: DictConfig, choices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the configured folders and write one result record; return the record."""
    t0 = time.perf_counter()
    s = cfg.score
    results = check_writable(cfg.paths.results_dir)
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(cfg.threads)
    cache_dir = results / "cache"
    factories = {n: partial(build, c, f"metrics.items.{n}") for n, c in cfg.metrics["items"].items()}
    for factory in factories.values():
        factory()  # a bad metric parameter fails here, before anything is written
    gen = FolderSource(s.gen_dir, cache_dir)
    ref = FolderSource(s.ref_dir, cache_dir) if s.ref_dir else None
    texts = load_prompts(s.prompts, gen.ids) if s.prompts else None
    paired, unavailable = _pairing(gen, ref, bool(s.pairs), factories)
    inputs = Inputs(samples=gen, texts=texts, reference=ref, paired=paired,
                    unavailable=unavailable, reconstructions=bool(s.reconstructions))
    opts = EvalOptions(assets_dir=cfg.assets.dir,
                       allow_random_weights=cfg.metrics.allow_random_weights,
                       verify_assets=cfg.assets.verify, on_error="raise",
                       batch_size=cfg.metrics.batch_size, cache_dir=cache_dir,
                       bootstrap=s.bootstrap, bootstrap_seed=s.bootstrap_seed)
    ev = evaluate_sources(inputs, factories, [PAIRING], opts)

    described = {"gen": {"dir": str(gen.dir.resolve()), **gen.identity()},
                 "ref": {"dir": str(ref.dir.resolve()), **ref.identity()} if ref else None,
                 "prompts": {"file": str(Path(s.prompts).resolve()), "n": len(texts),
                             "sha256": sha256_json([texts[i] for i in gen.ids])}
                 if texts else None}
    chash = config_hash(cfg, {k: (v and {kk: vv for kk, vv in v.items() if kk != "dir"})
                              for k, v in described.items()})
    verified = all(m.get("weights", {}).get("verified", True) for m in ev.metrics.values())
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(chash),
        "created_at": utc_now().isoformat(),
        "status": "complete",
        "kind": "score",
        "name": cfg.name,
        "tags": list(cfg.tags),
        "choices": choices or {},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": chash,
        "inputs": described,
        "dataset": {"name": f"folder:{gen.dir.name}", "sha256": gen.identity()["sha256"],
                    "count": len(gen.ids)},
        "metrics": ev.metrics,
        "metrics_from_cache": ev.cached,
        "features_from_cache": ev.features_cached,
        "skipped_metrics": ev.skipped,
        "allow_random_weights": bool(cfg.metrics.allow_random_weights),
        "weights_verified": verified,
        "assets": {"dir": str(Path(cfg.assets.dir).expanduser().resolve()),
                   "verify": bool(cfg.assets.verify)},
        "durations": {"metrics": ev.seconds, "total": time.perf_counter() - t0},
        "provenance": provenance(cfg.device),
    }
    path = write_record(results / "records", record)
    log.info("wrote record %s", path)
    write_tables(results)
    return record
