"""Benchmark: the reference libraries in sequence vs one ``evalsuite score`` call (cold, warm).

One invocation writes two folders of images (photo crops, ``--n`` each, ``--size`` px), a
prompts file and seeded stand-in weights in the upstream formats (no downloads), then runs,
each in its own process as a user would run them one after another:

- clean-fid ``compute_fid`` (mode clean), clean-fid KID (``get_folder_features`` twice +
  ``kernel_distance``: ``compute_kid`` has no model hook), ``python -m pytorch_fid`` (weights
  from ``$TORCH_HOME``, as pytorch-fid loads them), clean-fid ``compute_fid`` (mode
  legacy_tensorflow), CMMD (google-research/cmmd's pipeline, transcribed with open_clip),
  CLIP score with open_clip, PSNR + SSIM with scikit-image, LPIPS with ``lpips``;
- ``evalsuite score`` (the CLI) on a fresh results folder (cold), then the same command again
  (warm: values cached), once for each metric set:
  * ``paper``: one FID protocol (clean) + KID + CLIP score + PSNR/SSIM/LPIPS;
  * ``full``: fid_clean, fid_legacy, fid_legacy_tensorflow, KID, CMMD, CLIP score, PSNR/SSIM/LPIPS.
Each library job runs once; a set's library time is the sum of the jobs it needs.

Per job it prints wall time, CPU time (user + system, with the job's child processes), peak
RSS (from ``wait4``) and the 1-minute load average as it started, then the ratios, and checks that evalsuite's values equal the
libraries' within the parity tolerances (exit status 1 if one does not).

Library settings are their defaults except the device (CPU), the weights (the stand-ins) and
clean-fid's ``num_workers`` (its default 12 is sized for a GPU server; here the CPU count).
With fewer images than 2048 a covariance is singular, where scipy's ``sqrtm`` (clean-fid,
pytorch-fid) is inexact and evalsuite's eigenvalue distance is not: FID's tolerance is wider.

    python benchmarks/speed_libraries.py [--n 100] [--size 256] [--clip ViT-B-32] [--sets paper,full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIB_JOBS = {  # job -> (what it runs, the evalsuite metrics it is compared with)
    "fid_clean": ("clean-fid compute_fid (clean)", ["fid_clean"]),
    "kid_clean": ("clean-fid KID (clean)", ["kid_clean"]),
    "fid_legacy": ("pytorch-fid (python -m pytorch_fid)", ["fid_legacy"]),
    "fid_legacy_tf": ("clean-fid compute_fid (legacy_tensorflow)", ["fid_legacy_tensorflow"]),
    "cmmd": ("CMMD (cmmd pipeline, open_clip)", ["cmmd"]),
    "clip_score": ("open_clip CLIP score", ["clip_score"]),
    "pixel": ("scikit-image PSNR + SSIM", ["psnr/reference", "ssim/reference"]),
    "lpips": ("lpips LPIPS", ["lpips/reference"]),
}
SETS = {"paper": ["fid_clean", "kid_clean", "clip_score", "pixel", "lpips"],
        "full": list(LIB_JOBS)}
# relative tolerances (FID: scipy's sqrtm is inexact on the singular covariances of n < 2048)
TOLERANCE = {"fid_clean": 1e-2, "fid_legacy": 1e-2, "fid_legacy_tensorflow": 1e-2,
             "kid_clean": 1e-4, "cmmd": 1e-4, "clip_score": 1e-5, "psnr/reference": 1e-9,
             "ssim/reference": 1e-9, "lpips/reference": 1e-5}


# --- setup (in the parent process) -----------------------------------------------------------

def setup(root: Path, n: int, size: int, clip: str) -> dict:
    """Images, prompts and stand-in weights under ``root``; returns the paths (JSON-able)."""
    import torch
    import torchvision

    from evalsuite.assets import open_clip_asset_name
    from evalsuite.features.standins import (photo_crops, save_clean_fid_standin,
                                             save_open_clip_standin, save_pytorch_fid_standin,
                                             write_folder)

    assets = root / "assets"
    save_clean_fid_standin(assets / "inception-2015-12-05.pt", seed=0, full=True)
    pt = save_pytorch_fid_standin(assets / "pt_inception-2015-12-05-6726825d.pth", seed=3)
    hub = root / "torch_home" / "hub" / "checkpoints"  # where pytorch-fid looks
    hub.mkdir(parents=True)
    os.link(pt, hub / pt.name)
    clip_file = save_open_clip_standin(assets / f"{open_clip_asset_name(clip, 'bench')}.bin",
                                       clip, "bench")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(torchvision.models.alexnet().state_dict(), assets / "alexnet-owt-7be5be79.pth")
    gen = write_folder(root / "gen", photo_crops(n, size, seed=1, noise=30))
    ref = write_folder(root / "ref", photo_crops(n, size, seed=2, noise=5))
    prompts = root / "prompts.txt"
    prompts.write_text("".join(f"a photograph, number {i}\n" for i in range(n)))
    return {"root": str(root), "assets": str(assets), "clip": clip, "clip_file": str(clip_file),
            "gen": str(gen), "ref": str(ref), "prompts": str(prompts),
            "torch_home": str(root / "torch_home")}


# --- running a job in its own process ----------------------------------------------------------

def job_env(s: dict, threads: int | None) -> dict[str, str]:
    """Every job's environment: this checkout's evalsuite, pytorch-fid's weights folder,
    no hub access, the working folder."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TORCH_HOME=s["torch_home"], HF_HUB_OFFLINE="1",
               EVALSUITE_BENCH_CWD=s["root"])
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd``: wall time, CPU seconds (user + system, its reaped child processes such as
    DataLoader workers included) and peak RSS (MiB) from ``wait4``, and the values it printed
    (the JSON object on the last such line of its stdout)."""
    load = os.getloadavg()[0]  # other processes' demand on the CPUs as the job starts
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=env["EVALSUITE_BENCH_CWD"])
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:8])} ... failed ({proc.returncode}):\n{stderr[-3000:]}")
    last = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "load": load, "values": json.loads(last[-1]) if last else {}}


def library_cmd(job: str, s: dict) -> list[str]:
    """The command of one library job: pytorch-fid's own command line (as its README shows,
    wrapped only to print its ``FID:`` line as JSON), the others this script's ``--job``."""
    if job == "fid_legacy":
        argv = ["pytorch_fid", "--device", "cpu", s["gen"], s["ref"]]
        return [sys.executable, "-c",
                "import runpy, sys, io, contextlib, json\n"
                "buf = io.StringIO()\n"
                f"sys.argv = {argv!r}\n"
                "with contextlib.redirect_stdout(buf):\n"
                "    runpy.run_module('pytorch_fid', run_name='__main__')\n"
                "line = [l for l in buf.getvalue().splitlines() if l.startswith('FID:')][-1]\n"
                "print(json.dumps({'fid_legacy': float(line.split()[-1])}))\n"]
    return [sys.executable, __file__, "--job", job, "--setup", json.dumps(s)]


