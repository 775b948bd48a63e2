"""Starting kernels by hand: ``kernelkit run`` / ``Kernel.launch()`` without a frontend, and the CLI basics."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
import zipapp
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

import kernelkit

KERNELKIT = [sys.executable, "-m", "kernelkit"]


def run_cli(*args: str, timeout: float = 30, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KERNELKIT, *args], capture_output=True, text=True, timeout=timeout, input=stdin)


def start_without_connection_file(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """Start the echo kernel with no -f and read the attach hint it prints."""
    proc = subprocess.Popen(
        [*KERNELKIT, "run", "kernelkit.kernels.echo"], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stderr is not None
    lines = [proc.stderr.readline(), proc.stderr.readline()]
    match = re.search(r"--existing (\S+\.json)", "".join(lines))
    assert match, f"no attach hint in {lines!r}"
    return proc, Path(match.group(1))


def test_run_without_connection_file_writes_a_private_one_and_serves(tmp_path: Path) -> None:
    proc, path = start_without_connection_file(tmp_path)
    try:
        assert path.parent == Path(os.environ["JUPYTER_RUNTIME_DIR"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        client = BlockingKernelClient(connection_file=str(path))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=10)
        outputs: list[dict] = []
        reply = client.execute_interactive("attached", timeout=10, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"] == ["attached"]
        client.shutdown()
        client.stop_channels()
        assert proc.wait(timeout=10) == 0
        assert not path.exists(), "the connection file the kernel created must go with it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_terminal_kernel_explains_ctrl_c_once_and_ctrl_backslash_removes_its_file(tmp_path: Path) -> None:
    """``python -m kernelkit_launcher TARGET`` from a terminal: Ctrl-C (SIGINT) says how to stop it, once,
    and the kernel keeps serving; Ctrl-\\ (SIGQUIT) stops it and removes the connection file it wrote."""
    proc = subprocess.Popen([sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.echo"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        match = re.search(r"--existing (\S+\.json)", "".join(lines))
        assert match, f"no attach hint in {lines!r}"
        path = Path(match.group(1))
        client = BlockingKernelClient(connection_file=str(path))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=10)
            for _ in range(3):
                proc.send_signal(signal.SIGINT)
                time.sleep(0.2)
            reply = client.execute_interactive("still here", timeout=10, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", "Ctrl-C must not stop or break an idle kernel"
        finally:
            client.stop_channels()
        assert proc.poll() is None
        proc.send_signal(signal.SIGQUIT)
        assert proc.wait(timeout=10) == 0
        assert not path.exists(), "Ctrl-\\ left the connection file behind"
        rest = proc.stderr.read()
        assert rest.count("Ctrl-C interrupts a running cell but does not stop this kernel") == 1, rest
        assert f"kill {proc.pid}" in rest and "Ctrl-\\" in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_terminal_kernel_ctrl_c_during_a_cell_interrupts_it_without_the_stop_hint(tmp_path: Path) -> None:
    """Ctrl-C while a cell runs is an interrupt, not a question about stopping: no hint then."""
    from conftest import TEST_KERNEL_ENV

    path = os.pathsep.join(filter(None, [TEST_KERNEL_ENV["PYTHONPATH"], os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "kernelkit_launcher", "sleepy_kernel"], stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": path})
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        match = re.search(r"--existing (\S+\.json)", "".join(lines))
        assert match, f"no attach hint in {lines!r}"
        client = BlockingKernelClient(connection_file=match.group(1))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=10)
            msg_id = client.execute("30")
            while True:  # the cell is running once it has printed
                msg = client.get_iopub_msg(timeout=10)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                    break
            proc.send_signal(signal.SIGINT)
            reply = client.get_shell_msg(timeout=10)
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        finally:
            client.stop_channels()
        proc.send_signal(signal.SIGQUIT)
        assert proc.wait(timeout=10) == 0
        assert "Ctrl-C interrupts" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kernel_given_a_connection_file_leaves_it_on_ctrl_backslash(tmp_path: Path) -> None:
    """A frontend owns the file it passes with -f: SIGQUIT must not remove it (and prints no terminal hint)."""
    from jupyter_client.connect import write_connection_file

    path = tmp_path / "kernel.json"
    write_connection_file(str(path))
    import resource

    def no_core_dump() -> None:  # SIGQUIT's default action dumps core: slow where cores are kept
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)  # not ignored as inherited from a shell (su -c)

    proc = subprocess.Popen([sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.echo", "-f", str(path)],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, preexec_fn=no_core_dump)
    try:
        client = BlockingKernelClient(connection_file=str(path))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=10)
        finally:
            client.stop_channels()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGQUIT)
        code = proc.wait(timeout=10)
        assert code == -signal.SIGQUIT, code  # the default action: the kernel installs no handler here
        assert path.exists()
        assert proc.stderr is not None and "Ctrl-C interrupts" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_binds_loopback_only(tmp_path: Path) -> None:
    import json

    proc, path = start_without_connection_file(tmp_path)
    try:
        info = json.loads(path.read_text())
        assert info["ip"] == "127.0.0.1" and info["transport"] == "tcp"
        assert info["key"] and info["signature_scheme"] == "hmac-sha256"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean exit


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
        ("kernelkit.kernels.echo:Nope", "no Kernel subclass named 'Nope'"),
        ("kernelkit.protocol.wire", "kernelkit.protocol.wire defines no Kernel subclass; define one in it"),
        ("/nonexistent/kernel.py", "does not exist"),
    ],
)
def test_run_bad_target_is_one_clear_line(target: str, message: str) -> None:
    result = run_cli("run", target)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_missing_or_corrupt_connection_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    result = run_cli("run", "kernelkit.kernels.echo", "-f", str(corrupt))
    assert result.returncode == 1
    assert "is not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_a_kernel_run_as_a_folder_or_zip_file_shows_its_help(tmp_path: Path) -> None:
    """``python FOLDER`` / ``python APP.pyz``: ``__main__`` has no package to name in the help."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("from kernelkit.kernels.echo import EchoKernel\n\nEchoKernel.launch()\n")
    zipapp.create_archive(app, tmp_path / "app.pyz")
    for target in (app, tmp_path / "app.pyz"):
        result = subprocess.run([sys.executable, str(target), "--help"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and result.stdout.startswith(f"usage: {target.name} "), result


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.strip() == f"kernelkit {kernelkit.__version__}"
    for args in (["--help"], ["run", "--help"], ["exec", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0 and "usage: kernelkit" in result.stdout
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2


@pytest.mark.parametrize(("args", "usage"), [
    (["--bogus"], "kernelkit"), ([], "kernelkit"), (["install", "--bogus", "x"], "kernelkit install"),
    (["list", "--bogus"], "kernelkit list"), (["wrap", "install", "--bogus"], "kernelkit wrap install"),
])
def test_usage_errors_go_to_stderr_with_the_subcommands_usage(args: list[str], usage: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and not result.stdout, result
    assert result.stderr.startswith(f"usage: {usage} ")
    if args:
        assert f"{usage}: error: unrecognized arguments: --bogus" in result.stderr


@pytest.mark.parametrize("value", ["-1", "0", "soon", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(value: str) -> None:
    for command in ("exec", "doctor", "test", "bench"):
        result = run_cli(command, "--timeout", value, "echo", *(["1"] if command == "exec" else []))
        assert result.returncode == 2, result
        assert f"kernelkit {command}: error: argument --timeout: {value!r} is not a positive number" in result.stderr


def test_exec_runs_code_through_an_installed_kernel() -> None:
    from conftest import ECHO

    result = run_cli("exec", ECHO, "hello, kernel")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, kernel\n"


def test_exec_says_what_a_terminal_cannot_show() -> None:
    from conftest import CALC

    result = run_cli("exec", CALC, "display({'text/html': '<b>rich</b>', 'image/png': 'iVBORw0KGgo='})",
                     "display({'text/html': '<b>x</b>', 'text/plain': 'x, in plain text'})")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "x, in plain text\n"
    assert result.stderr.count("[image/png, text/html output: not shown in a terminal]") == 1, result.stderr


def test_exec_answers_input_at_the_end_of_its_stdin_with_end_of_file() -> None:
    from conftest import CALC

    result = run_cli("exec", CALC, "print(input('first? '))", "name = input('name? ')", stdin="ada\n")
    assert result.returncode == 1 and "kernelkit/cli" not in result.stderr
    assert "ada" in result.stdout and "EOFError" in result.stderr, result


def test_exec_names_a_reply_status_that_is_neither_ok_nor_error(tmp_path: Path) -> None:
    kernel = tmp_path / "status_kernel.py"
    kernel.write_text(
        "from kernelkit import Kernel\n\n\nclass StatusKernel(Kernel):\n"
        "    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):\n"
        "        return {'status': code, 'execution_count': self.execution_count}\n"
    )
    assert run_cli("install", str(kernel), "--name", "kk-status").returncode == 0
    result = run_cli("exec", "kk-status", "ok", "weird")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "kernelkit: the kernel replied with status 'weird' (not ok, not error)\n", result


def test_exec_json_and_unknown_kernel() -> None:
    import json

    from conftest import ECHO

    result = run_cli("exec", "--json", ECHO, "one", "two")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["reply"]["execution_count"] for r in records] == [1, 2]
    assert [r["outputs"][-1]["content"]["text"] for r in records] == ["one", "two"]
    missing = run_cli("exec", "no-such-kernel", "x")
    assert missing.returncode == 1 and "no-such-kernel" in missing.stderr and "Traceback" not in missing.stderr


def test_ipc_transport_through_jupyter_client(tmp_path: Path) -> None:
    """jupyter_client's ipc transport: the kernel binds Unix sockets at ``{ip}-{port}``."""
    from jupyter_client import KernelManager

    from conftest import ECHO

    km = KernelManager(kernel_name=ECHO, transport="ipc", ip=str(tmp_path / "kk"))
    km.start_kernel()
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=20)
        outputs: list[dict] = []
        reply = kc.execute_interactive("over ipc", timeout=10, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"] == ["over ipc"]
        assert sorted(p.name for p in tmp_path.glob("kk-*")) == sorted(f"kk-{n}" for n in km.ports)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_positional_arguments_are_the_apps_extra_args_as_in_ipykernel(tmp_path) -> None:
    """``jupyter run --kernel K FILE`` passes FILE to the kernel; ipykernel keeps it in ``extra_args``."""
    from kernelkit.kernel.app import parse_kernel_args

    args = parse_kernel_args(["-f", str(tmp_path / "k.json"), "notes.txt", "--IPKernelApp.x=1"])
    assert args.extra_args == ["notes.txt"]
    with pytest.raises(SystemExit):
        parse_kernel_args(["--no-such-option"])


def test_the_usual_argv_is_read_as_argparse_reads_it(tmp_path) -> None:
    """``-f FILE`` skips argparse (about 3 ms of every start): it must mean exactly the same."""
    import argparse

    from kernelkit.kernel import app
    from kernelkit.kernels.echo import EchoKernel

    argv = ["-f", str(tmp_path / "k.json")]
    fast = app._usual_argv(argv, EchoKernel)
    parser = app.kernel_arguments(argparse.ArgumentParser())
    slow = parser.parse_args(argv)
    slow.extra_args = []
    assert fast is not None and vars(fast) == vars(slow)
    assert app._usual_argv([*argv, "--parent", "1"], EchoKernel) is None  # anything else: argparse

    class WithOptions(EchoKernel):
        @classmethod
        def add_arguments(cls, parser) -> None:
            parser.add_argument("--database", default=":memory:")

    assert app._usual_argv(argv, WithOptions) is None
    assert app.parse_kernel_args(argv, WithOptions).database == ":memory:"
