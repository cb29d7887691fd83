"""Taking a mount away after its server died, where ``auto_unmount`` cannot tell.

fusermount3's ``auto_unmount`` notices the server's end, then checks that the filesystem is
dead before unmounting it, by opening the mountpoint. Once folders are opened without
OPENDIR (`directories_without_handles`) that open never reaches the connection and
succeeds, so fusermount3 leaves the dead filesystem over the repository (every access:
"Transport endpoint is not connected"). So a watcher is started beside each mount: a shell
that holds nothing of the mount (no /dev/fuse, no descriptor inside it) and waits on a pipe.
Told "unmounted" by a server that finished cleanly, it exits; if the pipe closes without
that (the server was killed), it detaches the mount lazily (``fusermount3 -u -z``), unless
the mount at that path is another one by then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

from ._fusermount import mount_id

__all__ = ["UnmountWatch"]

_DONE = b"unmounted\n"

_WATCHER = r"""
read -r said
[ "$said" = unmounted ] && exit 0
now=$(awk -v p="$2" '$5 == p { id = $1 } END { print id }' /proc/self/mountinfo)
[ "$now" = "$1" ] && exec "$4" -u -z -- "$3"
exit 0
"""


class UnmountWatch:
    """The watcher of one mount, started once it is in place and told when it is gone."""

    def __init__(self, mountpoint: str) -> None:
        """Made before mounting: the serving process must not resolve its own mountpoint."""
        self._mountpoint = os.path.realpath(mountpoint)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start watching (a no-op without fusermount3 or a shell, or if nothing is mounted)."""
        fusermount, shell = shutil.which("fusermount3"), shutil.which("sh")
        mounted = mount_id(self._mountpoint, resolve=False)
        if fusermount is None or shell is None or mounted is None:
            return
        self._process = subprocess.Popen(
            [shell, "-c", _WATCHER, "leasefs-unmount-watch", str(mounted),
             _escaped(self._mountpoint), self._mountpoint, fusermount],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True, start_new_session=True,
        )  # fmt: skip

    def done(self) -> None:
        """The mount was taken away cleanly: the watcher leaves without touching it."""
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.write(_DONE)
            process.stdin.flush()
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _escaped(path: str) -> str:
    """`path` as /proc/self/mountinfo writes it (space, tab, newline, backslash in octal)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)
