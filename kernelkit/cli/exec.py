"""``kernelkit exec KERNEL CODE...``: start an installed kernel, run cells through it, print their output.

Works with any kernelspec, not only kernelkit's: the quickest proof that a kernel installs,
starts and answers, and a scriptable way to run code in one.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from kernelkit.cli import fail, seconds
from kernelkit.protocol.core import INPUT_EOF
from kernelkit.tools.client import KernelGone
from kernelkit.tools.client import Msg as Message
from kernelkit.tools.process import KernelDiedError, KernelProcess


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "exec",
        help="run code in an installed kernel and print its output",
        description="Start the kernel named KERNEL (a kernelspec on the Jupyter path), run each CODE "
        "as a cell, print the output, and shut the kernel down. Exit code 1 if a cell fails.",
    )
    parser.add_argument("kernel", metavar="KERNEL", help="kernelspec name, as in `kernelkit list`")
    parser.add_argument("code", metavar="CODE", nargs="+", help="a cell to run; '-' reads one from stdin")
    parser.add_argument("--timeout", type=seconds, default=60.0, help="seconds to wait for start and for each cell")
    parser.add_argument("--json", action="store_true", help="print one JSON object per cell (reply and outputs)")
    parser.set_defaults(run=run)


def _text(msg: Message) -> tuple[str, str]:
    """What a terminal shows for one output message, and on which stream."""
    content = msg["content"]
    kind = msg["msg_type"]
    if kind == "stream":
        return content.get("name", "stdout"), content.get("text", "")
    if kind in ("display_data", "execute_result", "update_display_data"):
        data = content.get("data") or {}
        text = data.get("text/plain")
        if not isinstance(text, str):  # say what a terminal cannot show rather than nothing (stdout stays the output)
            return "stderr", f"[{', '.join(sorted(data)) or 'empty'} output: not shown in a terminal]\n"
        return "stdout", text + ("\n" if text and not text.endswith("\n") else "")
    if kind == "error":
        return "stderr", "\n".join(content.get("traceback", [])) + "\n"
    return "stdout", ""


def _ask(prompt: str, password: bool) -> str:
    """A line of our stdin for the cell; at its end, end-of-file as jupyter_console sends it."""
    try:
        return getpass.getpass(prompt) if password else input(prompt)
    except EOFError:
        print(file=sys.stderr)
        return INPUT_EOF


def run(args: argparse.Namespace) -> int:
    from kernelkit.tools.kernelspecs import NoSuchKernel, get

    try:
        spec = get(args.kernel)
    except NoSuchKernel as exc:
        return fail(str(exc))
    cells = [sys.stdin.read() if code == "-" else code for code in args.code]
    try:
        kernel = KernelProcess(spec)
    except KernelDiedError as exc:
        return fail(f"kernel {spec.name!r} cannot start: {exc}; check it with `kernelkit doctor {spec.name}`")
    failed = False
    with kernel:
        try:
            kernel.wait_ready(args.timeout)
        except (KernelDiedError, TimeoutError) as exc:
            stderr = exc.stderr.strip() if isinstance(exc, KernelDiedError) else ""
            if stderr:
                print(stderr, file=sys.stderr)
            return fail(f"kernel {spec.name!r} did not start: {exc}; check it with `kernelkit doctor {spec.name}`")
        for code in cells:
            outputs: list[Message] = []
            printer = _Printer()
            on_output = outputs.append if args.json else printer.show
            try:
                reply = kernel.client.execute(
                    code, args.timeout, on_output, None if args.json else _ask, alive=kernel.alive
                )["content"]
            except KernelGone:
                print(kernel.stderr().strip(), file=sys.stderr)
                return fail(
                    f"kernel {spec.name!r} died while running a cell; check it with `kernelkit doctor {spec.name}`"
                )
            except TimeoutError as exc:
                return fail(f"{exc} (raise --timeout for long cells)")
            printer.end_cell()
            status = reply.get("status")
            failed |= status != "ok"
            if status not in ("ok", "error") and not args.json:  # an error's traceback is shown already
                print(f"kernelkit: the kernel replied with status {status!r} (not ok, not error)", file=sys.stderr)
            if args.json:
                record: dict[str, Any] = {
                    "code": code,
                    "reply": reply,
                    "outputs": [{"msg_type": m["msg_type"], "content": m["content"]} for m in outputs],
                }
                print(json.dumps(record))
    return 1 if failed else 0


class _Printer:
    """Writes a cell's output to the terminal, ending it with a newline as a console would."""

    def __init__(self) -> None:
        self.last = {"stdout": "\n", "stderr": "\n"}

    def show(self, msg: Message) -> None:
        stream, text = _text(msg)
        if text:
            target = sys.stderr if stream == "stderr" else sys.stdout
            target.write(text)
            target.flush()
            self.last[stream] = text[-1]

    def end_cell(self) -> None:
        for stream, last in self.last.items():
            if last != "\n":
                print(file=sys.stderr if stream == "stderr" else sys.stdout, flush=True)
