"""The export as a process of its own, at the lowest CPU priority: ``python -m videoroomd.recording.export_job DIR``.

The daemon starts one when a recording stops (:func:`run_export`); the CLI's
``videoroomd recordings export`` does the same work in its own process.

Before a job starts, the recording gets an ``export.pending`` mark; the job
removes it once every file is made. A job stopped on the way (SIGTERM: the
daemon stopping, or the operator) removes its ``.part`` files and leaves the
mark: the recording reads "export unfinished", ``videoroomd recordings
export ID`` makes its files, and the daemon, when it starts again, runs
every unfinished export again (:func:`resume_exports`), one at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

LOWEST = 19  # nice(1)'s lowest priority
from .store import PENDING  # in a recording's directory while its files are not all made


def mark_pending(path: Path) -> None:
    (Path(path) / PENDING).write_text("the export of this recording has not finished\n")


def finished(path: Path) -> None:
    """The recording's files are all made: no mark, no ``.part`` left."""
    remove_parts(path)
    (Path(path) / PENDING).unlink(missing_ok=True)


def remove_parts(path: Path) -> None:
    for item in Path(path).glob("*.part"):
        item.unlink(missing_ok=True)


def lowest_priority() -> None:
    """Make this process yield the CPU to every other (the calls, the daemon)."""
    try:
        os.nice(LOWEST - os.nice(0))
    except OSError:
        pass  # not allowed to change it: go on at the priority we have


async def run_export(path: str) -> int:
    """Export the recording at ``path`` in a child process; returns its exit status (trio; cancelled: killed)."""
    import trio

    await trio.to_thread.run_sync(mark_pending, path)
    process = await trio.run_process([sys.executable, "-m", "videoroomd.recording.export_job", path], check=False,
                                     stdout=subprocess.DEVNULL, capture_stderr=True)
    return process.returncode


def main(argv: list[str]) -> int:
    from .export import ExportError, export_recording

    if len(argv) != 1:
        print("usage: python -m videoroomd.recording.export_job DIR", file=sys.stderr)
        return 2
    lowest_priority()
    signal.signal(signal.SIGTERM, _stopped)
    path = Path(argv[0])
    try:
        made = export_recording(path)
        for done in made:
            print(f"{done.path} {done.duration:.1f} s", flush=True)
        meeting = compose_meeting(made)
        if meeting is not None:
            print(f"{meeting} (the meeting)", flush=True)
    except (ExportError, OSError) as error:
        remove_parts(path)
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    except SystemExit:
        remove_parts(path)  # stopped: no half file left; the mark says it is to be made again
        raise
    finished(path)
    return 0


def _stopped(signum, frame) -> None:
    raise SystemExit(128 + signum)


async def resume_exports(directory: Path | None) -> None:
    """Run again, one at a time, the exports of ``directory``'s recordings that did not finish
    (the daemon stopped during one); at the lowest priority, as they were (trio)."""
    import structlog
    import trio

    from .store import recordings

    if directory is None:
        return
    log = structlog.get_logger("videoroomd.recording")
    found = await trio.to_thread.run_sync(recordings, Path(directory))
    for info in found:
        if info.export_pending:
            log.info("running an unfinished export again", recording=info.id)
            status = await run_export(str(info.path))
            log.info("recording exported" if status == 0 else "exporting the recording failed",
                     path=str(info.path), status=status)


def compose_meeting(made, progress=lambda done, total: None) -> Path | None:
    """The meeting's one file (:mod:`.composite`) from the per-participant files ``made``, beside
    them; None when there is nothing to compose."""
    from .composite import OUTPUT, compose

    if not made:
        return None
    origin = min(done.start for done in made)
    output = made[0].path.parent / OUTPUT
    compose([(done.path, done.start - origin, done.screen) for done in made], output, progress)
    return output


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
