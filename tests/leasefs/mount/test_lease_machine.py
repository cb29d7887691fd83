"""The mount's lease rules on trio's MockClock: no server, no disk, no real clock.

Each test plays the events a mount sees (grants, changes, renewal answers, recalls, closes) at
the times the mock clock says, and checks what the rules answer: may a write go ahead, which
leases are due to go back, must the releaser wake. "Open for writing" is a set of paths, as
the keeper finds it out (no close of a file need ever be seen).
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from leasefs._mount._lease_machine import LeaseTiming, MountLeases, Phase
from leasefs.wire import AgentInfo, Lease

TTL = 30.0
GRACE = 3.0
TIMING = LeaseTiming(ttl_s=TTL, idle_grace_s=GRACE)
ME = AgentInfo(id=1, name="alice", host="laptop", tool="leasefs-mount", joined_at=0.0)


def lease(path: str, token: int) -> Lease:
    return Lease(
        path=path, holder=ME, token=token, acquired_at=0.0, expires_at=TTL, ttl_s=TTL, work=None
    )


def now() -> float:
    return trio.current_time()


NO_WRITERS: frozenset[str] = frozenset()
QUIET = TIMING.recall_quiet_s


def grant(leases: MountLeases, path: str, token: int, *, sent_at: float | None = None) -> bool:
    """The coordinator granted ``path``; the acquire was sent at ``sent_at`` (default: now)."""
    leases.answered(now() if sent_at is None else sent_at)
    return leases.granted(lease(path, token), base_hash=None, now=now())


async def test_a_granted_lease_may_be_written_until_the_margin_before_its_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    sent_at = now()
    await trio.sleep(0.2)  # the acquire's round trip
    grant(leases, "a.txt", 1, sent_at=sent_at)
    assert leases.may_write("a.txt", now())
    await trio.sleep_until(sent_at + TTL - TIMING.margin_s - 0.01)
    assert leases.may_write("a.txt", now())
    await trio.sleep(0.02)
    # Counted from the send, not the answer: the coordinator's TTL began no later than that.
    assert leases.in_jeopardy(now())
    assert not leases.may_write("a.txt", now())  # the next write confirms it first


async def test_each_renewal_moves_the_jeopardy_deadline_from_when_it_was_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    for _ in range(5):
        await trio.sleep(TIMING.renew_every_s)
        assert leases.renewed(now(), [("a.txt", 1)]) == []
    assert leases.may_write("a.txt", now())
    last_sent = now()
    # Renewals fail from here on (unreachable): nothing moves the deadline any more.
    await trio.sleep_until(last_sent + TTL - TIMING.margin_s)
    assert not leases.may_write("a.txt", now())
    assert leases.in_jeopardy(now())
    # A late answer to an old renewal cannot bring writes back past its own deadline.
    leases.renewed(last_sent - TIMING.renew_every_s, [("a.txt", 1)])
    assert not leases.may_write("a.txt", now())


def test_the_margin_is_a_second_at_least_and_never_the_whole_ttl() -> None:
    assert LeaseTiming(ttl_s=30.0).margin_s == 5.0
    assert LeaseTiming(ttl_s=3.0).margin_s == 1.0
    assert LeaseTiming(ttl_s=1.0).margin_s == 0.5
    assert LeaseTiming(ttl_s=30.0).renew_every_s == 10.0


async def test_a_renewal_without_a_lease_means_it_was_lost_and_the_next_write_reacquires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    grant(leases, "b.txt", 2)
    await trio.sleep(TIMING.renew_every_s)
    assert leases.renewed(now(), [("b.txt", 2)]) == ["a.txt"]
    assert leases.get("a.txt") is None
    assert not leases.may_write("a.txt", now())  # the next write must acquire it again
    assert leases.was_lost("a.txt")
    assert leases.may_write("b.txt", now())
    # Granted again (a new token), it is an ordinary lease once more.
    grant(leases, "a.txt", 7)
    assert not leases.was_lost("a.txt") and leases.may_write("a.txt", now())


async def test_a_renewal_naming_an_older_token_loses_the_lease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 5)
    assert leases.renewed(now(), [("a.txt", 4)]) == ["a.txt"]


async def test_an_idle_lease_goes_back_after_the_grace_and_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    leases.used(["a.txt"], now())
    await trio.sleep(GRACE - 0.01)
    assert leases.due(now(), NO_WRITERS) == []
    assert leases.sleeping(now(), NO_WRITERS) == pytest.approx(now() + 0.01)
    await trio.sleep(0.01)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_each_use_restarts_the_grace(autojump_clock: trio.testing.MockClock) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    for _ in range(4):
        await trio.sleep(GRACE / 2)
        leases.used(["a.txt"], now())
        assert leases.due(now(), NO_WRITERS) == []
    await trio.sleep(GRACE)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_an_open_writer_keeps_an_idle_lease_and_is_looked_at_again_every_idle_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    await trio.sleep(10 * GRACE)
    writing = frozenset({"a.txt"})
    assert leases.quiet(now()) == ["a.txt"]  # quiet: worth finding out who has it open
    assert leases.due(now(), writing) == []
    # Its close may go unseen (no file handles): look again after the idle poll.
    assert leases.sleeping(now(), writing) == pytest.approx(now() + TIMING.idle_poll_s)
    await trio.sleep(TIMING.idle_poll_s)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_a_write_handle_closed_starts_the_grace_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With file handles the close is seen: the grace counts from it."""
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    await trio.sleep(10 * GRACE)
    assert leases.sleeping(now(), frozenset({"a.txt"})) == now() + TIMING.idle_poll_s
    assert not leases.writer_closed("a.txt", now())  # the releaser looks again before
    leases.awake()
    assert leases.due(now(), NO_WRITERS) == []
    await trio.sleep(GRACE)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_with_nothing_held_the_releaser_sleeps_until_woken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    assert leases.sleeping(now(), NO_WRITERS) == math.inf
    grant(leases, "a.txt", 1)
    assert len(leases.releasing(None)) == 1
    assert leases.sleeping(now(), NO_WRITERS) == math.inf  # being released: not its to wake


