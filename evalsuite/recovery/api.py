"""Recovery as a run uses it: validate and key it up front, then train once (or reuse).

``Recovery`` is built while a run validates its inputs (nothing written); ``ensure`` then
trains the student -- or, when ``<results>/cache/recovery/<key>/final`` exists, trains
nothing -- and returns the summary the record's ``recovery`` section is made of. The key is
the sha256 of the teacher's identity, the ablation specs, the settings that change the
weights and the training data's sha256, so a rerun of a sweep reuses every recovered cell.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.io import atomic_write_text, cached_sha256, file_lock, sha256_json
from evalsuite.recovery.data import TrainingData
from evalsuite.recovery.settings import RecoverySettings

log = logging.getLogger(__name__)

KEY_VERSION = 1  # bump when the training loop changes what a key trains
CURVE_POINTS = 50


def compact_curve(history: Sequence[dict[str, float]], points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """The loss history as at most ``points`` window means (``step``: each window's last step)."""
    if not history:
        return {}
    n = len(history)
    edges = [round(i * n / min(points, n)) for i in range(min(points, n) + 1)]
    out: dict[str, list[float]] = {k: [] for k in history[0]}
    for a, b in zip(edges, edges[1:]):
        window = history[a:b]
        for k in out:
            vals = [h[k] for h in window]
            out[k].append(float(window[-1][k]) if k == "step" else float(sum(vals) / len(vals)))
    out["step"] = [int(s) for s in out["step"]]
    return out


class Recovery:
    """One cell's recovery: settings, data, key and folder (see the module docstring)."""

    def __init__(self, settings: RecoverySettings, data: TrainingData, teacher: dict[str, Any],
                 specs: Sequence[Any], results: Path, device: str, resolution: int):
        if not specs:
            raise ConfigError("recovery=kd fine-tunes an ablated UNet, but this run has no ablation; "
                              "add ablation=[...] or use recovery=none")
        if not isinstance(data, TrainingData):
            raise ConfigError(f"recovery.data built a {type(data).__name__}, not a TrainingData source")
        settings.check(device)
        from evalsuite.ablations import spec_to_dict

        self.settings, self.data, self.teacher, self.specs = settings, data, teacher, list(specs)
        self.device, self.resolution = device, resolution
        self.header = {"version": KEY_VERSION, "teacher": teacher,
                       "ablations": [spec_to_dict(s) for s in self.specs],
                       "settings": settings.key_fields(), "resolution": resolution,
                       "data_sha256": data.identity()["sha256"]}
        self.key = sha256_json(self.header)
        self.folder = results / "cache" / "recovery" / self.key
        self.trained_this_run = False

    @property
    def unet_folder(self) -> Path:
        """The recovered UNet (diffusers folder with the ablation record)."""
        return self.folder / "final" / "unet"

    def ensure(self, components: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The finished recovery's summary; trains first unless it is cached. ``components``
        loads the teacher's pipeline (called only when training is needed)."""
        from evalsuite.recovery.checkpoint import read_final

        from evalsuite.recovery.features import match_stages

        summary = read_final(self.folder)
        if summary is not None:
            self._verify(summary)
        else:
            parts = components()
            # A teacher the ablations do not fit: ConfigError before anything is written.
            match = match_stages(parts["unet"].config, self.specs)
            # Shards of one cell start together: one trains, the others wait and reuse it.
            with file_lock(self.folder.parent / f"{self.key}.lock"):
                summary = read_final(self.folder) or self._train(parts, match)
        self.summary = summary
        return summary

    def _verify(self, summary: dict[str, Any]) -> None:
        """Cached weights must still be the ones trained (their sha256 is in the store key)."""
        weights = self.unet_folder / "diffusion_pytorch_model.safetensors"
        digest_cache = self.folder.parents[1] / "sha256.json"
        found = cached_sha256(weights, digest_cache) if weights.is_file() else "missing"
        if found != summary.get("weights_sha256"):
            raise EvalsuiteError(f"the recovered weights {weights} do not match the sha256 their "
                                 f"training recorded ({found}); remove {self.folder} to train again")

    def _train(self, parts: dict[str, Any], match: Any) -> dict[str, Any]:
        from evalsuite.ablations import apply_ablations
        from evalsuite.recovery.train import Job, train

        teacher = parts["unet"]
        for name in ("unet", "vae", "text_encoder"):
            if parts.get(name) is not None:  # a source of latents needs no VAE
                parts[name].to(self.device)
        student = apply_ablations(copy.deepcopy(teacher), self.specs)
        for p in student.parameters():
            p.requires_grad_(True)
        self._write_header()
        job = Job(teacher.eval(), student, parts, self.data, match, self.settings, self.resolution,
                  self.device, self.folder)
        state, finished = train(job)
        if not finished:
            raise RecoveryStopped(state.step, self.folder)
        self.trained_this_run = True
        return self._finish(job, state)

    def _write_header(self) -> None:
        path = self.folder / "recovery.json"
        if not path.is_file():
            atomic_write_text(path, json.dumps({"key": self.key, **self.header,
                                                "data": self.data.identity()}, indent=1, sort_keys=True))

    def _finish(self, job: Any, state: Any) -> dict[str, Any]:
        from evalsuite.ablations import load_state_dict_strict
        from evalsuite.recovery.checkpoint import save_final

        unet = job.student.eval()
        if state.ema is not None:  # the EMA weights are the recovered model
            unet = copy.deepcopy(unet)
            load_state_dict_strict(unet, {**unet.state_dict(), **state.ema}, what="EMA weights")
        summary = {"method": "kd", "key": self.key, "teacher": self.teacher,
                   "ablations": self.header["ablations"], "data": self.data.identity(),
                   "settings": self.settings.key_fields(), "seed": self.settings.seed,
                   "steps": state.step, "loss_curve": compact_curve(state.history),
                   "final_loss": state.history[-1] if state.history else None,
                   "wall_s": state.wall_s, "cpu_s": state.cpu_s, "stages": job.match.describe(), "device": self.device}
        return save_final(self.folder, unet.to("cpu"), summary)

    def identity(self) -> dict[str, Any]:
        """What the sample store key gets: the recovery key and the recovered weights' sha256."""
        return {"key": self.key, "weights_sha256": self.summary["weights_sha256"]}

    def section(self) -> dict[str, Any]:
        """The record's ``recovery`` section."""
        return {**self.summary, "folder": str(self.folder), "trained_this_run": self.trained_this_run}


class RecoveryStopped(ConfigError):
    """Training stopped before its last step (``recovery.stop_after``): nothing to evaluate."""

    def __init__(self, step: int, folder: Path):
        super().__init__(f"recovery stopped after step {step} (recovery.stop_after); its checkpoints "
                         f"are in {folder}/checkpoints and the next run resumes from the newest")
        self.step = step
