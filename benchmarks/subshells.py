"""Kernel subshells (JEP 91): what they cost kernels that do not use them, and what they buy.

    python benchmarks/subshells.py [--quick] [--baseline-ref main] [--json FILE]

In one run:

1. the main-shell round trip (execute_request → reply and idle) of the echo kernel, which does
   not opt in, sample by sample alternating between the two, on this checkout and on
   ``--baseline-ref`` (its ``kernelkit/`` is exported with ``git archive`` and put first on the
   kernel's PYTHONPATH): must stay within 5%;
2. a subshell's round trip (kernel_info_request on the subshell → reply and idle) for
   tests/kernels/subshell_kernel.py (calc, ``subshells = True``) and for ipykernel 7, while the
   main shell is idle, sleeps (``time.sleep``: waiting on I/O releases the GIL) and runs a
   pure-Python busy loop (then the GIL is the limit).

Prints one table of medians and ratios; exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq
from isolation import temporary_jupyter

from kernelkit.tools.bench.driving import BenchKernel
from kernelkit.tools.kernelspecs import get

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXECUTE = {"silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}


def isolate(baseline: Path) -> Path:
    root = temporary_jupyter("kernelkit-subshells-")
    py = sys.executable
    kernels = {
        "echo-before": ([py, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"], {"PYTHONPATH": str(baseline)}),
        "echo-after": ([py, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"], {"PYTHONPATH": str(REPO)}),
        "kernelkit-subshells": (
            [py, "-m", "subshell_kernel", "-f", "{connection_file}"],
            {"PYTHONPATH": f"{REPO / 'tests' / 'kernels'}{os.pathsep}{REPO}"},
        ),
        "ipykernel": ([py, "-m", "ipykernel_launcher", "-f", "{connection_file}"], {}),
    }
    for name, (argv, env) in kernels.items():
        spec = root / "path" / "kernels" / name
        spec.mkdir(parents=True)
        spec_json = {"argv": argv, "env": env, "display_name": name, "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(spec_json))
    return root


def export_baseline(ref: str, into: Path) -> str:
    """``git archive REF kernelkit`` into ``into``; the commit it names."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "kernelkit"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def request(
    kernel: BenchKernel, msg_type: str, content: dict[str, Any], subshell_id: str | None = None
) -> tuple[str, list[bytes]]:
    """A signed request, with ``subshell_id`` in its header when given."""
    extra = {} if subshell_id is None else {"subshell_id": subshell_id}
    return kernel.client.frames(msg_type, content, header=kernel.client.header(msg_type, **extra))


def round_trip(
    kernel: BenchKernel, sock: zmq.Socket, msg_type: str, content: dict[str, Any], subshell_id: str | None = None
) -> float:
    """Seconds from sending a request to having its reply and its idle status."""
    msg_id, frames = request(kernel, msg_type, content, subshell_id)
    t0 = time.perf_counter()
    sock.send_multipart(frames)
    reply, _ = kernel.client.wait(msg_id, sock, timeout=60, alive=kernel.alive)
    elapsed = time.perf_counter() - t0
    assert reply is not None and reply["content"].get("status") == "ok", reply
    return elapsed


def create_subshell(kernel: BenchKernel) -> str:
    client = kernel.client
    msg_id, frames = request(kernel, "create_subshell_request", {})
    client.control.send_multipart(frames)
    reply, _ = client.wait(msg_id, client.control, idle=False, timeout=30)
    assert reply is not None and reply["content"]["status"] == "ok", reply
    return reply["content"]["subshell_id"]


MAIN_CELLS = {
    "idle": None,
    "sleep": "import time\ntime.sleep({seconds})",
    "busy loop": "import time\n_t = time.perf_counter()\nwhile time.perf_counter() - _t < {seconds}:\n    pass",
}


def wait_started(kernel: BenchKernel, msg_id: str, timeout: float = 30.0) -> None:
    """Until the main shell's cell has begun (its ``execute_input``), and a moment more."""
    client = kernel.client
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if client.iopub.poll(100):
            msg = client.recv(client.iopub)
            if msg and msg["msg_type"] == "execute_input" and msg["parent_header"].get("msg_id") == msg_id:
                time.sleep(0.1)
                return
    raise RuntimeError("the main shell's cell did not start")


