"""``evalsuite score``: metrics on existing image folders (no model), written as a result record.

``evalsuite score score.gen_dir=A score.ref_dir=B [score.prompts=P]`` scores the images in A:
distribution metrics (FID, KID, CMMD) against B, paired metrics (PSNR, SSIM, LPIPS) against
the file with the same name in B, text-image metrics (CLIP score) against the prompts in P.
Every input is validated before anything is written; a missing or corrupt weight file, an
unreadable image, folders that do not pair up or too few images for a metric are one clear
error (exit status 2). The record has the same envelope as every task's (``task: "score"``;
``kind: "score"`` is kept for older readers), ``inputs`` instead of model and sampler, a
``protocol`` naming the folders' contents, and joins the same tables and report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalsuite.config.pairings import Pairing
from evalsuite.data.prompts import split_lines
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import EvalResult, Inputs
from evalsuite.features.sources import FolderSource
from evalsuite.io import sha256_json
from evalsuite.metrics.base import PairedMetric
from evalsuite.metrics.weights import weights_verified
from evalsuite.tasks.base import Context
from evalsuite.tasks.setup import MetricFactories

PAIRING = Pairing.REFERENCE.value


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
        return _json_prompts(p, text, ids)
    lines = [ln.strip() for ln in split_lines(text) if ln.strip()]
    if len(lines) != len(ids):
        raise EvalsuiteError(f"prompts file {p} has {len(lines)} prompts for {len(ids)} images; "
                             "a .txt file needs one prompt per image, in sorted file-name order")
    return dict(zip(ids, lines))


def _json_prompts(p: Path, text: str, ids: list[str]) -> dict[str, str]:
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
    bad = [i for i in ids if not isinstance(data[i], str)]
    if bad:  # a null or a number is not a prompt (str() would score against "None")
        raise EvalsuiteError(f"prompts file {p}: the prompt of {bad[0]!r} is "
                             f"{type(data[bad[0]]).__name__}, not a string")
    return {i: data[i] for i in ids}


def _check_sizes(gen: FolderSource, ref: FolderSource | None, paired: bool,
                 factories: MetricFactories) -> None:
    """Refuse, before any metric runs, images a metric cannot take: pairs of different sizes,
    images smaller than a metric's window (``min_side``, SSIM's)."""
    if not paired or ref is None or not any(isinstance(f(), PairedMetric)
                                            for f in factories.values()):
        return  # only paired metrics compare pairs, and every one with a window (SSIM) is one
    for i in gen.ids:
        if gen.sizes[i] != ref.sizes[i]:
            (w, h), (rw, rh) = gen.sizes[i], ref.sizes[i]
            raise EvalsuiteError(f"paired metrics compare images of one size, but image "
                                 f"{i!r} is {h}x{w} in {gen.dir} and {rh}x{rw} in {ref.dir}")
    for name, factory in factories.items():
        metric = factory()
        need = getattr(metric, "min_side", 0)
        small = [(i, s) for src in (gen, ref) for i, s in src.sizes.items() if min(s) < need]
        if small:
            (i, (w, h)), label = small[0], metric.name.upper()
            raise EvalsuiteError(f"{name}: image {i!r} is {h}x{w} pixels, smaller than {label}'s "
                                 f"{need}x{need} window, so {label} is undefined for it ("
                                 f"{len(small) - 1} more are too small); use images of at least "
                                 f"{need} pixels a side, or leave {name} out of the metrics")


def _pairing(gen: FolderSource, ref: FolderSource | None, want: bool,
             factories: MetricFactories) -> tuple[dict[str, FolderSource], dict[str, str]]:
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


class ScoreTask:
    """See the module docstring. The images exist already: nothing is materialised."""

    name = "score"
    on_error = "raise"

    def prepare(self, ctx: Context) -> None:
        s, cache_dir = ctx.cfg.score, ctx.results / "cache"
        self.gen = FolderSource(s.gen_dir, cache_dir)
        self.ref = FolderSource(s.ref_dir, cache_dir) if s.ref_dir else None
        self.texts = load_prompts(s.prompts, self.gen.ids) if s.prompts else None
        self.paired, self.unavailable = _pairing(self.gen, self.ref, bool(s.pairs),
                                                 ctx.factories)
        _check_sizes(self.gen, self.ref, bool(self.paired), ctx.factories)
        gen, ref, texts = self.gen, self.ref, self.texts
        self.described = {
            "gen": {"dir": str(gen.dir.resolve()), **gen.identity()},
            "ref": {"dir": str(ref.dir.resolve()), **ref.identity()} if ref else None,
            "prompts": {"file": str(Path(s.prompts).resolve()), "n": len(texts),
                        "sha256": sha256_json([texts[i] for i in gen.ids])} if texts else None}

    def materialise(self, ctx: Context) -> dict[str, float]:
        return {}

    def incomplete(self, ctx: Context) -> None:
        return None

    def keep_present(self) -> None:
        return None

    def claim_key(self) -> str:
        return self.gen.identity()["sha256"][:16]

    def hash_inputs(self) -> dict[str, Any]:
        """The folders' contents (not their paths) are what was measured."""
        return {k: (v and {kk: vv for kk, vv in v.items() if kk not in ("dir", "file")})
                for k, v in self.described.items()}

    def protocol(self) -> dict[str, Any]:
        """No named protocol: the inputs' contents are what numbers are comparable by."""
        fields = {"task": "score", "inputs": self.hash_inputs()}
        return {"name": "custom", "version": 1, "source": "evalsuite score",
                "hash": sha256_json(fields), "fields": fields, "varies": [], "modified": []}

    def inputs(self, ctx: Context) -> tuple[Inputs, list[str]]:
        inputs = Inputs(samples=self.gen, texts=self.texts, reference=self.ref,
                        paired=self.paired, unavailable=self.unavailable,
                        samples_are_reconstructions=bool(ctx.cfg.score.reconstructions))
        return inputs, [PAIRING]

    def section(self, ctx: Context, ev: EvalResult) -> dict[str, Any]:
        cfg = ctx.cfg
        verified = all(weights_verified(m.get("weights")) for m in ev.metrics.values())
        return {
            "status": "complete",
            "kind": "score",
            "inputs": self.described,
            "dataset": {"name": f"folder:{self.gen.dir.name}",
                        "sha256": self.gen.identity()["sha256"], "count": len(self.gen.ids)},
            "weights_verified": verified,
            "assets": {"dir": str(Path(cfg.paths.assets_dir).expanduser().resolve()),
                       "verify": bool(cfg.metrics.verify_assets)},
        }
