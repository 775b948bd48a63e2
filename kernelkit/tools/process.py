"""The one way kernelkit's tools turn a kernelspec into a running kernel, exactly as jupyter_client does.

What jupyter_client 8 (``KernelManager.format_kernel_cmd``, ``KernelProvisionerBase.pre_launch``,
``LocalProvisioner``, ``launcher.launch_kernel``) does, and so what this module does:

- **argv**: a bare ``python``, ``python3`` or ``python3.X`` (X: the *launcher's own* minor
  version) as ``argv[0]`` becomes the launcher's ``sys.executable`` — the frontend's
  interpreter, not the kernel's environment; then every ``{name}`` in any argument is replaced
  where ``name`` is ``connection_file`` (the real path), ``resource_dir`` (the kernelspec's
  folder) or ``prefix`` (the launcher's ``sys.prefix``), other ``{...}`` stay as they are; then
  ``~`` is expanded in every argument.
- **env**: the launcher's environment, updated with the kernelspec's ``env`` whose values get
  ``${VAR}`` / ``$VAR`` expanded from the launcher's environment (``string.Template``,
  unknown names left as they are); ``PYTHONEXECUTABLE`` removed for Python kernels;
  ``JPY_PARENT_PID`` set to the launcher's pid.
- **process**: a new session (``start_new_session``: its own process group), ``stdin`` a pipe,
  ``cwd`` as given (default: the launcher's).
- **interrupt**: ``interrupt_mode`` ``signal`` (default) sends SIGINT to the kernel's process
  group (to the process if that fails); ``message`` sends ``interrupt_request`` on control.

:class:`KernelProcess` is used by ``kernelkit exec``, ``doctor``, ``bench`` and ``test``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import zmq

from kernelkit.tools.client import KernelClient, KernelGone
from kernelkit.tools.kernelspecs import KernelSpec, expand_env
from kernelkit.transport import connection
from kernelkit.transport.connection import ConnectionInfo

_FIELD = re.compile(r"\{([A-Za-z0-9_]+)\}")


def bare_pythons(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> set[str]:
    """The ``argv[0]`` values jupyter_client replaces with its own interpreter."""
    return {"python", f"python{version[0]}", f"python{version[0]}.{version[1]}"}


def format_argv(
    argv: Sequence[str],
    connection_file: str | os.PathLike[str],
    resource_dir: str | os.PathLike[str] = "",
    *,
    python: str = sys.executable,
    python_version: tuple[int, ...] | None = None,
    prefix: str = sys.prefix,
    extra: Mapping[str, str] | None = None,
) -> list[str]:
    """``argv`` with the substitutions jupyter_client makes (see the module docstring).

    ``python`` / ``python_version``: the launcher's interpreter and its version (default: this
    one), e.g. the frontend's when doctor models what a frontend on another Python runs.
    """
    cmd = list(argv)
    if cmd and cmd[0] in bare_pythons(python_version or tuple(sys.version_info[:2])):
        cmd[0] = python
    ns = {
        "connection_file": os.path.realpath(connection_file),
        "prefix": prefix,
        "resource_dir": str(resource_dir),
        **(extra or {}),
    }
    cmd = [_FIELD.sub(lambda m: ns.get(m.group(1), m.group()), arg) for arg in cmd]
    return [os.path.expanduser(arg) for arg in cmd]


def kernel_env(
    spec_env: Mapping[str, str],
    language: str = "",
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment a kernel process gets (see the module docstring)."""
    env = dict(os.environ if base is None else base)
    env.update(expand_env(spec_env, env))
    if language.lower().startswith("python"):
        env.pop("PYTHONEXECUTABLE", None)
    env["JPY_PARENT_PID"] = str(os.getpid())
    return env


