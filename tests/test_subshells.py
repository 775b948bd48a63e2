"""Kernel subshells (JEP 91) through jupyter_client against real kernel processes.

``kk-subshells`` is calc with ``subshells = True`` (tests/kernels/subshell_kernel.py); ``kk-calc``
is the same kernel without the opt-in, which must keep rejecting the subshell requests.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import CALC, TEST_KERNEL_ENV, install_kernelspec
from helpers import TIMEOUT, execute, kernel_pid, running_kernel, stdout_text, wait_pid_gone
from jupyter_client import BlockingKernelClient

SUBSHELLS = "kk-subshells"
SUBSHELLS_MESSAGE = "kk-subshells-message"
install_kernelspec(SUBSHELLS, "subshell_kernel", env=TEST_KERNEL_ENV, language="python")
install_kernelspec(SUBSHELLS_MESSAGE, "subshell_kernel", env=TEST_KERNEL_ENV, language="python",
                   interrupt_mode="message")

EXECUTE = {"silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False,
           "stop_on_error": True}


def control(kc: BlockingKernelClient, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    msg = kc.session.msg(msg_type, content or {})
    kc.control_channel.send(msg)
    reply = kc.get_control_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
    assert reply["msg_type"] == msg_type.replace("_request", "_reply")
    return reply["content"]


def create_subshell(kc: BlockingKernelClient) -> str:
    content = control(kc, "create_subshell_request")
    assert content["status"] == "ok", content
    return content["subshell_id"]


def send(kc: BlockingKernelClient, msg_type: str, content: dict[str, Any], subshell_id: str | None) -> str:
    """Send a shell message to the main shell (None) or to a subshell, as JupyterLab does (header ``subshell_id``)."""
    msg = kc.session.msg(msg_type, content)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def run(kc: BlockingKernelClient, code: str, subshell_id: str | None, **kw: Any) -> str:
    return send(kc, "execute_request", {**EXECUTE, "code": code, **kw}, subshell_id)


def replies(kc: BlockingKernelClient, count: int, timeout: float = TIMEOUT) -> dict[str, tuple[float, dict[str, Any]]]:
    """The next ``count`` shell replies by parent msg_id, with the time each arrived."""
    got = {}
    for _ in range(count):
        reply = kc.get_shell_msg(timeout=timeout)
        got[reply["parent_header"]["msg_id"]] = (time.monotonic(), reply)
    return got


def iopub_until_idle(kc: BlockingKernelClient, msg_ids: list[str], timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    pending, seen = set(msg_ids), []
    deadline = time.monotonic() + timeout
    while pending:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            pending.discard(msg["parent_header"].get("msg_id"))
    return seen


def of(msgs: list[dict[str, Any]], msg_id: str) -> list[str]:
    """The iopub message types (status as busy/idle) whose parent is ``msg_id``, in order."""
    out = []
    for m in msgs:
        if m["parent_header"].get("msg_id") == msg_id:
            out.append(m["content"]["execution_state"] if m["msg_type"] == "status" else m["msg_type"])
    return out


# ---- opt-in ---------------------------------------------------------------------------------


def test_only_a_kernel_that_opts_in_advertises_and_serves_subshells() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        assert "kernel subshells" in kc.kernel_info(reply=True)["content"]["supported_features"]
        assert control(kc, "list_subshell_request") == {"status": "ok", "subshell_id": []}
        _, msgs = execute(kc, "import threading\nsorted(t.name for t in threading.enumerate())")
        assert "kernelkit-shell" in next(m for m in msgs if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"]
    with running_kernel(CALC) as (_, kc):
        assert "kernel subshells" not in kc.kernel_info(reply=True)["content"]["supported_features"]
        for msg_type, content in (("create_subshell_request", {}), ("list_subshell_request", {}),
                                  ("delete_subshell_request", {"subshell_id": "x"})):
            assert control(kc, msg_type, content)["status"] == "error"
        # a subshell_id on a shell request is ignored by a kernel without subshells: the main shell runs it
        msg_id = run(kc, "6 * 7", "whatever")
        assert replies(kc, 1)[msg_id][1]["content"]["status"] == "ok"
        # and it pays nothing: no router thread, the main thread owns the shell socket as before
        _, msgs = execute(kc, "import threading, sys\nsorted(t.name for t in threading.enumerate()), sys.getswitchinterval()")
        names, interval = eval(next(m for m in msgs if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"])
        assert "kernelkit-shell" not in names and interval == 0.005


# ---- concurrency ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_subshell_answers_at_once_while_the_main_shell_runs_a_5_s_cell() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        sub = create_subshell(kc)
        main = run(kc, "import time\ntime.sleep(5)\nprint('main done')", None)
        time.sleep(0.3)  # the main shell is inside its cell
        started = time.monotonic()
        info = send(kc, "kernel_info_request", {}, sub)
        short = run(kc, "print('from the subshell'); 6 * 7", sub)
        got = replies(kc, 2)
        assert set(got) == {info, short}
        assert got[info][1]["content"]["implementation"] == "calc-subshells"
        assert got[short][1]["content"]["status"] == "ok"
        assert max(t for t, _ in got.values()) - started < 1.0, "the subshell waited for the main shell"
        main_reply = replies(kc, 1, timeout=15)[main][1]
        assert main_reply["content"]["status"] == "ok"
        msgs = iopub_until_idle(kc, [main, info, short])
        assert of(msgs, info) == ["busy", "idle"]
        assert of(msgs, short) == ["busy", "execute_input", "stream", "execute_result", "idle"]
        assert of(msgs, main) == ["busy", "execute_input", "stream", "idle"]
        assert stdout_text([m for m in msgs if m["parent_header"].get("msg_id") == short]) == "from the subshell\n"
        # the execution count is the kernel's, shared by all shells: the subshell's cell came second
        assert main_reply["content"]["execution_count"] == 1
        assert got[short][1]["content"]["execution_count"] == 2


@pytest.mark.slow
def test_several_subshells_run_concurrently_each_in_order() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        subs = [create_subshell(kc) for _ in range(3)]
        assert control(kc, "list_subshell_request") == {"status": "ok", "subshell_id": subs}
        started = time.monotonic()
        ids = {sub: [run(kc, "import time, threading\ntime.sleep(1)\nthreading.current_thread().name", sub),
                     run(kc, "'second'", sub)] for sub in subs}
        got = replies(kc, 6, timeout=15)
        elapsed = time.monotonic() - started
        assert elapsed < 2.5, f"three 1 s cells on three subshells took {elapsed:.1f} s"
        for first, second in ids.values():
            assert got[first][0] <= got[second][0], "a subshell ran its requests out of order"
        msgs = iopub_until_idle(kc, [i for pair in ids.values() for i in pair])
        threads = set()
        for first, _ in ids.values():
            result = next(m for m in msgs if m["msg_type"] == "execute_result" and m["parent_header"]["msg_id"] == first)
            threads.add(result["content"]["data"]["text/plain"])
        assert len(threads) == 3 and all(name.startswith("'kernelkit-subshell-") for name in threads)


def test_delete_list_and_unknown_subshells() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        a, b = create_subshell(kc), create_subshell(kc)
        assert control(kc, "delete_subshell_request", {"subshell_id": a}) == {"status": "ok"}
        assert control(kc, "list_subshell_request")["subshell_id"] == [b]
        again = control(kc, "delete_subshell_request", {"subshell_id": a})
        assert again["status"] == "error" and a in again["evalue"]
        assert control(kc, "delete_subshell_request", {})["status"] == "error"  # no subshell_id at all
        # a request for a deleted (or never created) subshell: busy, error reply, idle
        for gone in (a, "no-such-subshell"):
            msg_id = run(kc, "1", gone)
            reply = replies(kc, 1)[msg_id][1]
            assert reply["msg_type"] == "execute_reply"
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "UnknownSubshellError"
            assert of(iopub_until_idle(kc, [msg_id]), msg_id) == ["busy", "idle"]
        # the kernel and the other subshell are fine
        msg_id = run(kc, "'still here'", b)
        assert replies(kc, 1)[msg_id][1]["content"]["status"] == "ok"
        reply, _ = execute(kc, "1 + 1")
        assert reply["content"]["status"] == "ok"


def test_an_error_aborts_the_queue_of_its_own_subshell_only() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        sub = create_subshell(kc)
        main_sleep = run(kc, "import time\ntime.sleep(0.5)", None)
        main_after = run(kc, "'main ok'", None)
        failing = run(kc, "import time\ntime.sleep(0.3)\n1/0", sub)
        queued = run(kc, "'never runs'", sub)
        got = replies(kc, 4)
        assert got[failing][1]["content"]["ename"] == "ZeroDivisionError"
        assert got[queued][1]["content"]["status"] == "aborted"
        assert got[main_sleep][1]["content"]["status"] == "ok"
        assert got[main_after][1]["content"]["status"] == "ok"
        after = run(kc, "'runs again'", sub)
        assert replies(kc, 1)[after][1]["content"]["status"] == "ok"


def test_input_from_a_subshell_is_an_error_and_main_shell_input_still_works() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        sub = create_subshell(kc)
        msg_id = run(kc, "kernel.raw_input('name? ')", sub, allow_stdin=True)
        reply = replies(kc, 1)[msg_id][1]
        assert reply["content"]["ename"] == "StdinNotImplementedError"
        assert "main shell" in reply["content"]["evalue"]


# ---- comms on a subshell, as JupyterLab sends them ------------------------------------------


@pytest.mark.slow
def test_comm_messages_routed_to_a_subshell_as_jupyterlab_does() -> None:
    """JupyterLab (@jupyterlab/services CommHandler, default ``perCommTarget``) creates one subshell
    per comm target once the kernel advertises "kernel subshells" and sends that comm's
    comm_open/comm_msg/comm_close with the subshell's id in the header; widgets then answer while
    a cell runs on the main shell."""
    with running_kernel(SUBSHELLS) as (_, kc):
        setup = (
            "import threading\n"
            "def target(comm, msg):\n"
            "    comm.send({'opened': threading.current_thread().name})\n"
            "    comm.on_msg(lambda m: comm.send({'echo': m['content']['data'], 'thread': threading.current_thread().name}))\n"
            "kernel.comm_manager.register_target('jupyter.widget', target)\n"
        )
        reply, _ = execute(kc, setup)
        assert reply["content"]["status"] == "ok"
        sub = create_subshell(kc)
        main = run(kc, "import time\ntime.sleep(3)", None)
        time.sleep(0.3)
        started = time.monotonic()
        opened = send(kc, "comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {}}, sub)
        message = send(kc, "comm_msg", {"comm_id": "c1", "data": {"value": 5}}, sub)
        msgs = iopub_until_idle(kc, [opened, message])
        assert time.monotonic() - started < 1.5, "comm messages waited for the main shell's cell"
        comm_msgs = [m for m in msgs if m["msg_type"] == "comm_msg"]
        assert comm_msgs[0]["parent_header"]["msg_id"] == opened
        assert comm_msgs[0]["content"]["data"]["opened"].startswith("kernelkit-subshell-")
        assert comm_msgs[1]["parent_header"]["msg_id"] == message
        assert comm_msgs[1]["content"]["data"]["echo"] == {"value": 5}
        assert of(msgs, opened) == ["busy", "comm_msg", "idle"]
        closed = send(kc, "comm_close", {"comm_id": "c1", "data": {}}, sub)
        iopub_until_idle(kc, [closed])
        info = send(kc, "comm_info_request", {}, sub)
        assert replies(kc, 1)[info][1]["content"]["comms"] == {}
        assert replies(kc, 1, timeout=10)[main][1]["content"]["status"] == "ok"


# ---- interrupts and shutdown ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kernel", [SUBSHELLS, SUBSHELLS_MESSAGE])
def test_an_interrupt_stops_the_main_shell_only(kernel: str) -> None:
    with running_kernel(kernel) as (km, kc):
        sub = create_subshell(kc)
        on_sub = run(kc, "import time\ntime.sleep(2)\n'sub finished'", sub)
        on_main = run(kc, "import time\ntime.sleep(30)", None)
        time.sleep(0.5)
        km.interrupt_kernel()
        got = replies(kc, 2, timeout=10)
        assert got[on_main][1]["content"]["ename"] == "KeyboardInterrupt"
        assert got[on_sub][1]["content"]["status"] == "ok"
        assert got[on_main][0] < got[on_sub][0], "the interrupt waited for the subshell"


@pytest.mark.slow
def test_shutdown_with_subshells_alive_and_busy_exits_cleanly() -> None:
    with running_kernel(SUBSHELLS) as (km, kc):
        subs = [create_subshell(kc) for _ in range(3)]
        run(kc, "import time\ntime.sleep(0.2)", subs[0])
        run(kc, "import time\nwhile True: time.sleep(0.05)", subs[1])  # never returns
        pid = kernel_pid(km)
        time.sleep(0.3)
        started = time.monotonic()
        assert control(kc, "shutdown_request", {"restart": False})["status"] == "ok"
        assert pid is not None and wait_pid_gone(pid, 10)
        assert time.monotonic() - started < 8
        assert km.provisioner is not None
        km.provisioner.process.wait(timeout=5)
        assert km.provisioner.process.returncode == 0


def test_deleting_a_busy_subshell_answers_at_once_and_serves_what_was_sent_to_it() -> None:
    with running_kernel(SUBSHELLS) as (_, kc):
        sub = create_subshell(kc)
        first = run(kc, "import time\ntime.sleep(1)\n'first'", sub)
        second = run(kc, "'second'", sub)
        time.sleep(0.2)
        started = time.monotonic()
        assert control(kc, "delete_subshell_request", {"subshell_id": sub}) == {"status": "ok"}
        assert time.monotonic() - started < 0.5, "delete waited for the running cell"
        late = run(kc, "'too late'", sub)
        got = replies(kc, 3)
        assert got[late][1]["content"]["ename"] == "UnknownSubshellError"
        assert got[first][1]["content"]["status"] == "ok" and got[second][1]["content"]["status"] == "ok"
        assert got[late][0] < got[first][0] < got[second][0]
        assert control(kc, "list_subshell_request")["subshell_id"] == []
