"""Benchmark installed kernels side by side, as a client sees them, through jupyter_client.

Kernels are started with ``jupyter_client.KernelManager`` from their kernelspecs and driven
by :class:`RawClient`, a lean client on bare pyzmq that signs, verifies and matches messages
by parent ``msg_id`` without jupyter_client's polling sleeps, so the client's own cost stays
small and identical for every kernel. Every phase interleaves the kernels round-robin, so
machine noise hits all of them alike: compare the figures of one run as ratios.

Figures per kernel (see :func:`run`): start to first ``kernel_info_reply``; execute round
trip (send to having both the ``execute_reply`` and the ``idle`` status); stream throughput
(a large cell echoed back as ``stream``); messages per second with pipelined clients; idle
RSS and RSS after the load (whole process tree); installed footprint where known.

Needs the ``bench`` extra (jupyter_client, psutil; matplotlib for the chart). This module is
not imported by ``import kernelkit``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import zmq

from kernelkit.protocol.wire import DELIMITER as DELIM, Signer

MB = 1_000_000
Progress = Callable[[str], None]
#: Name of the floor kernel's kernelspec: :mod:`kernelkit.floor_kernel`, bare pyzmq, no kernel logic.
FLOOR_KERNEL = "kernelkit-floor"
FLOOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_kernel.py")


def write_floor_kernelspec(folder: Any, python: str = sys.executable) -> str:
    """Write the floor kernel's kernelspec under ``folder/kernels``; returns that kernels folder.

    The floor runs as a script (``python .../floor_kernel.py``), so it imports no kernelkit.
    """
    kernels = os.path.join(str(folder), "kernels")
    spec = os.path.join(kernels, FLOOR_KERNEL)
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump({"argv": [python, FLOOR_SCRIPT, "-f", "{connection_file}"],
                   "display_name": "floor (bare pyzmq)", "language": "text"}, f, indent=1)
    return kernels


class BenchError(RuntimeError):
    """A kernel failed a benchmark step (did not start, died, timed out)."""


# ---- a lean client ------------------------------------------------------------------------


class RawClient:
    """Shell, control and iopub sockets for one kernel, with signing and verification."""

    def __init__(self, info: dict[str, Any], context: zmq.Context, shells: int = 1, reconnect_ms: int = 1) -> None:
        key = info["key"]
        self._signer = Signer(key, info["signature_scheme"])
        self.session = os.urandom(16).hex()
        self._info = info
        self._sockets: list[zmq.Socket] = []
        # zmq retries a refused connect every RECONNECT_IVL (100 ms by default): that would
        # quantize start-up times to 100 ms, so retry every millisecond.
        self.shells = [self._connect(context, zmq.DEALER, "shell", reconnect_ms) for _ in range(shells)]
        self.shell = self.shells[0]
        self.control = self._connect(context, zmq.DEALER, "control", reconnect_ms)
        self.iopub = self._connect(context, zmq.SUB, "iopub", reconnect_ms)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode

    def _connect(self, context: zmq.Context, kind: int, channel: str, reconnect_ms: int) -> zmq.Socket:
        sock = context.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.RECONNECT_IVL, reconnect_ms)
        info = self._info
        if info.get("transport", "tcp") == "tcp":
            sock.connect(f"tcp://{info['ip']}:{info[channel + '_port']}")
        else:
            sock.connect(f"ipc://{info['ip']}-{info[channel + '_port']}")
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)

    def build(self, msg_type: str, content: dict[str, Any]) -> tuple[str, list[bytes]]:
        """``(msg_id, frames)`` of a signed request, ready to send on a DEALER socket."""
        msg_id = os.urandom(16).hex()
        header = self._dumps({
            "msg_id": msg_id, "msg_type": msg_type, "username": "bench", "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(), "version": "5.5",
        }).encode()
        parts = [header, b"{}", b"{}", self._dumps(content).encode()]
        return msg_id, [DELIM, self._signer.sign(parts), *parts]

    def send(self, sock: zmq.Socket, msg_type: str, content: dict[str, Any]) -> str:
        msg_id, frames = self.build(msg_type, content)
        sock.send_multipart(frames, copy=False)
        return msg_id

    def recv(self, sock: zmq.Socket) -> dict[str, Any] | None:
        """One message (header, parent_header, content as dicts); None if not authentic."""
        frames = sock.recv_multipart(copy=False)
        i = next(i for i, f in enumerate(frames) if f.bytes == DELIM)
        parts = [f.buffer for f in frames[i + 2 : i + 6]]
        if not self._signer.verify(frames[i + 1].bytes, parts):
            return None
        # `or {}`: some kernels (xeus-python) send a null parent header, e.g. on status messages
        header, parent, _, content = (json.loads(bytes(p)) or {} for p in parts)
        return {"header": header, "parent_header": parent, "content": content, "msg_type": header["msg_type"]}

    def wait(
        self, msg_id: str, sock: zmq.Socket | None, idle: bool = True, timeout: float = 30.0,
        alive: Callable[[], bool] | None = None,
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Wait for the reply to ``msg_id`` on ``sock`` (if given) and its idle status (if ``idle``).

        Returns ``(reply, iopub messages with that parent)``; raises :class:`BenchError` on
        timeout or when ``alive()`` says the kernel process is gone.
        """
        poller = zmq.Poller()
        if sock is not None:
            poller.register(sock, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        reply, got_idle, outputs = None, not idle, []
        deadline = time.perf_counter() + timeout
        while reply is None and sock is not None or not got_idle:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise BenchError(f"no {'reply' if reply is None and sock is not None else 'idle status'} "
                                 f"within {timeout:.0f} s")
            events = poller.poll(min(left, 0.05 if alive else left) * 1000)
            if not events and alive is not None and not alive():
                raise BenchError("the kernel process exited")
            for ready, _ in events:
                msg = self.recv(ready)
                if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if ready is self.iopub:
                    outputs.append(msg)
                    if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                        got_idle = True
                else:
                    reply = msg
        return reply, outputs


# ---- one kernel under test ------------------------------------------------------------------


def _tree(pid: int) -> list[Any]:
    import psutil

    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _tree_rss(pid: int) -> int:
    import psutil

    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process tree has used: steadier than wall time on a busy machine."""
    import psutil

    total = 0.0
    for p in _tree(pid):
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


class Running:
    """A kernel started through jupyter_client, with a :class:`RawClient` on it."""

    def __init__(
        self, name: str, context: zmq.Context, shells: int = 1, timeout: float = 60.0, spec_manager: Any = None,
    ) -> None:
        from jupyter_client.manager import KernelManager

        self.name = name
        extra = {"kernel_spec_manager": spec_manager} if spec_manager is not None else {}
        self.km = KernelManager(kernel_name=name, **extra)
        self.client: RawClient | None = None
        t0 = time.perf_counter()
        try:
            self.km.start_kernel()
            self.spawn_s = time.perf_counter() - t0
            self.client = RawClient(self.km.get_connection_info(), context, shells)
            msg_id = self.client.send(self.client.shell, "kernel_info_request", {})
            reply, _ = self.client.wait(msg_id, self.client.shell, idle=False, timeout=timeout, alive=self.alive)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        assert reply is not None
        self.kernel_info = reply["content"]

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid  # type: ignore[union-attr]

    def alive(self) -> bool:
        proc = getattr(self.km.provisioner, "process", None)
        return proc is not None and proc.poll() is None

    def rss(self) -> int:
        return _tree_rss(self.pid)

    def cpu(self) -> float:
        return _tree_cpu(self.pid)

    def connect_iopub(self, timeout: float = 30.0) -> None:
        """Until iopub is subscribed: the SUB socket misses what is sent before it connects.

        Sends kernel_info_requests until one's reply has arrived together with its idle status,
        or after an ``iopub_welcome`` (protocol 5.5: sent once the subscription is live; some
        kernels, e.g. async-kernel at times, publish no status for kernel_info_request).
        """
        client = self.client
        assert client is not None
        deadline = time.perf_counter() + timeout
        poller = zmq.Poller()
        poller.register(client.shell, zmq.POLLIN)
        poller.register(client.iopub, zmq.POLLIN)
        welcomed = False
        while True:
            msg_id = client.send(client.shell, "kernel_info_request", {})
            replied = idle = False
            until = min(deadline, time.perf_counter() + 0.25)
            while time.perf_counter() < until and not (replied and (idle or welcomed)):
                for sock, _ in poller.poll(max(0.0, until - time.perf_counter()) * 1000):
                    msg = client.recv(sock)
                    if msg is None:
                        continue
                    mine = msg["parent_header"].get("msg_id") == msg_id
                    if sock is client.shell:
                        replied = replied or mine
                    elif msg["msg_type"] == "iopub_welcome":
                        welcomed = True
                    elif mine and msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                        idle = True
            if replied and (idle or welcomed):
                return
            if not self.alive():
                raise BenchError("the kernel process exited")
            if time.perf_counter() >= deadline:
                raise BenchError(f"iopub not subscribed within {timeout:.0f} s (no idle status, no iopub_welcome)")

    def execute(self, code: str, timeout: float = 60.0) -> tuple[float, dict[str, Any], list[dict[str, Any]]]:
        """Seconds from send to reply + idle, the reply, and the iopub messages of the cell."""
        assert self.client is not None
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        msg_id, frames = self.client.build("execute_request", content)
        t0 = time.perf_counter()
        self.client.shell.send_multipart(frames, copy=False)
        reply, outputs = self.client.wait(msg_id, self.client.shell, timeout=timeout, alive=self.alive)
        elapsed = time.perf_counter() - t0
        assert reply is not None
        if reply["content"].get("status") != "ok":
            raise BenchError(f"execute_reply status {reply['content'].get('status')!r}")
        return elapsed, reply, outputs

    def stop(self) -> None:
        """Shut down with a shutdown_request on control; kill only if that does not end the process."""
        try:
            if self.client is not None and self.alive():
                msg_id = self.client.send(self.client.control, "shutdown_request", {"restart": False})
                try:
                    self.client.wait(msg_id, self.client.control, idle=False, timeout=5, alive=self.alive)
                    self.km.provisioner.process.wait(timeout=5)  # type: ignore[union-attr]
                except Exception:  # noqa: BLE001 - whatever the kernel did, it is killed below
                    pass
        finally:
            if self.client is not None:
                self.client.close()
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
            self.km.cleanup_resources()


# ---- the phases -----------------------------------------------------------------------------


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered), "p99": p99, "min": ordered[0], "n": len(ordered)}


def python_start_times(python: str, repeat: int) -> dict[str, list[float]]:
    """Seconds for ``python -c pass`` and ``python -c 'import zmq'``: the floor under any Python kernel."""
    out: dict[str, list[float]] = {"python -c pass": [], "python -c 'import zmq'": []}
    for _ in range(repeat):
        for label, code in (("python -c pass", "pass"), ("python -c 'import zmq'", "import zmq")):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", code], check=True)
            out[label].append(time.perf_counter() - t0)
    return out


_FOOTPRINT_SCRIPT = r"""
import importlib.metadata as md, importlib.util, json, os, re, sys
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
try:
    from packaging.requirements import Requirement
except ImportError:
    Requirement = None
top = sys.argv[1].split(".")[0]
todo = list(md.packages_distributions().get(top, []))
seen, total = set(), 0
while todo:
    name = todo.pop()
    if norm(name) in seen:
        continue
    seen.add(norm(name))
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    editable = '"editable": true' in (dist.read_text("direct_url.json") or "")
    for f in dist.files or []:
        try:
            total += os.path.getsize(dist.locate_file(f))
        except OSError:
            pass
    if editable:  # the files are in the source tree: count the package's .py files there
        spec = importlib.util.find_spec(top)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for d, _, files in os.walk(root):
                total += sum(os.path.getsize(os.path.join(d, x)) for x in files if x.endswith(".py"))
    for req in dist.requires or []:
        if Requirement is not None:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
        elif ";" not in req:
            todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group())
