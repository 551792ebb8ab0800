"""The export as a process of its own, at the lowest CPU priority: ``python -m videoroomd.recording.export_job DIR``.

The daemon starts one when a recording stops (:func:`run_export`); the CLI's
``videoroomd recordings export`` does the same work in its own process. A job
cut short (the daemon stopping) leaves only a ``.part`` file beside the
tracks, never a half WebM under the final name; exporting again makes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOWEST = 19  # nice(1)'s lowest priority


def lowest_priority() -> None:
    """Make this process yield the CPU to every other (the calls, the daemon)."""
    try:
        os.nice(LOWEST - os.nice(0))
    except OSError:
        pass  # not allowed to change it: go on at the priority we have


async def run_export(path: str) -> int:
    """Export the recording at ``path`` in a child process; returns its exit status (trio; cancelled: killed)."""
    import trio

    process = await trio.run_process([sys.executable, "-m", "videoroomd.recording.export_job", path], check=False,
                                     stdout=subprocess.DEVNULL, capture_stderr=True)
    return process.returncode


def main(argv: list[str]) -> int:
    from .export import ExportError, export_recording

    if len(argv) != 1:
        print("usage: python -m videoroomd.recording.export_job DIR", file=sys.stderr)
        return 2
    lowest_priority()
    try:
        made = export_recording(Path(argv[0]))
        for done in made:
            print(f"{done.path} {done.duration:.1f} s", flush=True)
        meeting = compose_meeting(made)
        if meeting is not None:
            print(f"{meeting} (the meeting)", flush=True)
    except (ExportError, OSError) as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    return 0


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
