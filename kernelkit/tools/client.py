"""The one client every kernelkit tool uses to talk to a kernel: exec, doctor, bench and test.

Strict in what it sends: every request has a full header (``msg_id``, ``msg_type``,
``username``, ``session``, ``date``, ``version``), a signature when the connection has a
key, and the same DEALER identity on shell and stdin (``input_request`` is routed by it).

Lenient in what it accepts, like jupyter_client: a ``null`` (or missing, or non-object)
parent header, metadata or content reads as ``{}``; a header without ``msg_type`` reads as
``""``; a kernel that publishes no ``status`` for some request is waited for only as long as
the caller asks. Only what fails authentication (wrong or missing signature when a key is
set) or has no ``<IDS|MSG>`` delimiter is dropped: :meth:`KernelClient.recv` returns None.

It needs only pyzmq and :mod:`kernelkit.protocol.wire` (never the kernel side's session or
transport), so it runs in any process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import zmq

from kernelkit.protocol.wire import DELIMITER, PROTOCOL_VERSION, Signer
from kernelkit.transport.connection import ConnectionInfo

#: zmq retries a refused connect every RECONNECT_IVL (100 ms by default): a client that
#: connects before the kernel has bound its ports would learn of the kernel up to 100 ms late
#: (start-up times quantized to 100 ms). Retry every millisecond instead.
RECONNECT_IVL_MS = 1

Msg = dict[str, Any]
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class KernelGone(RuntimeError):
    """The kernel process exited while the client was waiting for it."""


def _obj(data: bytes | memoryview) -> dict[str, Any]:
    """One JSON part as a dict; ``null``, non-objects, invalid or too deeply nested JSON read as ``{}``."""
    try:
        value = json.loads(bytes(data))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


class KernelClient:
    """Shell (one or several), control, stdin and iopub sockets on one kernel, with signing.

    ``shells`` > 1 gives several shell DEALER sockets (``self.shells``; ``self.shell`` is the
    first), each its own client as far as the kernel can tell, for pipelined load.
    """

    def __init__(
        self,
        info: ConnectionInfo,
        context: zmq.Context | None = None,
        shells: int = 1,
        username: str = "kernelkit",
    ) -> None:
        self.info = info
        self.signer = Signer(info.key, info.signature_scheme)
        self.session = os.urandom(16).hex()
        self.username = username
        self.context = context or zmq.Context.instance()
        self._sockets: list[zmq.Socket] = []
        identity = self.session.encode("ascii")
        self.shells = [self._connect(zmq.DEALER, "shell", identity if i == 0 else None) for i in range(max(1, shells))]
        self.shell = self.shells[0]
        self.control = self._connect(zmq.DEALER, "control")
        self.stdin = self._connect(zmq.DEALER, "stdin", identity)  # same identity as shell: input_request finds us
        self.iopub = self._connect(zmq.SUB, "iopub")
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")

    def _connect(self, kind: int, channel: str, identity: bytes | None = None) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        if identity is not None:
            sock.identity = identity
        if self.info.curve_publickey:
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = self.info.curve_publickey.encode("ascii")
            sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.connect(self.info.address(channel))
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)

    # ---- sending (strict) --------------------------------------------------------------------

    def header(self, msg_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "msg_id": os.urandom(16).hex(),
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": PROTOCOL_VERSION,
            **extra,
        }

    def frames(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
    ) -> tuple[str, list[bytes]]:
        """``(msg_id, frames)`` of a signed message, ready for a DEALER socket (or to tamper with)."""
        header = header or self.header(msg_type)
        parts = [
            _encode(header).encode(),
            _encode(parent or {}).encode(),
            _encode(metadata or {}).encode(),
            _encode(content or {}).encode(),
        ]
        return header["msg_id"], [DELIMITER, self.signer.sign(parts), *parts]

    def send(
        self,
        sock: zmq.Socket,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """Send one message on ``sock``; returns its ``msg_id``."""
        msg_id, frames = self.frames(msg_type, content, parent=parent, metadata=metadata, header=header)
        sock.send_multipart(frames, copy=False)
        return msg_id

    # ---- receiving (lenient) -----------------------------------------------------------------

    def parse(self, frames: Sequence[Any]) -> Msg | None:
        """A message from raw frames; None when it has no delimiter or fails authentication."""
        raw = [f.buffer if isinstance(f, zmq.Frame) else f for f in frames]
        index = next((i for i, f in enumerate(raw) if bytes(f) == DELIMITER), None)
        if index is None or len(raw) < index + 6:
            return None
        signature, parts = bytes(raw[index + 1]), raw[index + 2 : index + 6]
        if self.signer.enabled and (not signature or not self.signer.verify(signature, parts)):
            return None
        header, parent, metadata, content = (_obj(p) for p in parts)
        msg_type = header.get("msg_type")
        return {
            "header": header,
            "parent_header": parent,
            "metadata": metadata,
            "content": content,
            "msg_type": msg_type if isinstance(msg_type, str) else "",
            "msg_id": header.get("msg_id"),
            "buffers": [bytes(b) for b in raw[index + 6 :]],
            "received": time.monotonic(),
        }

    def recv(self, sock: zmq.Socket, timeout: float | None = None) -> Msg | None:
        """The next message on ``sock`` (waiting up to ``timeout`` s; None: forever), or None."""
        if timeout is not None and not sock.poll(max(0, int(timeout * 1000))):
            return None
        return self.parse(sock.recv_multipart(copy=False))

    @staticmethod
    def parent_id(msg: Msg) -> Any:
        return msg["parent_header"].get("msg_id")

    def wait(
        self,
        msg_id: str,
        sock: zmq.Socket | None,
        *,
        idle: bool = True,
        timeout: float = 30.0,
        alive: Callable[[], bool] | None = None,
        on_iopub: Callable[[Msg], None] | None = None,
        on_stdin: Callable[[Msg], None] | None = None,
    ) -> tuple[Msg | None, list[Msg]]:
        """Wait for the reply to ``msg_id`` on ``sock`` (if given) and its ``idle`` status (if ``idle``).

        Returns ``(reply, iopub messages whose parent is msg_id, in order)``. Raises
        TimeoutError after ``timeout`` s, naming what is missing, and :class:`KernelGone` when
        ``alive()`` says the process has exited. ``on_stdin`` sees requests on stdin.
        """
        poller = zmq.Poller()
        if sock is not None:
            poller.register(sock, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        if on_stdin is not None:
            poller.register(self.stdin, zmq.POLLIN)
        reply: Msg | None = None
        got_idle = not idle
        outputs: list[Msg] = []
        deadline = time.monotonic() + timeout
        while (sock is not None and reply is None) or not got_idle:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = "reply" if sock is not None and reply is None else "idle status"
                raise TimeoutError(f"no {missing} within {timeout:g} s")
            events = poller.poll(int(min(left, 0.05 if alive else left) * 1000))
            if not events and alive is not None and not alive():
                raise KernelGone("the kernel process exited")
            for ready, _ in events:
                msg = self.recv(ready, 0)
                if msg is None:
                    continue
                if ready is self.stdin:
                    if on_stdin is not None:
                        on_stdin(msg)
                    continue
                if self.parent_id(msg) != msg_id:
                    continue
                if ready is self.iopub:
                    outputs.append(msg)
                    if on_iopub is not None:
                        on_iopub(msg)
                    if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                        got_idle = True
                else:
                    reply = msg
        return reply, outputs

    def request(
        self,
        sock: zmq.Socket,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        timeout: float = 30.0,
        idle: bool = False,
        alive: Callable[[], bool] | None = None,
    ) -> Msg:
        """Send a request and return its reply (TimeoutError, KernelGone)."""
        reply, _ = self.wait(self.send(sock, msg_type, content), sock, idle=idle, timeout=timeout, alive=alive)
        assert reply is not None
        return reply

    # ---- the one "is iopub subscribed?" rule ---------------------------------------------------

    def await_iopub(self, timeout: float = 30.0, alive: Callable[[], bool] | None = None) -> str:
        """Block until iopub is subscribed: a SUB socket misses whatever is published before that.

        The rule: an ``iopub_welcome`` (protocol 5.5, JEP 65: sent once our subscription is
        live), or a ``status`` message whose parent is one of our ``kernel_info_request`` probes
        (sent on shell every 250 ms until then; so kernels before 5.5 work too). Returns which
        of the two it saw: ``"iopub_welcome"`` or ``"status"``. Replies to the probes are
        drained from shell. TimeoutError if neither comes within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        probes: set[str] = set()
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        next_probe = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(
                    f"iopub not subscribed within {timeout:g} s (no iopub_welcome, no status for a kernel_info_request)"
                )
            if now >= next_probe:
                probes.add(self.send(self.shell, "kernel_info_request", {}))
                next_probe = now + 0.25
            events = poller.poll(int(max(0.0, min(deadline, next_probe) - now) * 1000))
            if not events and alive is not None and not alive():
                raise KernelGone("the kernel process exited")
            for sock, _ in events:
                msg = self.recv(sock, 0)
                if msg is None or sock is self.shell:
                    continue
                if msg["msg_type"] == "iopub_welcome" or (
                    msg["msg_type"] == "status" and self.parent_id(msg) in probes
                ):
                    self._drain_probe_replies(probes, deadline)
                    return "iopub_welcome" if msg["msg_type"] == "iopub_welcome" else "status"

    def _drain_probe_replies(self, probes: set[str], deadline: float) -> None:
        """Let the probes' replies arrive (briefly) so they are not mistaken for later replies."""
        until = min(deadline, time.monotonic() + 0.2)
        while probes and time.monotonic() < until:
            if not self.shell.poll(max(1, int((until - time.monotonic()) * 1000))):
                break
            msg = self.recv(self.shell, 0)
            if msg is not None:
                probes.discard(self.parent_id(msg))

    # ---- requests tools use ----------------------------------------------------------------------

    def kernel_info(self, timeout: float = 10.0, alive: Callable[[], bool] | None = None) -> dict[str, Any]:
        return self.request(self.shell, "kernel_info_request", {}, timeout=timeout, alive=alive)["content"]

    @staticmethod
    def execute_content(
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
        user_expressions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }

    def execute(
        self,
        code: str,
        timeout: float = 30.0,
        on_output: Callable[[Msg], None] | None = None,
        on_input: Callable[[str, bool], str] | None = None,
        alive: Callable[[], bool] | None = None,
        idle: bool = True,
    ) -> Msg:
        """Run ``code``; ``on_output`` sees each iopub message of the cell but ``status``; returns the reply message.

        ``on_input(prompt, password)`` answers ``input_request``s (``allow_stdin`` is true only
        when it is given). ``idle=False`` returns at the reply, for kernels that send no status.
        """

        def answer(request: Msg) -> None:
            if on_input is not None and request["msg_type"] == "input_request":
                content = request["content"]
                value = on_input(str(content.get("prompt", "")), bool(content.get("password")))
                self.send(self.stdin, "input_reply", {"value": value}, parent=request["header"])

        def output(msg: Msg) -> None:
            if on_output is not None and msg["msg_type"] != "status":
                on_output(msg)

        msg_id = self.send(self.shell, "execute_request", self.execute_content(code, allow_stdin=on_input is not None))
        reply, _ = self.wait(
            msg_id,
            self.shell,
            idle=idle,
            timeout=timeout,
            alive=alive,
            on_iopub=output,
            on_stdin=answer if on_input is not None else None,
        )
        assert reply is not None
        return reply

    def shutdown(self, restart: bool = False, timeout: float = 5.0, alive: Callable[[], bool] | None = None) -> Msg:
        return self.request(self.control, "shutdown_request", {"restart": restart}, timeout=timeout, alive=alive)

    def interrupt_request(self, timeout: float = 5.0) -> Msg:
        return self.request(self.control, "interrupt_request", {}, timeout=timeout)

    def heartbeat(self, timeout: float = 2.0, payload: bytes = b"ping") -> bool:
        """One heartbeat round trip on a fresh REQ socket: True if ``payload`` came back."""
        sock = self.context.socket(zmq.REQ)
        sock.linger = 0
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        if self.info.curve_publickey:
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = self.info.curve_publickey.encode("ascii")
            sock.curve_publickey, sock.curve_secretkey = public, secret
        try:
            sock.connect(self.info.address("hb"))
            sock.send(payload)
            return bool(sock.poll(int(timeout * 1000))) and sock.recv() == payload
        finally:
            sock.close(linger=0)
