"""Kernel subshells (JEP 91): one router thread owns the shell socket, one thread per subshell runs its requests.

Only for kernels that opt in (``Application.subshells``); every other kernel keeps the plain
path, where the main thread owns and polls the shell socket itself (``server.py``).

With subshells on, the sockets and their owners are:

- shell (ROUTER): the ``kernelkit-shell`` router thread. It receives every shell message, reads
  only its header's ``subshell_id`` (:func:`~kernelkit.protocol.core.subshell_of_header`) and
  hands the frames, untouched, to the *lane* of that shell; it sends every reply a lane hands
  back. A message for an unknown subshell is decoded (its signature checked) and answered by
  the router itself: busy, an error reply, idle.
- one inproc PAIR per lane: the router owns one end, the lane's thread the other (its *inbox*,
  on which it receives requests and sends replies). The main shell is a lane too (the main
  thread), each subshell a ``kernelkit-subshell-<id>`` thread.

Lanes are FIFO: a lane runs its requests one at a time, in order, concurrently with the other
lanes. Deleting a subshell stops routing to it at once; requests already handed to it are
still served, then its thread ends (a request still running is not interrupted).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from kernelkit._log import log
from kernelkit.protocol.core import KernelCore, Outgoing, Request, subshell_of_header
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import WireError
from kernelkit.transport.channels import OwnedSocket

#: Router → lane: end your thread (a one-frame message; real messages have at least five frames).
STOP = b"kernelkit-subshell-stop"
#: Lane → router: my thread has ended; close my end.
GONE = b"kernelkit-subshell-gone"
DELIMITER = b"<IDS|MSG>"
STOP_WAIT = 1.0  # seconds the router waits at shutdown for subshell threads to end
COMMAND_TIMEOUT = 10.0  # seconds the control thread waits for the router to create/delete a subshell
#: Python's GIL switch interval while a subshell exists (Python's default: 5 ms). A thread that
#: wants the GIL while another computes waits up to this long, and a subshell request crosses
#: threads several times (router, subshell, iopub): while the main shell runs a pure-Python
#: loop, that wait *is* a subshell's round trip. It costs nothing without contention (no thread
#: asks for the GIL); with contention, the computing thread yields sooner.
SWITCH_INTERVAL = 0.0002


class Lane:
    """One shell of the kernel (the main shell, or a subshell): its inbox and its protocol state.

    ``inbox`` is the socket its thread receives requests on and sends replies through (the
    shell ROUTER itself for a kernel without subshells); ``core`` holds its own queue of
    requests set aside after an error, so abort-on-error is per subshell.
    """

    __slots__ = ("core", "inbox", "stopping", "subshell_id", "thread")

    def __init__(self, subshell_id: str | None, inbox: OwnedSocket, core: KernelCore) -> None:
        self.subshell_id = subshell_id
        self.inbox = inbox
        self.core = core
        self.thread: threading.Thread | None = None
        #: The router's stop arrived while the lane looked for queued requests (after an error).
        self.stopping = False

    def __repr__(self) -> str:
        return f"<Lane {self.subshell_id or 'main'}>"


def is_signal(frames: list[Any]) -> bool:
    """A router/lane signal (:data:`STOP`, :data:`GONE`), not a message."""
    return len(frames) == 1


class ShellReplies:
    """The shell "stream" handlers send replies on when subshells are on.

    ``send_multipart`` hands the frames to the calling thread's lane, whose router end forwards
    them to the shell ROUTER; a thread that serves no shell cannot send on shell (``WrongThread``).
    """

    name = "shell"

    def __init__(self, lanes: dict[int, Lane], fallback: OwnedSocket) -> None:
        self._lanes = lanes
        self._fallback = fallback

    def send_multipart(self, frames: Any, copy: bool = True, track: bool = False) -> Any:
        lane = self._lanes.get(threading.get_ident())
        sock = lane.inbox if lane is not None else self._fallback
        return sock.send_multipart(frames, copy, track)

    def __repr__(self) -> str:
        return "<ShellReplies>"


class ShellRouter:
    """The ``kernelkit-shell`` thread: owns the shell ROUTER and routes between it and the lanes."""

    def __init__(
        self,
        context: zmq.Context,
        shell: OwnedSocket,
        session: Session,
        publish: Callable[[Outgoing], None],
        run_lane: Callable[[Lane], None],
        critical: Callable[[], Any],
    ) -> None:
        self.context = context
        self.shell = shell
        self.session = session
        self._publish = publish
        self._run_lane = run_lane
        self._critical = critical
        self.lanes: dict[str, Lane] = {}  # subshell_id -> lane: written by the router thread only
        self.by_thread: dict[int, Lane] = {}  # thread id -> lane, read by ShellReplies
        self._ends: dict[Any, tuple[OwnedSocket, Lane]] = {}  # zmq socket of a router end -> (end, lane)
        self._to_lane: dict[str, OwnedSocket] = {}  # subshell_id -> router end
        self._commands: deque[tuple[str, Any, list[Any], threading.Event]] = deque()
        self._cmd_r, self._cmd_w = os.pipe()
        os.set_blocking(self._cmd_r, False)
        os.set_blocking(self._cmd_w, False)
        self._thread = threading.Thread(target=self._run, name="kernelkit-shell", daemon=True)
        self._poller = zmq.Poller()
        self._stopped = False
        self._saved_interval: float | None = None
        # The main shell's lane; its router end is claimed by the router thread when it starts.
        self._main_end, main_inbox = self._pair("main")
        self.main = Lane(None, main_inbox, KernelCore(session))
        self._ends[self._main_end.socket] = (self._main_end, self.main)

    # ---- any thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _pair(self, name: str) -> tuple[OwnedSocket, OwnedSocket]:
        address = f"inproc://kernelkit-shell-{name}-{id(self)}"
        end = self.context.socket(zmq.PAIR)
        inbox = self.context.socket(zmq.PAIR)
        for sock in (end, inbox):
            # Never block the router, never drop: as the shell ROUTER's sndhwm=0, bounded by what
            # clients sent.
            sock.sndhwm = 0
            sock.rcvhwm = 0
            sock.linger = 1000
        end.bind(address)
        inbox.connect(address)
        return OwnedSocket(end, f"shell-router-{name}", self._critical), OwnedSocket(inbox, "shell", self._critical)

    def _command(self, name: str, arg: Any = None) -> Any:
        """Run ``name`` on the router thread and wait for its result (control thread)."""
        if self._stopped:
            raise RuntimeError("the kernel is shutting down")
        done = threading.Event()
        result: list[Any] = []
        self._commands.append((name, arg, result, done))
        with contextlib.suppress(BlockingIOError):
            os.write(self._cmd_w, b"x")
        if not done.wait(COMMAND_TIMEOUT):
            raise RuntimeError(f"the shell router did not answer {name!r} within {COMMAND_TIMEOUT:.0f} s")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def create(self) -> str:
        """Start a new subshell; its id."""
        return self._command("create")

    def delete(self, subshell_id: str) -> bool:
        """Stop routing to ``subshell_id`` and end its thread once its queued requests are served;
        False when there is no such subshell."""
        return self._command("delete", subshell_id)

    def ids(self) -> list[str]:
        """The ids of the subshells, oldest first."""
        return list(self.lanes)

    def stop(self) -> None:
        """End every subshell thread (for at most :data:`STOP_WAIT`) and the router; closes the shell socket."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._command("stop")
            self._thread.join(timeout=STOP_WAIT + 1)
        self._stopped = True
        for fd in (self._cmd_r, self._cmd_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def stuck_threads(self) -> list[str]:
        """Subshell threads still running (user code that did not return) after :meth:`stop`."""
        threads = [lane.thread for lane in self.by_thread.values()]
        return [thread.name for thread in threads if thread is not None and thread.is_alive()]

    # ---- the router thread -----------------------------------------------------------------

    def _run(self) -> None:
        self.shell.claim()
        self._main_end.claim()
        poller = self._poller
        poller.register(self.shell.socket, zmq.POLLIN)
        poller.register(self._main_end.socket, zmq.POLLIN)
        poller.register(self._cmd_r, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if self._cmd_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._cmd_r, 4096):
                            pass
                    if self._run_commands():
                        break
                for sock in ready:
                    if sock is self.shell.socket:
                        self._route_requests()
                    elif sock in self._ends:
                        self._forward_replies(sock)
            self._shut_down()
        except zmq.ZMQError as exc:  # the context was terminated under us
            log.debug("shell router stops: %s", exc)
        finally:
            self._stopped = True
            for end, _ in list(self._ends.values()):
                end.socket.close(linger=0)
            self.shell.socket.close()

    def _run_commands(self) -> bool:
        """Run the queued commands; True when asked to stop."""
        stop = False
        while self._commands:
            name, arg, result, done = self._commands.popleft()
            try:
                if name == "create":
                    result.append(self._create())
                elif name == "delete":
                    result.append(self._delete(arg))
                elif name == "stop":
                    result.append(None)
                    stop = True
                else:  # pragma: no cover - a kernelkit bug
                    result.append(RuntimeError(f"unknown router command {name!r}"))
            except Exception as exc:  # e.g. too many threads: the control request gets an error reply
                log.error("subshell command %s failed", name, exc_info=True)
                result.append(exc)
            done.set()
        return stop

    def _create(self) -> str:
        import uuid  # only for kernels that create subshells: it costs every kernel's start-up otherwise

        subshell_id = str(uuid.uuid4())
        end, inbox = self._pair(subshell_id)
        end.claim()
        lane = Lane(subshell_id, inbox, KernelCore(self.session))
        name = f"kernelkit-subshell-{subshell_id[:8]}"
        thread = threading.Thread(target=self._lane_main, args=(lane,), name=name, daemon=True)
        lane.thread = thread
        self._ends[end.socket] = (end, lane)
        self._to_lane[subshell_id] = end
        self._poller.register(end.socket, zmq.POLLIN)
        thread.start()
        self.lanes[subshell_id] = lane
        if self._saved_interval is None:
            import sys

            self._saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, self._saved_interval))
        return subshell_id

    def _lane_main(self, lane: Lane) -> None:
        self.by_thread[threading.get_ident()] = lane
        try:
            self._run_lane(lane)
        finally:
            with contextlib.suppress(zmq.ZMQError):
                lane.inbox.send_multipart([GONE])
            lane.inbox.socket.close()  # linger: GONE and the last replies still reach the router
            self.by_thread.pop(threading.get_ident(), None)

    def _delete(self, subshell_id: Any) -> bool:
        lane = self.lanes.pop(subshell_id, None) if isinstance(subshell_id, str) else None
        if lane is None:
            return False
        end = self._to_lane.pop(subshell_id)
        end.send_multipart([STOP])  # after the requests already routed to it: they are served first
        if not self.lanes and self._saved_interval is not None:
            import sys

            sys.setswitchinterval(self._saved_interval)
            self._saved_interval = None
        return True

    def _route_requests(self) -> None:
        """Hand each waiting shell message to its lane (a bounded batch, so replies keep flowing)."""
        shell = self.shell
        for _ in range(64):
            try:
                frames: list[Any] = shell.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            subshell_id = self._subshell_of(frames)
            if subshell_id is None:
                self._main_end.send_multipart(frames, copy=False)
                continue
            end = self._to_lane.get(subshell_id)
            if end is not None:
                end.send_multipart(frames, copy=False)
            else:
                self._answer_unknown(frames, subshell_id)

    @staticmethod
    def _subshell_of(frames: list[Any]) -> str | None:
        for index, frame in enumerate(frames):
            if len(frame) == len(DELIMITER) and frame.bytes == DELIMITER:
                if index + 2 < len(frames):
                    return subshell_of_header(frames[index + 2].buffer)
                return None
        return None

    def _answer_unknown(self, frames: list[Any], subshell_id: str) -> None:
        """Busy, an error reply, idle — only for a message whose signature is right."""
        try:
            idents, msg = self.session.deserialize([frame.buffer for frame in frames])
        except WireError as exc:
            log.dropped("shell", exc)
            return
        request = Request("shell", idents, msg)
        log.warning("%s for unknown subshell %r", request.msg_type, subshell_id)
        core = self.main.core  # only its stateless message builders are used here
        for out in core.unknown_subshell(request, subshell_id):
            if out.channel == "iopub":
                self._publish(out)
            else:
                self.session.send(self.shell, out.msg, ident=out.idents)

    def _forward_replies(self, sock: Any) -> None:
        for _ in range(64):
            try:
                frames: list[Any] = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if is_signal(frames):
                if frames[0].bytes == GONE:
                    self._poller.unregister(sock)
                    del self._ends[sock]
                    sock.close(linger=0)
                    return
                continue
            self.shell.send_multipart(frames, copy=False)

    def _shut_down(self) -> None:
        """Stop every subshell; forward their last replies while they end (at most STOP_WAIT)."""
        for subshell_id in list(self.lanes):
            self._delete(subshell_id)
        import time

        deadline = time.monotonic() + STOP_WAIT
        while any(lane is not self.main for _end, lane in self._ends.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("subshells still running at shutdown: %s", ", ".join(self.stuck_threads()) or "?")
                break
            for sock in dict(self._poller.poll(int(left * 1000) + 1)):
                if sock in self._ends:
                    self._forward_replies(sock)
        # The main lane's last replies.
        self._forward_replies(self._main_end.socket)