print(json.dumps({"bytes": total, "distributions": sorted(seen)}))
"""


def installed_footprint(argv: Sequence[str]) -> dict[str, Any] | None:
    """Disk size of the distributions (and their requirements) behind ``python -m MODULE`` kernels.

    None where unknown: kernels that are not started as ``-m MODULE`` (scripts, native binaries).
    """
    if "-m" not in argv[:-1]:
        return None
    module = argv[list(argv).index("-m") + 1]
    try:
        out = subprocess.run([argv[0], "-c", _FOOTPRINT_SCRIPT, module], capture_output=True, text=True, timeout=60)
        data = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return data if data["distributions"] else None


def _pipelined(
    kernel: Running, clients: int, requests: int, depth: int, timeout: float, code: str = "x",
) -> dict[str, float]:
    """``clients`` DEALER sockets each keeping ``depth`` execute requests in flight, each with ``code``."""
    client = kernel.client
    assert client is not None
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    poller = zmq.Poller()
    for sock in client.shells:
        poller.register(sock, zmq.POLLIN)
    poller.register(client.iopub, zmq.POLLIN)
    sent = replies = messages = 0
    waiting_idle: set[str] = set()
    t0 = time.perf_counter()
    deadline = t0 + timeout
    for _ in range(depth):
        for sock in client.shells:
            if sent < requests:
                waiting_idle.add(client.send(sock, "execute_request", content))
                sent += 1
    while replies < requests or waiting_idle:
        events = poller.poll(1000)
        if time.perf_counter() > deadline or not events and not kernel.alive():
            raise BenchError(f"pipelined load: {replies}/{requests} replies within {timeout:.0f} s")
        for sock, _ in events:
            msg = client.recv(sock)
            if msg is None:
                continue
            messages += 1
            if sock is client.iopub:
                if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                    waiting_idle.discard(msg["parent_header"].get("msg_id"))
            else:
                replies += 1
                if sent < requests:
                    waiting_idle.add(client.send(sock, "execute_request", content))
                    sent += 1
    elapsed = time.perf_counter() - t0
    return {"messages_per_s": messages / elapsed, "requests_per_s": requests / elapsed, "messages": messages}


STREAM_LINE = "print('the quick brown fox jumps over the lazy dog', 1234567890, 'abcdefghijk')"
#: Default cells: an echo kernel (and the floor) sends the cell's code back as one ``stream``.
TRIVIAL_CELL = "x"
STREAM_CELL = "{payload}"


def big_code(size: int) -> str:
    """``size`` characters of plain source lines (80 per line, :data:`STREAM_LINE` and a newline)."""
    line = STREAM_LINE + "\n"
    assert len(line) == 80
    return (line * (size // 80 + 1))[:size]


def stream_cell(template: str, size: int) -> str:
    """The stream phase's cell from ``template``; the kernel must answer with ``big_code(size)`` as stream text.

    Placeholders: ``{payload}`` (the ``size`` characters themselves, as an echo kernel gets them),
    ``{line}`` (:data:`STREAM_LINE`, 79 characters without the newline; it holds single quotes
    and no double quotes, backslashes or ``$``) and ``{size}``. A language kernel can print the
    same text from a short cell, e.g. ``yes "{line}" | head -c {size}`` in bash.
    """
    code = template.replace("{line}", STREAM_LINE).replace("{size}", str(size))
    return code.replace("{payload}", big_code(size)) if "{payload}" in code else code


def run(
    kernels: Sequence[str],
    *,
    starts: int = 7,
    cells: int = 500,
    warmup: int = 100,
    batch: int = 50,
    stream_mb: float = 10,
    stream_reps: int = 5,
    clients: int = 8,
    pipeline_requests: int = 2000,
    pipeline_depth: int = 4,
    python_starts: int | None = None,
    footprint: bool = True,
    timeout: float = 60.0,
    progress: Progress | None = None,
    kernel_dirs: Sequence[str] = (),
    cells_by_kernel: Mapping[str, str] | None = None,
    stream_cells: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Benchmark ``kernels`` (kernelspec names) round-robin; returns a JSON-able dict.

    A kernel that fails at any step is reported with ``"ok": false`` and its ``error``; the
    others go on. Times are in seconds in the raw sample lists and in ms / µs in the summary.
    ``kernel_dirs``: kernelspec folders searched after the Jupyter path (e.g. the floor's).
    ``cells_by_kernel``: the trivial cell per kernel name for warm-up, round trips and the
    pipelined load (default :data:`TRIVIAL_CELL`, ``x``, which an echo kernel echoes; a language
    kernel needs a cell that is valid there, e.g. ``print("x")``: its reply must be ``ok``).
    ``stream_cells``: the stream phase's cell template per kernel (see :func:`stream_cell`;
    default ``{payload}``, the text itself). Every kernel must send back the same text.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    say = progress or (lambda text: None)
    context = zmq.Context()
    ksm = KernelSpecManager()
    if kernel_dirs:
        ksm.kernel_dirs = [*ksm.kernel_dirs, *kernel_dirs]
    results: dict[str, dict[str, Any]] = {}
    for name in kernels:
        entry: dict[str, Any] = {"ok": True, "error": None}
        try:
            spec = ksm.get_kernel_spec(name)
            entry["argv"] = spec.argv
            entry["display_name"] = spec.display_name
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            entry.update(ok=False, error=f"no usable kernelspec: {type(exc).__name__}: {exc}")
        entry["cells"] = {"trivial": (cells_by_kernel or {}).get(name, TRIVIAL_CELL),
                          "stream": (stream_cells or {}).get(name, STREAM_CELL)}
        results[name] = entry

    def cell(name: str) -> str:
        return results[name]["cells"]["trivial"]

    def fail(name: str, step: str, exc: BaseException) -> None:
        results[name].update(ok=False, error=f"{step}: {type(exc).__name__}: {exc}")
        say(f"{name}: FAILED at {step}: {exc}")

    def live() -> list[str]:
        return [n for n in kernels if results[n]["ok"]]

    # 1. start-up, interleaved with the interpreter's own start as the floor
    start_samples: dict[str, list[float]] = {n: [] for n in kernels}
    spawn_samples: dict[str, list[float]] = {n: [] for n in kernels}
    py_samples: dict[str, list[float]] = {}
    for i in range(starts):
        if python_starts is None or i < python_starts:
            for label, values in python_start_times(sys.executable, 1).items():
                py_samples.setdefault(label, []).extend(values)
        for name in live():
            try:
                kernel = Running(name, context, timeout=timeout, spec_manager=ksm)
            except Exception as exc:  # noqa: BLE001
                fail(name, "start", exc)
                continue
            kernel.stop()
            start_samples[name].append(kernel.start_s)
            spawn_samples[name].append(kernel.spawn_s)
            say(f"start {i + 1}/{starts}  {name:<24} {kernel.start_s * 1e3:8.1f} ms")
    for name in live():
        results[name]["start_ms"] = {k: v * 1e3 if k != "n" else v for k, v in _quantiles(start_samples[name]).items()}
        results[name]["spawn_ms"] = statistics.median(spawn_samples[name]) * 1e3
        results[name]["start_samples_s"] = start_samples[name]

    # 2. all kernels up at once, idle RSS, then execute round trips and throughput, round-robin
    running: dict[str, Running] = {}
    try:
        for name in live():
            try:
                running[name] = kernel = Running(name, context, shells=max(1, clients), timeout=timeout, spec_manager=ksm)
                kernel.connect_iopub(timeout)
            except Exception as exc:  # noqa: BLE001
                fail(name, "start", exc)
                if name in running:
                    running.pop(name).stop()
        time.sleep(1.0)  # let start-up work (imports, threads) settle before reading RSS
        for name, kernel in running.items():
            results[name]["rss_idle_mb"] = kernel.rss() / MB

        def each(step: str, action: Callable[[str, Running], None]) -> None:
            for name in list(running):
                try:
                    action(name, running[name])
                except Exception as exc:  # noqa: BLE001
                    fail(name, step, exc)
                    running.pop(name).stop()

        def first(name: str, kernel: Running) -> None:  # what one trivial cell sends, for the record
            _, _, outputs = kernel.execute(cell(name))
            results[name]["iopub_per_cell"] = [m["msg_type"] for m in outputs]

        each("warm-up", first)
        for _ in range(warmup - 1):
            each("warm-up", lambda name, k: k.execute(cell(name)))
        rtt: dict[str, list[float]] = {n: [] for n in running}
        cpu: dict[str, float] = {n: 0.0 for n in running}

        def cells_on(name: str, kernel: Running) -> None:
            before = kernel.cpu()
            code = cell(name)
            rtt[name].extend(kernel.execute(code)[0] for _ in range(n))
            cpu[name] += kernel.cpu() - before

        done = 0
        while done < cells:
            n = min(batch, cells - done)
            each("execute", cells_on)
            done += n
            say(f"execute {done}/{cells}  " + "  ".join(
                f"{name} {statistics.median(rtt[name]) * 1e6:.0f} µs" for name in running))
        for name in running:
            results[name]["roundtrip_us"] = {k: v * 1e6 if k != "n" else v for k, v in _quantiles(rtt[name]).items()}
            results[name]["cpu_us_per_cell"] = cpu[name] / len(rtt[name]) * 1e6

        size = int(stream_mb * MB)
        codes = {name: stream_cell(results[name]["cells"]["stream"], size) for name in running}
        tput: dict[str, list[float]] = {n: [] for n in running}

        def stream(name: str, kernel: Running) -> None:
            elapsed, _, outputs = kernel.execute(codes[name], timeout=timeout)
            # Carriage returns are not counted: a kernel reading a pty (bash_kernel) passes on the
            # terminal's \r of a \r\n line end when a read splits the two.
            echoed = sum(len(m["content"]["text"]) - m["content"]["text"].count("\r")
                         for m in outputs if m["msg_type"] == "stream")
            if echoed != size:
                raise BenchError(f"stream sent {echoed} of {size} characters")
            tput[name].append(size / MB / elapsed)

        for rep in range(stream_reps):
            each("stream", stream)
            say(f"stream {rep + 1}/{stream_reps}  " + "  ".join(
                f"{name} {statistics.median(tput[name]):.0f} MB/s" for name in running))
        codes.clear()  # free the 10 MB before the next phase
        for name in running:
            results[name]["stream_mb_per_s"] = statistics.median(tput[name])
            results[name]["stream_samples_mb_per_s"] = tput[name]

        if clients and pipeline_requests:
            def pipeline(name: str, kernel: Running) -> None:
                results[name]["pipelined"] = figures = _pipelined(
                    kernel, clients, pipeline_requests, pipeline_depth, timeout, cell(name))
                say(f"pipelined  {name:<24} {figures['messages_per_s']:8.0f} msg/s")
            each("pipelined", pipeline)
        time.sleep(0.5)
        for name, kernel in running.items():
            results[name]["rss_after_load_mb"] = kernel.rss() / MB
    finally:
        for kernel in running.values():
            kernel.stop()
        context.destroy(linger=0)

    if footprint:
        for name in kernels:
            if "argv" in results[name]:
                results[name]["footprint"] = installed_footprint(results[name]["argv"])
    floor = {label: _quantiles(values)["median"] * 1e3 for label, values in py_samples.items()}
    return {"meta": machine_info(), "settings": {
        "starts": starts, "cells": cells, "warmup": warmup, "stream_mb": stream_mb, "stream_reps": stream_reps,
        "clients": clients, "pipeline_requests": pipeline_requests, "pipeline_depth": pipeline_depth,
    }, "python_start_ms": floor, "kernels": results}


# ---- reporting --------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}
    for dist in ("jupyter_client", "ipykernel", "kernelkit"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:  # noqa: BLE001
            versions[dist] = None
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
            "cpu": cpu, "platform": platform.platform(), "versions": versions}


FIGURES = (
    # (label, key path, unit, format)
    ("start → kernel_info_reply", ("start_ms", "median"), "ms", "{:.0f}"),
    ("execute round trip, median", ("roundtrip_us", "median"), "µs", "{:.0f}"),
    ("execute round trip, p99", ("roundtrip_us", "p99"), "µs", "{:.0f}"),
    ("kernel CPU per cell", ("cpu_us_per_cell",), "µs", "{:.0f}"),
    ("stream throughput", ("stream_mb_per_s",), "MB/s", "{:.0f}"),
    ("pipelined messages/s", ("pipelined", "messages_per_s"), "msg/s", "{:.0f}"),
    ("idle RSS (process tree)", ("rss_idle_mb",), "MB", "{:.1f}"),
    ("RSS after load", ("rss_after_load_mb",), "MB", "{:.1f}"),
    ("installed footprint", ("footprint", "bytes"), "MB", "{:.1f}"),
)


def figure(entry: dict[str, Any], path: Sequence[str]) -> float | None:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    if path[0] == "footprint":
        value = value / MB
    return float(value)


def format_table(results: dict[str, Any], baseline: str | None = None, baselines: dict[str, str] | None = None) -> str:
    """A plain-text table, one column per kernel, with ratios to ``baseline`` when given.

    ``baselines`` overrides the baseline per figure (keyed by the figure's first key, e.g.
    ``{"rss_idle_mb": "ipykernel"}``).
    """
    kernels = results["kernels"]
    names = list(kernels)
    rows = [["", *names]]
    for label, path, unit, fmt in FIGURES:
        row = [f"{label} ({unit})"]
        ref = (baselines or {}).get(path[0], baseline)
        base = figure(kernels[ref], path) if ref in kernels else None
        if ref is not None and ref != baseline:
            row[0] += f" [× vs {ref}]"
        for name in names:
            value = figure(kernels[name], path)
            cell = "-" if value is None else fmt.format(value)
            if value is not None and base and name != ref:
                cell += f" ({value / base:.2f}×)"
            row.append(cell)
        rows.append(row)
    for label, ms in results.get("python_start_ms", {}).items():
        rows.append([f"{label} (ms)", *[f"{ms:.0f}" if i == 0 else "" for i in range(len(names))]])
    failed = [f"{n}: {e['error']}" for n, e in kernels.items() if not e["ok"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [f"FAILED {f}" for f in failed])


def chart(results: dict[str, Any], path: str) -> None:
    """Bar charts of the main figures, one panel each (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kernels = {n: e for n, e in results["kernels"].items() if e["ok"]}
    panels = [f for f in FIGURES if any(figure(e, f[1]) is not None for e in kernels.values())]
    cols = 3
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    many = len(kernels) > 5
    for ax, (label, key, unit, _) in zip(axes.flat, panels):
        names = [n for n in kernels if figure(kernels[n], key) is not None]
        values = [figure(kernels[n], key) for n in names]
        bars = ax.bar(range(len(names)), values, color=["0.6" if n == FLOOR_KERNEL else "C0" for n in names])
        ax.bar_label(bars, labels=[f"{v:.0f}" if v >= 100 else f"{v:.3g}" for v in values], fontsize=7 if many else 8)
        ax.set_xticks(range(len(names)), names, rotation=40 if many else 20, ha="right", fontsize=7 if many else 8)
        positive = [v for v in values if v > 0]
        log = bool(positive) and max(positive) / min(positive) > 30  # one slow kernel would flatten the rest
        if log:
            ax.set_yscale("log")
        ax.set_title(f"{label} ({unit}{', log scale' if log else ''})", fontsize=9)
        if key[0] == "start_ms":
            for i, (floor_label, ms) in enumerate(results.get("python_start_ms", {}).items()):
                ax.axhline(ms, color=f"C{i + 1}", linestyle="--", linewidth=1, label=floor_label)
            if results.get("python_start_ms"):
                ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"kernelkit bench, {results['meta']['date']}, {results['meta']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