def evalsuite_cmd(s: dict, which: str, results: Path) -> list[str]:
    """``evalsuite score`` on the folders with the set's metrics (``metrics=full`` trimmed or
    extended) and the stand-in weights."""
    clip = s["clip"]
    over = [f"score.gen_dir={s['gen']}", f"score.ref_dir={s['ref']}",
            f"score.prompts={s['prompts']}", f"paths.results_dir={results}",
            f"paths.assets_dir={s['assets']}", "metrics.verify_assets=false", "metrics=full",
            f"metrics.items.clip_score.model_name={clip}",
            "metrics.items.clip_score.pretrained=bench"]
    if which == "paper":
        over += ["~metrics.items.fid_legacy", "~metrics.items.cmmd"]
    else:
        over += [f"metrics.items.cmmd.model_name={clip}", "metrics.items.cmmd.pretrained=bench",
                 "+metrics.items.fid_legacy_tensorflow._target_="
                 "evalsuite.metrics.fid.TensorflowLegacyFID"]
    return [sys.executable, "-m", "evalsuite.cli", "score", *over]


def evalsuite_values(results: Path) -> dict[str, float]:
    recs = sorted((results / "records").glob("*.json"), key=lambda p: p.stat().st_mtime)
    rec = json.loads(recs[-1].read_text())
    return {k: v["value"] for k, v in rec["metrics"].items()}


# --- the library jobs (each runs in its own process: --job NAME) ------------------------------

def _read(path: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def job_clean_fid(s: dict, mode: str) -> dict:
    import torch
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    model = InceptionV3W(s["assets"], download=False, resize_inside=mode != "clean")
    workers = min(12, os.cpu_count() or 1)
    if mode == "kid":
        f1, f2 = (cfid.get_folder_features(d, model, num_workers=workers, device=torch.device("cpu"),
                                           mode="clean", verbose=False) for d in (s["gen"], s["ref"]))
        return {"kid_clean": float(cfid.kernel_distance(f1, f2))}
    value = cfid.compute_fid(s["gen"], s["ref"], mode=mode, custom_feat_extractor=model,
                             device=torch.device("cpu"), num_workers=workers, verbose=False)
    return {"fid_clean" if mode == "clean" else "fid_legacy_tensorflow": float(value)}


def job_clip_score(s: dict) -> dict:
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    net, _, preprocess = open_clip.create_model_and_transforms(s["clip"], pretrained=s["clip_file"])
    tok = open_clip.get_tokenizer(s["clip"])
    files = sorted(Path(s["gen"]).glob("*.png"))
    prompts = Path(s["prompts"]).read_text().splitlines()
    cos: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(files), 32):
            im = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in files[i:i + 32]])
            a = torch.nn.functional.normalize(net.encode_image(im), dim=-1)
            b = torch.nn.functional.normalize(net.encode_text(tok(prompts[i:i + 32])), dim=-1)
            cos += (a * b).sum(-1).tolist()
    return {"clip_score": float(np.mean(cos))}


