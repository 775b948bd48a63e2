"""Helpers for talking to real kernel processes through jupyter_client, with a timeout on every wait."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any, Iterator

import psutil
from jupyter_client import BlockingKernelClient, KernelManager

TIMEOUT = 20  # seconds any single message may take to arrive


def new_manager(kernel_name: str) -> KernelManager:
    """A manager whose connection file lies in the temporary runtime dir, where conftest looks for leftovers."""
    from conftest import JUPYTER_RUNTIME_DIR

    return KernelManager(kernel_name=kernel_name, connection_file=str(JUPYTER_RUNTIME_DIR / f"kernel-{uuid.uuid4()}.json"))


def start_kernel(kernel_name: str, **start_kw: Any) -> tuple[KernelManager, BlockingKernelClient]:
    km = new_manager(kernel_name)
    km.start_kernel(**start_kw)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except Exception:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient) -> None:
    """Shut down politely and make sure the process is gone."""
    pid = kernel_pid(km)
    kc.stop_channels()
    if km.has_kernel:
        km.shutdown_kernel(now=False)
    if pid is not None:
        assert wait_pid_gone(pid, 10), f"kernel pid {pid} still alive after shutdown"


@contextmanager
def running_kernel(kernel_name: str, **start_kw: Any) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_kernel(kernel_name, **start_kw)
    try:
        yield km, kc
    finally:
        stop_kernel(km, kc)


def kernel_pid(km: KernelManager) -> int | None:
    proc = getattr(km.provisioner, "process", None) if km.provisioner else None
    return proc.pid if proc is not None else None


def wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def drain(kc: BlockingKernelClient, wait: float = 0.2) -> None:
    """Throw away whatever is still queued on shell and iopub."""
    for get in (kc.get_shell_msg, kc.get_iopub_msg):
        while True:
            try:
                get(timeout=wait)
            except Empty:
                break


def shell_reply(kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The shell reply to ``msg_id`` (other replies are an error: nothing else should be pending)."""
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"].get("msg_id") == msg_id, (reply["msg_type"], reply["parent_header"])
    return reply


def iopub_for(kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """The iopub messages whose parent is ``msg_id``, from its busy to its idle status (included)."""
    msgs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no idle status for {msg_id} within {timeout}s; got {[m['msg_type'] for m in msgs]}"
        msg = kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs


def iopub_after_idle(kc: BlockingKernelClient, msg_id: str, wait: float = 0.5) -> list[dict[str, Any]]:
    """Messages with ``msg_id`` as parent that arrive within ``wait`` s after its idle (call after ``iopub_for``).

    ``iopub_for`` stops at idle, so on its own it can never see output sent too late; nbclient
    stops collecting at idle too, so anything here is output a notebook loses.
    """
    late: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            msg = kc.get_iopub_msg(timeout=remaining)
        except Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            late.append(msg)
    return late


def execute(
    kc: BlockingKernelClient, code: str, timeout: float = TIMEOUT, **kw: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``code``; returns (execute_reply, iopub messages of this request from busy to idle)."""
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id, timeout)
    return reply, iopub_for(kc, msg_id, timeout)


def types(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["msg_type"] for m in msgs]


def outputs(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in msgs if m["msg_type"] not in ("status", "execute_input")]


def stdout_text(msgs: list[dict[str, Any]], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


#: The seed article's folder: ``shared/seed`` beside the checkout (``../shared/seed`` from the repository root),
#: as CI and the worktrees lay it out.
SEED_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed"


def seed_dir() -> Path:
    """The seed article's folder; a missing seed is a test failure, never a skip."""
    folder = SEED_DIR.resolve()
    if not folder.is_dir() or not any(folder.glob("*.txt")):
        raise AssertionError(f"the seed article is missing: expected its .txt files in {folder} (shared/seed beside "
                             "this checkout); put the seed there, the porting tests are checked against it")
    return folder


def seed_echokernel_source() -> str:
    """The EchoKernel code block of the seed article, verbatim."""
    folder = seed_dir()
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]
    article = next((t for t in texts if "`echokernel.py`:" in t), None)
    assert article is not None, f"no seed article in {folder} has the `echokernel.py`: code block"
    return article.split("`echokernel.py`:", 1)[1].split("```py\n", 1)[1].split("```", 1)[0]