def subshell_samples(kernel: BenchKernel, subshell_id: str, state: str, count: int, seconds: float) -> list[float]:
    """Round trips of kernel_info_request on the subshell while the main shell is in ``state``."""
    client = kernel.client
    main_sock, sub_sock = client.shells
    cell = MAIN_CELLS[state]
    main_id = None
    if cell is not None:
        main_id, frames = request(kernel, "execute_request", {**EXECUTE, "code": cell.format(seconds=seconds)})
        main_sock.send_multipart(frames)
        wait_started(kernel, main_id)
    samples = []
    ends = time.perf_counter() + seconds - 0.6
    while len(samples) < count and (cell is None or time.perf_counter() < ends):
        samples.append(round_trip(kernel, sub_sock, "kernel_info_request", {}, subshell_id))
    if main_id is not None:
        reply, _ = client.wait(main_id, main_sock, timeout=seconds + 60, alive=kernel.alive)
        assert reply is not None and reply["content"]["status"] == "ok"
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run, not for the record)")
    parser.add_argument(
        "--baseline-ref", default="main", help="git ref whose kernelkit/ is the 'before' (default: main)"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    rounds, per_round = (3, 100) if args.quick else (10, 300)
    sub_count, cell_seconds = (100, 3.0) if args.quick else (300, 6.0)

    baseline = Path(tempfile.mkdtemp(prefix="kernelkit-baseline-"))
    root = None
    kernels: dict[str, BenchKernel] = {}
    context = zmq.Context()
    try:
        commit = export_baseline(args.baseline_ref, baseline)
        root = isolate(baseline)
        os.chdir(root)  # kernels start here: no kernelkit/ in the working folder may shadow the one under test
        for name in ("echo-before", "echo-after", "kernelkit-subshells", "ipykernel"):
            kernels[name] = BenchKernel(get(name), context, shells=2)
            kernels[name].connect_iopub()
        # 1. main-shell round trip of a kernel without subshells, before and after, interleaved
        # (alternating sample by sample, in both orders, so a change in the machine's load hits both alike)
        main_rt: dict[str, list[float]] = {"echo-before": [], "echo-after": []}
        for index in range(rounds * per_round):
            order = list(main_rt) if index % 2 == 0 else list(main_rt)[::-1]
            for name in order:
                kernel = kernels[name]
                sample = round_trip(kernel, kernel.client.shell, "execute_request", {**EXECUTE, "code": "hi"})
                main_rt[name].append(sample)
        # 2. a subshell's round trip, main shell idle / sleeping / busy, kernelkit and ipykernel alternating
        sub_rt: dict[tuple[str, str], list[float]] = {}
        subshell = {name: create_subshell(kernels[name]) for name in ("kernelkit-subshells", "ipykernel")}
        for state in MAIN_CELLS:
            for name in ("kernelkit-subshells", "ipykernel"):
                sub_rt[(name, state)] = subshell_samples(kernels[name], subshell[name], state, sub_count, cell_seconds)
    finally:
        for kernel in kernels.values():
            kernel.stop()
        context.term()
        shutil.rmtree(baseline, ignore_errors=True)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    med = {k: statistics.median(v) * 1e3 for k, v in main_rt.items()}
    smed = {k: statistics.median(v) * 1e3 for k, v in sub_rt.items()}
    kk, ipk = "kernelkit-subshells", "ipykernel"
    rows = [
        ("main-shell round trip, echo (no subshells), before", f"{med['echo-before']:.3f} ms", "", ""),
        (
            "main-shell round trip, echo (no subshells), after",
            f"{med['echo-after']:.3f} ms",
            f"{med['echo-after'] / med['echo-before']:.3f}× before",
            "≤ 1.05×",
        ),
    ]
    checks = [med["echo-after"] / med["echo-before"] <= 1.05]
    for state in MAIN_CELLS:
        ratio_idle = smed[(kk, state)] / smed[(kk, "idle")]
        ratio_ipk = smed[(kk, state)] / smed[(ipk, state)]
        target = {"idle": "", "sleep": "≤ 2× idle", "busy loop": "≤ 0.5× ipykernel"}[state]
        rows.append(
            (
                f"subshell round trip, main shell {state}: kernelkit (n={len(sub_rt[(kk, state)])})",
                f"{smed[(kk, state)]:.2f} ms",
                f"{ratio_idle:.2f}× idle, {ratio_ipk:.2f}× ipykernel",
                target,
            )
        )
        rows.append(
            (
                f"subshell round trip, main shell {state}: ipykernel 7 (n={len(sub_rt[(ipk, state)])})",
                f"{smed[(ipk, state)]:.2f} ms",
                f"{smed[(ipk, state)] / smed[(ipk, 'idle')]:.2f}× idle",
                "",
            )
        )
        if state == "sleep":
            checks.append(ratio_idle <= 2.0)
        elif state == "busy loop":
            checks.append(ratio_ipk <= 0.5)
    print(
        f"baseline: {args.baseline_ref} ({commit}); medians of reply + idle; "
        f"{rounds * per_round} main-shell samples per kernel, alternating"
    )
    print()
    print("| measure | median | ratio | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "baseline": commit,
                    "main_ms": med,
                    "subshell_ms": {f"{k} / {s}": v for (k, s), v in smed.items()},
                },
                indent=1,
            )
        )
    failed = not all(checks)
    print("\n" + ("a target FAILED" if failed else "all targets met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
