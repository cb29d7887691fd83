"""Editing JSON and JSONC (comments, trailing commas) files without disturbing anything else.

IDE settings files are hand-written: their comments, order and spacing are the user's. We
never re-serialise a whole file; we find the object we need by scanning the text, and insert
or cut exactly one member.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class JsoncError(ValueError):
    """The file is not JSON (with comments) we can edit; the message says where."""


@dataclass(frozen=True)
class Member:
    key: str
    start: int  # the key's opening quote
    value_start: int
    value_end: int  # one past the value


def _skip(text: str, i: int) -> int:
    """Skip whitespace and comments."""
    n = len(text)
    while i < n:
        if text[i] in " \t\r\n":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JsoncError(f"unclosed comment at offset {i}")
            i = end + 2
        else:
            break
    return i


def _string_end(text: str, i: int) -> int:
    assert text[i] == '"'
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    raise JsoncError("unclosed string")


def _value_end(text: str, i: int) -> int:
    """One past the JSON value starting at ``i``."""
    if text[i] == '"':
        return _string_end(text, i)
    if text[i] in "{[":
        depth = 0
        while i < len(text):
            i = _skip(text, i)
            char = text[i]
            if char == '"':
                i = _string_end(text, i)
                continue
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise JsoncError("unclosed object or array")
    j = i
    while j < len(text) and text[j] not in ",}] \t\r\n/":
        j += 1
    return j


def members(text: str, brace: int) -> list[Member]:
    """The members of the object whose ``{`` is at offset ``brace``."""
    if text[brace] != "{":
        raise JsoncError(f"expected an object at offset {brace}")
    found = []
    i = _skip(text, brace + 1)
    while text[i] != "}":
        if text[i] != '"':
            raise JsoncError(f"expected a key at offset {i}")
        key_end = _string_end(text, i)
        key = json.loads(text[i:key_end])
        colon = _skip(text, key_end)
        if text[colon] != ":":
            raise JsoncError(f"expected ':' at offset {colon}")
        value_start = _skip(text, colon + 1)
        value_end = _value_end(text, value_start)
        found.append(Member(key, i, value_start, value_end))
        i = _skip(text, value_end)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return found


def _object_at(text: str, path: list[str]) -> int | None:
    """Offset of the ``{`` of the object at ``path`` (keys from the top), or None."""
    brace = _skip(text, 0)
    for key in path:
        match = next((m for m in members(text, brace) if m.key == key), None)
        if match is None or text[match.value_start] != "{":
            return None
        brace = match.value_start
    return brace


def get(text: str, path: list[str]) -> Any:
    """The parsed value at ``path``, or None (comments allowed, trailing commas allowed)."""
    brace = _skip(text, 0)
    *parents, last = path
    for key in parents:
        match = next((m for m in members(text, brace) if m.key == key), None)
        if match is None or text[match.value_start] != "{":
            return None
        brace = match.value_start
    match = next((m for m in members(text, brace) if m.key == last), None)
    if match is None:
        return None
    return json.loads(_strip_comments(text[match.value_start : match.value_end]))


def _strip_comments(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i) or text.startswith("/*", i):
            i = _skip(text, i)
        else:
            out.append(text[i])
            i += 1
    joined = "".join(out)
    return re.sub(r",(\s*[}\]])", r"\1", joined)


def _indent_of_line(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip())]


def set_member(text: str, parents: list[str], key: str, value: Any) -> str:
    """Add (or replace) member ``key`` in the object at ``parents``, creating parents as needed."""
    if not text.strip():
        text = "{}\n"
    brace = _skip(text, 0)
    depth_path: list[str] = []
    for parent in parents:
        inner = _object_at(text, [*depth_path, parent])
        if inner is None:
            text = _insert(text, brace, parent, {})
            inner = _object_at(text, [*depth_path, parent])
            assert inner is not None
        depth_path.append(parent)
        brace = inner
    existing = next((m for m in members(text, brace) if m.key == key), None)
    if existing is not None:
        return (
            text[: existing.value_start]
            + _dump(value, text, existing.start)
            + text[existing.value_end :]
        )
    return _insert(text, brace, key, value)


def _dump(value: Any, text: str, at: int) -> str:
    indent = _indent_of_line(text, at)
    return json.dumps(value, indent=2).replace("\n", "\n" + indent)


def _insert(text: str, brace: int, key: str, value: Any) -> str:
    """Insert ``key: value`` as the first member of the object at ``brace``."""
    existing = members(text, brace)
    child_indent = _indent_of_line(text, brace) + "  "
    if existing:
        child_indent = _indent_of_line(text, existing[0].start) or child_indent
    rendered = json.dumps(value, indent=2).replace("\n", "\n" + child_indent)
    entry = f"\n{child_indent}{json.dumps(key)}: {rendered}"
    if existing:
        return text[: brace + 1] + entry + "," + text[brace + 1 :]
    close = _skip(text, brace + 1)
    return text[: brace + 1] + entry + "\n" + _indent_of_line(text, brace) + text[close:]


def remove_member(text: str, parents: list[str], key: str) -> str:
    """Cut member ``key`` (and one comma) from the object at ``parents``; unchanged if absent."""
    brace = _object_at(text, parents)
    if brace is None:
        return text
    found = members(text, brace)
    index = next((i for i, m in enumerate(found) if m.key == key), None)
    if index is None:
        return text
    member = found[index]
    line_start = text.rfind("\n", 0, member.start) + 1
    start = line_start if not text[line_start : member.start].strip() else member.start
    after = _skip(text, member.value_end)
    if after < len(text) and text[after] == ",":
        end = after + 1
        line_end = text.find("\n", end)
        if start == line_start and line_end >= 0 and not text[end:line_end].strip():
            end = line_end + 1
        return text[:start] + text[end:]
    if index > 0:  # the last member: take the comma before it with it
        comma = text.rfind(",", found[index - 1].value_end, member.start)
        return text[:comma] + text[member.value_end :]
    return text[: brace + 1] + text[member.value_end :]
