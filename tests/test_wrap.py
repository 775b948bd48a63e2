"""kernelkit wrap: real REPLs (bash, zsh, python3, sqlite3, node, lua) in a pty, driven through jupyter_client.

Kernelspecs are written by the real installer (``kernelkit.tools.wrap.install``) into the
temporary Jupyter data dir; bash_kernel runs the same bash cells side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from queue import Empty

import psutil
import pytest
from jupyter_client import KernelManager

from conftest import TEST_KERNEL_ENV, install_kernelspec
from helpers import iopub_for, kernel_pid, running_kernel, stdout_text
from kernelkit.tools import doctor, kernelspecs, wrap

PROFILES = ("bash", "zsh", "python", "sqlite3", "node", "lua")


@pytest.fixture(scope="module", autouse=True)
def wrapped_kernels() -> None:
    for profile in PROFILES:
        wrap.install(profile, name=f"kkw-{profile}", user=True, replace=True)
    wrap.install("bash", name="kkw-bash-message", user=True, replace=True, interrupt_mode="message")
    wrap.install("python", name="kkw-python-message", user=True, replace=True, interrupt_mode="message")
    wrap.install("bash", name="kkw-bash-init", user=True, replace=True,
                 init=["PS1='my own prompt> '; PS2='more> '", "greeting=hello"], env={"KKW_VAR": "from env"})
    install_kernelspec("kkw-bash-kernel", argv=[sys.executable, "-m", "bash_kernel", "-f", "{connection_file}"],
                       language="bash")
    install_kernelspec("kkw-shouting", argv=[sys.executable, "-m", "kernelkit_launcher", "shouting_repl:ShoutingBash",
                                             "-f", "{connection_file}"], env=TEST_KERNEL_ENV, language="bash")
    install_kernelspec("kkw-run", argv=[sys.executable, "-m", "kernelkit", "wrap", "run", "lua", "-f", "{connection_file}"],
                       language="lua")


def reply_to(kc, msg_id: str, timeout: float = 20) -> dict:
    """The shell reply to ``msg_id``, skipping late kernel_info replies (wait_for_ready asks again after 1 s)."""
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
        assert reply["msg_type"] == "kernel_info_reply", reply["msg_type"]


def run(kc, code: str, timeout: float = 20, **kw):
    msg_id = kc.execute(code, **kw)
    reply = reply_to(kc, msg_id, timeout)
    msgs = iopub_for(kc, msg_id, timeout)
    return reply["content"], stdout_text(msgs), msgs


# ---- every profile: exact output -------------------------------------------------------------

CELLS = {
    "bash": [("PS1='$ '; PS2='> '", ""), ("echo hello", "hello\n"), ("for i in 1 2 3\ndo\n  echo $i\ndone", "1\n2\n3\n"),
             ("printf 'a\\r\\nb'", "a\nb"), ("x=21", ""), ("echo $((x * 2))", "42\n"),
             ("cat <<EOF\nline one\n\nline three\nEOF", "line one\n\nline three\n"),
             ("printf '\\e]0;title\\a\\e[2Kplain \\e[31mred\\e[0m\\n'", "plain \x1b[31mred\x1b[0m\n"),
             ("echo 'héllo ✓'\r\necho done", "héllo ✓\ndone\n")],
    "zsh": [("PS1='%% '", ""), ("echo hello", "hello\n"), ("for i in 1 2; do\n  echo $i\ndone", "1\n2\n"), ("print -n no-newline", "no-newline"),
            ("typeset -i y=6; echo $((y * 7))", "42\n")],
    "python": [("import sys; sys.ps1 = '>>> '", ""), ("print('hello')", "hello\n"), ("def f(x):\n    y = x * 2\n\n    return y\n\nf(21)", "42\n"),
               ("import sys; _ = sys.stdout.write('a\\r\\nb')", "a\nb"), ("z = [1, 2]\nz", "[1, 2]\n")],
    "sqlite3": [("create table t(x);\ninsert into t values (1), (2);", ""), ("select x * 21\n  from t;", "21\n42\n")],
    "node": [("console.log('hello')", "hello\n"), ("function f(x) {\n  return x * 2\n}", ""), ("f(21)", "42\n"),
             ("let s = 'a'\ns + 'b'", "'ab'\n")],
    "lua": [("print('hello')", "hello\n"), ("function f(x)\n  return x * 2\nend", ""), ("print(f(21))", "42\n"),
            ("for i = 1, 2 do\n  io.write(i, ' ')\nend", "1 2 ")],
}


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_cells_give_exact_output(profile: str) -> None:
    with running_kernel(f"kkw-{profile}") as (km, kc):
        for code, expected in CELLS[profile]:
            content, text, msgs = run(kc, code)
            assert content["status"] == "ok", (code, content, text)
            assert text == expected, code
            assert not [m for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"]


@pytest.mark.slow
def test_bash_cells_match_bash_kernel() -> None:
    """The same cells through bash_kernel and through `kernelkit wrap install bash`: the same stdout."""
    cells = ["echo hello", "for i in 1 2 3; do echo \"line $i\"; done", "x=5; echo $((x * 3))",
             "printf 'no newline'", "cat <<EOF\nheredoc\nEOF", "echo a; echo b >&2; echo c"]
    results = {}
    for name in ("kkw-bash", "kkw-bash-kernel"):
        with running_kernel(name) as (km, kc):
            results[name] = [run(kc, code)[1] for code in cells]
    ours, theirs = results["kkw-bash"], results["kkw-bash-kernel"]
    for code, a, b in zip(cells, ours, theirs):
        b = b.replace("\r\n", "\n")  # bash_kernel (pexpect) passes the terminal's CRLF through
        if code.startswith("printf"):  # bash_kernel adds a newline the program never printed
            assert b == a + "\n" and a == "no newline"
        else:
            assert a == b, code


# ---- streaming, status, stdin ----------------------------------------------------------------


@pytest.mark.parametrize("profile", ["bash", "sqlite3", "python"])
def test_a_line_longer_than_a_terminal_line_arrives_whole(profile: str) -> None:
    """A terminal's line is at most 4095 bytes: longer ones go through a file (bash, sqlite3) or chunks (python)."""
    long = "x" * 10_000
    code = {"bash": f"v={long}\necho ${{#v}}", "sqlite3": f"select length('{long}');",
            "python": f"v = '{long}'\nlen(v)"}[profile]
    with running_kernel(f"kkw-{profile}") as (km, kc):
        content, text, _ = run(kc, code)
        assert content["status"] == "ok" and text == "10000\n"
        assert run(kc, "echo $v" if profile == "bash" else "select 1;" if profile == "sqlite3" else "v[:3]")[1] in (
            long + "\n", "1\n", "'xxx'\n")


