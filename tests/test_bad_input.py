"""Hostile and broken input on raw ZeroMQ sockets: the kernel drops or refuses it, logs it, and keeps serving."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq
from conftest import CALC
from helpers import start_kernel, stop_kernel

from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import DELIMITER, Signer
from kernelkit.tools.client import KernelClient
from kernelkit.transport.connection import ConnectionInfo

WAIT = 20_000  # ms for any expected message
QUIET = 700  # ms during which a dropped message must produce no reply


class RawClient(KernelClient):
    """The tools' client, plus the assertions these tests make with it."""

    def __init__(self, info: dict) -> None:
        key = info["key"].decode() if isinstance(info["key"], bytes) else info["key"]  # jupyter_client: bytes
        conn = ConnectionInfo.from_dict({**info, "key": key})
        super().__init__(conn, zmq.Context())
        self.await_iopub(WAIT / 1000)

    def close(self) -> None:
        super().close()
        self.context.destroy(linger=0)

    def reply(self, msg_id: str, timeout: int = WAIT) -> dict:
        msg = self.recv(self.shell, timeout / 1000)
        assert msg is not None, "no message in time"
        assert msg["parent_header"]["msg_id"] == msg_id, (msg["msg_type"], msg["parent_header"])
        return msg

    def iopub_for(self, msg_id: str) -> list[dict]:
        _, outputs = self.wait(msg_id, None, timeout=WAIT / 1000)
        return outputs

    def assert_no_reply(self) -> None:
        if self.shell.poll(QUIET):
            frames = self.shell.recv_multipart()
            pytest.fail(f"a dropped message got a reply: {frames[:6]}")

    def assert_still_serving(self) -> None:
        msg_id = self.send(self.shell, "kernel_info_request")
        assert self.reply(msg_id)["content"]["status"] == "ok"
        msg_id = self.send(self.shell, "execute_request", {"code": "6 * 7", "silent": False})
        reply = self.reply(msg_id)
        assert reply["content"]["status"] == "ok"
        results = [m for m in self.iopub_for(msg_id) if m["msg_type"] == "execute_result"]
        assert results[0]["content"]["data"]["text/plain"] == "42"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("bad-input") / "kernel-stderr.log"
    with open(log_path, "wb") as fh:
        km, kc = start_kernel(CALC, stderr=fh)
    kc.stop_channels()
    info = km.get_connection_info()
    assert info["key"], "these tests need a signing key"
    yield km, info, log_path
    stop_kernel(km, kc)


@pytest.fixture
def raw(kernel):
    _km, info, _ = kernel
    client = RawClient(info)
    yield client
    client.assert_still_serving()
    client.close()


@pytest.fixture
def kernel_log(kernel):
    """Returns a function that waits for ``text`` to appear in the kernel's stderr after this test began."""
    _, _, path = kernel
    start = path.stat().st_size

    def wait_for(text: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = path.read_bytes()[start:].decode("utf-8", "replace")
            if text in new:
                return new
            time.sleep(0.05)
        pytest.fail(f"the kernel did not log {text!r}; it logged:\n{path.read_bytes()[start:].decode('utf-8', 'replace')}")

    return wait_for


def append_cell(path: Path) -> str:
    return f"open({str(path)!r}, 'a').write('x')"


def test_wrong_signature_is_dropped_and_logged(raw, kernel_log) -> None:
    _, frames = raw.frames("kernel_info_request")
    frames[1] = b"0" * len(frames[1])
    raw.shell.send_multipart(frames)
    raw.assert_no_reply()
    kernel_log("dropped a message on shell: invalid signature")


def test_replayed_message_runs_once(raw, kernel_log, tmp_path) -> None:
    target = tmp_path / "ran.txt"
    msg_id, frames = raw.frames("execute_request", {"code": append_cell(target), "silent": False})
    raw.shell.send_multipart(frames)
    assert raw.reply(msg_id)["content"]["status"] == "ok"
    raw.shell.send_multipart(frames)
    raw.assert_no_reply()
    kernel_log("replayed message")
    assert target.read_text() == "x"


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 4])
def test_truncated_frames_are_dropped(raw, kernel_log, keep: int) -> None:
    _, frames = raw.frames("kernel_info_request")
    raw.shell.send_multipart(frames[: 1 + keep])
    raw.assert_no_reply()
    kernel_log("truncated message")


def test_missing_delimiter_is_dropped(raw, kernel_log) -> None:
    _, frames = raw.frames("kernel_info_request")
    raw.shell.send_multipart(frames[1:])
    raw.assert_no_reply()
    kernel_log("no <IDS|MSG> delimiter")


