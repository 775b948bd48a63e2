"""How to talk to a REPL: its command, prompts, how to make the prompt unique, completion, language.

A :class:`Profile` is plain data; :class:`kernelkit.wrap.kernel.ReplKernel` does the talking.
``{token}`` in ``prompt``, ``continuation_prompt``, ``prompt_change`` and ``init`` is replaced by
a random string chosen when the kernel starts (in regexes, escaped), so once ``prompt_change``
has run no output can ever be mistaken for a prompt. A prompt regex may have a group named
``status``: ``0`` (or empty) means the cell succeeded, a number is an exit status, a word is the
name of an error (the python profile puts the exception's class name there).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Profile:
    name: str
    #: The program and its arguments (argv[0] is looked up on PATH).
    command: list[str]
    #: Regex matching the main prompt at the very end of the output (``{token}`` allowed).
    prompt: str
    #: Regex matching the continuation prompt ("more input needed"), or "" if there is none.
    continuation_prompt: str = ""
    #: A line sent once after start to set a unique prompt ("" to keep the program's own).
    prompt_change: str = ""
    #: Lines run once after the prompt change (their output is discarded).
    init: list[str] = field(default_factory=list)
    #: Environment variables for the program (on top of the kernel's).
    env: dict[str, str] = field(default_factory=dict)
    language: str = "text"
    mimetype: str = "text/plain"
    file_extension: str = ".txt"
    codemirror_mode: str = ""
    pygments_lexer: str = ""
    #: How cells are sent: "lines" (one line at a time, each waits for a prompt, as typed)
    #: or "python" (through a helper defined by ``init``: multi-line blocks with blank lines work).
    sender: str = "lines"
    #: How completion is asked: "bash", "zsh", "python", "lua", "node", "sqlite" or "" (none).
    completer: str = ""
    #: How ``is_complete`` is decided: "bash -n", "zsh -n", "python", "sqlite", "lua" or "" (unknown).
    checker: str = ""
    #: How ``inspect`` is answered: "bash", "python" or "".
    inspector: str = ""
    #: ``ename`` of the error reply for a non-zero numeric status.
    status_error: str = "ExitStatus"
    #: A line that runs a file (``{path}``), for cells with a line too long for a terminal
    #: (4095 bytes): such a cell is written to a private temporary file and run with it.
    run_file: str = ""

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)


#: The fields a kernel's own options (``--prompt``, ``--file-extension``…) set on its profile.
OPTIONS = (
    "prompt",
    "continuation_prompt",
    "prompt_change",
    "language",
    "file_extension",
    "codemirror_mode",
    "pygments_lexer",
    "mimetype",
)


_SHELL_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat", "SYSTEMD_PAGER": "", "TERM": "dumb"}

_PY_HELPER = r"""
import sys as _kk_sys
class _KKPrompt:
    def __init__(self, text): self.text = text
    def __str__(self): return self.text.replace("{status}", _kk_sys.__dict__.pop("_kk_status", "0"))
__kk_prompts = (_KKPrompt("{token}[{status}]>"), _KKPrompt("{token}+"))
_kk_sys.ps1, _kk_sys.ps2 = __kk_prompts
__kk_buf = []
def __kk_add(chunk):
    __kk_buf.append(chunk)
