"""The sqlite showcase kernel (kernelkit.kernels.sqlite) as frontends drive it: jupyter_client,
nbclient, ``kernelkit install ... -- ARGS`` and ``kernelkit exec``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import install_kernelspec
from helpers import execute, outputs, running_kernel, shell_reply, stdout_text
from kernelspec_fixtures import Jupyter, assert_clean_error, jupyter, kk  # noqa: F401  (fixture)

LAUNCH = [sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.sqlite", "-f", "{connection_file}"]
SQL = "kk-sqlite"
SQL_MESSAGE = "kk-sqlite-message"
install_kernelspec(SQL, argv=[*LAUNCH, "--max-rows", "5"], language="sql")
install_kernelspec(SQL_MESSAGE, argv=LAUNCH, language="sql", interrupt_mode="message")

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;"
SETUP = """
CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL DEFAULT 1.5);
INSERT INTO fruit (name, price) VALUES ('apple', 0.5), ('pear', 0.75), ('fig; dried', 3), ('kiwi', NULL);
"""


def displays(msgs: list[dict]) -> list[dict]:
    return [m["content"]["data"] for m in outputs(msgs) if m["msg_type"] == "display_data"]


def test_statements_tables_and_row_limit() -> None:
    with running_kernel(SQL) as (_km, kc):
        reply, msgs = execute(kc, SETUP + "SELECT name, price FROM fruit ORDER BY id;\n-- a comment\nSELECT count(*) AS n FROM fruit")
        assert reply["content"]["status"] == "ok", reply["content"]
        first, second = displays(msgs)
        assert "<table>" in first["text/html"] and "<td>fig; dried</td>" in first["text/html"]
        assert "<i>NULL</i>" in first["text/html"]
        lines = first["text/plain"].splitlines()
        assert lines[1].split() == ["|", "name", "|", "price", "|"] and "| kiwi" in first["text/plain"]
        assert "4 rows" in first["text/plain"]
        assert "| 4 |" in second["text/plain"]
        reply, msgs = execute(kc, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50) SELECT x FROM c;")
        (table,) = displays(msgs)
        assert table["text/plain"].count("\n| ") == 1 + 5 and "first 5 rows shown" in table["text/plain"]
        assert "first 5 rows shown" in table["text/html"]
        reply, msgs = execute(kc, "SELECT 1;", silent=True)
        assert reply["content"]["status"] == "ok" and not outputs(msgs)


def test_error_names_the_failing_statement_and_stops_the_cell() -> None:
    with running_kernel(SQL) as (_km, kc):
        reply, msgs = execute(kc, "CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\nSELECT nope\n  FROM t;\nINSERT INTO t VALUES (2);")
        content = reply["content"]
        assert content["status"] == "error" and content["ename"] == "OperationalError"
        assert "no such column: nope" in content["evalue"] and "statement 3 of 4, line 3" in content["evalue"]
        (error,) = [m["content"] for m in msgs if m["msg_type"] == "error"]
        assert error["traceback"][0] == "OperationalError: no such column: nope"
        assert "    SELECT nope" in error["traceback"] and "      FROM t;" in error["traceback"]
        _, msgs = execute(kc, "SELECT count(*) FROM t;")  # the statements before the error stay applied
        assert "|        1 |" in displays(msgs)[0]["text/plain"]
        reply, _ = execute(kc, ".frobnicate")
        assert reply["content"]["status"] == "error" and "unknown command .frobnicate" in reply["content"]["evalue"]


def test_dot_commands() -> None:
    with running_kernel(SQL) as (_km, kc):
        _, msgs = execute(kc, ".tables")
        assert stdout_text(msgs) == "(no tables)\n"
        _, msgs = execute(kc, SETUP + "CREATE VIEW cheap AS SELECT * FROM fruit WHERE price < 1;\n.tables\n.schema fruit\n.help")
        text = stdout_text(msgs)
        assert "cheap  fruit\n" in text and "CREATE TABLE fruit (id INTEGER PRIMARY KEY" in text
        assert "CREATE VIEW" not in text and ".schema" in text


def test_complete_inspect_and_is_complete() -> None:
    with running_kernel(SQL) as (_km, kc):
        execute(kc, SETUP)

        def complete(code: str, pos: int | None = None) -> tuple[list[str], int]:
            content = shell_reply(kc, kc.complete(code, len(code) if pos is None else pos))["content"]
            return content["matches"], content["cursor_start"]

        assert complete("SEL") == (["SELECT"], 0)
        assert "select" in complete("sel")[0]
        assert complete("SELECT * FROM fr") == (["fruit", "from"], 14)  # names first, then keywords
        assert complete("SELECT pri") == (["price", "primary", "printf"], 7)  # keywords in the case typed
        assert complete("SELECT PRI") == (["price", "PRIMARY", "PRINTF"], 7)
        assert complete("SELECT fruit.na") == (["name"], 13)
        assert complete(".sch") == ([".schema"], 0)
        content = shell_reply(kc, kc.inspect("SELECT * FROM fruit", 16))["content"]
        assert content["found"] and "fruit: 4 rows" in content["data"]["text/plain"]
        assert "price" in content["data"]["text/plain"] and "CREATE TABLE fruit" in content["data"]["text/plain"]
        assert "<table>" in content["data"]["text/html"]
        assert not shell_reply(kc, kc.inspect("SELECT 1", 3))["content"]["found"]
        for code, status in [("SELECT 1;", "complete"), ("SELECT 1", "incomplete"), ("SELECT ';", "incomplete"),
                             (".tables", "complete"), ("SELECT 1; -- done", "complete"), ("", "complete")]:
            assert shell_reply(kc, kc.is_complete(code))["content"]["status"] == status, code


@pytest.mark.parametrize("kernel", [SQL, SQL_MESSAGE])
def test_interrupt_stops_a_long_query(kernel: str) -> None:
    with running_kernel(kernel) as (km, kc):
        msg_id = kc.execute(ENDLESS)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the query runs
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
                break
        time.sleep(0.3)
        started = time.monotonic()
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id, timeout=10)
        assert time.monotonic() - started < 5
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        reply, msgs = execute(kc, "SELECT 42 AS answer;")
        assert reply["content"]["status"] == "ok" and "42" in displays(msgs)[0]["text/plain"]


def test_install_with_kernel_arguments_and_exec(jupyter: Jupyter) -> None:
    database = jupyter.work / "shop.db"
    done = kk("install", "kernelkit.kernels.sqlite", "--name", "shop", "--", "--database", str(database))
    assert done.returncode == 0, done.stderr
    spec = json.loads((jupyter.user_kernels / "shop" / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.sqlite:SQLiteKernel",
                            "-f", "{connection_file}", "--database", str(database)]
    assert spec["language"] == "sql"
    done = kk("exec", "shop", "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');")
    assert done.returncode == 0, done.stderr
    done = kk("exec", "shop", "SELECT * FROM t;", ".tables", cwd=jupyter.work)  # a new process: the file persisted
    assert done.returncode == 0, done.stderr
    assert "| 2 | two |" in done.stdout and "(2 rows)" in done.stdout and done.stdout.rstrip().endswith("t")
    done = kk("exec", "shop", "SELECT * FROM missing;")
    assert done.returncode == 1 and "no such table: missing" in done.stderr
    assert_clean_error(kk("install", "kernelkit.kernels.sqlite", "--name", "x", "--", "--databse", "f.db"), 1,
                       "unrecognized arguments: --databse", "--help")
    assert_clean_error(kk("install", "kernelkit.kernels.sqlite", "--name", "x", "--", "--max-rows", "many"), 1,
                       "invalid int value")
    assert not (jupyter.user_kernels / "x").exists()
    folder = jupyter.write_spec(jupyter.work, "sqlfolder", {"argv": LAUNCH, "display_name": "SQL", "language": "sql"})
    done = kk("install", str(folder), "--dry-run", "--json", "--", "--max-rows", "3")  # a folder's argv gets them too
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spec"]["argv"] == [*LAUNCH, "--max-rows", "3"]
    assert "kernel arguments" in kk("install", "--help").stdout


def test_default_install_is_in_memory_and_runs_in_nbclient(jupyter: Jupyter) -> None:
    done = kk("install", "kernelkit.kernels.sqlite")
    assert done.returncode == 0, done.stderr
    assert json.loads((jupyter.user_kernels / "sqlite" / "kernel.json").read_text())["argv"][-1] == "{connection_file}"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell("SELECT name FROM fruit WHERE price > 1;")]
    NotebookClient(nb, kernel_name="sqlite", timeout=30, startup_timeout=60).execute()
    (output,) = nb.cells[1].outputs
    assert output["output_type"] == "display_data" and "<td>fig; dried</td>" in output["data"]["text/html"]
    assert nb.metadata["language_info"]["name"] == "sql"


@pytest.mark.slow
def test_readme_quick_start_prints_the_table_it_shows(jupyter: Jupyter) -> None:
    """The README's first command (all but its `pip install .`) prints exactly the table the README shows."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1]
    command = quick_start.split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "\n" not in command.strip(), "the quick start is one command line"
    shown = quick_start.split("```text\n", 1)[1].split("```", 1)[0]
    steps = [step.strip() for step in command.split(" && ")]
    assert steps[0] == "pip install ."
    import shlex

    for step in steps[1:]:
        argv = shlex.split(step)
        assert argv[:3] == ["python", "-m", "kernelkit"]
        done = kk(*argv[3:], cwd=jupyter.work)
        assert done.returncode == 0, done.stderr
    assert done.stdout == shown