DEEP = b'{"code": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # the JSON decoder recursed past Python's limit


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", DEEP], ids=["syntax", "list", "utf16", "deep"])
def test_bad_json_content_is_dropped(raw, kernel_log, content: bytes) -> None:
    _, frames = raw.frames("execute_request", {"code": "1"})
    parts = [*frames[2:5], content]
    raw.shell.send_multipart([DELIMITER, raw.signer.sign(parts), *parts])
    raw.assert_no_reply()
    kernel_log("dropped a message on shell: message part")


def test_unknown_request_gets_an_error_reply(raw, kernel_log) -> None:
    msg_id = raw.send(raw.shell, "foo_request", {"x": 1})
    reply = raw.reply(msg_id)
    assert reply["msg_type"] == "foo_reply"
    assert reply["content"]["status"] == "error"
    assert "foo_request" in reply["content"]["evalue"]
    kernel_log("unknown message type 'foo_request'")


def test_unknown_non_request_is_only_logged(raw, kernel_log) -> None:
    raw.send(raw.shell, "foo_notification", {"x": 1})
    raw.assert_no_reply()
    kernel_log("unknown message type 'foo_notification'")


@pytest.mark.slow
def test_100_mb_message_and_kernel_keeps_serving(raw) -> None:
    big = "x" * (100 * 1024 * 1024)
    msg_id = raw.send(raw.shell, "kernel_info_request", {"padding": big})
    del big
    reply = raw.reply(msg_id, timeout=60_000)
    assert reply["content"]["status"] == "ok"
    # a 100 MB binary buffer on an execute request
    msg_id, frames = raw.frames("execute_request", {"code": "1 + 1", "silent": False})
    raw.shell.send_multipart([*frames, b"\0" * (100 * 1024 * 1024)])
    assert raw.reply(msg_id, timeout=60_000)["content"]["status"] == "ok"


def test_raising_hook_gives_error_on_iopub_and_error_reply(raw, kernel_log) -> None:
    msg_id = raw.send(raw.shell, "complete_request", {"code": "__boom__", "cursor_pos": 8})
    reply = raw.reply(msg_id)
    assert reply["msg_type"] == "complete_reply"
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "RuntimeError"
    errors = [m for m in raw.iopub_for(msg_id) if m["msg_type"] == "error"]
    assert [e["content"]["evalue"] for e in errors] == ["do_complete exploded on purpose"]
    kernel_log("complete_request failed")


@pytest.mark.parametrize("content", [{}, {"code": None}, {"code": 42}])
def test_execute_without_code_is_an_error_reply(raw, content: dict) -> None:
    msg_id = raw.send(raw.shell, "execute_request", content)
    reply = raw.reply(msg_id)
    assert reply["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "error"
    assert "code" in reply["content"]["evalue"]
    raw.iopub_for(msg_id)


@pytest.mark.parametrize("forgery", ["unsigned", "wrong signature", "other key", "tampered"])
def test_forged_execute_never_runs(kernel, raw, kernel_log, tmp_path, forgery: str) -> None:
    target = tmp_path / "pwned.txt"
    content = {"code": append_cell(target), "silent": False}
    if forgery == "other key":
        _, frames = raw.frames("execute_request", content)
        frames[1] = Signer("not-the-key").sign(frames[2:6])
    else:
        _, frames = raw.frames("execute_request", content)
        if forgery == "unsigned":
            frames[1] = b""
        elif forgery == "wrong signature":
            frames[1] = bytes(reversed(frames[1]))
        else:  # a signed harmless cell whose content was swapped for the evil one
            _, harmless = raw.frames("execute_request", {"code": "1"})
            frames = [harmless[0], harmless[1], frames[2], *harmless[3:5], frames[5]]
    raw.shell.send_multipart(frames)
    raw.assert_no_reply()
    kernel_log("dropped a message on shell")
    raw.assert_still_serving()  # requests are served in order: the forged one is already gone
    assert not target.exists(), "a forged execute_request ran"


def test_control_channel_drops_bad_messages_too(kernel, kernel_log) -> None:
    _, info, _ = kernel
    ctx = zmq.Context()
    try:
        control = ctx.socket(zmq.DEALER)
        control.linger = 0
        control.connect(f"tcp://{info['ip']}:{info['control_port']}")
        session = Session(info["key"], info["signature_scheme"])
        msg = session.msg("shutdown_request", {"restart": False})
        frames = [bytes(f) for f in session.serialize(msg)]
        frames[1] = b""
        control.send_multipart(frames)
        assert not control.poll(QUIET), "an unsigned shutdown_request was answered"
        kernel_log("dropped a message on control")
        good = session.msg("kernel_info_request")
        control.send_multipart(session.serialize(good))
        assert control.poll(WAIT)
        _, reply = session.deserialize(control.recv_multipart())
        assert reply["msg_type"] == "kernel_info_reply"
    finally:
        ctx.destroy(linger=0)
    km = kernel[0]
    assert km.is_alive()
