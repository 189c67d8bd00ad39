"""Train the shapes world's evaluators: ``python -m evalsuite.worlds.shapes.train_evaluators``.

Trains, on renders of the train split, the attribute checker (cross-entropy per slot, with
mild blur/noise/brightness augmentation so that it reads imperfect generator samples too) and
the contrastive pair (image encoder + text encoder, symmetric InfoNCE, a random caption
paraphrase per step), then measures them on the val split and writes
``weights/shapes_{checker,image_encoder,text_encoder}.safetensors`` and ``train_log.json``
(settings, loss curves every 10 steps, CPU time, val numbers, file sha256s).

Deterministic for a given ``--seed`` and ``--threads`` (data order, augmentation and init are
seeded; CPU kernels are deterministic at a fixed thread count).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evalsuite.io import atomic_write_bytes, sha256_file
from evalsuite.worlds.shapes import nets
from evalsuite.worlds.shapes.splits import Item, split_items
from evalsuite.worlds.shapes.world import N_CAPTION_VARIANTS, caption, render

WEIGHTS_DIR = Path(__file__).parent / "weights"
FILES = {kind: f"shapes_{kind}.safetensors" for kind in nets.NETS}


def render_items(items: list[Item], size: int = nets.IMAGE_SIZE) -> np.ndarray:
    """uint8 (N, size, size, 3) renders of ``items`` with their texture seeds."""
    return np.stack([render(it.scene, size, it.seed) for it in items])


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mild per-image blur (sigma 0-1.2), brightness/contrast (+-6%) and noise (std <= 0.04)."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=gen) * 1.2
    r = torch.arange(-3, 4, dtype=torch.float32)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)  # (n, 7) separable kernels, one per image
    xp = F.pad(x, (3, 3, 3, 3), mode="replicate")
    # Grouped conv applies image i's kernel to its 3 channels.
    kh = k.repeat_interleave(3, 0).view(3 * n, 1, 1, 7)
    kv = k.repeat_interleave(3, 0).view(3 * n, 1, 7, 1)
    y = F.conv2d(xp.reshape(1, 3 * n, *xp.shape[2:]), kh, groups=3 * n)
    y = F.conv2d(y, kv, groups=3 * n).view_as(x)
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.12
    shift = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.06
    noise = torch.randn(x.shape, generator=gen) * torch.rand(n, 1, 1, 1, generator=gen) * 0.04
    return y * gain + shift + noise


def _schedule(step: int, total: int, lr: float) -> float:
    """Linear warm-up over 5% of the steps, then cosine decay to 5% of ``lr``."""
    warm = max(1, total // 20)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _loop(name: str, params: list[torch.nn.Parameter], steps: int, lr: float,
          step_fn: Callable[[int], torch.Tensor]) -> list[list[float]]:
    """Adam over ``steps`` calls of ``step_fn`` (returns the loss); log every 10 steps."""
    opt = torch.optim.Adam(params, lr=lr)
    log: list[list[float]] = []
    bar = tqdm(range(steps), desc=name, mininterval=2.0)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _schedule(step, steps, lr)
        loss = step_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            log.append([step, round(loss.item(), 5)])
            bar.set_postfix(loss=f"{loss.item():.4f}")
    return log


def train_checker(images: np.ndarray, items: list[Item], steps: int, batch: int,
                  seed: int) -> tuple[torch.nn.Module, list[list[float]]]:
    """The attribute checker on ``images`` (renders of ``items``)."""
    torch.manual_seed(seed)
    net = nets.AttributeChecker()
    targets = nets.slot_targets([it.scene.slots() for it in items])
    rng = np.random.default_rng([seed, 1])
    gen = torch.Generator().manual_seed(seed + 1)

    def step_fn(step: int) -> torch.Tensor:
        idx = rng.choice(len(items), batch, replace=False)
        x = augment(nets.to_input(images[idx]), gen)
        return nets.checker_loss(net(x), targets[torch.from_numpy(idx)])

    net.train()
    log = _loop("checker", list(net.parameters()), steps, 2e-3, step_fn)
    return net.eval(), log


def train_contrastive(images: np.ndarray, items: list[Item], steps: int, batch: int,
                      seed: int) -> tuple[torch.nn.Module, torch.nn.Module, list[list[float]]]:
    """Image and text encoders with the symmetric InfoNCE loss (learned temperature)."""
    torch.manual_seed(seed + 2)
    image_net, text_net = nets.ImageEncoder(), nets.TextEncoder()
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    rng = np.random.default_rng([seed, 2])

    def step_fn(step: int) -> torch.Tensor:
        idx = rng.choice(len(items), batch, replace=False)
        variants = rng.integers(N_CAPTION_VARIANTS, size=batch)
        texts = [caption(items[i].scene, int(v)) for i, v in zip(idx, variants)]
        img = F.normalize(image_net(nets.to_input(images[idx])), dim=-1)
        txt = F.normalize(text_net(nets.tokenize(texts)), dim=-1)
        logits = img @ txt.T * log_scale.clamp(max=math.log(100)).exp()
        # Captions of one truth key in a batch are positives of each other, not negatives.
        keys = [str(sorted(items[i].scene.slots().items())) for i in idx]
        same = torch.tensor([[a == b for b in keys] for a in keys], dtype=torch.float32)
        target = same / same.sum(1, keepdim=True)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    image_net.train(), text_net.train()
    params = [*image_net.parameters(), *text_net.parameters(), log_scale]
    log = _loop("contrastive", params, steps, 1e-3, step_fn)
    return image_net.eval(), text_net.eval(), log


def validate(checker: torch.nn.Module, image_net: torch.nn.Module, text_net: torch.nn.Module,
             n: int, seed: int) -> dict[str, Any]:
    """Checker accuracy per attribute and matched-vs-shuffled CLIP-analogue on val renders."""
    from evalsuite.worlds.shapes import scoring

    items = split_items("val", n, seed)
    images = render_items(items)
    acc = scoring.summarise([it.scene for it in items], scoring.read_images(checker, images))
    clip = scoring.matched_vs_shuffled(scoring.embed_images(image_net, images),
                                       scoring.embed_texts(text_net, [it.caption for it in items]))
    return {"n": n, "checker": acc["overall"], "clip": clip}


def train_all(out_dir: Path, seed: int = 0, n_train: int = 16000, checker_steps: int = 1600,
              clip_steps: int = 1200, batch: int = 96, n_val: int = 1000) -> dict[str, Any]:
    """Train the three networks, validate, write weights and ``train_log.json`` to ``out_dir``."""
    t0, c0 = time.time(), time.process_time()
    items = split_items("train", n_train, seed)
    images = render_items(items)
    checker, checker_log = train_checker(images, items, checker_steps, batch, seed)
    image_net, text_net, clip_log = train_contrastive(images, items, clip_steps, batch, seed)
    val = validate(checker, image_net, text_net, n_val, seed)
    settings = {"seed": seed, "n_train": n_train, "checker_steps": checker_steps,
                "clip_steps": clip_steps, "batch": batch, "threads": torch.get_num_threads(),
                "torch": torch.__version__}
    files = {}
    for kind, net in (("checker", checker), ("image_encoder", image_net),
                      ("text_encoder", text_net)):
        path = nets.save_net(net, kind, out_dir / FILES[kind], settings)
        files[FILES[kind]] = sha256_file(path)
    log = {"settings": settings, "wall_s": round(time.time() - t0, 1),
           "cpu_s": round(time.process_time() - c0, 1), "val": val, "sha256": files,
           "loss": {"checker": checker_log, "contrastive": clip_log}}
    atomic_write_bytes(out_dir / "train_log.json", json.dumps(log, indent=1).encode())
    return log


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where the weights go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (part of determinism)")
    p.add_argument("--n-train", type=int, default=16000, help="rendered train images")
    p.add_argument("--checker-steps", type=int, default=1600)
    p.add_argument("--clip-steps", type=int, default=1200)
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--n-val", type=int, default=1000)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    log = train_all(a.out, a.seed, a.n_train, a.checker_steps, a.clip_steps, a.batch, a.n_val)
    print(json.dumps({k: log[k] for k in ("wall_s", "cpu_s", "val", "sha256")}, indent=1))


if __name__ == "__main__":
    main()
