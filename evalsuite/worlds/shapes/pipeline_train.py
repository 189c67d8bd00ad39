"""Training stages of the shapes pipeline: data, VAE, then UNet + text encoder.

Every random draw comes from a generator seeded by the run seed (numpy for data order and
caption choice, a torch ``Generator`` for noise), so a run is a function of its ``TrainConfig``
and torch's thread count. The command line is ``evalsuite.worlds.shapes.train_pipeline``.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (besides torch's thread count)."""

    seed: int = 0
    n_train: int = 8000  # train-split items rendered once (texture seed: the item's)
    vae_steps: int = 800
    vae_batch: int = 12
    vae_lr: float = 1e-3
    kl_weight: float = 1e-4  # per latent element, against per-pixel reconstruction losses
    object_weight: float = 10.0  # reconstruction weight of object pixels (background: 1)
    unet_steps: int = 12000
    unet_batch: int = 16
    unet_lr: float = 1e-3
    text_lr: float = 1e-3
    warmup: int = 100
    cfg_dropout: float = 0.1  # empty prompt, for classifier-free guidance
    # v-prediction (as SD 2.x): its loss weighs the clean image by snr + 1, where epsilon
    # prediction weighs it by snr, which at low SNR (where colour and position are decided)
    # is near zero; with epsilon the short run learned clean shapes that ignored the prompt.
    prediction_type: str = "v_prediction"
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al. 2023)
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    log_every: int = 10  # loss curve resolution in train_log.json (mean of this many steps)


@dataclass
class TrainData:
    """Rendered train-split images and every caption variant's token ids."""

    images: torch.Tensor  # (N, 3, 64, 64) float in [-1, 1]
    objects: torch.Tensor  # (N, 1, 64, 64) bool: pixels away from the background colour
    token_ids: torch.Tensor  # (N, V, 77) int64: caption variant v of image n
    empty_ids: torch.Tensor  # (77,) the empty prompt (the unconditional branch of CFG)
    captions: list[str]  # one caption per image (variant 0), for logs


def build_data(n: int, seed: int, tokenizer: Any, size: int = 64) -> TrainData:
    """Render the first ``n`` items of the train split and tokenize all caption variants."""
    from evalsuite.worlds.shapes.splits import split_items
    from evalsuite.worlds.shapes.world import N_CAPTION_VARIANTS, caption, render

    items = split_items("train", n, seed=seed)
    images = np.stack([render(it.scene, size=size, texture_seed=it.seed) for it in tqdm(
        items, desc="render train split", unit="img", mininterval=2.0)])
    texts = [caption(it.scene, v) for it in items for v in range(N_CAPTION_VARIANTS)]
    ids = tokenize(tokenizer, texts).view(n, N_CAPTION_VARIANTS, -1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return TrainData(x.contiguous(), object_mask(x), ids, tokenize(tokenizer, [""])[0],
                     [caption(it.scene, 0) for it in items])


def object_mask(images: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """Pixels whose colour is away from the background's (the median of the image border,
    which no object reaches): objects cover a few percent of an image, so an unweighted
    reconstruction loss learns them last, and at first decodes every object in one mean colour."""
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., 0], images[..., -1]], -1)
    background = border.median(dim=-1).values[..., None, None]  # (N, 3, 1, 1)
    return (images - background).norm(dim=1, keepdim=True) > threshold


def tokenize(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Token ids exactly as StableDiffusionPipeline makes them (padded to max length)."""
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="step", mininterval=2.0, dynamic_ncols=True)


def _mean_curve(losses: list[float], every: int) -> list[float]:
    """Means of consecutive groups of ``every`` losses (the logged loss curve)."""
    return [float(np.mean(losses[i:i + every])) for i in range(0, len(losses), every)]


def train_vae(vae: torch.nn.Module, data: TrainData, cfg: TrainConfig) -> dict[str, Any]:
    """Train the VAE: L1 + MSE reconstruction of a posterior sample, object pixels weighted up
    (``object_weight``), plus a small KL term."""
    rng = np.random.default_rng([cfg.seed, 1])
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.vae_steps, cfg.warmup))
    vae.train()
    losses, mses, start, cpu0 = [], [], time.perf_counter(), time.process_time()
    with _progress(cfg.vae_steps, "vae") as bar:
        for _ in range(cfg.vae_steps):
            idx = torch.from_numpy(rng.integers(len(data.images), size=cfg.vae_batch))
            x, weight = data.images[idx], 1.0 + (cfg.object_weight - 1.0) * data.objects[idx].float()
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
            rec = vae.decode(z).sample
            mse = F.mse_loss(rec, x)
            err = (rec - x).abs()
            weighted = (weight * (err + err * err)).mean() / weight.mean()
            kl = post.kl().mean() / post.mean[0].numel()
            loss = weighted + cfg.kl_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
            mses.append(mse.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}", mse=f"{mse.item():.5f}", refresh=False)
            bar.update()
    vae.eval()
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu0,
            "loss": _mean_curve(losses, cfg.log_every),
            "mse": _mean_curve(mses, cfg.log_every), "final_mse": float(np.mean(mses[-50:]))}


@torch.no_grad()
def encode_latents(vae: torch.nn.Module, images: torch.Tensor, batch: int = 256
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations of every image (unscaled)."""
    means, stds = [], []
    for i in range(0, len(images), batch):
        post = vae.encode(images[i:i + batch]).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


def set_scaling_factor(vae: Any, latent_means: torch.Tensor) -> float:
    """Set the VAE's ``scaling_factor`` so scaled latents have unit standard deviation (the
    role of SD's 0.18215), recorded in its config so the pipeline uses it."""
    factor = float(1.0 / latent_means.std())
    vae.register_to_config(scaling_factor=round(factor, 6))
    return vae.config.scaling_factor


def _min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float,
                     prediction_type: str) -> torch.Tensor:
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return torch.clamp(snr, max=gamma) / (snr if prediction_type == "epsilon" else snr + 1)


