"""The launcher side of the kernel handshake (JEP 66), as the tests use it.

jupyter_client 8.10 does not ship one yet. This follows the JEP and the spec text in
jupyter_client's docs ("Registration file format", "Kernel startup handshake", protocol 5.6),
and deliberately uses nothing of kernelkit, so the tests check kernelkit against an independent
reading of the spec:

- one long-lived ROUTER **registration socket** for any number of kernels (the JEP's
  recommendation for a multi-kernel client);
- a **registration file** per kernel: ``kernel_id``, ``transport``, ``registration_ip``,
  ``registration_port``, ``signature_scheme``, ``key`` (0600), passed where a kernelspec's argv
  says ``{connection_file}``;
- the kernel's registration arrives as ``[identity, <IDS|MSG>, signature, content]``: the
  signature (HMAC of the content frame) is checked, then the content's ``kernel_id`` must be one
  this launcher started; a bad message is rejected (recorded, never acknowledged);
- the acknowledgement is a signed single-frame content message back to that identity;
- the reported ports, with the key, make a connection for jupyter_client's BlockingKernelClient.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from jupyter_client import BlockingKernelClient

DELIMITER = b"<IDS|MSG>"
PORT_FIELDS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@dataclass
class Launched:
    kernel_id: str
    process: subprocess.Popen[str]
    registration_file: Path
    ports: dict[str, int] | None = None


@dataclass
class RegistrationService:
    """A registration socket and the kernels started against it."""

    folder: Path
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    ip: str = "127.0.0.1"
    signature_scheme: str = "hmac-sha256"
    acknowledge: bool = True  # False: a launcher that never answers

    def __post_init__(self) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.port = self.socket.bind_to_random_port(f"tcp://{self.ip}")
        self.kernels: dict[str, Launched] = {}
        self.rejected: list[str] = []  # why each rejected registration was rejected

    # ---- the registration file and the process ----------------------------------------

    def write_registration_file(self, kernel_id: str, key: str | None = None) -> Path:
        path = self.folder / f"registration-{kernel_id}.json"
        data = {"kernel_id": kernel_id, "transport": "tcp", "registration_ip": self.ip,
                "registration_port": self.port, "signature_scheme": self.signature_scheme,
                "key": self.key if key is None else key}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        return path

    def start(self, argv: list[str], key_in_file: str | None = None, env: dict[str, str] | None = None) -> Launched:
        """Start a kernel from a kernelspec argv (``{connection_file}`` becomes the registration file)."""
        kernel_id = str(uuid.uuid4())
        path = self.write_registration_file(kernel_id, key_in_file)
        cmd = [part.replace("{connection_file}", str(path)) for part in argv]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        launched = self.kernels[kernel_id] = Launched(kernel_id, process, path)
        return launched

    # ---- the handshake ------------------------------------------------------------------

    def _sign(self, data: bytes) -> bytes:
        if not self.key:
            return b""
        digest = self.signature_scheme.removeprefix("hmac-")
        return hmac.new(self.key.encode(), data, getattr(hashlib, digest)).hexdigest().encode()

    def receive_one(self, timeout: float) -> Launched | None:
        """Handle one message on the registration socket; the kernel it registered, or None."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        frames = self.socket.recv_multipart()
        if DELIMITER not in frames:
            self.rejected.append("no delimiter")
            return None
        at = frames.index(DELIMITER)
        idents, rest = frames[:at], frames[at + 1:]
        if len(rest) != 2:
            self.rejected.append(f"{len(rest)} frames after the delimiter")
            return None
        signature, content = rest
        if not hmac.compare_digest(signature, self._sign(content)):
            self.rejected.append("invalid signature")
            return None
        try:
            data = json.loads(content)
            launched = self.kernels[data["kernel_id"]]
            ports = {name: int(data[name]) for name in PORT_FIELDS}  # the spec writes them as strings
        except (ValueError, KeyError, TypeError) as exc:
            self.rejected.append(f"bad content: {exc!r}")
            return None
        launched.ports = ports
        if self.acknowledge:
            ack = json.dumps({"status": "ok"}).encode()
            self.socket.send_multipart([*idents, DELIMITER, self._sign(ack), ack])
        return launched

    def wait_for_registrations(self, count: int, timeout: float) -> list[Launched]:
        """Receive until ``count`` kernels registered (or the time is up)."""
        registered: list[Launched] = []
        deadline = time.monotonic() + timeout
        while len(registered) < count and (remaining := deadline - time.monotonic()) > 0:
            launched = self.receive_one(remaining)
            if launched is not None:
                registered.append(launched)
        return registered

    def connection_info(self, launched: Launched) -> dict[str, Any]:
        assert launched.ports is not None, "not registered"
        return {"transport": "tcp", "ip": self.ip, "key": self.key, "signature_scheme": self.signature_scheme,
                **launched.ports}

    def client(self, launched: Launched) -> BlockingKernelClient:
        kc = BlockingKernelClient()
        kc.load_connection_info(self.connection_info(launched))
        kc.start_channels()
        return kc

    # ---- clean-up -----------------------------------------------------------------------

    def close(self) -> None:
        """Kill whatever is still running and close the registration socket."""
        for launched in self.kernels.values():
            if launched.process.poll() is None:
                launched.process.kill()
            try:
                launched.process.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                pass
        self.socket.close(linger=0)
        self.context.term()
