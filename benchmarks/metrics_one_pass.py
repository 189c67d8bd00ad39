"""Benchmark: FID + KID + CLIP score + CMMD + PSNR/SSIM/LPIPS on two image folders.

1. evalsuite, one call (``evaluate_sources``, what ``evalsuite score`` runs): each image is
   decoded once, Inception runs once per folder for FID and KID together, features cached;
2. the same evalsuite call again (metric values and features cached);
3. the reference libraries one after another, as a user would call them: clean-fid
   ``compute_fid`` (clean mode); clean-fid's KID (``compute_kid`` has no model hook, so its
   body: ``get_folder_features`` twice + ``kernel_distance``); CLIP score with open_clip;
   CMMD (google-research/cmmd is JAX/TF: its pipeline transcribed with the same open_clip
   model); PSNR and SSIM with scikit-image; LPIPS with the lpips package.

Weights are seeded stand-ins in the upstream formats (no downloads): a full Inception v3 as
clean-fid TorchScript, and one open_clip model (default ViT-B-32, random) for both CLIP score
and CMMD; the real defaults (ViT-g-14, ViT-L-14-336) are too large for a CPU benchmark.
Both sides use the same files, images, batch size and thread count.

    python benchmarks/metrics_one_pass.py [--n 64] [--size 128] [--clip ViT-B-32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def setup(root: Path, n: int, size: int, clip: str) -> dict:
    from evalsuite.features.standins import (photo_crops, save_clean_fid_standin,
                                             save_open_clip_standin, write_folder)

    assets = root / "assets"
    save_clean_fid_standin(assets / "inception-2015-12-05.pt", seed=0, full=True)
    from evalsuite.assets import open_clip_asset_name

    clip_file = save_open_clip_standin(assets / f"{open_clip_asset_name(clip, 'bench')}.bin",
                                       clip, "bench")
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), assets / "alexnet-owt-7be5be79.pth")
    gen = write_folder(root / "gen", photo_crops(n, size, seed=1, noise=30))
    ref = write_folder(root / "ref", photo_crops(n, size, seed=2, noise=5))
    prompts = {f"{i:05d}": f"a photograph, number {i}" for i in range(n)}
    return {"assets": assets, "clip_file": clip_file, "gen": gen, "ref": ref, "prompts": prompts}


def evalsuite_call(s: dict, clip: str, cache: Path) -> tuple[float, dict]:
    from evalsuite.evaluate import EvalOptions, Inputs, evaluate_sources
    from evalsuite.features.sources import FolderSource
    from evalsuite.metrics.clip_score import CLIPScore
    from evalsuite.metrics.cmmd import CMMD
    from evalsuite.metrics.fid import CleanFID
    from evalsuite.metrics.kid import CleanKID
    from evalsuite.metrics.lpips import LPIPS
    from evalsuite.metrics.pixel import PSNR, SSIM

    t0 = time.perf_counter()
    gen, ref = FolderSource(s["gen"], cache), FolderSource(s["ref"], cache)
    metrics = {"fid_clean": CleanFID, "kid_clean": CleanKID,
               "clip_score": lambda: CLIPScore(clip, "bench"), "cmmd": lambda: CMMD(clip, "bench"),
               "psnr": PSNR, "ssim": SSIM, "lpips": LPIPS}
    inputs = Inputs(samples=gen, texts=s["prompts"], reference=ref, paired={"reference": ref})
    opts = EvalOptions(assets_dir=str(s["assets"]), allow_random_weights=True,
                       verify_assets=False, on_error="raise", batch_size=32, cache_dir=cache)
    res = evaluate_sources(inputs, metrics, ["reference"], opts)
    return time.perf_counter() - t0, {k: v["value"] for k, v in res.metrics.items()}


def libraries_in_sequence(s: dict, clip: str) -> tuple[dict[str, float], dict]:
    import lpips
    import open_clip
    import torch
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from evalsuite.features.clip import load_open_clip
    from evalsuite.features.resize import cmmd_bicubic

    cpu, times, values = torch.device("cpu"), {}, {}
    gen, ref = str(s["gen"]), str(s["ref"])
    files = sorted(Path(gen).glob("*.png"))

    def read(p):
        return np.asarray(Image.open(p).convert("RGB"))

    t = time.perf_counter()
    model = InceptionV3W(str(s["assets"]), download=False, resize_inside=False)
    values["fid_clean"] = cfid.compute_fid(gen, ref, mode="clean", custom_feat_extractor=model,
                                           device=cpu, num_workers=0, batch_size=32,
                                           verbose=False)
    times["clean-fid compute_fid"] = time.perf_counter() - t

    t = time.perf_counter()
    f1, f2 = (cfid.get_folder_features(d, model, num_workers=0, batch_size=32, device=cpu,
                                       mode="clean", verbose=False) for d in (gen, ref))
    values["kid_clean"] = cfid.kernel_distance(f1, f2)
    times["clean-fid KID"] = time.perf_counter() - t

    t = time.perf_counter()
    net, _, preprocess = open_clip.create_model_and_transforms(clip, pretrained=str(s["clip_file"]))
    tok = open_clip.get_tokenizer(clip)
    cos = []
    with torch.inference_mode():
        for i in range(0, len(files), 32):
            chunk = files[i:i + 32]
            im = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in chunk])
            tx = tok([s["prompts"][p.stem] for p in chunk])
            a = torch.nn.functional.normalize(net.encode_image(im), dim=-1)
            b = torch.nn.functional.normalize(net.encode_text(tx), dim=-1)
            cos += (a * b).sum(-1).tolist()
    values["clip_score"] = float(np.mean(cos))
    times["open_clip CLIP score"] = time.perf_counter() - t

    t = time.perf_counter()
    net = load_open_clip(clip, "bench", str(s["clip_file"]))
    size = net.visual.image_size[0] if hasattr(net.visual, "image_size") else 224
    embs = []
    with torch.inference_mode():
        for d in (gen, ref):
            e = [torch.nn.functional.normalize(net.encode_image(torch.from_numpy(np.stack(
                [cmmd_bicubic(read(p), size) for p in sorted(Path(d).glob("*.png"))[i:i + 32]]))),
                dim=-1) for i in range(0, len(files), 32)]
            embs.append(torch.cat(e).double().numpy())
    x, y = embs
    g = 1 / 200
    k = lambda a, b: np.exp(-g * (-2 * a @ b.T + (a * a).sum(1)[:, None] + (b * b).sum(1)[None]))
    values["cmmd"] = 1000 * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    times["CMMD (cmmd pipeline, open_clip)"] = time.perf_counter() - t

    t = time.perf_counter()
    pairs = [(read(p), read(Path(ref) / p.name)) for p in files]
    values["psnr"] = float(np.mean([peak_signal_noise_ratio(b, a, data_range=255) for a, b in pairs]))
    values["ssim"] = float(np.mean([structural_similarity(
        b.astype(float), a.astype(float), channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255) for a, b in pairs]))
    times["scikit-image PSNR + SSIM"] = time.perf_counter() - t

    t = time.perf_counter()
    net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    alex = torch.load(s["assets"] / "alexnet-owt-7be5be79.pth", weights_only=True)
    for _, block in net.net.named_children():  # the same stand-in backbone as evalsuite's
        for idx, layer in block.named_children():
            for pname, param in layer.named_parameters(recurse=False):
                param.data.copy_(alex[f"features.{idx}.{pname}"])
    dist = []
    with torch.inference_mode():
        for i in range(0, len(files), 32):
            a, b = (torch.from_numpy(np.stack([read(Path(d) / p.name) for p in files[i:i + 32]]))
                    .permute(0, 3, 1, 2).float() / 127.5 - 1 for d in (gen, ref))
            dist += net(a, b).flatten().tolist()
    values["lpips"] = float(np.mean(dist))
    times["lpips LPIPS"] = time.perf_counter() - t
    return times, values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images per folder")
    ap.add_argument("--size", type=int, default=128, help="image side in pixels")
    ap.add_argument("--clip", default="ViT-B-32", help="open_clip model for CLIP score and CMMD")
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory(prefix="evalsuite-bench-") as tmp:
        s = setup(Path(tmp), args.n, args.size, args.clip)
        first, ours = evalsuite_call(s, args.clip, Path(tmp) / "cache")
        second, _ = evalsuite_call(s, args.clip, Path(tmp) / "cache")
        lib_times, theirs = libraries_in_sequence(s, args.clip)
    libs = sum(lib_times.values())
    print(f"{args.n} + {args.n} images of {args.size}x{args.size}, {torch.get_num_threads()} "
          f"threads, stand-in weights (Inception v3, {args.clip})")
    for name, t in lib_times.items():
        print(f"  {name:<36}{t:>9.2f} s")
    print(f"{'reference libraries, in sequence':<38}{libs:>9.2f} s")
    print(f"{'evalsuite, one call':<38}{first:>9.2f} s")
    print(f"{'evalsuite, same call again (cached)':<38}{second:>9.2f} s")
    print(f"libraries / evalsuite = {libs / first:.2f}x; cached / first = {second / first:.4f}")
    print("values (evalsuite | libraries; FID differs where scipy's sqrtm is inexact, n < 2048; "
          "KID: clean-fid's float32 and unseeded subsets):")
    for k in ("fid_clean", "kid_clean", "clip_score", "cmmd", "psnr", "ssim", "lpips"):
        mine = ours.get(k, ours.get(f"{k}/reference"))
        print(f"  {k:<12}{mine:>14.6g}{theirs[k]:>14.6g}")


if __name__ == "__main__":
    main()
