"""The porting harness: published ipykernel kernels, installed from PyPI at pinned versions into a
virtualenv of their own, their source ported by swapping only the ``ipykernel`` imports.

- :func:`build` makes the virtualenv (the published kernels with their own dependencies, ipykernel
  among them, so the originals run too; kernelkit installed from this repository), downloads the
  pinned sdists (``pip download --no-binary :all: --no-deps``) and unpacks them.
- :func:`port_tree` copies a package's source out of its sdist and applies :func:`port` to every
  ``.py`` file: ``from ipykernel.X`` becomes ``from kernelkit.X``, nothing else changes.
- :func:`poison` makes a folder whose ``ipykernel`` (and ``IPython``, ``traitlets``, ``tornado``
  when asked) fail on import; it goes first on the ported kernel's ``PYTHONPATH``, then the
  ported source, which shadows the installed original.

Each original runs from the same virtualenv with nothing changed, so every comparison is
original vs port on the same interpreter, dependencies and machine, in the same run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Exact versions of what is ported (docs/porting.md shows the same table).
PINNED = {
    "zsh_jupyter_kernel": "3.5.1",
    "jupyter-jsonnet": "0.4",
    "metakernel": "1.0.7",
    "calysto_scheme": "2.1.9",
}
#: What the kernels need to run (their own requirements) and what their test suites need.
#: jupyter-jsonnet is installed without its dependencies: it requires the whole ``notebook``
#: server only to offer a frontend, which no kernel process imports.
REQUIREMENTS = [
    f"zsh_jupyter_kernel=={PINNED['zsh_jupyter_kernel']}",
    f"metakernel=={PINNED['metakernel']}",
    f"calysto_scheme=={PINNED['calysto_scheme']}",
    "jsonnet",  # jupyter-jsonnet's evaluator
    "ipykernel",
    "ipython>=9.16",  # metakernel's test group
    "ipywidgets",
    "pytest",
    "pytest-timeout",
    "requests",
    "jupyter_kernel_test",
    "matplotlib",  # calysto_scheme's %plot backend
]
NO_DEPS = [f"jupyter-jsonnet=={PINNED['jupyter-jsonnet']}"]
SDISTS = ["zsh_jupyter_kernel", "jupyter-jsonnet", "metakernel"]

REPO = Path(__file__).resolve().parents[1]


def port(source: str) -> str:
    """The whole porting recipe: swap the package name on import lines, nothing else."""
    return re.sub(r"^(\s*from )ipykernel(\.)", r"\1kernelkit\2", source, flags=re.M)


def poison(folder: Path, names: tuple[str, ...] = ("ipykernel", "IPython", "traitlets", "tornado")) -> Path:
    """A folder whose packages ``names`` fail on import; first on PYTHONPATH, any use kills the kernel."""
    for name in names:
        package = folder / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} was imported by a ported kernel')\n")
    return folder


def port_tree(source: Path, target: Path) -> list[str]:
    """Copy a package (or a folder of tests) and port its ``.py`` files; the lines changed."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    changed: list[str] = []
    for module in sorted(target.rglob("*.py")):
        text = module.read_text(encoding="utf-8")
        ported = port(text)
        if ported != text:
            module.write_text(ported, encoding="utf-8")
            changed += [b.strip() for a, b in zip(text.splitlines(), ported.splitlines()) if a != b]
    return changed


@dataclass
class Published:
    root: Path
    python: Path
    sdists: dict[str, Path]
    setup_seconds: float
    ported: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ported = self.root / "ported"


def pip_cache() -> str:
    """A pip cache that outlives one run (conftest points HOME at a new temporary folder, which
    would make every run download the kernels' dependencies again), in the system's temporary
    folder, never in the real home."""
    import tempfile

    return os.environ.get("PIP_CACHE_DIR") or str(Path(tempfile.gettempdir()) / f"kernelkit-tests-pip-cache-{os.getuid()}")


def _pip(python: Path, *args: str) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore",
           "PIP_CACHE_DIR": pip_cache()}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), "-m", "pip", "-q", *args], check=True, env=env)


def build(root: Path) -> Published:
    """The published kernels' virtualenv and unpacked sdists under ``root``."""
    started = time.monotonic()
    kept = os.environ.get("KERNELKIT_PORTING_VENV")  # a developer's reusable copy (CI makes a new one)
    venv = Path(kept) if kept else root / "venv"
    python = venv / "bin" / "python"
    marker = venv / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS + NO_DEPS)
    if not (marker.exists() and marker.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        _pip(python, "install", *REQUIREMENTS)
        _pip(python, "install", "--no-deps", *NO_DEPS)
        marker.write_text(wanted)
    _pip(python, "install", "--no-deps", "--force-reinstall", str(REPO))  # kernelkit as it is now
    downloads = root / "sdists"
    _pip(python, "download", "--no-binary", ":all:", "--no-deps", "-d", str(downloads),
         *(f"{name}=={PINNED[name]}" for name in SDISTS))
    unpacked: dict[str, Path] = {}
    for archive in downloads.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(downloads, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(downloads)
        folder = downloads / archive.name[: -len(".tar.gz")]
        key = next(n for n in SDISTS if folder.name.lower().replace("-", "_").startswith(n.lower().replace("-", "_")))
        unpacked[key] = folder
    return Published(root, python, unpacked, time.monotonic() - started)
