"""The packages import only downwards: io -> data -> nn -> losses -> metrics -> models -> engine -> pipelines -> demo -> cli.

Every import counts, including imports inside functions and ``importlib.import_module("condsynth...")``
with a literal name; ``cli`` (and ``__main__``) may import anything. Strings that only name a
module (the ``models`` registry's ``"condsynth.models.pix2pix:Pix2Pix"``) are not imports. The
base modules (the package itself, ``errors``, ``config``) may be imported from every layer and
import only each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "condsynth"

ORDER = ["io", "data", "nn", "losses", "metrics", "models", "engine", "pipelines", "demo", "cli"]
BASE = {"", "errors", "config"}                    # "" = the package's __init__
TOP = {"cli", "__main__", "testing"}               # may import anything


def _layer(parts: tuple[str, ...]) -> str:
    """Layer of a module given by its dotted parts below ``condsynth`` (``('metrics', 'fid')`` -> metrics)."""
    return parts[0] if parts else ""


def _imported(tree: ast.AST, module: tuple[str, ...], is_package: bool):
    """(line, dotted parts below condsynth) of every condsynth module a source file imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "condsynth" or alias.name.startswith("condsynth."):
                    yield node.lineno, tuple(alias.name.split(".")[1:])
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                pkg = module if is_package else module[:-1]
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = base + tuple(node.module.split(".") if node.module else ())
            elif node.module == "condsynth" or (node.module or "").startswith("condsynth."):
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            if target:
                yield node.lineno, target
            else:  # from condsynth import metrics, __version__: each name may be a subpackage
                for alias in node.names:
                    yield node.lineno, (alias.name,) if alias.name in ORDER else ()
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name not in ("import_module", "__import__"):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                text = str(arg.values[0].value)   # f"condsynth.metrics.{name}": the literal prefix
            elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
            else:
                continue
            if text.startswith("condsynth."):
                yield node.lineno, tuple(p for p in text.split(".")[1:] if p)


def layer_violations(src: Path) -> list[str]:
    """``file:line: <layer> imports <module> (a later layer)`` for every upward import under ``src``."""
    rank = {name: i for i, name in enumerate(ORDER)}
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).with_suffix("").parts
        is_package = rel[-1] == "__init__"
        module = rel[:-1] if is_package else rel
        layer = _layer(module)
        if layer in TOP:
            continue
        if layer not in BASE and layer not in rank:
            found.append(f"{path.relative_to(src.parent)}: module outside the layer order {ORDER} "
                         "(add it to tests/test_layers.py)")
            continue
        for line, target in _imported(ast.parse(path.read_text(encoding="utf-8")), module, is_package):
            dep = _layer(target)
            if dep in BASE or dep == layer:
                continue
            upward = (layer in BASE) or dep in TOP or (dep in rank and rank[dep] > rank[layer])
            if upward:
                found.append(f"{path.relative_to(src.parent)}:{line}: {layer or 'condsynth'} imports "
                             f"condsynth.{'.'.join(target)} (a later layer)")
    return found


def test_layers_import_only_downwards():
    bad = layer_violations(SRC)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "condsynth"
    files = {
        "__init__.py": "",
        "errors.py": "",
        "io/__init__.py": "",
        "io/ok.py": "from condsynth.errors import UserError\n",
        "metrics/__init__.py": "import importlib\n"
                               "def get(n):\n    return importlib.import_module(f'condsynth.metrics.{n}')\n",
        "metrics/fid.py": "def f():\n    from condsynth.models import REGISTRY\n",           # lazy, upward
        "metrics/rel.py": "from ..engine import trainer\n",                                    # relative, upward
        "models/__init__.py": "REGISTRY = {'x': 'condsynth.models.x:X'}\n"
                              "import importlib\nm = importlib.import_module('condsynth.pipelines.base')\n",
        "data/uses_io.py": "from condsynth import io\nfrom condsynth.io.ok import UserError\n",
        "cli/main.py": "from condsynth.pipelines import paint\n",                               # cli: anything
        "stray.py": "",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    bad = layer_violations(pkg)
    assert any("metrics/fid.py:2: metrics imports condsynth.models" in b for b in bad)
    assert any("metrics/rel.py:1: metrics imports condsynth.engine " in b for b in bad)
    assert any("models/__init__.py:3: models imports condsynth.pipelines.base" in b for b in bad)
    assert any("stray.py: module outside the layer order" in b for b in bad)
    assert len(bad) == 4, bad
