"""kernelkit kernels under the real Jupyter Enterprise Gateway (3.3), local and over SSH.

EG runs from its own virtualenv (``eg_kit.eg_python``: it pins ``jupyter_client<7`` and
``pyzmq<25``), as a subprocess on loopback ports, with only this module's kernelspecs:

* ``LocalProcessProxy``: EG starts ``python -m kernelkit_launcher TARGET -f {connection_file}``;
* ``DistributedProcessProxy``: EG logs in over SSH to a test sshd on ``127.0.0.2`` (key-only,
  keys made for the test) and starts ``examples/enterprise_gateway/launch_kernelkit.py``
  there with ``nohup``; the launcher starts the kernel, sends the encrypted connection info
  back to EG's response address, and relays EG's signals from its communication port.

The tests drive EG as a user would: REST (create, list, interrupt, restart, delete), the
channels websocket (outputs, errors, stdin), culling, a notebook through jupyter_server's
gateway client with nbclient, and faults (a remote kernel killed, EG killed and started again).
JupyterLab pointed at EG is not here: see docs/scale-out.md for the EG 3.3 race that makes it
stall one notebook open in three.
Every test checks that no process of its kernels outlives it.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
from eg_kit import (ECHO_LOCAL, ECHO_SSH, REMOTE_HOST, SHOWCASE_LOCAL, SHOWCASE_SSH, SHOWCASE_SSH_MESSAGE, SSHD, Gateway,
                    eg_python, no_leftovers, open_kernel, processes_with, stream_text, wait_gone, write_kernelspecs)
from frontend_kit import artifact_path, wait_until

pytestmark = pytest.mark.slow

MODULE = "test_enterprise_gateway"
GATEWAY_SILENCE = 8  # seconds the SSH launcher waits without EG's polls before stopping its kernel
PORT_RANGE = "42000..43999"  # the SSH echo kernel's ports must come from here (EG's port_range)


@dataclass
class Setup:
    root: Path
    specs: Path
    sshd: SSHD

    def gateway(self, name: str, **kwargs) -> Gateway:
        return Gateway(specs=self.specs, workdir=self.root / name, log_path=artifact_path(MODULE, f"{name}.log"),
                       sshd=self.sshd, **kwargs)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    eg_python()  # EG's own virtualenv, made once
    root = tmp_path_factory.mktemp("eg")
    specs = root / "specs"
    write_kernelspecs(specs, gateway_silence=GATEWAY_SILENCE, ssh_port_range=PORT_RANGE)
    sshd = SSHD(root / "ssh", artifact_path(MODULE, "sshd.log"))
    try:
        yield Setup(root, specs, sshd)
    finally:
        sshd.stop()
    # every kernel any gateway of this module started, local or over SSH: none may be running now
    with no_leftovers(*Gateway.started, timeout=5):
        pass


@pytest.fixture(scope="module")
def gateway(setup: Setup) -> Iterator[Gateway]:
    gw = setup.gateway("gateway")
    try:
        yield gw
    finally:
        gw.stop()


def delete_kernel(gw: Gateway, kernel_id: str) -> None:
    status, body = gw.api("DELETE", f"/api/kernels/{kernel_id}")
    assert status == 204, body
    assert kernel_id not in gw.kernel_ids()


def kernel_process(kernel_id: str, timeout: float = 20) -> psutil.Process:
    """The kernel's own process (``-m kernelkit_launcher``), local or started over SSH."""
    def find() -> psutil.Process | None:
        for proc in processes_with(kernel_id):
            with_launcher = proc.cmdline()
            if "kernelkit_launcher" in with_launcher and "launch_kernelkit.py" not in " ".join(with_launcher):
                return proc
        return None

    return wait_until(find, timeout, f"the process of kernel {kernel_id}")


def test_kernelspecs_listed(gateway: Gateway) -> None:
    status, specs = gateway.api("GET", "/api/kernelspecs")
    assert status == 200
    names = set(specs["kernelspecs"])
    assert {ECHO_LOCAL, SHOWCASE_LOCAL, ECHO_SSH, SHOWCASE_SSH} <= names
    proxy = specs["kernelspecs"][SHOWCASE_SSH]["spec"]["metadata"]["process_proxy"]["class_name"]
    assert proxy.endswith("DistributedProcessProxy")
    status, _ = gateway.api("GET", "/api/kernels", timeout=10)
    assert status == 200
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:  # the token is required
        urllib.request.urlopen(f"{gateway.url}/api/kernels", timeout=10)
    assert info.value.code in (401, 403)


