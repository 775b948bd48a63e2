"""Real Jupyter Enterprise Gateway for the tests and the benchmark: its own virtualenv, EG as a
subprocess on loopback, a test sshd for the distributed (SSH) process proxy, and kernelspecs.

EG 3.3 pins ``jupyter_client<7`` and ``pyzmq<25``, so it cannot live in the project's
environment; :func:`eg_python` creates a virtualenv for it with pip (once, cached in
``$KERNELKIT_EG_VENV`` or the system temp folder, keyed by EG and Python version; a lock makes
concurrent creators wait for one another). The kernels EG starts run kernelkit from the
project's environment: their kernelspec ``argv`` names this interpreter (``sys.executable``).

The SSH "remote host" is this machine on another loopback address (``127.0.0.2``): EG sends
commands over SSH to every address it does not count as local (it checks its interfaces'
addresses, and ``127.0.0.2`` is none of them), so the distributed proxy really goes through
``sshd``. Keys, ``sshd_config``, ``known_hosts`` and the SSH client's HOME are all in a
temporary folder; nothing touches the real home or ``/etc/ssh``.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from frontend_kit import REPO, KernelSocket, Server, free_port, http_json, wait_until

EG_VERSION = "3.3.0"
EG_REQUIREMENT = f"jupyter-enterprise-gateway=={EG_VERSION}"
LAUNCHER = REPO / "examples" / "enterprise_gateway" / "launch_kernelkit.py"
SHOWCASE = REPO / "examples" / "showcase.py"
REMOTE_HOST = "127.0.0.2"  # loopback, but not an address EG considers local: it uses SSH
LOCAL_PROXY = "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
DISTRIBUTED_PROXY = "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy"

# kernelspec names served by the test gateway
ECHO_LOCAL = "kk-eg-echo"
SHOWCASE_LOCAL = "kk-eg-showcase"
ECHO_SSH = "kk-eg-echo-ssh"
SHOWCASE_SSH = "kk-eg-showcase-ssh"
SHOWCASE_SSH_MESSAGE = "kk-eg-showcase-ssh-msg"  # interrupt_mode "message": EG interrupts on control
IPYKERNEL_LOCAL = "eg-python3"


# ---- EG's own virtualenv ---------------------------------------------------------------------


def eg_venv_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"kernelkit-eg-{EG_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    return Path(os.environ.get("KERNELKIT_EG_VENV", default))


def eg_python() -> Path:
    """The interpreter of EG's virtualenv, created with pip on first use (40-60 s on two cores)."""
    venv = eg_venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".kernelkit-ready"
    if marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(str(venv) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be creating it right now
        if marker.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted run
        base = getattr(sys, "_base_executable", sys.executable)
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        if _pip_can_target_another_python():
            # no ensurepip needed (Debian's python3 lacks it without python3-venv), and faster:
            # this environment's pip installs into the new one
            subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
            install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", EG_REQUIREMENT]
        else:
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
            install = [str(python), "-m", "pip", "install", "-q", EG_REQUIREMENT]
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"pip install {EG_REQUIREMENT} failed:\n{result.stdout}\n{result.stderr}")
        marker.write_text(EG_REQUIREMENT + "\n")
    return python


def _pip_can_target_another_python() -> bool:
    """pip 22.3+ has ``--python``: it can install into another environment."""
    try:
        import pip
    except ImportError:
        return False
    major, minor = (int(part) for part in pip.__version__.split(".")[:2])
    return (major, minor) >= (22, 3)


# ---- kernelspecs -----------------------------------------------------------------------------


def write_spec(root: Path, name: str, argv: list[str], proxy: str, *, language: str = "text",
               display_name: str | None = None, interrupt_mode: str = "signal",
               proxy_config: dict[str, Any] | None = None) -> None:
    folder = root / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    process_proxy: dict[str, Any] = {"class_name": proxy}
    if proxy_config:
        process_proxy["config"] = proxy_config
    spec = {"argv": argv, "display_name": display_name or name, "language": language,
            "interrupt_mode": interrupt_mode, "metadata": {"process_proxy": process_proxy}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))


def remote_argv(target: str, gateway_silence: float) -> list[str]:
    """The argv of a kernelkit kernel under EG's remote proxies: this interpreter runs the launcher."""
    return [sys.executable, str(LAUNCHER), "--kernel", target, "--ip", REMOTE_HOST,
            "--gateway-silence", str(gateway_silence),
            "--RemoteProcessProxy.kernel-id", "{kernel_id}",
            "--RemoteProcessProxy.response-address", "{response_address}",
            "--RemoteProcessProxy.public-key", "{public_key}",
            "--RemoteProcessProxy.port-range", "{port_range}",
            "--RemoteProcessProxy.spark-context-initialization-mode", "none"]


