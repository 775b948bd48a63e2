"""The built-in language samples of `kernelkit test` do what their key promises, in their language.

No javascript or sql kernel is installed here, so the samples run in the language itself
(node, sqlite3, bash, python): a sample that were a syntax error there would make every check
using it fail for the wrong reason on a real kernel.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from kernelkit.tools.conformance.samples import BUILTIN, INPUT_VALUE, SampleError, builtin_for, parse_overrides, resolve

OUTPUT = "kk-conformance"


def run(argv: list[str], stdin: str = "", timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)


def still_running_after(argv: list[str], seconds: float = 1.5) -> bool:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    alive = proc.poll() is None
    proc.kill()
    proc.wait()
    return alive


LANGUAGES = {
    "python": [sys.executable, "-c"],
    "bash": ["bash", "-c"],
    "javascript": [shutil.which("node") or "node", "-e"],
}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_print_error_sleep(language: str) -> None:
    cmd = LANGUAGES[language]
    samples = BUILTIN[language]
    printed = run([*cmd, samples["print"]])
    assert printed.returncode == 0 and printed.stdout.strip() == OUTPUT, printed
    assert run([*cmd, samples["error"]]).returncode != 0
    assert still_running_after([*cmd, samples["sleep"]])


def test_python_input_and_completion_samples() -> None:
    samples = BUILTIN["python"]
    echoed = run([sys.executable, "-c", samples["input"]], stdin=INPUT_VALUE + "\n")
    assert INPUT_VALUE in echoed.stdout
    import codeop

    assert codeop.compile_command(samples["incomplete"], symbol="exec") is None  # incomplete indeed
    namespace: dict = {}
    exec("import os", namespace)
    assert any(name.startswith("pa") for name in dir(namespace["os"]))  # `os.pa` completes


def test_sql_samples_in_sqlite() -> None:
    samples = BUILTIN["sql"]
    db = sqlite3.connect(":memory:")
    assert db.execute(samples["print"]).fetchone() == (OUTPUT,)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.execute(samples["error"])
    assert not sqlite3.complete_statement(samples["incomplete"])
    started = time.monotonic()
    db.set_progress_handler(lambda: 1 if time.monotonic() - started > 1.0 else 0, 10_000)
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):  # still counting after 1 s
        db.execute(samples["sleep"]).fetchone()


def test_language_names_and_overrides() -> None:
    assert builtin_for("Python")[0] == "python" and builtin_for("sqlite3")[0] == "sql"
    assert builtin_for("node")[0] == "javascript" and builtin_for("brainfuck") == (None, {})
    overrides = parse_overrides(["print=say hi", "k1:error=boom\\nagain", "k1:complete="])
    assert overrides == {None: {"print": "say hi"}, "k1": {"error": "boom\nagain", "complete": ""}}
    assert resolve("k1", BUILTIN["python"], overrides)["error"] == "boom\nagain"
    assert "complete" not in resolve("k1", BUILTIN["python"], overrides)
    assert resolve("k2", BUILTIN["python"], overrides)["complete"] == BUILTIN["python"]["complete"]
    for bad in ("print", "=x", "nokey=1"):
        with pytest.raises(SampleError):
            parse_overrides([bad])
