"""The package's shape: layers only import downward, no import circles (not even type-only ones),
and the public names are what ``__all__`` says. Computed from the source, so a new module or
import is checked the day it is written."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kernelkit"

#: Layers from the bottom up (README "Design"). A module may import its own layer and those below.
LAYERS = [
    ("base", ["kernelkit._version", "kernelkit._log"]),
    ("protocol", ["kernelkit.protocol"]),
    ("transport", ["kernelkit.transport"]),
    ("kernel API", ["kernelkit.kernel", "kernelkit.kernelbase", "kernelkit.kernelapp", "kernelkit.ipkernel"]),
    ("launcher", ["kernelkit.launcher", "kernelkit_launcher"]),
    ("kernels", ["kernelkit.kernels", "kernelkit.wrap"]),
    ("tools", ["kernelkit.tools", "kernelkit.testing"]),
    ("cli", ["kernelkit.cli", "kernelkit.__main__"]),
]
FACADE = "kernelkit"  # the package's __init__: re-exports from the layers, lazily


def module_name(path: Path) -> str:
    if path.parent == REPO:
        return path.stem
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found["kernelkit_launcher"] = REPO / "kernelkit_launcher.py"
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every kernelkit module ``name`` imports, anywhere in the file (functions and TYPE_CHECKING included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{name} belongs to no layer: add it to LAYERS (and to the README's map)"
    return rank


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_every_module_has_a_layer_and_imports_only_downward() -> None:
    problems = []
    for name, targets in graph().items():
        if name == FACADE:
            continue
        for target in targets:
            if target == FACADE:
                if layer_of(name) < layer_of("kernelkit.kernels"):
                    problems.append(f"{name} imports the package facade; import the module it needs")
                continue
            if layer_of(target) > layer_of(name):
                problems.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not problems, "\n".join(sorted(problems))


def test_no_import_circles() -> None:
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif not state.get(target):
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", ["kernelkit", "kernelkit.protocol.core", "kernelkit.protocol.wire",
                                    "kernelkit.kernelbase", "kernelkit.kernelapp"])
def test_public_names_are_exported_and_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert hasattr(mod, "__all__") or module.startswith("kernelkit.protocol")
    for name in getattr(mod, "__all__", []):
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_the_package_exports() -> None:
    import kernelkit

    assert sorted(kernelkit.__all__) == ["Kernel", "StdinNotImplementedError", "__version__", "format_display_data",
                                        "install", "launch"]


def test_import_kernelkit_imports_nothing_but_itself() -> None:
    """So ``python -m kernelkit.x`` cannot be broken by a module in the current folder before it is removed."""
    code = "import sys, kernelkit; print(sorted(m for m in sys.modules if m.startswith('kernelkit')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "['kernelkit', 'kernelkit._version']"


def test_a_kernel_process_imports_no_cli_tools_or_heavy_frameworks() -> None:
    code = ("import sys; sys.argv = ['x', '--help']\n"
            "import kernelkit.launcher, kernelkit.kernels.echo\n"
            "bad = [m for m in sys.modules if m.startswith(('kernelkit.cli', 'kernelkit.tools', 'IPython', "
            "'ipykernel', 'tornado', 'traitlets'))]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