def write_kernelspecs(root: Path, gateway_silence: float = 10, ssh_port_range: str | None = None) -> None:
    """The kernelspecs the test gateway serves (its JUPYTER_PATH is ``root``, nothing else).

    ``ssh_port_range``: EG's ``port_range`` for the SSH echo kernel (``"LOW..HIGH"``, at least 1000 ports).
    """
    here = sys.executable
    write_spec(root, ECHO_LOCAL, [here, "-m", "kernelkit_launcher", "kernelkit.kernels.echo", "-f",
                                  "{connection_file}"], LOCAL_PROXY, display_name="Echo (kernelkit, EG local)")
    write_spec(root, SHOWCASE_LOCAL, [here, "-m", "kernelkit_launcher", str(SHOWCASE), "-f", "{connection_file}"],
               LOCAL_PROXY, language="python", display_name="Showcase (kernelkit, EG local)")
    write_spec(root, ECHO_SSH, remote_argv("kernelkit.kernels.echo", gateway_silence), DISTRIBUTED_PROXY,
               display_name="Echo (kernelkit, EG over SSH)",
               proxy_config={"port_range": ssh_port_range} if ssh_port_range else None)
    write_spec(root, SHOWCASE_SSH, remote_argv(str(SHOWCASE), gateway_silence), DISTRIBUTED_PROXY,
               language="python", display_name="Showcase (kernelkit, EG over SSH)")
    write_spec(root, SHOWCASE_SSH_MESSAGE, remote_argv(str(SHOWCASE), gateway_silence), DISTRIBUTED_PROXY,
               language="python", display_name="Showcase (kernelkit, EG over SSH, message interrupts)",
               interrupt_mode="message")
    write_spec(root, IPYKERNEL_LOCAL, [here, "-m", "ipykernel_launcher", "-f", "{connection_file}"], LOCAL_PROXY,
               language="python", display_name="Python 3 (ipykernel, EG local)")


# ---- a test sshd -----------------------------------------------------------------------------


