"""A Jupyter Enterprise Gateway kernel launcher for kernelkit kernels.

Enterprise Gateway (EG) starts remote kernels (on SSH hosts with its ``DistributedProcessProxy``,
in Kubernetes pods, on YARN nodes) through a *kernel launcher* named in the kernelspec's
``argv``. The launcher runs where the kernel runs and does the jobs EG's own
``launch_ipykernel.py`` does, which kernelkit kernels do not do by themselves:

1. start the kernel with ``python -m kernelkit_launcher TARGET -f CONNECTION_FILE --parent PID``
   (the kernel dies with this launcher; the file, which holds the key, is deleted as soon as
   the kernel has read it). Without a port range the kernel binds its own ports
   (the connection file it is given has port 0 everywhere) and rewrites the file, so no port
   can be taken between choosing it and binding it; with ``--RemoteProcessProxy.port-range`` the
   launcher picks five free ports inside the range first;
2. send the connection information back to EG's *response address*, AES-encrypted with a new
   key that is itself encrypted with EG's RSA public key (payload version 1), once the kernel's
   sockets are bound;
3. listen on a *communication port* for EG's ``{"signum": N}`` (send a signal to the kernel;
   ``0`` is EG's liveness poll, every 3 s) and ``{"shutdown": 1}`` requests;
4. stop the kernel when EG is gone: once EG has polled, ``--gateway-silence`` seconds without
   any request from it (default 60) mean EG died or forgot the kernel, and the launcher shuts
   the kernel down instead of leaving it running unreachable (EG 3 does not re-attach to
   kernels after a restart unless kernel-session persistence is configured).

Usage in a kernelspec (see docs/scale-out.md for a full one)::

    /path/to/python launch_kernelkit.py --kernel TARGET [--ip ADDRESS]
        --RemoteProcessProxy.kernel-id {kernel_id}
        --RemoteProcessProxy.response-address {response_address}
        --RemoteProcessProxy.public-key {public_key}
        --RemoteProcessProxy.port-range {port_range}
        [-- KERNEL OPTIONS]

Everything after ``--`` goes to the kernel's command line (``Kernel.add_arguments`` options).
Needs the ``cryptography`` package besides kernelkit, in the interpreter that runs it.
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
import time
from pathlib import Path

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LAUNCHER_VERSION = 1  # the payload format EG 2.x/3.x expects from current launchers
CHANNELS = ("shell", "iopub", "stdin", "hb", "control")
MAX_PORT_TRIES = 50
STARTUP_TIMEOUT = float(os.environ.get("KERNEL_LAUNCH_TIMEOUT", "60"))  # EG passes its own


def log(message: str) -> None:
    """One line on stderr: EG's DistributedProcessProxy sends it to the kernel's log file."""
    print(f"[launch_kernelkit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


class GatewayListener(threading.Thread):
    """Carries out EG's requests on the communication socket; remembers when EG last spoke."""

    def __init__(self, comm: socket.socket, kernel: subprocess.Popen) -> None:
        super().__init__(name="gateway-listener", daemon=True)
        self.comm = comm
        self.kernel = kernel
        self.last_request: float | None = None  # monotonic time of EG's last request; None: never
        self.shutdown_requested = threading.Event()

    def run(self) -> None:
        self.comm.listen(5)
        while not self.shutdown_requested.is_set():
            try:
                conn, _ = self.comm.accept()
            except OSError:  # the socket was closed: the launcher is ending
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while chunk := conn.recv(1024):
                        data += chunk
                except OSError:
                    continue
            try:
                request = json.loads(data or b"{}")
            except ValueError:
                continue
            self.last_request = time.monotonic()
            if request.get("signum") is not None and self.kernel.poll() is None:
                signum = int(request["signum"])
                if signum:  # 0 is a liveness poll: accepting the connection answered it
                    log(f"gateway asks for signal {signum}")
                    self.kernel.send_signal(signum)
            if request.get("shutdown"):
                log("gateway asks the listener to stop")
                self.shutdown_requested.set()


