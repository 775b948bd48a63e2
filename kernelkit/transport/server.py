"""The kernel process's I/O: five sockets, the threads that own them, and the loops that feed them.

- shell: owned by the main thread, which polls it and runs each request there, so SIGINT
  interrupts user code where it runs; for a kernel with subshells (JEP 91,
  ``Application.subshells``) owned instead by the ``kernelkit-shell`` router thread, which
  hands each request to the main thread or to its subshell's thread and sends their replies
  (:mod:`kernelkit.transport.subshells`);
- control: owned by the ``kernelkit-control`` thread, so interrupt, shutdown and kernel_info
  answer while a cell runs;
- iopub: owned by the ``kernelkit-iopub`` thread; every other thread queues to it
  (:class:`~kernelkit.transport.channels.Publisher`), so output keeps one order;
- stdin: owned by the main thread (``input()`` runs inside a cell);
- heartbeat: a C-level echo proxy on its own thread.

The protocol rules (busy/idle around each request, aborting queued executes after an error,
waiting for a frontend's iopub subscription) come from the sans-I/O
:class:`~kernelkit.protocol.core.KernelCore`; what a request *means* comes from the
application — the Kernel API — through the small :class:`Application` interface. This module
knows no language and no Kernel internals; the Kernel API uses it only through the methods
of :class:`KernelServer` listed in ``KernelIO`` (``kernelkit.kernel.io``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from kernelkit._log import log
from kernelkit.protocol.core import KernelCore, Outgoing, Request
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import Frame, Message, WireError
from kernelkit.transport.channels import Heartbeat, OwnedSocket, Publisher
from kernelkit.transport.connection import ConnectionInfo
from kernelkit.transport.interrupts import InterruptGate, UserCode
from kernelkit.transport.streams import OutStream
from kernelkit.transport.subshells import STOP, Lane, ShellReplies, ShellRouter, is_signal

SHUTDOWN_GRACE = 1.0  # seconds a running cell gets to finish before a shutdown interrupts it
SHUTDOWN_DEADLINE = 5.0  # seconds after which a kernel that cannot stop exits anyway
PARENT_POLL_INTERVAL = 0.5
IOPUB_HWM = 2000  # messages queued per iopub subscriber before ZeroMQ drops for that subscriber
STDIN_QUEUE = 16  # messages the stdin socket buffers while no cell waits for input
STDIN_MAX_MESSAGE = 1 << 20  # bytes: a peer sending a larger message on stdin is disconnected
STDIO = ("stdout", "stderr")
REPLY_FLUSH_TIMEOUT = 2.0  # seconds a reply waits for the output before it to be published


class KernelStartError(RuntimeError):
    """The kernel cannot start (e.g. a port is taken); the message says what to do."""


class Application(Protocol):
    """What the server needs from the kernel it serves (the Kernel API implements it)."""

    #: Route ``print()`` and ``sys.stderr`` to the frontend while serving.
    redirect_stdio: bool

    #: Serve kernel subshells (JEP 91): shell requests carrying a ``subshell_id`` run on that
    #: subshell's own thread. The application's request handling must then be thread-safe.
    subshells: bool

    def handle_request(self, request: Request) -> None:
        """Run one request; send its reply (if any) through :meth:`KernelServer.send`. Never raises."""

    def parent_of_thread(self) -> Message | None:
        """The request the calling thread's output belongs to."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class KernelServer:
    """Binds the five sockets of one connection and serves an :class:`Application` on them."""

    def __init__(self, info: ConnectionInfo, parent_pid: int | None = None) -> None:
        self.info = info
        self.session = Session(info.key, info.signature_scheme)
        self.core = KernelCore(self.session)
        self.interrupts = InterruptGate()
        self.parent_pid = parent_pid
        self.context = zmq.Context()
        self._stopping = threading.Event()
        self._closed_event = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._control_stop_r, self._control_stop_w = os.pipe()
        self._saved_stdio: tuple[Any, Any] | None = None
        self._streams: list[OutStream] = []
        self.app: Application | None = None
        critical = self.interrupts.critical
        try:
            self.shell = OwnedSocket(self._bind(zmq.ROUTER, "shell"), "shell", critical)
            self.control = OwnedSocket(self._bind(zmq.ROUTER, "control"), "control", critical)
            self.stdin = OwnedSocket(self._bind(zmq.ROUTER, "stdin"), "stdin", critical)
            self.iopub = Publisher(self._bind(zmq.XPUB, "iopub"), self._welcome_frames, critical)
            self.heartbeat = Heartbeat(self.context, self._bind(zmq.ROUTER, "hb"))
        except KernelStartError:
            self.context.destroy(linger=0)
            raise
        self._sockets: dict[str, Any] = {
            "shell": self.shell,
            "control": self.control,
            "stdin": self.stdin,
            "iopub": self.iopub,
        }
        self._control_thread = threading.Thread(target=self._control_loop, name="kernelkit-control", daemon=True)
        #: The main shell: the shell socket itself, until :meth:`enable_subshells` puts a router in between.
        self._main_lane = Lane(None, self.shell, self.core)
        self.router: ShellRouter | None = None
        self._user_code = self.interrupts.user_code(self.iopub.lend, self.iopub.reclaim)

    # ---- set-up ----------------------------------------------------------------------------

    def _bind(self, socket_type: int, channel: str) -> zmq.Socket:
        sock = self.context.socket(socket_type)
        sock.linger = 1000
        if socket_type == zmq.ROUTER:
            # A client reconnecting with the same identity (jupyter_client: its session id) takes
            # over at once, instead of being ignored until the old connection times out. Two
            # live clients sharing one identity therefore share its replies: the newest gets
            # them (docs/reliability.md); give each client its own session.
            sock.router_handover = 1
            if channel in ("shell", "control"):
                # Never drop a reply: a ROUTER silently drops messages for a peer whose queue
                # is at the high-water mark, and a client pipelining thousands of requests
                # before it reads a reply gets there. Unbounded here means bounded by what that
                # client asked for: one reply (about 0.5 KB) per request it sent.
                sock.sndhwm = 0
            else:
                # stdin: only input_reply matters, and only while a cell waits for one; a flood of
                # large messages must not pile up in the kernel's memory meanwhile.
                sock.rcvhwm = STDIN_QUEUE
                sock.setsockopt(zmq.MAXMSGSIZE, STDIN_MAX_MESSAGE)
        if socket_type == zmq.XPUB:
            # Greet every subscriber, not only the first per topic, and hear of unsubscriptions
            # too, so the count of active subscribers stays true.
            sock.setsockopt(zmq.XPUB_VERBOSER, 1)
            # Room for a burst: a subscriber that reads as fast as the kernel writes on average
            # loses nothing; one that stalls costs at most this many messages of at most 64 KiB.
            sock.sndhwm = IOPUB_HWM
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

    def _welcome_frames(self, topic: bytes) -> list[Frame]:
        msg = self.session.msg("iopub_welcome", {"subscription": topic.decode("utf-8", "replace")})
        return self.session.serialize(msg, [topic] if topic else [])

    def enable_subshells(self) -> None:
        """Serve kernel subshells: a router thread takes the shell socket (before :meth:`start`).

        Kernels that do not call this keep the plain path: the main thread owns the shell socket.
        """
        if self.router is not None:
            return
        if self._control_thread.is_alive():
            raise RuntimeError("enable_subshells() must be called before start()")
        self.router = ShellRouter(
            self.context, self.shell, self.session, self.send, self._lane_loop, self.interrupts.critical
        )
        self._main_lane = self.router.main
        self._sockets["shell"] = ShellReplies(self.router.by_thread, self.router.main.inbox)

    # ---- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Install signal handlers and start the channel threads; main thread only.

        Call it before anyone learns the ports (the connection file is written after), so a
        SIGTERM or SIGINT from a frontend is never met by Python's default handlers.
        """
        if self._control_thread.is_alive():
            return
        if self.router is None:
            self.shell.claim()
        else:
            self._main_lane.inbox.claim()
            self.router.by_thread[threading.get_ident()] = self._main_lane
        self.stdin.claim()
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
        self.iopub.start(threading.get_ident())
        self._control_thread.start()
        if self.router is not None:
            self.router.start()
        if self.parent_pid:
            threading.Thread(target=self._watch_parent, name="kernelkit-parent", daemon=True).start()
        self.send(self.core.starting())

    def serve_forever(self, app: Application) -> None:
        """Serve ``app`` until shutdown, SIGTERM or the parent's death; must run on the main thread."""
        self.app = app
        if getattr(app, "subshells", False):
            self.enable_subshells()
        self.start()
        if app.redirect_stdio:
            self._redirect_stdio(app.parent_of_thread)
        if self.router is not None:
            lane = self._main_lane
            self._poll(lane.inbox.socket, lambda: self._serve_lane_message(lane))
        else:
            self._poll(self.shell.socket, lambda: self._serve_socket(self.shell))

    def _poll(self, socket: zmq.Socket[Any], serve: Callable[[], object]) -> None:
        """The main thread's loop: ``serve`` each time ``socket`` (the shell socket, or the main
        lane's inbox when subshells are on) is readable, until stopped; closes the sockets after."""
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                ready = dict(poller.poll())
                if self._wake_r in ready:
                    self._drain_wake()
                if socket in ready:
                    serve()
        finally:
            self._close()

    def _lane_loop(self, lane: Lane) -> None:
        """A subshell thread: serve what the router hands this lane until it says stop."""
        lane.inbox.claim()
        try:
            while not self._stopping.is_set():
                if not self._serve_lane_message(lane, block=True):
                    return
        except zmq.ZMQError as exc:  # the context is going away
            log.debug("subshell %s stops: %s", lane.subshell_id, exc)

    def _serve_lane_message(self, lane: Lane, block: bool = False) -> bool:
        """Serve one message of ``lane``'s inbox; False when the router told the lane to stop."""
        try:
            frames = lane.inbox.recv_frames(0 if block else zmq.NOBLOCK)
        except zmq.Again:
            return True
        if is_signal(frames):
            return bytes(frames[0]) != STOP
        request = self._decode("shell", frames)
        if request is not None:
            self.serve(request, lane)
        return not lane.stopping

    def _control_loop(self) -> None:
        self.control.claim()
        poller = zmq.Poller()
        poller.register(self.control.socket, zmq.POLLIN)
        poller.register(self._control_stop_r, zmq.POLLIN)
        while self._control_stop_r not in dict(poller.poll()):
            self._serve_socket(self.control)

    def _serve_socket(self, sock: OwnedSocket) -> None:
        try:
            frames = sock.recv_frames(zmq.NOBLOCK)
        except zmq.Again:
            return
        request = self._decode(sock.name, frames)
        if request is not None:
            self.serve(request)

    def _decode(self, channel: str, frames: list[memoryview]) -> Request | None:
        try:
            idents, msg = self.session.deserialize(frames)
        except WireError as exc:
            log.dropped(channel, exc)
            return None
        return Request(channel, idents, msg)

    def serve(self, request: Request, lane: Lane | None = None) -> None:
        """Busy, the application's handling, idle; then the requests an error left to abort.

        ``lane``: the shell (main or subshell) a shell request came in on (default: the main shell).
        """
        assert self.app is not None
        core = self.core if lane is None else lane.core
        if not core.serves(request.channel, request.msg_type):
            log.warning("unknown message type %r on %s", request.msg_type, request.channel)
            for out in core.unknown(request):
                self.send(out)
            return
        if request.channel == "shell":
            self._wait_for_subscriber(request, core)
            self.iopub.reclaim()  # the shell thread publishes itself while it runs kernelkit's code
        self.send(core.busy(request))
        try:
            self.app.handle_request(request)
        except KeyboardInterrupt:
            log.warning("an interrupt arrived after %s had finished: ignored", request.msg_type)
        finally:
            self.interrupts.disarm()  # whatever happened in the handler, kernelkit's own code is not interruptible
            self.flush_output(wait=False)
            self.send(core.idle(request))
            self.iopub.lend()
        if request.channel == "shell":
            while (held := core.next_held()) is not None:
                if core.must_abort(held):
                    for out in core.abort(held):
                        self.send(out)
                else:
                    self.serve(held, lane)

    def _wait_for_subscriber(self, request: Request, core: KernelCore) -> None:
        core.subscribers = self.iopub.subscribers
        timeout = core.needs_subscriber(request)
        if timeout:
            core.subscribers = self.iopub.wait_for_subscriber(timeout)
            core.waited(request)

    def send(self, out: Outgoing) -> None:
        """Send a message the core or the application built, on its channel's socket.

        Shell, control and stdin messages must be sent from the socket's owner thread; iopub
        messages may come from any thread.
        """
        self.session.send(self._sockets[out.channel], out.msg, ident=out.idents)

    # ---- subshells (JEP 91): called on the control thread ---------------------------------

    def create_subshell(self) -> str:
        """Start a subshell thread; its id. Only after :meth:`enable_subshells`."""
        if self.router is None:
            raise RuntimeError("this kernel does not serve subshells")
        return self.router.create()

    def delete_subshell(self, subshell_id: str) -> bool:
        """Stop routing to a subshell (its queued requests are still served); False if unknown."""
        if self.router is None:
            raise RuntimeError("this kernel does not serve subshells")
        return self.router.delete(subshell_id)

    def list_subshells(self) -> list[str]:
        if self.router is None:
            raise RuntimeError("this kernel does not serve subshells")
        return self.router.ids()

    def socket(self, channel: str) -> Any:
        """The object to send ``channel``'s messages on (``session.send(stream, ...)`` as in ipykernel)."""
        return self._sockets[channel]

    def hold_queued(self) -> None:
        """Take the shell requests waiting right now, to be aborted once the failing request is answered.

        Called (on the shell thread) before the error reply goes out: a request the client sends
        after it has seen that error must run, not be aborted. With subshells, on the thread of the
        (sub)shell that failed: only that shell's queue is aborted.
        """
        lane = self._main_lane
        if self.router is not None:
            lane = self.router.by_thread.get(threading.get_ident(), lane)
        inbox = lane.inbox
        inbox.check()
        while inbox.socket.poll(0):
            try:
                frames = inbox.recv_frames(zmq.NOBLOCK)
            except zmq.Again:
                break
            if is_signal(frames):  # the stop of a deleted subshell (its last message): obeyed once this request ends
                lane.stopping = True
                break
            request = self._decode("shell", frames)
            if request is not None:
                lane.core.hold(request)

    # ---- output and input --------------------------------------------------------------

    def _redirect_stdio(self, parent_of_thread: Callable[[], Message | None]) -> None:
        self._saved_stdio = (sys.stdout, sys.stderr)
        critical = self.interrupts.critical
        self._streams = [OutStream(name, self._send_stream, parent_of_thread, critical) for name in STDIO]
        sys.stdout, sys.stderr = self._streams

    def _send_stream(self, name: str, text: str, parent: Message | None) -> None:
        self.session.send(self.iopub, "stream", {"name": name, "text": text}, parent)

    def flush_output(self, wait: bool = True) -> None:
        """Queue buffered ``print`` output; with ``wait``, until all queued output has been handed to ZeroMQ.

        Before a reply, so a client that has the reply has the output too (on the shell thread
        this costs nothing: it owns iopub then and sends the queue itself); before idle, the
        queue's order suffices.
        """
        for stream in self._streams:
            stream.flush()
        if wait and not self.iopub.flush(REPLY_FLUSH_TIMEOUT):
            log.warning("output is still being published after %.0f s; replying anyway", REPLY_FLUSH_TIMEOUT)

    def request_input(self, prompt: str, password: bool, ident: list[bytes], parent: Message) -> str:
        """Send ``input_request`` to the client that sent the running request and wait for its reply."""
        self.stdin.check()
        while self.stdin.socket.poll(0):  # replies to earlier, abandoned requests
            self.stdin.socket.recv_multipart()
        self.flush_output()
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
                log.dropped("stdin", exc)
                continue
            if msg["msg_type"] == "input_reply":
                return str(msg["content"].get("value", ""))

    def interruptible(self) -> UserCode:
        """User code runs in this block: an interrupt (SIGINT, or ``interrupt_request``) may raise
        KeyboardInterrupt in it (main thread), and iopub goes back to its own thread meanwhile."""
        return self._user_code

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
            self.flush_output(wait=False)
            sys.stdout, sys.stderr = self._saved_stdio
        os.write(self._control_stop_w, b"x")
        self._control_thread.join(timeout=SHUTDOWN_DEADLINE)
        stuck: list[str] = []
        if self.router is not None:  # ends the subshells (their queued requests are served) and closes shell
            self.router.stop()
            self._main_lane.inbox.socket.close()
            stuck = self.router.stuck_threads()
        self.heartbeat.stop()
        self.iopub.stop()
        for sock in (self.shell, self.control, self.stdin):
            sock.socket.close()
        if stuck:
            # A subshell still inside user code keeps its socket open, and term() would wait for it
            # forever; the process is ending: its sockets end with it.
            log.warning("not waiting for subshell threads still running user code: %s", ", ".join(stuck))
        else:
            self.context.term()
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)  # before its fd is closed and its number reused
        for fd in (self._wake_r, self._wake_w, self._control_stop_r, self._control_stop_w):
            os.close(fd)
        self._closed_event.set()
