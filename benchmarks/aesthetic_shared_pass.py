"""Benchmark: the LAION aesthetic score next to CMMD costs only its head.

Runs ``evaluate`` (no cache) on N generated and N reference images with CMMD alone, then with
CMMD + laion_aesthetic on the same open_clip model, and prints the number of CLIP image-encoder
forwards (micro-batches) and images encoded, and the wall time of each. Weights: a seeded
random open_clip model (default ViT-B-32; the real pair is ViT-L-14) and a stand-in head.

    python benchmarks/aesthetic_shared_pass.py [--n 32] [--clip ViT-B-32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--clip", default="ViT-B-32")
    args = ap.parse_args()

    import open_clip

    from evalsuite.assets import open_clip_asset_name
    from evalsuite.data.prompts import Prompt, PromptSet
    from evalsuite.evaluate import evaluate
    from evalsuite.features.sources import ArraySource
    from evalsuite.features.standins import photo_crops, save_open_clip_standin
    from evalsuite.metrics.aesthetic import AestheticScore, save_aesthetic_head_standin
    from evalsuite.metrics.cmmd import CMMD
    from evalsuite.produce import manifest_entries
    from evalsuite.samples.store import SampleStore

    root = Path(tempfile.mkdtemp(prefix="aesthetic-bench-"))
    assets = root / "assets"
    save_open_clip_standin(assets / f"{open_clip_asset_name(args.clip, 'bench')}.bin",
                           args.clip, "bench")
    dims = open_clip.get_model_config(args.clip)["embed_dim"]
    save_aesthetic_head_standin(assets / "sac+logos+ava1-l14-linearMSE.pth", dims=dims)
    prompts = PromptSet("bench", tuple(Prompt(f"p{i}", f"prompt {i}") for i in range(args.n)),
                        "bench")
    store = SampleStore(root / "samples", {"bench": 1})
    store.open()
    entries = manifest_entries(prompts, 0)
    for e, im in zip(entries, photo_crops(args.n, 256, seed=1, noise=30)):
        store.write(e["id"], im, {"prompt": e["text"], "seed": e["seed"]})
    store.write_manifest(entries)
    ref = ArraySource("ref", [f"r{i}" for i in range(args.n)], photo_crops(args.n, 256, seed=2),
                      {"name": "bench-ref"})

    calls: list[int] = []
    real = open_clip.model.CLIP.encode_image
    open_clip.model.CLIP.encode_image = lambda self, x, **kw: calls.append(len(x)) or real(
        self, x, **kw)
    cmmd = lambda: CMMD(model_name=args.clip, pretrained="bench")  # noqa: E731
    aesthetic = lambda: AestheticScore(model_name=args.clip, pretrained="bench")  # noqa: E731
    for label, metrics in (("cmmd", {"cmmd": cmmd}),
                           ("cmmd + laion_aesthetic", {"cmmd": cmmd, "laion_aesthetic": aesthetic}),
                           ("laion_aesthetic alone", {"laion_aesthetic": aesthetic})):
        calls.clear()
        t0 = time.perf_counter()
        res = evaluate(prompts, store, metrics, reference=ref, assets_dir=str(assets),
                       verify_assets=False, batch_size=16)
        dt = time.perf_counter() - t0
        values = ", ".join(f"{k}={v['value']:.4g}" for k, v in res.metrics.items())
        print(f"{label:24s} encoder forwards {len(calls):3d}  images encoded {sum(calls):4d}  "
              f"{dt:6.2f} s  ({values})")


if __name__ == "__main__":
    main()
