"""``kernelkit new NAME``: write a complete, publishable kernel project that installs itself correctly.

How the generated package makes its kernel appear in Jupyter (docs/tutorial.md explains it):

1. **The wheel ships a kernelspec** in ``share/jupyter/kernels/NAME/`` (hatchling ``shared-data``,
   which editable installs include too, unlike setuptools' ``data-files``),
   so ``pip install NAME`` puts it in ``{sys.prefix}/share/jupyter/kernels/NAME``, a folder every
   Jupyter of that environment searches, and that a Jupyter elsewhere searches when told to
   (``JUPYTER_PATH``, conda's ``nb_conda_kernels``...). A wheel cannot know the absolute
   interpreter at build time, and a bare ``python`` in ``argv`` is the pitfall: jupyter_client
   replaces it with *its own* ``sys.executable`` (``{prefix}`` is also the frontend's), so a
   Jupyter in another environment dies with ``No module named NAME``. The spec's ``argv[0]`` is
   instead ``{resource_dir}/../../../../bin/python``: jupyter_client substitutes ``{resource_dir}``
   with the spec's folder, so it names the interpreter of the environment the wheel was installed
   into, whichever Jupyter starts it. (That layout is a POSIX venv or conda env; ``pip install
   --user`` and Windows need step 2.)
2. **``python -m NAME install [--user|--sys-prefix|--prefix PATH]``** writes a kernelspec whose argv
   pins the absolute interpreter (``kernelkit.install``), for a Jupyter that does not search the
   environment at all (JupyterLab installed with pipx, a system-wide Jupyter).

This is what ipykernel does *not* do (its wheel's spec starts with a bare ``python``), what
bash_kernel leaves to a manual ``python -m bash_kernel.install`` (pinning ``sys.executable``), and
what conda packages such as xeus-python get from conda's build-time prefix.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

from kernelkit._version import __version__
from kernelkit.tools.kernelspecs import KernelSpecError

NAME_RULE = (
    "a project name starts with a letter and has only ASCII letters, digits, '-' and '_' "
    "(at most 40 characters); its Python package is the name in lower case with '-' as '_'"
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
#: The generated pyproject's build backend and test runner (PYPROJECT): its package must not shadow them.
BUILD_REQUIRES = "hatchling>=1.10"
TEST_REQUIRES = "pytest>=7"
#: Names a kernel package must not take, installed here or not: they would shadow (or be shadowed by)
#: modules kernels need, or the generated project's own build and test requirements.
_RESERVED = {
    "kernelkit",
    "kernelkit_launcher",
    "test",
    "tests",
    "jupyter",
    "jupyter_client",
    "jupyter_core",
    "ipykernel",
    "ipykernel_launcher",
    "ipython",
    "zmq",
    "pyzmq",
    "src",
    "setup",
    "site",
    "conftest",
    *(re.split(r"[^\w-]", requirement)[0].lower().replace("-", "_") for requirement in (BUILD_REQUIRES, TEST_REQUIRES)),
}

#: ``argv[0]`` of the wheel-shipped spec: the interpreter beside ``share/`` in the same prefix.
ENV_PYTHON = "{resource_dir}/../../../../bin/python"


class ScaffoldError(KernelSpecError):
    """``kernelkit new`` refused; the message says why and what to do."""


@dataclass(frozen=True)
class Project:
    """Names derived from ``kernelkit new NAME``."""

    name: str  # distribution name, as given
    module: str  # Python package
    kernel_name: str  # kernelspec name (lower case)
    class_name: str
    display_name: str
    language: str
    wrap: tuple[str, ...] = ()  # the REPL command a wrapper kernel runs (kernelkit new --wrap)
    profile: str = ""  # the built-in `kernelkit wrap` profile that talks to it

    @classmethod
    def from_name(cls, name: str, language: str = "text", display_name: str | None = None) -> Project:
        module = check_name(name)
        language = language.strip()
        if not language or not re.fullmatch(r"[\w.+#-]{1,40}", language):
            raise ScaffoldError(f"invalid --language {language!r}: use a short name such as 'lua' or 'c++'")
        class_name = "".join(part.capitalize() for part in re.split(r"[_-]+", module) if part) + "Kernel"
        return cls(name, module, name.lower(), class_name, display_name or name, language)


#: Program names ``kernelkit new --wrap`` recognises, and the built-in wrap profile of each.
WRAP_PROFILES = {
    "bash": "bash",
    "zsh": "zsh",
    "python": "python",
    "python3": "python",
    "sqlite3": "sqlite3",
    "node": "node",
    "nodejs": "node",
    "lua": "lua",
    "lua5.4": "lua",
}


def _wrapping(p: Project, wrap: str, language_given: bool) -> Project:
    """``p`` as a wrapper of the REPL ``wrap`` (a command line), on the built-in profile for it."""
    import dataclasses
    import shlex

    from kernelkit.wrap import profiles

    try:
        command = shlex.split(wrap)
    except ValueError as exc:
        raise ScaffoldError(f"--wrap {wrap!r} is not a command line ({exc}); quote it as a shell would") from None
    program = os.path.basename(command[0]) if command else ""
    if program not in WRAP_PROFILES:
        raise ScaffoldError(
            f"--wrap {wrap!r}: kernelkit new knows how to talk to {', '.join(sorted(set(WRAP_PROFILES.values())))}, "
            f"not to {program or 'an empty command'}; for another REPL use `kernelkit wrap install --prompt REGEX "
            "-- COMMAND`, then subclass kernelkit.wrap.kernel.ReplKernel in your project (docs/wrap.md)"
        )
    profile = WRAP_PROFILES[program]
    language = p.language if language_given else profiles.get(profile).language
    return dataclasses.replace(p, wrap=tuple(command), profile=profile, language=language)


def check_name(name: str) -> str:
    """The Python package name for project ``name``; ScaffoldError with the rule or the clash otherwise."""
    if not _NAME.match(name):
        raise ScaffoldError(f"invalid kernel name {name!r}: {NAME_RULE}")
    module = name.lower().replace("-", "_")
    if keyword.iskeyword(module):
        clash = "a Python keyword"
    elif module in sys.stdlib_module_names:
        clash = f"the standard library module {module!r}"
    elif module in ("python", "python3"):  # jupyter_client starts ipykernel's python3 for both names
        clash = f"{module!r}, a kernel name that jupyter_client keeps for ipykernel's Python kernel"
    elif module in _RESERVED:
        clash = f"{module!r}, a name that kernels, packaging or the generated project's build and tests rely on"
    else:
        where = _importable_from(module)
        clash = f"the module {module!r} importable from {where}" if where else ""
    if clash:
        raise ScaffoldError(
            f"the name {name!r} would make a Python package {module!r} that clashes with {clash}; "
            f"choose another name, e.g. {module}_kernel"
        )
    return module


def _importable_from(module: str) -> str:
    """Where this interpreter imports the top-level ``module`` from (its package folder or file), ignoring
    the current folder and namespace packages; '' if nowhere.

    The current folder is left out because ``python -m`` puts it on ``sys.path``: a project of the same
    name there is the "already exists" refusal, not an installed module.
    """
    here = os.getcwd()
    elsewhere = [entry for entry in sys.path if os.path.abspath(entry) != here]
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        # PathFinder searches the path it is given; other finders (editable installs...) their own.
        spec = find_spec(module, elsewhere if finder is PathFinder else None) if find_spec else None
        if spec is not None:
            # A namespace package (no origin) is no clash: the new project's regular package wins over it.
            return (spec.origin and next(iter(spec.submodule_search_locations or []), spec.origin)) or ""
    return ""


def create(
    name: str,
    directory: str | os.PathLike[str] = ".",
    *,
    language: str = "text",
    display_name: str | None = None,
    wrap: str | None = None,
) -> Path:
    """Write the project folder ``directory/name`` and return it; refuses to overwrite anything."""
    project = Project.from_name(name, language, display_name)
    if wrap is not None:
        project = _wrapping(project, wrap, language_given=language != "text")
    parent = Path(directory)
    if not parent.is_dir():
        raise ScaffoldError(f"--dir {parent} is not an existing folder; create it first or choose another")
    target = parent / name
    if target.exists() or target.is_symlink():
        raise ScaffoldError(
            f"{target} already exists and kernelkit new never overwrites; "
            "choose another name or --dir, or remove it first"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    try:
        for relative, content in project_files(project).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        staging.chmod(0o755)
        os.rename(staging, target)  # atomic: a half-written project is never left under the name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# ---- the files ---------------------------------------------------------------------------------


def project_files(p: Project) -> dict[str, str | bytes]:
    spec_dir = f"share/jupyter/kernels/{p.kernel_name}"
    logos: dict[str, str | bytes] = {
        "logo-32x32.png": png_logo(32, p.name),
        "logo-64x64.png": png_logo(64, p.name),
        "logo-svg.svg": svg_logo(p.name),
    }
    files: dict[str, str | bytes] = {
        "pyproject.toml": _fill(PYPROJECT, p),
        "README.md": _fill(README, p),
        ".gitignore": "__pycache__/\n*.egg-info/\nbuild/\ndist/\n.venv/\n",
        ".github/workflows/ci.yml": _fill(CI, p),
        f"src/{p.module}/__init__.py": _fill(INIT, p),
        f"src/{p.module}/__main__.py": _fill(MAIN, p),
        f"src/{p.module}/kernel.py": _fill(KERNEL_WRAP if p.wrap else KERNEL, p),
        f"src/{p.module}/install.py": _fill(INSTALL, p),
        f"{spec_dir}/kernel.json": json.dumps(kernel_json(p), indent=2) + "\n",
        "tests/test_kernel.py": _fill(TESTS, p),
    }
    for file_name, data in logos.items():
        files[f"{spec_dir}/{file_name}"] = data
        files[f"src/{p.module}/resources/{file_name}"] = data
    return files


def kernel_json(p: Project) -> dict[str, object]:
    """The kernelspec the wheel ships (see the module docstring for its argv)."""
    return {
        "argv": [
            ENV_PYTHON,
            "-m",
            "kernelkit_launcher",
            f"{p.module}.kernel:{p.class_name}",
            "-f",
            "{connection_file}",
        ],
        "display_name": p.display_name,
        "language": p.language,
        "interrupt_mode": "signal",
        "metadata": {"supported_encryption": ["curve"]},
        "kernel_protocol_version": "5.6",  # 5.5 plus the handshake (JEP 66), as kernelkit install writes
    }


def _fill(template: str, p: Project) -> str:
    values = {
        "__NAME__": p.name,
        "__MODULE__": p.module,
        "__KERNEL_NAME__": p.kernel_name,
        "__CLASS__": p.class_name,
        "__DISPLAY_NAME__": p.display_name,
        "__LANGUAGE__": p.language,
        "__KERNELKIT_VERSION__": __version__,
        "__SPEC_DIR__": f"share/jupyter/kernels/{p.kernel_name}",
        "__PROFILE__": p.profile,
        "__COMMAND_LIST__": repr(list(p.wrap)),
        "__COMMAND__": " ".join(p.wrap),
        "__BUILD_REQUIRES__": BUILD_REQUIRES,
        "__TEST_REQUIRES__": TEST_REQUIRES,
    }
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def _color(name: str) -> tuple[int, int, int]:
    """A stable, fairly dark colour for a name (white text stays readable on it)."""
    h = zlib.crc32(name.encode())
    return 40 + h % 120, 40 + (h >> 8) % 120, 60 + (h >> 16) % 120


def png_logo(size: int, name: str) -> bytes:
    """A valid ``size`` x ``size`` RGBA PNG: a coloured rounded square with a light band (no image library)."""
    r, g, b = _color(name)
    radius = size // 5
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            dx = max(radius - x, 0, x - (size - 1 - radius))
            dy = max(radius - y, 0, y - (size - 1 - radius))
            inside = dx * dx + dy * dy <= radius * radius
            band = size * 3 // 8 <= y < size * 5 // 8 and size // 5 <= x < size * 4 // 5
            if not inside:
                row += b"\x00\x00\x00\x00"
            elif band:
                row += bytes((255, 255, 255, 255))
            else:
                row += bytes((r, g, b, 255))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def svg_logo(name: str) -> str:
    r, g, b = _color(name)
    letter = name[0].upper()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" rx="13" fill="rgb({r},{g},{b})"/>'
        f'<text x="32" y="44" font-family="sans-serif" font-size="36" font-weight="bold" fill="#fff" '
        f'text-anchor="middle">{letter}</text></svg>\n'
    )


# ---- templates (placeholders: __NAME__, __MODULE__, __CLASS__, ...) --------------------------------

PYPROJECT = """\
[build-system]
requires = ["__BUILD_REQUIRES__"]
build-backend = "hatchling.build"

