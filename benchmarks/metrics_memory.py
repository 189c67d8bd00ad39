"""Benchmark: peak memory (max RSS) of FID + CLIP score over 200 vs. 2,000 generated images.

Each size runs in a fresh process (``evaluate_sources`` on a folder, as ``evalsuite score``
does) against the same 200 reference images; the process reports its peak resident set size.
FID keeps float64 running sums (O(D^2)) and streams features to disk; CLIP score keeps one
float per image. Target: the 2,000-image peak within 10% of the 200-image peak.

Models are seeded stand-ins: by default a small clean-fid-format TorchScript network and a
tiny open_clip config, so the run takes minutes, not hours, on a CPU (the pipeline's memory
behaviour does not depend on the network's size, which only adds a constant); ``--full``
uses a full Inception v3 and ViT-B-32.

    python benchmarks/metrics_memory.py [--sizes 200 2000] [--full]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(root: Path, n: int, full: bool) -> None:
    """Score gen_<n> against ref with FID + CLIP score; print JSON with the peak RSS."""
    from evalsuite.evaluate import EvalOptions, Inputs, evaluate_sources
    from evalsuite.features.sources import FolderSource
    from evalsuite.features.standins import register_tiny_clip
    from evalsuite.metrics.clip_score import CLIPScore
    from evalsuite.metrics.fid import CleanFID

    clip = "ViT-B-32" if full else register_tiny_clip()
    gen = FolderSource(root / f"gen_{n}")
    ref = FolderSource(root / "ref")
    t0 = time.perf_counter()
    res = evaluate_sources(
        Inputs(samples=gen, texts={i: f"photo {i}" for i in gen.ids}, reference=ref),
        {"fid_clean": CleanFID, "clip_score": lambda: CLIPScore(clip, "bench")}, [],
        EvalOptions(assets_dir=str(root / "assets"), allow_random_weights=True,
                    verify_assets=False, on_error="raise", batch_size=32,
                    cache_dir=root / f"cache_{n}"))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"n": n, "peak_mib": peak_kib / 1024, "seconds": time.perf_counter() - t0,
                      "fid": res.metrics["fid_clean"]["value"],
                      "clip_score": res.metrics["clip_score"]["value"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    ap.add_argument("--full", action="store_true", help="full Inception v3 and ViT-B-32")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), args.full)
        return
    from evalsuite.features.standins import photo_crops, save_clean_fid_standin, write_folder

    with tempfile.TemporaryDirectory(prefix="evalsuite-mem-") as tmp:
        root = Path(tmp)
        save_clean_fid_standin(root / "assets" / "inception-2015-12-05.pt", full=args.full)
        write_folder(root / "ref", photo_crops(200, 64, seed=2))
        for n in args.sizes:
            write_folder(root / f"gen_{n}", photo_crops(n, 64, seed=1, noise=20))
        rows = []
        for n in args.sizes:
            cmd = [sys.executable, __file__, "--child", str(root), str(n)] + \
                  (["--full"] if args.full else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for r in rows:
        print(f"{r['n']:>6} images: peak RSS {r['peak_mib']:8.1f} MiB  ({r['seconds']:.1f} s; "
              f"fid_clean {r['fid']:.4g}, clip_score {r['clip_score']:.4g})")
    if len(rows) >= 2:
        print(f"peak({rows[-1]['n']}) / peak({rows[0]['n']}) = "
              f"{rows[-1]['peak_mib'] / rows[0]['peak_mib']:.3f}")


if __name__ == "__main__":
    main()
