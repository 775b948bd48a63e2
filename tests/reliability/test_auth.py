"""Authentication: unsigned, wrongly signed, replayed and old-key messages never execute.

The probe is the rk kernel's ``touch PATH`` cell: an attack message would create (or append
to) a file. Shell requests are handled in order, so once the reply to a legitimate request
sent *after* the attacks arrives, every attack has been seen and dropped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from jupyter_client.session import Session

from conftest import JUPYTER_RUNTIME_DIR
from helpers import running_kernel, wait_pid_gone
from relhelpers import ENV, PYTHON, RK, RawClient

from kernelkit.protocol import wire


def touch(client: RawClient, path: Path) -> tuple[str, list[bytes]]:
    return client.frames("execute_request", {"code": f"touch {path}", "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": False})


def settle(client: RawClient, tmp_path: Path) -> None:
    """A legitimate request after the attacks: once it has run, so would have any attack."""
    marker = tmp_path / "legit"
    reply = client.execute(f"touch {marker}")
    assert reply is not None and reply["content"]["status"] == "ok"
    assert marker.exists()


def test_unsigned_and_wrongly_signed_messages_never_execute(tmp_path: Path) -> None:
    with running_kernel(RK) as (km, kc):
        client = RawClient(km.get_connection_info())
        try:
            _, frames = touch(client, tmp_path / "unsigned")
            client.shell.send_multipart([frames[0], b"", *frames[2:]])
            _, frames = touch(client, tmp_path / "zeros")
            client.shell.send_multipart([frames[0], b"0" * len(frames[1]), *frames[2:]])
            stranger = RawClient(km.get_connection_info(), key=os.urandom(32).hex().encode())
            stranger.shell.send_multipart(touch(stranger, tmp_path / "wrong-key")[1])
            # A valid signature, but of another message: the signature does not cover this content.
            _, good = touch(client, tmp_path / "harmless")
            _, evil = touch(client, tmp_path / "swapped")
            client.shell.send_multipart([evil[0], good[1], *evil[2:]])
            # Control takes shutdown requests: an unsigned one must be ignored too.
            msg_id, frames = client.frames("shutdown_request", {"restart": False})
            client.control.send_multipart([frames[0], b"", *frames[2:]])
            settle(client, tmp_path)
            assert client.kernel_info(control=True) is not None, "an unsigned shutdown_request was obeyed"
            stranger.close()
        finally:
            client.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legit"]


def test_replayed_messages_never_execute(tmp_path: Path) -> None:
    target = tmp_path / "once"
    with running_kernel(RK) as (km, kc):
        client = RawClient(km.get_connection_info())
        try:
            msg_id, frames = touch(client, target)
            client.shell.send_multipart(frames)
            assert client.reply_to(client.shell, msg_id) is not None
            for _ in range(3):
                client.shell.send_multipart(frames)  # identical frames: same signature
            # The same signed request from another connection (another identity) is a replay too.
            other = RawClient(km.get_connection_info(), identity=b"eve")
            other.shell.send_multipart(frames)
            settle(client, tmp_path)
            other.close()
        finally:
            client.close()
    assert target.read_text() == "ran\n"


def test_messages_signed_with_an_old_key_never_execute(tmp_path: Path) -> None:
    """Frames captured from an earlier kernel (an old key) are sent to its successor."""
    with running_kernel(RK) as (km, kc):
        old = RawClient(km.get_connection_info())
        _, captured = touch(old, tmp_path / "old-key")
        old_key = km.session.key
        old.close()
    with running_kernel(RK) as (km, kc):
        assert km.session.key != old_key
        client = RawClient(km.get_connection_info())
        try:
            client.shell.send_multipart(captured)
            old = RawClient(km.get_connection_info(), key=old_key)
            old.shell.send_multipart(touch(old, tmp_path / "old-key-fresh")[1])
            old.close()
            settle(client, tmp_path)
        finally:
            client.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legit"]


def test_verify_uses_compare_digest() -> None:
    """Constant time by construction (see test_fuzz_wire for the spy): no ``==`` on signatures."""
    import inspect

    assert "hmac.compare_digest" in inspect.getsource(wire.Signer.verify)


def test_an_empty_key_prints_a_warning_at_start(tmp_path: Path) -> None:
    conn = tmp_path / "no-key.json"
    conn.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1", "key": "", "signature_scheme": "hmac-sha256",
                                "shell_port": 0, "iopub_port": 0, "stdin_port": 0, "control_port": 0, "hb_port": 0}))
    proc = subprocess.Popen([PYTHON, "-X", "faulthandler", "-m", "rk_kernel", "-f", str(conn)], env={**os.environ, **ENV},
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "no key" in line and "not signed" in line, line
        # Unsigned messages are accepted without a key (that is what the warning is about).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and json.loads(conn.read_text())["shell_port"] == 0:
            time.sleep(0.05)
        client = RawClient(json.loads(conn.read_text()), key=b"")
        try:
            assert client.kernel_info() is not None
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait()
            print(proc.stderr.read())
            raise
        assert code == 0
        proc.stderr.close()
