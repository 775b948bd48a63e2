"""The kernelkit showcase kernel: a small Python-evaluating kernel built only on kernelkit's public API.

It is the kernel the frontend tests (``tests/frontends/``) drive through nbclient, nbconvert,
papermill, ``jupyter console``, JupyterLab in a browser and Kernel Gateway, and it shows in
about 200 lines what a kernel does for each kind of output:

=========================  ==========================================================
in a cell                  what the kernel sends
=========================  ==========================================================
``print("hi")``            ``stream`` (stdout), through kernelkit's ``print`` redirect
``1 + 1`` (last line)      ``execute_result`` via ``self.send_response(...)``, formatted by
                           ``format_display_data``: a DataFrame as HTML, ``_repr_png_``...
``display(obj)``           ``display_data`` of any object with IPython's ``_repr_*_`` methods
``display(w.IntSlider())`` a live ipywidgets slider (kernelkit provides the ``comm`` package)
``table([[1, 2], ...])``   ``display_data`` with an HTML ``<table>`` (``self.display``)
``png()``                  ``display_data`` with a PNG made in pure Python (zlib + struct)
``1 / 0``                  an ``error`` message and an error reply, with a traceback
``input("name? ")``        ``input_request`` on stdin (kernelkit routes ``input()``)
``time.sleep(60)``         stops with ``KeyboardInterrupt`` when the frontend interrupts
``exit``                   an ``ask_exit`` payload: ``jupyter console`` closes
=========================  ==========================================================

It also answers ``is_complete_request`` with :mod:`codeop` (so ``jupyter console`` continues
``for``/``def`` blocks on the next line) and ``complete_request`` from the user namespace.

Run it with ``python examples/showcase.py -f CONNECTION_FILE`` as a kernelspec ``argv``, or
``kernelkit install examples/showcase.py``; it needs nothing but kernelkit (ipywidgets, pandas
or matplotlib work when installed).
"""

from __future__ import annotations

import ast
import base64
import builtins
import codeop
import html
import keyword
import linecache
import re
import struct
import sys
import traceback
import zlib
from typing import Any

from kernelkit import Kernel, format_display_data

__version__ = "1.0"


def make_png(width: int = 96, height: int = 64) -> bytes:
    """A small RGB PNG (a colour gradient with a white diagonal), encoded with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type 0 (None) for each scanline
        for x in range(width):
            if abs(x * height - y * width) < width:  # the diagonal
                rows += b"\xff\xff\xff"
            else:
                rows += bytes((255 * x // (width - 1), 255 * y // (height - 1), 160))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b"")


def html_table(rows: list[list[Any]], header: list[Any] | None = None) -> str:
    def cells(tag: str, row: list[Any]) -> str:
        return "".join(f"<{tag}>{html.escape(str(value))}</{tag}>" for value in row)

    head = f"<thead><tr>{cells('th', header)}</tr></thead>" if header else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table class="kernelkit-table">{head}<tbody>{body}</tbody></table>'


class ExitRequest:
    """``exit`` / ``quit`` in a cell: asks the frontend to close (the ``ask_exit`` payload, as IPython)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *args: Any) -> None:
        self.requested = True

    def __repr__(self) -> str:
        return "Use exit() or quit() to close this frontend"


