"""A Jupyter Enterprise Gateway kernel launcher for kernelkit kernels.

Enterprise Gateway (EG) starts remote kernels (in Kubernetes pods, on YARN or Spark nodes, on
SSH hosts) through a *kernel launcher* named in the kernelspec's ``argv``. The launcher runs
where the kernel runs and does the four jobs EG's own ``launch_ipykernel.py`` does, which
kernelkit kernels cannot do by themselves:

1. choose the five ZeroMQ ports (inside ``--port-range`` if given) and a signing key, and write
   a connection file;
2. send that connection information back to EG's *response address*, AES-encrypted with a new
   key that is itself encrypted with EG's RSA public key (payload version 1);
3. start the kernel (any kernelkit kernel: ``kernelkit run TARGET -f CONNECTION_FILE``);
4. listen on a *communication port* for EG's ``{"signum": N}`` (send a signal to the kernel;
   ``0`` is EG's liveness poll) and ``{"shutdown": 1}`` requests.

Usage in a kernelspec (see docs/frontends.md for a full one)::

    python launch_kernelkit.py --kernel TARGET
        --RemoteProcessProxy.kernel-id {kernel_id}
        --RemoteProcessProxy.response-address {response_address}
        --RemoteProcessProxy.public-key {public_key}
        --RemoteProcessProxy.port-range {port_range}

Needs the ``cryptography`` package besides kernelkit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LAUNCHER_VERSION = 1  # the payload format EG expects from current launchers
CHANNELS = ("shell", "iopub", "stdin", "hb", "control")
MAX_PORT_TRIES = 50


def bind_socket(ip: str, lower: int, upper: int) -> socket.socket:
    """A TCP socket bound to a free port, inside ``lower..upper`` when a range is given."""
    for _ in range(MAX_PORT_TRIES):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        port = random.randint(lower, upper) if upper > lower else 0
        try:
            sock.bind((ip, port))
            return sock
        except OSError:
            sock.close()
    raise RuntimeError(f"no free port in {lower}..{upper} after {MAX_PORT_TRIES} tries")


def parse_port_range(text: str | None) -> tuple[int, int]:
    if not text or text in ("0..0", "{port_range}"):
        return 0, 0
    lower, _, upper = text.partition("..")
    return int(lower), int(upper)


def encrypt(connection_info: dict, public_key_b64: str) -> bytes:
    """EG's version-1 payload: base64(JSON{version, key: RSA(aes_key), conn_info: AES-ECB(info)})."""
    aes_key = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(connection_info).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # EG's choice of mode  # noqa: S305
    encrypted_info = encryptor.update(plain) + encryptor.finalize()
    public_key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    encrypted_key = public_key.encrypt(aes_key, rsa_padding.PKCS1v15())
    payload = {"version": LAUNCHER_VERSION, "key": base64.b64encode(encrypted_key).decode(),
               "conn_info": base64.b64encode(encrypted_info).decode()}
    return base64.b64encode(json.dumps(payload).encode())


def listen_for_gateway(comm: socket.socket, kernel: subprocess.Popen) -> None:
    """Carry out EG's requests on the communication socket until it says shutdown."""
    comm.listen(1)
    while True:
        conn, _ = comm.accept()
        with conn:
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
        try:
            request = json.loads(data or b"{}")
        except ValueError:
            continue
        if request.get("signum") is not None and kernel.poll() is None:
            signum = int(request["signum"])
            if signum:  # 0 is a liveness poll: the connection itself answered it
                kernel.send_signal(signum)
        if request.get("shutdown"):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", required=True,
                        help="what to run: a kernelkit target (module, module:Class or path/file.py)")
    parser.add_argument("--RemoteProcessProxy.kernel-id", dest="kernel_id", required=True)
    parser.add_argument("--RemoteProcessProxy.response-address", dest="response_address", required=True,
                        metavar="IP:PORT")
    parser.add_argument("--RemoteProcessProxy.public-key", dest="public_key", required=True)
    parser.add_argument("--RemoteProcessProxy.port-range", dest="port_range", default=None, metavar="LOW..HIGH")
    parser.add_argument("--RemoteProcessProxy.spark-context-initialization-mode", dest="spark_mode", default="none")
    parser.add_argument("--RemoteProcessProxy.cluster-type", dest="cluster_type", default="none")
    parser.add_argument("--ip", default="0.0.0.0",  # noqa: S104 - remote kernels must be reachable by EG
                        help="address the kernel binds to (default 0.0.0.0, so EG on another host can reach it)")
    args = parser.parse_args(argv)
    if args.spark_mode not in ("none", None):
        parser.error("kernelkit kernels have no Spark context: use --RemoteProcessProxy.spark-context-initialization-mode none")

    lower, upper = parse_port_range(args.port_range)
    held = [bind_socket(args.ip, lower, upper) for _ in CHANNELS]  # keep them until all five are chosen
    ports = {f"{name}_port": sock.getsockname()[1] for name, sock in zip(CHANNELS, held)}
    for sock in held:
        sock.close()
    info = {**ports, "ip": args.ip, "transport": "tcp", "key": uuid.uuid4().hex,
            "signature_scheme": "hmac-sha256", "kernel_name": ""}
    folder = Path(tempfile.mkdtemp(prefix=f"kernel-{args.kernel_id}-"))
    connection_file = folder / "connection.json"
    connection_file.write_text(json.dumps(info, indent=1))
    connection_file.chmod(0o600)

    # --parent: the kernel exits by itself if this launcher dies (kernelkit watches its parent).
    kernel = subprocess.Popen([sys.executable, "-m", "kernelkit", "run", args.kernel, "-f", str(connection_file),
                               "--parent", str(os.getpid())])
    comm = bind_socket(args.ip, lower, upper)
    reply = {**info, "pid": kernel.pid, "pgid": os.getpgid(kernel.pid), "comm_port": comm.getsockname()[1],
             "kernel_id": args.kernel_id}
    host, _, port = args.response_address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as response:
        response.sendall(encrypt(reply, args.public_key))

    listener = threading.Thread(target=listen_for_gateway, args=(comm, kernel), daemon=True)
    listener.start()
    signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
    signal.signal(signal.SIGINT, lambda *_: kernel.send_signal(signal.SIGINT))
    code = kernel.wait()
    comm.close()
    connection_file.unlink(missing_ok=True)
    folder.rmdir()
    return code


if __name__ == "__main__":
    sys.exit(main())
