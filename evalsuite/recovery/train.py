"""The distillation loop: student (ablated) vs teacher (unablated, frozen), VAE and text
encoder frozen, AdamW, gradient accumulation, optional EMA, mixed precision (CUDA) and
gradient checkpointing; a checkpoint every ``checkpoint_every`` steps and at the end.

Determinism: every random draw of step ``s`` (the batch's items, the VAE posterior draws, the
noise and the timesteps) comes from generators seeded by ``(seed, s, micro-batch)``, never
from a stream that runs across steps, and the global torch RNG state is checkpointed as well.
A run killed after any checkpoint and started again therefore ends, on CPU, with weights
bit-identical to an uninterrupted run (tested).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite.models.vae import encode
from evalsuite.recovery.checkpoint import load_step, remove_leftovers, save_step, step_dirs
from evalsuite.recovery.data import TrainingData, batch_indices
from evalsuite.recovery.features import StageMatch, capture
from evalsuite.recovery.losses import LossTerms, distillation_loss
from evalsuite.recovery.settings import RecoverySettings

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Job:
    """Everything one recovery run trains with."""

    teacher: torch.nn.Module
    student: torch.nn.Module
    components: dict[str, Any]  # vae, text_encoder, tokenizer, scheduler (frozen)
    data: TrainingData
    match: StageMatch
    settings: RecoverySettings
    resolution: int
    device: str
    folder: Path


@dataclass
class State:
    """What a checkpoint restores besides the weights."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # process CPU seconds of the steps (all threads)
    ema: dict[str, torch.Tensor] | None = None


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _optimizer(job: Job) -> torch.optim.Optimizer:
    s = job.settings
    return torch.optim.AdamW([p for p in job.student.parameters() if p.requires_grad], lr=s.lr,
                             betas=s.adam_betas, eps=s.adam_eps, weight_decay=s.weight_decay)


def _batch(job: Job, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents scaled for the UNet, text embeddings) of micro-batch ``micro`` of ``step``."""
    s, c = job.settings, job.components
    first = (step * s.grad_accumulation + micro) * s.batch_size
    idx = batch_indices(len(job.data), s.seed, first, s.batch_size)
    items = [job.data.item(i, job.resolution) for i in idx]
    with torch.no_grad():
        if items[0][0].dtype == np.uint8:
            seeds = [_seed(s.seed, first + k, 1) for k in range(len(items))]
            z = encode(c["vae"], np.stack([x for x, _ in items]), "sample", seeds)
            latents = z.clone() * float(c["vae"].config.scaling_factor)
        else:  # the source gives latents in the UNet's space already
            latents = torch.from_numpy(np.stack([x for x, _ in items]).astype(np.float32))
        texts = [_drop_caption(t, s.caption_dropout, _seed(s.seed, first + k, 3))
                 for k, (_, t) in enumerate(items)]
        tok = c["tokenizer"](texts, padding="max_length", truncation=True,
                             max_length=tok_len(c["tokenizer"]), return_tensors="pt")
        emb = c["text_encoder"](tok.input_ids.to(job.device))[0]
    return latents.to(job.device), emb


def _drop_caption(text: str, rate: float, seed: int) -> str:
    """``""`` with probability ``rate`` (a function of ``seed``): trains the unconditional
    prediction that classifier-free guidance extrapolates from, as the teacher's training did."""
    return "" if rate > 0 and np.random.default_rng(seed).random() < rate else text


def tok_len(tokenizer: Any) -> int:
    return int(getattr(tokenizer, "model_max_length", 77))


def _micro_step(job: Job, noise_sched: Any, step: int, micro: int) -> LossTerms:
    """Forward teacher and student on one micro-batch; the loss terms (not yet backward)."""
    latents, emb = _batch(job, step, micro)
    g = torch.Generator("cpu").manual_seed(_seed(job.settings.seed, step, micro, 2))
    noise = torch.randn(latents.shape, generator=g).to(job.device)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (latents.shape[0],), generator=g).to(job.device)
    noisy = noise_sched.add_noise(latents, noise, t)
    target = noise if noise_sched.config.prediction_type == "epsilon" else noise_sched.get_velocity(latents, noise, t)
    mp = job.settings.mixed_precision
    with torch.autocast(torch.device(job.device).type, dtype=DTYPES.get(mp), enabled=mp != "no"):
        with torch.no_grad(), capture(job.teacher, [t_ for _, t_ in job.match.pairs]) as tf:
            t_pred = job.teacher(noisy, t, emb).sample
        with capture(job.student, [s_ for s_, _ in job.match.pairs]) as sf:
            s_pred = job.student(noisy, t, emb).sample
        return distillation_loss(s_pred, target, t_pred, dict(sf), dict(tf), job.match.pairs,
                                 job.settings.loss)


