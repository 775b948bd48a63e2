"""Load: 100,000 pipelined execute requests, 8 shell clients at once, a 1 GB iopub flood.

Real kernel processes started by jupyter_client's KernelManager; requests and replies go
over raw pyzmq sockets (jupyter_client's channel objects would be the bottleneck, not the
kernel). Numbers measured here are written up in docs/reliability.md.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import zmq

from helpers import kernel_pid, running_kernel
from relhelpers import RK, RawClient, rss_mb

pytestmark = pytest.mark.slow  # more than ~3 s a test: floods and 100k-message runs

WINDOW = 5000  # requests in flight at most, so neither side's queue reaches its high-water mark


def pipeline(client: RawClient, count: int, window: int = WINDOW, on_reply=None, code=None) -> list[str]:
    """Send ``count`` execute requests, at most ``window`` unanswered; returns the msg_ids in reply order."""
    sent: list[str] = []
    replied: list[str] = []
    shell = client.shell
    while len(replied) < count:
        while len(sent) < count and len(sent) - len(replied) < window:
            i = len(sent)
            msg_id, frames = client.frames("execute_request", {
                "code": code(i) if code else f"cell {i}", "silent": False, "store_history": True,
                "user_expressions": {}, "allow_stdin": False, "stop_on_error": False})
            shell.send_multipart(frames)
            sent.append(msg_id)
        assert shell.poll(30_000), f"no reply for 30 s after {len(replied)} of {count} replies"
        while shell.poll(0) and len(replied) < count:
            frames = shell.recv_multipart()
            _, frames = client.session.feed_identities(frames)
            reply = client.session.deserialize(frames)
            assert reply["msg_type"] == "execute_reply"
            assert reply["content"]["status"] == "ok", reply["content"]
            replied.append(reply["parent_header"]["msg_id"])
            if on_reply is not None:
                on_reply(len(replied))
    assert replied == sent, "replies lost or reordered"
    return replied


def test_100k_pipelined_execute_requests_none_lost_or_reordered_and_rss_flat(record_property) -> None:
    with running_kernel(RK) as (km, kc):
        pid = kernel_pid(km)
        client = RawClient(km.get_connection_info())
        rss: dict[int, float] = {}

        def sample(n: int) -> None:
            if n in (1_000, 10_000, 50_000, 100_000):
                rss[n] = rss_mb(pid)

        started = time.monotonic()
        try:
            pipeline(client, 100_000, on_reply=sample)
            elapsed = time.monotonic() - started
            after = client.execute("still there?")
            assert after is not None and after["content"]["execution_count"] == 100_001
        finally:
            client.close()
        print(f"\n100,000 requests in {elapsed:.1f} s ({100_000 / elapsed:.0f}/s); kernel RSS MB: {rss}")
        record_property("rss_mb", rss)
        assert rss[100_000] <= rss[1_000] * 1.10, f"kernel RSS grew more than 10%: {rss}"


def test_8_clients_on_shell_at_once_each_get_their_own_replies_in_order() -> None:
    clients_n, per_client = 8, 2_000
    with running_kernel(RK) as (km, kc):
        info = km.get_connection_info()
        context = zmq.Context()
        clients = [RawClient(info, context=context, identity=f"client-{i}".encode()) for i in range(clients_n)]
        errors: list[BaseException] = []
        results: dict[int, list[str]] = {}

        def run(i: int) -> None:
            try:
                results[i] = pipeline(clients[i], per_client, window=500, code=lambda n: f"client {i} cell {n}")
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients_n)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        elapsed = time.monotonic() - started
        for client in clients:
            client.close()
        context.term()
        assert not errors, errors
        assert sorted(results) == list(range(clients_n))
        assert all(len(ids) == per_client for ids in results.values())
        print(f"\n{clients_n} clients x {per_client} requests in {elapsed:.1f} s")


FLOOD_MB = 1000  # 1 GB of stdout
FLOOD_CELL = f"chunks {FLOOD_MB} 1000"  # 1,000 writes of 1 MB each
#: 2,000 queued messages (the iopub SNDHWM) of at most 64 Ki characters, plus slack.
RSS_BOUND_MB = 200


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopping = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        return self.peak


@pytest.mark.parametrize("subscriber", ["absent", "stalled", "fast"])
def test_iopub_flood_of_1gb_keeps_kernel_memory_bounded(subscriber: str) -> None:
    """A stalled subscriber reads nothing and has a 1-message receive queue, so the kernel's
    own XPUB queue fills up to its high-water mark; a fast one must receive every byte."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name=RK)
    km.start_kernel()
    context = zmq.Context()
    client = RawClient(km.get_connection_info(), context=context)
    sub = None
    received = {"messages": 0, "chars": 0, "idle": False}
    reader_stop = threading.Event()
    reader: threading.Thread | None = None
    try:
        assert client.kernel_info(timeout=60) is not None
        pid = kernel_pid(km)
        if subscriber != "absent":
            sub = context.socket(zmq.SUB)
            sub.linger = 0
            if subscriber == "stalled":
                sub.rcvhwm, sub.rcvbuf = 1, 4096
            else:
                # A fast subscriber takes everything off the network at once (its Python reader
                # may lag, in the client's memory): what it misses, the kernel lost.
                sub.rcvhwm = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(client.address("iopub"))
            time.sleep(0.5)  # let the subscription reach the kernel
        if subscriber == "fast":
            def read() -> None:
                while not reader_stop.is_set():
                    if not sub.poll(100):
                        continue
                    # As little Python per message as can be: the frames' JSON, no signature check.
                    frames = sub.recv_multipart()
                    header, content = frames[frames.index(b"<IDS|MSG>") + 2], frames[-1]
                    received["messages"] += 1
                    if b'"msg_type":"stream"' in header:  # {"name":"stdout","text":"yyy..."}: no escapes
                        assert content.startswith(b'{"name":"stdout","text":"') and content.endswith(b'"}')
                        received["chars"] += len(content) - len(b'{"name":"stdout","text":""}')
                    elif b'"msg_type":"status"' in header and b"idle" in content:
                        received["idle"] = True

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
        base = rss_mb(pid)
        sampler = RssSampler(pid)
        sampler.start()
        started = time.monotonic()
        reply = client.execute(FLOOD_CELL, timeout=600)
        elapsed = time.monotonic() - started
        if reader is not None:
            deadline = time.monotonic() + 60
            while received["chars"] < FLOOD_MB * 1_000_000 and time.monotonic() < deadline:
                time.sleep(0.1)
        peak = sampler.stop()
        assert reply is not None and reply["content"]["status"] == "ok"
        print(f"\n{subscriber}: 1 GB in {elapsed:.1f} s, kernel RSS {base:.1f} MB before, peak {peak:.1f} MB; "
              f"received {received}")
        assert peak - base < RSS_BOUND_MB, f"kernel memory grew by {peak - base:.0f} MB"
        if subscriber == "fast":
            assert received["chars"] == FLOOD_MB * 1_000_000
        after = client.execute("still serving", timeout=30)
        assert after is not None and after["content"]["status"] == "ok"
    finally:
        reader_stop.set()
        if reader is not None:
            reader.join(timeout=5)
        client.close()
        if sub is not None:
            sub.close(linger=0)
        km.shutdown_kernel(now=False)
        context.term()