@pytest.mark.parametrize("name", [SHOWCASE_LOCAL, SHOWCASE_SSH, SHOWCASE_SSH_MESSAGE])
def test_user_session(gateway: Gateway, setup: Setup, name: str) -> None:
    """Create, list, execute with every kind of output, stdin, interrupt, restart, delete."""
    kernel_id = gateway.start_kernel(name)
    with no_leftovers(kernel_id):
        ws, info = open_kernel(gateway, kernel_id)
        try:
            assert kernel_id in gateway.kernel_ids()
            assert info["banner"].startswith("kernelkit showcase kernel")
            first = kernel_process(kernel_id)
            if name != SHOWCASE_LOCAL:  # really started through sshd, by the launcher, away from EG's process tree
                assert gateway.server.proc.pid not in [p.pid for p in first.parents()]
                assert "Accepted publickey" in setup.sshd.server.log()
                launcher = first.parent()
                assert "launch_kernelkit.py" in " ".join(launcher.cmdline())
                assert f"--ip {REMOTE_HOST}" in " ".join(launcher.cmdline())
                # the connection file (it holds the key) is gone once the kernel has read it
                assert list(Path(tempfile.gettempdir()).glob(f"kernel-{kernel_id}-*")) == []
            else:
                assert first.parent().pid == gateway.server.proc.pid

            reply, iopub = ws.execute("n = 6\nprint('hello from', 'EG')\nn * 7")
            assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 1
            assert stream_text(iopub) == "hello from EG\n"
            results = [m["content"]["data"] for m in iopub if m["msg_type"] == "execute_result"]
            assert results == [{"text/plain": "42"}]

            _, iopub = ws.execute("png()")
            assert [sorted(m["content"]["data"]) for m in iopub if m["msg_type"] == "display_data"] == [
                ["image/png", "text/plain"]]

            reply, iopub = ws.execute("1 / 0")
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ZeroDivisionError"
            assert [m["content"]["evalue"] for m in iopub if m["msg_type"] == "error"] == ["division by zero"]

            reply, iopub = ws.execute("who = input('name? '); print('hello', who)", allow_stdin=True,
                                      answers=["Ada"])
            assert reply["content"]["status"] == "ok"
            assert stream_text(iopub) == "hello Ada\n"

            # interrupt over REST: EG signals the local kernel itself, the SSH one through the
            # launcher's comm port, or sends interrupt_request on control ("message" mode)
            msg_id = ws.execute_request("import time; time.sleep(60)")
            time.sleep(1)
            started = time.monotonic()
            status, _ = gateway.api("POST", f"/api/kernels/{kernel_id}/interrupt")
            assert status == 204
            reply = ws.reply_to(msg_id, timeout=20)
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
            assert time.monotonic() - started < 10
            if name != SHOWCASE_LOCAL:
                launcher_log = (gateway.kernel_log_dir / f"kernel-{kernel_id}.log").read_text()
                assert ("gateway asks for signal 2" in launcher_log) == (name == SHOWCASE_SSH), launcher_log
            reply, iopub = ws.execute("print(n)")
            assert stream_text(iopub) == "6\n"

            # restart over REST: a new kernel process, a fresh namespace, the same kernel id
            status, model = gateway.api("POST", f"/api/kernels/{kernel_id}/restart")
            assert status == 200 and model["id"] == kernel_id
            _, alive = psutil.wait_procs([first], timeout=15)
            assert not alive, "the old kernel process outlived the restart"
            ws.close()
            ws, _ = open_kernel(gateway, kernel_id)
            second = kernel_process(kernel_id)
            assert second.pid != first.pid
            reply, iopub = ws.execute("print(n)")
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "NameError"
        finally:
            ws.close()
            delete_kernel(gateway, kernel_id)
    # the launcher removed the connection file it wrote on the SSH host, and its folder
    assert list(Path(tempfile.gettempdir()).glob(f"kernel-{kernel_id}-*")) == []


