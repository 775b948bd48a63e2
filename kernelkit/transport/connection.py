"""Connection and registration files: read, write (0600 in a 0700 folder), turn into ZeroMQ addresses.

A connection file is the JSON jupyter_client writes: transport, ip, five ports, key,
signature_scheme, plus optional kernel_name and CurveZMQ keys. A registration file (the kernel
handshake, JEP 66, protocol 5.6) names the launcher's registration socket instead of the
kernel's ports: kernel_id, transport, registration_ip, registration_port, signature_scheme, key.
Knows nothing of messages.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from kernelkit.protocol.wire import new_key

if TYPE_CHECKING:
    from pathlib import Path

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
LOCALHOST = "127.0.0.1"
_NEW = object()  # "not given": a fresh key / an empty dict (``None`` given stays ``None``)


class ConnectionFileError(ValueError):
    """A connection file that is missing, unreadable or malformed."""


class ConnectionInfo:
    """What a connection file holds. A plain class with a dataclass's constructor, ``==`` and
    ``repr``: importing ``dataclasses`` (and, through it, ``inspect``) costs a kernel's start-up
    several milliseconds."""

    FIELDS = (
        "transport",
        "ip",
        "shell_port",
        "iopub_port",
        "stdin_port",
        "control_port",
        "hb_port",
        "key",
        "signature_scheme",
        "kernel_name",
        "extra",
    )
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(
        self,
        transport: str = "tcp",
        ip: str = LOCALHOST,
        shell_port: int = 0,
        iopub_port: int = 0,
        stdin_port: int = 0,
        control_port: int = 0,
        hb_port: int = 0,
        key: str = _NEW,  # type: ignore[assignment]
        signature_scheme: str = "hmac-sha256",
        kernel_name: str = "",
        extra: dict[str, Any] = _NEW,  # type: ignore[assignment]
    ) -> None:
        self.transport = transport
        self.ip = ip
        self.shell_port = shell_port
        self.iopub_port = iopub_port
        self.stdin_port = stdin_port
        self.control_port = control_port
        self.hb_port = hb_port
        self.key = new_key() if key is _NEW else key
        self.signature_scheme = signature_scheme
        self.kernel_name = kernel_name
        self.extra = {} if extra is _NEW else extra

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__qualname__}({fields})"

    def port(self, channel: str) -> int:
        return int(getattr(self, f"{channel}_port"))

    def set_port(self, channel: str, port: int) -> None:
        setattr(self, f"{channel}_port", port)

    def address(self, channel: str) -> str:
        """The ZeroMQ endpoint of ``channel``, in jupyter_client's notation."""
        port = self.port(channel)
        if self.transport == "tcp":
            host = f"[{self.ip}]" if ":" in self.ip else self.ip
            return f"tcp://{host}:{port}"
        return f"ipc://{self.ip}-{port}"

    @property
    def curve_secretkey(self) -> str | None:
        return self.extra.get("curve_secretkey")

    @property
    def curve_publickey(self) -> str | None:
        return self.extra.get("curve_publickey")

    def to_dict(self) -> dict[str, Any]:
        import copy

        data = {name: copy.deepcopy(getattr(self, name)) for name in self.FIELDS if name != "extra"}
        data.update(copy.deepcopy(self.extra))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConnectionInfo:
        known = set(cls.FIELDS) - {"extra"}
        info = cls(**{k: v for k, v in data.items() if k in known})
        info.extra = {k: v for k, v in data.items() if k not in known}
        if info.transport not in ("tcp", "ipc"):
            raise ConnectionFileError(f"transport {info.transport!r} is not supported: use 'tcp' or 'ipc'")
        for channel in CHANNELS:
            port = getattr(info, f"{channel}_port")  # raw value: port() would int() a string, or raise ValueError
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise ConnectionFileError(f"{channel}_port must be an integer from 0 to 65535, not {port!r}")
        if not isinstance(info.key, str) or not isinstance(info.signature_scheme, str):
            raise ConnectionFileError("key and signature_scheme must be strings")
        return info


