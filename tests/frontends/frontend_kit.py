"""Shared pieces of the frontend tests (imported by tests/frontends/*.py): the kernels under
test, free ports, servers in their own process groups, readiness waits, and artifacts.

Deliberately not a ``conftest.py``: the suite's other tests import names from
``tests/conftest.py`` as module ``conftest``, which a second, nested ``conftest.py`` would shadow.

``tests/conftest.py`` has already pointed every Jupyter folder at a temporary directory (at
import time, so the servers and consoles started here inherit it). This file installs the
kernels the frontends drive, under display names a person would pick in a menu.

To make a new kernel join these tests, add a :class:`FrontendKernel` to ``FRONTEND_KERNELS``:
every test parametrised over that list (notebooks, console, JupyterLab, Kernel Gateway) then
runs its sample cell through that frontend and checks the text it prints.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ARTIFACTS = REPO / "test-artifacts"


@dataclass(frozen=True)
class FrontendKernel:
    """A kernel the frontend tests run: how to start it, what to name it, one cell and its output."""

    name: str  # kernelspec name
    display_name: str  # what Notebook/JupyterLab menus show
    argv: Sequence[str]  # kernel.json argv
    sample_code: str  # a cell that prints something...
    sample_output: str  # ...exactly this, as a stdout stream
    banner: str  # kernel_info banner (jupyter console prints it)
    python: bool = False  # runs Python: the rich-output, input and interrupt tests use it
    extra: dict[str, Any] = field(default_factory=dict)


ECHO = FrontendKernel(
    name="kk-fe-echo",
    display_name="Echo (kernelkit)",
    argv=[sys.executable, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"],
    sample_code="hello, frontends",
    sample_output="hello, frontends",
    banner="Echo kernel - as useful as a parrot",
)
SHOWCASE = FrontendKernel(
    name="kk-showcase",
    display_name="Showcase (kernelkit)",
    argv=[sys.executable, str(EXAMPLES / "showcase.py"), "-f", "{connection_file}"],
    sample_code="print('hello, ' + 'frontends')",
    sample_output="hello, frontends\n",
    banner="kernelkit showcase kernel",
    python=True,
)

#: Every kernel the frontend tests run. Add new kernels here.
FRONTEND_KERNELS = [ECHO, SHOWCASE]


def _install(kernel: FrontendKernel) -> None:
    """Install the kernelspec into the tests' temporary Jupyter data dir (kernelkit's own API)."""
    spec = {"argv": list(kernel.argv), "display_name": kernel.display_name,
            "language": "python" if kernel.python else "text"}
    try:
        from kernelkit.tools import kernelspecs as kernelspec
    except ImportError:  # before the kernelspec module existed: write kernel.json by hand
        folder = Path(os.environ["JUPYTER_PATH"]).joinpath("kernels", kernel.name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    else:
        kernelspec.install(spec, kernel.name, user=True, replace=True)


def install_kernelspecs() -> None:
    for kernel in FRONTEND_KERNELS:
        _install(kernel)


def kernel_ids(kernels: Sequence[FrontendKernel]) -> list[str]:
    return [k.name for k in kernels]


# ---- ports, servers, readiness ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s.

    An OSError (connection refused, a socket time-out) means "not ready yet"; other exceptions
    propagate at once (a server that exited will never become ready).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError as exc:  # not ready yet
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


class Server:
    """A server process in its own session (so its kernels are in its process group too).

    ``stop()`` asks politely (SIGTERM, which Jupyter servers answer by shutting their kernels
    down), then kills the whole group and any descendant that left it; it is safe to call twice.
    """

    def __init__(self, argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")

    def wait_http(self, url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> None:
        def ready() -> bool:
            self.check_alive()
            status, _ = http_get(url, headers, timeout=5)
            return status == 200

        try:
            wait_until(ready, timeout, f"{url} to answer 200")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- server log ---\n{self.log()[-3000:]}") from None

    def stop(self, grace: float = 10) -> None:
        kill_process_tree(self.proc, grace)
        self._log.close()


def kill_process_tree(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group, wait up to ``grace`` s, then SIGKILL whatever is left of it."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(10)
    _, alive = psutil.wait_procs(descendants, timeout=grace)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def artifact_path(*parts: str) -> Path:
    path = ARTIFACTS.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``artifacts("name.log")`` → a path under test-artifacts/<test module>/ to save things to."""
    module = Path(request.node.fspath).stem

    def make(name: str) -> Path:
        return artifact_path(module, name)

    return make


install_kernelspecs()  # on import: every frontend test module imports this file


class KernelSocket:
    """``/api/kernels/ID/channels`` of a Jupyter server or gateway at ``url``, speaking the Jupyter
    protocol as JSON (Kernel Gateway's and Enterprise Gateway's websocket)."""

    def __init__(self, url: str, kernel_id: str, token: str, timeout: float = 30) -> None:
        import websocket

        self.kernel_id = kernel_id
        ws_url = url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout)
        self.session = uuid.uuid4().hex

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "channel": channel, "content": content, "metadata": {}, "buffers": [], "parent_header": {},
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                       "version": "5.3", "date": ""},
        }))
        return msg_id

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def reply_to(self, msg_id: str, channel: str = "shell", timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.1, deadline - time.monotonic()))
            if msg["channel"] == channel and msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def kernel_info(self, timeout: float = 10) -> dict[str, Any]:
        return self.reply_to(self.send("shell", "kernel_info_request", {}), timeout=timeout)["content"]

    def execute_request(self, code: str, allow_stdin: bool = False) -> str:
        return self.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                      "user_expressions": {}, "allow_stdin": allow_stdin,
                                                      "stop_on_error": True})

    def execute(self, code: str, *, allow_stdin: bool = False, answers: list[str] | None = None,
                timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``code``; returns (execute_reply, iopub messages up to idle), answering input requests."""
        msg_id = self.execute_request(code, allow_stdin)
        reply, iopub, idle = None, [], False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            assert time.monotonic() < deadline, f"no reply/idle for {code!r} within {timeout} s: {iopub}"
            msg = self.recv(timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["channel"] == "shell":
                reply = msg
            elif msg["channel"] == "stdin" and msg["msg_type"] == "input_request":
                assert answers, f"unexpected input request {msg['content']}"
                self.send("stdin", "input_reply", {"value": answers.pop(0)})
            elif msg["channel"] == "iopub":
                if msg["msg_type"] == "status":
                    idle = msg["content"]["execution_state"] == "idle"
                else:
                    iopub.append(msg)
        return reply, iopub

    def close(self) -> None:
        self.ws.close()
