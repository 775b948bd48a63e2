"""Language samples: the few cells the checks need, per language, and ``--sample`` overrides.

Keys (every one optional; a check whose sample is missing is reported "skipped (no sample)"):

- ``print``: writes some output (stream, display_data or execute_result) and succeeds;
- ``error``: fails (an error reply);
- ``sleep``: runs for at least 20 seconds unless interrupted;
- ``input``: reads one line from stdin (``input_request``) and outputs it;
- ``complete``: code to complete at its end (the cursor is put after its last character);
- ``inspect``: code to inspect at its end;
- ``incomplete``: code that ``is_complete_request`` should call ``incomplete`` (informational).

Echo-style kernels (the cell's code comes back as its output) are recognized by behaviour:
a kernel whose language has no built-in samples and that echoes a probe cell gets the
``echo`` samples (only ``print``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

KEYS = ("print", "error", "sleep", "input", "complete", "inspect", "incomplete")
#: The line the ``input`` check types; the ``input`` sample must output it.
INPUT_VALUE = "kk-typed-42"
ECHO_PROBE = "kk-echo-probe"

BUILTIN: dict[str, dict[str, str]] = {
    "python": {
        "print": 'print("kk-conformance")',
        "error": "1 / 0",
        "sleep": "import time\ntime.sleep(60)",
        "input": "print(input('kk? '))",
        "complete": "import os\nos.pa",
        "inspect": "len",
        "incomplete": "for i in range(3):",
    },
    "bash": {
        "print": "echo kk-conformance",
        "error": "false",
        "sleep": "sleep 60",
        "complete": "ech",
        "inspect": "echo",
        "incomplete": "for i in 1 2 3; do",
    },
    "javascript": {
        "print": 'console.log("kk-conformance")',
        "error": 'throw new Error("kk-conformance")',
        "sleep": "{ const t0 = Date.now(); while (Date.now() - t0 < 60000) {} }",
        "complete": "Math.ma",
        "inspect": "Math",
        "incomplete": "function f() {",
    },
    "sql": {
        "print": "SELECT 'kk-conformance';",
        "error": "SELECT * FROM kk_no_such_table;",
        "sleep": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
        "SELECT count(*) FROM c;",
        "complete": "SEL",
        "inspect": "sqlite_master",
        "incomplete": "SELECT 1",
    },
    "echo": {"print": "kk-conformance"},
}

#: Language names as kernels report them (language_info.name, lowercased) -> built-in sample set.
ALIASES = {
    "python": "python",
    "python3": "python",
    "ipython": "python",
    "ipython3": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "sql": "sql",
    "sqlite": "sql",
    "sqlite3": "sql",
    "echo": "echo",
}


class SampleError(ValueError):
    """A ``--sample`` value is malformed; the message says how to write it."""


def builtin_for(language: str) -> tuple[str | None, dict[str, str]]:
    """``(sample set name, samples)`` for a language name; ``(None, {})`` when there is none."""
    name = ALIASES.get(language.strip().lower())
    return (name, dict(BUILTIN[name])) if name else (None, {})


def parse_overrides(values: Iterable[str]) -> dict[str | None, dict[str, str]]:
    """``[KERNEL:]KEY=CODE`` strings -> ``{kernel or None: {key: code}}`` (None: every kernel)."""
    out: dict[str | None, dict[str, str]] = {}
    for value in values:
        left, sep, code = value.partition("=")
        kernel, colon, key = left.rpartition(":")
        if not sep or not key:
            raise SampleError(f"--sample takes [KERNEL:]KEY=CODE, not {value!r}")
        if key not in KEYS:
            raise SampleError(f"--sample key {key!r} is not one of {', '.join(KEYS)}")
        out.setdefault(kernel if colon else None, {})[key] = code.replace("\\n", "\n")
    return out


def resolve(
    kernel: str,
    builtin: Mapping[str, str],
    overrides: Mapping[str | None, Mapping[str, str]],
) -> dict[str, str]:
    """Built-in samples, then ``--sample KEY=...``, then ``--sample KERNEL:KEY=...``; empty code removes one."""
    samples = dict(builtin)
    for scope in (None, kernel):
        samples.update(overrides.get(scope, {}))
    return {k: v for k, v in samples.items() if v}