def wait_for_ports(path: Path, kernel: subprocess.Popen, timeout: float) -> dict:
    """The connection file once the kernel has bound its sockets and written their ports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kernel.poll() is not None:
            raise RuntimeError(f"the kernel exited with {kernel.returncode} before binding its ports")
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            info = {}
        if info and all(info.get(f"{name}_port") for name in CHANNELS):
            return info
        time.sleep(0.01)
    raise RuntimeError(f"the kernel did not bind its ports within {timeout:.0f} s")


def wait_listening(info: dict, kernel: subprocess.Popen, timeout: float) -> None:
    """Wait until the kernel accepts TCP connections on all five ports it was given."""
    host = "127.0.0.1" if info["ip"] in ("0.0.0.0", "") else info["ip"]  # noqa: S104
    waiting = [info[f"{name}_port"] for name in CHANNELS]
    deadline = time.monotonic() + timeout
    while waiting:
        if kernel.poll() is not None:
            raise RuntimeError(f"the kernel exited with {kernel.returncode} before binding its ports")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the kernel did not bind ports {waiting} within {timeout:.0f} s")
        try:
            socket.create_connection((host, waiting[0]), timeout=1).close()
            waiting.pop(0)
        except OSError:
            time.sleep(0.01)


def stop_kernel(kernel: subprocess.Popen, grace: float = 5) -> int:
    if kernel.poll() is None:
        kernel.terminate()
        try:
            return kernel.wait(grace)
        except subprocess.TimeoutExpired:
            kernel.kill()
    return kernel.wait()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    kernel_options: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, kernel_options = argv[:at], argv[at + 1:]
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
    parser.add_argument("--gateway-silence", type=float, default=60, metavar="SECONDS",
                        help="after EG's first poll, stop the kernel when EG sends nothing for this long "
                             "(EG polls every 3 s; 0 disables)")
    args = parser.parse_args(argv)
    if args.spark_mode not in ("none", None):
        parser.error("kernelkit kernels have no Spark context: use --RemoteProcessProxy.spark-context-initialization-mode none")

    lower, upper = parse_port_range(args.port_range)
    if upper > lower:  # EG asked for ports inside a range: choose them here, the kernel binds them
        held = [bind_socket(args.ip, lower, upper) for _ in CHANNELS]  # hold all five until chosen
        ports = {f"{name}_port": sock.getsockname()[1] for name, sock in zip(CHANNELS, held)}
        for sock in held:
            sock.close()
    else:  # port 0: the kernel binds free ports itself and writes them into the file
        ports = {f"{name}_port": 0 for name in CHANNELS}
    info = {**ports, "ip": args.ip, "transport": "tcp", "key": os.urandom(16).hex(),
            "signature_scheme": "hmac-sha256", "kernel_name": ""}
    folder = Path(tempfile.mkdtemp(prefix=f"kernel-{args.kernel_id}-"))
    connection_file = folder / "connection.json"
    fd = os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=1)

    # kernelkit_launcher keeps the current folder off sys.path; --parent: the kernel exits by
    # itself if this launcher dies, even by SIGKILL.
    kernel = subprocess.Popen([sys.executable, "-m", "kernelkit_launcher", args.kernel, "-f", str(connection_file),
                               "--parent", str(os.getpid()), *kernel_options])
    signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
    signal.signal(signal.SIGINT, lambda *_: kernel.send_signal(signal.SIGINT))
    comm = bind_socket(args.ip, lower, upper)
    try:
        try:
            info = wait_for_ports(connection_file, kernel, STARTUP_TIMEOUT)
            if upper > lower:  # ports chosen here: the file had them from the start
                wait_listening(info, kernel, STARTUP_TIMEOUT)
        except RuntimeError as exc:
            log(f"error: {exc}")
            return stop_kernel(kernel) or 1
        finally:
            # The kernel has read the file (and written its ports): nobody needs it any more, so
            # the key leaves the disk now, and nothing is left behind even if we are SIGKILLed.
            connection_file.unlink(missing_ok=True)
            folder.rmdir()
        reply = {**info, "pid": kernel.pid, "pgid": os.getpgid(kernel.pid), "comm_port": comm.getsockname()[1],
                 "kernel_id": args.kernel_id}
        listener = GatewayListener(comm, kernel)
        listener.start()
        host, _, port = args.response_address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=30) as response:
            response.sendall(encrypt(reply, args.public_key))
        log(f"kernel {args.kernel_id} (pid {kernel.pid}) started; connection info sent to {args.response_address}")

        while True:
            try:
                return kernel.wait(1)
            except subprocess.TimeoutExpired:
                pass
            heard = listener.last_request
            if args.gateway_silence and heard is not None and time.monotonic() - heard > args.gateway_silence:
                log(f"no word from the gateway for {args.gateway_silence:.0f} s: it is gone, stopping the kernel")
                stop_kernel(kernel)
                return 0
    finally:
        comm.close()
        if kernel.poll() is None:
            stop_kernel(kernel)

if __name__ == "__main__":
    sys.exit(main())
