"""``kernelkit run MODULE:CLASS [-f CONNECTION_FILE]``: start a kernel class as a kernel process."""

from __future__ import annotations

import argparse
import sys

from kernelkit.kernel.app import kernel_arguments, launch
from kernelkit.tools.targets import TargetError, resolve_target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="start a kernel class as a kernel process",
        description="Start a Kernel subclass as a kernel process. Without -f it writes a new "
        "connection file (0600) in the Jupyter runtime dir and prints how to attach to it.",
    )
    parser.add_argument("target", metavar="TARGET", help="module:Class, a module, or path/to/file.py")
    kernel_arguments(parser)
    parser.set_defaults(run=run, accepts_extra=True)


def run(args: argparse.Namespace) -> int:
    try:
        target = resolve_target(args.target)
    except TargetError as exc:
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        return 1
    launch(target.kernel_class, _kernel_argv(args))
    return 0


def _kernel_argv(args: argparse.Namespace) -> list[str]:
    """Re-serialise the kernel options so ``launch`` parses them exactly as a kernel.json argv."""
    argv: list[str] = list(args.extra)
    if args.connection_file:
        argv += ["-f", args.connection_file]
    if args.ip:
        argv += ["--ip", args.ip]
    if args.transport:
        argv += ["--transport", args.transport]
    if args.parent:
        argv += ["--parent", str(args.parent)]
    argv += ["--log-level", args.log_level]
    return argv
