"""``ReplKernel``: run a command-line REPL in a pseudo-terminal and feed it each cell.

How it works (docs/wrap.md has the user's view):

- The program runs in its own session on a pty whose echo is off (so input never comes back)
  and whose output post-processing is off (no CRLF); ``TERM=dumb``.
- After start, ``prompt_change`` sets a prompt holding a random token, so output can never be
  mistaken for a prompt; the banner and everything before that prompt is dropped.
- A cell is sent one line at a time, as typed; after each line the kernel reads until the
  output *ends* with the main or the continuation prompt. Output is streamed as it arrives:
  whole lines as soon as nothing more is readable, a partial line after a short quiet spell,
  large floods in 256 KB messages (memory stays bounded).
- Output cleaning (:meth:`clean_output`, :class:`OutputCleaner`): terminal escape sequences
  are removed except colours (SGR, which Jupyter renders), CRLF becomes LF, BEL is dropped.
- Interrupt (both ``interrupt_mode``\\ s reach ``do_execute`` as KeyboardInterrupt): Ctrl-C
  (``\\x03``) is written to the pty, so the terminal sends SIGINT to the program's foreground
  job; the kernel reads up to the next prompt (the REPL keeps its state) and the cell ends with
  an error reply. If no prompt comes back, the foreground job is killed, and then the REPL.
- Waiting for input: when no output has arrived for ``INPUT_QUIET`` seconds and no prompt
  ended the output, the kernel looks at the processes of the pty's foreground process group
  (``/proc/PID/syscall``): if one is blocked in ``read`` on the terminal (or in
  ``select``/``poll`` on the terminal alone), the program wants input. Only then is an
  ``input_request`` sent (with the unfinished last line as its prompt). A program that is merely
  silent (``sleep 5``) is blocked in another system call and never asks. Without ``allow_stdin``
  the program gets end-of-file (Ctrl-D) and a note on stderr. Linux only; elsewhere input is
  never requested.
- Child death: end-of-file on the pty, or the REPL process gone, ends the cell with a note; the
  next cell starts a fresh REPL.

Subclass it for a REPL no profile covers: set ``profile`` (a :class:`Profile`) and override
:meth:`cell_lines` (how a cell is sent), :meth:`completion_command` / :meth:`parse_completions`
(how completion is asked), :meth:`clean_output` (how output is cleaned).
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import kernelkit.wrap.profiles as _profiles
from kernelkit import Kernel
from kernelkit.wrap.profiles import Profile

#: Seconds without output before the kernel checks whether the program waits for input.
INPUT_QUIET = 0.05
#: Seconds without output before a partial line (no newline yet) is sent to the frontend.
PARTIAL_QUIET = 0.05
#: Longest line a terminal in canonical mode takes (4095 bytes on Linux, with its newline).
MAX_LINE = 4000
#: Seconds a complete line waits for more output (usually the prompt) before it is sent alone.
LINE_GRACE = 0.002
#: Largest stream message (characters); also the most output the kernel holds.
CHUNK = 256 * 1024
#: How much of the end of the output can hold a prompt.
PROMPT_WINDOW = 1024
#: Seconds to wait for the REPL's first prompt.
START_TIMEOUT = 30.0
#: Seconds an interrupted program gets to come back to its prompt before harsher steps.
INTERRUPT_GRACE = 1.0

_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC ... BEL or ST
    r"|[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC ... ST
    r"|[ -/]*[0-~])"  # two-byte and nF escapes
    r"|\x07"
)
_PASSWORD_PROMPT = re.compile(r"(?i)(pass(word|phrase)?|passwort|mot de passe|pin)\b[^\n]*[:?]\s*\Z")
_SGR = re.compile(r"\x1b\[[0-9;:]*m\Z")
_ESC_START = re.compile(r"\x1b[^\x1b]*\Z")

# read(2) and friends, by machine: syscall numbers in /proc/PID/syscall.
_READS = {"x86_64": {0, 17, 19}, "aarch64": {63, 65, 67}}.get(os.uname().machine, set())
_SELECTS = {"x86_64": {23, 270}, "aarch64": {72}}.get(os.uname().machine, set())
_POLLS = {"x86_64": {7, 271}, "aarch64": {73}}.get(os.uname().machine, set())


class ReplError(ValueError):
    """The REPL could not be started or talked to; the message says what to do.

    A ValueError so that the launcher reports it in one line when it stops the kernel's start."""


