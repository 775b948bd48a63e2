"""``kernelkit bench [KERNEL...]``: benchmark installed kernels side by side (see :mod:`kernelkit.tools.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from kernelkit.cli import EXIT_FAILURE, EXIT_OK, fail, seconds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark installed kernels side by side",
        description="Start each KERNEL (kernelspec names; default: every installed kernelspec) exactly as "
        "jupyter_client would and measure, interleaving the kernels round-robin so machine noise hits all alike: "
        "start to first kernel_info_reply, execute round trip (median, p99), kernel CPU per cell, stream "
        "throughput, messages/s with pipelined clients, idle RSS and RSS after the load (process tree), "
        "installed footprint. The same run measures the floor: a bare pyzmq kernel with no logic, and "
        "`python -c pass` / `import zmq` start times. Every KERNEL is looked up first: one that is not installed or "
        "whose kernelspec is broken stops the run before anything is measured (exit code 1; without KERNEL names, "
        "broken kernelspecs are left out with a note); a kernel that fails while measured is reported, the others "
        "go on. "
        "Needs the bench extra: pip install 'kernelkit[bench]'.",
    )
    parser.add_argument("kernels", metavar="KERNEL", nargs="*", help="kernelspec names (default: all installed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress on stderr)")
    parser.add_argument("--out", metavar="DIR", help="write results.json and chart.png into DIR")
    parser.add_argument("--starts", type=int, default=7, metavar="N", help="starts per kernel (default 7)")
    parser.add_argument(
        "--cells", type=int, default=500, metavar="N", help="timed trivial cells per kernel (default 500)"
    )
    parser.add_argument("--warmup", type=int, default=100, metavar="N", help="untimed cells first (default 100)")
    parser.add_argument(
        "--stream-mb", type=float, default=10, metavar="MB", help="size of the echoed output (default 10)"
    )
    parser.add_argument("--stream-reps", type=int, default=5, metavar="N", help="stream repetitions (default 5)")
    parser.add_argument("--clients", type=int, default=8, metavar="N", help="pipelined clients (default 8; 0 skips)")
    parser.add_argument(
        "--requests", type=int, default=2000, metavar="N", help="pipelined requests in all (default 2000)"
    )
    parser.add_argument(
        "--python-starts",
        type=int,
        default=None,
        metavar="N",
        help="`python -c pass` / `import zmq` runs (default: as --starts)",
    )
    parser.add_argument(
        "--cell",
        action="append",
        default=[],
        metavar="KERNEL=CODE",
        help="the trivial cell for KERNEL (default `x`, which echo kernels echo; its reply must be ok, "
        "so a language kernel needs e.g. 'python3=print(\"x\")'); repeatable",
    )
    parser.add_argument(
        "--stream-cell",
        action="append",
        default=[],
        metavar="KERNEL=CODE",
        help="the stream cell for KERNEL, which must output the same text as an echo kernel echoes: "
        "{payload} is that text, {line} its 79-character line, {size} its length; default {payload}, "
        "e.g. 'bash=yes \"{line}\" | head -c {size}'; repeatable",
    )
    parser.add_argument("--no-floor", action="store_true", help="leave out the bare pyzmq floor kernel")
    parser.add_argument("--no-footprint", action="store_true", help="skip the installed-size walk")
    parser.add_argument("--timeout", type=seconds, default=60.0, metavar="S", help="seconds a kernel gets per step")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        import psutil  # noqa: F401 - the process-tree figures need it

        from kernelkit.tools import bench, kernelspecs
    except ImportError as exc:
        return fail(f"{exc.name or exc} is missing: install the bench extra: pip install 'kernelkit[bench]'")
    for option in ("starts", "cells", "stream_reps"):
        if getattr(args, option) < 1:
            return fail(f"--{option.replace('_', '-')} must be at least 1", 2)
    kernels = list(dict.fromkeys(args.kernels))
    if not kernels:  # every installed kernel that can start: a broken one is named and left out
        for name, spec in sorted(kernelspecs.find().items()):
            if spec.error:
                print(
                    f"kernelkit: leaving out kernel {name!r}: its kernelspec is broken ({spec.error})", file=sys.stderr
                )
            else:
                kernels.append(name)
    if not kernels:
        return fail("no kernelspecs installed: name kernels to benchmark, or install some (kernelkit list)")
    cells: dict[str, dict[str, str]] = {}
    for option in ("cell", "stream_cell"):
        cells[option] = {}
        for value in getattr(args, option):
            name, sep, code = value.partition("=")
            flag = "--" + option.replace("_", "-")
            if not sep or not name or not code:
                return fail(f"{flag} takes KERNEL=CODE, not {value!r}", 2)
            if name not in kernels:
                return fail(f"{flag} {name}=...: {name} is not among the kernels benchmarked", 2)
            cells[option][name] = code
    tty = sys.stderr.isatty()

    def progress(text: str) -> None:
        if not args.quiet:
            print(("\r\033[K" + text) if tty else text, end="" if tty else "\n", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="kernelkit-bench-") as tmp:
        extra_dirs = []
        if not args.no_floor:
            extra_dirs.append(bench.write_floor_kernelspec(Path(tmp)))
            kernels = [bench.FLOOR_KERNEL, *[k for k in kernels if k != bench.FLOOR_KERNEL]]
        try:
            results = bench.run(
                kernels,
                starts=args.starts,
                cells=args.cells,
                warmup=args.warmup,
                stream_mb=args.stream_mb,
                stream_reps=args.stream_reps,
                clients=args.clients,
                pipeline_requests=args.requests,
                python_starts=args.python_starts,
                footprint=not args.no_footprint,
                timeout=args.timeout,
                progress=progress,
                kernel_dirs=extra_dirs,
                cells_by_kernel=cells["cell"],
                stream_cells=cells["stream_cell"],
            )
        except kernelspecs.NoSuchKernel as exc:
            return fail(str(exc))
    if tty and not args.quiet:
        print(file=sys.stderr)
    status = EXIT_OK if all(k["ok"] for k in results["kernels"].values()) else EXIT_FAILURE
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        try:
            bench.chart(results, str(out / "chart.png"))
        except ImportError:
            status = fail("no chart: matplotlib is missing (pip install 'kernelkit[bench]'); results.json written")
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        baseline = None if args.no_floor else bench.FLOOR_KERNEL
        print(bench.format_table(results, baseline=baseline))
        if args.out:
            print(f"\nwrote {Path(args.out) / 'results.json'} and chart.png")
    return status