class ShowcaseKernel(Kernel):
    implementation = "kernelkit-showcase"
    implementation_version = __version__
    language_info = {
        "name": "python",
        "version": sys.version.split()[0],
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "ipython3",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "nbconvert_exporter": "python",
    }
    banner = "kernelkit showcase kernel: Python with table(rows) and png() helpers"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exit_request = ExitRequest()
        self.namespace: dict[str, Any] = {
            "__name__": "__main__",
            "__builtins__": builtins,
            "table": self.table,
            "png": self.png,
            "display": self.display,
            "exit": self.exit_request,
            "quit": self.exit_request,
        }

    # ---- helpers in the user namespace -------------------------------------------------------

    def table(self, rows: list[list[Any]], header: list[Any] | None = None) -> None:
        """Show ``rows`` (a list of lists) as an HTML table, with an optional header row."""
        rows = [list(row) for row in rows]
        text = "\n".join("\t".join(str(v) for v in row) for row in ([header] if header else []) + rows)
        self.display({"text/html": html_table(rows, header), "text/plain": text})

    def png(self, width: int = 96, height: int = 64) -> None:
        """Show a generated PNG image."""
        data = base64.b64encode(make_png(width, height)).decode("ascii")
        self.display({"image/png": data, "text/plain": f"<PNG image {width}x{height}>"},
                     {"image/png": {"width": width, "height": height}})

    # ---- execute -----------------------------------------------------------------------------

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        filename = f"<cell-{self.execution_count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # tracebacks show source
        try:
            tree = ast.parse(code, filename, "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, filename, "exec"), self.namespace)
            value = eval(compile(last, filename, "eval"), self.namespace) if last is not None else None
        except Exception as exc:  # KeyboardInterrupt passes through: kernelkit answers it
            content = {"ename": type(exc).__name__, "evalue": str(exc), "traceback": self._traceback(exc)}
            self.send_response(self.iopub_socket, "error", content)
            return {"status": "error", "execution_count": self.execution_count, **content}
        payload = []
        if value is self.exit_request or self.exit_request.requested:
            self.exit_request.requested, value = False, None
            payload.append({"source": "ask_exit", "keepkernel": False})
        if value is not None:
            self.namespace["_"] = value
            if not silent:
                data, metadata = format_display_data(value)  # _repr_html_, _repr_png_...: as IPython
                self.send_response(self.iopub_socket, "execute_result",
                                   {"execution_count": self.execution_count, "data": data, "metadata": metadata})
        expressions = {}
        for name, expr in (user_expressions or {}).items():
            try:
                data, metadata = format_display_data(eval(expr, self.namespace))
                expressions[name] = {"status": "ok", "data": data, "metadata": metadata}
            except Exception as exc:
                expressions[name] = {"status": "error", "ename": type(exc).__name__, "evalue": str(exc),
                                     "traceback": []}
        return {"status": "ok", "execution_count": self.execution_count, "payload": payload,
                "user_expressions": expressions}

    @staticmethod
    def _traceback(exc: BaseException) -> list[str]:
        """The traceback from the user's cell down, without this kernel's own frames."""
        tb = exc.__traceback__
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
            tb = tb.tb_next
        if isinstance(exc, SyntaxError) or tb is None:
            return [line.rstrip("\n") for line in traceback.format_exception_only(type(exc), exc)]
        return [line.rstrip("\n") for line in traceback.format_exception(type(exc), exc, tb)]

    # ---- console and editor support ------------------------------------------------------------

    def do_is_complete(self, code):
        try:
            compiled = codeop.compile_command(code, "<input>", "exec")
        except (SyntaxError, ValueError, OverflowError):
            return {"status": "invalid"}
        lines = code.split("\n")
        last = lines[-1]
        indent = last[: len(last) - len(last.lstrip())]
        if compiled is None:
            if last.rstrip().endswith(":"):
                indent += "    "
            return {"status": "incomplete", "indent": indent}
        if len(lines) > 1 and indent and last.strip():
            # Inside an indented block: an empty line ends it, as in the Python REPL.
            return {"status": "incomplete", "indent": indent}
        return {"status": "complete"}

    def do_complete(self, code, cursor_pos):
        match = re.search(r"([A-Za-z_][\w.]*)$", code[:cursor_pos])
        if not match:
            return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos, "metadata": {}}
        token = match.group(1)
        if "." in token:
            base, _, prefix = token.rpartition(".")
            try:
                obj = eval(base, self.namespace)
            except Exception:
                names: list[str] = []
            else:
                names = [f"{base}.{name}" for name in dir(obj)]
            wanted = f"{base}.{prefix}"
        else:
            names = list(self.namespace) + dir(builtins) + keyword.kwlist
            wanted = token
        matches = sorted({n for n in names if n.startswith(wanted) and not n.startswith("__")})
        return {"status": "ok", "matches": matches, "cursor_start": cursor_pos - len(token),
                "cursor_end": cursor_pos, "metadata": {}}

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        match = re.search(r"([A-Za-z_][\w.]*)$", code[:cursor_pos])
        try:
            obj = eval(match.group(1), self.namespace) if match else None
        except Exception:
            obj = None
        if obj is None:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        doc = getattr(obj, "__doc__", None) or ""
        return {"status": "ok", "found": True, "data": {"text/plain": f"{type(obj).__name__}: {obj!r}\n\n{doc}"},
                "metadata": {}}


if __name__ == "__main__":
    ShowcaseKernel.launch()
