"""Comms: kernel-side objects that talk to frontend widgets over comm_open / comm_msg / comm_close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernelkit._log import log
from kernelkit.protocol.wire import Message, new_msg_id

#: The kernel a comm talks through: anything with ``send_response`` and ``iopub_socket``, and a
#: ``comm_manager`` (a ``kernelkit.Kernel``; typed loosely so this module does not import it).
KernelLike = Any


MsgCallback = Callable[[Message], None]


class Comm:
    def __init__(self, kernel: KernelLike, target_name: str, comm_id: str | None = None) -> None:
        self.kernel = kernel
        self.target_name = target_name
        self.comm_id = comm_id or new_msg_id()
        self._on_msg: MsgCallback | None = None
        self._on_close: MsgCallback | None = None
        self.closed = False

    def _publish(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None, buffers: list[bytes] | None) -> None:
        content = {"comm_id": self.comm_id, **content}
        self.kernel.send_response(self.kernel.iopub_socket, msg_type, content, buffers=buffers, metadata=metadata)

    def open(self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._publish("comm_open", {"target_name": self.target_name, "data": data or {}}, metadata, None)

    def send(self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None, buffers: list[bytes] | None = None) -> None:
        self._publish("comm_msg", {"data": data or {}}, metadata, buffers)

    def close(self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.kernel.comm_manager.comms.pop(self.comm_id, None)
        self._publish("comm_close", {"data": data or {}}, metadata, None)

    def on_msg(self, callback: MsgCallback | None) -> None:
        self._on_msg = callback

    def on_close(self, callback: MsgCallback | None) -> None:
        self._on_close = callback


class CommManager:
    """Targets the frontend may open comms to, and the comms open now.

    ``comm_open``/``comm_msg``/``comm_close`` take ipykernel's handler arguments
    ``(stream, ident, msg)``, so they can sit in ``Kernel.shell_handlers`` as in ipykernel.
    """

    def __init__(self, kernel: KernelLike) -> None:
        self.kernel = kernel
        self.targets: dict[str, Callable[[Comm, Message], None]] = {}
        self.comms: dict[str, Comm] = {}

    def register_target(self, target_name: str, callback: Callable[[Comm, Message], None]) -> None:
        self.targets[target_name] = callback

    def unregister_target(self, target_name: str) -> None:
        self.targets.pop(target_name, None)

    def open(self, target_name: str, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> Comm:
        """Open a comm from the kernel side."""
        comm = Comm(self.kernel, target_name)
        self.comms[comm.comm_id] = comm
        comm.open(data, metadata)
        return comm

    def comm_info(self, target_name: str | None = None) -> dict[str, dict[str, str]]:
        return {
            cid: {"target_name": c.target_name}
            for cid, c in self.comms.items()
            if target_name is None or c.target_name == target_name
        }

    def comm_open(self, stream: Any, ident: Any, msg: Message) -> None:
        content = msg["content"]
        comm_id, target_name = content.get("comm_id"), content.get("target_name")
        target = self.targets.get(str(target_name))
        comm = Comm(self.kernel, str(target_name), str(comm_id))
        if target is None:
            log.warning("comm_open for unknown target %r: closing it", target_name)
            comm.closed = True
            comm._publish("comm_close", {"data": {}}, None, None)
            return
        self.comms[comm.comm_id] = comm
        target(comm, msg)

    def comm_msg(self, stream: Any, ident: Any, msg: Message) -> None:
        comm = self.comms.get(msg["content"].get("comm_id"))
        if comm is None:
            log.warning("comm_msg for unknown comm %r", msg["content"].get("comm_id"))
        elif comm._on_msg is not None:
            comm._on_msg(msg)

    def comm_close(self, stream: Any, ident: Any, msg: Message) -> None:
        comm = self.comms.pop(msg["content"].get("comm_id"), None)
        if comm is None:
            return
        comm.closed = True
        if comm._on_close is not None:
            comm._on_close(msg)
