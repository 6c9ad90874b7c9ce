"""Process limits ki2api raises for itself: the soft limit on open file descriptors.

macOS's Finder (launchd) starts apps with a soft limit of 256 descriptors; a server with a few dozen
streaming clients, each also holding an upstream connection, reaches that quickly. Imports nothing of ki2api.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

# Enough for hundreds of concurrent streams; below macOS's per-process ceiling (OPEN_MAX 10240), above
# which setrlimit fails with EINVAL even when the hard limit says "unlimited".
OPEN_FILES_TARGET = 4096


def raise_open_files_limit(target: int = OPEN_FILES_TARGET) -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE towards `target` (never above the hard limit, never lowering it).

    Returns the (soft, hard) limits now in force, or None where the OS has no such limit (Windows).
    Safe to call more than once, from the start-up code and from the server start alike.
    """
    try:
        import resource
    except ImportError:  # Windows: the C runtime's limit is not what sockets count against
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %s to %s: %s", soft, wanted, exc)
    if sys.platform == "darwin" or soft < target:
        log.debug("open-files limit: soft %s, hard %s", soft, hard)
    return soft, hard