[project]
name = "__NAME__"
version = "0.1.0"
description = "A Jupyter kernel for __LANGUAGE__, made with kernelkit"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["kernelkit>=__KERNELKIT_VERSION__"]
classifiers = [
    "Framework :: Jupyter",
    "Programming Language :: Python :: 3",
]

[project.optional-dependencies]
test = ["__TEST_REQUIRES__"]

[tool.hatch.build.targets.wheel]
packages = ["src/__MODULE__"]

# The kernelspec ships in the wheel: `pip install` (and `pip install -e`) put it in
# {sys.prefix}/share/jupyter/kernels, where Jupyter finds it; its argv finds this
# environment's python from {resource_dir}.
[tool.hatch.build.targets.wheel.shared-data]
"__SPEC_DIR__" = "__SPEC_DIR__"
"""

INIT = '''\
"""The __DISPLAY_NAME__ Jupyter kernel."""

__version__ = "0.1.0"
'''

MAIN = '''\
"""``python -m __MODULE__ install [--user|--sys-prefix|--prefix PATH]`` registers the kernel with Jupyter;
``python -m __MODULE__ -f CONNECTION_FILE`` (or no arguments) runs it."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["install"]:
        from __MODULE__.install import main as install

        sys.exit(install(sys.argv[2:]))
    from __MODULE__.kernel import __CLASS__

    __CLASS__.launch()


