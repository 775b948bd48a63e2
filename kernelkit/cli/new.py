"""``kernelkit new NAME``: write a complete, publishable kernel project (see kernelkit.tools.scaffold)."""

from __future__ import annotations

import argparse
import os

from kernelkit.cli import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "new",
        help="create a kernel project: package, kernelspec, tests, CI, ready for pip and PyPI",
        description="Create the folder NAME with a publishable kernel project: pyproject.toml (depends on "
        "kernelkit), a package with a Kernel subclass, a kernelspec with logos that the wheel installs into "
        "its environment (pinned to that environment's Python), `python -m PACKAGE install` for other "
        "Jupyters, a README, tests and a CI workflow. Never overwrites anything.",
        epilog="next: cd NAME && pip install . && jupyter console --kernel NAME (walkthrough: docs/tutorial.md). "
        "exit codes: 0 created, 1 refused (the message says why), 2 usage error",
    )
    parser.add_argument(
        "name", metavar="NAME", help="project and kernel name: a letter, then letters, digits, '-', '_'"
    )
    parser.add_argument("--language", default="text", help="the language the kernel runs (default: %(default)s)")
    parser.add_argument("--display-name", help="name shown in Jupyter's menus (default: NAME)")
    parser.add_argument(
        "--wrap",
        metavar="COMMAND",
        help="make the kernel a wrapper of this REPL (bash, zsh, python3, sqlite3, node or lua, with its arguments): "
        "kernelkit wrap runs it in a pseudo-terminal",
    )
    parser.add_argument(
        "--dir", default=".", metavar="DIR", help="create NAME inside DIR (default: the current folder)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kernelkit.tools.scaffold import ScaffoldError, create

    try:
        folder = create(args.name, args.dir, language=args.language, display_name=args.display_name, wrap=args.wrap)
    except ScaffoldError as exc:
        return fail(str(exc))
    shown = os.path.relpath(folder)
    shown = shown if not shown.startswith("..") else str(folder)
    print(f"Created the kernel project {args.name!r} in {shown}. Next:")
    print(f"  cd {shown}")
    print("  pip install .                        # the kernel appears in `jupyter kernelspec list`")
    print(
        f"  jupyter console --kernel {args.name.lower()}     # or pick {args.display_name or args.name!r} in JupyterLab"
    )
    print("  pip install -e '.[test]' && python -m pytest")
    return 0
