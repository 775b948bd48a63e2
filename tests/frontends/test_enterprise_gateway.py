"""The part of Jupyter Enterprise Gateway's remote-kernel protocol that runs on one machine.

Enterprise Gateway itself cannot be installed beside this suite (it pins jupyter_client<7,
jupyter_server<2 and pyzmq<25), and its remote process proxies need Kubernetes, YARN or SSH.
What runs here is everything a kernelkit kernel takes part in: this test plays EG's
*response manager* (an RSA key pair and a response socket, decoding exactly as EG's
``processproxy.py`` does, with pycryptodomex as EG uses), starts
``examples/enterprise_gateway/launch_kernelkit.py`` with the ``argv`` EG would give it, receives
the encrypted connection info, talks to the kernel with jupyter_client, and uses the launcher's
communication port as EG does: ``{"signum": 0}`` polls, ``{"signum": 2}`` interrupts,
``{"shutdown": 1}`` ends the launcher.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import uuid

from Cryptodome.Cipher import AES, PKCS1_v1_5  # pycryptodomex, as Enterprise Gateway uses
from Cryptodome.PublicKey import RSA
from Cryptodome.Util.Padding import unpad
from frontend_kit import EXAMPLES, SHOWCASE, artifact_path, kill_process_tree
from jupyter_client import BlockingKernelClient

LAUNCHER = EXAMPLES / "enterprise_gateway" / "launch_kernelkit.py"


class ResponseManager:
    """EG's side: a key pair, a response socket, and the payload decoding from processproxy.py."""

    def __init__(self) -> None:
        self.private_key = RSA.generate(2048)
        pem = self.private_key.publickey().export_key("PEM").decode()
        self.public_key = "".join(line for line in pem.splitlines() if "PUBLIC KEY" not in line)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(60)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def receive(self) -> dict:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
        payload = json.loads(base64.b64decode(data))
        assert payload["version"] == 1
        aes_key = PKCS1_v1_5.new(self.private_key).decrypt(base64.b64decode(payload["key"]), b"\x42")
        cipher = AES.new(aes_key, AES.MODE_ECB)
        return json.loads(unpad(cipher.decrypt(base64.b64decode(payload["conn_info"])), 16).decode())

    def close(self) -> None:
        self.sock.close()


def send_listener_request(port: int, request: dict) -> None:
    """As EG's ``_send_listener_request``: connect, send JSON, close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(json.dumps(request).encode())


def execute(kc: BlockingKernelClient, code: str, timeout: float = 30) -> tuple[dict, list[dict]]:
    outputs: list[dict] = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=outputs.append)
    return reply["content"], [m for m in outputs if m["msg_type"] in ("stream", "execute_result", "error")]


def test_remote_launcher_protocol() -> None:
    gateway = ResponseManager()
    kernel_id = str(uuid.uuid4())
    log = open(artifact_path("test_enterprise_gateway", "launcher.log"), "wb")  # noqa: SIM115
    launcher = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--kernel", str(EXAMPLES / "showcase.py"), "--ip", "127.0.0.1",
         "--RemoteProcessProxy.kernel-id", kernel_id,
         "--RemoteProcessProxy.response-address", gateway.address,
         "--RemoteProcessProxy.public-key", gateway.public_key,
         "--RemoteProcessProxy.port-range", "0..0",
         "--RemoteProcessProxy.spark-context-initialization-mode", "none"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    kc = BlockingKernelClient()
    try:
        info = gateway.receive()
        assert info["kernel_id"] == kernel_id
        assert {"shell_port", "iopub_port", "stdin_port", "hb_port", "control_port", "key", "comm_port", "pid",
                "pgid"} <= set(info)
        kc.load_connection_info({k: v for k, v in info.items() if k not in ("pid", "pgid", "comm_port", "kernel_id")})
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        assert kc.kernel_info(reply=True, timeout=10)["content"]["banner"].startswith(SHOWCASE.banner)

        content, outputs = execute(kc, "print('remote'); 6 * 7")
        assert content["status"] == "ok"
        assert [m["msg_type"] for m in outputs] == ["stream", "execute_result"]
        assert outputs[1]["content"]["data"] == {"text/plain": "42"}

        send_listener_request(info["comm_port"], {"signum": 0})  # EG's poll: must not disturb the kernel

        # EG interrupts remote kernels by asking the launcher to send SIGINT.
        msg_id = kc.execute("import time; time.sleep(60)")
        time.sleep(1)
        started = time.monotonic()
        send_listener_request(info["comm_port"], {"signum": 2})
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started < 10
        content, outputs = execute(kc, "print('alive')")
        assert outputs[0]["content"]["text"] == "alive\n"

        # EG shuts down with a shutdown_request, then tells the launcher to stop listening.
        kc.shutdown()
        send_listener_request(info["comm_port"], {"shutdown": 1})
        assert launcher.wait(20) == 0
    finally:
        kc.stop_channels()
        kill_process_tree(launcher, grace=5)
        gateway.close()
        log.close()
