"""Benchmark: evalsuite's generation and feature extraction against the plain libraries.

1. Generation: ``DiffusersGenerator.generate`` (what ``evalsuite run`` calls per batch) vs a
   plain diffusers ``StableDiffusionPipeline`` call loop on the same components, prompts,
   steps, guidance, batch size and seeds (per-image CPU generators: both start from the same
   noise, so the images are compared too). Both get the same speed settings: ``--dtype``
   (float16 / bfloat16 on CUDA), SDPA attention (diffusers' ``AttnProcessor2_0``, its default
   on torch 2), ``--channels-last`` (UNet and VAE) and ``--compile`` (``torch.compile`` of the
   UNet). Reports images/s of each and evalsuite / raw (target >= 0.95: overhead < 5%).
2. Feature extraction: evalsuite's clean-fid Inception (mode clean, one pass over a folder)
   vs clean-fid ``get_folder_features`` on the same folder and TorchScript file; images/s.

On a CPU it runs the tiny model (``evalsuite.models.tiny``) and a small stand-in Inception, so
the test suite runs it (smoke, no timing assertion). On a GPU, e.g. SD v1.5 in fp16:

    python benchmarks/gpu.py --device cuda --model-dir /models/stable-diffusion-v1-5 \\
        --dtype float16 --resolution 512 --steps 25 --n 64 --batch 16 --channels-last \\
        --full-inception --feature-images 2000 [--compile]

Weights: ``--model-dir`` is a local diffusers folder (nothing is downloaded); the Inception is
a seeded stand-in with the real architecture (``--full-inception``), so the throughput is the
real network's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np


def load_components(model_dir: str | None) -> dict[str, Any]:
    """The tiny model's components, or those of a local diffusers pipeline folder."""
    if model_dir is None:
        from evalsuite.models.tiny import build_tiny_components

        return build_tiny_components()
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model_dir, safety_checker=None,
                                                   requires_safety_checker=False,
                                                   local_files_only=True)
    return {k: getattr(pipe, k) for k in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")}


def speed_settings(pipe: Any, channels_last: bool, compile_unet: bool) -> dict[str, Any]:
    """Apply the speed settings to a pipeline (in place); returns what is in effect."""
    import torch

    if channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if compile_unet and not hasattr(pipe.unet, "_orig_mod"):
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs", fullgraph=False)
    procs = {type(p).__name__ for p in getattr(pipe.unet, "attn_processors", {}).values()}
    return {"attention": sorted(procs), "channels_last": channels_last, "compile": compile_unet}


def timed(fn: Callable[[], Any], device: str, repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs of ``fn`` (after one warm-up), and its last output."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    out = fn()  # warm-up: kernels, autotuning, compilation
    best = float("inf")
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best, out


def generation(args: argparse.Namespace) -> dict[str, Any]:
    """evalsuite's generator vs a raw ``StableDiffusionPipeline`` loop; images/s."""
    import torch
    from diffusers import StableDiffusionPipeline

    from evalsuite.config.schema import SamplerConfig
    from evalsuite.models.generator import DiffusersGenerator, to_uint8

    comps = load_components(args.model_dir)
    sampler = SamplerConfig(steps=args.steps, guidance_scale=args.guidance, dtype=args.dtype,
                            batch_size=args.batch)
    ours = DiffusersGenerator(comps, sampler, args.resolution, args.device)
    settings = speed_settings(ours.pipe, args.channels_last, args.compile)
    # The raw pipeline shares the (already moved and cast) modules and the same scheduler kind.
    raw = StableDiffusionPipeline(vae=ours.pipe.vae, text_encoder=ours.pipe.text_encoder,
                                  tokenizer=ours.pipe.tokenizer, unet=ours.pipe.unet,
                                  scheduler=type(ours.pipe.scheduler).from_config(
                                      ours.pipe.scheduler.config),
                                  safety_checker=None, feature_extractor=None,
                                  requires_safety_checker=False)
    raw.set_progress_bar_config(disable=True)
    prompts = [f"a photograph of object number {i} on a table" for i in range(args.n)]
    seeds = list(range(1000, 1000 + args.n))
    batches = [(prompts[i:i + args.batch], seeds[i:i + args.batch])
               for i in range(0, args.n, args.batch)]

    def run_ours() -> np.ndarray:
        return np.concatenate([ours.generate(t, s) for t, s in batches])

    @torch.inference_mode()
    def run_raw() -> np.ndarray:
        out = []
        for t, s in batches:
            res = raw(prompt=t, height=args.resolution, width=args.resolution,
                      num_inference_steps=args.steps, guidance_scale=args.guidance,
                      generator=[torch.Generator("cpu").manual_seed(x) for x in s],
                      output_type="np")
            out.append(to_uint8(np.asarray(res.images, dtype=np.float32)))
        return np.concatenate(out)

    t_raw, img_raw = timed(run_raw, args.device, args.repeat)
    t_ours, img_ours = timed(run_ours, args.device, args.repeat)
    diff = int(np.abs(img_raw.astype(int) - img_ours.astype(int)).max())
    return {"images": args.n, "steps": args.steps, "batch": args.batch,
            "resolution": args.resolution, "dtype": args.dtype, **settings,
            "raw_images_per_s": args.n / t_raw, "evalsuite_images_per_s": args.n / t_ours,
            "evalsuite_over_raw": t_raw / t_ours, "max_abs_pixel_difference": diff}


def features(args: argparse.Namespace) -> dict[str, Any]:
    """evalsuite's clean-fid Inception pass vs clean-fid ``get_folder_features``; images/s."""
    import torch
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    from evalsuite.assets import ResolvedAsset
    from evalsuite.features.inception import CleanFIDInception
    from evalsuite.features.sources import FolderSource
    from evalsuite.features.standins import photo_crops, save_clean_fid_standin, write_folder

    with tempfile.TemporaryDirectory(prefix="evalsuite-gpu-bench-") as tmp:
        weights = save_clean_fid_standin(Path(tmp) / "inception-2015-12-05.pt",
                                         full=args.full_inception)
        folder = write_folder(Path(tmp) / "images",
                              photo_crops(args.feature_images, args.feature_size, seed=0))
        model = InceptionV3W(tmp, download=False, resize_inside=False).to(args.device)

        def run_theirs() -> np.ndarray:
            return cfid.get_folder_features(str(folder), model, num_workers=args.workers,
                                            batch_size=args.feature_batch,
                                            device=torch.device(args.device), mode="clean",
                                            verbose=False)

        ex = CleanFIDInception("clean", device=args.device)
        ex.bind({"inception_clean_fid": ResolvedAsset(weights, "bench", verified=False)})
        src = FolderSource(folder)

        def run_ours() -> np.ndarray:
            return ex([src.read(i) for i in src.ids])

        t_theirs, f_theirs = timed(run_theirs, args.device, args.repeat)
        t_ours, f_ours = timed(run_ours, args.device, args.repeat)
    n = args.feature_images
    return {"images": n, "size": args.feature_size, "full_inception": args.full_inception,
            "clean_fid_images_per_s": n / t_theirs, "evalsuite_images_per_s": n / t_ours,
            "evalsuite_over_clean_fid": t_theirs / t_ours,
            "max_abs_feature_difference": float(np.abs(f_theirs - f_ours).max())}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    import torch

    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--model-dir", default=None, help="a local diffusers pipeline folder "
                    "(default: the tiny model, built in memory)")
    ap.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                    help="default: float16 on CUDA, float32 on CPU")
    ap.add_argument("--resolution", type=int, default=None, help="default: 512 with --model-dir, "
                    "else 64")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--n", type=int, default=16, help="prompts (images) per timed run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs after a warm-up (best)")
    ap.add_argument("--feature-images", type=int, default=64)
    ap.add_argument("--feature-size", type=int, default=256)
    ap.add_argument("--feature-batch", type=int, default=32, help="clean-fid's batch size")
    ap.add_argument("--workers", type=int, default=0, help="clean-fid's DataLoader workers")
    ap.add_argument("--full-inception", action="store_true",
                    help="the real Inception v3 architecture (default on CUDA)")
    ap.add_argument("--skip", choices=["generation", "features"], default=None)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    args.dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")
    args.resolution = args.resolution or (512 if args.model_dir else 64)
    args.full_inception = args.full_inception or args.device.startswith("cuda")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse(argv)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads"
    out: dict[str, Any] = {"device": name, "torch": torch.__version__}
    if args.skip != "generation":
        g = out["generation"] = generation(args)
        print(f"generation on {name}: {g['images']} images, {g['steps']} steps, batch "
              f"{g['batch']}, {g['resolution']} px, {g['dtype']}, attention {g['attention']}, "
              f"channels_last={g['channels_last']}, compile={g['compile']}")
        print(f"  diffusers StableDiffusionPipeline loop {g['raw_images_per_s']:9.3f} images/s")
        print(f"  evalsuite DiffusersGenerator           {g['evalsuite_images_per_s']:9.3f} images/s")
        print(f"  evalsuite / raw = {g['evalsuite_over_raw']:.3f}; largest pixel difference "
              f"{g['max_abs_pixel_difference']}")
    if args.skip != "features":
        f = out["features"] = features(args)
        print(f"clean-fid Inception features ({'full' if f['full_inception'] else 'tiny'} "
              f"network), {f['images']} images of {f['size']} px:")
        print(f"  clean-fid get_folder_features          {f['clean_fid_images_per_s']:9.2f} images/s")
        print(f"  evalsuite CleanFIDInception            {f['evalsuite_images_per_s']:9.2f} images/s")
        print(f"  evalsuite / clean-fid = {f['evalsuite_over_clean_fid']:.3f}; largest feature "
              f"difference {f['max_abs_feature_difference']:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
