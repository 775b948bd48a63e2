"""Faults: parent killed, kernel killed, SIGTERM, interrupts during a flood, a failing
do_shutdown, and a heartbeat that answers while a cell computes for 30 s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import zmq
from jupyter_client import KernelManager

from helpers import kernel_pid, running_kernel, wait_pid_gone
from relhelpers import BAD_SHUTDOWN, RK, RK_MESSAGE, RawClient

PARENT_SCRIPT = f"""
import sys, time
from jupyter_client import KernelManager
km = KernelManager(kernel_name={RK!r})
km.start_kernel()
kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=60)
print(km.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def test_parent_killed_with_sigkill_kernel_exits_within_5s() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        kernel = int(parent.stdout.readline())
        assert psutil.pid_exists(kernel)
        parent.kill()  # SIGKILL: no chance to shut the kernel down
        parent.wait()
        killed = time.monotonic()
        gone = wait_pid_gone(kernel, 5)
        print(f"\nkernel gone {time.monotonic() - killed:.2f} s after its parent's SIGKILL")
    finally:
        parent.kill()
        parent.stdout.close()
    if not gone:
        psutil.Process(kernel).kill()
    assert gone, "the orphaned kernel was still running 5 s after its parent died"


@pytest.mark.slow
def test_kernel_killed_kernel_manager_auto_restart_brings_it_back() -> None:
    from jupyter_client.ioloop import AsyncIOLoopKernelManager

    async def scenario() -> None:
        km = AsyncIOLoopKernelManager(kernel_name=RK, autorestart=True)
        await km.start_kernel()
        restarted = asyncio.Event()
        km.add_restart_callback(restarted.set, "restart")
        try:
            first = km.provisioner.process.pid
            os.kill(first, signal.SIGKILL)
            await asyncio.wait_for(restarted.wait(), timeout=30)
            deadline = time.monotonic() + 30
            while (km.provisioner is None or km.provisioner.process is None
                   or km.provisioner.process.pid == first):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            client = RawClient(km.get_connection_info())
            try:
                reply = await asyncio.get_running_loop().run_in_executor(None, lambda: client.execute("back again", timeout=30))
            finally:
                client.close()
            assert reply is not None and reply["content"]["status"] == "ok"
            assert km.provisioner.process.pid != first
        finally:
            km.stop_restarter()
            await km.shutdown_kernel(now=False)

    asyncio.run(scenario())


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "running-a-cell"])
def test_sigterm_is_a_clean_exit(busy: bool) -> None:
    km = KernelManager(kernel_name=RK)
    km.start_kernel()
    client = RawClient(km.get_connection_info())
    try:
        assert client.kernel_info(timeout=60) is not None
        proc = km.provisioner.process
        if busy:
            client.send(client.shell, "execute_request", {"code": "sleep 60", "silent": False})
            time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        took = time.monotonic() - started
    finally:
        client.close()
        km.shutdown_kernel(now=True)
    print(f"\nSIGTERM ({'busy' if busy else 'idle'}): exit {code} after {took:.2f} s")
    assert code == 0
    assert took < 5


@pytest.mark.parametrize("kernel", [RK, RK_MESSAGE], ids=["signal", "message"])
def test_interrupt_during_an_output_flood(kernel: str) -> None:
    with running_kernel(kernel) as (km, kc):
        client = RawClient(km.get_connection_info(), iopub=True)
        try:
            msg_id = client.send(client.shell, "execute_request", {"code": "flood 100000 200", "silent": False})
            deadline = time.monotonic() + 30
            streams = 0
            while streams < 20:  # the flood is under way
                assert time.monotonic() < deadline
                msg = client.recv(client.iopub, 5)
                streams += bool(msg and msg["msg_type"] == "stream")
            started = time.monotonic()
            km.interrupt_kernel()
            reply = client.reply_to(client.shell, msg_id, timeout=15)
            took = time.monotonic() - started
            assert reply is not None, "no execute_reply after the interrupt"
            assert reply["content"]["status"] == "error"
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            after = client.execute("after the interrupt")
            assert after is not None and after["content"]["status"] == "ok"
            assert client.kernel_info() is not None
        finally:
            client.close()
        print(f"\ninterrupt ({kernel}) answered in {took:.2f} s")


def test_a_do_shutdown_that_raises_still_shuts_down() -> None:
    km = KernelManager(kernel_name=BAD_SHUTDOWN)
    km.start_kernel()
    client = RawClient(km.get_connection_info())
    try:
        assert client.kernel_info(timeout=60) is not None
        proc = km.provisioner.process
        started = time.monotonic()
        reply = client.reply_to(client.control, client.send(client.control, "shutdown_request", {"restart": False}))
        code = proc.wait(timeout=10)
        took = time.monotonic() - started
    finally:
        client.close()
        km.shutdown_kernel(now=True)
    assert reply is not None and reply["msg_type"] == "shutdown_reply"
    assert reply["content"]["status"] == "error" and "do_shutdown failing" in reply["content"]["evalue"]
    assert code == 0 and took < 5, (code, took)


@pytest.mark.slow
def test_heartbeat_answers_while_a_cell_computes_for_30s() -> None:
    with running_kernel(RK) as (km, kc):
        client = RawClient(km.get_connection_info())
        hb = zmq.Context.instance().socket(zmq.REQ)
        hb.linger = 0
        hb.connect(client.address("hb"))
        latencies = []
        control_ok = 0
        try:
            msg_id = client.send(client.shell, "execute_request", {"code": "compute 30", "silent": False})
            time.sleep(0.5)
            end = time.monotonic() + 29
            while time.monotonic() < end:
                sent = time.monotonic()
                hb.send(b"ping")
                assert hb.poll(3000), "heartbeat missed jupyter_client's time_to_dead (3 s)"
                assert hb.recv() == b"ping"
                latencies.append(time.monotonic() - sent)
                if len(latencies) % 10 == 0:
                    control_ok += client.kernel_info(timeout=5, control=True) is not None
                time.sleep(0.25)
            reply = client.reply_to(client.shell, msg_id, timeout=30)
            assert reply is not None and reply["content"]["status"] == "ok"
        finally:
            hb.close()
            client.close()
        print(f"\n{len(latencies)} heartbeats during a 30 s computation, max {max(latencies) * 1000:.1f} ms; "
              f"control kernel_info answered {control_ok} times")
        assert control_ok == len(latencies) // 10
