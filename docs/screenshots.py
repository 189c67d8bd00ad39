"""Regenerate the report screenshots in docs/ (one command, from the repository root):

    python docs/screenshots.py                 # the shapes world (the default world)
    python docs/screenshots.py --world tiny    # the random tiny model: fast, meaningless numbers

Three results folders are made from scratch under ``--work`` (default: a temporary folder,
removed afterwards), each by the commands a user types:

1. quick start: ``evalsuite run``;
2. an ablation study: ``evalsuite run -m -cn bk_sdm`` (BK-SDM's block removals, zero-shot);
3. a CFG sweep of two variants: ``evalsuite run -m 'ablation=[],[shared_kv]'
   sampler.guidance_scale=2,4,6,8``, then ``evalsuite report`` with the world's metrics on
   the plot axes (the shapes world has no FID or CLIP score: ``fd_shapes`` and
   ``shapes_clip_score`` stand in).

Every run gets ``threads=1`` (``--threads``): on a machine busy with other work, more
threads are much slower. Each ``report.html`` is opened in headless Chromium (``--chromium``, default
``/usr/bin/chromium``) 1280 px wide, and the whole page is written to
``docs/report-quickstart.png``, ``docs/report-ablation.png`` and ``docs/report-cfg-sweep.png``
(the page height is measured first, so nothing is cut). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1280
MAX_HEIGHT = 12000  # a very long page is cut here (Chromium's own limit is near 16k px)
HEIGHT_PROBE = """<script>window.addEventListener('load', () => {
  const pre = document.createElement('pre');
  pre.textContent = 'PAGE_HEIGHT=' + document.documentElement.scrollHeight + '=';
  document.body.appendChild(pre); });</script>"""

SWEEP_AXES = {"shapes": ["plots.cfg_sweep.x=shapes_clip_score", "plots.cfg_sweep.y=fd_shapes"],
              "tiny": ["plots.cfg_sweep.x=ssim/baseline", "plots.cfg_sweep.y=psnr/baseline"]}


def evalsuite(args: list[str], cwd: Path) -> None:
    """Run ``evalsuite <args>`` from this checkout (cwd: a scratch folder, so nothing else
    is written anywhere); stop with its output on failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"evalsuite {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    print(f"  evalsuite {' '.join(args)}  ({time.perf_counter() - t0:.0f} s)", flush=True)


def chromium_flags(profile: Path, height: int) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
            "--virtual-time-budget=10000"]


def screenshot(chromium: str, page: Path, out: Path, scratch: Path) -> tuple[int, int]:
    """The whole page at ``WIDTH`` px wide as a PNG; returns its size."""
    probe = page.with_name("screenshot_probe.html")
    probe.write_text(page.read_text().replace("</body>", HEIGHT_PROBE + "</body>"))
    dom = subprocess.run([chromium, *chromium_flags(scratch / "profile", 800), "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=300)
    probe.unlink()
    found = re.search(r"PAGE_HEIGHT=(\d+)=", dom.stdout)
    if not found:
        sys.exit(f"could not measure {page} in Chromium:\n{dom.stderr[-2000:]}")
    height = min(int(found.group(1)) + 20, MAX_HEIGHT)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, *chromium_flags(scratch / "profile", height),
                    f"--screenshot={out}", page.as_uri()], capture_output=True, timeout=300,
                   check=True)
    return WIDTH, height


SHOTS = ("quickstart", "ablation", "cfg-sweep")


def make_results(world: str, work: Path, threads: int, only: list[str]) -> dict[str, Path]:
    """The results folders of ``only``, made by the commands in the module docstring."""
    w = ([f"world={world}"] if world != "shapes" else []) + [f"threads={threads}"]
    folders = {name: work / name for name in only}
    if "quickstart" in only:
        print("quick start:", flush=True)
        evalsuite(["run", *w, f"paths.results_dir={folders['quickstart']}"], work)
    if "ablation" in only:
        print("ablation study (BK-SDM block removal):", flush=True)
        evalsuite(["run", "-m", "-cn", "bk_sdm", *w, f"paths.results_dir={folders['ablation']}"],
                  work)
    if "cfg-sweep" in only:
        print("CFG sweep:", flush=True)
        sweep = folders["cfg-sweep"]
        evalsuite(["run", "-m", *w, "ablation=[],[shared_kv]", "sampler.guidance_scale=2,4,6,8",
                   f"paths.results_dir={sweep}"], work)
        evalsuite(["report", *SWEEP_AXES[world], f"paths.results_dir={sweep}"], work)
    return folders


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=sorted(SWEEP_AXES), default="shapes")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS),
                   help="make only these screenshots")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run (1: "
                   "fastest on a machine busy with other work)")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    p.add_argument("--work", type=Path, help="keep the results folders here (default: a "
                   "temporary folder, removed afterwards)")
    a = p.parse_args(argv)
    if not Path(a.chromium).is_file():
        sys.exit(f"no Chromium at {a.chromium}: install it (apt-get install chromium) or pass "
                 "--chromium=<path>")
    with tempfile.TemporaryDirectory(prefix="evalsuite-shots-") as tmp:
        work = (a.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        for name, folder in make_results(a.world, work, a.threads, a.only).items():
            out = a.out / f"report-{name}.png"
            size = screenshot(a.chromium, folder / "report.html", out, Path(tmp))
            print(f"wrote {out} ({size[0]}x{size[1]})", flush=True)


if __name__ == "__main__":
    main()