class KernelDiedError(RuntimeError):
    """The kernel process exited (or could not start) before answering; ``stderr`` holds what it printed."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class KernelProcess:
    """A kernel started from a kernelspec with a fresh connection file, and a :class:`KernelClient` on it.

    ``argv`` / ``env`` / ``resource_dir`` / ``interrupt_mode`` / ``language`` come from
    ``spec`` (a :class:`kernelkit.tools.kernelspecs.KernelSpec`) unless given. ``key=""``
    starts the kernel without message signing. The kernel's stdout and stderr go to a
    temporary file (:meth:`stderr`). ``python`` / ``python_version``: the launcher interpreter
    to model for a bare ``python`` in argv (default: this one; doctor passes the frontend's).
    """

    def __init__(
        self,
        spec: KernelSpec | None = None,
        *,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        resource_dir: str | os.PathLike[str] | None = None,
        interrupt_mode: str | None = None,
        language: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        context: zmq.Context | None = None,
        shells: int = 1,
        key: str | None = None,
        kernel_name: str | None = None,
        python: str | None = None,
        python_version: tuple[int, ...] | None = None,
    ) -> None:
        if argv is None:
            if spec is None:
                raise TypeError("KernelProcess needs a kernelspec or an argv")
            argv = spec.argv
        self.name = kernel_name or (spec.name if spec is not None else "")
        self.interrupt_mode = (interrupt_mode or (spec.interrupt_mode if spec is not None else "signal")).lower()
        spec_env = env if env is not None else (spec.env if spec is not None else {})
        language = language if language is not None else (spec.language if spec is not None else "")
        folder = resource_dir if resource_dir is not None else (spec.resource_dir if spec is not None else "")
        self.started = time.perf_counter()
        self.info = ConnectionInfo(kernel_name=self.name)
        for channel, port in zip(connection.CHANNELS, connection.free_tcp_ports(len(connection.CHANNELS)), strict=True):
            self.info.set_port(channel, port)
        if key is not None:
            self.info.key = key
        self.connection_file = connection.write(
            self.info, connection.runtime_path(f"kernel-{os.urandom(8).hex()}.json")
        )
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(), it outlives this call
        try:  # a start that fails for any reason leaves no connection file (it holds the key) behind
            self.argv = format_argv(
                argv, self.connection_file, folder, python=python or sys.executable, python_version=python_version
            )
            self.env = kernel_env(spec_env, language)
            self.cwd = cwd
            self.process = self._popen()
            try:
                self.spawned = time.perf_counter()
                try:
                    self.pgid: int | None = os.getpgid(self.process.pid)
                except OSError:
                    self.pgid = None
                self.client = KernelClient(self.info, context, shells=shells)
            except BaseException:
                with self.process:  # waits for it and closes its stdin pipe
                    self.process.kill()
                raise
        except BaseException:
            self._output.close()
            Path(self.connection_file).unlink(missing_ok=True)
            raise

    def _popen(self) -> subprocess.Popen[bytes]:
        """The kernel's process, started as jupyter_client starts it; KernelDiedError if it cannot be."""
        if not self.argv:
            raise KernelDiedError("cannot run an empty argv: the kernelspec gives no command", None, "")
        try:
            return subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.PIPE,
                stdout=self._output,
                stderr=self._output,
                start_new_session=True,
            )
        except OSError as exc:
            raise KernelDiedError(f"cannot run {self.argv[0]}: {exc.strerror or exc}", None, "") from None

    @classmethod
    def from_name(cls, name: str, **options: Any) -> KernelProcess:
        """Start the installed kernelspec ``name`` (NoSuchKernel if there is none)."""
        from kernelkit.tools.kernelspecs import get

        return cls(get(name), **options)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        """Everything the kernel wrote to stdout and stderr so far."""
        if self._output.closed:
            return ""
        self._output.seek(0)
        return self._output.read().decode("utf-8", "replace")

    def _died(self) -> KernelDiedError:
        return KernelDiedError(
            f"the kernel exited with code {self.process.returncode} before answering",
            self.process.returncode,
            self.stderr(),
        )

    def wait_ready(self, timeout: float = 30.0, iopub: bool = True) -> dict[str, Any]:
        """The first ``kernel_info_reply``'s content, then (if ``iopub``) until iopub is subscribed.

        One request is enough: a DEALER queues it until the kernel has bound its port.
        KernelDiedError if the process exits first, TimeoutError after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        try:
            reply = self.client.request(self.client.shell, "kernel_info_request", {}, timeout=timeout, alive=self.alive)
            self.ready = time.perf_counter()
            if iopub:
                self.client.await_iopub(max(0.1, deadline - time.monotonic()), alive=self.alive)
        except KernelGone:
            raise self._died() from None
        except TimeoutError as exc:
            raise TimeoutError(
                f"the kernel did not answer kernel_info_request within {timeout:g} s"
                if "reply" in str(exc)
                else str(exc)
            ) from None
        return reply["content"]

    def interrupt(self) -> None:
        """Interrupt as a frontend would: SIGINT to the process group, or ``interrupt_request`` on control."""
        if self.interrupt_mode == "message":
            self.client.send(self.client.control, "interrupt_request", {})
            return
        self.signal(signal.SIGINT)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group, or to the process if that fails."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signum)
                return
            except OSError:
                pass
        try:
            self.process.send_signal(signum)
        except OSError:
            pass

    def kill(self) -> None:
        """SIGKILL the process group (kernels such as bash_kernel start children)."""
        self.signal(signal.SIGKILL)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down politely (``shutdown_request`` on control), then kill; removes the connection file."""
        try:
            if self.alive():
                try:
                    self.client.shutdown(timeout=timeout, alive=self.alive)
                    self.process.wait(timeout)
                except (TimeoutError, KernelGone, subprocess.TimeoutExpired):
                    pass
            if self.alive():
                self.kill()
            elif self.pgid is not None:  # children the kernel left in its group
                try:
                    os.killpg(self.pgid, signal.SIGKILL)
                except OSError:
                    pass
        finally:
            self.close()

    def close(self) -> None:
        """Release sockets, pipes and the connection file (the process must be gone or left alone)."""
        self.client.close()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self._output.close()
        Path(self.connection_file).unlink(missing_ok=True)

    def __enter__(self) -> KernelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
