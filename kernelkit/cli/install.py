"""``kernelkit install TARGET``: write a kernelspec that pins this interpreter and is checked to start."""

from __future__ import annotations

import argparse
import json
import os
import sys

from kernelkit.cli import env_item, fail, json_object
from kernelkit.tools.installer import InstallResult, install
from kernelkit.tools.kernelspecs import KernelSpecError

LOCATION_HELP = (
    "Where to install (default --user: always writable, and seen by every Jupyter you run, whatever "
    "environment it lives in, because the interpreter is pinned in argv). "
    "Same meanings as `jupyter kernelspec install`, whose own default is the system prefix."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "install",
        help="install a kernel so Jupyter can start it from any folder",
        description="Install a kernelspec for TARGET: module:Class, an importable module, path/to/file.py "
        "holding a kernelkit Kernel subclass, or a kernelspec folder (like `jupyter kernelspec install DIR`). "
        "The absolute interpreter is pinned in argv and checked, before anything is written, to import the "
        "target from an unrelated folder.",
        epilog="kernel arguments: everything after `--` goes into the kernelspec's argv after "
        "`-f {connection_file}`, e.g. `kernelkit install kernelkit.kernels.sqlite -- --database shop.db`; "
        "they are checked against the kernel's own options first.\n"
        "exit codes: 0 installed, 1 refused or failed (the message says how to fix it), 2 usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target", metavar="TARGET", help="module:Class, module, path/to/file.py, or a kernelspec folder"
    )
    parser.add_argument(
        "--name",
        help="kernel name (default: from the module or folder name; "
        "ASCII letters, digits, '-', '.', '_', case-insensitive)",
    )
    parser.add_argument("--display-name", help="name shown in Jupyter (default: the class's implementation)")
    parser.add_argument("--language", help="language (default: language_info['name'] of the class)")
    add_location_options(parser)
    parser.add_argument(
        "--env",
        action="append",
        type=env_item,
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the kernel (repeatable)",
    )
    parser.add_argument(
        "--interrupt-mode", choices=("signal", "message"), help="how Jupyter interrupts the kernel (default signal)"
    )
    parser.add_argument("--logo", metavar="FILE", help="PNG (32x32 or 64x64) or SVG logo")
    parser.add_argument(
        "--metadata", type=json_object, default={}, metavar="JSON", help="JSON object merged into the spec's metadata"
    )
    parser.add_argument(
        "--python", metavar="PATH", help=f"interpreter to pin in argv (default: this one, {sys.executable})"
    )
    add_write_options(parser)
    parser.set_defaults(run=run)


def add_location_options(parser: argparse.ArgumentParser) -> None:
    """--user / --sys-prefix / --prefix, as ``kernelkit install`` and ``kernelkit wrap install`` take them."""
    where = parser.add_argument_group("location", LOCATION_HELP).add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="the user's Jupyter data dir (default)")
    where.add_argument("--sys-prefix", action="store_true", help=f"this environment ({sys.prefix}/share/jupyter)")
    where.add_argument("--prefix", metavar="PATH", help="PATH/share/jupyter/kernels (e.g. another env's prefix)")


def add_write_options(parser: argparse.ArgumentParser) -> None:
    """--replace / --dry-run / --json, as ``kernelkit install`` and ``kernelkit wrap install`` take them."""
    parser.add_argument(
        "--replace",
        action="store_true",
        help="overwrite a different kernel of the same name there (the same one again: left as it is)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the kernel.json and write nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        result = install(
            args.target,
            args.name,
            args.display_name,
            language=args.language,
            user=args.user,
            prefix=args.prefix,
            sys_prefix=args.sys_prefix,
            env=dict(args.env),
            interrupt_mode=args.interrupt_mode,
            logo=args.logo,
            metadata=args.metadata,
            python=args.python,
            replace=args.replace,
            dry_run=args.dry_run,
            kernel_args=getattr(args, "passthrough", ()),
        )
    except KernelSpecError as exc:
        return fail(str(exc))
    report(result, args.json, f"argv: {' '.join(result.kernel_json['argv'])}")
    return 0


def report(result: InstallResult, as_json: bool, detail: str) -> None:
    """What ``kernelkit install`` and ``kernelkit wrap install`` print about the kernelspec they wrote."""
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    elif result.dry_run:
        print(f"# would write {os.path.join(result.resource_dir, 'kernel.json')}")
        print(json.dumps(result.kernel_json, indent=1))
    else:
        if result.unchanged:
            print(f"Kernel {result.name!r} is already installed in {result.resource_dir}, unchanged")
        else:
            print(f"Installed kernel {result.name!r} in {result.resource_dir}")
        print(f"  {detail}")
        print(f"  check it with: kernelkit doctor {result.name}")
