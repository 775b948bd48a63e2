"""``kernelkit doctor [NAME...]``: check kernelspecs and really start them, explaining failures with the fix."""

from __future__ import annotations

import argparse
import json
import sys

from kernelkit.cli import EXIT_FAILURE, EXIT_OK, fail, seconds
from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools import probe
from kernelkit.tools.doctor import ERROR, OK, START_TIMEOUT, WARN, Report, diagnose_all, frontend

_MARK = {OK: "ok   ", WARN: "warn ", ERROR: "ERROR"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check installed kernels and start them",
        description="Check each kernelspec (all of them if no NAME is given), any kernel, not only kernelkit's: "
        "kernel.json validity, name rules, {connection_file} in argv, argv[0], whether a Python kernel's "
        "interpreter imports its module, interrupt_mode, logos, shadowing, kernel_protocol_version; then "
        "start it with a fresh connection file from an empty folder and wait for kernel_info_reply.",
        epilog="exit codes: 0 nothing broken (warnings allowed), 1 something is broken, 2 usage error",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="kernel name (default: every kernelspec)")
    parser.add_argument("--no-start", action="store_true", help="only the static checks; do not start kernels")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=START_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for kernel_info_reply (default {START_TIMEOUT:g})",
    )
    parser.add_argument(
        "--frontend-python",
        metavar="PATH",
        help="the interpreter your Jupyter (jupyter_client) runs on: it replaces a bare python, "
        "pythonX or pythonX.Y of its own version in argv[0] with itself, so that is the interpreter "
        "checked and started for such specs (default: the interpreter of the `jupyter` command on "
        "PATH, else the Python running doctor; the output says which)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    known = {s.name for s in kernelspec.find_all()}
    unknown = [n for n in args.names if n.lower() not in known]
    for name in unknown:
        fail(str(kernelspec.NoSuchKernel(name, known)))
    if unknown:
        return EXIT_FAILURE
    try:
        front = frontend(args.frontend_python)
    except probe.ProbeError as exc:
        return fail(f"{exc}; give the path of the Python your Jupyter runs on")
    reports = diagnose_all(args.names, start=not args.no_start, timeout=args.timeout, front=front)
    if args.json:
        print(
            json.dumps(
                {
                    "kernels": [r.to_dict() for r in reports],
                    "ok": all(r.ok for r in reports),
                    "frontend": front.to_dict(),
                },
                indent=2,
            )
        )
    else:
        print(f"Frontend assumed: jupyter_client on {front.describe()}\n")
        if not reports:
            print("No kernels installed; searched: " + ", ".join(str(d) for d in kernelspec.kernel_dirs()))
        for report in reports:
            show(report)
        broken = [r.name for r in reports if not r.ok]
        if broken:
            print(f"{len(broken)} of {len(reports)} kernel(s) broken: {', '.join(broken)}", file=sys.stderr)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILURE


def show(report: Report) -> None:
    """One block per kernel: a line per finding, the fix under each problem, then the kernel's stderr."""
    print(f"{report.name}  ({report.resource_dir})  {'OK' if report.ok else 'BROKEN'}")
    for finding in report.findings:
        print(f"  {_MARK[finding.level]} {finding.message}")
        if finding.fix and finding.level != OK:
            print(f"        fix: {finding.fix}")
    if report.stderr:
        print("  kernel stderr:")
        for line in report.stderr.splitlines():
            print(f"    | {line}")
    print()