def __kk_run():
    import ast, base64, linecache, traceback, __main__
    src = base64.b64decode("".join(__kk_buf)).decode()
    __kk_buf.clear()
    name = "<cell>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    try:
        tree = ast.parse(src, name, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Interactive([tree.body.pop()])
        exec(compile(tree, name, "exec"), __main__.__dict__)
        if last is not None:
            exec(compile(last, name, "single"), __main__.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        _kk_sys._kk_status = type(exc).__name__
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
    finally:
        _kk_sys.ps1, _kk_sys.ps2 = __kk_prompts  # a cell that set sys.ps1 cannot hide the prompt
def __kk_complete(text):
    import rlcompleter, __main__
    completer, found = rlcompleter.Completer(__main__.__dict__), []
    while len(found) < 500:
        match = completer.complete(text, len(found))
        if match is None:
            break
        found.append(match)
    print("\n".join(found))
def __kk_inspect(expr):
    import pydoc, __main__
    try:
        obj = eval(expr, __main__.__dict__)
    except Exception:
        return
    print(pydoc.render_doc(obj, title="%s", renderer=pydoc.plaintext))
"""


def _python_init() -> str:
    code = base64.b64encode(_PY_HELPER.encode()).decode()
    # the kernel replaces the second {token} (outside the base64) with the real token
    return f"exec(__import__('base64').b64decode('{code}').decode().replace('{{'+'token}}', '{{token}}'))"


PROFILES: dict[str, Profile] = {
    "bash": Profile(
        name="bash",
        command=["bash", "--norc", "--noprofile", "--noediting", "-i"],
        prompt=r"{token}\[(?P<status>\d+)\]>",
        continuation_prompt=r"{token}\+",
        # PROMPT_COMMAND sets the prompt again before each one, so a cell that sets PS1 cannot hide it
        prompt_change="PS1='{token}[$?]>'; PS2='{token}+'; PS0=; "
        'PROMPT_COMMAND=\'PS1="{token}[\\$?]>"; PS2="{token}+"\'; '
        "unset HISTFILE; HISTCONTROL=ignorespace",
        env=dict(_SHELL_ENV),
        language="bash",
        mimetype="text/x-sh",
        file_extension=".sh",
        codemirror_mode="shell",
        pygments_lexer="bash",
        completer="bash",
        checker="bash -n",
        inspector="bash",
        run_file=" source {path}",
    ),
    "zsh": Profile(
        name="zsh",
        command=["zsh", "-f", "+Z", "-i"],
        prompt=r"{token}\[(?P<status>\d+)\]>",
        continuation_prompt=r"{token}\+",
        prompt_change="PS1='{token}[%?]>'; PS2='{token}+'; RPS1=; RPS2=; unsetopt PROMPT_CR PROMPT_SP; "
        "setopt HIST_IGNORE_SPACE; unset HISTFILE; precmd_functions=(); preexec_functions=(); "
        "precmd() { PS1='{token}[%?]>'; PS2='{token}+'; RPS1=; RPS2= }",
        env=dict(_SHELL_ENV),
        language="zsh",
        mimetype="text/x-sh",
        file_extension=".zsh",
        codemirror_mode="shell",
        pygments_lexer="zsh",
        completer="zsh",
        checker="zsh -n",
        inspector="bash",
        run_file=" source {path}",
    ),
    "python": Profile(
        name="python",
        command=["python3", "-i", "-q"],
        prompt=r"{token}\[(?P<status>\w+)\]>",
        continuation_prompt=r"{token}\+",
        prompt_change="",  # the helper in init sets sys.ps1/ps2
        init=[],  # filled below
        env={"PYTHON_BASIC_REPL": "1", "PYTHONUNBUFFERED": "1", "TERM": "dumb", "PAGER": "cat"},
        language="python",
        mimetype="text/x-python",
        file_extension=".py",
        codemirror_mode="python",
        pygments_lexer="python3",
        sender="python",
        completer="python",
        checker="python",
        inspector="python",
        status_error="Exception",
    ),
    "sqlite3": Profile(
        name="sqlite3",
        command=["sqlite3"],
        prompt=r"{token}>",
        continuation_prompt=r"{token}\+",
        prompt_change=".prompt {token}> {token}+",
        env={"TERM": "dumb"},
        language="sql",
        mimetype="text/x-sql",
        file_extension=".sql",
        codemirror_mode="sql",
        pygments_lexer="sql",
        completer="sqlite",
        checker="sqlite",
        run_file=".read {path}",
    ),
    "node": Profile(
        name="node",
        command=["node", "-i"],
        prompt=r"{token}>",
        continuation_prompt=r"\.\.\. ",
        prompt_change="repl.repl.setPrompt('{token}>'); repl.repl.ignoreUndefined = true",
        env={"NODE_NO_READLINE": "1", "NODE_DISABLE_COLORS": "1", "TERM": "dumb"},
        language="javascript",
        mimetype="application/javascript",
        file_extension=".js",
        codemirror_mode="javascript",
        pygments_lexer="javascript",
        completer="node",
    ),
    "lua": Profile(
        name="lua",
        command=["lua5.4", "-i"],
        prompt=r"{token}>",
        continuation_prompt=r"{token}\+",
        prompt_change="_PROMPT='{token}>' _PROMPT2='{token}+'",
        env={"TERM": "dumb"},
        language="lua",
        mimetype="text/x-lua",
        file_extension=".lua",
        codemirror_mode="lua",
        pygments_lexer="lua",
        completer="lua",
        checker="lua",
    ),
}
# The python profile's prompt is set by its helper (sys.ps1 is an object reporting the last error).
PROFILES["python"].prompt_change = _python_init()


def get(name: str) -> Profile:
    """A copy of the built-in profile ``name`` (KeyError if there is none)."""
    return PROFILES[name].replace(
        command=list(PROFILES[name].command), init=list(PROFILES[name].init), env=dict(PROFILES[name].env)
    )


def custom(command: list[str]) -> Profile:
    """A blank profile for an arbitrary program: the caller must supply at least a prompt regex."""
    name = command[0].rsplit("/", 1)[-1] if command else "repl"
    return Profile(name=name, command=list(command), prompt="")