def _train_step(job: Job, opt: torch.optim.Optimizer, scaler: Any, noise_sched: Any,
                state: State) -> dict[str, float]:
    """One optimizer step over ``grad_accumulation`` micro-batches; the mean loss terms."""
    s = job.settings
    opt.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for micro in range(s.grad_accumulation):
        terms = _micro_step(job, noise_sched, state.step, micro)
        scaler.scale(terms.total / s.grad_accumulation).backward()
        for k, v in terms.values().items():
            sums[k] = sums.get(k, 0.0) + v / s.grad_accumulation
    scaler.step(opt)
    scaler.update()
    if state.ema is not None:
        with torch.no_grad():
            for name, p in job.student.named_parameters():
                state.ema[name].lerp_(p.detach(), 1.0 - float(s.ema_decay))
    return sums


def _resume(job: Job, opt_factory: Any, scaler: Any) -> tuple[torch.optim.Optimizer, State]:
    """Continue from the newest complete checkpoint, or start at step 0."""
    remove_leftovers(job.folder / "checkpoints")
    state = State()
    done = step_dirs(job.folder)
    if done:
        student, ema, saved = load_step(done[-1], job.device)
        job.student = student.train()
        state = State(saved["step"], saved["history"], saved["wall_s"], saved.get("cpu_s", 0.0), ema)
        torch.set_rng_state(saved["rng"])
        if saved.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        scaler.load_state_dict(saved["scaler"])
    elif job.settings.ema_decay is not None:
        state.ema = {n: p.detach().clone() for n, p in job.student.named_parameters()}
    opt = opt_factory(job)
    if done:
        opt.load_state_dict(saved["optimizer"])
    return opt, state


def _checkpoint(job: Job, opt: torch.optim.Optimizer, scaler: Any, state: State) -> None:
    saved = {"step": state.step, "history": state.history, "wall_s": state.wall_s, "cpu_s": state.cpu_s,
             "optimizer": opt.state_dict(), "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    save_step(job.folder, state.step, job.student, state.ema, saved, job.settings.keep_checkpoints)


def train(job: Job) -> tuple[State, bool]:
    """Train to ``settings.steps`` (resuming if checkpoints exist); (state, finished). With
    ``stop_after`` the loop stops after that many steps of this call, as if killed."""
    from diffusers import DDPMScheduler
    from tqdm.auto import tqdm

    s = job.settings
    noise_sched = DDPMScheduler.from_config(job.components["scheduler"].config)
    scaler = torch.amp.GradScaler("cuda", enabled=s.mixed_precision == "fp16")
    job.student.to(job.device).train()
    if s.gradient_checkpointing:
        job.student.enable_gradient_checkpointing()
    opt, state = _resume(job, _optimizer, scaler)
    if s.gradient_checkpointing:
        job.student.enable_gradient_checkpointing()
    bar = tqdm(total=s.steps, initial=state.step, desc="recover", disable=not s.progress)
    ran = 0
    while state.step < s.steps and (s.stop_after is None or ran < s.stop_after):
        t0, c0 = time.perf_counter(), time.process_time()
        losses = _train_step(job, opt, scaler, noise_sched, state)
        state.step, ran = state.step + 1, ran + 1
        state.wall_s += time.perf_counter() - t0
        state.cpu_s += time.process_time() - c0
        state.history.append({"step": state.step, **losses})
        bar.update(1)
        bar.set_postfix(loss=f"{losses['total']:.4f}")
        if state.step % s.checkpoint_every == 0 or state.step == s.steps:
            _checkpoint(job, opt, scaler, state)
    bar.close()
    return state, state.step >= s.steps
