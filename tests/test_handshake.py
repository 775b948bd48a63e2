"""The kernel handshake (JEP 66; jupyter_client docs, protocol 5.6): registration files, the signed
registration and acknowledgement, and real kernels started by the launcher in handshake_launcher.py.

The launcher side is independent of kernelkit (plain pyzmq, hmac and json), so these tests check
kernelkit against the spec text, not against itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import zmq
from conftest import ECHO, JUPYTER_RUNTIME_DIR
from handshake_launcher import PORT_FIELDS, Launched, RegistrationService
from helpers import TIMEOUT, execute, new_manager, stdout_text

from kernelkit.kernels.echo import EchoKernel
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import WireError
from kernelkit.tools import installer
from kernelkit.transport import connection, handshake
from kernelkit.transport.connection import ConnectionFileError, ConnectionInfo, RegistrationInfo

RACERS = 20
SHORT = "2"  # --handshake-timeout for the tests where no acknowledgement comes


# ---- registration files ------------------------------------------------------------------------


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_registration_file_is_told_apart_from_a_connection_file(tmp_path: Path) -> None:
    reg = {"kernel_id": "k-1", "transport": "tcp", "registration_ip": "127.0.0.1", "registration_port": 51587,
           "signature_scheme": "hmac-sha256", "key": "a0436f6c"}
    loaded = connection.load_startup_file(_write(tmp_path / "r.json", reg))
    assert isinstance(loaded, RegistrationInfo)
    assert (loaded.kernel_id, loaded.address, loaded.ip) == ("k-1", "tcp://127.0.0.1:51587", "127.0.0.1")
    info = loaded.connection_info()
    assert all(info.port(c) == 0 for c in connection.CHANNELS)
    assert (info.key, info.signature_scheme, info.ip) == ("a0436f6c", "hmac-sha256", "127.0.0.1")
    # xeus writes the port as a string and may name the bind address ``ip``; CurveZMQ keys pass on
    xeus_style = {**reg, "registration_port": "51587", "ip": "0.0.0.0", "curve_secretkey": "s" * 40}
    loaded = connection.load_startup_file(_write(tmp_path / "x.json", xeus_style))
    assert loaded.registration_port == 51587 and loaded.connection_info().ip == "0.0.0.0"
    assert loaded.connection_info().curve_secretkey == "s" * 40
    plain = ConnectionInfo(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
    connection.write(plain, tmp_path / "c.json")
    assert connection.load_startup_file(tmp_path / "c.json") == plain


@pytest.mark.parametrize(("change", "message"), [
    ({"kernel_id": None}, "kernel_id must be a non-empty string"),
    ({"kernel_id": ""}, "kernel_id must be a non-empty string"),
    ({"registration_port": 0}, "registration_port must be an integer from 1 to 65535"),
    ({"registration_port": "x"}, "registration_port must be an integer"),
    ({"transport": "udp"}, "transport 'udp' is not supported"),
    ({"key": 5}, "key, signature_scheme and ip must be strings"),
])
def test_a_malformed_registration_file_is_a_clear_error(tmp_path: Path, change: dict, message: str) -> None:
    reg = {"kernel_id": "k", "transport": "tcp", "registration_ip": "127.0.0.1", "registration_port": 5000,
           "key": "k"}
    path = _write(tmp_path / "r.json", {k: v for k, v in {**reg, **change}.items() if v is not None})
    with pytest.raises(ConnectionFileError, match=f"registration file {path}: {message}"):
        connection.load_startup_file(path)


# ---- the minimal signed message --------------------------------------------------------------


def test_the_registration_message_is_a_signed_single_content_frame() -> None:
    session = Session("secret")
    content = {"kernel_id": "k", "shell_port": "5"}
    frames = session.serialize_content(content)
    assert frames[0] == b"<IDS|MSG>" and len(frames) == 3
    assert frames[1] == hmac.new(b"secret", frames[2], hashlib.sha256).hexdigest().encode()
    assert json.loads(frames[2]) == content
    assert session.deserialize_content([b"id", *frames]) == ([b"id"], frames[2])
    assert session.deserialize_content(Session("secret").serialize_content(b"ACK"))[1] == b"ACK"  # xeus's ACK
    for forged in (Session("other").serialize_content(content), [b"<IDS|MSG>", b"", frames[2]],
                   [*frames, b"extra"], frames[1:]):
        with pytest.raises(WireError):
            session.deserialize_content(forged)
    assert Session("").serialize_content(b"x")[1] == b""  # no key, no signature (as on every channel)


def _fake_launcher(key: bytes, ack_key: bytes | None) -> tuple[RegistrationInfo, list[list[bytes]], threading.Thread]:
    """A registration socket answering one message with an ACK signed by ``ack_key`` (None: no answer)."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    received: list[list[bytes]] = []

    def serve() -> None:
        try:
            if router.poll(5000):
                frames = router.recv_multipart()
                received.append(frames)
                if ack_key is not None:
                    sig = hmac.new(ack_key, b"ACK", hashlib.sha256).hexdigest().encode()
                    router.send_multipart([frames[0], b"<IDS|MSG>", sig, b"ACK"])
                    time.sleep(0.2)
        finally:
            router.close(linger=0)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return RegistrationInfo("k-42", port, key=key.decode()), received, thread


