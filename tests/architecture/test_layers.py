"""The layout is enforced: import-linter contracts (``.importlinter``), no import cycles, small
modules and functions, and one home for each piece the task pipeline shares."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "evalsuite"
# Functions over 50 lines that predate the layout and belong to other work (the ablation
# attention processor).
LONG_FUNCTIONS = {("evalsuite/ablations/attention.py", "__call__")}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_linter_contracts_hold():
    pytest.importorskip("importlinter")
    proc = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command;"
                           " lint_imports_command()", "--config", str(ROOT / ".importlinter")],
                          cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("evalsuite")
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    cycles = [(a, b) for a in edges for b in edges[a]
              if graph.find_shortest_chain(importer=b, imported=a) is not None]
    assert cycles == [], cycles[:5]


def test_modules_and_functions_are_small():
    too_long = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(ROOT))
        if len(text.splitlines()) > 400:
            too_long.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 50 and (rel, node.name) not in LONG_FUNCTIONS:
                    too_long.append(f"{rel}:{node.name}: {n} lines")
    assert too_long == []

TRAINING_PROGRAMS = ("evalsuite/worlds/shapes/train_evaluators.py",
                     "evalsuite/worlds/shapes/train_pipeline.py")


@pytest.mark.parametrize("pattern, homes", [
    (r"\bdef config_hash\(", {"evalsuite/tasks/setup.py"}),
    (r"\bNOT_HASHED = ", {"evalsuite/tasks/setup.py"}),
    (r"\bdef check_writable\(", {"evalsuite/tasks/setup.py"}),
    # every task sets threads through setup.set_threads (evalsuite/threads.py); the shapes
    # world's training programs are standalone entry points (not tasks) with their own --threads
    (r"\.set_num_threads\(", {"evalsuite/threads.py", *TRAINING_PROGRAMS}),
    (r"partial\(build, ", {"evalsuite/tasks/setup.py"}),  # metric factories
    (r"\bdef record_envelope\(", {"evalsuite/tasks/record.py"}),
    (r"\bSCHEMA_VERSION,", {"evalsuite/tasks/record.py"}),  # records are assembled once
    # the VAE round trip; training the shapes VAE needs its posterior itself
    (r"\.latent_dist\b", {"evalsuite/models/vae.py", "evalsuite/worlds/shapes/pipeline_train.py"}),
    (r"\bstore\.write\(", {"evalsuite/produce/materialise.py"}),  # the chunk/resume loop
    (r"\bdef claim_merge\(", {"evalsuite/tasks/claim.py"}),
])
def test_each_shared_piece_has_one_home(pattern, homes):
    found = {str(p.relative_to(ROOT)) for p in _sources()
             if re.search(pattern, p.read_text(encoding="utf-8"))}
    assert found == homes


def _callers(name: str) -> dict[str, list[str]]:
    """Module -> the functions in it that call ``name`` (module level: ``<module>``)."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]:
            body = fn.body if isinstance(fn, ast.FunctionDef) else [
                n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            calls = [c for b in body for c in ast.walk(b) if isinstance(c, ast.Call)
                     and getattr(c.func, "id", getattr(c.func, "attr", None)) == name]
            if calls:
                found.setdefault(str(path.relative_to(ROOT)), []).append(
                    getattr(fn, "name", "<module>"))
    return found


def test_evaluate_sources_has_one_caller():
    """The pipeline is the program's one caller; ``evaluate`` is the public convenience over it
    for notebooks and tests (no module of evalsuite calls that)."""
    assert _callers("evaluate_sources") == {"evalsuite/tasks/pipeline.py": ["execute"],
                                            "evalsuite/evaluate/core.py": ["evaluate"]}
    assert _callers("evaluate") == {}


# Config schemas (Hydra ConfigStore entries, dataclasses with required ``MISSING`` fields) live in
# evalsuite/config/, with no exception.
SCHEMA_EXCEPTIONS: set[str] = set()


def test_config_schemas_live_in_config():
    outside = {str(p.relative_to(ROOT)) for p in _sources()
               if "config" not in p.relative_to(PACKAGE).parts[:1]
               and re.search(r"\bConfigStore\b|^from omegaconf import .*\bMISSING\b",
                             p.read_text(encoding="utf-8"), re.M)}
    assert outside <= SCHEMA_EXCEPTIONS, sorted(outside - SCHEMA_EXCEPTIONS)


def test_nothing_outside_commands_imports_commands():
    users = {str(p.relative_to(ROOT)) for p in _sources()
             if "commands" not in p.parts and p.name != "cli.py"
             and re.search(r"^\s*from evalsuite\.commands\b|^\s*import evalsuite\.commands\b",
                           p.read_text(encoding="utf-8"), re.M)}
    assert users == set()
