"""A small blocking client and kernel launcher, so kernelkit can start and check any kernel on its own.

``jupyter_client`` is the full client; this one is what ``kernelkit doctor`` and
``kernelkit exec`` need: start a kernelspec's ``argv`` with a fresh connection file, wait for
``kernel_info_reply``, run a cell, shut down. It needs only pyzmq.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zmq

from kernelkit.transport import connection
from kernelkit.transport.connection import ConnectionInfo
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import Message, WireError


class KernelDiedError(RuntimeError):
    """The kernel process exited before answering; ``stderr`` holds what it printed."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class KernelClient:
    """Blocking request/reply over shell and control, collecting iopub output per request."""

    def __init__(self, info: ConnectionInfo, context: zmq.Context | None = None) -> None:
        self.info = info
        self.session = Session(info.key, info.signature_scheme)
        self.context = context or zmq.Context.instance()
        self.shell = self._connect(zmq.DEALER, "shell")
        self.control = self._connect(zmq.DEALER, "control")
        self.stdin = self._connect(zmq.DEALER, "stdin")
        self.iopub = self._connect(zmq.SUB, "iopub")
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")

    def _connect(self, socket_type: int, channel: str) -> zmq.Socket:
        sock = self.context.socket(socket_type)
        sock.linger = 0
        if socket_type == zmq.DEALER:
            sock.identity = self.session.bsession  # shell and stdin share it, as input_request relies on
        if self.info.curve_publickey:
            client_public, client_secret = zmq.curve_keypair()
            sock.curve_serverkey = self.info.curve_publickey.encode("ascii")
            sock.curve_publickey, sock.curve_secretkey = client_public, client_secret
        sock.connect(self.info.address(channel))
        return sock

    def send(self, sock: zmq.Socket, msg_type: str, content: dict[str, Any]) -> Message:
        return self.session.send(sock, self.session.msg(msg_type, content))

    def _recv(self, sock: zmq.Socket, deadline: float) -> Message | None:
        remaining = max(0.0, deadline - time.monotonic())
        if not sock.poll(int(remaining * 1000)):
            return None
        try:
            return self.session.deserialize(sock.recv_multipart())[1]
        except WireError:
            return None

    def reply(self, sock: zmq.Socket, request: Message, timeout: float) -> Message:
        """The reply to ``request``, skipping replies to anything else; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._recv(sock, deadline)
            if msg is not None and msg["parent_header"].get("msg_id") == request["msg_id"]:
                return msg
        raise TimeoutError(f"no {request['msg_type'].replace('_request', '_reply')} within {timeout:g} s")

    def await_iopub(self, deadline: float) -> None:
        """Wait until iopub delivers (an ``iopub_welcome``, or status from a kernel_info nudge).

        A SUB socket misses what is published before its subscription arrives; without this,
        the first cell's output could be lost.
        """
        while time.monotonic() < deadline:
            if self.iopub.poll(50):
                while self.iopub.poll(0):
                    self.iopub.recv_multipart()
                return
            self.send(self.shell, "kernel_info_request", {})
        raise TimeoutError("the kernel's iopub channel delivered nothing")

    def kernel_info(self, timeout: float = 10.0) -> dict[str, Any]:
        request = self.send(self.shell, "kernel_info_request", {})
        return self.reply(self.shell, request, timeout)["content"]

    def execute(
        self,
        code: str,
        timeout: float = 30.0,
        on_output: Callable[[Message], None] | None = None,
        on_input: Callable[[str, bool], str] | None = None,
    ) -> dict[str, Any]:
        """Run ``code``; ``on_output`` sees each iopub message for it until idle; returns the reply content."""
        request = self.send(
            self.shell, "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": on_input is not None, "stop_on_error": True},
        )
        deadline = time.monotonic() + timeout
        reply: Message | None = None
        idle = False
        poller = zmq.Poller()
        for sock in (self.shell, self.iopub, self.stdin):
            poller.register(sock, zmq.POLLIN)
        while not (reply and idle):
            remaining = deadline - time.monotonic()
            ready = dict(poller.poll(int(max(0.0, remaining) * 1000)))
            if not ready:
                raise TimeoutError(f"the cell did not finish within {timeout:g} s")
            for sock in ready:
                msg = self._recv(sock, deadline)
                if msg is None or msg["parent_header"].get("msg_id") != request["msg_id"]:
                    continue
                if sock is self.shell:
                    reply = msg
                elif sock is self.stdin and on_input is not None:
                    value = on_input(msg["content"].get("prompt", ""), bool(msg["content"].get("password")))
                    self.session.send(self.stdin, self.session.msg("input_reply", {"value": value}, msg))
                elif msg["msg_type"] == "status":
                    idle = msg["content"].get("execution_state") == "idle"
                elif on_output is not None:
                    on_output(msg)
        return reply["content"]

    def shutdown(self, timeout: float = 5.0) -> None:
        request = self.send(self.control, "shutdown_request", {"restart": False})
        self.reply(self.control, request, timeout)

    def close(self) -> None:
        for sock in (self.shell, self.control, self.stdin, self.iopub):
            sock.close(linger=0)


class KernelProcess:
    """A kernel started from a kernelspec-style ``argv``, with its own fresh connection file."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        resource_dir: str = "",
    ) -> None:
        self.info = ConnectionInfo(**dict(zip(
            (f"{c}_port" for c in connection.CHANNELS), connection.free_tcp_ports(len(connection.CHANNELS))
        )))
        self.connection_file = connection.write(self.info, connection.runtime_path(f"kernel-{uuid.uuid4()}.json"))
        self.argv = [
            a.replace("{connection_file}", str(self.connection_file)).replace("{resource_dir}", resource_dir)
            for a in argv
        ]
        self._stderr = tempfile.TemporaryFile()
        full_env = {**os.environ, **(env or {}), "JPY_PARENT_PID": str(os.getpid())}
        self.started = time.perf_counter()
        try:
            self.process = subprocess.Popen(
                self.argv, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr,
            )
        except OSError as exc:
            self.connection_file.unlink(missing_ok=True)
            raise KernelDiedError(f"cannot run {self.argv[0]}: {exc.strerror}", None, "") from None
        self.client = KernelClient(self.info)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """kernel_info_reply content; KernelDiedError if the process exits first.

        One request is enough: a DEALER queues it until the kernel has bound its port.
        """
        request = self.client.send(self.client.shell, "kernel_info_request", {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KernelDiedError(
                    f"the kernel exited with code {self.process.returncode} before answering",
                    self.process.returncode, self.stderr(),
                )
            msg = self.client._recv(self.client.shell, min(deadline, time.monotonic() + 0.05))
            if msg is not None and msg["parent_header"].get("msg_id") == request["msg_id"]:
                self.client.await_iopub(deadline)
                return msg["content"]
        raise TimeoutError(f"the kernel did not answer kernel_info_request within {timeout:g} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down politely, then kill; always removes the connection file."""
        try:
            if self.process.poll() is None:
                try:
                    self.client.shutdown(timeout)
                    self.process.wait(timeout)
                except (TimeoutError, subprocess.TimeoutExpired):
                    self.process.kill()
                    self.process.wait()
        finally:
            self.client.close()
            self._stderr.close()
            self.connection_file.unlink(missing_ok=True)

    def __enter__(self) -> KernelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
