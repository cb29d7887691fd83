"""The mount's rules for folder leases on trio's MockClock: adopting files under a folder
without a round trip, the folder going back only after its files, narrowing on a recall,
and a lost folder taking its files with it."""

from __future__ import annotations

import trio
import trio.testing

from leasefs._mount._lease_machine import MountLeases, Phase
from tests.leasefs.mount.test_lease_machine import GRACE, NO_WRITERS, QUIET, TIMING, grant, lease


def now() -> float:
    return trio.current_time()


def with_folder(token: int = 7) -> MountLeases:
    """A mount that made folder ``new`` and was granted it whole, with the path itself."""
    leases = MountLeases(TIMING)
    grant(leases, "new", token)
    grant(leases, "new/", token)
    return leases


async def test_a_file_under_a_held_folder_is_adopted_with_the_folders_token(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    assert not leases.may_write("new/a.txt", now())
    folder = leases.covering_folder("new/deep/a.txt", now())
    assert folder is not None and folder.path == "new/"
    leases.adopt("new/a.txt", None, now())
    child = leases.get("new/a.txt")
    assert child is not None and child.token == 7 and child.folder == "new/"
    assert leases.may_write("new/a.txt", now())
    # Outside the folder nothing is adopted: "newer/x" is not under "new/".
    assert leases.covering_folder("newer/x", now()) is None
    assert leases.adopt("newer/x", None, now()) is None


async def test_nothing_is_adopted_in_jeopardy(autojump_clock: trio.testing.MockClock) -> None:
    leases = with_folder()
    await trio.sleep(TIMING.ttl_s)  # no renewal answered: the folder may have run out
    assert leases.covering_folder("new/a.txt", now()) is None
    assert leases.adopt("new/a.txt", None, now()) is None


async def test_the_folder_goes_back_only_with_or_after_its_files(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    await trio.sleep(GRACE / 2)
    leases.adopt("new/b.txt", None, now())
    leases.used(["new/b.txt"], now())
    await trio.sleep(GRACE / 2 + 0.01)
    # a.txt and the path "new" are quiet; b.txt and so the folder are not.
    assert leases.due(now(), NO_WRITERS) == ["new", "new/a.txt"]
    # Open for writing, b.txt keeps the folder even once everything is quiet.
    await trio.sleep(GRACE)
    assert leases.due(now(), frozenset({"new/b.txt"})) == ["new", "new/a.txt"]
    # All quiet: the files first, then the folder, in one release.
    assert leases.due(now(), NO_WRITERS) == ["new", "new/a.txt", "new/b.txt", "new/"]
    chosen = leases.releasing(None)
    assert [lease.path for lease in chosen][-1] == "new/"


async def test_a_folder_whose_files_are_going_back_sleeps_until_woken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The releaser must not spin on a quiet folder that still has files: their going back
    wakes it."""
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    await trio.sleep(GRACE + 1)
    leases.releasing(["new/a.txt"])  # under way
    assert leases.due(now(), NO_WRITERS) == ["new"]
    leases.releasing(["new"])
    assert leases.sleeping(now(), NO_WRITERS) == float("inf")
    [child] = leases.children("new/")
    leases.released(child)
    assert leases.due(now(), NO_WRITERS) == ["new/"]


async def test_a_recalled_folder_is_narrowed_to_the_files_still_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    for name in ("a", "b", "c"):
        leases.adopt(f"new/{name}.txt", None, now())
    [c] = [x for x in leases.children("new/") if x.path == "new/c.txt"]
    leases.releasing(["new/c.txt"])
    leases.released(c)  # given back already (covered by the folder, nothing to delete)
    assert leases.recalled("new/", 7, now())
    assert leases.start_narrowing("new/", 7)
    assert not leases.start_narrowing("new/", 7)  # one narrowing at a time
    # While narrowing: no adopting under it, none of its files goes back.
    assert leases.covering_folder("new/d.txt", now()) is None
    await trio.sleep(GRACE + 1)
    assert "new/a.txt" not in leases.due(now(), NO_WRITERS)
    assert leases.to_keep("new/") == ["new/a.txt", "new/b.txt"]
    kept = [lease("new/a.txt", 7), lease("new/b.txt", 7)]
    assert leases.narrowed("new/", kept) == []
    assert leases.get("new/") is None
    a = leases.get("new/a.txt")
    assert a is not None and a.folder is None and a.token == 7
    # From here the kept files follow the rules of any lease; a recall on one is its own.
    assert leases.recalled("new/a.txt", 7, now())
    await trio.sleep(QUIET)
    assert "new/a.txt" in leases.due(now(), NO_WRITERS)


async def test_a_failed_narrowing_holds_the_folder_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    assert leases.start_narrowing("new/", 7)
    leases.narrow_failed("new/")
    folder = leases.get("new/")
    assert folder is not None and folder.phase is Phase.HELD
    assert leases.covering_folder("new/b.txt", now()) is folder


async def test_a_lost_folder_takes_its_files_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    leases.adopt("new/b.txt", None, now())
    lost = leases.renewed(now(), [("new", 7)])  # the folder's row is gone
    assert sorted(lost) == ["new/", "new/a.txt", "new/b.txt"]
    assert not leases.may_write("new/a.txt", now())
    assert leases.was_lost("new/a.txt")
    assert leases.covering_folder("new/c.txt", now()) is None
    assert leases.may_write("new", now())


async def test_files_kept_by_a_narrowing_live_by_their_own_rows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    leases.start_narrowing("new/", 7)
    leases.narrowed("new/", [lease("new/a.txt", 7)])
    assert leases.renewed(now(), [("new/a.txt", 7)]) == ["new"]
    assert leases.may_write("new/a.txt", now())


async def test_a_retired_agent_admits_no_change_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Revoked (or left): every lease is dropped, and no later answer brings writes back."""
    leases = with_folder()
    leases.adopt("new/a.txt", None, now())
    assert sorted(leases.retire()) == ["new", "new/", "new/a.txt"]
    assert not leases.may_write("new", now()) and leases.in_jeopardy(now())
    leases.answered(now())  # a late answer to a request sent before
    assert leases.in_jeopardy(now())
    assert leases.covering_folder("new/b.txt", now()) is None