class EMA:
    """Exponential moving average of parameters, with the usual warm-up of the decay."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float):
        self.params, self.decay, self.steps = params, decay, 0
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for s, p in zip(self.shadow, self.params):
            p.copy_(s)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The EMA weights in the models for the duration of the block (e.g. for samples)."""
        saved = [p.detach().clone() for p in self.params]
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for s, p in zip(saved, self.params):
                    p.copy_(s)


def _unet_loss(unet: torch.nn.Module, text_encoder: torch.nn.Module,
               latents: tuple[torch.Tensor, torch.Tensor], scale: float, data: TrainData,
               cfg: TrainConfig, acp: torch.Tensor, rngs: tuple[Any, torch.Generator]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's per-sample MSE and its Min-SNR-weighted mean (draws in a fixed order)."""
    (means, stds), (rng, gen) = latents, rngs
    n, n_var = data.token_ids.shape[:2]
    idx = torch.from_numpy(rng.integers(n, size=cfg.unet_batch))
    ids = data.token_ids[idx, torch.from_numpy(rng.integers(n_var, size=cfg.unet_batch))]
    drop = torch.from_numpy(rng.random(cfg.unet_batch) < cfg.cfg_dropout)
    ids = torch.where(drop[:, None], data.empty_ids[None, :], ids)
    z = (means[idx] + stds[idx] * torch.randn(means[idx].shape, generator=gen)) * scale
    noise = torch.randn(z.shape, generator=gen)
    t = torch.randint(0, len(acp), (cfg.unet_batch,), generator=gen)
    a = acp[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * z + (1 - a).sqrt() * noise
    target = noise if cfg.prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * z
    pred = unet(noisy, t, text_encoder(ids)[0]).sample
    per_sample = (pred - target).pow(2).mean(dim=(1, 2, 3))
    weights = _min_snr_weights(acp, t, cfg.min_snr_gamma, cfg.prediction_type)
    return per_sample, (per_sample * weights).mean()


def train_unet(unet: torch.nn.Module, text_encoder: torch.nn.Module, latents: tuple[torch.Tensor, torch.Tensor],
               scale: float, data: TrainData, cfg: TrainConfig,
               on_checkpoint: Callable[[int], None] | None = None, checkpoint_every: int = 0
               ) -> dict[str, Any]:
    """Train UNet and text encoder jointly (``cfg.prediction_type``) on SD's noise schedule.

    ``latents``: posterior (means, stds) of ``data.images``; each step draws a fresh posterior
    sample, as SD's training does. Ends with the EMA weights loaded into both models.
    """
    from diffusers import DDPMScheduler

    from evalsuite.models.tiny import SD_SCHEDULER_CONFIG

    noise_sched = DDPMScheduler.from_config(SD_SCHEDULER_CONFIG)
    acp = noise_sched.alphas_cumprod.float()
    rng = np.random.default_rng([cfg.seed, 2])
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + 2)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW([{"params": list(unet.parameters()), "lr": cfg.unet_lr},
                             {"params": list(text_encoder.parameters()), "lr": cfg.text_lr}],
                            weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.unet_steps, cfg.warmup))
    ema = EMA(params, cfg.ema_decay)
    unet.train()
    text_encoder.train()
    losses, start, cpu0 = [], time.perf_counter(), time.process_time()
    with _progress(cfg.unet_steps, "unet") as bar:
        for step in range(cfg.unet_steps):
            per_sample, loss = _unet_loss(unet, text_encoder, latents, scale, data, cfg, acp,
                                          (rng, gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            ema.update()
            losses.append(per_sample.mean().item())
            bar.set_postfix(mse=f"{losses[-1]:.4f}", refresh=False)
            bar.update()
            if on_checkpoint and checkpoint_every and (step + 1) % checkpoint_every == 0:
                with ema.applied():
                    unet.eval(), text_encoder.eval()
                    on_checkpoint(step + 1)
                    unet.train(), text_encoder.train()
    ema.copy_to_params()
    unet.eval()
    text_encoder.eval()
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu0,
            "mse": _mean_curve(losses, cfg.log_every),
            "final_mse": float(np.mean(losses[-100:]))}
