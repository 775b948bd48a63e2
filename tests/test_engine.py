"""Regression tests for the engine rework (issue 10): each reproduces a defect found in review,
through jupyter_client against real kernel processes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

import psutil
import pytest
import zmq
from conftest import ASYNC, CALC, ECHO, TEST_KERNEL_ENV, install_kernelspec
from helpers import execute, iopub_for, kernel_pid, running_kernel, shell_reply, stdout_text, types
from jupyter_client import BlockingKernelClient
from jupyter_client.session import Session as ClientSession

from kernelkit.kernels.echo import EchoKernel
from kernelkit.protocol.session import Session

ENGINE_SIGNAL = "kk-engine"
ENGINE_MESSAGE = "kk-engine-message"
ASYNC_MESSAGE = "kk-async-message"
OUTER_LOOP = "kk-outer-loop"
install_kernelspec(ENGINE_SIGNAL, "engine_kernel", env=TEST_KERNEL_ENV, language="python")
install_kernelspec(ENGINE_MESSAGE, "engine_kernel", env=TEST_KERNEL_ENV, language="python", interrupt_mode="message")
install_kernelspec(ASYNC_MESSAGE, "async_kernel", env=TEST_KERNEL_ENV, interrupt_mode="message")
install_kernelspec(OUTER_LOOP, "outer_loop_kernel", env=TEST_KERNEL_ENV)


def collect_until_idle(kc: BlockingKernelClient, msg_ids: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """Every iopub message, in arrival order, until each of ``msg_ids`` has had its idle (and a moment more)."""
    pending, seen = set(msg_ids), []
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} requests never went idle"
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        seen.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            pending.discard(msg["parent_header"].get("msg_id"))
    with pytest.raises(Empty):  # nothing trails the last idle
        seen.append(kc.get_iopub_msg(timeout=0.3))
    return seen


def assert_nothing_after_idle(msgs: list[dict[str, Any]]) -> None:
    idle_at: dict[str, int] = {}
    for index, msg in enumerate(msgs):
        parent = msg["parent_header"].get("msg_id")
        assert parent not in idle_at, f"{msg['msg_type']} of {parent} arrived after its idle"
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle_at[parent] = index


# ---- 1: output written just before a cell ends --------------------------------------------------


@pytest.mark.slow
def test_output_written_as_a_cell_ends_comes_before_its_idle_with_its_parent() -> None:
    """The batching timer (50 ms) fires while the cell returns: its send must not trail the idle.

    Each cell prints about 60 KB (just under the size that is sent at once, so the timer sends
    it, and its send takes a while) and returns right when the timer fires.
    """
    with running_kernel(CALC) as (_, kc):
        execute(kc, "import time, random")
        ids = []
        for i in range(150):
            code = f"print('cell {i} ' + 'x' * 60000); time.sleep(0.0495 + random.random() * 0.002)"
            ids.append(kc.execute(code))
        msgs = collect_until_idle(kc, ids, timeout=120)
        for _ in ids:
            kc.get_shell_msg(timeout=10)
    assert_nothing_after_idle(msgs)
    for i, msg_id in enumerate(ids):
        text = "".join(m["content"]["text"] for m in msgs
                       if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)
        assert text == f"cell {i} " + "x" * 60000 + "\n"


# ---- 2 and 3: the control thread ------------------------------------------------------------------


def test_queued_requests_are_aborted_and_run_on_the_shell_thread_while_control_is_busy() -> None:
    """An error with queued requests, while control requests keep finishing at every moment."""
    with running_kernel(ENGINE_SIGNAL) as (_, kc):
        stop = threading.Event()

        def flood_control() -> None:  # owns the control channel's socket: only this thread uses it
            while not stop.is_set():
                kc.control_channel.send(kc.session.msg("kernel_info_request"))
                kc.get_control_msg(timeout=10)

        flooder = threading.Thread(target=flood_control)
        flooder.start()
        try:
            for _ in range(15):
                error_id = kc.execute("time = __import__('time'); time.sleep(0.02); 1/0")
                queued = [kc.execute("'never'"), kc.complete("pri", 3), kc.execute("'never either'")]
                replies = [kc.get_shell_msg(timeout=10) for _ in range(4)]
                assert [r["parent_header"]["msg_id"] for r in replies] == [error_id, *queued]
                assert [r["content"]["status"] for r in replies] == ["error", "aborted", "ok", "aborted"]
        finally:
            stop.set()
            flooder.join(timeout=20)
        _, msgs = execute(kc, "print(sorted(set(hook_threads)))")
    assert stdout_text(msgs) == "[('complete', 'MainThread'), ('execute', 'MainThread')]\n"


def test_print_in_a_control_hook_goes_to_the_control_request() -> None:
    with running_kernel(ENGINE_MESSAGE) as (_, kc):
        execute(kc, "1")
        msg = kc.session.msg("interrupt_request")
        kc.control_channel.send(msg)
        reply = kc.get_control_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        msgs = iopub_for(kc, msg["header"]["msg_id"])
    assert types(msgs) == ["status", "stream", "status"]
    assert msgs[1]["content"]["text"] == "interrupting from kernelkit-control\n"


# ---- 0: the first cell of a frontend that does not wait for its subscription ------------------------


@pytest.mark.slow
def test_console_pattern_never_loses_the_first_cell() -> None:
    """What jupyter console does: kernel_info on shell, then the first cell at once, 50 times."""
    from jupyter_client import KernelManager
    from conftest import JUPYTER_RUNTIME_DIR

    lost = 0
    for run in range(50):
        km = KernelManager(kernel_name=ECHO, connection_file=str(JUPYTER_RUNTIME_DIR / f"console-{run}.json"))
        km.start_kernel()
        kc = km.blocking_client()
        kc.start_channels()
        try:
            info_id = kc.kernel_info()
            shell_reply(kc, info_id, timeout=30)
            cell = kc.execute(f"first cell {run}")
            try:
                msgs = iopub_for(kc, cell, timeout=5)
                if "stream" not in types(msgs):
                    lost += 1
            except (AssertionError, Empty):
                lost += 1
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert lost == 0, f"{lost} of 50 first cells lost"


# ---- 0b: pipelined requests whose replies are read late ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("count", [20_000, 100_000])
def test_pipelined_executes_read_late_lose_no_reply(count: int) -> None:
    """``ids = [kc.execute(...) for ...]`` then ``get_shell_msg`` for each (jupyter_client's blocking client)."""
    with running_kernel(ECHO) as (km, kc):
        ids = [kc.execute("x", silent=True) for _ in range(count)]
        got = []
        for _ in ids:
            got.append(kc.get_shell_msg(timeout=60)["parent_header"]["msg_id"])
        rss_mb = psutil.Process(kernel_pid(km)).memory_info().rss / 2**20
    assert got == ids
    assert rss_mb < 400, f"the kernel grew to {rss_mb:.0f} MB"


# ---- 4: a file in the kernel's working folder that shadows a standard module --------------------


def test_a_shadowing_module_in_the_working_folder_does_not_break_an_installed_kernel(tmp_path: Path) -> None:
    from conftest import JUPYTER_PATH
    from kernelspec_fixtures import kk

    done = kk("install", "kernelkit.kernels.echo", "--name", "kk-shadowed", "--prefix", str(tmp_path / "prefix"))
    assert done.returncode == 0, done.stderr
    spec_dir = tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "kk-shadowed"
    target = JUPYTER_PATH / "kernels" / "kk-shadowed"
    target.mkdir(parents=True)
    (target / "kernel.json").write_text((spec_dir / "kernel.json").read_text())
    notebook_dir = tmp_path / "notebooks"
    notebook_dir.mkdir()
    for name in ("hmac", "zmq", "json", "kernelkit_launcher_helpers"):
        (notebook_dir / f"{name}.py").write_text(f"raise RuntimeError('the {name}.py of the notebook folder was imported')\n")
    with running_kernel("kk-shadowed", cwd=str(notebook_dir)) as (_, kc):
        reply, msgs = execute(kc, "hello from a shadowed folder")
    assert reply["content"]["status"] == "ok"
    assert stdout_text(msgs) == "hello from a shadowed folder"


# ---- 7: stdin, identities, thread output ---------------------------------------------------------


@pytest.mark.slow
def test_stdin_floods_do_not_grow_the_kernel_and_input_still_works() -> None:
    with running_kernel(CALC) as (km, kc):
        execute(kc, "1")
        pid = kernel_pid(km)
        before = psutil.Process(pid).memory_info().rss
        ctx = zmq.Context()
        flood = ctx.socket(zmq.DEALER)
        flood.connect(f"tcp://127.0.0.1:{km.stdin_port}")
        payload = b"x" * (512 * 1024)
        for _ in range(400):  # 200 MB of input_reply-shaped junk while no cell waits for input
            flood.send_multipart([b"<IDS|MSG>", b"", b"{}", b"{}", b"{}", payload])
        time.sleep(2)
        flood.close(linger=0)
        ctx.term()
        grown_mb = (psutil.Process(pid).memory_info().rss - before) / 2**20
        msg_id = kc.execute("input('name? ')", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=10)
        assert request["content"]["prompt"] == "name? "
        kc.input("kernelkit")
        assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    assert grown_mb < 40, f"the kernel grew by {grown_mb:.0f} MB"


def test_two_clients_sharing_a_session_identity_the_newest_gets_the_replies() -> None:
    """ROUTER_HANDOVER, chosen deliberately (docs/reliability.md): a reconnecting client takes over at once."""
    with running_kernel(ECHO) as (km, kc):
        second = km.blocking_client()
        second.session = kc.session  # same session id, so the same routing identity on shell
        second.start_channels()
        try:
            time.sleep(0.5)
            msg_id = second.kernel_info()
            assert shell_reply(second, msg_id)["msg_type"] == "kernel_info_reply"
            with pytest.raises(Empty):
                kc.get_shell_msg(timeout=0.5)
        finally:
            second.stop_channels()


def test_thread_output_goes_to_the_running_cell_unless_the_thread_pins_its_parent() -> None:
    with running_kernel(CALC) as (_, kc):
        first_code = """
import threading, time
parent = kernel.get_parent()
go = threading.Event()
def pinned():
    token = kernel.set_thread_parent(parent)
    go.wait(10)
    print("pinned stream")
    display({"text/plain": "pinned display"})
    kernel.reset_thread_parent(token)
    print("unpinned stream")
    done.set()
def free():
    go.wait(10)
    print("free stream")
done = threading.Event()
threading.Thread(target=pinned).start()
threading.Thread(target=free).start()
"""
        first, _ = execute(kc, first_code)
        second_id = kc.execute("go.set(); done.wait(10); time.sleep(0.3)")
        shell_reply(kc, second_id)
        every = collect_until_idle(kc, [second_id])
        first_id = first["parent_header"]["msg_id"]
    msgs = [m for m in every if m["parent_header"].get("msg_id") == second_id]
    late = [m for m in every if m["parent_header"].get("msg_id") == first_id]
    second_text = stdout_text(msgs)
    assert "free stream" in second_text and "unpinned stream" in second_text and "pinned stream\n" not in second_text.replace("unpinned stream\n", "")
    pinned = [m for m in late if m["parent_header"].get("msg_id") == first_id]
    # print() writes its text and its newline separately: another thread's write in between
    # splits the stream message, never the attribution.
    assert stdout_text(pinned) == "pinned stream\n"
    assert [m["content"]["data"] for m in pinned if m["msg_type"] == "display_data"] == [{"text/plain": "pinned display"}]
    assert pinned[-1]["msg_type"] == "display_data"


def test_a_null_parent_header_is_accepted() -> None:
    from kernelkit.protocol import wire

    signer = wire.Signer(b"k")
    parts = [wire.pack(wire.new_header("status", "s")), b"null", b"null", b'{"execution_state": "idle"}']
    _, msg = wire.deserialize([wire.DELIMITER, signer.sign(parts), *parts], signer)
    assert msg["parent_header"] == {} and msg["metadata"] == {}


# ---- async hooks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [ASYNC, ASYNC_MESSAGE])
@pytest.mark.parametrize("cell", ["block 30", "spin 30", "sleep 30"])
def test_interrupting_an_async_hook_that_blocks_or_computes_gets_a_reply(kernel: str, cell: str) -> None:
    with running_kernel(kernel) as (km, kc):
        msg_id = kc.execute(cell)
        time.sleep(0.5)
        started = time.monotonic()
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id, timeout=5)
        assert time.monotonic() - started < 3
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        reply, msgs = execute(kc, "still alive")
        assert stdout_text(msgs) == "STILL ALIVE\n"