async def test_a_close_wakes_the_releaser_only_when_its_grace_ends_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "early.txt", 1)
    await trio.sleep(1.0)
    grant(leases, "later.txt", 2)
    leases.sleeping(now(), NO_WRITERS)  # towards early.txt's grace, 2 s from now
    # later.txt's new grace ends after early.txt's: the releaser will see it when it wakes.
    assert not leases.writer_closed("later.txt", now())
    # Awake, the releaser looks at everything before sleeping again: no wake needed at all.
    leases.awake()
    assert not leases.writer_closed("later.txt", now())


async def test_a_recalled_lease_goes_back_once_quiet_for_a_moment_not_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 3)
    leases.used(["a.txt"], now())
    assert leases.recalled("a.txt", 3, now())
    assert leases.due(now(), NO_WRITERS) == []  # a write a moment ago: the save may go on
    assert leases.sleeping(now(), NO_WRITERS) == pytest.approx(now() + QUIET)
    await trio.sleep(QUIET / 2)
    leases.used(["a.txt"], now())  # it did: the quiet period starts again
    await trio.sleep(QUIET / 2)
    assert leases.due(now(), NO_WRITERS) == []
    await trio.sleep(QUIET / 2)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_a_recalled_lease_kept_by_an_open_writer_is_looked_at_again_soon(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 3)
    await trio.sleep(1.0)
    assert leases.recalled("a.txt", 3, now())
    writing = frozenset({"a.txt"})
    assert leases.due(now(), writing) == []
    assert leases.sleeping(now(), writing) == pytest.approx(now() + TIMING.writer_poll_s)
    await trio.sleep(TIMING.writer_poll_s)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]  # closed meanwhile, unseen


async def test_a_recall_wakes_the_sleeping_releaser(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 3)
    assert leases.sleeping(now(), NO_WRITERS) == pytest.approx(now() + GRACE)
    assert leases.recalled("a.txt", 3, now())


async def test_a_recall_of_another_grant_is_ignored(autojump_clock: trio.testing.MockClock) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 3)
    assert not leases.recalled("a.txt", 2, now())  # for a grant given back before
    assert leases.due(now(), NO_WRITERS) == []


async def test_a_recall_that_comes_before_its_grant_is_kept_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    leases.acquire_started(["a.txt"])
    assert leases.is_acquiring("a.txt")
    assert not leases.recalled("a.txt", 4, now())  # the event stream was faster
    assert grant(leases, "a.txt", 4)  # the releaser must wake for it
    leases.acquire_ended(["a.txt"])
    assert not leases.is_acquiring("a.txt")
    await trio.sleep(QUIET)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_a_recall_kept_early_does_not_touch_a_later_grant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    leases.recalled("a.txt", 4, now())
    grant(leases, "a.txt", 5)
    assert leases.due(now(), NO_WRITERS) == []