class SSHD:
    """Debian's sshd on ``REMOTE_HOST:port``, key-only, with a host key and a client key made here.

    ``home`` is the SSH client's HOME: ``.ssh/id_ed25519`` and ``.ssh/known_hosts`` for paramiko
    (EG loads the "system" host keys from ``~/.ssh/known_hosts`` and rejects unknown hosts).
    """

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.home = root / "client-home"
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(parents=True, mode=0o700)
        self.port = free_port()
        self.user = getpass.getuser()
        host_key = root / "ssh_host_ed25519_key"
        client_key = ssh_dir / "id_ed25519"
        for key in (host_key, client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kernelkit-test", "-f", str(key)],
                           check=True)
        authorized = root / "authorized_keys"
        authorized.write_text(client_key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)
        host_pub = host_key.with_suffix(".pub").read_text().split()
        (ssh_dir / "known_hosts").write_text(f"[{REMOTE_HOST}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        config = root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {REMOTE_HOST}:{self.port}",
            f"HostKey {host_key}",
            f"PidFile {root / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the key files live in a temporary folder
            "PermitUserEnvironment no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            "",
        ]))
        if os.geteuid() == 0:  # sshd as root needs its privilege-separation folder (Debian's is /run/sshd)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.server = Server(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], log_path=log_path)
        wait_until(self._listening, 20, f"sshd on {REMOTE_HOST}:{self.port}")

    def _listening(self) -> bool:
        self.server.check_alive()
        import socket

        with socket.create_connection((REMOTE_HOST, self.port), timeout=2) as sock:
            return sock.recv(64).startswith(b"SSH-")

    def run(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``command`` over SSH as the test user (the client checks the host key too)."""
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.home / ".ssh" / "id_ed25519"),
             "-o", f"UserKnownHostsFile={self.home / '.ssh' / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", f"{self.user}@{REMOTE_HOST}", command],
            capture_output=True, text=True, timeout=timeout,
        )

    def stop(self) -> None:
        self.server.stop(grace=5)


# ---- Enterprise Gateway ----------------------------------------------------------------------


class Gateway:
    """``jupyter-enterprisegateway`` from its own venv on ``127.0.0.1:port``, in its own session."""

    started: list[str] = []  # ids of every kernel any Gateway started in this process

    def __init__(self, *, specs: Path, workdir: Path, log_path: Path, sshd: SSHD | None = None,
                 cull_idle_timeout: int = 0, extra_args: list[str] | None = None,
                 token: str | None = None, debug: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = uuid.uuid4().hex if token is None else token
        self.auth = {"Authorization": f"token {self.token}"}
        self.kernel_log_dir = workdir / "kernel-logs"
        self.kernel_log_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "JUPYTER_PATH": str(specs),  # only the test's kernelspecs
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "EG_RESPONSE_IP": "127.0.0.1",  # the response socket stays on loopback
            "EG_RESPONSE_PORT": str(free_port()),
            "EG_KERNEL_LOG_DIR": str(self.kernel_log_dir),
            "EG_KERNEL_LAUNCH_TIMEOUT": "40",
            # EG refuses kernels for root by default; the suite may run as root (CI does)
            "EG_UNAUTHORIZED_USERS": "kernelkit-nobody",
        }
        args = [str(eg_python()), "-m", "enterprise_gateway", "--ip=127.0.0.1", f"--port={self.port}",
                "--port_retries=0", f"--EnterpriseGatewayApp.auth_token={self.token}",
                "--EnterpriseGatewayApp.list_kernels=True"] + (["--debug"] if debug else [])
        if sshd is not None:
            env.update({"HOME": str(sshd.home), "EG_SSH_PORT": str(sshd.port), "EG_REMOTE_USER": sshd.user})
            args.append(f"--EnterpriseGatewayApp.remote_hosts={REMOTE_HOST}")
        if cull_idle_timeout:
            args += [f"--RemoteMappingKernelManager.cull_idle_timeout={cull_idle_timeout}",
                     "--RemoteMappingKernelManager.cull_interval=1"]
        args += extra_args or []
        self.server = Server(args, log_path=log_path, env=env, cwd=workdir)
        self.server.wait_http(f"{self.url}/api/kernelspecs", headers=self.auth, timeout=60)

    # REST helpers
    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        return http_json(method, f"{self.url}{path}", body, self.auth, timeout=timeout)

    def start_kernel(self, name: str, env: dict[str, str] | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if env:
            body["env"] = env
        status, model = self.api("POST", "/api/kernels", body)
        assert status == 201, f"{status} {model}\n{self.server.log()[-3000:]}"
        Gateway.started.append(model["id"])
        return model["id"]

    def kernel_ids(self) -> list[str]:
        status, kernels = self.api("GET", "/api/kernels")
        assert status == 200, kernels
        return [k["id"] for k in kernels]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill EG alone (not its process group): what a crash or an OOM kill does."""
        os.kill(self.server.proc.pid, sig)
        self.server.proc.wait(20)

    def stop(self) -> None:
        self.server.stop(grace=15)


# ---- processes -------------------------------------------------------------------------------


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose command line mentions ``marker`` (a kernel id, a temp folder)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if marker in cmdline and proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)


def wait_gone(marker: str, timeout: float) -> list[psutil.Process]:
    """Wait for every process mentioning ``marker`` to end; returns those still alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = processes_with(marker)
        if not alive:
            return []
        time.sleep(0.2)
    return processes_with(marker)


@contextlib.contextmanager
def no_leftovers(*markers: str, timeout: float = 15) -> Iterator[None]:
    """Fail if any process mentioning a marker outlives the block (killing it first)."""
    try:
        yield
    finally:
        left = {m: wait_gone(m, timeout) for m in markers}
        leftovers = {}
        for marker, procs in left.items():
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    leftovers.setdefault(marker, []).append(" ".join(proc.cmdline()))
            kill_all(procs)
    assert not leftovers, f"processes left behind: {leftovers}"


# ---- a kernel's channels websocket -------------------------------------------------------------


def open_kernel(gateway: Gateway, kernel_id: str, timeout: float = 60) -> tuple[KernelSocket, dict[str, Any]]:
    """A channels websocket on which the kernel answers ``kernel_info``, and that answer.

    Reconnects until then: a websocket opened while EG is still (re)starting a remote kernel is
    wired to port 0 and stays deaf (EG 3.3 / jupyter_server 1.x), as a browser tab would find.
    """
    deadline = time.monotonic() + timeout
    while True:
        ws = KernelSocket(gateway.url, kernel_id, gateway.token)
        try:
            return ws, ws.kernel_info(timeout=min(5.0, max(1.0, deadline - time.monotonic())))
        except Exception:
            ws.close()
            if time.monotonic() > deadline:
                raise


def stream_text(iopub: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream")