@pytest.mark.parametrize("name", [ECHO_LOCAL, ECHO_SSH])
def test_echo_kernel(gateway: Gateway, name: str) -> None:
    kernel_id = gateway.start_kernel(name)
    with no_leftovers(kernel_id):
        ws, info = open_kernel(gateway, kernel_id)
        try:
            assert info["implementation"] == "Echo"
            reply, iopub = ws.execute("hello, gateway")
            assert reply["content"]["status"] == "ok"
            assert stream_text(iopub) == "hello, gateway"
            if name == ECHO_SSH:  # EG's port_range from the kernelspec reached the launcher
                lower, upper = (int(p) for p in PORT_RANGE.split(".."))
                kernel = kernel_process(kernel_id)
                ports = {c.laddr.port for c in kernel.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
                assert len(ports) >= 5 and all(lower <= p <= upper for p in ports), ports
        finally:
            ws.close()
            delete_kernel(gateway, kernel_id)


def test_idle_kernels_culled(setup: Setup) -> None:
    gw = setup.gateway("gateway-cull", cull_idle_timeout=6)
    try:
        ids = [gw.start_kernel(ECHO_LOCAL), gw.start_kernel(ECHO_SSH)]
        with no_leftovers(*ids, timeout=20):
            for kernel_id in ids:
                ws, _ = open_kernel(gw, kernel_id)
                try:
                    assert stream_text(ws.execute("still here")[1]) == "still here"
                finally:
                    ws.close()
            wait_until(lambda: not set(ids) & set(gw.kernel_ids()), 30, "EG to cull both idle kernels")
        assert "Culling kernel" in gw.server.log() or "culling" in gw.server.log().lower()
    finally:
        gw.stop()


def test_notebook_through_gateway_client(setup: Setup) -> None:
    """nbclient runs a notebook on EG through jupyter_server's GatewayKernelManager / GatewayClient.

    jupyter_server's GatewayKernelClient opens the channels websocket without the gateway's auth
    token (only its REST calls carry it), so this gateway runs without one, on loopback.
    """
    from jupyter_server.gateway.gateway_client import GatewayClient
    from jupyter_server.gateway.managers import GatewayKernelManager
    from nbclient import NotebookClient

    gw = setup.gateway("gateway-nbclient", token="")
    client = GatewayClient.instance()
    saved = (client.url, client.auth_token)
    client.url, client.auth_token = gw.url, ""
    try:
        for name in (SHOWCASE_LOCAL, SHOWCASE_SSH):
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": name, "display_name": name, "language": "python"}
            nb.cells = [nbformat.v4.new_code_cell(code) for code in
                        ("n = 2", "print('hello', n)", "6 * n", "table([[1, 'one']], header=['n', 'name'])")]
            # GatewayKernelManager.start_kernel takes the kernel name as an argument, not from its trait
            NotebookClient(nb, kernel_name=name, kernel_manager_class=GatewayKernelManager,
                           timeout=60, startup_timeout=60).execute(kernel_name=name)
            outputs = [cell.outputs for cell in nb.cells]
            assert outputs[0] == []
            assert outputs[1] == [{"output_type": "stream", "name": "stdout", "text": "hello 2\n"}]
            assert outputs[2][0]["data"] == {"text/plain": "12"} and outputs[2][0]["execution_count"] == 3
            assert "<td>one</td>" in outputs[3][0]["data"]["text/html"]
        assert wait_until(lambda: gw.kernel_ids() == [], 20, "the notebook kernels to be shut down") is not None
    finally:
        client.url, client.auth_token = saved
        gw.stop()


def test_remote_kernel_killed(gateway: Gateway, setup: Setup) -> None:
    """SIGKILL the kernel on the SSH host: its launcher exits, EG sees it dead and restarts it there."""
    kernel_id = gateway.start_kernel(ECHO_SSH)
    with no_leftovers(kernel_id):
        ws, _ = open_kernel(gateway, kernel_id)
        try:
            first = kernel_process(kernel_id)
            launcher = first.parent()
            result = setup.sshd.run(f"kill -9 {first.pid}")
            assert result.returncode == 0, result.stderr
            launcher.wait(10)  # the launcher follows its kernel
            second = wait_until(lambda: (p := kernel_process(kernel_id, 30)).pid != first.pid and p, 40,
                                "EG to restart the dead kernel")
            assert "launch_kernelkit.py" in " ".join(second.parent().cmdline())
            ws.close()
            ws, _ = open_kernel(gateway, kernel_id)
            assert stream_text(ws.execute("back again")[1]) == "back again"
        finally:
            ws.close()
            delete_kernel(gateway, kernel_id)


def test_gateway_killed_then_started_again(setup: Setup) -> None:
    """EG dies (SIGKILL) with kernels running: they all exit; a new EG serves new kernels."""
    gw = setup.gateway("gateway-killed")
    try:
        ids = [gw.start_kernel(ECHO_LOCAL), gw.start_kernel(ECHO_SSH)]
        with no_leftovers(*ids, timeout=5):
            for kernel_id in ids:
                ws, _ = open_kernel(gw, kernel_id)
                try:
                    assert stream_text(ws.execute("before the crash")[1]) == "before the crash"
                finally:
                    ws.close()
            local, remote = (kernel_process(k) for k in ids)
            time.sleep(4)  # EG has polled the SSH launcher at least once (every 3 s)
            killed = time.monotonic()
            gw.kill(signal.SIGKILL)
            # the local kernel watches its parent (JPY_PARENT_PID); the SSH launcher misses EG's polls
            assert wait_gone(ids[0], 10) == [], "the local kernel outlived EG"
            assert wait_gone(ids[1], GATEWAY_SILENCE + 15) == [], "the SSH kernel outlived EG"
            assert not local.is_running() and not remote.is_running()
            assert time.monotonic() - killed < GATEWAY_SILENCE + 15
            kernel_log = (gw.kernel_log_dir / f"kernel-{ids[1]}.log").read_text()
            assert "no word from the gateway" in kernel_log, kernel_log
    finally:
        gw.stop()

    again = setup.gateway("gateway-again")
    try:
        for name in (ECHO_LOCAL, ECHO_SSH):
            kernel_id = again.start_kernel(name)
            with no_leftovers(kernel_id):
                ws, _ = open_kernel(again, kernel_id)
                try:
                    assert stream_text(ws.execute("after the crash")[1]) == "after the crash"
                finally:
                    ws.close()
                    delete_kernel(again, kernel_id)
    finally:
        again.stop()