def _bound_info(key: str) -> ConnectionInfo:
    return ConnectionInfo(shell_port=10001, iopub_port=10002, stdin_port=10003, control_port=10004, hb_port=10005,
                          key=key)


def test_register_sends_ports_and_kernel_id_and_accepts_a_signed_ack() -> None:
    registration, received, thread = _fake_launcher(b"secret", b"secret")
    assert handshake.register(registration, _bound_info("secret"), Session("secret"), timeout=5) is True
    thread.join()
    content = json.loads(received[0][-1])
    assert content == {"kernel_id": "k-42", "control_port": "10004", "shell_port": "10001", "stdin_port": "10003",
                       "iopub_port": "10002", "hb_port": "10005"}


def test_register_ignores_a_forged_ack_and_gives_up_after_the_timeout() -> None:
    registration, received, thread = _fake_launcher(b"secret", b"forged")
    started = time.monotonic()
    with pytest.raises(handshake.HandshakeError, match=r"did not acknowledge .* within 0.5 s\. Check"):
        handshake.register(registration, _bound_info("secret"), Session("secret"), timeout=0.5)
    assert time.monotonic() - started < 3
    thread.join()
    assert len(received) == 1


def test_register_stops_waiting_when_the_kernel_is_stopping() -> None:
    registration, _, thread = _fake_launcher(b"secret", None)
    stop_at = time.monotonic() + 0.3
    assert handshake.register(registration, _bound_info("secret"), Session("secret"), timeout=30,
                              stopping=lambda: time.monotonic() > stop_at) is False
    thread.join()


# ---- the kernelspec advertises it ------------------------------------------------------------


def test_install_advertises_the_handshake_through_kernel_protocol_version() -> None:
    assert installer.advertised_protocol_version("5.5") == "5.6"
    assert installer.advertised_protocol_version("") == "5.6"
    assert installer.advertised_protocol_version("5.3") == "5.3"
    assert installer.advertised_protocol_version("5.6") == "5.6"


# ---- real kernels --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_argv() -> list[str]:
    """The argv ``kernelkit install`` writes for the echo kernel (its kernel.json, not written to disk)."""
    result = installer.install(EchoKernel, dry_run=True)
    assert result.kernel_json["kernel_protocol_version"] == "5.6"
    return result.kernel_json["argv"]


@pytest.fixture
def service() -> Iterator[RegistrationService]:
    folder = JUPYTER_RUNTIME_DIR / "registration"
    folder.mkdir(mode=0o700, exist_ok=True)
    svc = RegistrationService(folder)
    try:
        yield svc
    finally:
        svc.close()
        assert not _alive(svc.kernels.values()), "kernel processes left running"


def _alive(kernels) -> list[int]:
    return [k.process.pid for k in kernels if psutil.pid_exists(k.process.pid) and k.process.poll() is None]


def _own_connection_file(launched: Launched) -> Path | None:
    found = list(JUPYTER_RUNTIME_DIR.glob(f"kernel-{launched.kernel_id}-*.json"))
    return found[0] if found else None


def _shutdown(service: RegistrationService, launched: list[Launched], clients: list) -> None:
    for kc in clients:
        kc.shutdown()
    for kc in clients:
        kc.stop_channels()
    for kernel in launched:
        assert kernel.process.wait(15) == 0, kernel.process.stderr.read() if kernel.process.stderr else ""


def test_a_kernel_started_with_a_registration_file_registers_and_serves(
    service: RegistrationService, echo_argv: list[str]
) -> None:
    launched = service.start(echo_argv)
    assert service.wait_for_registrations(1, 30) == [launched], (service.rejected, launched.process.poll())
    kc = service.client(launched)
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        reply, msgs = execute(kc, "hello through the handshake")
        assert reply["content"]["status"] == "ok"
        assert stdout_text(msgs) == "hello through the handshake"
        # the kernel wrote its own connection file for other clients; the registration file is the launcher's
        own = _own_connection_file(launched)
        assert own is not None and (own.stat().st_mode & 0o777) == 0o600
        written = json.loads(own.read_text(encoding="utf-8"))
        assert {k: written[k] for k in PORT_FIELDS} == launched.ports and written["key"] == service.key
        assert "registration_port" in json.loads(launched.registration_file.read_text(encoding="utf-8"))
    finally:
        _shutdown(service, [launched], [kc])
    assert _own_connection_file(launched) is None  # removed at exit
    assert launched.registration_file.exists()


