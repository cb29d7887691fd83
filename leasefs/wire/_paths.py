"""Repository-relative paths: the one spelling every lease key and version uses.

A path names a file inside a repository, seen from its root: ``src/app.py``. Only the
canonical spelling is accepted, never silently rewritten, so two agents can never hold
leases on two spellings of one file (``a//b`` and ``a/b``) and no path can climb out of
the repository (``..``, a leading ``/``, a backslash that some tool reads as a separator).
"""

from __future__ import annotations

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


class InvalidPath(ValueError):
    """A path that is not a canonical repository-relative path; the message says why."""


def check_repo_path(path: str) -> str:
    """Return ``path`` unchanged if it is canonical, else raise `InvalidPath`."""
    if not isinstance(path, str):
        raise InvalidPath("a path must be a string")
    if path == "":
        raise InvalidPath("a path must not be empty")
    if "\x00" in path:
        raise InvalidPath("a path must not contain a NUL byte")
    if "\\" in path:
        raise InvalidPath(f"a path is '/'-separated and must not contain a backslash: {path!r}")
    if path.startswith("/"):
        raise InvalidPath(f"a path is relative to the repository root, no leading '/': {path!r}")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPath(f"a path must be valid UTF-8: {path!r}") from exc
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidPath(f"a path must be at most {MAX_PATH_BYTES} bytes long")
    for part in path.split("/"):
        if part == "":
            raise InvalidPath(f"a path must not have empty components or a trailing '/': {path!r}")
        if part in (".", ".."):
            raise InvalidPath(f"a path must not contain '.' or '..' components: {path!r}")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidPath(f"a path component must be at most {MAX_NAME_BYTES} bytes long")
    return path


def check_lease_key(key: str) -> str:
    """A lease key: a canonical path, or a folder's canonical path followed by '/'."""
    check_repo_path(key[:-1] if key.endswith("/") and len(key) > 1 else key)
    return key


def is_folder(key: str) -> bool:
    """A folder lease's key ends with '/' (a file path never does): it covers everything
    strictly under the folder."""
    return key.endswith("/")


def covers(key: str, path: str) -> bool:
    """Does a lease on ``key`` cover ``path`` (a file path or a folder key)?"""
    return key == path or (is_folder(key) and path.startswith(key))


def overlaps(a: str, b: str) -> bool:
    """Two lease keys conflict when one covers the other."""
    return covers(a, b) or covers(b, a)


def folders_above(key: str) -> list[str]:
    """The folder keys that cover ``key`` from above, outermost first (not ``key`` itself)."""
    parts = (key[:-1] if is_folder(key) else key).split("/")
    return ["/".join(parts[:depth]) + "/" for depth in range(1, len(parts))]
