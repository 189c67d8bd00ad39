"""A record's ``provenance.git`` names evalsuite's own commit, never that of a checkout an
installed copy merely sits in (a project's ``.venv`` inside its git repository)."""

import json
import shutil
import subprocess

import pytest

from evalsuite.results.provenance import git_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def _repo(folder, files):
    folder.mkdir(parents=True)
    _git(folder, "init", "-q")
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "init")
    return _git(folder, "rev-parse", "HEAD")


def _installed_copy(site, direct_url=None):
    """An installed evalsuite in ``site``: the package and its dist-info (pip's layout)."""
    (site / "evalsuite").mkdir(parents=True)
    (site / "evalsuite" / "__init__.py").write_text("")
    info = site / "evalsuite-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evalsuite\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return site / "evalsuite"


def test_a_wheel_inside_another_checkout_records_no_commit(tmp_path):
    _repo(tmp_path / "project", {".gitignore": ".venv/\n", "main.py": "print(1)\n"})
    pkg = _installed_copy(tmp_path / "project" / ".venv" / "site")
    assert git_state(pkg) == {"commit": None, "dirty": None}
    untracked = _installed_copy(tmp_path / "project" / "vendor")  # not ignored, just untracked
    assert git_state(untracked) == {"commit": None, "dirty": None}


def test_a_pip_install_from_git_records_the_commit_pip_saw(tmp_path, monkeypatch):
    _repo(tmp_path / "project", {".gitignore": ".venv/\n"})
    site = tmp_path / "project" / ".venv" / "site"
    pkg = _installed_copy(site, {"url": "https://example.org/evalsuite.git",
                                 "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}})
    monkeypatch.syspath_prepend(str(site))
    assert git_state(pkg) == {"commit": "ab" * 20, "dirty": None,
                              "installed_from": "https://example.org/evalsuite.git"}


def test_a_source_checkout_records_its_commit_and_dirty_flag(tmp_path):
    head = _repo(tmp_path / "checkout", {"evalsuite/__init__.py": "", "README.md": "x\n"})
    pkg = tmp_path / "checkout" / "evalsuite"
    assert git_state(pkg) == {"commit": head, "dirty": False}
    (pkg / "__init__.py").write_text("# edited\n")
    assert git_state(pkg) == {"commit": head, "dirty": True}