def _read_object(path: str | os.PathLike[str], what: str = "connection file") -> dict[str, Any]:
    """The JSON object in ``path``, with errors that say which file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:  # not pathlib: a kernel's start-up need not import it
            text = handle.read()
    except FileNotFoundError:
        raise ConnectionFileError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ConnectionFileError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # a ValueError: without this the message would not name the file
        raise ConnectionFileError(f"{what} {path} is not UTF-8 text: {exc.reason}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConnectionFileError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConnectionFileError(f"{what} {path} must hold a JSON object")
    return data


def _info_from(data: dict[str, Any], path: str | os.PathLike[str]) -> ConnectionInfo:
    try:
        return ConnectionInfo.from_dict(data)
    except TypeError as exc:
        raise ConnectionFileError(f"connection file {path} is malformed: {exc}") from None
    except ConnectionFileError as exc:
        raise ConnectionFileError(f"connection file {path}: {exc}") from None


def load(path: str | os.PathLike[str]) -> ConnectionInfo:
    """Read a connection file, with errors that say which file and what is wrong."""
    return _info_from(_read_object(path), path)


def load_startup_file(path: str | os.PathLike[str]) -> ConnectionInfo | RegistrationInfo:
    """What a kernel is started with (``-f FILE``): a connection file, or a registration file (JEP 66).

    A file that names a registration socket (``registration_ip`` or ``registration_port``, the
    fields a connection file never has; xeus decides the same way) is a registration file.
    """
    data = _read_object(path, "connection file")
    if not is_registration(data):
        return _info_from(data, path)
    try:
        return RegistrationInfo.from_dict(data)
    except ConnectionFileError as exc:
        raise ConnectionFileError(f"registration file {path}: {exc}") from None


def is_registration(data: dict[str, Any]) -> bool:
    """Whether a startup file's JSON is a registration file rather than a connection file."""
    return "registration_ip" in data or "registration_port" in data


class RegistrationInfo:
    """What a registration file holds (kernel handshake, JEP 66; jupyter_client docs, protocol 5.6).

    The kernel binds its own five ports, then tells the launcher which they are on the
    registration socket ``transport://registration_ip:registration_port``, signing with ``key``.
    ``ip`` (optional, read by xeus) is where the kernel binds its channels; by default the
    registration address, which the launcher can reach by construction.
    """

    FIELDS = ("kernel_id", "transport", "registration_ip", "registration_port", "key", "signature_scheme", "ip")
    #: Keys carried over to the kernel's connection info (CurveZMQ, as in a connection file).
    PASSED_ON = ("curve_publickey", "curve_secretkey", "kernel_name")
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        kernel_id: str,
        registration_port: int,
        registration_ip: str = LOCALHOST,
        transport: str = "tcp",
        key: str = "",
        signature_scheme: str = "hmac-sha256",
        ip: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self.transport = transport
        self.registration_ip = registration_ip
        self.registration_port = registration_port
        self.key = key
        self.signature_scheme = signature_scheme
        self.ip = ip or registration_ip
        self.extra = {} if extra is None else extra

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in (*self.FIELDS, "extra"))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS if name != "key")
        return f"{type(self).__qualname__}({fields}, key=...)"

    @property
    def address(self) -> str:
        """The registration socket's endpoint, in jupyter_client's notation."""
        if self.transport == "tcp":
            host = f"[{self.registration_ip}]" if ":" in self.registration_ip else self.registration_ip
            return f"tcp://{host}:{self.registration_port}"
        return f"ipc://{self.registration_ip}-{self.registration_port}"

    def connection_info(self) -> ConnectionInfo:
        """The kernel's own connection: every port 0 (the server binds free ones), same key and scheme."""
        extra = {k: self.extra[k] for k in self.PASSED_ON if k in self.extra and k != "kernel_name"}
        return ConnectionInfo(
            transport=self.transport,
            ip=self.ip,
            key=self.key,
            signature_scheme=self.signature_scheme,
            kernel_name=str(self.extra.get("kernel_name", "")),
            extra=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.FIELDS}
        if data["ip"] == self.registration_ip:
            del data["ip"]
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegistrationInfo:
        for name in ("kernel_id", "registration_ip"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ConnectionFileError(f"{name} must be a non-empty string, not {data.get(name)!r}")
        port = data.get("registration_port")
        # jupyter_client's docs write the port as a number, xeus reads it as a string: take both.
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
            raise ConnectionFileError(f"registration_port must be an integer from 1 to 65535, not {port!r}")
        transport = data.get("transport", "tcp")
        if transport not in ("tcp", "ipc"):
            raise ConnectionFileError(f"transport {transport!r} is not supported: use 'tcp' or 'ipc'")
        key, scheme, ip = data.get("key", ""), data.get("signature_scheme", "hmac-sha256"), data.get("ip", "")
        if not isinstance(key, str) or not isinstance(scheme, str) or not isinstance(ip, str):
            raise ConnectionFileError("key, signature_scheme and ip must be strings")
        extra = {k: v for k, v in data.items() if k not in cls.FIELDS}
        return cls(data["kernel_id"], port, data["registration_ip"], transport, key, scheme, ip, extra)


def write(info: ConnectionInfo | RegistrationInfo, path: str | os.PathLike[str]) -> Path:
    """Write atomically, readable by the owner only; the folder is created 0700."""
    import tempfile  # lazily, as socket and pathlib: a kernel given a connection file needs none
    from pathlib import Path

    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kernel-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info.to_dict(), handle, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def free_tcp_ports(count: int, ip: str = LOCALHOST) -> list[int]:
    """Ports free right now on ``ip`` (for clients that must name ports before a kernel binds)."""
    import socket

    sockets = []
    try:
        for _ in range(count):
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.bind((ip, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def runtime_path(name: str) -> Path:
    """Where kernelkit puts connection files it creates: the Jupyter runtime dir."""
    from pathlib import Path

    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir()) / name