@pytest.mark.slow
def test_racing_starts_in_handshake_mode(service: RegistrationService, echo_argv: list[str]) -> None:
    kernels = [service.start(echo_argv) for _ in range(RACERS)]
    registered = service.wait_for_registrations(RACERS, 60)
    failed = [(k.process.returncode, k.process.stderr.read()) for k in kernels if k.process.poll() is not None]
    assert len(registered) == RACERS, (service.rejected, failed)
    assert service.rejected == [] and failed == []
    ports = [p for k in kernels for p in k.ports.values()]
    assert len(set(ports)) == 5 * RACERS  # nobody shares a port
    clients = [service.client(k) for k in kernels]
    try:
        for kc in clients:
            kc.wait_for_ready(timeout=TIMEOUT)
        for n, kc in enumerate(clients):
            reply, msgs = execute(kc, f"kernel {n}")
            assert reply["content"]["status"] == "ok" and stdout_text(msgs) == f"kernel {n}"
    finally:
        _shutdown(service, kernels, clients)


@pytest.mark.slow
def test_racing_starts_with_connection_files() -> None:
    managers = [new_manager(ECHO) for _ in range(RACERS)]
    clients = []
    try:
        for km in managers:
            km.start_kernel()
        for km in managers:
            kc = km.client()
            kc.start_channels()
            clients.append(kc)
        for kc in clients:
            kc.wait_for_ready(timeout=60)
        for n, kc in enumerate(clients):
            reply, msgs = execute(kc, f"kernel {n}")
            assert reply["content"]["status"] == "ok" and stdout_text(msgs) == f"kernel {n}"
    finally:
        for kc in clients:
            kc.shutdown()
            kc.stop_channels()
        for km in managers:
            if km.has_kernel:
                km.shutdown_kernel(now=False)
    assert all(not km.is_alive() for km in managers)


def _one_clear_line(kernel: Launched, within: float) -> str:
    try:
        _, stderr = kernel.process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the kernel still runs {within} s after the launcher stopped answering")
    assert kernel.process.returncode == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("EchoKernel: error: the launcher at tcp://127.0.0.1:") and "did not acknowledge" in lines[0]
    return lines[0]


def test_a_registration_with_the_wrong_key_is_rejected_and_the_kernel_exits(
    service: RegistrationService, echo_argv: list[str]
) -> None:
    kernel = service.start([*echo_argv, "--handshake-timeout", SHORT], key_in_file="not-the-launchers-key")
    assert service.receive_one(30) is None  # one message came, and was rejected
    assert service.rejected == ["invalid signature"]
    assert kernel.ports is None
    _one_clear_line(kernel, 15)
    assert _own_connection_file(kernel) is None


def test_a_launcher_that_never_acknowledges_makes_the_kernel_exit(
    service: RegistrationService, echo_argv: list[str]
) -> None:
    service.acknowledge = False
    kernel = service.start([*echo_argv, "--handshake-timeout", SHORT])
    assert service.wait_for_registrations(1, 30) == [kernel]  # received, verified, never answered
    line = _one_clear_line(kernel, 15)
    assert "within 2 s" in line and "start the kernel with a connection file" in line
    assert _own_connection_file(kernel) is None


def test_a_launcher_that_is_gone_makes_the_kernel_exit(service: RegistrationService, echo_argv: list[str]) -> None:
    service.socket.close(linger=0)  # the registration file names a port nobody listens on
    kernel = service.start([*echo_argv, "--handshake-timeout", SHORT])
    _one_clear_line(kernel, 15)
    service.socket = service.context.socket(zmq.ROUTER)  # for close()


def test_sigterm_during_the_handshake_ends_the_kernel_quietly(
    service: RegistrationService, echo_argv: list[str]
) -> None:
    service.acknowledge = False
    kernel = service.start([*echo_argv, "--handshake-timeout", "30"])
    assert service.wait_for_registrations(1, 30) == [kernel]
    kernel.process.terminate()
    _, stderr = kernel.process.communicate(timeout=10)
    assert kernel.process.returncode == 0, stderr
    assert _own_connection_file(kernel) is None


def test_connection_file_mode_is_unchanged(tmp_path: Path, echo_argv: list[str]) -> None:
    info = ConnectionInfo()
    path = tmp_path / "kernel.json"
    connection.write(info, path)  # ports 0: the kernel binds and writes them back, as before
    cmd = [part.replace("{connection_file}", str(path)) for part in echo_argv]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        while connection.load(path).shell_port == 0:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0