def job_cmmd(s: dict) -> dict:
    import numpy as np
    import open_clip
    import torch

    from evalsuite.features.resize import cmmd_bicubic

    net = open_clip.create_model(s["clip"], pretrained=s["clip_file"]).eval()
    size = net.visual.image_size
    size = size if isinstance(size, int) else size[0]
    embs = []
    with torch.inference_mode():
        for d in (s["gen"], s["ref"]):
            files = sorted(Path(d).glob("*.png"))
            e = [torch.nn.functional.normalize(net.encode_image(torch.from_numpy(np.stack(
                [cmmd_bicubic(_read(p), size) for p in files[i:i + 32]]))), dim=-1)
                for i in range(0, len(files), 32)]
            embs.append(torch.cat(e).double().numpy())
    x, y = embs
    g = 1 / (2 * 10.0 ** 2)  # cmmd: Gaussian RBF, sigma 10, biased MMD, x1000

    def k(a, b):
        return np.exp(-g * (-2 * a @ b.T + (a * a).sum(1)[:, None] + (b * b).sum(1)[None]))
    return {"cmmd": float(1000 * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()))}


def job_pixel(s: dict) -> dict:
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    files = sorted(Path(s["gen"]).glob("*.png"))
    pairs = [(_read(p), _read(Path(s["ref"]) / p.name)) for p in files]
    psnr = [peak_signal_noise_ratio(b, a, data_range=255) for a, b in pairs]
    ssim = [structural_similarity(b.astype(float), a.astype(float), channel_axis=-1,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255) for a, b in pairs]
    return {"psnr/reference": float(np.mean(psnr)), "ssim/reference": float(np.mean(ssim))}


def job_lpips(s: dict) -> dict:
    import lpips
    import numpy as np
    import torch

    net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    alex = torch.load(Path(s["assets"]) / "alexnet-owt-7be5be79.pth", weights_only=True)
    for _, block in net.net.named_children():  # the same stand-in backbone as evalsuite's
        for idx, layer in block.named_children():
            for pname, param in layer.named_parameters(recurse=False):
                param.data.copy_(alex[f"features.{idx}.{pname}"])
    files = sorted(Path(s["gen"]).glob("*.png"))
    dist: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(files), 32):
            a, b = (torch.from_numpy(np.stack([_read(Path(d) / p.name) for p in files[i:i + 32]]))
                    .permute(0, 3, 1, 2).float() / 127.5 - 1 for d in (s["gen"], s["ref"]))
            dist += net(a, b).flatten().tolist()
    return {"lpips/reference": float(np.mean(dist))}


def run_job(job: str, s: dict) -> dict:
    if job == "fid_clean":
        return job_clean_fid(s, "clean")
    if job == "kid_clean":
        return job_clean_fid(s, "kid")
    if job == "fid_legacy_tf":
        return job_clean_fid(s, "legacy_tensorflow")
    return {"cmmd": job_cmmd, "clip_score": job_clip_score, "pixel": job_pixel,
            "lpips": job_lpips}[job](s)


# --- the parent ------------------------------------------------------------------------------

def run_all(s: dict, sets: list[str], threads: int | None) -> dict:
    """Every library job the sets need, then evalsuite cold and warm per set."""
    env = job_env(s, threads)
    needed = [j for j in LIB_JOBS if any(j in SETS[w] for w in sets)]
    libs = {}
    for job in needed:
        libs[job] = measure(library_cmd(job, s), env)
        print(f"  done: {LIB_JOBS[job][0]} {libs[job]['wall']:.1f} s", file=sys.stderr)
    ours = {}
    for which in sets:
        results = Path(s["root"]) / f"results_{which}"
        cold = measure(evalsuite_cmd(s, which, results), env)
        cold["values"] = evalsuite_values(results)
        warm = measure(evalsuite_cmd(s, which, results), env)
        warm["values"] = evalsuite_values(results)
        ours[which] = {"cold": cold, "warm": warm}
        print(f"  done: evalsuite {which} {cold['wall']:.1f} s / {warm['wall']:.1f} s",
              file=sys.stderr)
    return {"libs": libs, "ours": ours}


