"""calc: a tiny Python-eval kernel built only on kernelkit's public API, for the test suite.

It exercises what an echo kernel cannot: stdout/stderr through ``print``, rich display,
clear_output, errors raised out of ``do_execute``, execute_result, pager payloads,
completion, inspection, is_complete, history and stdin.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import fnmatch
import keyword
import re
import sys
from typing import Any

from kernelkit import Kernel, format_display_data


class HTML:
    def __init__(self, html: str) -> None:
        self.html = html

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"HTML({self.html!r})"


class CalcKernel(Kernel):
    implementation = "calc"
    implementation_version = "0.1"
    language_info = {
        "name": "python",
        "version": sys.version.split()[0],
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "python3",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "nbconvert_exporter": "python",
    }
    banner = "calc: Python evaluated by a kernelkit test kernel"
    help_links = [{"text": "Python", "url": "https://docs.python.org/3/"}]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace: dict[str, Any] = {
            "__name__": "__calc__",
            "kernel": self,
            "display": self.display,
            "update_display": self.update_display,
            "clear_output": self.clear_output,
            "page": self._page,
            "HTML": HTML,
        }
        self.history: list[tuple[int, int, str, str | None]] = []
        self._payload: list[dict[str, Any]] = []

    def _page(self, text: str) -> None:
        self._payload.append({"source": "page", "data": {"text/plain": text}, "start": 0})

    @staticmethod
    def _bundle(value: Any) -> dict[str, Any]:
        return format_display_data(value)[0]

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        self._payload = []
        tree = ast.parse(code, mode="exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), self.namespace)
        result = None
        if last is not None:
            result = eval(compile(ast.Expression(last.value), "<cell>", "eval"), self.namespace)
        if result is not None and not silent:
            self.send_response(
                self.iopub_socket,
                "execute_result",
                {"execution_count": self.execution_count, "data": self._bundle(result), "metadata": {}},
            )
        if store_history:
            self.history.append((1, self.execution_count, code, None if result is None else repr(result)))
        expressions = {}
        for name, expr in (user_expressions or {}).items():
            try:
                expressions[name] = {"status": "ok", "data": self._bundle(eval(expr, self.namespace)), "metadata": {}}
            except Exception as exc:
                expressions[name] = {"status": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": []}
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": self._payload,
            "user_expressions": expressions,
        }

    def do_complete(self, code, cursor_pos):
        if code.startswith("__boom__"):
            raise RuntimeError("do_complete exploded on purpose")
        token = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", code[:cursor_pos])
        prefix = token.group() if token else ""
        names = set(self.namespace) | set(dir(builtins)) | set(keyword.kwlist)
        matches = sorted(n for n in names if prefix and n.startswith(prefix))
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": cursor_pos - len(prefix),
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        token = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", code[:cursor_pos])
        name = token.group() if token else ""
        obj = self.namespace.get(name, getattr(builtins, name, None)) if name else None
        if obj is None:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        return {"status": "ok", "found": True, "data": {"text/plain": f"{name}: {obj.__doc__ or repr(obj)}"}, "metadata": {}}

    def do_is_complete(self, code):
        try:
            compiled = codeop.compile_command(code, symbol="exec")
        except (SyntaxError, ValueError, OverflowError):
            return {"status": "invalid"}
        if compiled is None:
            return {"status": "incomplete", "indent": "    " if code.rstrip().endswith(":") else ""}
        return {"status": "complete"}

    def do_history(self, hist_access_type, output, raw, session=None, start=None, stop=None, n=None, pattern=None, unique=False):
        entries = self.history
        if hist_access_type == "range":
            entries = [e for e in entries if (session is None or e[0] == session) and (start or 0) <= e[1] < (stop or sys.maxsize)]
        elif hist_access_type == "search":
            entries = [e for e in entries if fnmatch.fnmatchcase(e[2], pattern or "*")]
            if unique:
                seen: set[str] = set()
                kept = []
                for e in reversed(entries):
                    if e[2] not in seen:
                        seen.add(e[2])
                        kept.append(e)
                entries = kept[::-1]
        if n is not None and hist_access_type in ("tail", "search"):
            entries = entries[-n:] if n else []
        if output:
            history = [(s, line, (code, out)) for s, line, code, out in entries]
        else:
            history = [(s, line, code) for s, line, code, _ in entries]
        return {"status": "ok", "history": history}


if __name__ == "__main__":
    CalcKernel.launch()
