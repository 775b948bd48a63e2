"""Where the time goes when Jupyter Enterprise Gateway is in the path: kernelkit echo vs ipykernel.

Starts the real EG 3.3 (its own virtualenv, made by ``tests/frontends/eg_kit.py`` on first use),
a test sshd on 127.0.0.2 for the SSH (DistributedProcessProxy) path, and measures in one run:

* **start to first reply**: ``POST /api/kernels`` until the kernel's ``kernel_info_reply`` arrives
  on a channels websocket (direct: ``KernelManager.start_kernel`` until ``kernel_info_reply``);
* **round trip**: ``execute_request`` of a one-line cell until its ``execute_reply`` *and* the
  ``status: idle`` that follows, the median of many (direct: the same over ZeroMQ with
  jupyter_client).

Paths: direct (jupyter_client, no gateway), EG with ``LocalProcessProxy`` (also with a client
that ACKs at once, see ``ws_round_trip``: EG's websocket does not set ``TCP_NODELAY``, so each
message written behind an unacknowledged one waits for the client's delayed ACK, about 40 ms
on Linux), the same after EG has
started one SSH kernel (EG then polls its response socket with a blocking ``accept`` that
holds its event loop for up to 5 ms at a time), and EG over SSH (kernelkit only: EG's own
``launch_ipykernel.py`` is not in its wheel). Prints a table with ratios.

    python benchmarks/enterprise_gateway.py [--starts 5] [--round-trips 200]

Needs the ``test`` extra (jupyter_client 8, ipykernel, websocket-client, cryptography, psutil)
and Debian's openssh-server (``/usr/sbin/sshd``). Uses temporary Jupyter folders only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(tempfile.mkdtemp(prefix="kernelkit-eg-bench-"))
for _name in ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
    (ROOT / _name.lower()).mkdir()
    os.environ[_name] = str(ROOT / _name.lower())  # before any Jupyter import: never the real home
os.environ.pop("JPY_PARENT_PID", None)

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "frontends")]

import eg_kit  # noqa: E402
from eg_kit import ECHO_LOCAL, ECHO_SSH, IPYKERNEL_LOCAL, SSHD, Gateway, KernelSocket  # noqa: E402

CODE = {ECHO_LOCAL: "1", ECHO_SSH: "1", IPYKERNEL_LOCAL: "1"}


def ws_start(gw: Gateway, name: str) -> tuple[float, str, KernelSocket]:
    started = time.perf_counter()
    kernel_id = gw.start_kernel(name)
    ws, _ = eg_kit.open_kernel(gw, kernel_id)
    return time.perf_counter() - started, kernel_id, ws


def ws_round_trip(ws: KernelSocket, code: str, quickack: bool = False) -> tuple[float, float]:
    """(seconds to the execute_reply, seconds to the reply and the idle status both).

    ``quickack``: ACK every segment at once (Linux ``TCP_QUICKACK``, re-armed before each read),
    which takes the client's delayed ACK, and with it the Nagle stall of EG's websocket, away.
    """
    started = time.perf_counter()
    msg_id = ws.execute_request(code)
    reply = idle = None
    while reply is None or idle is None:
        if quickack:
            ws.ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        msg = ws.recv()
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["channel"] == "shell":
            reply = time.perf_counter() - started
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle = time.perf_counter() - started
    return reply, max(reply, idle)


def direct(name: str, starts: int, trips: int) -> tuple[list[float], list[tuple[float, float]]]:
    from jupyter_client import KernelManager

    start_times, trip_times = [], []
    for i in range(starts):
        started = time.perf_counter()
        km = KernelManager(kernel_name=name)
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.kernel_info(reply=True, timeout=60)
            start_times.append(time.perf_counter() - started)
            kc.wait_for_ready(timeout=60)  # iopub subscribed too, before any round trip (not timed)
            if i == 0:
                kc.execute(CODE[name], reply=True, timeout=30)  # warm-up
                for _ in range(trips):
                    t = time.perf_counter()
                    msg_id = kc.execute(CODE[name])
                    kc.get_shell_msg(timeout=30)
                    reply = time.perf_counter() - t
                    while True:
                        msg = kc.get_iopub_msg(timeout=30)
                        if (
                            msg["parent_header"].get("msg_id") == msg_id
                            and msg["msg_type"] == "status"
                            and msg["content"]["execution_state"] == "idle"
                        ):
                            break
                    trip_times.append((reply, time.perf_counter() - t))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
    return start_times, trip_times


def through(
    gw: Gateway, name: str, starts: int, trips: int, quickack: bool = False
) -> tuple[list[float], list[tuple[float, float]]]:
    start_times, trip_times = [], []
    for i in range(starts):
        elapsed, kernel_id, ws = ws_start(gw, name)
        try:
            start_times.append(elapsed)
            if i == 0:
                ws_round_trip(ws, CODE[name])  # warm-up
                trip_times = [ws_round_trip(ws, CODE[name], quickack) for _ in range(trips)]
        finally:
            ws.close()
            gw.api("DELETE", f"/api/kernels/{kernel_id}")
    return start_times, trip_times


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def summary(starts: list[float], trips: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Medians in ms: start to first reply, execute to reply, execute to reply and idle."""
    return ms(starts), ms([r for r, _ in trips]), ms([i for _, i in trips])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per path (median reported)")
    parser.add_argument("--round-trips", type=int, default=200, help="execute round trips per path (median)")
    args = parser.parse_args()

    eg_kit.eg_python()
    specs = Path(os.environ["JUPYTER_PATH"])
    eg_kit.write_kernelspecs(specs, gateway_silence=30)
    sshd = SSHD(ROOT / "ssh", ROOT / "sshd.log")
    gw = None
    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    try:
        for name in (ECHO_LOCAL, IPYKERNEL_LOCAL):
            s, r = direct(name, args.starts, args.round_trips)
            results[("direct (jupyter_client)", name)] = summary(s, r)
        gw = Gateway(specs=specs, workdir=ROOT / "eg", log_path=ROOT / "eg.log", sshd=sshd, debug=False)
        for name in (ECHO_LOCAL, IPYKERNEL_LOCAL):
            s, r = through(gw, name, args.starts, args.round_trips)
            results[("EG local", name)] = summary(s, r)
        for name in (ECHO_LOCAL, IPYKERNEL_LOCAL):
            s, r = through(gw, name, 1, args.round_trips, quickack=True)
            results[("EG local, client quick-ACK", name)] = summary(s, r)
        s, r = through(gw, ECHO_SSH, args.starts, args.round_trips)  # also starts EG's response manager
        results[("EG over SSH", ECHO_SSH)] = summary(s, r)
        s, r = through(gw, ECHO_SSH, 1, args.round_trips, quickack=True)
        results[("EG over SSH, client quick-ACK", ECHO_SSH)] = summary(s, r)
        for name in (ECHO_LOCAL, IPYKERNEL_LOCAL):
            s, r = through(gw, name, args.starts, args.round_trips)
            results[("EG local, after an SSH kernel", name)] = summary(s, r)
    finally:
        if gw is not None:
            gw.stop()
        sshd.stop()

    def row(path: str, kk: str, ipk: str | None) -> str:
        k = results[(path, kk)]
        p = results.get((path, ipk)) if ipk else None
        cells = []
        for n in range(3):
            fmt = "{:.0f}" if n == 0 else "{:.2f}"
            cells += [fmt.format(k[n]), fmt.format(p[n]) if p else "n/a", f"{p[n] / k[n]:.1f}x" if p else "n/a"]
        return f"| {path} | " + " | ".join(cells) + " |"

    print(
        f"\nEnterprise Gateway {eg_kit.EG_VERSION}; {args.starts} starts, {args.round_trips} round trips per path; "
        "medians in ms; kk = kernelkit echo, ipk = ipykernel python3, ratio = ipk / kk\n"
    )
    print(
        "| path | start→first reply, kk | ipk | ratio | execute→reply, kk | ipk | ratio "
        "| execute→reply+idle, kk | ipk | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("direct (jupyter_client)", ECHO_LOCAL, IPYKERNEL_LOCAL))
    print(row("EG local", ECHO_LOCAL, IPYKERNEL_LOCAL))
    print(row("EG local, client quick-ACK", ECHO_LOCAL, IPYKERNEL_LOCAL))
    print(row("EG local, after an SSH kernel", ECHO_LOCAL, IPYKERNEL_LOCAL))
    print(row("EG over SSH", ECHO_SSH, None))
    print(row("EG over SSH, client quick-ACK", ECHO_SSH, None))
    d = results[("direct (jupyter_client)", ECHO_LOCAL)]
    for path, key in (("EG local", ECHO_LOCAL), ("EG over SSH", ECHO_SSH)):
        e = results[(path, key)]
        print(
            f"kernelkit echo, {path} / direct: start {e[0] / d[0]:.1f}x, reply {e[1] / d[1]:.1f}x, "
            f"reply+idle {e[2] / d[2]:.1f}x"
        )


if __name__ == "__main__":
    main()
