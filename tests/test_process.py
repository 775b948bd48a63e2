"""The tools' one kernelspec-to-process path and one client, checked against jupyter_client as the oracle.

A kernelspec whose "kernel" is a script that records what it was started with (argv, env,
cwd, process group) is started both by ``jupyter_client.KernelManager`` and by
:class:`kernelkit.tools.process.KernelProcess`: both must give the process the same things.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import zmq
from conftest import ECHO, JUPYTER_RUNTIME_DIR, SLEEPY_MESSAGE, SLEEPY_SIGNAL, install_kernelspec

from kernelkit.protocol.wire import DELIMITER, Signer
from kernelkit.tools import kernelspecs
from kernelkit.tools.client import KernelClient
from kernelkit.tools.process import KernelDiedError, KernelProcess, bare_pythons, format_argv, kernel_env
from kernelkit.transport.connection import ConnectionInfo

RECORDER = r"""
import json, os, sys
out = os.environ["KK_RECORD_TO"]
json.dump({"executable": sys.executable, "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ),
           "pgid_is_pid": os.getpgid(0) == os.getpid(), "stdin_is_pipe": __import__("stat").S_ISFIFO(os.fstat(0).st_mode)},
          open(out, "w"))
"""


def _recorder_spec(name: str, tmp: Path, python: str, env: dict[str, str]) -> Path:
    script = tmp / "record.py"
    script.write_text(RECORDER)
    return install_kernelspec(
        name,
        argv=[python, str(script), "{connection_file}", "{resource_dir}/x", "{prefix}", "{unknown}", "~/y"],
        env=env,
        language="python",
    )


def _record(path: Path) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"the recorder wrote nothing to {path}")


@pytest.mark.parametrize(
    "python",
    ["python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}", "absolute"],
)
def test_same_argv_env_cwd_as_jupyter_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python: str) -> None:
    from jupyter_client import KernelManager

    name = f"kk-recorder-{python.replace('.', '-')}"
    monkeypatch.setenv("KK_BASE", "base-value")
    monkeypatch.setenv("PYTHONEXECUTABLE", "/nonexistent/python")  # jupyter_client drops it for python kernels
    env = {"KK_EXPANDED": "${KK_BASE}/sub", "KK_UNKNOWN": "${KK_NOT_SET_ANYWHERE}", "KK_PLAIN": "plain"}
    resource_dir = _recorder_spec(name, tmp_path, sys.executable if python == "absolute" else python, env)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    records = {}
    for who in ("jupyter_client", "kernelkit"):
        out = tmp_path / f"{who}.json"
        monkeypatch.setenv("KK_RECORD_TO", str(out))
        if who == "jupyter_client":
            km = KernelManager(kernel_name=name)
            km.start_kernel(cwd=str(cwd))
            records[who] = _record(out)
            connection_file = km.connection_file
            km.shutdown_kernel(now=True)
            km.cleanup_resources()
        else:
            with KernelProcess(kernelspecs.get(name), cwd=cwd) as kernel:
                records[who] = _record(out)
                connection_file = str(kernel.connection_file)
        assert records[who]["argv"][0].endswith("record.py")
        assert records[who]["argv"][1] == os.path.realpath(connection_file)
        records[who]["argv"][1] = "{connection_file}"
    ours, theirs = records["kernelkit"], records["jupyter_client"]
    assert ours["executable"] == theirs["executable"] == sys.executable
    assert ours["argv"] == theirs["argv"]
    assert ours["argv"][2:] == [f"{resource_dir}/x", sys.prefix, "{unknown}", os.path.expanduser("~/y")]
    assert ours["cwd"] == theirs["cwd"] == str(cwd)
    for key in ("KK_EXPANDED", "KK_UNKNOWN", "KK_PLAIN", "KK_BASE", "JPY_PARENT_PID"):
        assert ours["env"].get(key) == theirs["env"].get(key), key
    assert ours["env"]["KK_EXPANDED"] == "base-value/sub"
    assert ours["env"]["KK_UNKNOWN"] == "${KK_NOT_SET_ANYWHERE}"
    assert "PYTHONEXECUTABLE" not in ours["env"] and "PYTHONEXECUTABLE" not in theirs["env"]
    assert ours["env"]["JPY_PARENT_PID"] == str(os.getpid())
    assert ours["pgid_is_pid"] and theirs["pgid_is_pid"]  # a new session: SIGINT goes to the whole group
    assert ours["stdin_is_pipe"] and theirs["stdin_is_pipe"]


def test_format_argv_matches_jupyter_client_format_kernel_cmd(tmp_path: Path) -> None:
    from jupyter_client import KernelManager

    other_minor = f"python{sys.version_info[0]}.{sys.version_info[1] + 1}"
    argv = ["python3", "-m", "x", "-f", "{connection_file}", "--res={resource_dir}", "{prefix}/bin", "{nope}", "{}"]
    for first in ("python", "python3", other_minor, "/abs/python"):
        folder = install_kernelspec("kk-format", argv=[first, *argv[1:]])
        km = KernelManager(kernel_name="kk-format")
        km.connection_file = str(tmp_path / "c.json")
        km._launch_args = {}
        assert format_argv([first, *argv[1:]], km.connection_file, folder) == km.format_kernel_cmd()
    assert other_minor not in bare_pythons() and "python" in bare_pythons()


def test_kernel_env_is_the_launchers_plus_the_expanded_spec_env() -> None:
    env = kernel_env(
        {"A": "${HOME_X}:$HOME_X", "B": "$$literal"}, "text", base={"HOME_X": "/h", "PYTHONEXECUTABLE": "p"}
    )
    assert env["A"] == "/h:/h" and env["B"] == "$literal"
    assert env["PYTHONEXECUTABLE"] == "p"  # only Python kernels lose it
    assert "PYTHONEXECUTABLE" not in kernel_env({}, "Python", base={"PYTHONEXECUTABLE": "p"})


def test_missing_interpreter_is_a_kernel_died_error() -> None:
    with pytest.raises(KernelDiedError, match="cannot run /no/such/python"):
        KernelProcess(argv=["/no/such/python", "-f", "{connection_file}"])


@pytest.mark.parametrize("argv", [[], ["/no/such/python", "-f", "{connection_file}"], "closed zmq context"])
def test_a_start_that_fails_leaves_no_connection_file(argv: list[str] | str) -> None:
    """Whatever fails, before the process exists or after: the connection file (it holds the key) is removed."""
    before = set(JUPYTER_RUNTIME_DIR.iterdir())
    if isinstance(argv, list):
        with pytest.raises(KernelDiedError, match="cannot run"):
            KernelProcess(argv=argv)
    else:  # the process starts, then the client cannot be made: the process is killed too
        context = zmq.Context()
        context.term()
        with pytest.raises(zmq.ZMQError):
            KernelProcess(argv=[sys.executable, "-c", "import time; time.sleep(60)"], context=context)
    assert set(JUPYTER_RUNTIME_DIR.iterdir()) == before


def test_kernel_that_exits_reports_its_stderr() -> None:
    kernel = KernelProcess(argv=[sys.executable, "-c", "import sys; sys.exit('broken on purpose')"])
    try:
        with pytest.raises(KernelDiedError) as info:
            kernel.wait_ready(20)
        assert "broken on purpose" in info.value.stderr and info.value.returncode == 1
    finally:
        kernel.stop()
    assert not Path(kernel.connection_file).exists()


@pytest.mark.parametrize("name, mode", [(SLEEPY_SIGNAL, "signal"), (SLEEPY_MESSAGE, "message")])
def test_interrupt_in_the_kernelspecs_mode(name: str, mode: str) -> None:
    with KernelProcess.from_name(name) as kernel:
        assert kernel.interrupt_mode == mode
        kernel.wait_ready(30)
        client = kernel.client
        msg_id = client.send(client.shell, "execute_request", client.execute_content("30"))
        time.sleep(0.5)
        t0 = time.monotonic()
        kernel.interrupt()
        reply, _outputs = client.wait(msg_id, client.shell, timeout=10, alive=kernel.alive)
        assert reply is not None and reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt" and time.monotonic() - t0 < 5
        assert client.execute("0", timeout=10)["content"]["status"] == "ok"  # still usable


def test_exec_start_and_stop_leave_nothing_behind() -> None:
    with KernelProcess.from_name(ECHO) as kernel:
        info = kernel.wait_ready(30)
        assert info["status"] == "ok" and info["language_info"]["name"]
        outputs: list[dict] = []
        reply = kernel.client.execute("hi", on_output=outputs.append)
        assert reply["content"]["status"] == "ok" and [m["msg_type"] for m in outputs][-1] == "stream"
        assert kernel.client.heartbeat()
    assert kernel.process.poll() == 0  # shut down politely, exit code 0
    assert not Path(kernel.connection_file).exists()


# ---- the client: strict out, lenient in --------------------------------------------------------


def _pair() -> tuple[KernelClient, zmq.Socket, zmq.Context]:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    info = ConnectionInfo(shell_port=port, iopub_port=1, stdin_port=2, control_port=3, hb_port=4, key="secret")
    return KernelClient(info, ctx), router, ctx


def test_client_sends_full_signed_headers_and_reconnects_fast() -> None:
    client, router, ctx = _pair()
    try:
        assert client.shell.getsockopt(zmq.RECONNECT_IVL) == 1
        msg_id = client.send(client.shell, "kernel_info_request", {})
        ident, delim, sig, header, parent, meta, content = router.recv_multipart()
        assert delim == DELIMITER and ident == client.session.encode()
        assert Signer("secret").verify(sig, [header, parent, meta, content])
        h = json.loads(header)
        assert set(h) == {"msg_id", "msg_type", "username", "session", "date", "version"}
        assert h["msg_id"] == msg_id and h["version"] == "5.5" and h["date"].endswith("+00:00")
        assert json.loads(parent) == {} and json.loads(content) == {}
    finally:
        client.close()
        ctx.destroy(linger=0)


def test_client_accepts_null_parent_header_and_missing_fields() -> None:
    client, _router, ctx = _pair()
    signer = Signer("secret")
    try:
        parts = [b'{"msg_id": "m1"}', b"null", b"[]", b"null"]
        msg = client.parse([DELIMITER, signer.sign(parts), *parts])
        assert msg is not None
        assert msg["parent_header"] == {} and msg["metadata"] == {} and msg["content"] == {} and msg["msg_type"] == ""
        deep = [b'{"msg_id": "m2"}', b"{}", b"{}", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"]
        assert client.parse([DELIMITER, signer.sign(deep), *deep])["content"] == {}  # a hostile kernel: no crash
        assert client.parse([DELIMITER, b"0" * 64, *parts]) is None  # a wrong signature is dropped
        assert client.parse([DELIMITER, b"", *parts]) is None  # so is an unsigned message when a key is set
        assert client.parse([b"no delimiter", *parts]) is None
    finally:
        client.close()
        ctx.destroy(linger=0)


def test_await_iopub_without_welcome_uses_status_for_a_probe() -> None:
    """The floor kernel (plain PUB, no iopub_welcome, like kernels before 5.5): the status answering a probe counts."""
    from kernelkit.tools.bench import FLOOR_SCRIPT

    install_kernelspec("kk-floor", argv=[sys.executable, FLOOR_SCRIPT, "-f", "{connection_file}"])
    with KernelProcess.from_name("kk-floor") as kernel:
        kernel.wait_ready(30, iopub=False)
        assert kernel.client.await_iopub(30, alive=kernel.alive) == "status"
        seen: list[dict] = []
        reply = kernel.client.execute("hello", timeout=30, on_output=seen.append)
        assert reply["content"]["status"] == "ok"
        assert [m["content"].get("text") for m in seen if m["msg_type"] == "stream"] == ["hello"]
        assert not kernel.client.shell.poll(200)  # the probes' replies were drained, not left for later


def test_signal_group_reaches_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    code = (
        f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    kernel = KernelProcess(argv=[sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(marker.read_text())
    finally:
        kernel.stop(timeout=0.5)
    import psutil

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the group was killed, the child included
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the kernel's child survived stop()")
