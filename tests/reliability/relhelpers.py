"""Shared pieces of the reliability suite: its test kernelspecs and a raw pyzmq client.

The raw client signs with jupyter_client's own ``Session`` (the reference implementation,
not kernelkit's wire module), so a symmetric bug in kernelkit's signing cannot hide itself.
Kernelspecs go into the temporary JUPYTER_PATH that tests/conftest.py set up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil
import zmq
from jupyter_client.session import Session

from conftest import install_kernelspec

KERNELS_DIR = Path(__file__).resolve().parent / "kernels"
ENV = {"PYTHONPATH": str(KERNELS_DIR)}

RK = "kk-rel-rk"  # command kernel, interrupt_mode signal
RK_MESSAGE = "kk-rel-rk-message"  # same kernel, interrupt_mode message
BAD_SHUTDOWN = "kk-rel-bad-shutdown"
RK_CURVE = "kk-rel-rk-curve"  # declares metadata.supported_encryption = ["curve"]


def _install() -> None:
    install_kernelspec(RK, "rk_kernel", env=ENV, interrupt_mode="signal")
    install_kernelspec(RK_MESSAGE, "rk_kernel", env=ENV, interrupt_mode="message")
    install_kernelspec(BAD_SHUTDOWN, "bad_shutdown_kernel", env=ENV)
    folder = install_kernelspec(RK_CURVE, "rk_kernel", env=ENV)
    spec_file = folder / "kernel.json"
    import json

    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["metadata"] = {"supported_encryption": ["curve"]}
    spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")


_install()

PYTHON = sys.executable


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


class RawClient:
    """DEALER sockets on shell and control (and optionally a SUB on iopub) from connection info."""

    def __init__(
        self,
        info: dict[str, Any],
        *,
        key: bytes | None = None,
        iopub: bool = False,
        identity: bytes | None = None,
        curve: bool = True,
        context: zmq.Context | None = None,
    ) -> None:
        self.info = info
        signing_key = info["key"] if key is None else key
        if isinstance(signing_key, str):
            signing_key = signing_key.encode()
        self.session = Session(key=signing_key, signature_scheme=info.get("signature_scheme", "hmac-sha256"))
        self.context = context or zmq.Context.instance()
        self.curve = curve
        self.shell = self._socket(zmq.DEALER, "shell", identity)
        self.control = self._socket(zmq.DEALER, "control", identity)
        self.iopub: zmq.Socket | None = None
        if iopub:
            self.iopub = self._socket(zmq.SUB, "iopub")
            self.iopub.setsockopt(zmq.SUBSCRIBE, b"")

    def address(self, channel: str) -> str:
        ip = self.info.get("ip", "127.0.0.1")
        return f"{self.info.get('transport', 'tcp')}://{ip}:{self.info[channel + '_port']}"

    def _socket(self, kind: int, channel: str, identity: bytes | None = None) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        # A DEALER whose peer refuses it (a Curve handshake with the wrong key) may have no pipe
        # to queue into, and a blocking send would wait forever: give up after a while instead.
        sock.sndtimeo = 5000
        if identity:
            sock.identity = identity
        public = self.info.get("curve_publickey")
        if self.curve and public:
            pub, sec = zmq.curve_keypair()
            sock.curve_serverkey = public.encode() if isinstance(public, str) else public
            sock.curve_publickey, sock.curve_secretkey = pub, sec
        sock.connect(self.address(channel))
        return sock

    def frames(self, msg_type: str, content: dict[str, Any]) -> tuple[str, list[bytes]]:
        msg = self.session.msg(msg_type, content)
        return msg["header"]["msg_id"], self.session.serialize(msg)

    def send(self, sock: zmq.Socket, msg_type: str, content: dict[str, Any]) -> str:
        msg_id, frames = self.frames(msg_type, content)
        try:
            sock.send_multipart(frames)
        except zmq.Again:  # nobody to send to: no reply will come, which the callers check
            pass
        return msg_id

    def recv(self, sock: zmq.Socket, timeout: float) -> dict[str, Any] | None:
        if not sock.poll(int(timeout * 1000)):
            return None
        frames = sock.recv_multipart()
        _, frames = self.session.feed_identities(frames)
        return self.session.deserialize(frames)

    def reply_to(self, sock: zmq.Socket, msg_id: str, timeout: float = 20) -> dict[str, Any] | None:
        """The reply whose parent is ``msg_id``, skipping others; None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.recv(sock, left)
            if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    def kernel_info(self, timeout: float = 20, control: bool = False) -> dict[str, Any] | None:
        sock = self.control if control else self.shell
        return self.reply_to(sock, self.send(sock, "kernel_info_request", {}), timeout)

    def execute(self, code: str, timeout: float = 20, **kw: Any) -> dict[str, Any] | None:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": False, **kw}
        return self.reply_to(self.shell, self.send(self.shell, "execute_request", content), timeout)

    def close(self) -> None:
        for sock in (self.shell, self.control, self.iopub):
            if sock is not None:
                sock.close(linger=0)
