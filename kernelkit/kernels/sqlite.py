"""A SQL kernel on the standard library's ``sqlite3``: kernelkit's showcase, on the public API only.

Install it with ``kernelkit install kernelkit.kernels.sqlite`` (an in-memory database), or
``kernelkit install kernelkit.kernels.sqlite --name shop -- --database shop.db`` for a file.

- several statements per cell; each result set is shown as an HTML table with a text/plain
  fallback (what ``kernelkit exec`` and ``jupyter console`` print), cut at ``--max-rows``;
- ``.tables`` and ``.schema [TABLE]`` as in the sqlite3 shell (``.help`` lists them);
- completion of SQL keywords, table names and column names (``table.col`` too);
- inspect (Shift-Tab) on a table name shows its schema;
- ``is_complete`` uses ``sqlite3.complete_statement``, so consoles wait for the ``;``;
- an error stops the cell with an error reply naming the failing statement;
- an interrupt stops a long query (``Connection.interrupt``), in both interrupt modes.
"""

from __future__ import annotations

import html
import re
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from kernelkit import Kernel

DEFAULT_MAX_ROWS = 100
MAX_CELL_WIDTH = 40  # characters of one value in the text/plain table

#: SQLite's keywords (https://sqlite.org/lang_keywords.html) plus common function names.
KEYWORDS = sorted(
    set(
        """
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT
CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC
DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER
FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN
INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE
LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS
OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP
REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET
TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM
VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
INTEGER REAL TEXT BLOB NUMERIC
ABS AVG COALESCE COUNT GROUP_CONCAT HEX IFNULL INSTR LENGTH LOWER LTRIM MAX MIN NULLIF PRINTF
QUOTE RANDOM ROUND RTRIM SUBSTR SUM TOTAL TRIM TYPEOF UPPER DATE TIME DATETIME JULIANDAY
STRFTIME JSON JSON_EXTRACT JSON_OBJECT JSON_ARRAY
""".split()
    )
)

DOT_COMMANDS = {
    ".help": "show this list",
    ".tables": "list the tables and views",
    ".schema": "show the CREATE statements (.schema TABLE for one)",
}

_WORD_BEFORE = re.compile(r"([A-Za-z_][\w$]*\.)?([A-Za-z_][\w$]*)?$")
_WORD_AT = re.compile(r"[A-Za-z_][\w$]*")


class Statement:
    """One piece of a cell: an SQL statement or a dot-command, and the line it starts on."""

    __slots__ = ("kind", "line", "text")

    def __init__(self, kind: str, text: str, line: int) -> None:
        self.kind, self.text, self.line = kind, text, line

    def __repr__(self) -> str:
        return f"Statement({self.kind!r}, {self.text!r}, {self.line})"


def _is_blank(sql: str) -> bool:
    """Whether ``sql`` holds nothing but whitespace and comments."""
    without = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)  # an unterminated /* is not blank
    without = re.sub(r"--[^\n]*", " ", without)
    return not without.strip()


def split_cell(code: str) -> tuple[list[Statement], str]:
    """The complete statements and dot-commands in ``code``, and the incomplete rest (maybe blank).

    A statement ends at a ``;`` that ``sqlite3.complete_statement`` accepts, so semicolons
    inside strings, identifiers and comments do not split it. A line starting with ``.`` while
    no statement is open is a dot-command.
    """
    statements: list[Statement] = []
    buffer = ""
    buffer_line = 1
    for number, line in enumerate(code.splitlines(keepends=True), start=1):
        if _is_blank(buffer) and line.lstrip().startswith("."):
            statements.append(Statement("dot", line.strip(), number))
            buffer = ""
            continue
        if not buffer.strip():
            buffer, buffer_line = "", number
        start = len(buffer)
        buffer += line
        at = buffer.find(";", start)
        while at != -1:
            head = buffer[: at + 1]
            if sqlite3.complete_statement(head):
                if not _is_blank(head.rstrip().rstrip(";")):
                    statements.append(Statement("sql", head.strip(), buffer_line + _leading_newlines(head)))
                buffer_line += head.count("\n")
                buffer = buffer[at + 1 :]
                at = buffer.find(";")
            else:
                at = buffer.find(";", at + 1)
    return statements, buffer


def _leading_newlines(text: str) -> int:
    stripped = text.lstrip()
    return text[: len(text) - len(stripped)].count("\n")


