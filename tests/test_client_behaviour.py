"""Behaviour clients rely on, checked on real kernel processes through jupyter_client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from queue import Empty

from jupyter_client import BlockingKernelClient

import psutil
import pytest
import zmq
from jupyter_client.connect import write_connection_file

from conftest import ASYNC, CALC, ECHO, JUPYTER_RUNTIME_DIR, SLEEPY_MESSAGE, SLEEPY_SIGNAL
from helpers import (
    TIMEOUT,
    drain,
    execute,
    iopub_after_idle,
    iopub_for,
    kernel_pid,
    outputs,
    running_kernel,
    shell_reply,
    start_kernel,
    stdout_text,
    stop_kernel,
    types,
    wait_pid_gone,
)


@pytest.fixture(scope="module")
def echo():
    km, kc = start_kernel(ECHO)
    yield kc
    stop_kernel(km, kc)


@pytest.fixture(scope="module")
def calc():
    km, kc = start_kernel(CALC)
    yield kc
    stop_kernel(km, kc)


@pytest.fixture(scope="module", params=[SLEEPY_SIGNAL, SLEEPY_MESSAGE], ids=["signal", "message"])
def sleepy(request):
    km, kc = start_kernel(request.param)
    yield km, kc
    stop_kernel(km, kc)


@pytest.fixture(autouse=True)
def _clean_channels(request):
    """Each test starts with nothing left over on a shared client."""
    for name in ("echo", "calc"):
        if name in request.fixturenames:
            drain(request.getfixturevalue(name), 0.05)
    yield


# ---- kernel_info ------------------------------------------------------------------------------


def test_kernel_info_on_shell(echo) -> None:
    msg_id = echo.kernel_info()
    reply = shell_reply(echo, msg_id)
    content = reply["content"]
    assert reply["msg_type"] == "kernel_info_reply"
    assert content["status"] == "ok"
    assert content["protocol_version"] == "5.5"
    assert content["language_info"]["name"] == "Any text"
    for key in ("implementation", "implementation_version", "banner", "help_links", "supported_features"):
        assert key in content
    msgs = iopub_for(echo, msg_id)
    assert types(msgs) == ["status", "status"]
    assert [m["content"]["execution_state"] for m in msgs] == ["busy", "idle"]


def test_kernel_info_on_control(echo) -> None:
    msg = echo.session.msg("kernel_info_request")
    echo.control_channel.send(msg)
    reply = echo.get_control_msg(timeout=TIMEOUT)
    assert reply["msg_type"] == "kernel_info_reply"
    assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
    assert reply["content"]["implementation"] == "Echo"


@pytest.mark.slow
def test_kernel_info_on_control_while_shell_is_busy(sleepy) -> None:
    km, kc = sleepy
    msg_id = kc.execute("2")
    time.sleep(0.3)
    started = time.monotonic()
    msg = kc.session.msg("kernel_info_request")
    kc.control_channel.send(msg)
    reply = kc.get_control_msg(timeout=TIMEOUT)
    assert reply["msg_type"] == "kernel_info_reply"
    assert time.monotonic() - started < 1.0, "control waited for the shell"
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    drain(kc)


# ---- execute: ordering, counts, silent ------------------------------------------------------


def test_1000_pipelined_executes_stay_in_order(echo) -> None:
    codes = [f"cell {i}" for i in range(1000)]
    msg_ids = [echo.execute(code) for code in codes]
    replies = [echo.get_shell_msg(timeout=TIMEOUT) for _ in msg_ids]
    assert [r["parent_header"]["msg_id"] for r in replies] == msg_ids
    assert all(r["content"]["status"] == "ok" for r in replies)
    counts = [r["content"]["execution_count"] for r in replies]
    assert counts == list(range(counts[0], counts[0] + 1000))

    expected = []
    for msg_id, code in zip(msg_ids, codes):
        expected += [(msg_id, "status", "busy"), (msg_id, "execute_input", code), (msg_id, "stream", code), (msg_id, "status", "idle")]
    got = []
    while len(got) < len(expected):
        msg = echo.get_iopub_msg(timeout=TIMEOUT)
        parent = msg["parent_header"].get("msg_id")
        if parent not in msg_ids:
            continue
        detail = {
            "status": lambda c: c["execution_state"],
            "execute_input": lambda c: c["code"],
            "stream": lambda c: c["text"],
        }[msg["msg_type"]](msg["content"])
        got.append((parent, msg["msg_type"], detail))
    assert got == expected


def test_execution_count_increments_and_matches_execute_input(echo) -> None:
    first, msgs1 = execute(echo, "a")
    second, msgs2 = execute(echo, "b")
    n = first["content"]["execution_count"]
    assert second["content"]["execution_count"] == n + 1
    assert [m["content"]["execution_count"] for m in msgs1 if m["msg_type"] == "execute_input"] == [n]
    assert [m["content"]["execution_count"] for m in msgs2 if m["msg_type"] == "execute_input"] == [n + 1]


def test_silent_execute(echo) -> None:
    before, _ = execute(echo, "x")
    reply, msgs = execute(echo, "should not show", silent=True)
    assert reply["content"]["status"] == "ok"
    assert types(msgs) == ["status", "status"], "silent: no execute_input, no output"
    assert reply["content"]["execution_count"] == before["content"]["execution_count"]
    after, _ = execute(echo, "y")
    assert after["content"]["execution_count"] == before["content"]["execution_count"] + 1


def test_store_history_false_keeps_the_count(echo) -> None:
    before, _ = execute(echo, "x")
    reply, msgs = execute(echo, "not stored", store_history=False)
    assert reply["content"]["execution_count"] == before["content"]["execution_count"]
    assert stdout_text(msgs) == "not stored"
    assert "execute_input" in types(msgs)
    after, _ = execute(echo, "y")
    assert after["content"]["execution_count"] == before["content"]["execution_count"] + 1


def test_user_expressions(calc) -> None:
    reply, _ = execute(calc, "z = 20", user_expressions={"a": "z + 1", "b": "undefined_name"})
    exprs = reply["content"]["user_expressions"]
    assert exprs["a"]["status"] == "ok" and exprs["a"]["data"]["text/plain"] == "21"
    assert exprs["b"]["status"] == "error" and exprs["b"]["ename"] == "NameError"


def test_error_reply_and_kernel_lives_on(calc) -> None:
    reply, msgs = execute(calc, "1/0")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ZeroDivisionError"
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["content"]["ename"] == "ZeroDivisionError"
    assert isinstance(errors[0]["content"]["traceback"], list)
    ok, _ = execute(calc, "1")
    assert ok["content"]["status"] == "ok"


def test_stop_on_error_aborts_queued_executes(calc) -> None:
    failing = calc.execute("import time; time.sleep(0.5); raise RuntimeError('first')")
    queued = [calc.execute(f"marker_{i} = {i}") for i in range(3)]
    assert shell_reply(calc, failing)["content"]["status"] == "error"
    statuses = [shell_reply(calc, m)["content"]["status"] for m in queued]
    assert statuses == ["aborted"] * 3
    for msg_id in [failing, *queued]:
        iopub_for(calc, msg_id)  # busy ... idle for each, aborted ones included
    reply, _ = execute(calc, "'marker_0' in globals()")
    assert reply["content"]["status"] == "ok"
    _, msgs = execute(calc, "'marker_0' in globals()")
    result = [m for m in msgs if m["msg_type"] == "execute_result"]
    assert result[0]["content"]["data"]["text/plain"] == "False", "an aborted cell ran"


def test_execute_sent_after_the_error_reply_is_never_aborted(calc) -> None:
    """Only requests queued before the error are aborted, however fast the client sends the next one."""
    for i in range(30):
        failing = calc.execute("1/0")
        assert shell_reply(calc, failing)["content"]["status"] == "error"
        after = calc.execute(f"{i}")
        assert shell_reply(calc, after)["content"]["status"] == "ok", f"round {i}: a later request was aborted"
    drain(calc)


def test_stop_on_error_false_runs_queued_executes(calc) -> None:
    failing = calc.execute("import time; time.sleep(0.3); raise RuntimeError('first')", stop_on_error=False)
    after = calc.execute("after_error = 1")
    assert shell_reply(calc, failing)["content"]["status"] == "error"
    assert shell_reply(calc, after)["content"]["status"] == "ok"
    drain(calc)


# ---- output ----------------------------------------------------------------------------------


def test_print_reaches_client_as_stream_before_the_reply(calc) -> None:
    msg_id = calc.execute("for i in range(3): print('line', i)\nimport sys; sys.stderr.write('err!\\n')")
    reply = shell_reply(calc, msg_id)
    msgs = iopub_for(calc, msg_id)
    assert stdout_text(msgs) == "line 0\nline 1\nline 2\n"
    assert stdout_text(msgs, "stderr") == "err!\n"
    streams = [m for m in msgs if m["msg_type"] == "stream"]
    assert all(m["header"]["date"] <= reply["header"]["date"] for m in streams), "a stream was sent after the reply"
    assert types(msgs)[0] == "status" and msgs[0]["content"]["execution_state"] == "busy"
    assert iopub_after_idle(calc, msg_id) == [], "output sent after idle (nbclient would lose it)"


def test_print_after_a_long_cell_is_flushed_with_its_own_parent(calc) -> None:
    first = calc.execute("print('one', end='')")
    second = calc.execute("print('two', end='')")
    shell_reply(calc, first)
    shell_reply(calc, second)
    assert stdout_text(iopub_for(calc, first)) == "one"
    assert stdout_text(iopub_for(calc, second)) == "two"


def test_display_update_display_and_clear_output(calc) -> None:
    code = textwrap.dedent(
        """
        display({'text/html': '<b>a</b>', 'text/plain': 'a'}, {'meta': 1}, display_id='d1')
        update_display('b', display_id='d1')
        clear_output(wait=True)
        display('plain')
        """
    )
    reply, msgs = execute(calc, code)
    assert reply["content"]["status"] == "ok"
    out = outputs(msgs)
    assert types(out) == ["display_data", "update_display_data", "clear_output", "display_data"]
    assert out[0]["content"] == {
        "data": {"text/html": "<b>a</b>", "text/plain": "a"},
        "metadata": {"meta": 1},
        "transient": {"display_id": "d1"},
    }
    assert out[1]["content"]["data"] == {"text/plain": "b"}
    assert out[1]["content"]["transient"] == {"display_id": "d1"}
    assert out[2]["content"] == {"wait": True}
    assert out[3]["content"]["data"] == {"text/plain": "plain"}
    assert all(m["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"] for m in out)


def test_async_do_execute(tmp_path) -> None:
    with running_kernel(ASYNC) as (km, kc):
        reply, msgs = execute(kc, "quiet please")
        assert reply["content"]["status"] == "ok"
        assert stdout_text(msgs) == "QUIET PLEASE\n"
        msg_id = kc.is_complete("")
        assert shell_reply(kc, msg_id)["content"]["status"] == "incomplete"
        # an interrupt cancels an awaiting coroutine too
        msg_id = kc.execute("sleep 30")
        time.sleep(0.5)
        started = time.monotonic()
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id, timeout=10)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started < 5
        reply, msgs = execute(kc, "again", timeout=5)
        assert stdout_text(msgs) == "AGAIN\n"


def test_sys_exit_in_user_code_is_an_error_not_a_silent_death(calc) -> None:
    reply, msgs = execute(calc, "import sys; sys.exit(3)", timeout=10)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "SystemExit"
    assert reply["content"]["evalue"] == "3"
    assert [m["content"]["ename"] for m in msgs if m["msg_type"] == "error"] == ["SystemExit"]
    ok, _ = execute(calc, "1")
    assert ok["content"]["status"] == "ok"


@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "escaped \udcff byte", "ünïcode ✓ 😀"])
def test_any_python_text_can_be_printed(calc, text: str) -> None:
    reply, msgs = execute(calc, f"print({text!r}, end='')\n{text!r}")
    assert reply["content"]["status"] == "ok"
    assert stdout_text(msgs) == text
    assert [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"] == [repr(text)]


def test_comms_opened_by_the_frontend(calc) -> None:
    execute(
        calc,
        textwrap.dedent(
            """
            def target(comm, msg):
                comm.send({'opened with': msg['content']['data']})
                comm.on_msg(lambda m: comm.send({'echo': m['content']['data']}))
                comm.on_close(lambda m: print('closed', m['content']['comm_id']))
            kernel.comm_manager.register_target('front.target', target)
            """
        ),
    )

    def send(msg_type: str, content: dict) -> list:
        msg = calc.session.msg(msg_type, content)
        calc.shell_channel.send(msg)
        return outputs(iopub_for(calc, msg["header"]["msg_id"]))

    got = send("comm_open", {"comm_id": "c1", "target_name": "front.target", "data": {"a": 1}})
    assert [(m["msg_type"], m["content"]) for m in got] == [("comm_msg", {"comm_id": "c1", "data": {"opened with": {"a": 1}}})]
    assert shell_reply(calc, calc.comm_info())["content"]["comms"] == {"c1": {"target_name": "front.target"}}
    got = send("comm_msg", {"comm_id": "c1", "data": {"b": 2}})
    assert [m["content"]["data"] for m in got] == [{"echo": {"b": 2}}]
    got = send("comm_close", {"comm_id": "c1", "data": {}})
    assert stdout_text(got) == "closed c1\n"
    assert shell_reply(calc, calc.comm_info())["content"]["comms"] == {}
    got = send("comm_open", {"comm_id": "c2", "target_name": "no.such.target", "data": {}})
    assert [(m["msg_type"], m["content"]["comm_id"]) for m in got] == [("comm_close", "c2")]


def test_comm_info_request(calc) -> None:
    msg_id = calc.comm_info()
    reply = shell_reply(calc, msg_id)
    assert reply["msg_type"] == "comm_info_reply"
    assert reply["content"] == {"status": "ok", "comms": {}}
    _, msgs = execute(calc, "comm = kernel.comm_manager.open('my.target', {'x': 1})")
    opened = [m for m in msgs if m["msg_type"] == "comm_open"]
    assert len(opened) == 1 and opened[0]["content"]["target_name"] == "my.target"
    comm_id = opened[0]["content"]["comm_id"]
    reply = shell_reply(calc, calc.comm_info(target_name="my.target"))
    assert reply["content"]["comms"] == {comm_id: {"target_name": "my.target"}}
    reply = shell_reply(calc, calc.comm_info(target_name="other"))
    assert reply["content"]["comms"] == {}
    execute(calc, "comm.close()")
    assert shell_reply(calc, calc.comm_info())["content"]["comms"] == {}


# ---- stdin ------------------------------------------------------------------------------------


def _interactive(kc, code: str, answer: str):
    requests = []
    out = []

    def stdin_hook(msg):
        requests.append(msg)
        kc.input(answer)

    reply = kc.execute_interactive(
        code, allow_stdin=True, stdin_hook=stdin_hook, output_hook=out.append, timeout=TIMEOUT
    )
    return reply, requests, out


def test_input_gets_the_clients_input_reply(calc) -> None:
    reply, requests, out = _interactive(calc, "name = input('name? ')\nprint('hi ' + name)", "bob")
    assert reply["content"]["status"] == "ok"
    assert len(requests) == 1
    assert requests[0]["content"] == {"prompt": "name? ", "password": False}
    assert requests[0]["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]
    assert stdout_text(out) == "hi bob\n"


def test_kernel_raw_input(calc) -> None:
    reply, requests, out = _interactive(calc, "print(kernel.raw_input('q: ')[::-1])", "abc")
    assert requests[0]["content"]["prompt"] == "q: "
    assert stdout_text(out) == "cba\n"


def test_end_of_file_from_the_frontend_is_eoferror_in_input(calc) -> None:
    """jupyter_console answers Ctrl-D with "\\x04": input(), getpass() and the kernel API's
    raw_input/getpass raise EOFError, as at the end of a file and as in ipykernel."""
    code = ("import getpass\nfor ask in (input, getpass.getpass, kernel.raw_input, kernel.getpass):\n"
            "    try: ask('q: ')\n    except EOFError: print('EOF')")
    reply, requests, out = _interactive(calc, code, "\x04")
    assert reply["content"]["status"] == "ok" and len(requests) == 4
    assert stdout_text(out) == "EOF\n" * 4


def test_getpass_sends_password_true(calc) -> None:
    reply, requests, out = _interactive(calc, "import getpass\nprint(len(getpass.getpass('pw: ')))", "secret")
    assert reply["content"]["status"] == "ok"
    assert requests[0]["content"] == {"prompt": "pw: ", "password": True}
    assert stdout_text(out) == "6\n"


def test_input_request_goes_to_the_client_that_executed(calc) -> None:
    other = BlockingKernelClient(connection_file=calc.connection_file)
    other.load_connection_file()
    other.start_channels()
    try:
        other.wait_for_ready(timeout=TIMEOUT)
        msg_id = other.execute("print(input('who? '))", allow_stdin=True)
        request = other.get_stdin_msg(timeout=TIMEOUT)
        assert request["content"]["prompt"] == "who? "
        with pytest.raises(Empty):
            calc.get_stdin_msg(timeout=0.5)
        other.input("the other one")
        assert shell_reply(other, msg_id)["content"]["status"] == "ok"
        assert stdout_text(iopub_for(other, msg_id)) == "the other one\n"
    finally:
        other.stop_channels()
    reply, _ = execute(calc, "1")
    assert reply["content"]["status"] == "ok"


def test_interrupt_while_waiting_for_input() -> None:
    with running_kernel(CALC) as (km, kc):
        msg_id = kc.execute("input('never answered')", allow_stdin=True)
        assert kc.get_stdin_msg(timeout=TIMEOUT)["content"]["prompt"] == "never answered"
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id, timeout=10)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        reply, _ = execute(kc, "'still here'", timeout=5)
        assert reply["content"]["status"] == "ok"


def test_input_without_allow_stdin_is_an_error(calc) -> None:
    reply, msgs = execute(calc, "input('never')", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"
    assert any(m["msg_type"] == "error" for m in msgs)
    ok, _ = execute(calc, "1")
    assert ok["content"]["status"] == "ok"


# ---- interrupts, heartbeat ---------------------------------------------------------------------


def test_interrupt_running_cell(sleepy) -> None:
    km, kc = sleepy
    msg_id = kc.execute("60")
    msgs = []
    while not any(m["msg_type"] == "stream" for m in msgs):  # the cell is running
        msgs.append(kc.get_iopub_msg(timeout=TIMEOUT))
    started = time.monotonic()
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=10)
    assert time.monotonic() - started < 3, "the interrupt was slow"
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    rest = iopub_for(kc, msg_id)
    assert [m["content"]["ename"] for m in rest if m["msg_type"] == "error"] == ["KeyboardInterrupt"]
    started = time.monotonic()
    reply, msgs = execute(kc, "0", timeout=5)
    assert reply["content"]["status"] == "ok"
    assert time.monotonic() - started < 2
    assert stdout_text(msgs) == "sleeping 0\nwoke up\n"


def test_interrupt_while_idle_is_harmless(sleepy) -> None:
    km, kc = sleepy
    km.interrupt_kernel()
    time.sleep(0.3)
    reply, _ = execute(kc, "0", timeout=5)
    assert reply["content"]["status"] == "ok"
    assert km.is_alive()


@pytest.mark.slow
def test_heartbeat_answers_while_a_cell_sleeps(sleepy) -> None:
    km, kc = sleepy
    msg_id = kc.execute("3")
    time.sleep(0.5)
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    try:
        req.connect(f"tcp://{km.ip}:{km.hb_port}")
        for i in range(3):
            ping = f"ping {i}".encode()
            req.send(ping)
            assert req.poll(1000), "no heartbeat reply within 1 s while the kernel computes"
            assert req.recv() == ping
        assert kc.hb_channel.is_beating()
    finally:
        req.close()
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    drain(kc)


# ---- lifecycle --------------------------------------------------------------------------------


def test_restart_gives_a_new_live_kernel() -> None:
    km, kc = start_kernel(CALC)
    try:
        execute(kc, "x = 1")
        old_pid = kernel_pid(km)
        km.restart_kernel(now=False)
        new_pid = kernel_pid(km)
        assert new_pid != old_pid
        assert wait_pid_gone(old_pid, 10)
        kc.stop_channels()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        reply, msgs = execute(kc, "'x' in globals()")
        assert reply["content"]["execution_count"] == 1
        assert [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"] == ["False"]
    finally:
        stop_kernel(km, kc)


def test_shutdown_request_replies_and_leaves_no_process() -> None:
    km, kc = start_kernel(ECHO)
    pid = kernel_pid(km)
    try:
        msg_id = kc.shutdown()
        reply = kc.get_control_msg(timeout=TIMEOUT)
        assert reply["msg_type"] == "shutdown_reply"
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok" and reply["content"]["restart"] is False
        assert km.provisioner.process.wait(timeout=10) == 0
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert wait_pid_gone(pid, 5)


def test_manager_shutdown_leaves_no_process() -> None:
    km, kc = start_kernel(ECHO)
    pid = kernel_pid(km)
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    assert wait_pid_gone(pid, 5)
    assert not km.is_alive()


def test_shutdown_while_a_cell_runs() -> None:
    km, kc = start_kernel(SLEEPY_SIGNAL)
    try:
        cell = kc.execute("60")
        time.sleep(0.5)
        started = time.monotonic()
        msg_id = kc.shutdown(restart=True)
        reply = kc.get_control_msg(timeout=TIMEOUT)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"] == {"status": "ok", "restart": True}
        assert km.provisioner.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 6
        interrupted = shell_reply(kc, cell, timeout=5)
        assert interrupted["content"]["status"] == "error"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_sigterm_exits_cleanly(busy: bool) -> None:
    km, kc = start_kernel(SLEEPY_SIGNAL)
    try:
        if busy:
            kc.execute("60")
            time.sleep(0.5)
        os.kill(kernel_pid(km), signal.SIGTERM)
        assert km.provisioner.process.wait(timeout=10) == 0
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _kernel_argv(connection_file: str) -> list[str]:
    return [sys.executable, "-m", "kernelkit.kernels.echo", "-f", connection_file]


def test_kernel_exits_when_jpy_parent_pid_dies(tmp_path) -> None:
    cf, _ = write_connection_file(str(JUPYTER_RUNTIME_DIR / "kernel-parent-death-1.json"))
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    env = {**os.environ, "JPY_PARENT_PID": str(parent.pid)}
    kernel = subprocess.Popen(_kernel_argv(cf), env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_kernel_ready(cf)
        parent.kill()
        parent.wait(timeout=5)  # reaped, so the pid really is gone
        assert kernel.wait(timeout=5) == 0
    finally:
        for proc in (parent, kernel):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_kernel_exits_when_its_launching_parent_dies(tmp_path) -> None:
    """The usual case: the frontend that started the kernel is killed and the kernel is re-parented."""
    cf, _ = write_connection_file(str(JUPYTER_RUNTIME_DIR / "kernel-parent-death-2.json"))
    launcher = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
        p = subprocess.Popen({_kernel_argv(cf)!r}, env=env, stderr=subprocess.DEVNULL)
        print(p.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE)
    kernel_pid_ = int(parent.stdout.readline())
    try:
        _wait_kernel_ready(cf)
        parent.kill()
        parent.wait(timeout=5)
        assert wait_pid_gone(kernel_pid_, 5), "the orphaned kernel kept running"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if psutil.pid_exists(kernel_pid_):
            psutil.Process(kernel_pid_).kill()
        parent.stdout.close()


def _wait_kernel_ready(connection_file: str) -> None:
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=connection_file)
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
    finally:
        kc.stop_channels()


def test_iopub_welcome_reaches_a_subscriber_joining_while_a_cell_runs(sleepy) -> None:
    from kernelkit.protocol.session import Session

    km, kc = sleepy
    msg_id = kc.execute("2")
    time.sleep(0.3)
    ctx = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://{km.ip}:{km.iopub_port}")
        assert sub.poll(1000), "no iopub_welcome within 1 s while the shell was busy"
        _, welcome = Session(km.session.key).deserialize(sub.recv_multipart())
        assert welcome["msg_type"] == "iopub_welcome"
        assert welcome["content"] == {"subscription": ""}
    finally:
        ctx.destroy(linger=0)
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    drain(kc)


def test_parent_death_while_a_cell_runs(tmp_path) -> None:
    cf, _ = write_connection_file(str(JUPYTER_RUNTIME_DIR / "kernel-parent-death-3.json"))
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    env = {**os.environ, "JPY_PARENT_PID": str(parent.pid), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import sleepy_kernel as k; k.SleepyKernel.launch(sys.argv[2:])"]
    from conftest import TEST_KERNELS_DIR

    kernel = subprocess.Popen([*argv, str(TEST_KERNELS_DIR), "-f", cf], env=env, stderr=subprocess.DEVNULL)
    try:
        from jupyter_client import BlockingKernelClient as Client

        kc = Client(connection_file=cf)
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            kc.execute("600")
            time.sleep(0.5)
            parent.kill()
            parent.wait(timeout=5)
            assert kernel.wait(timeout=8) == 0
        finally:
            kc.stop_channels()
    finally:
        for proc in (parent, kernel):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
