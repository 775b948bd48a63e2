"""The floor kernel: the least a Jupyter kernel can do, on bare pyzmq, as the benchmarks' yardstick.

No framework and no kernelkit import. It reads the connection file given with ``-f``, binds the
five channels, and answers kernel_info_request, execute_request (busy, execute_input, a stdout
``stream`` echoing the code, execute_reply, idle: the echo kernel's messages with the same JSON
content) and shutdown_request. Every message is HMAC-signed and carries its request's header
as parent. Whatever a real kernel costs beyond this is framework overhead.

    python kernelkit/floor_kernel.py -f CONNECTION_FILE   (benchmarks/floor_kernel.py links here)

It ships inside the package for `kernelkit bench`, but runs as a script: it never imports kernelkit.
"""

import hmac
import json
import os
import signal
import sys
import threading
from datetime import datetime, timezone

import zmq

DELIM = b"<IDS|MSG>"
SNDMORE = int(zmq.SNDMORE)
KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.5",
    "implementation": "Echo",
    "implementation_version": "1.0",
    "language_info": {"name": "Any text", "version": "0.1", "mimetype": "text/plain", "file_extension": ".txt"},
    "banner": "Echo kernel - as useful as a parrot",
    "help_links": [],
    "supported_features": [],
    "debugger": False,
}


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nothing to interrupt; jupyter_client interrupts before shutdown
    with open(sys.argv[sys.argv.index("-f") + 1]) as f:
        cfg = json.load(f)
    keyed = hmac.new(cfg["key"].encode(), digestmod=cfg["signature_scheme"][len("hmac-") :])
    session = os.urandom(16).hex()
    ctx = zmq.Context()

    def bind(kind, name, ctx=ctx):
        sock = ctx.socket(kind)
        sock.linger = 1000
        sock.bind(f"{cfg['transport']}://{cfg['ip']}:{cfg[name + '_port']}")
        return sock

    shell, control, stdin = bind(zmq.ROUTER, "shell"), bind(zmq.ROUTER, "control"), bind(zmq.ROUTER, "stdin")
    iopub, hb = bind(zmq.PUB, "iopub"), bind(zmq.ROUTER, "hb", zmq.Context())
    threading.Thread(target=zmq.proxy, args=(hb, hb), daemon=True).start()  # heartbeat echo in C
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def send(sock, idents, msg_type, parent, content, metadata=b"{}"):
        header = dumps(
            {
                "msg_id": os.urandom(16).hex(),
                "msg_type": msg_type,
                "username": "floor",
                "session": session,
                "date": datetime.now(timezone.utc).isoformat(),
                "version": "5.5",
            }
        ).encode()
        body = dumps(content).encode()
        mac = keyed.copy()
        for part in (header, parent, metadata, body):
            mac.update(part)
        frames = [*idents, DELIM, mac.hexdigest().encode(), header, parent, metadata, body]
        for frame in frames[:-1]:  # int flags: pyzmq's send_multipart does slow enum arithmetic per frame
            sock.send(frame, SNDMORE, copy=len(frame) < 65536)
        sock.send(frames[-1], 0, copy=len(frames[-1]) < 65536)

    def status(parent, state):
        send(iopub, [b"status"], "status", parent, {"execution_state": state})

    status(b"{}", "starting")
    count = 0
    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(control, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll():
            frames = sock.recv_multipart(copy=False)
            i = next(i for i, f in enumerate(frames) if f.bytes == DELIM)
            idents, sig, parts = frames[:i], frames[i + 1].bytes, [f.buffer for f in frames[i + 2 : i + 6]]
            mac = keyed.copy()
            for part in parts:
                mac.update(part)
            if not hmac.compare_digest(sig, mac.hexdigest().encode()):
                print("floor kernel: dropped a message with a bad signature", file=sys.stderr)
                continue
            parent = bytes(parts[0])  # the request's header is the replies' parent_header
            msg_type = json.loads(parent)["msg_type"]
            status(parent, "busy")
            if msg_type == "execute_request":
                code = json.loads(bytes(parts[3]))["code"]
                count += 1
                send(iopub, [b"execute_input"], "execute_input", parent, {"code": code, "execution_count": count})
                send(iopub, [b"stream"], "stream", parent, {"name": "stdout", "text": code})
                send(
                    sock,
                    idents,
                    "execute_reply",
                    parent,
                    {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}},
                    dumps({"started": datetime.now(timezone.utc).isoformat(), "status": "ok"}).encode(),
                )
            elif msg_type == "kernel_info_request":
                send(sock, idents, "kernel_info_reply", parent, KERNEL_INFO)
            elif msg_type == "shutdown_request":
                restart = bool(json.loads(bytes(parts[3])).get("restart", False))
                send(sock, idents, "shutdown_reply", parent, {"status": "ok", "restart": restart})
                status(parent, "idle")
                for s in (shell, control, stdin, iopub):
                    s.close()
                ctx.term()  # waits (linger) until the reply and idle are delivered
                os._exit(0)  # the heartbeat, on its own context, stays blocked in zmq.proxy
            status(parent, "idle")


if __name__ == "__main__":
    main()