async def test_a_holder_past_the_break_timeout_loses_the_lease_at_the_next_renewal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A recalled lease kept open: the coordinator stops renewing it after its break timeout,
    so the next renewal answer lacks it; the next write must then acquire it again (and wait
    behind the waiter), and the deadline holds meanwhile."""
    break_timeout = 30.0
    leases = MountLeases(TIMING)
    writing = frozenset({"a.txt"})
    grant(leases, "a.txt", 3)
    leases.recalled("a.txt", 3, now())
    recalled_at = now()
    while now() - recalled_at < break_timeout:
        await trio.sleep(TIMING.renew_every_s)
        assert leases.renewed(now(), [("a.txt", 3)]) == []
        assert leases.due(now(), writing) == []
        assert leases.may_write("a.txt", now())
    await trio.sleep(TIMING.renew_every_s)
    assert leases.renewed(now(), []) == ["a.txt"]
    assert not leases.may_write("a.txt", now()) and leases.was_lost("a.txt")
    assert leases.due(now(), writing) == []


async def test_a_release_that_failed_is_held_again_and_retried_after_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    leases.recalled("a.txt", 1, now())
    await trio.sleep(QUIET)
    [releasing] = leases.releasing(None)
    assert releasing.phase is Phase.RELEASING
    assert not leases.may_write("a.txt", now())  # being given back: a write must wait
    assert leases.due(now(), NO_WRITERS) == []  # not chosen twice
    leases.release_failed(releasing, now())
    assert releasing.phase is Phase.HELD and not releasing.recalled
    assert leases.due(now(), NO_WRITERS) == []  # not in a tight loop, even though recalled
    await trio.sleep(GRACE)
    assert leases.due(now(), NO_WRITERS) == ["a.txt"]


async def test_a_released_lease_is_gone_and_only_the_chosen_ones_go(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    grant(leases, "b.txt", 2)
    [chosen] = leases.releasing(["b.txt"])
    leases.released(chosen)
    assert [held.path for held in leases.leases()] == ["a.txt"]
    # A renewal while b.txt was being released does not count it as lost.
    assert leases.renewed(now(), [("a.txt", 1)]) == []


async def test_a_lease_lost_while_released_is_not_removed_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    [old] = leases.releasing(None)
    leases.released(old)
    grant(leases, "a.txt", 2)
    leases.released(old)  # the old release's late end must not drop the new grant
    assert leases.is_current("a.txt", 2)


async def test_a_reacquire_under_the_same_grant_only_moves_the_expiry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    first = leases.get("a.txt")
    assert first is not None and leases.is_current("a.txt", 1)
    leases.confirmed(lease("a.txt", 1).model_copy(update={"expires_at": 99.0}))
    assert leases.get("a.txt") is first and first.expires_at == 99.0


async def test_open_writers_are_looked_for_soon_for_a_recall_and_after_a_gap_in_a_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Looking reads all of /proc: a burst of leases going quiet one after another is looked
    at together, but someone waiting is not kept waiting for the gap, nor is a lone lease."""
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    grant(leases, "b.txt", 2)
    await trio.sleep(GRACE / 2)
    grant(leases, "c.txt", 3)  # goes quiet within the gap after a and b: a burst
    await trio.sleep(GRACE / 2)
    last_look = now() - 0.1
    quiet = leases.quiet(now())
    assert quiet == ["a.txt", "b.txt"]
    assert leases.next_look(quiet, last_look, now()) == now()  # c is not about to go quiet
    await trio.sleep(GRACE / 2 - TIMING.idle_look_gap_s / 2)
    last_look = now() - 0.1
    assert leases.next_look(quiet, last_look, now()) == last_look + TIMING.idle_look_gap_s
    leases.recalled("b.txt", 2, now())
    assert leases.next_look(quiet, last_look, now()) == last_look + TIMING.writer_poll_s
    assert leases.next_look(quiet, -math.inf, now()) == -math.inf  # never looked: look now


async def test_a_lone_quiet_lease_is_looked_at_without_waiting_for_the_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One file written now and then (nothing else about to go quiet): its lease goes back
    as soon as it is quiet, however recently the last look was."""
    leases = MountLeases(TIMING)
    grant(leases, "a.txt", 1)
    await trio.sleep(GRACE)
    just_looked = now() - 0.01
    assert leases.next_look(leases.quiet(now()), just_looked, now()) == now()
