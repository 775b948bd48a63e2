"""A signing identity for one side of a connection, with jupyter_client's ``Session`` API.

Kernels written for ipykernel call ``self.session.send(stream, msg_type, content, parent)``;
this class keeps that call working on top of the pure functions in :mod:`kernelkit.protocol.wire`.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from kernelkit.protocol import wire
from kernelkit.protocol.wire import Frame, Message


class Sendable(Protocol):
    """Anything frames can be sent on: a :class:`kernelkit.channels.Channel` or a zmq socket."""

    def send_multipart(self, frames: Sequence[Frame], copy: bool = ..., track: bool = ...) -> Any: ...


#: Messages smaller than this (bytes, all frames) are copied into ZeroMQ, which is cheaper
#: for small messages than handing the buffers over (pyzmq's own copy_threshold is 64 KiB).
COPY_THRESHOLD = 1 << 16


class _SharedReplayGuard(wire.ReplayGuard):
    """The shell and control threads check signatures through one session: one at a time."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._lock = threading.Lock()

    def check(self, signature: bytes) -> None:
        with self._lock:
            super().check(signature)


def _default_username() -> str:
    """What ``getpass.getuser()`` returns, without importing getpass (and termios) at start-up."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid())[0]
    except (ImportError, KeyError):  # no user database entry (containers): any name will do
        return "kernel"


class Session:
    def __init__(
        self,
        key: bytes | str = b"",
        signature_scheme: str = "hmac-sha256",
        session_id: str | None = None,
        username: str | None = None,
        replay_capacity: int = 1 << 16,
    ) -> None:
        self.signer = wire.Signer(key, signature_scheme)
        self.replay = _SharedReplayGuard(replay_capacity)
        self.session = session_id or wire.new_msg_id()
        self.username = username or _default_username()
        # Message ids as jupyter_client makes them: unique per session, no syscall per message.
        self._id_prefix = f"{self.session}_{os.getpid()}_"
        self._id_counter = itertools.count(1)
        self._clock = wire.UTCClock()
        self._packed_parent: tuple[object, bytes] = (None, b"")

    @property
    def key(self) -> bytes:
        return self.signer.key

    @property
    def bsession(self) -> bytes:
        return self.session.encode("ascii")

    def now(self) -> str:
        """The current time as message headers carry it."""
        return self._clock()

    def msg_header(self, msg_type: str) -> dict[str, Any]:
        msg_id = f"{self._id_prefix}{next(self._id_counter)}"
        return wire.new_header(msg_type, self.session, self.username, msg_id, self._clock())

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | None = None,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """A message dict in jupyter_client's shape (header, parent_header, msg_id, ...)."""
        header = header or self.msg_header(msg_type)
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": (parent.get("header", parent) if parent else {}),
            "content": {} if content is None else content,
            "metadata": metadata or {},
            "buffers": [],
        }

    def serialize(self, msg: Message, idents: Sequence[bytes] = ()) -> list[Frame]:
        parent = msg.get("parent_header")
        packed: bytes | None = None
        if parent:  # a request's busy, outputs, reply and idle share one parent: encode it once
            memo_parent, packed = self._packed_parent
            if memo_parent is not parent:
                packed = wire.pack(parent)
                self._packed_parent = (parent, packed)
        return wire.serialize(msg, self.signer, idents, packed)

    def deserialize(self, frames: Sequence[Frame]) -> tuple[list[bytes], Message]:
        """Authenticate and parse; raises :class:`kernelkit.protocol.wire.WireError`."""
        return wire.deserialize(frames, self.signer, self.replay)

    def serialize_content(self, content: dict[str, Any] | bytes, idents: Sequence[bytes] = ()) -> list[Frame]:
        """A minimal signed message: ``[idents..., <IDS|MSG>, signature, content]``, no header.

        The kernel handshake (JEP 66; jupyter_client docs, "Kernel startup handshake", protocol
        5.6) uses this shape for both the kernel's registration and the launcher's
        acknowledgement; the signature is the HMAC of the one content frame.
        """
        packed = content if isinstance(content, bytes) else wire.pack(content)
        return [*idents, wire.DELIMITER, self.signer.sign([packed]), packed]

    def deserialize_content(self, frames: Sequence[Frame]) -> tuple[list[bytes], bytes]:
        """Authenticate a minimal message (:meth:`serialize_content`); returns ``(identities, content)``.

        The content is returned undecoded: an acknowledgement's content is left to the launcher
        (xeus sends ``ACK``, which is not JSON). Raises :class:`kernelkit.protocol.wire.WireError`.
        """
        idents, rest = wire.split_identities(frames)
        if len(rest) != 2:
            raise wire.WireError(f"{len(rest)} frames after the delimiter, not 2 (signature, content)")
        signature, content = bytes(rest[0]), bytes(rest[1])
        if self.signer.enabled and not signature:
            raise wire.WireError("unsigned message (this kernel requires signatures)")
        if self.signer.enabled and not self.signer.verify(signature, [content]):
            raise wire.WireError("invalid signature")
        return idents, content

    def send(
        self,
        stream: Sendable | None,
        msg_or_type: Message | str,
        content: dict[str, Any] | None = None,
        parent: Message | None = None,
        ident: bytes | Sequence[bytes] | None = None,
        buffers: Sequence[Frame] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Build (unless given a message), sign and send; returns the message sent."""
        if isinstance(msg_or_type, dict):
            msg = msg_or_type
        else:
            msg = self.msg(msg_or_type, content, parent, header, metadata)
        if buffers:
            msg["buffers"] = list(buffers)
        if msg.get("buffers"):
            check_buffers(msg["buffers"])
        idents = [ident] if isinstance(ident, bytes) else list(ident or ())
        if stream is not None:
            frames = self.serialize(msg, idents)
            # pyzmq sends small frames fastest by copying; large ones and buffers without a copy.
            copy = not track and not msg.get("buffers") and sum(map(len, frames)) < COPY_THRESHOLD
            stream.send_multipart(frames, copy=copy, track=track)
        return msg


def check_buffers(buffers: Sequence[Any]) -> None:
    """Raise in the caller, as jupyter_client's ``Session.send`` does, for a buffer ZeroMQ cannot send.

    iopub messages from other threads are sent later by the iopub thread: a bad buffer found
    only there would fail far from the code that passed it.
    """
    for index, buf in enumerate(buffers):
        try:
            view = buf if isinstance(buf, memoryview) else memoryview(buf)
        except TypeError as exc:
            raise TypeError(f"buffer {index} ({type(buf).__name__}) does not support the buffer protocol") from exc
        if not view.contiguous:
            raise ValueError(f"buffer {index} is not contiguous")
