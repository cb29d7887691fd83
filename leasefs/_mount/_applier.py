"""Bring other agents' versions into this mount's backing directory, losing nothing.

A version is applied only where it builds on the local file: its base, or the base of a
version in its history, is the local content (or the local file already has the new content).
Otherwise the local file stays as it is, the incoming content is saved beside it as a conflict
copy, and the conflict is reported to the coordinator (audit log and event stream) and kept
for `leasefs status`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Protocol

import trio

from .._client import Client, LeasefsError
from ..wire import ConflictReport, Version
from . import _backing

log = logging.getLogger("leasefs.mount")

_ANCESTRY_VERSIONS = (32, 1000)
"""How many of a path's latest versions to look for an ancestry in: a few first (enough
unless this mount was away long), then more; beyond those it is taken for a conflict."""


def _in_directory(directory: Path, operation: Callable[[int], None]) -> None:
    """Run ``operation`` on a descriptor of ``directory`` (the mount's root)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        operation(fd)
    finally:
        os.close(fd)


class OnChanged(Protocol):
    """Tells the kernel a file changed underneath (`KernelCaches.invalidate_path`); with
    ``wait=False`` without waiting for it, for a change a request may be waiting behind."""

    def __call__(self, path: str, *, wait: bool = True) -> Awaitable[None]: ...


class _LeftToGrant(Exception):
    """A local request began waiting for the path's lease while its version was being
    fetched: moving the file in through the mount now would wait behind that request (the
    kernel holds the file's lock for it) while the request waits for us. The grant brings
    the latest version instead."""


class _GaveWay(Exception):
    """The move of a version onto the path through the mount was cancelled while the kernel
    held it back behind a local request that had just been granted the path's lease: the
    grant applied the version in place instead (`Applier.give_way`)."""


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the local file already has this content
    CONFLICT = "conflict"
    SKIPPED = "skipped"  # our own version, another branch, or a path we do not sync


@dataclass(frozen=True)
class ConflictRecord:
    path: str
    copy_path: str | None
    version_id: int
    author: str
    at: float


def conflict_copy_name(path: str, author: str, version_id: int) -> str:
    """``src/app.py`` -> ``src/app.conflict-bob-v42.py``: the extension kept for editors."""
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    safe_author = "".join(c if c.isalnum() or c in "-_" else "_" for c in author)[:40]
    tag = f"conflict-{safe_author}-v{version_id}"
    copy = f"{stem}.{tag}.{ext}" if dot and stem else f"{name}.{tag}"
    return f"{head}/{copy}" if head else copy


@dataclass(frozen=True)
class ApplierStatistics:
    applied: int  # versions of others brought into this tree
    conflicts: tuple[ConflictRecord, ...]  # incoming versions kept beside a divergent file


class Applier:
    """Applies versions of one branch to one repository, path by path in order.

    Versions arriving on the event stream are moved into place *through the mount*
    (``mount_root``): the kernel then updates its caches itself and inotify watchers (editors)
    see the change as they would a local save. The mount lets its own process through
    without a lease. A version handed over with a lease a request is waiting for is instead
    written into the backing file in place, so the waiting request's file keeps its identity.
    """

    def __init__(
        self,
        client: Client,
        root_fd: int,
        *,
        agent_id: int,
        branch: str,
        in_scope: Callable[[str], bool],
        on_changed: OnChanged,
        waiting_for_lease: Callable[[str], bool] = lambda path: False,
        mount_root: Path | None = None,
    ) -> None:
        """``waiting_for_lease``: is this mount acquiring the path right now? A version that
        arrives meanwhile is left to the grant, which brings the latest one."""
        self._client = client
        self._root_fd = root_fd
        self._local_agents = {agent_id}  # this mount's agents: their versions are here already
        self._branch = branch
        self._in_scope = in_scope
        self._on_changed = on_changed
        self.mount_root = mount_root
        self._locks: dict[str, trio.Lock] = {}
        self._conflicts: list[ConflictRecord] = []
        self._applied = 0
        self._deferred: set[str] = set()
        self._moves: dict[str, bool] = {}  # path -> cancelled: moves through the mount now
        self._newest: dict[str, int] = {}  # path -> id of the newest version handled here
        self._waiting_for_lease = waiting_for_lease

    def statistics(self) -> ApplierStatistics:
        return ApplierStatistics(applied=self._applied, conflicts=tuple(self._conflicts))

    def saw(self, version: Version) -> None:
        """``version`` is handled (applied, kept as a conflict copy, or our own): an older
        version arriving later is history, never to be applied over it."""
        if version.id > self._newest_id(version.path):
            self._newest[version.path] = version.id

    def _newest_id(self, path: str) -> int:
        return self._newest.get(path, 0)

    async def _builds_on(self, version: Version, local_hash: str | None) -> bool:
        """``version`` descends from the local content, perhaps through versions never
        applied here (made while this mount waited for the lease, or not yet delivered by
        the event stream): replacing the local file then loses nothing.

        Walks the path's history back from ``version`` along each version's base. A version
        based on an older state than the local one (its author kept their own file apart
        in a conflict) does not descend from it: applying it would bury the local changes.
        """
        if version.base_hash == local_hash:
            return True
        for limit in _ANCESTRY_VERSIONS:
            history = await self._client.history(version.path, branch=self._branch, limit=limit)
            wanted, before = version.base_hash, version.id
            for older in history:  # newest first
                if older.id < before and older.hash == wanted:
                    if older.base_hash == local_hash:
                        return True
                    wanted, before = older.base_hash, older.id
            if len(history) < limit:
                break  # the whole history was looked at
        return False

    @property
    def branch(self) -> str:
        return self._branch

    def switch_branch(self, branch: str) -> None:
        """The tree's checked-out branch changed (git checkout, git switch): only versions
        of ``branch`` are applied from now on. Versions of it recorded meanwhile are not
        brought in by themselves: git just wrote the branch's files."""
        self._branch = branch

    def add_local_agent(self, agent_id: int) -> None:
        """Another agent works in this very tree (`leasefs run`): its versions are its edits
        of these files, never to be applied over them."""
        self._local_agents.add(agent_id)

    def is_local(self, agent_id: object) -> bool:
        return agent_id in self._local_agents

    def lock_for(self, path: str) -> trio.Lock:
        """Held while a path's file is being replaced; the lease keeper shares it."""
        return self._locks.setdefault(path, trio.Lock())

    def _wanted(self, version: Version) -> bool:
        return (
            version.author.id not in self._local_agents
            and version.branch == self._branch
            and self._in_scope(version.path)
        )

    async def apply(self, version: Version) -> Outcome:
        """Apply a version from the event stream.

        While a local request waits for the path's lease, the version is left to the grant,
        which carries the latest one and applies it under the waiting request (replacing the
        file here would pull it from under that request). `settle_deferred` catches up if the
        wait ends without a grant.
        """
        if not self._wanted(version):
            return Outcome.SKIPPED
        async with self.lock_for(version.path):
            if version.id <= self._newest_id(version.path):
                # Late news: the event stream catching up after a lease grant already brought
                # a newer version (or our own). Applying it would replace the newer content,
                # and pull the file from under a writer that holds the lease now.
                return Outcome.SKIPPED
            if self._waiting_for_lease(version.path):
                self._deferred.add(version.path)
                return Outcome.SKIPPED
            try:
                return await self._apply_locked(version, in_place=False)
            except _GaveWay:
                return Outcome.SKIPPED  # the grant applied it, in place
            except _LeftToGrant:
                self._deferred.add(version.path)
                return Outcome.SKIPPED

    async def settle_deferred(self, paths: list[str], *, granted: bool) -> None:
        """After a wait for ``paths`` ended: bring in what was left to a grant that never came."""
        for path in paths:
            if path not in self._deferred:
                continue
            self._deferred.discard(path)
            if granted:
                continue  # the grant carried the latest version and applied it
            latest = await self._client.latest_version(path, branch=self._branch)
            if latest is not None:
                await self.apply(latest)

    async def apply_for_waiter(self, version: Version) -> Outcome:
        """Apply the version a lease grant carried; the caller holds `lock_for(version.path)`,
        or the applier gave the path's move way to it (`give_way`)."""
        if not self._wanted(version):
            self.saw(version)
            return Outcome.SKIPPED
        return await self._apply_locked(version, in_place=True)

    async def _apply_locked(self, version: Version, *, in_place: bool) -> Outcome:
        try:
            outcome = await self._apply_checked(version, in_place=in_place)
        except _backing.SymlinkOnPath as exc:
            # Another clone's path must not lead out of this one: keep what is here.
            log.warning("not applying %s v%d: %s", version.path, version.id, exc.strerror)
            await self._record_conflict(version, None)
            outcome = Outcome.CONFLICT
        self.saw(version)
        return outcome

    async def _apply_checked(self, version: Version, *, in_place: bool) -> Outcome:
        path = version.path
        local = await trio.to_thread.run_sync(_backing.read_state, self._root_fd, path)
        local_hash = local.hash if local else None
        if local_hash == version.hash:
            if local is not None and version.mode is not None and local.mode != version.mode:
                await trio.to_thread.run_sync(self._chmod, path, version.mode)
                # A local write may be waiting for this path (behind `lock_for`).
                await self._on_changed(path, wait=False)
            return Outcome.UNCHANGED
        if not await self._builds_on(version, local_hash):
            return await self._keep_both(version, local_hash)
        if version.deleted:
            await self._delete(path, in_place=in_place)
        else:
            await self._write(path, version, in_place=in_place, existed=local is not None)
        self._applied += 1
        log.info("applied %s v%d from %s", path, version.id, version.author.name)
        return Outcome.APPLIED

    def _chmod(self, path: str, mode: int) -> None:
        _backing.chmod(self._root_fd, path, mode)

    async def _delete(self, path: str, *, in_place: bool) -> None:
        if self.mount_root is not None and not in_place:
            if self._waiting_for_lease(path):
                raise _LeftToGrant
            remove = partial(_backing.remove, path=path)
            await self._move_through_mount(path, remove)
            return
        await trio.to_thread.run_sync(_backing.remove, self._root_fd, path)
        await self._on_changed(path, wait=not in_place)

    async def _write(self, path: str, version: Version, *, in_place: bool, existed: bool) -> None:
        through_mount = self.mount_root is not None and not in_place
        if through_mount:
            assert self.mount_root is not None
            make_parents = partial(_backing.make_parents, path=path)
            await trio.to_thread.run_sync(_in_directory, self.mount_root, make_parents)
        writer = await self._download(path, version, make_dirs=not through_mount)
        try:
            if through_mount:
                assert self.mount_root is not None
                await trio.to_thread.run_sync(writer._close)
                if self._waiting_for_lease(path):  # asked again: the download took time
                    raise _LeftToGrant
                rename = partial(_backing.rename_beside, temp=writer.temp, path=path)
                await self._move_through_mount(path, rename)
            elif in_place:
                await trio.to_thread.run_sync(writer.copy_in_place)
                if existed:  # a new name must wait for the waiting request's own reply
                    # Not waited for: the waiting request may be a write, whose pages the
                    # kernel holds until it is answered.
                    await self._on_changed(path, wait=False)
            else:
                await trio.to_thread.run_sync(writer.rename_into_place)
                await self._on_changed(path)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(writer.discard)

    async def _move_through_mount(self, path: str, operation: Callable[[int], None]) -> None:
        """Rename onto (or remove) ``path`` through the mount, unless `give_way` cancels it
        meanwhile (then `_GaveWay`: the mount refused it, and a grant applied the version)."""
        assert self.mount_root is not None
        self._moves[path] = False
        try:
            await trio.to_thread.run_sync(_in_directory, self.mount_root, operation)
        except OSError:
            if self._moves.get(path):
                raise _GaveWay from None
            raise
        finally:
            self._moves.pop(path, None)

    def give_way(self, path: str) -> bool:
        """A local request was granted ``path``'s lease while this applier moves a version
        onto it through the mount, a rename the kernel may hold back behind that very request
        (it holds the file's lock) while the request waits for the move: cancel the move, so
        that the grant applies its version in place and the rename, once it reaches the mount,
        is refused. Whether a move was under way (if not, there is nothing to give)."""
        if path not in self._moves:
            return False
        self._moves[path] = True
        log.info("moving a version onto %s gives way to the local request just granted it", path)
        return True

    def move_cancelled(self, path: str) -> bool:
        return self._moves.get(path, False)

    async def _download(
        self, path: str, version: Version, *, make_dirs: bool
    ) -> _backing.TempWriter:
        """The version's content in a sealed temporary file beside ``path``, hash checked."""
        assert version.hash is not None
        writer = await trio.to_thread.run_sync(_backing.TempWriter, self._root_fd, path, make_dirs)
        try:
            digest = hashlib.sha256()
            async with self._client.open_blob(version.hash) as chunks:
                async for chunk in chunks:
                    digest.update(chunk)
                    await trio.to_thread.run_sync(writer.write, chunk)
            if digest.hexdigest() != version.hash:
                raise LeasefsError(f"blob {version.hash} arrived with different content")
            await trio.to_thread.run_sync(writer.seal, version.mode)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(writer.discard)
            raise
        return writer

    async def _keep_both(self, version: Version, local_hash: str | None) -> Outcome:
        copy_path = None
        if not version.deleted:
            copy_path = conflict_copy_name(version.path, version.author.name, version.id)
            await self._write(copy_path, version, in_place=False, existed=False)
        log.warning(
            "conflict on %s: kept the local file; %s's version %d %s",
            version.path,
            version.author.name,
            version.id,
            f"saved as {copy_path}" if copy_path else "(a deletion) not applied",
        )
        await self._record_conflict(version, copy_path, local_hash)
        return Outcome.CONFLICT

    async def _record_conflict(
        self, version: Version, copy_path: str | None, local_hash: str | None = None
    ) -> None:
        """Keep the conflict for `leasefs status` and report it (audit log, event stream)."""
        self._conflicts.append(
            ConflictRecord(
                path=version.path,
                copy_path=copy_path,
                version_id=version.id,
                author=version.author.name,
                at=time.time(),
            )
        )
        try:
            await self._client.report_conflict(
                ConflictReport(
                    path=version.path,
                    version_id=version.id,
                    local_hash=local_hash,
                    copy_path=copy_path,
                )
            )
        except LeasefsError as exc:
            log.warning("could not report the conflict on %s: %s", version.path, exc)
