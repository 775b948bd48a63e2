"""Driving one kernel under test: start it (the shared kernelspec-to-process path), time cells, pipeline load.

The client is :class:`kernelkit.tools.client.KernelClient`, the one every tool uses: it
signs, verifies and matches messages by parent ``msg_id`` on bare pyzmq, with no polling
sleeps, so its own cost stays small and identical for every kernel.
"""

from __future__ import annotations

import time

import zmq

from kernelkit.tools.bench.metrics import tree_cpu, tree_rss
from kernelkit.tools.client import KernelClient, KernelGone, Msg
from kernelkit.tools.kernelspecs import KernelSpec
from kernelkit.tools.process import KernelDiedError, KernelProcess

STREAM_LINE = "print('the quick brown fox jumps over the lazy dog', 1234567890, 'abcdefghijk')"
#: Default cells: an echo kernel (and the floor) sends the cell's code back as one ``stream``.
TRIVIAL_CELL = "x"
STREAM_CELL = "{payload}"


class BenchError(RuntimeError):
    """A kernel failed a benchmark step (did not start, died, timed out)."""


def big_code(size: int) -> str:
    """``size`` characters of plain source lines (80 per line, :data:`STREAM_LINE` and a newline)."""
    line = STREAM_LINE + "\n"
    assert len(line) == 80
    return (line * (size // 80 + 1))[:size]


def stream_cell(template: str, size: int) -> str:
    """The stream phase's cell from ``template``; the kernel must answer with ``big_code(size)`` as stream text.

    Placeholders: ``{payload}`` (the ``size`` characters themselves, as an echo kernel gets them),
    ``{line}`` (:data:`STREAM_LINE`, 79 characters without the newline; it holds single quotes
    and no double quotes, backslashes or ``$``) and ``{size}``. A language kernel can print the
    same text from a short cell, e.g. ``yes "{line}" | head -c {size}`` in bash.
    """
    code = template.replace("{line}", STREAM_LINE).replace("{size}", str(size))
    return code.replace("{payload}", big_code(size)) if "{payload}" in code else code


class BenchKernel:
    """One kernel started from its kernelspec, with ``shells`` shell sockets on it.

    ``start_s``: from before the connection file is written to the first
    ``kernel_info_reply`` (what a frontend waits); ``spawn_s``: until the process exists.
    """

    def __init__(self, spec: KernelSpec, context: zmq.Context, shells: int = 1, timeout: float = 60.0) -> None:
        self.name = spec.name
        try:
            self.kernel = KernelProcess(spec, context=context, shells=shells)
        except KernelDiedError as exc:
            raise BenchError(str(exc)) from None
        self.client: KernelClient = self.kernel.client
        try:
            self.kernel_info = self.kernel.wait_ready(timeout, iopub=False)
        except (KernelDiedError, TimeoutError) as exc:
            self.stop()
            last = exc.stderr.strip().splitlines()[-1:] if isinstance(exc, KernelDiedError) else []
            raise BenchError(f"{exc}{': ' + last[0] if last else ''}") from None
        self.start_s = self.kernel.ready - self.kernel.started
        self.spawn_s = self.kernel.spawned - self.kernel.started

    @property
    def pid(self) -> int:
        return self.kernel.pid

    def alive(self) -> bool:
        return self.kernel.alive()

    def rss(self) -> int:
        return tree_rss(self.pid)

    def cpu(self) -> float:
        return tree_cpu(self.pid)

    def connect_iopub(self, timeout: float = 30.0) -> None:
        """Until iopub is subscribed (the client's one rule: iopub_welcome, or status for a probe)."""
        try:
            self.client.await_iopub(timeout, alive=self.alive)
        except (TimeoutError, KernelGone) as exc:
            raise BenchError(str(exc)) from None

    def execute(self, code: str, timeout: float = 60.0) -> tuple[float, Msg, list[Msg]]:
        """Seconds from send to reply + idle, the reply, and the iopub messages of the cell."""
        msg_id, frames = self.client.frames("execute_request", self.client.execute_content(code))
        t0 = time.perf_counter()
        self.client.shell.send_multipart(frames, copy=False)
        try:
            reply, outputs = self.client.wait(msg_id, self.client.shell, timeout=timeout, alive=self.alive)
        except (TimeoutError, KernelGone) as exc:
            raise BenchError(str(exc)) from None
        elapsed = time.perf_counter() - t0
        assert reply is not None
        if reply["content"].get("status") != "ok":
            raise BenchError(f"execute_reply status {reply['content'].get('status')!r}")
        return elapsed, reply, outputs

    def pipelined(self, requests: int, depth: int, timeout: float, code: str = TRIVIAL_CELL) -> dict[str, float]:
        """Every shell socket keeping ``depth`` execute requests with ``code`` in flight; messages per second."""
        client = self.client
        content = client.execute_content(code)
        poller = zmq.Poller()
        for sock in client.shells:
            poller.register(sock, zmq.POLLIN)
        poller.register(client.iopub, zmq.POLLIN)
        sent = replies = messages = 0
        waiting_idle: set[str] = set()
        t0 = time.perf_counter()
        deadline = t0 + timeout
        for _ in range(depth):
            for sock in client.shells:
                if sent < requests:
                    waiting_idle.add(client.send(sock, "execute_request", content))
                    sent += 1
        while replies < requests or waiting_idle:
            events = poller.poll(1000)
            if time.perf_counter() > deadline or (not events and not self.alive()):
                raise BenchError(f"pipelined load: {replies}/{requests} replies within {timeout:.0f} s")
            for sock, _ in events:
                msg = client.recv(sock, 0)
                if msg is None:
                    continue
                messages += 1
                if sock is client.iopub:
                    if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                        waiting_idle.discard(client.parent_id(msg))
                else:
                    replies += 1
                    if sent < requests:
                        waiting_idle.add(client.send(sock, "execute_request", content))
                        sent += 1
        elapsed = time.perf_counter() - t0
        return {"messages_per_s": messages / elapsed, "requests_per_s": requests / elapsed, "messages": messages}

    def stop(self) -> None:
        """``shutdown_request`` on control; kill only if that does not end the process."""
        self.kernel.stop()


def first_outputs(kernel: BenchKernel, code: str) -> list[str]:
    """The iopub message types one cell causes, for the record."""
    return [m["msg_type"] for m in kernel.execute(code)[2]]


def stream_rate(kernel: BenchKernel, code: str, size: int, timeout: float) -> float:
    """MB/s of a cell that must send back ``size`` characters as ``stream`` text."""
    elapsed, _, outputs = kernel.execute(code, timeout=timeout)
    # Carriage returns are not counted: a kernel reading a pty (bash_kernel) passes on the
    # terminal's \r of a \r\n line end when a read splits the two.
    echoed = sum(
        len(m["content"]["text"]) - m["content"]["text"].count("\r") for m in outputs if m["msg_type"] == "stream"
    )
    if echoed != size:
        raise BenchError(f"stream sent {echoed} of {size} characters")
    return size / 1_000_000 / elapsed
