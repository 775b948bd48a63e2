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