if __name__ == "__main__":
    main()
'''

KERNEL = '''\
"""The __DISPLAY_NAME__ kernel: Jupyter sends it cells, it answers with output.

Start here: ``do_execute`` receives each cell's code. Everything kernelkit offers a kernel
(rich output, completion, inspection, input, interrupts) is in kernelkit's docs/kernel-api.md.
"""

from __future__ import annotations

from typing import Any

from kernelkit import Kernel

from __MODULE__ import __version__


class __CLASS__(Kernel):
    implementation = "__NAME__"
    implementation_version = __version__
    banner = "__DISPLAY_NAME__ (a kernelkit kernel)"
    language_info = {
        "name": "__LANGUAGE__",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        # Replace this with your language: run `code` and show what it produces.
        if not silent:
            self.print(code)
        return {"status": "ok", "execution_count": self.execution_count}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        # Consoles ask this before running a line: answer "incomplete" to get a continuation prompt.
        return {"status": "complete"}
'''

KERNEL_WRAP = '''\
"""The __DISPLAY_NAME__ kernel: ``__COMMAND__`` runs in a pseudo-terminal, and each cell is typed into it.

kernelkit's wrapper (``kernelkit.wrap``) does the rest: exact output without echo or prompts,
streaming, interrupts as Ctrl-C, input over Jupyter's stdin, completion through the program.
Change how it talks to the program with ``profile.replace(...)`` (kernelkit's docs/wrap.md).
"""

from __future__ import annotations

from kernelkit.wrap import profiles
from kernelkit.wrap.kernel import ReplKernel

from __MODULE__ import __version__


class __CLASS__(ReplKernel):
    implementation = "__NAME__"
    implementation_version = __version__
    banner = "__DISPLAY_NAME__ (__COMMAND__, wrapped by kernelkit)"
    #: The built-in "__PROFILE__" profile: the prompt it sets, how cells are sent, completion...
    profile = profiles.get("__PROFILE__").replace(command=__COMMAND_LIST__)
'''

INSTALL = '''\
"""``python -m __MODULE__ install``: register this kernel with a Jupyter that does not search this environment.

``pip install __NAME__`` already ships the kernelspec into this environment's share/jupyter; run
this for a Jupyter installed elsewhere (pipx, system-wide) or after ``pip install --user``.
The written kernelspec pins this interpreter by its absolute path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent / "resources"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m __MODULE__ install",
                                     description="Register the __DISPLAY_NAME__ kernel with Jupyter, pinned to "
                                     f"this interpreter ({sys.executable}).")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user (default)")
    where.add_argument("--sys-prefix", action="store_true", help=f"in this environment ({sys.prefix})")
    where.add_argument("--prefix", metavar="PATH", help="in PATH/share/jupyter/kernels")
    parser.add_argument("--name", default="__KERNEL_NAME__", help="kernelspec name (default: %(default)s)")
    parser.add_argument("--display-name", default="__DISPLAY_NAME__", help="name shown in Jupyter")
    args = parser.parse_args(argv)

    from kernelkit import install
    from kernelkit.tools.kernelspecs import KernelSpecError

    from __MODULE__.kernel import __CLASS__

    try:
        result = install(__CLASS__, args.name, args.display_name, user=not (args.sys_prefix or args.prefix),
                         sys_prefix=args.sys_prefix, prefix=args.prefix, replace=True,
                         logo=sorted(RESOURCES.glob("logo-*")))
    except KernelSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Installed kernel {result.name!r} in {result.resource_dir}")
    return 0
'''

TESTS = '''\
"""Tests of the installed __DISPLAY_NAME__ kernel: `pip install .` (or `pip install -e .`), then `python -m pytest`.

They start the kernelspec `__KERNEL_NAME__` as Jupyter would, through kernelkit's command line.
"""

from __future__ import annotations

import json
import subprocess
import sys

KERNEL = "__KERNEL_NAME__"


def kernelkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernelkit", *args], capture_output=True, text=True, timeout=300)


def test_kernelkit_test() -> None:
    """kernelkit's protocol checks on the installed kernel (kernel_info, execute, interrupt, shutdown...)."""
    done = kernelkit("test", KERNEL)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_cell_runs() -> None:
    done = kernelkit("exec", KERNEL, "hello", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert record["reply"]["status"] == "ok"
    texts = [o["content"]["text"] for o in record["outputs"] if o["msg_type"] == "stream"]
    assert "".join(texts) == "hello\\n"
'''

README = """\
# __NAME__

A Jupyter kernel for __LANGUAGE__, made with [kernelkit](https://pypi.org/project/kernelkit/).

## Install

```sh
pip install __NAME__
```

The kernel then shows up in `jupyter kernelspec list` of that environment, and Notebook, JupyterLab and
`jupyter console --kernel __KERNEL_NAME__` run it with this environment's Python, even from a Jupyter
installed in another environment that looks here (`JUPYTER_PATH=/path/to/env/share/jupyter`).

For a Jupyter that does not look into this environment (JupyterLab installed with pipx, a system-wide
Jupyter), or after `pip install --user`, or on Windows, register it once:

```sh
python -m __MODULE__ install --user      # or --sys-prefix, or --prefix PATH
```

## Develop

```sh
pip install -e '.[test]'
python -m pytest
```

The kernel is `src/__MODULE__/kernel.py`; `do_execute` receives each cell.

## Publish

```sh
pip wheel . --no-deps -w dist      # or: python -m build
```

then upload `dist/*.whl` with `twine upload dist/*`.
"""

CI = """\
name: CI

on: [push, pull_request]

jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.10", "3.12"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - run: python -m pip install '.[test]'
      - run: python -m pytest -v
"""
