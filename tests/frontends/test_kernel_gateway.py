"""Jupyter Kernel Gateway serves kernelkit kernels over REST and websockets.

One gateway (``jupyter kernelgateway``, jupyter-websocket mode, token auth) on a free port serves
the module. Each test creates a kernel with ``POST /api/kernels``, talks the Jupyter protocol as
JSON over ``/api/kernels/ID/channels`` (websocket-client), and deletes the kernel.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from frontend_kit import (
    FRONTEND_KERNELS,
    SHOWCASE,
    FrontendKernel,
    KernelSocket,
    Server,
    free_port,
    http_json,
    kernel_ids,
)

pytestmark = pytest.mark.slow  # more than ~3 s a test: a Kernel Gateway server

TOKEN = uuid.uuid4().hex
AUTH = {"Authorization": f"token {TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    root = tmp_path_factory.mktemp("kernel-gateway")
    from frontend_kit import artifact_path

    server = Server(
        [sys.executable, "-m", "jupyter", "kernelgateway", "--KernelGatewayApp.ip=127.0.0.1",
         f"--KernelGatewayApp.port={port}", f"--KernelGatewayApp.auth_token={TOKEN}",
         "--JupyterWebsocketPersonality.list_kernels=True", "--KernelGatewayApp.port_retries=0"],
        log_path=artifact_path("test_kernel_gateway", "gateway.log"), cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{url}/api/kernelspecs", headers=AUTH, timeout=60)
        yield url
    finally:
        server.stop()


@pytest.fixture
def kernel_on(gateway: str):
    """``kernel_on(NAME)`` → KernelSocket to a new gateway kernel; deleted (and checked gone) afterwards."""
    created: list[tuple[str, KernelSocket]] = []

    def start(name: str) -> KernelSocket:
        status, model = http_json("POST", f"{gateway}/api/kernels", {"name": name}, AUTH)
        assert status == 201, model
        assert model["name"] == name
        sock = KernelSocket(gateway, model["id"], TOKEN)
        created.append((model["id"], sock))
        return sock

    yield start
    for kernel_id, sock in created:
        sock.close()
        status, _ = http_json("DELETE", f"{gateway}/api/kernels/{kernel_id}", headers=AUTH)
        assert status == 204
        status, kernels = http_json("GET", f"{gateway}/api/kernels", headers=AUTH)
        assert kernel_id not in [k["id"] for k in kernels]


def test_kernelspecs_listed(gateway: str) -> None:
    status, specs = http_json("GET", f"{gateway}/api/kernelspecs", headers=AUTH)
    assert status == 200
    for kernel in FRONTEND_KERNELS:
        assert specs["kernelspecs"][kernel.name]["spec"]["display_name"] == kernel.display_name


def test_token_required(gateway: str) -> None:
    status, _ = http_json("POST", f"{gateway}/api/kernels", {"name": SHOWCASE.name})
    assert status in (401, 403)


@pytest.mark.parametrize("kernel", FRONTEND_KERNELS, ids=kernel_ids(FRONTEND_KERNELS))
def test_execute_over_websocket(kernel: FrontendKernel, kernel_on) -> None:
    ws = kernel_on(kernel.name)
    msg_id = ws.send("shell", "kernel_info_request", {})
    while True:
        msg = ws.recv()
        if msg["parent_header"].get("msg_id") == msg_id and msg["channel"] == "shell":
            break
    assert msg["content"]["banner"].startswith(kernel.banner)
    reply, iopub = ws.execute(kernel.sample_code)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    streams = [m["content"] for m in iopub if m["msg_type"] == "stream"]
    assert streams == [{"name": "stdout", "text": kernel.sample_output}]


def test_showcase_rich_output_errors_input_interrupt(gateway: str, kernel_on) -> None:
    ws = kernel_on(SHOWCASE.name)

    reply, iopub = ws.execute("6 * 7")
    assert [(m["msg_type"], m["content"]["data"]) for m in iopub if m["msg_type"] != "execute_input"] == [
        ("execute_result", {"text/plain": "42"})]

    _, iopub = ws.execute("table([[1, 2]], header=['a', 'b']); png()")
    kinds = [(m["msg_type"], sorted(m["content"]["data"])) for m in iopub if m["msg_type"] == "display_data"]
    assert kinds == [("display_data", ["text/html", "text/plain"]), ("display_data", ["image/png", "text/plain"])]
    assert "<td>1</td><td>2</td>" in iopub[1]["content"]["data"]["text/html"]

    reply, iopub = ws.execute("1 / 0")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ZeroDivisionError"
    errors = [m["content"] for m in iopub if m["msg_type"] == "error"]
    assert errors[0]["evalue"] == "division by zero" and errors[0]["traceback"]

    reply, iopub = ws.execute("name = input('name? '); print('hello', name)", allow_stdin=True, answers=["Ada"])
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["text"] for m in iopub if m["msg_type"] == "stream"] == ["hello Ada\n"]

    # Interrupt over REST while a cell sleeps: the cell ends with KeyboardInterrupt, the kernel lives.
    kernel_id = ws.kernel_id
    msg_id = ws.send("shell", "execute_request", {"code": "import time; time.sleep(60)", "silent": False,
                                                   "store_history": True, "user_expressions": {},
                                                   "allow_stdin": False, "stop_on_error": True})
    time.sleep(1)
    started = time.monotonic()
    status, _ = http_json("POST", f"{gateway}/api/kernels/{kernel_id}/interrupt", headers=AUTH)
    assert status == 204
    while True:
        msg = ws.recv(timeout=20)
        if msg["channel"] == "shell" and msg["parent_header"].get("msg_id") == msg_id:
            break
    assert msg["content"]["status"] == "error" and msg["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 10
    reply, iopub = ws.execute("print('still here')")
    assert [m["content"]["text"] for m in iopub if m["msg_type"] == "stream"] == ["still here\n"]
