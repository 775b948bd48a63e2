"""What the checks are written against: results' statuses, the check registry, and the Context/Exchange of one kernel.

A check is a function ``check(ctx)`` registered with :func:`check`: it returns a short
message on success, raises :class:`Violation` (FAIL: the message says expected vs got),
:class:`NotSupported` (the kernel answered the request with an error: an optional feature it
does not offer) or :class:`Skip` (e.g. no sample). A check whose declared dependency did not
pass is skipped, naming the dependency, so one root cause reads as one failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import zmq

from kernelkit.tools.client import KernelClient, Msg
from kernelkit.tools.kernelspecs import KernelSpec
from kernelkit.tools.process import KernelDiedError, KernelProcess

PASS, FAIL, NOT_SUPPORTED, SKIPPED = "pass", "FAIL", "not supported", "skipped"


class Violation(AssertionError):
    """The kernel broke the protocol; the message names the violation (expected vs got)."""


class NotSupported(Exception):
    """The kernel declines an optional feature (an error reply, or an older protocol)."""


class Skip(Exception):
    """The check cannot run here (no sample, or a dependency failed)."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    func: Callable[[Context], str | None]
    requires: tuple[str, ...]
    spec: str  # the spec sentence it enforces (docs/conformance.md)
    fresh: bool  # needs a kernel of its own (shutdown, restart)


CHECKS: dict[str, CheckSpec] = {}


def check(name: str, *, requires: Iterable[str] = (), spec: str = "", fresh: bool = False) -> Callable[..., Any]:
    def register(func: Callable[[Context], str | None]) -> Callable[[Context], str | None]:
        for dep in requires:
            assert dep.partition(":")[0] in CHECKS, f"{name} requires {dep}, which must be registered first"
        CHECKS[name] = CheckSpec(name, func, tuple(requires), spec, fresh)
        return func

    return register


@dataclass
class Exchange:
    """What one request caused: replies on its channel, iopub messages with it as parent; every stdin request."""

    msg_id: str
    request: str
    replies: list[Msg]
    iopub: list[Msg]
    stdin: list[Msg]
    timed_out: bool

    @property
    def reply(self) -> Msg:
        if not self.replies:
            raise Violation(f"no {self.request.replace('_request', '_reply')} (waited for it and timed out)")
        return self.replies[0]

    @property
    def content(self) -> dict[str, Any]:
        return self.reply["content"]

    def types(self) -> list[str]:
        return [m["msg_type"] for m in self.iopub]

    def idle_index(self) -> int | None:
        for i, m in enumerate(self.iopub):
            if m["msg_type"] == "status" and m["content"].get("execution_state") == "idle":
                return i
        return None

    def outputs(self) -> list[Msg]:
        return [m for m in self.iopub if m["msg_type"] in ("stream", "display_data", "execute_result")]

    def text(self) -> str:
        parts = []
        for m in self.outputs():
            c = m["content"]
            parts.append(
                str(c.get("text", ""))
                if m["msg_type"] == "stream"
                else str((c.get("data") or {}).get("text/plain", ""))
            )
        return "".join(parts)


def version_tuple(text: Any) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(text).split(".")[:2])
    except ValueError:
        return (0,)