class ReplDied(Exception):
    """The REPL process ended (``exit`` or a crash) while the kernel waited for it."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        super().__init__(status)


class OutputCleaner:
    """Incremental terminal-output cleaner: escape sequences (except colours) and BEL dropped,
    CRLF turned into LF; anything that could be the start of a sequence is held back until the
    next chunk shows how it ends."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        start = text.rfind("\x1b", max(0, len(text) - 256))
        if start >= 0 and not _ESCAPE.match(text, start):
            tail = text[start:]
            if len(tail) < 256 and _ESC_START.match(tail):
                text, self._held = text[:start], tail
        if text.endswith("\r"):
            text, self._held = text[:-1], "\r" + self._held
        return clean(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return clean(held)


def _keep_colour(match: re.Match[str]) -> str:
    return match.group() if _SGR.match(match.group()) else ""


def clean(text: str) -> str:
    """``text`` without terminal control sequences (colours kept) and with LF line ends."""
    if "\x1b" in text or "\x07" in text:
        text = _ESCAPE.sub(_keep_colour, text)
    return text.replace("\r\n", "\n") if "\r" in text else text


class ReplKernel(Kernel):
    implementation = "kernelkit-wrap"
    #: Set in a subclass to wrap a fixed program; otherwise built from the command line.
    profile: Profile | None = None

    # ---- command line ------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--profile", help="built-in profile: " + ", ".join(_profiles.PROFILES))
        parser.add_argument("--prompt", metavar="REGEX", help="regex of the main prompt ({token}: the unique token)")
        parser.add_argument("--continuation-prompt", metavar="REGEX", help="regex of the continuation prompt")
        parser.add_argument("--prompt-change", metavar="CMD", help="line that sets a unique prompt ({token})")
        parser.add_argument("--init", action="append", metavar="CODE", help="code run once after start (repeatable)")
        parser.add_argument("--language", help="language name in kernel_info")
        parser.add_argument("--file-extension", metavar="EXT")
        parser.add_argument("--codemirror-mode", metavar="MODE")
        parser.add_argument("--pygments-lexer", metavar="LEXER")
        parser.add_argument("--mimetype")
        parser.add_argument(
            "repl_command", nargs="*", metavar="COMMAND", help="the program and its arguments, after --"
        )

    @classmethod
    def profile_from_arguments(cls, args: Any) -> Profile:
        """The profile a kernel's options describe: a built-in one, with every given option on top."""
        command = list(getattr(args, "repl_command", None) or [])
        if getattr(args, "profile", None):
            if args.profile not in _profiles.PROFILES:
                raise ReplError(f"no built-in profile {args.profile!r}; choose one of {', '.join(_profiles.PROFILES)}")
            profile = _profiles.get(args.profile)
        elif cls.profile is not None:
            profile = cls.profile.replace()
        else:
            profile = _profiles.custom(command)
        changes: dict[str, Any] = {}
        if command:
            changes["command"] = command
        for option in _profiles.OPTIONS:
            value = getattr(args, option, None)
            if value is not None:
                changes[option] = value
        if getattr(args, "init", None):
            changes["init"] = profile.init + list(args.init)
        return profile.replace(**changes)

    # ---- life cycle --------------------------------------------------------------------------

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.arguments is not None:
            self.profile = self.profile_from_arguments(self.arguments)
        if self.profile is None:
            raise ReplError("no REPL to wrap: give --profile NAME or a command after --")
        profile = self.profile
        self.language_info = {
            "name": profile.language,
            "mimetype": profile.mimetype,
            "file_extension": profile.file_extension,
            "codemirror_mode": profile.codemirror_mode or profile.language,
            "pygments_lexer": profile.pygments_lexer or profile.language,
        }
        self.banner = f"{' '.join(profile.command)} wrapped by kernelkit"
        self.token = "kk" + secrets.token_hex(4)
        self.child: subprocess.Popen[bytes] | None = None
        self.master = -1
        self.start_error = ""
        try:
            self.start_repl()
        except ReplError as exc:  # reported by every cell until a start succeeds
            self.start_error = str(exc)

    def _fill(self, text: str, regex: bool) -> str:
        return text.replace("{token}", re.escape(self.token) if regex else self.token)

    def start_repl(self) -> None:
        """Start the program on a new pty, set its unique prompt, run ``init``."""
        import fcntl
        import pty
        import shutil
        import struct
        import termios

        self.stop_repl()
        profile = self.profile
        assert profile is not None
        if not profile.command:
            raise ReplError("no command to run: give one after -- (kernelkit wrap install ... -- COMMAND ARGS)")
        if not profile.prompt:
            raise ReplError(f"no prompt regex for {profile.command[0]}: give --prompt REGEX (and --prompt-change CMD)")
        self.prompt_re = re.compile(r"(?:" + self._fill(profile.prompt, True) + r")\Z", re.M)
        # A prompt holding the random token cannot be output: found anywhere, it is the prompt
        # (with a background job's output after it).
        self.prompt_anywhere_re = re.compile(self._fill(profile.prompt, True)) if "{token}" in profile.prompt else None
        cont = profile.continuation_prompt
        self.continuation_re = re.compile(r"(?:" + self._fill(cont, True) + r")\Z", re.M) if cont else None
        env = dict(os.environ)
        env.pop("JPY_PARENT_PID", None)
        env.update(profile.env)
        program = shutil.which(profile.command[0], path=env.get("PATH"))
        if program is None:
            raise ReplError(
                f"{profile.command[0]} is not on PATH ({env.get('PATH', '')}); install it or give its full path"
            )
        master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ECHOE | termios.ECHOK | termios.ECHOCTL)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.slave_name = os.ttyname(slave)

        def controlling_tty() -> None:  # runs in the child: make the pty its controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.child = subprocess.Popen(
                [program, *profile.command[1:]],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=controlling_tty,
                close_fds=True,
            )
        except OSError as exc:
            os.close(master)
            raise ReplError(f"cannot start {program}: {exc.strerror}; check the command") from None
        finally:
            os.close(slave)
        self.master = master
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._cleaner = OutputCleaner()
        self._pending = ""
        deadline = time.monotonic() + START_TIMEOUT
        self._start_output: list[str] = []
        try:
            if profile.prompt_change:
                # The program's own prompt is unknown: wait until it is quiet, then type the init
                # lines and the prompt change ahead (a terminal keeps typed-ahead lines in order), so
                # an init line that sets its own prompt (`source ~/.bashrc`) cannot undo the change.
                self._start_output.append(self._read_until_quiet(0.02, deadline))
                for line in profile.init:
                    self.write(self._fill(line, False) + "\n")
                self.write(self._fill(profile.prompt_change, False) + "\n")
                kind, _ = self._collect(self._start_output.append, deadline=deadline)
                if kind == "continuation":
                    self._cancel_continuation()
            else:
                self._collect(self._start_output.append, deadline=deadline)
                for line in profile.init:
                    self.run_hidden(self._fill(line, False), deadline=deadline)
        except (ReplDied, TimeoutError) as exc:
            output = ("".join(self._start_output) + self._pending).strip()[-500:]
            self.stop_repl()
            why = (
                "exited"
                if isinstance(exc, ReplDied)
                else f"showed no prompt matching {profile.prompt!r} in {START_TIMEOUT:g} s"
            )
            raise ReplError(
                f"{' '.join(profile.command)} {why} at start (output: {output!r}); "
                "check the command and --prompt/--prompt-change"
            ) from None

    def stop_repl(self) -> None:
        """End the program: hang up its terminal, then SIGTERM/SIGKILL its process group."""
        child, self.child = self.child, None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        if child is None:
            return
        for sig, wait in ((signal.SIGHUP, 0.3), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(child.pid, sig)
            except OSError:
                pass
            try:
                child.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self.stop_repl()
        if getattr(self, "_cell_dir", None):
            import shutil

            shutil.rmtree(self._cell_dir, ignore_errors=True)
        return {"status": "ok", "restart": restart}

    @property
    def kernel_info(self) -> dict[str, Any]:
        """kernel_info_reply, plus ``kernelkit_wrap``: the command, its pid, and why it did not start
        (doctor reads it)."""
        info = dict(super().kernel_info)
        info["kernelkit_wrap"] = {
            "command": list(self.profile.command) if self.profile else [],
            "pid": self.child.pid if self.child else None,
            "error": self.start_error,
        }
        return info

    @property
    def repl_alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    # ---- reading -------------------------------------------------------------------------------

    def _read_until_quiet(self, quiet: float, deadline: float) -> str:
        """Wait for the first output, then read until ``quiet`` seconds pass without more; returns it."""
        waited = False
        while time.monotonic() < deadline:
            wait = quiet if waited else max(0.0, deadline - time.monotonic())
            if not select.select([self.master], [], [], wait)[0]:
                break
            waited = True
            self._read_some()
        text, self._pending = self._pending, ""
        return text

    def _read_some(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._child_gone()
        self._pending += self.clean_output(self._decoder.decode(data))

    def _read_batch(self) -> None:
        """Read what is readable now, up to CHUNK characters (joined once: no quadratic copying)."""
        parts, size = [self._pending], len(self._pending)
        try:
            while True:
                self._pending = ""
                self._read_some()  # appends to self._pending (also when it raises ReplDied)
                parts.append(self._pending)
                size += len(self._pending)
                self._pending = ""
                if size >= CHUNK or not select.select([self.master], [], [], 0)[0]:
                    break
        finally:
            self._pending = "".join(parts) + self._pending

    def _child_gone(self) -> None:
        self._pending += self._cleaner.flush()
        status = None
        if self.child is not None:
            try:
                status = self.child.wait(2)
            except subprocess.TimeoutExpired:
                pass
        raise ReplDied(status)

    def clean_output(self, text: str) -> str:
        """Turn raw terminal output (decoded) into what the frontend shows; override to change it."""
        return self._cleaner.feed(text)

    def discard_stale_output(self) -> None:
        """Drop what the program printed since the last prompt (a background job's output, a second
        prompt after an interrupt), so the next command's output starts clean."""
        while select.select([self.master], [], [], 0)[0]:
            self._read_some()
        self._pending = ""

    def _match_prompt(self) -> tuple[str, re.Match[str]] | None:
        """("prompt" or "continuation", match) if the output ends with a prompt."""
        pending = self._pending
        if not pending:
            return None
        tail_start = max(0, len(pending) - PROMPT_WINDOW)
        match = self.prompt_re.search(pending, tail_start)
        if match:
            return "prompt", match
        if self.continuation_re is not None:
            match = self.continuation_re.search(pending, tail_start)
            if match:
                return "continuation", match
        if self.prompt_anywhere_re is not None:
            found = None
            for found in self.prompt_anywhere_re.finditer(pending):  # noqa: B007 - the last match
                pass
            if found is not None:
                return "prompt", found
        return None

    def _collect(
        self,
        emit: Callable[[str], None],
        deadline: float | None = None,
        stdin: Callable[[str], str | None] | None = None,
    ) -> tuple[str, re.Match[str]]:
        """Read until the output ends with a prompt; pass the output before it to ``emit``.

        ``stdin(prompt)`` is called when the program waits for input: it returns the line to
        send, or None to send end-of-file. Without ``stdin`` input is never looked for (start-up,
        hidden commands: they wait for their prompt, up to ``deadline``).
        """
        master = self.master
        last_output = time.monotonic()
        next_check = last_output + INPUT_QUIET
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError("no prompt")
            timeout = max(0.0, next_check - now)
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
            if select.select([master], [], [], timeout)[0]:
                self._read_batch()
                found = self._match_prompt()
                if found is not None:
                    kind, match = found
                    before = self._pending[: match.start()] + self._pending[match.end() :]
                    self._pending = ""
                    if before:
                        emit(before)
                    return kind, match
                pending = self._pending
                if len(pending) >= CHUNK:
                    while len(pending) - PROMPT_WINDOW >= CHUNK:  # keep the end: it may become a prompt
                        emit(pending[:CHUNK])
                        pending = pending[CHUNK:]
                    self._pending = pending
                else:
                    newline = pending.rfind("\n")
                    # a moment's grace: the prompt usually follows the last line within microseconds,
                    # and one stream message for both saves a wake-up of the whole engine
                    if newline >= 0 and not select.select([master], [], [], LINE_GRACE)[0]:
                        emit(pending[: newline + 1])
                        self._pending = pending[newline + 1 :]
                last_output = time.monotonic()
                next_check = last_output + min(INPUT_QUIET, PARTIAL_QUIET)
                continue
            # Quiet: is the REPL gone, or is the program waiting for input?
            now = time.monotonic()
            if self.child is not None and self.child.poll() is not None:
                while select.select([master], [], [], 0)[0]:
                    try:
                        self._read_some()
                    except ReplDied:
                        break
                if self._pending:
                    emit(self._pending)
                    self._pending = ""
                self._child_gone()
            if stdin is not None and now - last_output >= INPUT_QUIET and self.waiting_for_input():
                if select.select([master], [], [], 0)[0]:
                    continue  # output (perhaps the prompt) arrived meanwhile
                prompt, self._pending = self._pending, ""
                line = stdin(prompt)
                if line is None:
                    if prompt:
                        emit(prompt)
                    os.write(master, b"\x04")
                else:
                    self.write(line + "\n")
                last_output = time.monotonic()
                next_check = last_output + INPUT_QUIET
                continue
            if self._pending and now - last_output >= PARTIAL_QUIET:
                emit(self._pending)
                self._pending = ""
            # check again later, less often the longer it stays quiet
            next_check = now + min(0.25, max(INPUT_QUIET, (now - last_output) / 4))

    def waiting_for_input(self) -> bool:
        """Whether a process of the terminal's foreground job is blocked reading the terminal."""
        if not _READS or self.child is None:
            return False
        try:
            group = os.tcgetpgrp(self.master)
        except OSError:
            return False
        for pid in self._group_members(group):
            if self._reads_terminal(pid):
                return True
        return False

    def _group_members(self, group: int) -> list[int]:
        """Processes of ``group`` among the REPL and its descendants."""
        assert self.child is not None
        found, todo = [], [self.child.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stat = f.read()
                if int(stat[stat.rindex(b")") + 2 :].split()[2]) == group:
                    found.append(pid)
                with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
                    todo.extend(int(p) for p in f.read().split())
            except (OSError, ValueError, IndexError):
                continue
        return found

    def _reads_terminal(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/syscall", "rb") as f:
                fields = f.read().split()
            if not fields or fields[0] == b"running":
                return False
            number = int(fields[0])
            args = [int(a, 16) for a in fields[1:7]]
            if number in _READS:
                fds = [args[0]]
            elif number in _SELECTS and args[0] == 1:
                fds = [0]  # nfds == 1: only fd 0 is watched
            elif number in _POLLS and args[1] == 1:
                with open(f"/proc/{pid}/mem", "rb") as mem:
                    mem.seek(args[0])
                    fds = [int.from_bytes(mem.read(4), sys.byteorder, signed=True)]
            else:
                return False
            # /dev/tty: the process opened its controlling terminal, our pty (getpass does)
            return any(os.readlink(f"/proc/{pid}/fd/{fd}") in (self.slave_name, "/dev/tty") for fd in fds)
        except (OSError, ValueError, IndexError):
            return False

    # ---- writing -------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        data = text.encode()
        while data:
            written = os.write(self.master, data)
            data = data[written:]

    def run_hidden(self, line: str, timeout: float = 10.0, deadline: float | None = None) -> str:
        """Send one line and return its output up to the next prompt (nothing is shown)."""
        out: list[str] = []
        self.discard_stale_output()
        self.write(line + "\n")
        kind, _ = self._collect(out.append, deadline=deadline or time.monotonic() + timeout)
        if kind == "continuation":  # not a complete command: cancel it
            self._cancel_continuation()
        return "".join(out)

    def _cancel_continuation(self) -> None:
        os.write(self.master, b"\x03")
        deadline = time.monotonic() + INTERRUPT_GRACE * 2
        while True:
            kind, _ = self._collect(lambda text: None, deadline=deadline)
            if kind == "prompt":
                return

    # ---- cells ---------------------------------------------------------------------------------

    def cell_lines(self, code: str) -> list[str]:
        """The lines to type for a cell; override to send cells differently.

        Default: the cell's lines without trailing blank ones. The python profile sends the cell
        base64-encoded to a helper in chunks, then runs it: blank lines inside blocks work,
        the last expression is shown as in the REPL, and tracebacks name ``<cell>``.
        """
        assert self.profile is not None
        if self.profile.sender == "python":
            import base64

            encoded = base64.b64encode(code.encode()).decode()
            lines = [f"__kk_add('{encoded[i : i + 2000]}')" for i in range(0, len(encoded), 2000)]
            return [*lines, "__kk_run()"]
        lines = [line.rstrip("\r") for line in code.rstrip().split("\n")]
        if self.profile.run_file and any(len(line.encode()) > MAX_LINE for line in lines):
            return [self.profile.run_file.replace("{path}", self._cell_file("\n".join(lines) + "\n"))]
        return lines

    def _cell_file(self, text: str) -> str:
        """Write a cell to a file in a private (0700) temporary folder; returns its path."""
        import tempfile

        if getattr(self, "_cell_dir", None) is None:
            self._cell_dir = tempfile.mkdtemp(prefix="kernelkit-wrap-")
        path = os.path.join(self._cell_dir, "cell" + (self.profile.file_extension if self.profile else ""))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def stream(self, text: str, name: str = "stdout") -> None:
        self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _error(self, ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
        content = {
            "ename": ename,
            "evalue": evalue,
            "traceback": traceback if traceback is not None else [f"{ename}: {evalue}"],
        }
        self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        ok = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if not code.strip():
            return ok
        assert self.profile is not None
        if not self.repl_alive:
            try:
                self.start_repl()
                self.start_error = ""
            except ReplError as exc:
                return self._error("ReplError", str(exc))
        tail: list[str] = [""]  # the end of the cell's output, for the error's evalue

        def emit(text: str) -> None:
            tail[0] = (tail[0] + text)[-2048:]
            if not silent:
                self.stream(text)

        def stdin(prompt: str) -> str | None:
            if allow_stdin:
                # The pty never echoes, so it cannot tell a password from other input: the prompt does.
                try:
                    return self.getpass(prompt) if _PASSWORD_PROMPT.search(prompt) else self.raw_input(prompt)
                except EOFError:  # the frontend's end-of-file: the program's too
                    return None
            if not silent:  # the unfinished line (``prompt``) is shown by _collect
                self.stream(
                    f"[{self.profile.command[0] if self.profile else 'the program'} is waiting for input, "
                    "but this frontend does not send "
                    "input (allow_stdin is false): it gets end-of-file]\n",
                    "stderr",
                )
            return None

        match = None
        try:
            self.discard_stale_output()
            lines = self.cell_lines(code)
            for index, line in enumerate(lines):
                self.write(line + "\n")
                kind, match = self._collect(emit, stdin=stdin)
                if kind == "continuation" and index == len(lines) - 1:
                    self._cancel_continuation()
                    return self._error(
                        "IncompleteInput",
                        f"the cell is not complete: {self.profile.command[0]} "
                        "still expects more input (it was cancelled); finish the statement",
                    )
        except KeyboardInterrupt:
            self.interrupt_child(emit)
            raise
        except ReplDied as exc:
            return self._repl_died(exc, emit, silent)
        except OSError as exc:  # the terminal is gone (EIO) under a write: the REPL died
            if exc.errno != errno.EIO:
                raise
            return self._repl_died(ReplDied(self.child.poll() if self.child else None), emit, silent)
        status = (match.groupdict().get("status") or "0") if match is not None else "0"
        if status in ("0", ""):
            return ok
        if status.isdigit():
            return self._error(self.profile.status_error, f"exit status {status}")
        # a word: the name of an error (python: the exception's class); its message is the output's last line
        last = next((line for line in reversed(tail[0].splitlines()) if line.startswith(status)), "")
        return self._error(status, last.partition(":")[2].strip() or "see the output above", [])

    def _repl_died(self, exc: ReplDied, emit: Callable[[str], None], silent: bool = False) -> dict[str, Any]:
        if self._pending:
            emit(self._pending)
            self._pending = ""
        name = self.profile.command[0] if self.profile else "the REPL"
        self.stop_repl()
        status = exc.status
        if status is not None and status < 0:
            how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}" if status is not None else "closed its terminal"
        message = f"[{name} {how}; the next cell starts a new one]\n"
        if status == 0:
            if not silent:
                self.stream(message, "stderr")
            return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        return self._error("ReplDied", message.strip("[]\n"))

    def interrupt_child(self, emit: Callable[[str], None]) -> None:
        """Ctrl-C to the program, then read to its prompt; kill the job, then the REPL, if it does not come back."""
        if not self.repl_alive:
            return
        steps: list[Callable[[], object]] = [
            lambda: os.write(self.master, b"\x03"),
            lambda: os.write(self.master, b"\x03"),
            self._kill_foreground,
            self.stop_repl,
        ]
        for step in steps:
            if not self.repl_alive:
                return
            try:
                step()
            except OSError:
                pass
            if not self.repl_alive:
                return
            deadline = time.monotonic() + INTERRUPT_GRACE
            while True:
                try:
                    kind, _ = self._collect(emit, deadline=deadline)
                    if kind == "prompt":
                        return
                    os.write(self.master, b"\x03")  # leave a half-typed construct
                except TimeoutError:
                    break
                except KeyboardInterrupt:
                    continue  # a second interrupt while we are already at it
                except (ReplDied, OSError):
                    self.stop_repl()
                    return

    def _kill_foreground(self) -> None:
        group = os.tcgetpgrp(self.master)
        if self.child is not None and group != self.child.pid:
            os.killpg(group, signal.SIGKILL)

    def do_interrupt(self) -> dict[str, Any] | None:
        # The main thread gets KeyboardInterrupt next, and forwards Ctrl-C (interrupt_child).
        return None

    # ---- completion, inspection, is_complete ---------------------------------------------

    _WORD = re.compile(r"[^\s;|&<>()'\"`=]*\Z")
    _IDENT = re.compile(r"[\w.$:]*\Z")

    def completion_token(self, code: str, cursor_pos: int) -> str:
        """The text before the cursor that completion replaces."""
        assert self.profile is not None
        pattern = self._WORD if self.profile.completer in ("bash", "zsh") else self._IDENT
        match = pattern.search(code[:cursor_pos])
        token = match.group() if match else ""
        if self.profile.completer in ("python", "node", "sqlite"):
            token = token.replace("$", "").rsplit(":", 1)[-1]
        return token

    def completion_command(self, code: str, cursor_pos: int, token: str) -> str | None:
        """The hidden line that prints one completion per line, or None: override for other REPLs."""
        assert self.profile is not None
        kind = self.profile.completer
        if kind == "bash":
            import shlex

            before = code[: cursor_pos - len(token)].rstrip()
            if token.startswith("$"):
                return f" __kk_s=$?; compgen -P '$' -v -- {shlex.quote(token[1:])}; (exit $__kk_s)"
            actions = "-f"
            if not before or before[-1] in ";|&({":
                actions = "-A alias -A builtin -A function -A keyword -c -f"
            return f" __kk_s=$?; compgen {actions} -- {shlex.quote(token)} 2>/dev/null | sort -u; (exit $__kk_s)"
        if kind == "zsh":
            import shlex

            before = code[: cursor_pos - len(token)].rstrip()
            files = "$__kk_t*(N)"
            names = (
                "${(k)commands[(I)$__kk_t*]} ${(k)builtins[(I)$__kk_t*]} ${(k)functions[(I)$__kk_t*]} "
                "${(k)aliases[(I)$__kk_t*]} ${(k)reswords[(I)$__kk_t*]} "
            )
            what = names + files if not before or before[-1] in ";|&({" else files
            return f" __kk_s=$?; __kk_t={shlex.quote(token)}; print -rl -- {what} | sort -u; (exit $__kk_s)"
        if kind == "python":
            return f"__kk_complete({token!r})"
        if kind == "lua":
            return (
                "(function(s) local t = _G for part in s:gmatch('([%w_]+)[.:]') do t = t[part] "
                "if type(t) ~= 'table' then return end end local head, last = s:match('^(.-)([%w_]*)$') "
                "local out = {} for k in pairs(t) do if type(k) == 'string' and k:sub(1, #last) == last "
                "then out[#out + 1] = head .. k end end table.sort(out) print(table.concat(out, '\\n')) "
                f"end)({_lua_string(token)})"
            )
        if kind == "node":
            import json

            return (
                "((s) => { const i = s.lastIndexOf('.'); let o = globalThis, head = ''; if (i >= 0) "
                "{ try { o = eval(s.slice(0, i)) } catch (e) { return } head = s.slice(0, i + 1) } "
                "const last = s.slice(i + 1), names = new Set(); for (let p = o; p != null; "
                "p = Object.getPrototypeOf(p)) for (const k of Object.getOwnPropertyNames(p)) "
                "if (k.startsWith(last)) names.add(head + k); "
                f"console.log([...names].sort().join('\\n')) }})({json.dumps(token)})"
            )
        if kind == "sqlite":
            quoted = token.replace("'", "''")
            return (
                f" select name from sqlite_schema where name like '{quoted}%' and name not like 'sqlite_%' "
                f"union select name from pragma_table_list where schema = 'main' and name like '{quoted}%' order by 1;"
            )
        return None

    def parse_completions(self, output: str, token: str) -> list[str]:
        """Completions from the hidden command's output (one per line); override for other formats."""
        matches = [line for line in output.splitlines() if line and line.startswith(token)]
        if self.profile is not None and self.profile.completer == "sqlite":
            upper = token.upper()
            matches += [k if token.isupper() or not token else k.lower() for k in _SQL_KEYWORDS if k.startswith(upper)]
        return list(dict.fromkeys(matches))

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        token = self.completion_token(code, cursor_pos)
        result = {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos - len(token),
            "cursor_end": cursor_pos,
            "metadata": {},
        }
        command = self.completion_command(code, cursor_pos, token)
        if command is None or not self.repl_alive:
            return result
        try:
            output = self.run_hidden(command)
        except (ReplDied, TimeoutError):
            return result
        result["matches"] = self.parse_completions(output, token)
        return result

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()) -> dict[str, Any]:
        assert self.profile is not None
        not_found = {"status": "ok", "found": False, "data": {}, "metadata": {}}
        match = re.search(r"[\w.\-]*\Z", code[:cursor_pos])
        after = re.match(r"[\w.\-]*", code[cursor_pos:])
        name = (match.group() if match else "") + (after.group() if after else "")
        if not name or not self.repl_alive:
            return not_found
        if self.profile.inspector == "bash" and re.fullmatch(r"[\w.\-]+", name):
            command = f" __kk_s=$?; type {name} 2>/dev/null; (exit $__kk_s)"
        elif self.profile.inspector == "python" and re.fullmatch(r"[A-Za-z_][\w.]*", name):
            command = f"__kk_inspect({name!r})"
        else:
            return not_found
        try:
            text = self.run_hidden(command).strip()
        except (ReplDied, TimeoutError):
            return not_found
        if not text:
            return not_found
        return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        assert self.profile is not None
        checker = self.profile.checker
        if not code.strip():
            return {"status": "complete"}
        if checker in ("bash -n", "zsh -n"):
            return self._shell_is_complete(checker.split()[0], code)
        if checker == "python":
            import codeop
            import warnings

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    compiled = codeop.compile_command(code, "<cell>", "exec")
            except (SyntaxError, ValueError, OverflowError):
                return {"status": "invalid"}
            if compiled is None:
                return {"status": "incomplete", "indent": "    " if code.rstrip().endswith(":") else ""}
            if (
                "\n" in code.strip()
                and code.rstrip("\n").split("\n")[-1].startswith((" ", "\t"))
                and not code.endswith("\n\n")
            ):
                return {"status": "incomplete", "indent": ""}
            return {"status": "complete"}
        if checker == "sqlite":
            import sqlite3

            stripped = code.strip()
            if stripped.startswith(".") or sqlite3.complete_statement(stripped):
                return {"status": "complete"}
            return {"status": "incomplete", "indent": ""}
        if checker == "lua" and self.repl_alive:
            line = (
                "(function(s) local f, e = load(s, '=cell') if f then print('complete') "
                "elseif e:find('<eof>', 1, true) then print('incomplete') else print('invalid') end "
                f"end)({_lua_string(code)})"
            )
            try:
                answer = self.run_hidden(line).strip()
            except (ReplDied, TimeoutError):
                return {"status": "unknown"}
            if answer in ("complete", "incomplete", "invalid"):
                return {"status": answer, **({"indent": ""} if answer == "incomplete" else {})}
        return {"status": "unknown"}

    def _shell_is_complete(self, shell: str, code: str) -> dict[str, Any]:
        import shutil

        program = shutil.which(shell)
        if program is None:
            return {"status": "unknown"}
        if code.rstrip("\n").endswith("\\"):
            return {"status": "incomplete", "indent": ""}
        try:
            done = subprocess.run([program, "-n"], input=code.encode(), capture_output=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return {"status": "unknown"}
        if done.returncode == 0 and b"here-document" not in done.stderr:
            return {"status": "complete"}
        err = done.stderr
        if (
            b"end of file" in err
            or b"unexpected EOF" in err
            or b"here-document" in err
            or (shell == "zsh" and re.search(rb"parse error near `\\n'|unmatched", err))
        ):
            return {"status": "incomplete", "indent": ""}
        return {"status": "invalid"}


def _lua_string(text: str) -> str:
    """A Lua string literal for ``text`` (bytes outside printable ASCII as decimal escapes)."""
    out = []
    for byte in text.encode():
        if 32 <= byte < 127 and byte not in (34, 92):
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


_SQL_KEYWORDS = (
    "ALTER",
    "ANALYZE",
    "ATTACH",
    "BEGIN",
    "COMMIT",
    "CREATE",
    "DELETE",
    "DETACH",
    "DISTINCT",
    "DROP",
    "EXPLAIN",
    "FROM",
    "GROUP",
    "HAVING",
    "INDEX",
    "INSERT",
    "INTO",
    "JOIN",
    "LIMIT",
    "ORDER",
    "PRAGMA",
    "REINDEX",
    "RELEASE",
    "REPLACE",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "TABLE",
    "TRIGGER",
    "UNION",
    "UPDATE",
    "VACUUM",
    "VALUES",
    "VIEW",
    "WHERE",
    "WITH",
)


if __name__ == "__main__":
    ReplKernel.launch()
