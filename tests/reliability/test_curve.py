"""CurveZMQ as jupyter_client 8.10 defines it: KernelManager(transport_encryption="required").

The kernelspec declares ``metadata.supported_encryption: ["curve"]``; the manager writes
``curve_publickey``/``curve_secretkey`` into the connection file and the kernel makes every
socket a Curve server. A client that knows the HMAC key but not the Curve server key, or
uses a wrong one, gets nothing: no reply, no iopub, no heartbeat.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import zmq
from jupyter_client import KernelManager

from helpers import execute, running_kernel, stdout_text
from relhelpers import RK, RK_CURVE, RawClient


def test_curve_required_kernel_serves_an_encrypted_client() -> None:
    with running_kernel(RK_CURVE, transport_encryption="required") as (km, kc):
        info = json.loads(Path(km.connection_file).read_text())
        assert info["curve_publickey"] and info["curve_secretkey"]
        reply, iopub = execute(kc, "secret words")
        assert reply["content"]["status"] == "ok"
        assert stdout_text(iopub) == "secret words"
        assert kc.is_alive()


@pytest.mark.slow
def test_clients_without_the_curve_keys_get_nothing(tmp_path: Path) -> None:
    with running_kernel(RK_CURVE, transport_encryption="required") as (km, kc):
        info = km.get_connection_info()
        context = zmq.Context()
        plain = RawClient(info, curve=False, iopub=True, context=context)
        wrong = RawClient({**info, "curve_publickey": zmq.curve_keypair()[0].decode()}, iopub=True, context=context)
        hb = context.socket(zmq.REQ)
        hb.linger = 0
        hb.connect(plain.address("hb"))
        try:
            for client in (plain, wrong):  # both know the HMAC key: only Curve keeps them out
                assert client.execute(f"touch {tmp_path / 'intruder'}", timeout=3) is None
                assert client.kernel_info(timeout=2, control=True) is None
            reply, _ = execute(kc, "legit")  # the kernel meanwhile serves its real client
            assert reply["content"]["status"] == "ok"
            for client in (plain, wrong):
                assert client.iopub.poll(500) == 0, "iopub leaked to a client without the keys"
            # A REQ whose handshake failed may have no pipe left to queue on: a blocking send would hang.
            with contextlib.suppress(zmq.Again):
                hb.send(b"ping", zmq.NOBLOCK)
            assert hb.poll(2000) == 0, "heartbeat answered a client without the keys"
        finally:
            plain.close()
            wrong.close()
            hb.close()
            context.term()
        assert not (tmp_path / "intruder").exists()


def test_required_encryption_refuses_a_kernelspec_without_curve_support() -> None:
    km = KernelManager(kernel_name=RK)
    with pytest.raises(RuntimeError, match="supported_encryption"):
        km.start_kernel(transport_encryption="required")


def test_kernelkit_install_declares_curve_and_the_kernel_serves_encrypted() -> None:
    """What `kernelkit install` writes is accepted by KernelManager(transport_encryption="required")."""
    import kernelkit

    result = kernelkit.install("kernelkit.kernels.echo", name="kk-rel-installed-curve", user=True, replace=True)
    spec = json.loads((result.resource_dir / "kernel.json").read_text())
    assert spec["metadata"]["supported_encryption"] == ["curve"]
    with running_kernel("kk-rel-installed-curve", transport_encryption="required") as (km, kc):
        assert json.loads(Path(km.connection_file).read_text())["curve_secretkey"]
        reply, iopub = execute(kc, "installed and encrypted")
        assert reply["content"]["status"] == "ok"
        assert stdout_text(iopub) == "installed and encrypted"