def test_output_streams_while_the_cell_runs() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        msg_id = kc.execute("for i in 1 2 3; do echo $i; sleep 0.4; done")
        arrived = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                arrived.append((time.monotonic(), msg["content"]["text"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = time.monotonic()
                break
        assert "".join(t for _, t in arrived) == "1\n2\n3\n"
        assert [t for _, t in arrived][0] == "1\n"
        assert idle - arrived[0][0] > 0.8  # the first line came long before the end
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"


def test_background_output_right_after_the_prompt_does_not_hide_it() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        for _ in range(5):  # the job prints while, or just after, bash prints its prompt
            content, text, _ = run(kc, "(sleep 0.001; echo late) &", timeout=10)
            assert content["status"] == "ok"
        time.sleep(0.2)
        # what came between cells is dropped; bash's own job notices ("[1]+ Done ...") come with its next prompt
        assert run(kc, "echo next")[1].startswith("next\n")


def test_nonzero_exit_status_is_an_error_reply() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        content, text, msgs = run(kc, "echo before; false")
        assert text == "before\n"
        assert content["status"] == "error" and content["ename"] == "ExitStatus" and content["evalue"] == "exit status 1"
        assert [m["content"]["evalue"] for m in msgs if m["msg_type"] == "error"] == ["exit status 1"]
        content, text, _ = run(kc, "(exit 3)")
        assert content["evalue"] == "exit status 3"
        content, text, _ = run(kc, "echo $?")  # the status of the user's last command, not of the kernel's
        assert content["status"] == "ok" and text == "3\n"


def test_python_exception_is_an_error_reply_named_after_it() -> None:
    with running_kernel("kkw-python") as (km, kc):
        content, text, _ = run(kc, "x = 1\n1 / 0")
        assert content["status"] == "error" and content["ename"] == "ZeroDivisionError"
        assert content["evalue"] == "division by zero"
        assert 'File "<cell>", line 2' in text and "ZeroDivisionError: division by zero" in text
        content, text, _ = run(kc, "x")
        assert content["status"] == "ok" and text == "1\n"


def test_read_goes_over_the_stdin_channel() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        msg_id = kc.execute('read -p "name? " who; echo "hello $who"', allow_stdin=True)
        request = kc.get_stdin_msg(timeout=10)
        assert request["msg_type"] == "input_request"
        assert request["content"]["prompt"] == "name? " and request["content"]["password"] is False
        kc.input("world")
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"
        assert stdout_text(iopub_for(kc, msg_id)) == "hello world\n"
        # the frontend's end-of-file ("\x04", jupyter_console's Ctrl-D) is the program's end-of-file
        msg_id = kc.execute('read -p "more? " rest; echo "[$rest] $?"', allow_stdin=True)
        assert kc.get_stdin_msg(timeout=10)["content"]["prompt"] == "more? "
        kc.input("\x04")
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"
        assert stdout_text(iopub_for(kc, msg_id)).endswith("[] 1\n")
        # python's input() too
    with running_kernel("kkw-python") as (km, kc):
        msg_id = kc.execute("print(input('n: ') * 2)", allow_stdin=True)
        assert kc.get_stdin_msg(timeout=10)["content"]["prompt"] == "n: "
        kc.input("ab")
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"
        assert stdout_text(iopub_for(kc, msg_id)) == "abab\n"
        # getpass reads /dev/tty, not stdin; a password prompt asks the frontend to hide the input
        msg_id = kc.execute("import getpass; print(getpass.getpass('Password: ') == 'secret')", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=10)["content"]
        assert request == {"prompt": "Password: ", "password": True}
        kc.input("secret")
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"
        assert stdout_text(iopub_for(kc, msg_id)) == "\nTrue\n"


def test_a_silent_command_never_asks_for_input() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        msg_id = kc.execute("sleep 1.5; echo done", allow_stdin=True)
        assert reply_to(kc, msg_id)["content"]["status"] == "ok"
        with pytest.raises(Empty):  # 1.5 s of silence, looked at every 50-250 ms: never an input_request
            kc.get_stdin_msg(timeout=0.2)
        assert stdout_text(iopub_for(kc, msg_id)) == "done\n"


def test_input_without_allow_stdin_gets_end_of_file() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        content, text, msgs = run(kc, "read x", allow_stdin=False, timeout=10)
        assert "waiting for input" in stdout_text(msgs, "stderr")
        assert content["status"] == "error" and content["evalue"] == "exit status 1"  # read failed at end-of-file
        content, text, msgs = run(kc, 'read -p "q? " x || echo "no input"', allow_stdin=False, timeout=10)
        assert text == "q? no input\n"
        content, text, _ = run(kc, "echo still here")
        assert text == "still here\n"


# ---- interrupts, death ---------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["kkw-bash", "kkw-bash-message", "kkw-python", "kkw-python-message"])
def test_interrupt_reaches_the_child_and_keeps_state(kernel: str) -> None:
    python = "python" in kernel
    with running_kernel(kernel) as (km, kc):
        run(kc, "kept = 7" if python else "kept=7")
        msg_id = kc.execute("import time; print('sleeping', flush=True); time.sleep(30)" if python else "echo sleeping; sleep 30")
        output = kc.get_iopub_msg(timeout=10)
        while output["msg_type"] != "stream":
            output = kc.get_iopub_msg(timeout=10)
        started = time.monotonic()
        km.interrupt_kernel()
        reply = reply_to(kc, msg_id, timeout=10)
        assert time.monotonic() - started < 2
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        iopub_for(kc, msg_id)
        content, text, _ = run(kc, "print(kept)" if python else "echo $kept")
        assert content["status"] == "ok" and text == "7\n"


def test_init_runs_once_and_cannot_undo_the_unique_prompt() -> None:
    """An --init that sets its own prompt (as a sourced ~/.bashrc does) runs before the prompt change."""
    with running_kernel("kkw-bash-init") as (km, kc):
        content, text, _ = run(kc, 'echo "$greeting / $KKW_VAR"')
        assert content["status"] == "ok" and text == "hello / from env\n"
        assert run(kc, "for i in 1 2\ndo echo $i\ndone")[1] == "1\n2\n"


@pytest.mark.parametrize("how", ["shutdown", "kill"])
def test_the_repl_ends_with_the_kernel(how: str) -> None:
    """Shut down politely, or SIGKILL the kernel: its pty closes and the REPL does not stay orphaned."""
    with running_kernel("kkw-python") as (km, kc):
        info = reply_to(kc, kc.kernel_info())["content"]
        repl = psutil.Process(info["kernelkit_wrap"]["pid"])
        assert repl.is_running() and info["kernelkit_wrap"]["error"] == ""
        if how == "kill":
            psutil.Process(kernel_pid(km)).kill()
    repl.wait(10)  # psutil.TimeoutExpired if the REPL outlives its kernel
    assert not repl.is_running()


def test_exit_then_a_new_cell_starts_a_fresh_repl() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        run(kc, "x=1")
        content, text, msgs = run(kc, "exit 0")
        assert content["status"] == "ok"
        assert "bash exited with status 0; the next cell starts a new one" in stdout_text(msgs, "stderr")
        content, text, _ = run(kc, "echo \"x=[$x]\"")
        assert content["status"] == "ok" and text == "x=[]\n"
        content, text, msgs = run(kc, "kill -9 $$")
        assert content["status"] == "error" and content["ename"] == "ReplDied" and "signal 9" in content["evalue"]
        assert run(kc, "echo back")[1] == "back\n"


@pytest.mark.slow
def test_ten_megabytes_exact_with_bounded_memory() -> None:
    line = "0123456789" * 9 + "abcdefghi\n"  # 100 bytes
    count = 100_000
    with running_kernel("kkw-bash") as (km, kc):
        process = psutil.Process(kernel_pid(km))
        before = process.memory_info().rss
        content, text, msgs = run(kc, f"yes {line.strip()} | head -n {count}", timeout=120)
        assert content["status"] == "ok"
        assert len(text) == len(line) * count and text == line * count
        largest = max(len(m["content"]["text"]) for m in msgs if m["msg_type"] == "stream")
        assert largest <= 2 * 256 * 1024  # the kernel sends at most 256 KB at a time; the engine may join two
        assert process.memory_info().rss - before < 40 * 2**20


# ---- completion, is_complete, inspect ------------------------------------------------------


def _complete(kc, code: str, cursor: int | None = None) -> dict:
    msg_id = kc.complete(code, len(code) if cursor is None else cursor)
    return reply_to(kc, msg_id)["content"]


def _is_complete(kc, code: str) -> str:
    return reply_to(kc, kc.is_complete(code))["content"]["status"]


@pytest.mark.parametrize(("profile", "setup", "code", "expected"), [
    ("bash", "my_var=1; my_func() { :; }", "my_fu", "my_func"),
    ("bash", "", "ech", "echo"),
    ("bash", "my_var=1", "echo $my_v", "$my_var"),
    ("zsh", "", "ech", "echo"),
    ("python", "import os\nsome_name = 1", "os.pa", "os.path"),
    ("python", "some_name = 1", "some_n", "some_name"),
    ("lua", "tbl = {alpha = 1}", "tbl.al", "tbl.alpha"),
    ("node", "globalThis.someName = 1", "someN", "someName"),
    ("sqlite3", "create table people(x);", "peo", "people"),
])
def test_completion_asks_the_repl(profile: str, setup: str, code: str, expected: str) -> None:
    with running_kernel(f"kkw-{profile}") as (km, kc):
        if setup:
            assert run(kc, setup)[0]["status"] == "ok"
        content = _complete(kc, code)
        assert expected in content["matches"], content
        assert content["cursor_end"] == len(code)
        replaced = code[content["cursor_start"]:]
        assert all(m.startswith(replaced) for m in content["matches"])
        if profile in ("bash", "python"):  # completion does not disturb the REPL's state
            assert run(kc, "echo $?" if profile == "bash" else "print('ok')")[1] == ("0\n" if profile == "bash" else "ok\n")


def test_is_complete_and_inspect() -> None:
    with running_kernel("kkw-bash") as (km, kc):
        assert _is_complete(kc, "echo hi") == "complete"
        assert _is_complete(kc, "for i in 1 2") == "incomplete"
        assert _is_complete(kc, "echo 'open") == "incomplete"
        assert _is_complete(kc, "fi") == "invalid"
        reply = reply_to(kc, kc.inspect("echo", 2))["content"]
        assert reply["found"] and "echo is a shell builtin" in reply["data"]["text/plain"]
        content, text, _ = run(kc, "echo 'open")  # an incomplete cell is cancelled, the shell survives
        assert content["status"] == "error" and content["ename"] == "IncompleteInput"
        assert run(kc, "echo fine")[1] == "fine\n"
    with running_kernel("kkw-python") as (km, kc):
        assert _is_complete(kc, "x = 1") == "complete"
        assert _is_complete(kc, "def f():") == "incomplete"
        assert _is_complete(kc, "x = )") == "invalid"
        reply = reply_to(kc, kc.inspect("len", 3))["content"]
        assert reply["found"] and "Return the number of items" in reply["data"]["text/plain"]
    with running_kernel("kkw-sqlite3") as (km, kc):
        assert _is_complete(kc, "select 1") == "incomplete"
        assert _is_complete(kc, "select 1;") == "complete"
    with running_kernel("kkw-lua") as (km, kc):
        assert _is_complete(kc, "for i = 1, 2 do") == "incomplete"
        assert _is_complete(kc, "x = 1") == "complete"


# ---- Python API, wrap run, CLI, doctor -------------------------------------------------------


def test_subclass_overrides_sending_and_cleaning() -> None:
    with running_kernel("kkw-shouting") as (km, kc):
        content, text, _ = run(kc, "echo hello")
        assert content["status"] == "ok" and text == "hell0\n"
        info = reply_to(kc, kc.kernel_info())["content"]
        assert info["implementation"] == "shouting-bash" and info["language_info"]["name"] == "bash"


def test_wrap_run_serves_without_installing() -> None:
    with running_kernel("kkw-run") as (km, kc):
        content, text, _ = run(kc, "print(6 * 7)")
        assert text == "42\n"


def kk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernelkit", *args], capture_output=True, text=True, timeout=60)


def test_cli_install_writes_everything_into_argv() -> None:
    done = kk("wrap", "install", "bash", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout)["spec"]
    assert spec["argv"][:6] == [sys.executable, "-m", "kernelkit_launcher", wrap.TARGET, "-f", "{connection_file}"]
    assert spec["argv"][6:] == ["--profile", "bash"] and spec["language"] == "bash"
    done = kk("wrap", "install", "--name", "myrepl", "--prompt", "{token}>", "--prompt-change", "PS1='{token}>'",
              "--env", "A=1", "--interrupt-mode", "message", "--init", "cd /tmp", "--dry-run", "--json",
              "--", "bash", "--norc", "--json", "--", "-x")
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout)["spec"]
    tail = spec["argv"][spec["argv"].index("--"):]
    assert tail == ["--", "bash", "--norc", "--json", "--", "-x"]  # verbatim after the first --
    assert spec["env"] == {"A": "1"} and spec["interrupt_mode"] == "message"
    assert ["--prompt", "{token}>"] == spec["argv"][6:8]


@pytest.mark.parametrize(("args", "message"), [
    (["fish"], "no built-in profile 'fish'"),
    (["--", "irb"], "give --prompt REGEX"),
    (["--prompt", ">", "--", "no-such-program-kk"], "'no-such-program-kk' is not on PATH"),
    (["bash", "--interrupt-mode", "never"], "invalid choice"),
])
def test_cli_install_errors_are_one_clear_line(args: list[str], message: str) -> None:
    done = kk("wrap", "install", "--dry-run", *args)
    assert done.returncode in (1, 2) and message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_help_and_dashdash_elsewhere() -> None:
    for args in (["wrap", "--help"], ["wrap", "install", "--help"], ["wrap", "run", "--help"]):
        done = kk(*args)
        assert done.returncode == 0 and "usage:" in done.stdout
    done = kk("wrap")
    assert done.returncode == 2 and "install" in done.stderr and not done.stdout
    done = kk("list", "--", "x")
    assert done.returncode == 2


def test_the_python_profile_gets_a_name_frontends_start() -> None:
    """jupyter_client's KernelManager turns the name ``python`` into ``python3`` (ipykernel)."""
    done = kk("wrap", "install", "python", "--json")
    assert done.returncode == 0, done.stderr
    name = json.loads(done.stdout)["name"]
    assert name == "python-kernel"
    manager = KernelManager(kernel_name=name)
    assert manager.kernel_name == name and wrap.TARGET in manager.kernel_spec.argv
    done = kk("wrap", "install", "bash", "--name", "python", "--dry-run")
    assert done.returncode == 1 and "jupyter_client starts the kernel named 'python3'" in done.stderr


def test_doctor_understands_wrapped_kernels() -> None:
    report = doctor.diagnose(kernelspecs.get("kkw-bash"))
    assert report.ok, report.findings
    wrap_findings = [f.message for f in report.findings if f.check == "wrap"]
    assert any(m.startswith("wraps /") and "bash" in m for m in wrap_findings)
    assert any("wrapped REPL started" in m for m in wrap_findings)
    # a program that is gone, and a REPL whose prompt never shows
    folder = install_kernelspec("kkw-broken", argv=[sys.executable, "-m", "kernelkit_launcher", wrap.TARGET, "-f",
                                                    "{connection_file}", "--prompt", "x>", "--", "no-such-repl-kk"])
    report = doctor.diagnose(kernelspecs.load(folder, "kkw-broken"), start=False)
    errors = [f for f in report.findings if f.level == "error" and f.check == "wrap"]
    assert errors and "'no-such-repl-kk' is not on PATH" in errors[0].message
