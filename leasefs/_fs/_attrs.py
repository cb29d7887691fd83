"""Backing `stat`/`statvfs` results in pyfuse3's shapes, with our inode number in place."""

from __future__ import annotations

import os

import pyfuse3

from ._inodes import InodeId

__all__ = ["entry_attributes", "negative_entry", "statvfs_data"]


def entry_attributes(
    st: os.stat_result, inode: InodeId, *, entry_timeout: float, attr_timeout: float
) -> pyfuse3.EntryAttributes:
    """What the kernel caches for `inode`: the backing attributes, except the number."""
    attr = pyfuse3.EntryAttributes()
    attr.st_ino = inode
    attr.generation = 0
    attr.entry_timeout = entry_timeout
    attr.attr_timeout = attr_timeout
    attr.st_mode = st.st_mode
    attr.st_nlink = st.st_nlink
    attr.st_uid = st.st_uid
    attr.st_gid = st.st_gid
    attr.st_rdev = st.st_rdev
    attr.st_size = st.st_size
    attr.st_blksize = st.st_blksize
    attr.st_blocks = st.st_blocks
    attr.st_atime_ns = st.st_atime_ns
    attr.st_mtime_ns = st.st_mtime_ns
    attr.st_ctime_ns = st.st_ctime_ns
    return attr


def negative_entry(timeout: float) -> pyfuse3.EntryAttributes:
    """A 'no such entry' answer the kernel may cache for `timeout` seconds."""
    attr = pyfuse3.EntryAttributes()
    attr.st_ino = 0
    attr.entry_timeout = timeout
    return attr


def statvfs_data(st: os.statvfs_result) -> pyfuse3.StatvfsData:
    data = pyfuse3.StatvfsData()
    data.f_bsize = st.f_bsize
    data.f_frsize = st.f_frsize
    data.f_blocks = st.f_blocks
    data.f_bfree = st.f_bfree
    data.f_bavail = st.f_bavail
    data.f_files = st.f_files
    data.f_ffree = st.f_ffree
    data.f_favail = st.f_favail
    data.f_namemax = st.f_namemax
    return data
