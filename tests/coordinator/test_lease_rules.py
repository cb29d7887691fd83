"""The pure lease rules, without a server, a clock or a disk."""

from __future__ import annotations

from dataclasses import replace

from coordinator._leases import GrantRequest, WaitQueue, decide, scope_of, scopes_meet
from coordinator.store import LeaseRow


def lease(path: str, agent: int, expires_at: float) -> LeaseRow:
    return LeaseRow(
        1, path, agent, token=1, acquired_at=0, expires_at=expires_at, ttl_s=30, work=None
    )


def request(agent: int, *paths: str) -> GrantRequest:
    return GrantRequest(
        workspace_id=1, agent_id=agent, paths=paths, ttl_s=30, work=None, branch="main"
    )


def test_decide_separates_expired_own_and_others_leases() -> None:
    rows = [lease("a", 1, 100), lease("b", 2, 100), lease("c", 2, 50)]
    decision = decide(rows, agent_id=1, now=60)
    assert [r.path for r in decision.own] == ["a"]
    assert [r.path for r in decision.blockers] == ["b"]
    assert [r.path for r in decision.expired] == ["c"]
    assert not decision.grantable


def test_a_lease_expiring_exactly_now_is_expired() -> None:
    decision = decide([lease("a", 2, 60)], agent_id=1, now=60)
    assert decision.grantable and [r.path for r in decision.expired] == ["a"]


def test_waiters_behind_an_earlier_waiter_on_a_shared_path_stay_behind() -> None:
    queue = WaitQueue()
    first = queue.add(request(1, "a", "b"))
    second = queue.add(request(2, "b"))
    third = queue.add(request(3, "c"))
    seen = [(w, ahead) for w, ahead in queue.candidates(1)]
    assert seen == [(first, False), (second, True), (third, False)]


def test_a_granted_waiter_no_longer_claims_its_paths() -> None:
    queue = WaitQueue()
    first = queue.add(request(1, "a"))
    second = queue.add(request(2, "a"))
    order = []
    for waiter, ahead in queue.candidates(1):
        order.append((waiter, ahead))
        if waiter is first:
            waiter.result = object()  # granted: the next one may go
    assert order == [(first, False), (second, False)]


def test_removing_an_agent_drops_only_its_waits() -> None:
    queue = WaitQueue()
    queue.add(request(1, "a"))
    kept = queue.add(request(2, "a"))
    assert len(queue.remove_agent(1)) == 1
    assert queue.waiting_on(1, ["a"]) == [kept]
    assert queue.waited_paths(1) == {"a"}
    queue.remove(kept)
    assert queue.waited_paths(1) == set()


def test_a_branch_scope_meets_its_own_branch_and_the_whole_workspace_only() -> None:
    assert scope_of("branch", "feature") == "feature" and scope_of("workspace", "feature") == ""
    assert scopes_meet("main", "main") and scopes_meet("main", "") and scopes_meet("", "feature")
    assert scopes_meet("", "") and not scopes_meet("main", "feature")


def test_waiters_on_other_branches_never_stand_in_each_others_line() -> None:
    queue = WaitQueue()
    on_main = queue.add(replace(request(1, "a"), scope="main"))
    on_feature = queue.add(replace(request(2, "a"), scope="feature"))
    everyone = queue.add(request(3, "a"))  # workspace scope: behind both
    also_main = queue.add(replace(request(4, "a"), scope="main"))
    seen = [(w, ahead) for w, ahead in queue.candidates(1)]
    assert seen == [(on_main, False), (on_feature, False), (everyone, True), (also_main, True)]
    assert queue.waited_paths(1, "feature") == {"a"} and queue.waited_paths(1, "other") == {"a"}
    queue.remove(everyone)
    assert queue.waited_paths(1, "other") == set()
    assert queue.waiting_on(1, ["a"], "feature") == [on_feature]
    assert queue.waiting_on(1, ["a"]) == [on_main, on_feature, also_main]
