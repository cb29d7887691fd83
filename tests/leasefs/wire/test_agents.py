"""How agents are named to people."""

from __future__ import annotations

from leasefs.wire import AgentInfo


def agent(host: str) -> AgentInfo:
    return AgentInfo(id=3, name="alpha", host=host, tool="claude-code", joined_at=0.0)


def test_an_agent_with_a_host_is_name_at_host() -> None:
    assert agent("laptop").label == "alpha@laptop"


def test_an_agent_without_a_host_is_its_bare_name() -> None:
    assert agent("").label == "alpha"
