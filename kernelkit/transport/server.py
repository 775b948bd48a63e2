"""The kernel process's I/O: five sockets, their threads, and the loop that feeds the kernel.

- shell: polled on the main thread, so SIGINT interrupts user code where it runs;
- control: its own thread, so interrupt, shutdown and kernel_info answer while a cell runs;
- heartbeat: a C-level echo proxy on its own thread;
- iopub: XPUB, greeting subscribers from a watcher thread (see :mod:`kernelkit.channels`);
- stdin: used by the main thread while user code asks for input.

Every request is wrapped in ``status: busy`` / ``status: idle`` with the request as parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import zmq

from kernelkit.kernel import handlers
from kernelkit.transport.channels import Channel, Heartbeat, IOPubChannel
from kernelkit.transport.connection import ConnectionInfo
from kernelkit.kernel.handlers import Request
from kernelkit.transport.interrupts import InterruptGate
from kernelkit._log import log
from kernelkit.protocol.session import Session
from kernelkit.transport.streams import OutStream
from kernelkit.protocol.wire import Frame, Message, WireError

if TYPE_CHECKING:
    from kernelkit.kernel.base import Kernel

SHUTDOWN_GRACE = 1.0  # seconds a running cell gets to finish before a shutdown interrupts it
SHUTDOWN_DEADLINE = 5.0  # seconds after which a kernel that cannot stop exits anyway
PARENT_POLL_INTERVAL = 0.5


class KernelStartError(RuntimeError):
    """The kernel cannot start (e.g. a port is taken); the message says what to do."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class KernelServer:
    def __init__(
        self, kernel_class: type[Kernel], info: ConnectionInfo, parent_pid: int | None = None, arguments: Any = None
    ) -> None:
        self.info = info
        self.session = Session(info.key, info.signature_scheme)
        self.interrupts = InterruptGate()
        self.parent_pid = parent_pid
        self.context = zmq.Context()
        self._stopping = threading.Event()
        self._closed_event = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._control_stop_r, self._control_stop_w = os.pipe()
        self._saved_stdio: tuple[Any, Any] | None = None
        self._held: list[list[memoryview]] = []  # shell requests to abort, see hold_queued
        critical = self.interrupts.critical
        try:
            self.shell = Channel(self._bind(zmq.ROUTER, "shell"), "shell", critical)
            self.control = Channel(self._bind(zmq.ROUTER, "control"), "control", critical)
            self.stdin = Channel(self._bind(zmq.ROUTER, "stdin"), "stdin", critical)
            self.iopub = IOPubChannel(self._bind(zmq.XPUB, "iopub"), self._welcome_frames, critical)
            self.heartbeat = Heartbeat(self.context, self._bind(zmq.ROUTER, "hb"))
        except KernelStartError:
            self.context.destroy(linger=0)
            raise
        self._control_thread = threading.Thread(target=self._control_loop, name="kernelkit-control", daemon=True)
        self.kernel = self._create_kernel(kernel_class, arguments)

    # ---- set-up ----------------------------------------------------------------------------

    def _bind(self, socket_type: int, channel: str) -> zmq.Socket:
        sock = self.context.socket(socket_type)
        sock.linger = 1000
        if socket_type == zmq.ROUTER:
            sock.router_handover = 1  # a client reconnecting with the same identity takes over
        if socket_type == zmq.XPUB:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # greet every subscriber, not only the first per topic
        if self.info.curve_secretkey:
            if not zmq.has("curve"):
                sock.close(linger=0)
                raise KernelStartError(
                    "the connection file asks for CurveZMQ encryption, but this pyzmq was built without it: "
                    "install a pyzmq wheel from PyPI (pip install --force-reinstall pyzmq)"
                )
            sock.curve_server = True
            sock.curve_secretkey = self.info.curve_secretkey.encode("ascii")
        info = self.info
        try:
            if info.port(channel) == 0 and info.transport == "tcp":
                host = f"[{info.ip}]" if ":" in info.ip else info.ip
                info.set_port(channel, sock.bind_to_random_port(f"tcp://{host}"))
            else:
                if info.port(channel) == 0:  # ipc: the first free path, like jupyter_client
                    port = 1
                    while os.path.exists(f"{info.ip}-{port}"):
                        port += 1
                    info.set_port(channel, port)
                sock.bind(info.address(channel))
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise KernelStartError(
                f"cannot bind the {channel} channel to {info.address(channel)}: {exc.strerror}; "
                "another process holds it: restart the kernel from the frontend so it picks new ports"
            ) from None
        return sock

    def _create_kernel(self, kernel_class: type[Kernel], arguments: Any) -> Kernel:
        """Attach the runtime before ``__init__`` so subclass constructors can use ``self.session`` etc."""
        kernel = kernel_class.__new__(kernel_class)
        kernel._server = self
        kernel.session = self.session
        kernel.arguments = arguments
        kernel.iopub_socket = self.iopub
        kernel.stdin_socket = self.stdin
        kernel.shell_stream = self.shell
        kernel.control_stream = self.control
        kernel.__init__()
        return kernel

    def _welcome_frames(self, topic: bytes) -> list[Frame]:
        msg = self.session.msg("iopub_welcome", {"subscription": topic.decode("utf-8", "replace")})
        return self.session.serialize(msg, [topic] if topic else [])

    # ---- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Install signal handlers and start the channel threads; main thread only.

        Call it before anyone learns the ports (the connection file is written after), so a
        SIGTERM or SIGINT from a frontend is never met by Python's default handlers.
        """
        if self._control_thread.is_alive():
            return
        self.interrupts.install()
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # A process-directed signal may land on any thread (a zmq I/O thread, a stream timer),
        # and Python runs its handler only when the main thread next runs bytecode: while the
        # main thread sits in zmq_poll that is never. The wake-up fd makes every signal wake
        # the main loop's poll, so an idle kernel obeys SIGTERM at once instead of hanging.
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.heartbeat.start()
        self.iopub.start()
        self._control_thread.start()
        if self.parent_pid:
            threading.Thread(target=self._watch_parent, name="kernelkit-parent", daemon=True).start()
        self.publish_status("starting", {})

    def serve_forever(self) -> None:
        """Serve until shutdown, SIGTERM or the parent's death; must run on the main thread."""
        self.start()
        if self.kernel.redirect_stdio:
            self._redirect_stdio()
        poller = zmq.Poller()
        poller.register(self.shell.socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                ready = dict(poller.poll())
                if self._wake_r in ready:
                    self._drain_wake()
                if self.shell.socket in ready:
                    self._serve_one(self.shell, handlers.SHELL)
        finally:
            self._close()

    def _serve_one(self, channel: Channel, table: dict[str, Any]) -> None:
        try:
            frames = channel.recv_frames(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            idents, msg = self.session.deserialize(frames)
        except WireError as exc:
            log.warning("dropped a message on %s: %s", channel.name, exc)
            return
        self.dispatch(Request(channel, idents, msg), table)

    def dispatch(self, request: Request, table: dict[str, Any]) -> None:
        self.kernel.set_parent(request.idents, request.msg, request.channel.name)
        self.publish_status("busy", request.msg)
        abort = False
        try:
            abort = handlers.handle(self.kernel, request, table)
        except KeyboardInterrupt:
            log.warning("an interrupt arrived after %s had finished: ignored", request.msg_type)
        finally:
            self.flush_stdio()
            self.publish_status("idle", request.msg)
        if abort or self._held:  # held requests must be answered even if the handler failed after holding them
            self._abort_queued()

    def hold_queued(self) -> None:
        """Take the shell requests waiting right now, to be aborted once the failing request is answered.

        Called before the error reply goes out: a request the client sends after it has seen
        that error must run, not be aborted. Polling for queued requests only after the reply
        aborted those too whenever the client was quick.
        """
        while self.shell.socket.poll(0):
            try:
                self._held.append(self.shell.recv_frames(zmq.NOBLOCK))
            except zmq.Again:
                break

    def _abort_queued(self) -> None:
        """After an error, answer the execute requests held by :meth:`hold_queued` with ``aborted`` (as ipykernel)."""
        held, self._held = self._held, []
        for frames in held:
            try:
                idents, msg = self.session.deserialize(frames)
            except WireError as exc:
                log.warning("dropped a message on shell: %s", exc)
                continue
            request = Request(self.shell, idents, msg)
            if request.msg_type != "execute_request":
                self.dispatch(request, handlers.SHELL)
                continue
            self.kernel.set_parent(idents, msg, "shell")
            self.publish_status("busy", msg)
            aborted = {"status": "aborted"}
            self.session.send(self.shell, "execute_reply", aborted, msg, idents, metadata=aborted)
            self.publish_status("idle", msg)

    def _control_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.control.socket, zmq.POLLIN)
        poller.register(self._control_stop_r, zmq.POLLIN)
        while self._control_stop_r not in dict(poller.poll()):
            self._serve_one(self.control, handlers.CONTROL)

    def publish_status(self, state: str, parent: Message) -> None:
        self.session.send(self.iopub, "status", {"execution_state": state}, parent)

    # ---- output and input --------------------------------------------------------------

    def _redirect_stdio(self) -> None:
        self._saved_stdio = (sys.stdout, sys.stderr)
        sys.stdout = OutStream("stdout", self._send_stream)
        sys.stderr = OutStream("stderr", self._send_stream)

    def _send_stream(self, name: str, text: str) -> None:
        self.session.send(self.iopub, "stream", {"name": name, "text": text}, self.kernel.get_parent("shell"))

    def flush_stdio(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, OutStream):
                stream.flush()

    def request_input(self, prompt: str, password: bool, ident: list[bytes], parent: Message) -> str:
        """Send ``input_request`` to the client that sent the running request and wait for its reply."""
        while self.stdin.socket.poll(0):  # replies to earlier, abandoned requests
            self.stdin.socket.recv_multipart()
        self.session.send(self.stdin, "input_request", {"prompt": prompt, "password": password}, parent, ident)
        poller = zmq.Poller()
        poller.register(self.stdin.socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._stopping.is_set():
                raise EOFError("the kernel is shutting down")
            if self._wake_r in ready:
                self._drain_wake()
            if self.stdin.socket not in ready:
                continue
            try:
                _, msg = self.session.deserialize(self.stdin.recv_frames())
            except WireError as exc:
                log.warning("dropped a message on stdin: %s", exc)
                continue
            if msg["msg_type"] == "input_reply":
                return str(msg["content"].get("value", ""))

    # ---- stopping ----------------------------------------------------------------------

    def interrupt(self) -> None:
        """Interrupt the running request on the main thread, if any (message-mode interrupts)."""
        if self.interrupts.armed:
            self.interrupts.interrupt_main()

    @property
    def stopping(self) -> bool:
        """True once shutdown, SIGTERM or the parent's death has asked the kernel to stop."""
        return self._stopping.is_set()

    def stop(self, reason: str) -> None:
        """Ask the main loop to end; a cell still running is interrupted after a grace period."""
        if self._stopping.is_set():
            return
        log.info("stopping: %s", reason)
        self._stopping.set()
        with contextlib.suppress(BlockingIOError):  # already full of wake-ups: awake anyway
            os.write(self._wake_w, b"x")
        threading.Thread(target=self._enforce_stop, name="kernelkit-stop", daemon=True).start()

    def _drain_wake(self) -> None:
        """Empty the wake-up pipe (signals and ``stop`` write to it) so poll does not spin."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _enforce_stop(self) -> None:
        if self._closed_event.wait(SHUTDOWN_GRACE):
            return
        self.interrupt()
        if not self._closed_event.wait(SHUTDOWN_DEADLINE - SHUTDOWN_GRACE):
            log.error("the kernel did not stop within %.0f s: exiting now", SHUTDOWN_DEADLINE)
            os._exit(1)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop("SIGTERM")
        if self.interrupts.armed:
            raise SystemExit(0)

    def _watch_parent(self) -> None:
        assert self.parent_pid
        parent_is_ppid = self.parent_pid == os.getppid()
        while not self._stopping.wait(PARENT_POLL_INTERVAL):
            orphaned = parent_is_ppid and os.getppid() != self.parent_pid
            if orphaned or not _pid_alive(self.parent_pid):
                self.stop(f"parent process {self.parent_pid} died")
                return

    def _close(self) -> None:
        if self._saved_stdio is not None:
            self.flush_stdio()
            sys.stdout, sys.stderr = self._saved_stdio
        os.write(self._control_stop_w, b"x")
        self._control_thread.join(timeout=SHUTDOWN_DEADLINE)
        self.heartbeat.stop()
        self.iopub.stop()
        for channel in (self.shell, self.control, self.stdin, self.iopub):
            channel.socket.close()
        self.context.term()
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)  # before its fd is closed and its number reused
        for fd in (self._wake_r, self._wake_w, self._control_stop_r, self._control_stop_w):
            os.close(fd)
        self._closed_event.set()
