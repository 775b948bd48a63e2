"""``kernelkit test [NAME...]``: check that installed kernels speak the Jupyter protocol correctly."""

from __future__ import annotations

import argparse
import json
import sys

from kernelkit.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, seconds


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test",
        help="check installed kernels against the Jupyter messaging protocol",
        description="Start each NAME (kernelspec names; default: every installed kernelspec) exactly as "
        "jupyter_client would, and run the conformance checks (docs/conformance.md): kernel_info, reply routing, "
        "busy/idle, execute order and counts, errors and stop_on_error, complete/inspect/is_complete/history/"
        "comm_info, stdin, interrupt, heartbeat, iopub_welcome, signatures, malformed messages, shutdown and restart. "
        "Each check reports pass, FAIL (with what was expected and what came), not supported (the kernel answers "
        "an optional request with an error) or skipped (no sample, or a check it depends on did not pass). "
        "A kernelspec that is broken fails without being started; the others are still tested. "
        "Exit code 0 only if nothing failed.",
    )
    parser.add_argument("kernels", metavar="NAME", nargs="*", help="kernelspec names (default: all installed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", type=_names, default=[], metavar="CHECK,...", help="run only these checks")
    parser.add_argument("--skip", type=_names, default=[], metavar="CHECK,...", help="leave these checks out")
    parser.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="[KERNEL:]KEY=CODE",
        help="a cell for KEY (print, error, sleep, input, complete, inspect, incomplete), for every "
        "kernel or only KERNEL; \\n in CODE is a newline; an empty CODE removes a built-in; repeatable",
    )
    parser.add_argument(
        "--timeout", type=seconds, default=10.0, metavar="S", help="seconds to wait for each reply (default 10)"
    )
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kernelkit.tools import conformance, kernelspecs
    from kernelkit.tools.conformance.samples import SampleError, parse_overrides

    if args.list:
        for name, check in conformance.CHECKS.items():
            print(f"{name:<20} {check.spec}")
        return EXIT_OK
    try:
        checks = conformance.select(args.only, args.skip)
        samples = parse_overrides(args.sample)
    except (ValueError, SampleError) as exc:
        return fail(f"{exc}; see `kernelkit test --list` and `kernelkit test --help`", EXIT_USAGE)
    found = kernelspecs.find()
    names = [n.lower() for n in dict.fromkeys(args.kernels)] or sorted(found)
    if not names:
        return fail("no kernelspecs installed; install one (kernelkit install ...) or name one to test")
    unknown = [n for n in names if n not in found]
    if unknown:  # as exec, doctor and remove say it, with a "did you mean"
        return max(fail(str(kernelspecs.NoSuchKernel(name, found))) for name in unknown)
    for scope in samples:
        if scope is not None and scope.lower() not in names:
            return fail(
                f"--sample {scope}:...: {scope} is not among the kernels tested; name it or drop the prefix", EXIT_USAGE
            )
    samples = {(k.lower() if k else k): v for k, v in samples.items()}
    tty = sys.stderr.isatty() and not args.json

    def progress(text: str) -> None:
        if tty:
            print("\r\033[K" + text[:100], end="", file=sys.stderr, flush=True)

    reports = []
    for name in names:
        try:
            spec = kernelspecs.get(name, found)
        except kernelspecs.NoSuchKernel as exc:  # broken: reported as failed, the others still tested
            fail(str(exc))
            reports.append(conformance.KernelReport(name, error=str(exc)))
        else:
            reports.append(
                conformance.run_kernel(spec, checks, samples=samples, timeout=args.timeout, progress=progress)
            )
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if not args.json:
            print(conformance.format_report(reports[-1]) + "\n", flush=True)
    if args.json:
        print(json.dumps({"kernels": [r.to_dict() for r in reports], "ok": all(r.ok for r in reports)}, indent=1))
    else:
        print(conformance.summary(reports))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILURE
