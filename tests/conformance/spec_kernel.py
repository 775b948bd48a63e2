"""A Python kernel written directly on pyzmq from the messaging spec, without kernelkit (nor ipykernel).

Run: ``python spec_kernel.py -f CONNECTION_FILE [--break VIOLATION]``. Without ``--break`` it
is meant to be correct, and ``kernelkit test`` must pass it. Each ``--break`` value (see
``VIOLATIONS``) introduces exactly one protocol violation, for the test suite to check that
the named conformance check catches it.

Design (from the spec only): shell, stdin, iopub on the main thread (user code runs there,
so SIGINT raises KeyboardInterrupt in it); control on its own thread; heartbeat echoed by
a zmq.proxy-like loop on its own thread. iopub is an XPUB that welcomes each subscriber.
"""

from __future__ import annotations

import argparse
import codeop
import contextlib
import hashlib
import hmac
import io
import json
import os
import signal
import sys
import threading
import traceback
import uuid
from datetime import datetime, timezone

import zmq

VIOLATIONS = {
    "kernel_info_no_language_name": "kernel_info",
    "no_control_kernel_info": "kernel_info_control",
    "execute_reply_without_parent": "reply_routing",
    "double_reply": "reply_routing",
    "no_idle": "status_wrap",
    "output_after_idle": "status_wrap",
    "no_execute_input": "execute_order",
    "count_store_history_false": "execution_count",
    "silent_outputs": "silent",
    "error_not_on_iopub": "error",
    "no_abort": "stop_on_error",
    "complete_cursor_past_end": "complete",
    "inspect_found_not_bool": "inspect",
    "is_complete_maybe": "is_complete",
    "history_not_list": "history",
    "comm_info_list": "comm_info",
    "input_request_without_parent": "stdin",
    "input_even_if_disallowed": "stdin_disallowed",
    "ignore_interrupt": "interrupt",
    "no_heartbeat": "heartbeat",
    "no_welcome": "iopub_welcome",
    "accept_wrong_signature": "signature_wrong",
    "accept_unsigned": "signature_missing",
    "accept_replay": "signature_replayed",
    "crash_on_bad_json": "malformed",
    "shutdown_no_exit": "shutdown",
    "restart_flag_false": "restart",
}

DELIM = b"<IDS|MSG>"


class StdinNotAllowed(RuntimeError):
    pass


class SpecKernel:
    def __init__(self, connection_file: str, broken: str | None) -> None:
        with open(connection_file) as f:
            cfg = json.load(f)
        self.broken = broken
        self.key = cfg["key"].encode()
        self.digest = getattr(hashlib, cfg.get("signature_scheme", "hmac-sha256").split("-", 1)[1])
        self.session = uuid.uuid4().hex
        self.seen: set[bytes] = set()
        self.count = 0
        self.ns: dict = {"__name__": "__main__"}
        self.history: list[list] = []
        self.lock = threading.Lock()  # iopub is used by the main and the control thread
        self.ctx = zmq.Context()
        url = f"{cfg['transport']}://{cfg['ip']}:" if cfg["transport"] == "tcp" else f"ipc://{cfg['ip']}-"

        def bind(kind: int, port: int) -> zmq.Socket:
            s = self.ctx.socket(kind)
            s.linger = 0
            s.bind(f"{url}{port}")
            return s

        self.shell = bind(zmq.ROUTER, cfg["shell_port"])
        self.control = bind(zmq.ROUTER, cfg["control_port"])
        self.stdin = bind(zmq.ROUTER, cfg["stdin_port"])
        self.iopub = bind(zmq.PUB if broken == "no_welcome" else zmq.XPUB, cfg["iopub_port"])
        if broken != "no_welcome":
            self.iopub.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, not only a topic's first: welcome each
        self.hb = bind(zmq.ROUTER, cfg["hb_port"])
        self.aborting = False
        self.allow_stdin = False
        self.parent: dict = {}
        self.idents: list[bytes] = []
        self.running = True

    # ---- wire ------------------------------------------------------------------------------------

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        h = hmac.new(self.key, digestmod=self.digest)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def send(self, sock: zmq.Socket, msg_type: str, content: dict, parent: dict | None, idents=()) -> None:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "spec",
            "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.5",
        }
        parts = [json.dumps(p).encode() for p in (header, parent or {}, {}, content)]
        frames = [*idents, DELIM, self.sign(parts), *parts]
        if sock is self.iopub:
            with self.lock:
                self.iopub.send_multipart([msg_type.encode(), *frames])
        else:
            sock.send_multipart(frames)

    def recv(self, sock: zmq.Socket) -> tuple[list[bytes], dict] | None:
        frames = sock.recv_multipart()
        try:
            i = frames.index(DELIM)
        except ValueError:
            return None
        if len(frames) < i + 6:
            return None
        sig, parts = frames[i + 1], frames[i + 2 : i + 6]
        if self.key:
            if not sig and self.broken != "accept_unsigned":
                return None
            if sig and not hmac.compare_digest(sig, self.sign(parts)) and self.broken != "accept_wrong_signature":
                return None
            if sig in self.seen and self.broken != "accept_replay":
                return None
            self.seen.add(sig)
        try:
            header, parent, metadata, content = (json.loads(p) for p in parts)
        except ValueError:
            if self.broken == "crash_on_bad_json":
                os._exit(3)
            return None
        if not all(isinstance(x, dict) for x in (header, parent, metadata, content)) or "msg_type" not in header:
            return None
        return frames[:i], {"header": header, "parent_header": parent, "content": content}

    def status(self, state: str, parent: dict) -> None:
        self.send(self.iopub, "status", {"execution_state": state}, parent)

    # ---- dispatch --------------------------------------------------------------------------------

    def handle(self, sock: zmq.Socket, idents: list[bytes], msg: dict) -> None:
        header = msg["header"]
        msg_type = header["msg_type"]
        self.status("busy", header)
        try:
            reply_type, content = self.dispatch(sock, idents, msg)
        except Exception as exc:
            reply_type = msg_type.replace("_request", "_reply")
            content = {"status": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": []}
        if reply_type is not None:
            parent = {} if self.broken == "execute_reply_without_parent" and reply_type == "execute_reply" else header
            self.send(sock, reply_type, content, parent, idents)
            if self.broken == "double_reply":
                self.send(sock, reply_type, content, parent, idents)
        if self.broken == "output_after_idle" and msg_type == "execute_request":
            self.status("idle", header)
            self.send(self.iopub, "stream", {"name": "stdout", "text": "late\n"}, header)
        elif self.broken != "no_idle":
            self.status("idle", header)
        if msg_type == "shutdown_request" and self.broken != "shutdown_no_exit":
            self.running = False
            os.kill(os.getpid(), signal.SIGTERM)

    def kernel_info(self) -> dict:
        info = {
            "name": "python",
            "version": sys.version.split()[0],
            "mimetype": "text/x-python",
            "file_extension": ".py",
        }
        if self.broken == "kernel_info_no_language_name":
            del info["name"]
        return {
            "status": "ok",
            "protocol_version": "5.5",
            "implementation": "spec_kernel",
            "implementation_version": "1.0",
            "language_info": info,
            "banner": "a kernel from the spec",
            "help_links": [],
            "supported_features": [],
        }

    def dispatch(self, sock: zmq.Socket, idents: list[bytes], msg: dict) -> tuple[str | None, dict]:
        t = msg["header"]["msg_type"]
        c = msg["content"]
        if t == "kernel_info_request":
            return "kernel_info_reply", self.kernel_info()
        if t == "execute_request":
            return "execute_reply", self.execute(idents, msg)
        if t == "complete_request":
            code, pos = c["code"], c["cursor_pos"]
            start = pos
            while start > 0 and (code[start - 1].isalnum() or code[start - 1] in "_."):
                start -= 1
            word = code[start:pos]
            names = list(self.ns) + dir(__builtins__)
            if "." in word:
                obj, _, _attr = word.rpartition(".")
                try:
                    names = [f"{obj}.{a}" for a in dir(eval(obj, self.ns))]
                except Exception:
                    names = []
            matches = sorted({n for n in names if n.startswith(word)})
            end = pos + 5 if self.broken == "complete_cursor_past_end" else pos
            return "complete_reply", {
                "status": "ok",
                "matches": matches,
                "cursor_start": start,
                "cursor_end": end,
                "metadata": {},
            }
        if t == "inspect_request":
            name = c["code"][: c["cursor_pos"]].split()[-1] if c["code"].strip() else ""
            obj = self.ns.get(
                name,
                getattr(__builtins__, name, None) if not isinstance(__builtins__, dict) else __builtins__.get(name),
            )
            found: object = obj is not None
            if self.broken == "inspect_found_not_bool":
                found = "yes" if found else "no"
            data = {"text/plain": (obj.__doc__ or repr(obj))} if obj is not None else {}
            return "inspect_reply", {"status": "ok", "found": found, "data": data, "metadata": {}}
        if t == "is_complete_request":
            if self.broken == "is_complete_maybe":
                return "is_complete_reply", {"status": "maybe"}
            try:
                done = codeop.compile_command(c["code"], symbol="exec")
            except (SyntaxError, ValueError, OverflowError):
                return "is_complete_reply", {"status": "invalid"}
            return "is_complete_reply", (
                {"status": "complete"} if done is not None else {"status": "incomplete", "indent": "    "}
            )
        if t == "history_request":
            entries: object = [list(h) for h in self.history[-int(c.get("n") or 10) :]]
            if self.broken == "history_not_list":
                entries = {"entries": entries}
            return "history_reply", {"status": "ok", "history": entries}
        if t == "comm_info_request":
            return "comm_info_reply", {"status": "ok", "comms": [] if self.broken == "comm_info_list" else {}}
        if t == "shutdown_request":
            restart = bool(c.get("restart")) and self.broken != "restart_flag_false"
            return "shutdown_reply", {"status": "ok", "restart": restart}
        if t == "interrupt_request":
            os.kill(os.getpid(), signal.SIGINT)
            return "interrupt_reply", {"status": "ok"}
        if t.endswith("_request"):
            return t.replace("_request", "_reply"), {
                "status": "error",
                "ename": "NotImplementedError",
                "evalue": f"{t} is not supported",
                "traceback": [],
            }
        return None, {}

    # ---- execute ---------------------------------------------------------------------------------

    def execute(self, idents: list[bytes], msg: dict) -> dict:
        header, c = msg["header"], msg["content"]
        if self.aborting:
            return {"status": "aborted", "execution_count": self.count}
        silent = bool(c.get("silent", False))
        store = bool(c.get("store_history", True)) and not silent
        if store or (self.broken == "count_store_history_false" and not silent):
            self.count += 1
        code = c.get("code", "")
        quiet = silent and self.broken != "silent_outputs"
        if not quiet and self.broken != "no_execute_input":
            self.send(self.iopub, "execute_input", {"code": code, "execution_count": self.count}, header)
        self.parent, self.idents, self.allow_stdin = header, idents, bool(c.get("allow_stdin", False))
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, "<cell>", "exec"), self.ns)
        except BaseException as exc:
            self.flush(out, header, quiet)
            error = {
                "ename": type(exc).__name__,
                "evalue": str(exc),
                "traceback": traceback.format_exception_only(type(exc), exc),
            }
            if self.broken != "error_not_on_iopub" and not quiet:
                self.send(self.iopub, "error", error, header)
            if c.get("stop_on_error", True) and self.broken != "no_abort":
                self.abort_queue()
            return {"status": "error", "execution_count": self.count, **error}
        self.flush(out, header, quiet)
        if store:
            self.history.append([0, self.count, code])
        return {"status": "ok", "execution_count": self.count, "user_expressions": {}, "payload": []}

    def flush(self, out: io.StringIO, header: dict, quiet: bool) -> None:
        text = out.getvalue()
        if text and not quiet:
            self.send(self.iopub, "stream", {"name": "stdout", "text": text}, header)

    def abort_queue(self) -> None:
        """Answer the execute requests already queued with 'aborted' (stop_on_error)."""
        self.aborting = True
        try:
            while self.shell.poll(50):
                got = self.recv(self.shell)
                if got is not None:
                    self.handle(self.shell, *got)
        finally:
            self.aborting = False

    def input(self, prompt: str = "") -> str:
        if not self.allow_stdin and self.broken != "input_even_if_disallowed":
            raise StdinNotAllowed("input() is not available: the frontend does not support stdin")
        parent = {} if self.broken == "input_request_without_parent" else self.parent
        self.send(self.stdin, "input_request", {"prompt": str(prompt), "password": False}, parent, self.idents)
        while True:
            got = self.recv(self.stdin)
            if got is not None and got[1]["header"]["msg_type"] == "input_reply":
                return str(got[1]["content"].get("value", ""))

    # ---- threads and the main loop ---------------------------------------------------------------

    def control_loop(self) -> None:
        while self.running:
            if not self.control.poll(100):
                continue
            got = self.recv(self.control)
            if got is None:
                continue
            if self.broken == "no_control_kernel_info" and got[1]["header"]["msg_type"] == "kernel_info_request":
                continue
            self.handle(self.control, *got)

    def hb_loop(self) -> None:
        while self.running:
            if self.hb.poll(100):
                frames = self.hb.recv_multipart()
                if self.broken != "no_heartbeat":
                    self.hb.send_multipart(frames)

    def serve(self) -> None:
        import builtins

        builtins.input = self.input
        if self.broken == "ignore_interrupt":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        threading.Thread(target=self.control_loop, daemon=True).start()
        threading.Thread(target=self.hb_loop, daemon=True).start()
        self.status("starting", {})
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        parent_pid = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
        while self.running:
            try:
                ready = dict(poller.poll(500))
            except KeyboardInterrupt:
                continue
            if parent_pid and os.getppid() != parent_pid:
                break  # the frontend died: do not stay orphaned
            if self.iopub in ready:
                with self.lock:
                    sub = self.iopub.recv()
                if sub[:1] == b"\x01":
                    self.send(self.iopub, "iopub_welcome", {"subscription": sub[1:].decode(errors="replace")}, {})
            if self.shell in ready:
                got = self.recv(self.shell)
                if got is not None:
                    try:
                        self.handle(self.shell, *got)
                    except KeyboardInterrupt:
                        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-f", dest="connection_file", required=True)
    parser.add_argument("--break", dest="broken", choices=sorted(VIOLATIONS))
    args = parser.parse_args()
    SpecKernel(args.connection_file, args.broken).serve()


if __name__ == "__main__":
    main()
