"""``jupyter console --kernel NAME`` driven through a pseudo-terminal, as a person types.

The console runs with its full prompt_toolkit interface (not ``--simple-prompt``) in a pty;
what it draws is read back with the terminal escape codes removed. Checked: the banner, the
``In [n]:`` prompt, a cell and its output, a multi-line ``for`` block continued through
``is_complete_request``, Ctrl-C interrupting a long cell, and leaving (``exit`` / Ctrl-D), after
which the console and its kernel processes are gone.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import psutil
import pytest
from frontend_kit import ECHO, FRONTEND_KERNELS, SHOWCASE, FrontendKernel, artifacts, kernel_ids  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # more than ~3 s a test: a real jupyter console in a pty, several seconds a test

# CSI and OSC sequences, charset switches, keypad modes, and carriage returns
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r")
PROMPT = r"In \[{n}\]: "


class Console:
    """A ``jupyter console`` in a pty; ``wait(regex)`` scans what it printed, escape codes removed."""

    def __init__(self, kernel: FrontendKernel, log_path: Path) -> None:
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}  # no cursor-position queries
        self.log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.child = pexpect.spawn(sys.executable, ["-m", "jupyter", "console", "--kernel", kernel.name],
                                   env=env, encoding="utf-8", timeout=30, dimensions=(40, 120))
        self.child.logfile_read = self.log
        self.text = ""
        self.pos = 0

    def wait(self, pattern: str, timeout: float = 30) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.text, self.pos)
            if match:
                self.pos = match.end()
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"the console never showed {pattern!r}; its last screen text:\n"
                                     f"{self.text[self.pos:][-1500:]}")
            try:
                self.text += ANSI.sub("", self.child.read_nonblocking(4096, timeout=0.2))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                if not regex.search(self.text, self.pos):
                    raise AssertionError(f"the console exited before showing {pattern!r}:\n{self.text[-1500:]}") from None

    def type(self, text: str) -> None:
        self.child.send(text)

    def processes(self) -> list[psutil.Process]:
        """The console and everything it started (its kernel)."""
        me = psutil.Process(self.child.pid)
        return [me, *me.children(recursive=True)]

    def wait_exit(self, timeout: float = 30) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.log.close()


@pytest.fixture
def console(request: pytest.FixtureRequest, artifacts):
    consoles: list[Console] = []

    def start(kernel: FrontendKernel) -> Console:
        c = Console(kernel, artifacts(f"{request.node.name}.log"))
        consoles.append(c)
        return c

    yield start
    for c in consoles:
        c.close()


def assert_gone(processes: list[psutil.Process], timeout: float = 15) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    assert not alive, f"still running after the console exited: {[p.cmdline() for p in alive]}"


@pytest.mark.parametrize("kernel", FRONTEND_KERNELS, ids=kernel_ids(FRONTEND_KERNELS))
def test_banner_cell_and_ctrl_d(kernel: FrontendKernel, console) -> None:
    """The seed article's check: the kernel's banner, a cell and its output, then leave."""
    c = console(kernel)
    c.wait(r"Jupyter console [\d.]+")
    c.wait(re.escape(kernel.banner))
    c.wait(PROMPT.format(n=1))
    procs = c.processes()
    assert len(procs) >= 2, "the console should have started its kernel"
    c.type(kernel.sample_code + "\r")
    c.wait("\n" + re.escape(kernel.sample_output.rstrip("\n")) + "\n")
    c.wait(PROMPT.format(n=2))
    c.type("\x04")  # Ctrl-D on an empty line
    c.wait(r"Do you really want to exit \(\[y\]/n\)\?")
    c.type("y\r")
    assert c.wait_exit() == 0
    assert_gone(procs)


def test_showcase_multiline_interrupt_and_exit(console) -> None:
    c = console(SHOWCASE)
    c.wait(PROMPT.format(n=1))
    procs = c.processes()

    # A for block: the kernel's is_complete says "incomplete" after the colon, so Enter
    # continues the cell with a "...:" prompt and an indent; an empty line ends it.
    c.type("for i in range(3):\r")
    c.wait(r"\.\.\.: ")
    c.type("print(i * 10)\r")
    c.wait(r"\.\.\.: ")
    c.type("\r")
    c.wait(r"\n0\n10\n20\n")
    c.wait(PROMPT.format(n=2))

    # An unfinished expression continues too.
    c.type("(1 +\r")
    c.wait(r"\.\.\.: ")
    c.type("41)\r")
    c.wait(r"Out\[2\]: 42\n")
    c.wait(PROMPT.format(n=3))

    # Ctrl-C interrupts a long cell; the kernel lives on with its namespace.
    c.type("import time; started = time.time(); time.sleep(60)\r")
    time.sleep(1.5)
    interrupted_at = time.monotonic()
    c.type("\x03")
    c.wait("KeyboardInterrupt", timeout=15)
    assert time.monotonic() - interrupted_at < 10
    c.wait(PROMPT.format(n=4))
    c.type("print('slept', round(time.time() - started) < 30)\r")
    c.wait(r"slept True\n")
    c.wait(PROMPT.format(n=5))

    # `exit` in a cell: the kernel answers with an ask_exit payload and the console closes.
    c.type("exit\r")
    c.wait("Shutting down kernel")
    assert c.wait_exit() == 0
    assert_gone(procs)


@pytest.mark.slow
def test_the_first_cell_never_hangs_twenty_consoles_in_a_row(console) -> None:
    """jupyter console sends its first cell right after kernel_info, before its iopub subscription
    may have reached the kernel: the kernel holds the cell until someone listens (issue 10, item 0)."""
    for run in range(20):
        c = console(ECHO)
        c.wait(PROMPT.format(n=1))
        c.type(f"first cell {run}\r")
        c.wait(f"\nfirst cell {run}\n", timeout=15)
        c.wait(PROMPT.format(n=2))
        procs = c.processes()
        c.type("\x04")
        c.wait(r"Do you really want to exit \(\[y\]/n\)\?")
        c.type("y\r")
        assert c.wait_exit() == 0
        assert_gone(procs)
