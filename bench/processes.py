"""Child processes the benchmark owns: they end with it, whatever way it ends.

Each child gets a session of its own (Ctrl-C reaches only the benchmark,
which then stops them in order) and, on Linux, a parent-death signal, so a
benchmark killed outright takes its daemon and bots with it. They are
spawned from the main thread: the parent-death signal follows the thread
that forked, and trio's ``open_process`` forks from a worker thread. The
command line every participant process takes is defined here too.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import trio

PR_SET_PDEATHSIG = 1
LINE_LIMIT = 1 << 20  # bytes a bot's message may take


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _prepare(cpus: set[int] | None) -> None:
    # In the child, before it runs anything: its threads and children inherit the CPUs.
    _die_with_parent()
    if cpus:
        os.sched_setaffinity(0, cpus)


def cpu_list(text: str) -> set[int]:
    """CPUs as ``taskset -c`` writes them: "2,3" or "0-1,4"."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


class BotFailed(Exception):
    pass


class Child:
    """A process with its stderr (and stdout unless piped) in ``log``."""

    def __init__(self, argv: list[str], log: Path, cwd: Path, *, piped: bool = False,
                 cpus: set[int] | None = None):
        self.log = log
        self.piped = piped
        with open(log, "ab") as log_file:
            if piped:
                child_in, self._stdin_fd = os.pipe()
                self._stdout_fd, child_out = os.pipe()
                stdin, stdout = child_in, child_out
            else:
                stdin, stdout = subprocess.DEVNULL, log_file
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=log_file, cwd=cwd,
                                         start_new_session=True, preexec_fn=lambda: _prepare(cpus))
        if piped:
            os.close(child_in)
            os.close(child_out)
            self.stdin = trio.lowlevel.FdStream(self._stdin_fd)
            self.stdout = trio.lowlevel.FdStream(self._stdout_fd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await trio.sleep(0.05)
        return self.proc.poll()

    async def stop(self, grace: float = 5.0) -> int | None:
        """Ask politely (stdin closed, or SIGTERM), then SIGKILL after ``grace`` seconds."""
        with trio.CancelScope(shield=True):
            if self.proc.poll() is None:
                if self.piped:
                    await self.stdin.aclose()
                else:
                    self.proc.send_signal(signal.SIGTERM)
            if await self.wait(grace) is None:
                self.proc.kill()
                await self.wait(grace)
            if self.piped:
                await self.stdin.aclose()  # stdout is closed by the task reading it
            return self.proc.returncode


class Bot(Child):
    """A ``bench.bot`` process: commands go to its stdin, its JSON lines come back as messages."""

    def __init__(self, argv: list[str], log: Path, cwd: Path, name: str, cpus: set[int] | None = None):
        super().__init__(argv, log, cwd, piped=True, cpus=cpus)
        self.name = name
        self._send, self._messages = trio.open_memory_channel(1000)
        self.joined: dict | None = None
        self.notes: list[dict] = []  # messages nobody waited for (e.g. errors the server sent the bot)

    async def read_messages(self) -> None:
        """Run in a nursery: turns the bot's stdout into messages until it closes."""
        buffer = b""
        async with self._send, self.stdout:
            while True:
                chunk = await self.stdout.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                if len(buffer) > LINE_LIMIT:
                    raise BotFailed(f"{self.name}: a line longer than {LINE_LIMIT} bytes")
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        message = json.loads(line)
                    except ValueError:
                        message = {"event": "unreadable", "line": line[:200].decode(errors="replace")}
                    await self._send.send(message)

    async def command(self, text: str) -> None:
        try:
            await self.stdin.send_all(text.encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise BotFailed(f"{self.name} is gone (exit {self.proc.poll()}; see {self.log})") from None

    async def expect(self, event: str, timeout: float) -> dict:
        """The next message of kind ``event``; a bot that reports an error or ends raises BotFailed."""
        with trio.move_on_after(timeout):
            async for message in self._messages:
                if message.get("event") == event:
                    return message
                if message.get("event") == "error":
                    raise BotFailed(f"{self.name}: {message.get('error')} (see {self.log})")
                if len(self.notes) < 100:
                    self.notes.append(message)
            raise BotFailed(f"{self.name} ended (exit {self.proc.poll()}; see {self.log})")
        raise BotFailed(f"{self.name}: no {event!r} within {timeout:.0f} s (see {self.log})")

    async def request(self, command: str, event: str, timeout: float) -> dict:
        await self.command(command)
        return await self.expect(event, timeout)


def participant_arguments(prog: str, description: str, argv: list[str], *, url_help: str,
                          clip_help: str, relay: tuple[str, ...] = (),
                          more: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The command line every participant process takes (bench.bot, bench.browser_bot):
    what ``Bench.spawn`` in bench.sfu passes; ``relay``: the choices of ``--relay``, for a
    participant that can send its media through the daemon's TURN server; ``more`` adds
    a participant's own options."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("url", help=url_help)
    parser.add_argument("room")
    parser.add_argument("name")
    parser.add_argument("clip", help=clip_help)
    parser.add_argument("--lifetime", type=float, default=600.0, help="seconds before the participant leaves on its own")
    if relay:
        parser.add_argument("--relay", choices=relay, default=relay[0],
                            help="send and receive all media through the daemon's TURN server over this transport")
    if more is not None:
        more(parser)
    return parser.parse_args(argv)