def test_async_hooks_run_on_the_event_loop_the_kernel_was_launched_from() -> None:
    """A kernel launched inside asyncio.run (nest_asyncio) whose hooks await an outer-loop subprocess."""
    with running_kernel(OUTER_LOOP) as (_, kc):
        for word in ("one", "two", "three"):
            reply, msgs = execute(kc, word)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert stdout_text(msgs) == f"{word}\n"


# ---- a Kernel without a server, and tracebacks --------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.frames: list[list[bytes]] = []

    def send_multipart(self, frames: Any, copy: bool = True, track: bool = False) -> None:
        self.frames.append(list(frames))


def test_a_kernel_built_without_a_server_sends_nothing_and_takes_ipykernels_arguments() -> None:
    bare = EchoKernel()
    assert bare.session is None and bare.iopub_socket is None
    assert bare.send_response(bare.iopub_socket, "stream", {"name": "stdout", "text": "x"}) is None
    bare.do_execute("quiet", False)  # its send_response is a no-op, not an error
    sink, logger, session = _Sink(), logging.getLogger("kk-test"), Session(b"key")
    wired = EchoKernel(session=session, iopub_socket=sink, log=logger)
    assert wired.session is session and wired.iopub_socket is sink and wired.log is logger
    wired.do_execute("hello", False)
    assert len(sink.frames) == 1
    msg = ClientSession(key=b"key").deserialize(sink.frames[0][1:] if sink.frames[0][0] == b"<IDS|MSG>" else sink.frames[0])
    assert msg["msg_type"] == "stream" and msg["content"]["text"] == "hello"