def check(libs: dict, ours: dict, which: str) -> list[str]:
    """Metric values that differ from the libraries' by more than the tolerance."""
    bad = []
    for job in SETS[which]:
        for metric in LIB_JOBS[job][1]:
            key = metric if metric in libs[job]["values"] else metric.split("/")[0]
            theirs, mine = libs[job]["values"][key], ours[which]["cold"]["values"][metric]
            rel = abs(mine - theirs) / max(abs(theirs), 1e-12)
            ok = rel <= TOLERANCE[metric]
            print(f"    {metric:<24}{mine:>14.7g}{theirs:>14.7g}   rel {rel:.1e} "
                  f"(tol {TOLERANCE[metric]:.0e}) {'ok' if ok else 'DIFFERENT'}")
            if not ok:
                bad.append(f"{which}: {metric}")
    return bad


def _load(job: dict) -> str:
    """The 1-minute load average as the job started (the CPUs' demand from other work)."""
    return f"{job['load']:.1f}" if "load" in job else ""


def report(r: dict, sets: list[str]) -> list[str]:
    """Print the table per set; returns the failed parity checks."""
    libs, ours, bad = r["libs"], r["ours"], []
    row = "  {:<44}{:>9.2f} s{:>9.2f} s{:>9.0f} MiB{:>7}"
    for which in sets:
        print(f"\n[{which}] {'job':<42}{'wall':>11}{'CPU':>11}{'peak RSS':>13}{'load':>7}")
        for job in SETS[which]:
            j = libs[job]
            print(row.format(LIB_JOBS[job][0], j["wall"], j["cpu"], j["rss"], _load(j)))
        tot = {k: sum(libs[j][k] for j in SETS[which]) for k in ("wall", "cpu")}
        peak = max(libs[j]["rss"] for j in SETS[which])
        print(row.format("reference libraries, in sequence", tot["wall"], tot["cpu"], peak, ""))
        cold, warm = ours[which]["cold"], ours[which]["warm"]
        print(row.format("evalsuite score, cold", cold["wall"], cold["cpu"], cold["rss"],
                         _load(cold)))
        print(row.format("evalsuite score, warm (cached)", warm["wall"], warm["cpu"], warm["rss"],
                         _load(warm)))
        print(f"  libraries / evalsuite cold: wall {tot['wall'] / cold['wall']:.2f}x, "
              f"CPU {tot['cpu'] / cold['cpu']:.2f}x; libraries / warm: wall "
              f"{tot['wall'] / warm['wall']:.1f}x")
        print("  values (evalsuite | libraries):")
        bad += check(libs, ours, which)
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="images per folder")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels")
    ap.add_argument("--clip", default="ViT-B-32", help="open_clip model for CLIP score and CMMD")
    ap.add_argument("--sets", default="paper,full", help="comma-separated: paper, full")
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for every job (default: the libraries' own choice)")
    ap.add_argument("--json", default=None, help="also write the measurements to this file")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--setup", help=argparse.SUPPRESS)
    ap.add_argument("--setup-in", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.job:  # a child: one library job
        print(json.dumps(run_job(args.job, json.loads(args.setup))))
        return
    if args.setup_in:  # a child: write the inputs (keeps torch out of the parent, see below)
        print(json.dumps(setup(Path(args.setup_in), args.n, args.size, args.clip)))
        return
    sets = [w for w in args.sets.split(",") if w]
    unknown = set(sets) - set(SETS)
    if unknown:
        ap.error(f"unknown set(s) {sorted(unknown)}; choose from {sorted(SETS)}")
    with tempfile.TemporaryDirectory(prefix="evalsuite-speed-") as tmp:
        # Setup runs in a child: a forked job's peak RSS starts from its parent's RSS at fork
        # (the kernel keeps it across exec), so the parent must stay small.
        out = subprocess.run([sys.executable, __file__, "--setup-in", tmp, "--n", str(args.n),
                              "--size", str(args.size), "--clip", args.clip], check=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
                             text=True).stdout
        s = json.loads(out.strip().splitlines()[-1])
        r = run_all(s, sets, args.threads)
    print(f"{args.n} + {args.n} images of {args.size}x{args.size}, {os.cpu_count()} CPUs, "
          f"stand-in weights (Inception v3, {args.clip}, AlexNet)")
    bad = report(r, sets)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **r}, indent=1))
    if bad:
        print("values outside the parity tolerance: " + ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
