"""Do two path specifications (a path or a glob such as ``src/**/*.py``) touch the same files?"""

from __future__ import annotations

from fnmatch import fnmatchcase

_MAGIC = set("*?[")


def _literal_prefix(spec: str) -> str:
    """The directory part of ``spec`` before its first wildcard."""
    for index, char in enumerate(spec):
        if char in _MAGIC:
            return spec[:index].rpartition("/")[0]
    return spec


def _matches(path: str, spec: str) -> bool:
    spec = spec.rstrip("/")
    return (
        path == spec
        or path.startswith(spec + "/")  # a directory covers what is under it
        or fnmatchcase(path, spec)
        or fnmatchcase(path, spec.replace("**/", "*/").replace("/**", "/*"))
    )


def specs_overlap(a: str, b: str) -> bool:
    """True if some file could be named by both ``a`` and ``b`` (conservative for two globs)."""
    a_glob, b_glob = bool(_MAGIC & set(a)), bool(_MAGIC & set(b))
    if not a_glob and not b_glob:
        return _matches(a, b) or _matches(b, a)
    if not a_glob:
        return _matches(a, b)
    if not b_glob:
        return _matches(b, a)
    pa, pb = _literal_prefix(a), _literal_prefix(b)
    return pa == pb or pa.startswith(pb + "/") or pb.startswith(pa + "/") or not pa or not pb


def any_overlap(these: list[str], those: list[str]) -> bool:
    return any(specs_overlap(a, b) for a in these for b in those)
