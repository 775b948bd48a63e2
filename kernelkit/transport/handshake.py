"""The kernel's side of the kernel handshake (JEP 66; jupyter_client docs, protocol 5.6).

Started with a registration file instead of a connection file, the kernel binds its five
channels to ports it chooses itself (so no other process can take them between the launcher's
choice and the kernel's bind), then:

1. connects a DEALER socket to the launcher's registration socket;
2. sends one minimal signed message, ``[<IDS|MSG>, signature, content]`` whose content is
   ``{"kernel_id", "control_port", "shell_port", "stdin_port", "iopub_port", "hb_port"}``
   (ports as strings, as the spec writes them and xeus sends them);
3. waits, bounded, for the launcher's signed acknowledgement (any content), and closes the socket.

A launcher that does not acknowledge in time (it died, or rejected the signature) makes the
kernel exit with :class:`HandshakeError` rather than serve ports nobody knows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from kernelkit._log import log
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import WireError
from kernelkit.transport.connection import CHANNELS, ConnectionInfo, RegistrationInfo
from kernelkit.transport.server import KernelStartError

#: Seconds the kernel waits for the launcher's acknowledgement (JEP 66 leaves it to the
#: implementation; xeus waits 5 s). Generous: a launcher starting many kernels at once on a busy
#: machine may take a while to answer each.
DEFAULT_TIMEOUT = 30.0
POLL_SLICE = 0.1  # seconds between checks of ``stopping`` while waiting


class HandshakeError(KernelStartError):
    """The launcher did not acknowledge the kernel's registration; the message says what to do."""


def registration_content(registration: RegistrationInfo, info: ConnectionInfo) -> dict[str, str]:
    """The registration message's content: the kernel_id from the registration file and the bound ports."""
    content = {"kernel_id": registration.kernel_id}
    for channel in ("control", "shell", "stdin", "iopub", "hb"):
        assert channel in CHANNELS and info.port(channel), f"{channel} is not bound"
        content[f"{channel}_port"] = str(info.port(channel))
    return content


def register(
    registration: RegistrationInfo,
    info: ConnectionInfo,
    session: Session,
    timeout: float = DEFAULT_TIMEOUT,
    stopping: Callable[[], bool] = lambda: False,
) -> bool:
    """Send the bound ports of ``info`` to the launcher and wait for its acknowledgement.

    Returns True once acknowledged, False if ``stopping()`` became true meanwhile (SIGTERM, the
    parent's death); raises :class:`HandshakeError` after ``timeout`` seconds without a valid
    acknowledgement. Messages with a wrong signature are dropped with a log line, as on any channel.
    """
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(registration.address)
        sock.send_multipart(session.serialize_content(registration_content(registration, info)))
        log.info(
            "registered with %s as %s; waiting for the acknowledgement", registration.address, registration.kernel_id
        )
        deadline = time.monotonic() + timeout
        while not stopping():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HandshakeError(
                    f"the launcher at {registration.address} did not acknowledge this kernel's registration "
                    f"within {timeout:g} s. Check that the launcher is running and that the registration file's "
                    "key is the launcher's key, or start the kernel with a connection file."
                )
            if not sock.poll(int(min(remaining, POLL_SLICE) * 1000)):
                continue
            try:
                session.deserialize_content(sock.recv_multipart())
            except WireError as exc:
                log.dropped("registration", exc)
                continue
            log.info("the launcher acknowledged the registration")
            return True
        return False
    finally:
        sock.close(linger=0)
        context.term()
