"""`videoroomd serve`: set up logging, run the daemon under trio, map failures to exit 1."""

from __future__ import annotations

from typing import Callable

import structlog
import trio

from ..cluster.redis_client import RedisMissing
from ..config import Config, Location
from ..daemon import fd_limit
from ..daemon.daemon import Daemon
from ..daemon.sdnotify import Notifier
from ..http.server import ListenError
from ..media.dataplane import native_module
from ..media.webrtc import compat as aiortc_compat
from ..logs.setup import LogSetupError, configure


def run_serve(location: Location, config: Config, user_error: Callable[[str], Exception]) -> int:
    """Run the daemon until it stops; returns the exit status. Raises ``user_error`` for bad setups."""
    try:
        configure(config.log.level, config.log.format, config.log.file)
    except LogSetupError as error:
        raise user_error(f"{location.name}: log.file: {error}") from None
    log = structlog.get_logger("videoroomd")
    try:
        aiortc_compat.check_versions()
    except aiortc_compat.IncompatibleVersions as error:
        log.critical("cannot start", error=str(error))
        raise user_error(str(error)) from None
    try:
        plane = native_module.choose(config.media.data_plane)
    except native_module.NativeUnavailable as error:
        log.critical("cannot start", error=f"media.data_plane = native: {error}")
        raise user_error(f"{location.name}: media.data_plane: {error}"
                         ' (or set [media] data_plane = "python", the plane that needs no compiled module)') from None
    log.info("starting", config=location.name, data_plane=plane.runs)
    if plane.note:
        say = log.info if plane.runs == plane.requested else log.warning
        say("data plane", requested=plane.requested, runs=plane.runs, why=plane.note)
    fd_limit.check(config, log)
    try:
        daemon = Daemon(location, config, notifier=Notifier())
    except RedisMissing as error:  # [cluster] without the Redis client installed
        raise user_error(f"{location.name}: cluster: {error}") from None
    try:
        return trio.run(daemon.run)
    except ListenError as error:
        raise user_error(f"{location.name}: {getattr(error, 'key', 'server.listen')}: {error}") from None
    except KeyboardInterrupt:
        return 1
    except Exception as error:  # a fault of the daemon itself: into the log (file too) with its traceback, not only stderr
        log.critical("daemon failed; exiting", error=repr(error), exc_info=error)
        return 1
