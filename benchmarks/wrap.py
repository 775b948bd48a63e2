"""`kernelkit wrap install bash` against bash_kernel, with the physical limit, in one run.

    python benchmarks/wrap.py [--quick] [--json FILE]

Three kernelspecs in an isolated, temporary Jupyter path, driven round-robin through
jupyter_client by :mod:`kernelkit.tools.bench`: the floor kernel (bare pyzmq, no kernel logic),
the kernel `kernelkit wrap install bash` writes (installed by the real installer), and
bash_kernel. Then the other half of the physical limit: a bare round trip to the same bash
through a pty (echo off, a sentinel prompt, no Jupyter), back to back and after 0.5 ms idle
(as between a kernel's cells, where bash sleeps and must be woken: the limit uses this one),
and the pty's own throughput; and ReplKernel.do_execute called in-process (the wrapper's part).

Figures: trivial-cell round trip (``echo x``), 10 MB stream (``yes LINE | head -c 10000000``),
idle RSS of the kernel's whole process tree (kernel + bash). bash_kernel's stream is tried with a
time limit (it polls a pexpect buffer; ``--bash-kernel-mb`` sets its size). Exits 1 when a
target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from isolation import temporary_jupyter

WRAP, BASH_KERNEL = "wrap-bash", "bash_kernel"
ROUND_TRIP_LIMIT_MS = 3.5
THROUGHPUT_MB_S = 20.0


def isolate() -> Path:
    root = temporary_jupyter("kernelkit-bench-wrap-")
    from kernelkit.tools import wrap
    from kernelkit.tools.bench import write_floor_kernelspec

    wrap.install("bash", name=WRAP, prefix=str(root / "prefix"))
    spec = root / "path" / "kernels" / BASH_KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "bash_kernel", "-f", "{connection_file}"],
                "display_name": "bash_kernel",
                "language": "bash",
            }
        )
    )
    shutil.copytree(root / "prefix" / "share" / "jupyter" / "kernels" / WRAP, root / "path" / "kernels" / WRAP)
    write_floor_kernelspec(root / "path")
    return root


def bare_pty(cells: int, size: int) -> dict[str, float]:
    """Round trip of ``echo x`` and throughput of ``size`` bytes to bash through a pty, nothing else."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    child = subprocess.Popen(
        ["bash", "--norc", "--noprofile", "--noediting", "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(slave)
    sentinel = b"__SENTINEL__>"

    def until_sentinel() -> int:
        got, tail = 0, b""
        while True:
            select.select([master], [], [])
            data = os.read(master, 65536)
            got += len(data)
            tail = (tail + data)[-64:]
            if tail.endswith(sentinel):
                return got - len(sentinel)

    os.write(master, b"PS1='" + sentinel + b"'; PS2=\n")
    time.sleep(0.2)
    until_sentinel()
    samples, idle_samples = [], []
    for i in range(2 * cells):
        if i % 2:  # bash idle for 0.5 ms first, as between two cells of a kernel (it sleeps, then must be woken)
            time.sleep(0.0005)
        t0 = time.perf_counter()
        os.write(master, b"echo x\n")
        until_sentinel()
        (idle_samples if i % 2 else samples).append(time.perf_counter() - t0)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        os.write(master, f"yes 0123456789012345678901234567890123456789 | head -c {size}\n".encode())
        got = until_sentinel()
        assert got == size, got
        rates.append(size / 1e6 / (time.perf_counter() - t0))
    child.kill()
    os.close(master)
    return {
        "roundtrip_us": statistics.median(samples) * 1e6,
        "roundtrip_after_idle_us": statistics.median(idle_samples) * 1e6,
        "stream_mb_per_s": statistics.median(rates),
    }


def in_process(cells: int) -> float:
    """Median µs of ReplKernel.do_execute("echo x") called directly (the wrapper's own cost, no Jupyter)."""
    from kernelkit.wrap import profiles
    from kernelkit.wrap.kernel import ReplKernel

    class Direct(ReplKernel):
        profile = profiles.get("bash")

        def stream(self, text: str, name: str = "stdout") -> None:
            pass

    kernel = Direct()
    samples = []
    for _ in range(cells):
        t0 = time.perf_counter()
        kernel.do_execute("echo x", False)
        samples.append(time.perf_counter() - t0)
    kernel.stop_repl()
    return statistics.median(samples) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    parser.add_argument(
        "--bash-kernel-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up on bash_kernel's stream after S seconds (default 60)",
    )
    args = parser.parse_args()
    root = isolate()
    from kernelkit.tools.bench import FLOOR_KERNEL, format_table, run

    counts = (
        dict(starts=2, cells=60, warmup=10, stream_reps=2)
        if args.quick
        else dict(starts=5, cells=200, warmup=30, stream_reps=3)
    )
    stream = 'yes "{line}" | head -c {size}'
    results = run(
        [FLOOR_KERNEL, WRAP, BASH_KERNEL],
        **counts,
        clients=0,
        pipeline_requests=0,
        footprint=False,
        timeout=args.bash_kernel_timeout,
        progress=lambda t: print(t, file=sys.stderr, flush=True),
        cells_by_kernel={WRAP: "echo x", BASH_KERNEL: "echo x"},
        stream_cells={WRAP: stream, BASH_KERNEL: stream},
    )
    bare = bare_pty(1000 if not args.quick else 200, 10_000_000)
    bare["do_execute_in_process_us"] = in_process(1000 if not args.quick else 200)
    results["bare_pty_bash"] = bare
    kernels = results["kernels"]
    print(format_table(results, baseline=FLOOR_KERNEL))
    floor_us = kernels[FLOOR_KERNEL].get("roundtrip_us", {}).get("median")
    wrap_rt = kernels[WRAP].get("roundtrip_us", {}).get("median")
    bk_rt = kernels[BASH_KERNEL].get("roundtrip_us", {}).get("median")
    limit = floor_us + bare["roundtrip_after_idle_us"] if floor_us else None
    print(
        f"\nbare pty round trip to bash (echo x, sentinel prompt): back to back {bare['roundtrip_us']:.0f} µs, "
        f"after 0.5 ms idle (as between a kernel's cells) {bare['roundtrip_after_idle_us']:.0f} µs; "
        f"bare pty throughput: {bare['stream_mb_per_s']:.0f} MB/s"
    )
    print(
        f"ReplKernel.do_execute('echo x') called in-process (the wrapper's own part): "
        f"{bare['do_execute_in_process_us']:.0f} µs"
    )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if limit:
        print(f"physical limit (floor round trip + bare pty round trip after idle): {limit:.0f} µs")
    checks = []
    if wrap_rt:
        checks.append(
            (f"round trip median ≤ {ROUND_TRIP_LIMIT_MS} ms", wrap_rt / 1000, wrap_rt / 1000 <= ROUND_TRIP_LIMIT_MS)
        )
        if limit:
            checks.append(("round trip ≤ 1.5× physical limit", wrap_rt / limit, wrap_rt / limit <= 1.5))
        if bk_rt:
            checks.append(("round trip vs bash_kernel (×)", bk_rt / wrap_rt, True))
    tput = kernels[WRAP].get("stream_mb_per_s")
    checks.append((f"10 MB stream ≥ {THROUGHPUT_MB_S:g} MB/s", tput, bool(tput and tput >= THROUGHPUT_MB_S)))
    rss, bk_rss = kernels[WRAP].get("rss_idle_mb"), kernels[BASH_KERNEL].get("rss_idle_mb")
    if rss and bk_rss:
        checks.append(("idle RSS ≤ bash_kernel's (×)", rss / bk_rss, rss <= bk_rss))
    print("\nTargets (wrap-bash):")
    for label, value, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<36} {'-' if value is None else f'{value:.2f}'}")
    results["targets"] = [{"target": t, "value": v, "pass": ok} for t, v, ok in checks]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
