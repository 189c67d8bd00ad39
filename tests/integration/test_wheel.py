"""A non-editable install works: the wheel carries everything evalsuite reads at run time.

The wheel is built from a copy of the sources, installed into a folder of its own, and run
from an empty folder by an isolated interpreter (``-I -S``) whose ``sys.path`` holds that folder
and the environment's third-party packages, but neither the checkout nor the editable install's
finder. A user's own config folder is composed over ours without copying it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from evalsuite.cli import with_studies

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
SMALL = ["dataset.limit=2", "sampler.steps=2", "sampler.batch_size=2", "metrics=pixel", "threads=1"]

RUNNER = """
import sys
sys.path[:0] = {front!r}
sys.path += {site!r}
import nonet
import evalsuite
assert evalsuite.__file__.startswith({target!r}), evalsuite.__file__
# the checkout is not importable (its venv's site-packages may live inside it, as in CI)
assert not any(p.startswith({root!r}) and p not in {site!r} for p in sys.path), sys.path
assert not any("editable" in repr(f) for f in sys.meta_path), sys.meta_path
from evalsuite.cli import main
sys.argv = ["evalsuite"] + sys.argv[1:]
main()
"""


def _build_and_install(tmp: Path) -> Path:
    """Build the wheel from a copy of the sources (no build/ left in the checkout); install it."""
    src, dist, target = tmp / "src", tmp / "dist", tmp / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("evalsuite", "conf", "ablations"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, capture_output=True, cwd=tmp)
    wheel = next(dist.glob("evalsuite-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, cwd=tmp)
    return target


def _runner(target: Path, helpers: Path):
    """run(args, cwd) -> CompletedProcess of the installed ``evalsuite`` in an isolated Python."""
    shutil.copy(TESTS / "nonet.py", helpers / "nonet.py")
    site = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    code = RUNNER.format(front=[str(target), str(helpers)], site=site, target=str(target),
                         root=str(ROOT))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "EVALSUITE_"))}

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        env["EVALSUITE_ASSETS"] = str(cwd / "assets")
        return subprocess.run([sys.executable, "-I", "-S", "-c", code, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)

    return run


def _user_conf(folder: Path) -> Path:
    """A user's config folder: one model option built on ours (no copy of conf/)."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "mytiny.yaml").write_text("defaults:\n  - tiny\n\nname: mytiny\ninit_seed: 1\n")
    return folder


def _cannot_build() -> str | None:
    """Why this environment cannot build a wheel offline (no build isolation), or None."""
    if importlib.util.find_spec("setuptools") is None:
        return "building the wheel without build isolation needs setuptools in the venv"
    import setuptools

    major_minor = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    if major_minor < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {setuptools.__version__} needs the wheel package to build a wheel"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(run, site folder) of a freshly built and installed wheel, shared by this module's tests."""
    reason = _cannot_build()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("wheel")
    target = _build_and_install(tmp)
    helpers = tmp / "helpers"
    helpers.mkdir()
    return _runner(target, helpers), target


def test_installed_wheel_runs_and_tables_from_an_empty_folder(installed, tmp_path):
    run, target = installed
    for packaged in ("_conf/config.yaml", "_conf/table/bk_sdm.yaml", "_studies/bk_sdm.yaml",
                     "results/paper/bk_sdm.yaml", "data/demo_prompts.txt"):
        assert (target / "evalsuite" / packaged).is_file(), packaged
    plain = run(["run", *SMALL], tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert len(list((tmp_path / "results" / "records").glob("*.json"))) == 1
    table = run(["table", "name=bk_sdm"], tmp_path)
    assert table.returncode == 0, table.stderr[-3000:]
    assert "| BK-SDM-Small | 482,346,884 | 482,346,884 | 0 |" in table.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing else written


def test_installed_study_with_a_user_config_folder(installed, tmp_path):
    run, _ = installed
    conf, work = _user_conf(tmp_path / "myconf"), tmp_path / "work"
    work.mkdir()
    # A study of ours (-m -cn) with a model option from the user's folder, which copies nothing.
    study = run(["run", "-m", "--config-dir", str(conf), "-cn", "bk_sdm", "model=mytiny",
                 "ablation=[preset_bk_sdm_small]", *SMALL], work)
    assert study.returncode == 0, study.stderr[-3000:]
    [record] = [json.loads(p.read_text()) for p in (work / "results" / "records").glob("*.json")]
    assert (record["config"]["model"]["name"], record["model"]["init_seed"]) == ("mytiny", 1)
    assert [a["name"] for a in record["model"]["ablations"]] == ["prune_resblocks"]
    assert record["tags"] == ["study=bk_sdm"]


def test_a_user_config_folder_and_the_studies_share_the_search_path(tmp_path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    studies, mine = tmp_path / "st's", tmp_path / "mine"
    studies.mkdir(), mine.mkdir()
    (studies / "ours.yaml").write_text("defaults: [config]\n")
    (mine / "theirs.yaml").write_text("defaults: [config]\n")
    assert with_studies(["x=1"], str(studies)) == [f"--config-dir={studies}", "x=1"]

    def searchpath(args: list[str]) -> list[str]:
        [entry] = [a for a in args if a.startswith("hydra.searchpath=")]
        return OverridesParser.create().parse_override(entry).value()

    # Their primary config: their folder stays the --config-dir, ours joins their search path.
    args = with_studies(["-cn", "theirs", "--config-dir", str(mine), "hydra.searchpath=[pkg://p.q]"],
                        str(studies))
    assert args[:4] == ["-cn", "theirs", "--config-dir", str(mine)]
    assert searchpath(args) == ["pkg://p.q", f"file://{studies}"]
    # Our study: ours is the --config-dir, their folder (groups such as model=) on the search path,
    # placed among the other overrides (argparse takes them as one run of positionals).
    args = with_studies(["-m", f"-cd={mine}", "-cn=ours", "x=1", "--cfg", "job"], str(studies))
    assert args[:3] == [f"--config-dir={studies}", "-m", "-cn=ours"]
    assert args[4:] == ["x=1", "--cfg", "job"] and searchpath(args) == [f"file://{mine}"]
    assert with_studies(["-cd", str(mine), "-i", "searchpath"], str(studies))[-1].startswith("hydra.")


def test_every_python_package_is_listed_for_the_wheel():
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "evalsuite").rglob("*")
               if d.is_dir() and (any(d.glob("*.py")) or any(d.glob("*.yaml")))} | {"evalsuite"}
    on_disk |= {".".join(["evalsuite._conf", *d.relative_to(ROOT / "conf").parts])
                for d in (ROOT / "conf").rglob("*") if d.is_dir() and any(d.glob("*.yaml"))}
    assert on_disk <= set(setup["packages"]), on_disk - set(setup["packages"])
    assert setup["package-dir"] == {"evalsuite._conf": "conf", "evalsuite._studies": "ablations"}
