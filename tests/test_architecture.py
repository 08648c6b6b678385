"""The package's shape: imports flow one way through the layers, and every DVC stage depends on
exactly the source modules it runs (no whole folders, none missing)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from riskstudy.evaluation.registry import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "riskstudy"

#: data -> features -> nn -> factors | cae -> risk -> portfolio | sharpe -> evaluation | diagnostics -> summary -> studies.
#: ``cae`` (the conditional autoencoder section's characteristics, networks and linear baselines) is a
#: model family beside ``factors``: it trains through ``nn.loop`` and reuses ``factors.srm``. ``sharpe``
#: (networks trained on portfolio Sharpe ratios, the covariance-prediction network) sits beside
#: ``portfolio``, whose backtester it uses; ``diagnostics`` (factor-quality measures and transforms of
#: any model) beside ``evaluation``.
#: A module may import from its own layer or lower ones only; layer 0 (configuration, paths,
#: provenance stamps, the metrics-file helpers every stage writes with, seed statistics) is importable by all.
LAYERS: dict[str, int] = {
    "config": 0, "paths": 0, "provenance": 0, "reporting": 0, "stats": 0,
    "data": 1, "features": 2, "nn": 3, "factors": 4, "cae": 4, "risk": 5, "portfolio": 6, "sharpe": 6, "evaluation": 7, "diagnostics": 7,
    "summary": 8, "plotting": 8,
    "studies": 9, "notebook": 9, "bench_data": 9, "bench_drm": 9, "bench_portfolio": 9, "bench_cae": 9, "bench_checkpointing": 9,
}


def module_file(name: str) -> Path | None:
    """Source file of a ``riskstudy`` module (package -> its ``__init__.py``), None if absent."""
    rel = Path(*name.split("."))
    for f in (SRC / rel.with_suffix(".py"), SRC / rel / "__init__.py"):
        if f.is_file():
            return f
    return None


def imports_of(tree: ast.AST) -> set[str]:
    """``riskstudy`` modules a parsed source imports anywhere (module level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("riskstudy")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("riskstudy") and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return {m for m in out if module_file(m) is not None and m != "riskstudy"}


def closure(entries: set[str]) -> set[str]:
    """Every ``riskstudy`` module reachable from ``entries`` through imports."""
    seen, todo = set(), list(entries)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += imports_of(ast.parse(module_file(m).read_text()))
    return seen


def notebook_tree(path: Path) -> ast.AST:
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))


def all_modules() -> list[str]:
    return sorted(".".join(f.relative_to(SRC).with_suffix("").parts) for f in PKG.rglob("*.py") if f.name != "__init__.py")


def layer(module: str) -> int:
    part = module.split(".")[1]
    assert part in LAYERS, f"{module}: its top-level name {part!r} has no layer in tests/test_architecture.py::LAYERS"
    return LAYERS[part]


@pytest.mark.parametrize("module", all_modules())
def test_imports_flow_one_way(module):
    bad = sorted(m for m in imports_of(ast.parse(module_file(module).read_text())) if layer(m) > layer(module))
    assert not bad, f"{module} (layer {layer(module)}) imports from higher layers: {[(m, layer(m)) for m in bad]}"


def _stages() -> dict[str, dict]:
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: st.get("do", st) for name, st in raw.items()}


def stage_entries(stage: dict) -> set[str]:
    """Modules a stage's command runs: ``python -m riskstudy.X`` and the imports of the notebook it executes."""
    cmd = stage["cmd"]
    entries = set(re.findall(r"python -m (riskstudy[\w.]*)", cmd))
    for nb in re.findall(r"(notebooks/[\w.]+\.ipynb)", cmd):
        entries |= imports_of(notebook_tree(ROOT / nb))
    model = re.search(r"--model (\w+)", cmd)
    if model:  # the registry imports a built-in model's module by name
        entries.add(BUILTIN[model.group(1)])
    return entries


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_deps_are_the_modules_it_runs(name):
    stage = _stages()[name]
    deps = [d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith("src/")]
    used = closure(stage_entries(stage)) - {"riskstudy.notebook"}  # the notebook runner only executes
    files = {str(module_file(m).relative_to(ROOT)) for m in used}
    files = {f for f in files if not (f.endswith("__init__.py") and not (ROOT / f).read_text().strip())}
    folders = [d for d in deps if (ROOT / d).is_dir()]
    assert not folders, f"stage {name}: depends on whole folders {folders}; list the modules it imports"
    missing = sorted(files - set(deps))
    assert not missing, f"stage {name}: runs {missing} but does not depend on them"
    unused = sorted(set(deps) - files)
    assert not unused, f"stage {name}: depends on {unused}, which it never imports"
