"""``python -m leasefs._fs DIR``: mount a plain passthrough over DIR until signalled.

No leases: for tests (which must not serve a mount from their own process, or the first
request they make of it would deadlock) and for measuring the passthrough alone. Prints
``mounted <DIR>`` on stdout once the mount is in place; SIGTERM or SIGINT unmounts and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import trio

from ._base import FILES_BY_INODE
from ._mounting import DEFAULT_MAX_TASKS, run_mount
from ._passthrough import DEFAULT_TIMEOUT, Passthrough

__all__ = ["main"]

OpsFactory = Callable[..., Passthrough]
Background = Callable[[Passthrough], Awaitable[None]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m leasefs._fs",
        description="Mount a passthrough of DIRECTORY over itself, without leases.",
    )
    parser.add_argument("directory", help="the directory to serve, in place")
    parser.add_argument("--entry-timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--attr-timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--max-tasks", type=int, default=DEFAULT_MAX_TASKS)
    parser.add_argument(
        "--allow-other", action="store_true", help="let users other than us use the mount"
    )
    parser.add_argument(
        "--file-handles",
        action="store_true",
        help="serve every open(2) and close(2) as a request (as a stock pyfuse3 must)",
    )
    parser.add_argument("--debug", action="store_true", help="log every request")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    factory: OpsFactory = Passthrough,
    background: Background | None = None,
) -> int:
    """Serve until unmounted or signalled.

    `factory` builds the operations and `background`, if given, runs beside the mount once it
    is in place: tests use them to stand in for the lease layer and its coordinator.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    directory = os.path.abspath(args.directory)
    root_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ops = factory(
            root_fd,
            entry_timeout=args.entry_timeout,
            attr_timeout=args.attr_timeout,
            file_handles=args.file_handles or not FILES_BY_INODE,
        )
        options = ["allow_other"] if args.allow_other else []
        trio.run(_serve, ops, directory, options, args.max_tasks, background)
    finally:
        os.close(root_fd)
    return 0


async def _serve(
    ops: Passthrough,
    directory: str,
    options: list[str],
    max_tasks: int,
    background: Background | None,
) -> None:
    async with trio.open_nursery() as nursery:

        async def mount(task_status: trio.TaskStatus[None]) -> None:
            try:
                await run_mount(
                    ops, directory, options, max_tasks=max_tasks, task_status=task_status
                )
            finally:
                nursery.cancel_scope.cancel()  # unmounted from outside: stop waiting for signals

        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await nursery.start(mount)
        if background is not None:
            nursery.start_soon(background, ops)
        print(f"mounted {directory}", flush=True)


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for _ in signals:
            scope.cancel()
            return
