"""Folder listings as the mount serves them: read whole at offset 0, later offsets from that.

Entries created or removed while the kernel reads a listing in several requests can then never
make another one be skipped or repeated.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from ._inodes import InodeId

Listing = list[tuple[str, os.stat_result]]
"""A folder's entries (without ``.`` and ``..``), each with its lstat."""

_KEPT_LISTINGS = 64


def read_listing(dir_fd: int) -> Listing:
    """Every entry of the open folder ``dir_fd`` from its start, skipping those that vanish."""
    os.lseek(dir_fd, 0, os.SEEK_SET)
    listing: Listing = []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            try:
                listing.append((entry.name, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return listing


class ListingsByInode:
    """Listings of folders read without a handle (the kernel sends no OPENDIR), kept per inode
    from a read at offset 0 for the reads at later offsets that follow it.

    With no RELEASEDIR to say when a read is over, the least recently read are dropped beyond
    a few dozen: a reader that far behind gets its later offsets from a fresh reading (entries
    changed meanwhile may then be skipped or repeated, as in one without the snapshot).
    """

    def __init__(self, limit: int = _KEPT_LISTINGS) -> None:
        self._listings: OrderedDict[InodeId, Listing] = OrderedDict()
        self._limit = limit

    def get(self, inode: InodeId) -> Listing | None:
        listing = self._listings.get(inode)
        if listing is not None:
            self._listings.move_to_end(inode)
        return listing

    def keep(self, inode: InodeId, listing: Listing) -> None:
        self._listings[inode] = listing
        self._listings.move_to_end(inode)
        while len(self._listings) > self._limit:
            self._listings.popitem(last=False)