def _text_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value[:16].hex() + ("…" if len(value) > 16 else "") + "'"
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= MAX_CELL_WIDTH else text[: MAX_CELL_WIDTH - 1] + "…"


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, as the sqlite3 shell's ``.mode table``."""
    cells = [[_text_value(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        return (
            "| "
            + " | ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
            + " |"
        )

    numeric_cols = [
        bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) for i in range(len(columns))
    ]
    out = [rule, line(columns, [False] * len(columns)), rule]
    out += [line(r, numeric_cols) for r in cells]
    out.append(rule)
    return "\n".join(out)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table (Jupyter styles ``<table>`` itself); NULL is shown in italics."""

    def cell(value: Any) -> str:
        if value is None:
            return "<td><i>NULL</i></td>"
        align = ' style="text-align: right"' if isinstance(value, (int, float)) else ""
        return f"<td{align}>{html.escape(_text_value(value) if isinstance(value, bytes) else str(value))}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class SQLiteKernel(Kernel):
    implementation = "SQLite"
    implementation_version = "1.0"
    banner = f"SQLite {sqlite3.sqlite_version} on kernelkit: end statements with ';', try .tables, .schema, .help"
    language_info = {
        "name": "sql",
        "version": sqlite3.sqlite_version,
        "mimetype": "application/sql",
        "file_extension": ".sql",
        "pygments_lexer": "sql",
        "codemirror_mode": "sql",
    }
    help_links = [{"text": "SQL as understood by SQLite", "url": "https://sqlite.org/lang.html"}]

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument(
            "--database",
            metavar="FILE",
            default=":memory:",
            help="SQLite database file to open (created if missing; default: in memory); a relative path "
            "is opened in the folder the kernel starts in, for Notebook the notebook's",
        )
        parser.add_argument(
            "--max-rows",
            metavar="N",
            type=int,
            default=DEFAULT_MAX_ROWS,
            help=f"rows shown per result (default {DEFAULT_MAX_ROWS})",
        )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        options = self.arguments
        self.database = getattr(options, "database", ":memory:") or ":memory:"
        self.max_rows = max(1, getattr(options, "max_rows", DEFAULT_MAX_ROWS) or DEFAULT_MAX_ROWS)
        # autocommit (isolation_level=None): each statement is committed as the sqlite3 shell does;
        # check_same_thread=False: do_interrupt() calls interrupt() from the control thread.
        self.connection = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        self._interrupted = threading.Event()
        # Python runs a SIGINT handler only between bytecodes, never while sqlite3_step runs in C:
        # this handler gives it that chance every few thousand VM steps, and stops the query
        # when the kernel was interrupted by message.
        self.connection.set_progress_handler(self._progress, 20_000)

    def _progress(self) -> int:
        return 1 if self._interrupted.is_set() else 0

    # ---- execute -------------------------------------------------------------------------

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        self._interrupted.clear()
        statements, rest = split_cell(code)
        if not _is_blank(rest):  # a last statement without its ';' still runs, as a cell is complete
            statements.append(Statement("sql", rest.strip(), code[: len(code) - len(rest.lstrip())].count("\n") + 1))
        for number, statement in enumerate(statements, start=1):
            try:
                if statement.kind == "dot":
                    self._dot_command(statement.text, silent)
                    continue
                result = self._run(statement.text)
            except sqlite3.Error as exc:
                if str(exc) == "interrupted":  # Connection.interrupt() or the progress handler
                    raise KeyboardInterrupt from None
                return self._error(exc, statement, number, len(statements), silent)
            except DotCommandError as exc:
                return self._error(exc, statement, number, len(statements), silent)
            if result is not None and not silent:
                self._show(*result)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    def _run(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]], bool] | None:
        cursor = self.connection.execute(sql)
        try:
            if cursor.description is None:
                return None
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchmany(self.max_rows + 1)
            more = len(rows) > self.max_rows
            return columns, rows[: self.max_rows], more
        finally:
            cursor.close()

    def _show(self, columns: list[str], rows: list[tuple[Any, ...]], more: bool) -> None:
        if more:
            notice = f"first {self.max_rows} rows shown: more with LIMIT/OFFSET, or the kernel's --max-rows option"
        else:
            notice = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
        text = text_table(columns, rows) + f"\n({notice})"
        markup = html_table(columns, rows) + f"<p><small>{html.escape(notice)}</small></p>"
        self.display({"text/plain": text, "text/html": markup})

    def _error(self, exc: Exception, statement: Statement, number: int, total: int, silent: bool) -> dict[str, Any]:
        where = f"statement {number} of {total}, line {statement.line}" if total > 1 else f"line {statement.line}"
        ename = type(exc).__name__
        evalue = f"{exc} (in {where}: {statement.text})"
        traceback = [f"{ename}: {exc}", f"  in {where}:", *("    " + ln for ln in statement.text.splitlines())]
        if number > 1:
            before = (
                "the statement before it ran and stays"
                if number == 2
                else f"the {number - 1} statements before it ran and stay"
            )
            traceback.append(f"  ({before} applied)")
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    # ---- dot-commands ----------------------------------------------------------------------

    def _dot_command(self, line: str, silent: bool) -> None:
        command, _, argument = line.partition(" ")
        argument = argument.strip().strip(";").strip()
        if command == ".tables":
            names = [name for name, _ in self._tables()]
            text = "  ".join(names) if names else "(no tables)"
        elif command == ".schema":
            text = "\n".join(self._schema(argument or None)) or (
                f"(no table named {argument})" if argument else "(empty database)"
            )
        elif command == ".help":
            text = "\n".join(f"{c:<10}{h}" for c, h in DOT_COMMANDS.items())
        else:
            raise DotCommandError(f"unknown command {command}; the kernel knows {', '.join(DOT_COMMANDS)}")
        if not silent:
            self.print(text)

    def _tables(self) -> list[tuple[str, str]]:
        cursor = self.connection.execute(
            "SELECT name, type FROM sqlite_master"
            " WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        return cursor.fetchall()

    def _schema(self, table: str | None) -> list[str]:
        sql = "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        args: tuple[str, ...] = ()
        if table:
            sql += " AND lower(tbl_name) = lower(?)"
            args = (table,)
        return [row[0] + ";" for row in self.connection.execute(sql + " ORDER BY type DESC, name", args)]

    def _columns(self, table: str) -> list[tuple[str, str, bool, Any, bool]]:
        """(name, type, notnull, default, primary key) of each column of ``table``."""
        rows = self.connection.execute(
            'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)', (table,)
        )
        return [(r[0], r[1], bool(r[2]), r[3], bool(r[4])) for r in rows]

    def _table_named(self, word: str) -> str | None:
        for name, _ in self._tables():
            if name.lower() == word.lower():
                return name
        return None

    # ---- completion, inspection, is_complete -----------------------------------------------

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        before = code[:cursor_pos]
        line = before.rsplit("\n", 1)[-1]
        if line.lstrip().startswith(".") and " " not in line.strip():
            prefix = line.strip()
            matches = [c for c in DOT_COMMANDS if c.startswith(prefix)]
            return self._matches(matches, cursor_pos - len(prefix), cursor_pos)
        found = _WORD_BEFORE.search(before)
        qualifier = (found.group(1) or "")[:-1] if found else ""
        prefix = (found.group(2) or "") if found else ""
        start = cursor_pos - len(prefix)
        if qualifier:
            table = self._table_named(qualifier)
            names = [c[0] for c in self._columns(table)] if table else []
            return self._matches([n for n in names if n.lower().startswith(prefix.lower())], start, cursor_pos)
        if not prefix:
            return self._matches([], cursor_pos, cursor_pos)
        tables = [name for name, _ in self._tables()]
        columns = sorted({c[0] for t in tables for c in self._columns(t)})
        lower = prefix.lower()
        keywords = [k if prefix[:1].isupper() else k.lower() for k in KEYWORDS if k.lower().startswith(lower)]
        names = [n for n in tables + columns if n.lower().startswith(lower)]
        matches = list(dict.fromkeys(names + keywords))
        return self._matches(matches, start, cursor_pos)

    @staticmethod
    def _matches(matches: list[str], start: int, end: int) -> dict[str, Any]:
        return {"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": {}}

    def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Sequence[str] = ()
    ) -> dict[str, Any]:
        word = _word_at(code, cursor_pos)
        table = self._table_named(word) if word else None
        if table is None:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        columns = self._columns(table)
        count = self.connection.execute(f'SELECT count(*) FROM "{table.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
        header = ["column", "type", "not null", "default", "primary key"]
        rows = [
            (n, t or "", "yes" if nn else "", "" if d is None else d, "yes" if pk else "")
            for n, t, nn, d, pk in columns
        ]
        schema = "\n".join(self._schema(table))
        text = f"{table}: {count} row{'s' if count != 1 else ''}\n{text_table(header, rows)}\n\n{schema}"
        markup = (
            f"<p><b>{html.escape(table)}</b>: {count} rows</p>{html_table(header, rows)}"
            f"<pre>{html.escape(schema)}</pre>"
        )
        return {"status": "ok", "found": True, "data": {"text/plain": text, "text/html": markup}, "metadata": {}}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        _, rest = split_cell(code)
        if _is_blank(rest):
            return {"status": "complete"}
        return {"status": "incomplete", "indent": ""}

    # ---- interrupts and shutdown ------------------------------------------------------------

    def do_interrupt(self) -> None:
        """Message-mode interrupt (control thread): stop the running query at once."""
        self._interrupted.set()
        self.connection.interrupt()

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self.connection.close()
        return {"status": "ok", "restart": restart}


class DotCommandError(ValueError):
    """An unknown or malformed dot-command."""


def _word_at(code: str, cursor_pos: int) -> str:
    for match in _WORD_AT.finditer(code):
        if match.start() <= cursor_pos <= match.end():
            return match.group()
    return ""


if __name__ == "__main__":
    SQLiteKernel.launch()
