"""Where a kernel's CPU goes, thread by thread, for several kernelspecs side by side in one run.

    python benchmarks/cpu_by_thread.py KERNEL [KERNEL ...] [--rounds 20] [--cells 200]

The kernels are started as Jupyter would (``kernelkit.tools.process``) and driven by the one
client (``kernelkit.tools.client``) with trivial cells (``--cell``, default ``x``: an echo kernel
echoes it; a language kernel needs valid code, e.g. ``--cell 1``), in
rounds that visit the kernels in a new random order each time, so the machine's noise hits all
alike. CPU comes from Linux's per-thread ``/proc/PID/task/TID/schedstat`` (nanoseconds; the
``kernelkit bench`` CPU figure is in clock ticks of 10 ms). Prints the medians over the rounds:
round trip, CPU per cell for the whole process and for its main thread (where kernelkit runs
requests), each with its ratio to the first kernel. Compare two versions of kernelkit by
installing each as a kernelspec whose ``env`` puts its checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys

import zmq

from kernelkit.tools.bench.driving import BenchError, BenchKernel
from kernelkit.tools.kernelspecs import KernelSpecError, get


def cpu_seconds(pid: int, main_only: bool) -> float:
    """CPU time the process (or only its main thread, whose id is the pid) has used."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if main_only and int(tid) != pid:
            continue
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="+", metavar="KERNEL", help="kernelspec names")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cells", type=int, default=200, help="cells per kernel per round")
    parser.add_argument("--cell", default="x", metavar="CODE", help="the trivial cell (default: x)")
    args = parser.parse_args(argv)
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat"):
        print("cpu_by_thread.py needs Linux's /proc/PID/task/TID/schedstat", file=sys.stderr)
        return 1
    context = zmq.Context()
    kernels: dict[str, BenchKernel] = {}
    results: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": [], "main": []} for name in args.kernels}
    try:
        for name in args.kernels:
            kernels[name] = BenchKernel(get(name), context)
        for kernel in kernels.values():
            kernel.connect_iopub()
            for _ in range(300):  # warm-up
                kernel.execute(args.cell)
        order = list(kernels)
        for _ in range(args.rounds):
            random.shuffle(order)
            for name in order:
                kernel, into = kernels[name], results[name]
                cpu0, main0 = cpu_seconds(kernel.pid, False), cpu_seconds(kernel.pid, True)
                walls = [kernel.execute(args.cell)[0] for _ in range(args.cells)]
                into["cpu"].append((cpu_seconds(kernel.pid, False) - cpu0) / args.cells)
                into["main"].append((cpu_seconds(kernel.pid, True) - main0) / args.cells)
                into["wall"].append(statistics.median(walls))
    except (KernelSpecError, BenchError) as exc:
        print(f"cpu_by_thread.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for kernel in kernels.values():
            kernel.stop()
    first = results[args.kernels[0]]
    print(f"{'kernel':28s} {'round trip':>18s} {'CPU per cell':>18s} {'main thread':>18s}")
    for name, into in results.items():
        cells = []
        for key in ("wall", "cpu", "main"):
            value, base = statistics.median(into[key]), statistics.median(first[key])
            cells.append(f"{value * 1e6:8.1f} µs ({value / base:4.2f}×)")
        print(f"{name:28s} " + " ".join(f"{c:>18s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
