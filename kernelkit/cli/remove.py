"""``kernelkit remove NAME...`` (alias ``uninstall``): delete kernelspecs, asking first on a terminal."""

from __future__ import annotations

import argparse
import sys

from kernelkit.cli import EXIT_FAILURE, EXIT_OK, fail
from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools.kernelspecs import KernelSpecError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "remove",
        aliases=["uninstall"],
        help="remove installed kernels",
        description="Remove the kernelspecs Jupyter would use for each NAME (case-insensitive). Asks for "
        "confirmation on a terminal unless -y. Only ever deletes a folder inside a kernels folder.",
        epilog="exit codes: 0 all removed, 1 a name was unknown or could not be removed (or you said no), "
        "2 usage error",
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help="kernel name")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    installed = kernelspec.find()
    unknown = [n for n in args.names if n.lower() not in installed]
    for name in unknown:
        fail(str(kernelspec.NoSuchKernel(name, installed)))
    if unknown:
        return EXIT_FAILURE
    chosen = {installed[n.lower()].name: installed[n.lower()] for n in args.names}
    if not args.yes and sys.stdin.isatty():
        for spec in chosen.values():
            print(f"  {spec.name}\t{spec.resource_dir}")
        answer = input(f"Remove {'this kernel' if len(chosen) == 1 else f'these {len(chosen)} kernels'}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return fail("nothing removed")
    code = EXIT_OK
    for name in chosen:
        try:
            print(f"Removed {kernelspec.remove(name)}")
        except KernelSpecError as exc:
            code = fail(str(exc))
    return code