def test_tracebacks_show_the_users_frames_one_line_each() -> None:
    with running_kernel(CALC) as (_, kc):
        reply, msgs = execute(kc, "def f():\n    return 1/0\nf()")
    traceback = reply["content"]["traceback"]
    assert traceback[0] == "Traceback (most recent call last):"
    assert not any("kernelkit" in line and "site-packages" not in line and "calc_kernel" not in line
                   for line in traceback if "kernelkit/kernel" in line)
    assert all("\n" not in line for line in traceback)
    assert traceback[-1] == "ZeroDivisionError: division by zero"
    assert [m for m in msgs if m["msg_type"] == "error"][0]["content"]["traceback"] == traceback


def test_event_loop_of_a_thread_is_current_for_async_hooks() -> None:
    """kernelkit's own loop for a thread becomes that thread's current loop (hooks may call get_event_loop)."""
    from kernelkit.kernel.handlers import resolve

    async def which() -> Any:
        return asyncio.get_running_loop()

    loop = resolve(which())
    assert loop is resolve(which())
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(resolve(which())))
    thread.start()
    thread.join()
    assert result[0] is not loop  # each thread has its own


def test_traceback_frames_of_the_engine_are_hidden_in_process() -> None:
    from kernelkit.kernel.handlers import format_exception

    def user_code() -> None:
        raise ValueError("boom")

    try:
        user_code()
    except ValueError as exc:
        lines = format_exception(exc)
    assert any("user_code" in line for line in lines) and lines[-1] == "ValueError: boom"
    assert os.path.basename(__file__) in "".join(lines)