class Context:
    """One kernel under test: its process, client, samples and timeout; restarts it when a check killed it."""

    def __init__(self, spec: KernelSpec, samples: Mapping[str, str], timeout: float) -> None:
        self.spec = spec
        self.samples = dict(samples)
        self.timeout = timeout
        self.context = zmq.Context()
        self.kernel: KernelProcess | None = None
        self.kernel_info: dict[str, Any] = {}
        self.restarts = 0
        self.status: dict[str, str] = {}  # results so far, by check name
        self.unrouted: set[str] = set()  # request types reply_routing found unanswered or misrouted

    # ---- the process ------------------------------------------------------------------------------

    def start(self, **options: Any) -> KernelProcess:
        kernel = KernelProcess(self.spec, context=self.context, **options)
        try:
            kernel.wait_ready(max(self.timeout, 30.0), iopub=False)
            kernel.client.await_iopub(self.timeout, alive=kernel.alive)
        except (KernelDiedError, TimeoutError):
            kernel.stop(timeout=1)
            raise
        return kernel

    def ensure(self) -> KernelProcess:
        """The running kernel, started anew if a previous check left it dead."""
        if self.kernel is not None and self.kernel.alive():
            return self.kernel
        if self.kernel is not None:
            self.kernel.stop(timeout=1)
            self.restarts += 1
        self.kernel = self.start()
        return self.kernel

    @property
    def client(self) -> KernelClient:
        return self.ensure().client

    def close(self) -> None:
        if self.kernel is not None:
            self.kernel.stop(timeout=2)
        self.context.destroy(linger=0)

    # ---- samples ---------------------------------------------------------------------------------

    def sample(self, key: str) -> str:
        code = self.samples.get(key)
        if not code:
            raise Skip(f"no sample '{key}' (give one with --sample {key}=CODE)")
        return code

    @property
    def protocol(self) -> tuple[int, ...]:
        return version_tuple(self.kernel_info.get("protocol_version", "5.0"))

    # ---- requests ---------------------------------------------------------------------------------

    def exchange(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        idle: bool = True,
        settle: float = 0.05,
        timeout: float | None = None,
        on_stdin: Callable[[Msg], None] | None = None,
        frames: list[bytes] | None = None,
        msg_id: str | None = None,
        client: KernelClient | None = None,
    ) -> Exchange:
        """Send a request (or ready ``frames`` with ``msg_id``) and collect what it causes.

        Waits for a reply on ``channel`` and, if ``idle``, the idle status; then ``settle``
        seconds more, to see duplicates and anything published late. Never raises on timeout:
        ``timed_out`` says so.
        """
        client = client or self.client
        sock = {"shell": client.shell, "control": client.control}[channel]
        if frames is None:
            msg_id = client.send(sock, msg_type, content or {})
        else:
            assert msg_id is not None
            sock.send_multipart(frames)
        poller = zmq.Poller()
        for s in (sock, client.iopub, client.stdin):
            poller.register(s, zmq.POLLIN)
        replies: list[Msg] = []
        iopub: list[Msg] = []
        stdin: list[Msg] = []
        limit = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + limit
        end: float | None = None
        got_idle = not idle
        while True:
            now = time.monotonic()
            stop = end if end is not None else deadline
            if now >= stop:
                break
            for ready, _ in poller.poll(int(max(0.0, stop - now) * 1000)):
                msg = client.recv(ready, 0)
                if msg is None:
                    continue
                if ready is client.stdin:  # every stdin request, whatever its parent: the check judges it
                    stdin.append(msg)
                    if on_stdin is not None:
                        on_stdin(msg)
                elif client.parent_id(msg) != msg_id:
                    continue
                elif ready is sock:
                    replies.append(msg)
                else:
                    iopub.append(msg)
                    if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                        got_idle = True
            if end is None and replies and got_idle:
                end = time.monotonic() + settle
        return Exchange(str(msg_id), msg_type, replies, iopub, stdin, timed_out=end is None)

    def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
        **options: Any,
    ) -> Exchange:
        content = KernelClient.execute_content(
            code, silent=silent, store_history=store_history, allow_stdin=allow_stdin, stop_on_error=stop_on_error
        )
        return self.exchange("shell", "execute_request", content, **options)

    def executed(self, ex: Exchange, what: str = "the cell") -> Exchange:
        """``ex`` must have a reply (status ok) and an idle status."""
        if not ex.replies:
            raise Violation(f"{what}: no execute_reply within {self.timeout:g} s")
        if ex.content.get("status") != "ok":
            raise Violation(
                f"{what}: execute_reply status {ex.content.get('status')!r}, expected 'ok' "
                f"({ex.content.get('ename', '')}: {ex.content.get('evalue', '')})"
            )
        if ex.idle_index() is None:
            raise Violation(f"{what}: no idle status within {self.timeout:g} s")
        return ex

    def quiet(self, msg_id: str, seconds: float, client: KernelClient | None = None) -> list[Msg]:
        """Every message with parent ``msg_id`` on any channel within ``seconds`` (nothing, if dropped)."""
        client = client or self.client
        poller = zmq.Poller()
        for s in (client.shell, client.iopub, client.control, client.stdin):
            poller.register(s, zmq.POLLIN)
        seen: list[Msg] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for ready, _ in poller.poll(int(left * 1000)):
                msg = client.recv(ready, 0)
                if msg is not None and client.parent_id(msg) == msg_id:
                    seen.append(msg)
        return seen
