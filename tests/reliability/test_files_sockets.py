"""Connection files (0600 in a 0700 folder), loopback-only binding, and clear start-up errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import JUPYTER_RUNTIME_DIR
from helpers import kernel_pid, running_kernel
from relhelpers import ENV, PYTHON, RK, RawClient

from kernelkit.transport import connection

KERNEL = [PYTHON, "-m", "rk_kernel"]


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*KERNEL, *args], env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def listening(pid: int) -> list[tuple[str, int]]:
    return [c.laddr for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        proc.stdout.close()
        proc.stderr.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_kernel_creates_its_connection_file_0600_in_a_new_0700_folder_and_binds_loopback(tmp_path: Path) -> None:
    conn = tmp_path / "new-folder" / "kernel.json"
    proc = spawn("-f", str(conn))
    try:
        wait_for(conn.exists)
        assert mode(conn) == 0o600
        assert mode(conn.parent) == 0o700
        info = json.loads(conn.read_text())
        assert info["ip"] == "127.0.0.1"
        wait_for(lambda: len(listening(proc.pid)) == 5)
        assert {ip for ip, _ in listening(proc.pid)} == {"127.0.0.1"}
        assert sorted(port for _, port in listening(proc.pid)) == sorted(info[f"{c}_port"] for c in connection.CHANNELS)
        client = RawClient(info)
        assert client.kernel_info() is not None
        client.close()
    finally:
        assert stop(proc) == 0
    assert not conn.exists(), "the kernel created this file, so it removes it at exit"


def test_without_f_the_file_goes_to_the_runtime_dir_0600() -> None:
    before = set(JUPYTER_RUNTIME_DIR.glob("kernel-*.json"))
    proc = spawn()
    try:
        wait_for(lambda: set(JUPYTER_RUNTIME_DIR.glob("kernel-*.json")) - before)
        (conn,) = set(JUPYTER_RUNTIME_DIR.glob("kernel-*.json")) - before
        # jupyter_core also sets the sticky bit on the runtime dir (0o1700)
        assert mode(conn) == 0o600 and mode(conn.parent) & 0o777 == 0o700
        wait_for(lambda: len(listening(proc.pid)) == 5)
        assert {ip for ip, _ in listening(proc.pid)} == {"127.0.0.1"}
    finally:
        assert stop(proc) == 0


def test_connection_write_is_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = connection.write(connection.ConnectionInfo(), tmp_path / "deep" / "er" / "k.json")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_kernel_manager_kernels_listen_on_loopback_only() -> None:
    with running_kernel(RK) as (km, kc):
        pid = kernel_pid(km)
        wait_for(lambda: len(listening(pid)) == 5)
        assert {ip for ip, _ in listening(pid)} == {"127.0.0.1"}
        assert mode(Path(km.connection_file)) == 0o600


@pytest.mark.parametrize("channel", ["shell", "hb"])
def test_a_port_in_use_is_a_clear_error_and_nonzero_exit(tmp_path: Path, channel: str) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    info = connection.ConnectionInfo()
    info.set_port(channel, port)
    conn = connection.write(info, tmp_path / "kernel.json")
    try:
        proc = spawn("-f", str(conn))
        out, err = proc.communicate(timeout=30)
    finally:
        taken.close()
    assert proc.returncode != 0
    assert f"cannot bind the {channel} channel" in err and str(port) in err, err
    assert "Traceback" not in err


BAD_FILES = {
    "not-json": "{ this is not json",
    "empty": "",
    "json-array": "[1, 2, 3]",
    "string-port": json.dumps({"shell_port": "8888"}),
    "port-out-of-range": json.dumps({"iopub_port": 70000}),
    "bool-port": json.dumps({"hb_port": True}),
    "bad-transport": json.dumps({"transport": "udp"}),
    "key-not-string": json.dumps({"key": 42}),
    "unknown-scheme": json.dumps({"key": "k", "signature_scheme": "hmac-nope"}),
    "not-utf8": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_corrupt_connection_file_is_a_clear_error_and_nonzero_exit(tmp_path: Path, name: str) -> None:
    conn = tmp_path / f"{name}.json"
    content = BAD_FILES[name]
    conn.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = spawn("-f", str(conn))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "error" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    if name not in ("unknown-scheme",):
        assert str(conn) in err, err


def test_a_connection_file_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    """A missing file is created (as ipykernel does); where that is impossible, say so and exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = spawn("-f", str(blocker / "kernel.json"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "error" in err and "Traceback" not in err, err
