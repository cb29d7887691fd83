"""Access control against a real coordinator that admits by invitation (`serve --join
invite`): nobody joins uninvited, a refusal never tells whether a workspace exists, roles
bound what agents may do, and revoking a member retires its agents at once."""

from __future__ import annotations

import base64
import json
import re
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from leasefs import Client, Forbidden, LeasefsError, Unauthorized
from leasefs._client import CoordinatorUnavailable, NotFound
from leasefs.wire import MemoryCreate, VersionCreate
from tests.helpers import CoordinatorProcess, run


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    server = CoordinatorProcess(tmp_path_factory.mktemp("closed"), "--join", "invite").start()
    try:
        yield server
    finally:
        server.kill()


def admin_secret(server: CoordinatorProcess) -> str:
    return (server.data_dir / "admin-secret").read_text().strip()


_names = iter(range(10_000))


@pytest.fixture
async def team(closed: CoordinatorProcess) -> AsyncIterator[tuple[str, str, list[Client]]]:
    """A new workspace, its owner's credential, and every client made (closed afterwards)."""
    clients: list[Client] = []
    name = f"team-{next(_names)}"
    async with Client(closed.url) as creator:
        made = await creator.create_workspace(name, admin_secret=admin_secret(closed), owner="olga")
    assert made.credential is not None
    try:
        yield name, made.credential, clients
    finally:
        for client in clients:
            await client.aclose()


async def agent(
    server: CoordinatorProcess, clients: list[Client], workspace: str, credential: str, name: str
) -> Client:
    client = Client(server.url)
    clients.append(client)
    await client.register(workspace, name, credential=credential)
    return client


def test_the_admin_secret_is_kept_for_its_user_only(closed: CoordinatorProcess) -> None:
    mode = stat.S_IMODE((closed.data_dir / "admin-secret").stat().st_mode)
    assert mode == 0o600
    assert admin_secret(closed).startswith("lfa_")
    assert "admin secret (shown once" in "".join(closed.output)


async def test_nobody_creates_or_joins_uninvited_and_nothing_says_what_exists(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, _, _ = team
    async with Client(closed.url) as outsider:
        before = (await outsider.health()).failed_authentications
        with pytest.raises(Forbidden) as refused:
            await outsider.create_workspace("mine")
        assert refused.value.code == "admin_secret_required"
        with pytest.raises(Forbidden):
            await outsider.create_workspace("mine", admin_secret="lfa_guess")
        answers = []
        for name in (workspace, "no-such-workspace"):
            with pytest.raises(Forbidden) as refused:
                await outsider.register(name, "mallory")
            answers.append((refused.value.code, str(refused.value)))
            with pytest.raises(Forbidden):
                await outsider.register(name, "mallory", credential="lfm_forged")
        assert answers[0] == answers[1], "the refusal tells an existing workspace apart"
        assert answers[0][0] == "invitation_required"
        # Six refusals: two admin secrets, four registrations; all counted.
        assert (await outsider.health()).failed_authentications >= before + 6
    # Nor does asking for it by name, with no token or a bad one: both 404 alike.
    statuses = set()
    async with httpx.AsyncClient(base_url=closed.url) as raw:
        for name in (workspace, "no-such-workspace"):
            for headers in ({}, {"Authorization": "Bearer forged"}):
                response = await raw.get(f"/v1/workspaces/{name}", headers=headers)
                statuses.add((response.status_code, response.json()["message"].split("'")[0]))
    assert len(statuses) == 1 and next(iter(statuses))[0] == 404


async def test_an_invitation_admits_once_with_its_role(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    assert olga.agent is not None and olga.agent.role == "owner"
    made = await olga.invite("member")
    assert made.secret.startswith("lfi_") and made.workspace == workspace
    async with Client(closed.url) as newcomer:
        joined = await newcomer.redeem(made.secret, "mia@laptop")
        assert (joined.workspace, joined.role) == (workspace, "member")
        refusals = set()
        for secret in (made.secret, "lfi_forged", made.secret + "x"):  # replayed, forged
            with pytest.raises(Forbidden) as refused:
                await newcomer.redeem(secret, "eve")
            refusals.add((refused.value.code, str(refused.value)))
        assert len(refusals) == 1 and next(iter(refusals))[0] == "invalid_invitation"
    mia = await agent(closed, clients, workspace, joined.credential, "mia-mount")
    assert mia.agent is not None and mia.agent.role == "member"
    # A member's credential is for its own workspace only.
    async with Client(closed.url) as stranger:
        with pytest.raises(Forbidden):
            await stranger.register("elsewhere", "mia", credential=joined.credential)
    # The workspace is visible to its own agents, and only to them.
    assert (await mia.get_workspace(workspace)).name == workspace


async def test_an_expired_or_used_up_invitation_admits_nobody(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    short = await olga.invite("member", expires_s=0.5)
    twice = await olga.invite("member", uses=2)
    await trio.sleep(0.7)
    async with Client(closed.url) as newcomer:
        with pytest.raises(Forbidden):
            await newcomer.redeem(short.secret, "late")
        await newcomer.redeem(twice.secret, "first")
        await newcomer.redeem(twice.secret, "second")
        with pytest.raises(Forbidden):
            await newcomer.redeem(twice.secret, "third")
    assert sorted(m.name for m in await olga.members()) == ["first", "olga", "second"]


async def test_roles_bound_what_an_agent_may_do(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    creds = {}
    for role in ("member", "admin", "viewer"):
        async with Client(closed.url) as newcomer:
            creds[role] = (await newcomer.redeem((await olga.invite(role)).secret, role)).credential
    member = await agent(closed, clients, workspace, creds["member"], "m")
    admin = await agent(closed, clients, workspace, creds["admin"], "a")
    viewer = await agent(closed, clients, workspace, creds["viewer"], "v")
    for refused_call in (
        lambda: member.invite("member"),
        lambda: member.add_zone("secrets/**", "block", "keys"),
        lambda: member.revoke(1),
    ):
        with pytest.raises(Forbidden) as refused:
            await refused_call()
        assert refused.value.code == "role_required" and "needs the admin role" in str(
            refused.value
        )
    with pytest.raises(ValueError):  # nobody invites an owner: refused before it is sent
        await admin.invite("owner")
    await admin.add_zone("secrets/**", "block", "keys")
    await admin.invite("admin")
    # A viewer reads but changes nothing: no lease, no memory, no context, no message, no work.
    for change in (
        lambda: viewer.acquire(["src/app.py"]),
        lambda: viewer.remember(MemoryCreate(text="a viewer's memory")),
        lambda: viewer.update_context("a viewer's context", 0),
        lambda: viewer.ask("team", "hello", "may I?"),
        lambda: viewer.start_work("sneaky", ["src/app.py"]),
    ):
        with pytest.raises(Forbidden) as refused:
            await change()
        assert "needs the member role" in str(refused.value)
    assert await viewer.holders(["src/app.py"])
    assert (await viewer.context()).text == ""
    await member.acquire(["src/app.py"])


async def test_revoking_a_member_retires_its_agents_and_hands_their_leases_on(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    async with Client(closed.url) as newcomer:
        joined = await newcomer.redeem((await olga.invite("member")).secret, "eve")
    eve = await agent(closed, clients, workspace, joined.credential, "eve-mount")
    eve_mcp = await agent(closed, clients, workspace, joined.credential, "eve-mcp")
    await eve.acquire(["src/app.py"])
    got: list[str] = []

    async def wait_for_it() -> None:
        grant = await olga.acquire(["src/app.py"], wait_s=20)
        got.extend(lease.path for lease in grant.leases)

    ended: list[str] = []

    async def follow() -> None:
        """eve's open event stream: it ends with her own leaving (revocation)."""
        seen = []
        async with eve.open_events(after=await eve.events_head()) as events:
            try:
                async for event in events:
                    seen.append(event.type.value)
            except CoordinatorUnavailable:  # the server closed it
                pass
        ended.append(seen[-1] if seen else "nothing")

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            nursery.start_soon(wait_for_it)
            while not (await olga.holders(["src/app.py"]))[0].waiters:
                await trio.sleep(0.01)
            [eve_member] = [m for m in await olga.members() if m.name == "eve"]
            assert len(eve_member.agents) == 2
            revoked = await olga.revoke(eve_member.id)
            assert revoked.revoked_at is not None
    assert got == ["src/app.py"], "the revoked agent's lease did not go to the waiter"
    assert ended == ["agent.left"], ended
    for retired in (eve, eve_mcp):
        with pytest.raises(Unauthorized) as refused:
            await retired.renew()
        assert refused.value.code == "revoked"
    assert "auth.failed" in [e.action for e in await olga.audit()]  # the admins can see it
    async with Client(closed.url) as again:
        with pytest.raises(Forbidden):
            await again.register(workspace, "eve-again", credential=joined.credential)
    with pytest.raises(NotFound):
        await olga.revoke(999_999)


def test_open_join_is_refused_off_loopback(tmp_path: Path) -> None:
    result = run(
        sys.executable, "-m", "leasefs", "serve", "--host", "0.0.0.0", "--join", "open",
        "--data", tmp_path / "d", check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "refusing --join open on 0.0.0.0" in result.stderr


async def test_a_revoked_agents_token_opens_no_endpoint(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    """Every operation of the OpenAPI document that takes a token refuses a revoked agent's
    with 401 revoked, and reveals the workspace to nobody outside it."""
    from coordinator._app import create_app

    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    async with Client(closed.url) as newcomer:
        joined = await newcomer.redeem((await olga.invite("member")).secret, "eve")
    eve = await agent(closed, clients, workspace, joined.credential, "eve-mount")
    assert eve.token is not None
    [member] = [m for m in await olga.members() if m.name == "eve"]
    await olga.revoke(member.id)
    document = create_app(None).openapi()  # type: ignore[arg-type]
    checked = 0
    async with httpx.AsyncClient(base_url=closed.url, timeout=10) as raw:
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                params = operation.get("parameters", [])
                if not any(p["name"] == "authorization" for p in params):
                    continue
                url = path.replace("{name}", workspace)
                url = re.sub(r"\{[^}]*\}", "1", url)
                response = await raw.request(
                    method, url, headers={"authorization": f"Bearer {eve.token}"}, json={}
                )
                where = f"{method.upper()} {path}"
                if path == "/v1/workspaces/{name}":
                    assert response.status_code == 404, where  # as for one that does not exist
                else:
                    assert response.status_code == 401, (where, response.text)
                    if method != "head":  # no body to a HEAD
                        assert response.json()["error"] == "revoked", (where, response.text)
                checked += 1
    assert checked > 30


async def test_an_admin_may_cancel_another_agents_work_and_a_member_may_not(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    workspace, owner_credential, clients = team
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    creds = {}
    for role in ("member", "admin"):
        async with Client(closed.url) as newcomer:
            creds[role] = (await newcomer.redeem((await olga.invite(role)).secret, role)).credential
    member = await agent(closed, clients, workspace, creds["member"], "m")
    admin = await agent(closed, clients, workspace, creds["admin"], "a")
    started = await member.start_work("api", ["api/routes.py"])
    other = await olga.start_work("docs", ["README.md"])
    with pytest.raises(LeasefsError, match="only its owner or an admin"):
        await member.cancel_work(other.work.id)
    cancelled = await admin.cancel_work(started.work.id)
    assert cancelled.status == "cancelled"


async def _readable_state(client: Client, path: str) -> str:
    """Everything an insider can read of a workspace, as one text to compare."""
    parts: list[object] = [
        await client.recall(),
        await client.context(),
        await client.list_work(("active", "parked", "finished", "cancelled")),
        await client.zones(),
        await client.holders([path]),
        await client.history(path),
        await client.inbox(),
        await client.members(),
        await client.events_head(),
    ]
    return repr(parts)


async def test_an_outsider_with_another_workspaces_token_reads_and_changes_nothing(
    closed: CoordinatorProcess, team: tuple[str, str, list[Client]]
) -> None:
    """The owner of workspace B aims every operation of the OpenAPI document at workspace A's
    objects (its name, member, work, memory, thread and zone ids, its blob, its lease's fencing
    token and path): no 5xx, no byte of A in any answer, nothing of A changed, and the calls
    that name a workspace answer exactly as for one that does not exist."""
    from coordinator._app import create_app

    workspace, owner_credential, clients = team
    marker = f"A-PRIVATE-{workspace}"
    path = "src/private.py"
    olga = await agent(closed, clients, workspace, owner_credential, "olga-mount")
    async with Client(closed.url) as newcomer:
        joined = await newcomer.redeem((await olga.invite("member")).secret, "ann")
    ann = await agent(closed, clients, workspace, joined.credential, "ann-mount")
    [lease] = (await ann.acquire([path])).leases
    content = f"print({marker!r})\n".encode()
    blob = await ann.upload_blob(content)
    await ann.create_version(VersionCreate(path=path, hash=blob.hash, token=lease.token))
    memory = await olga.remember(MemoryCreate(text=f"{marker} memory", paths=[path]))
    await olga.update_context(f"{marker} context", 0)
    thread = await olga.ask("agent:ann-mount", f"{marker} topic", f"{marker} question")
    work = (await ann.start_work(f"{marker} work", [path])).work
    zone = await olga.add_zone("secrets/**", "block", f"{marker} zone")
    member_id = next(m.id for m in await olga.members() if m.name == "ann")
    pending = await olga.invite("admin")
    before = await _readable_state(olga, path)

    async with Client(closed.url) as creator:
        other = f"{workspace}-outsider"
        made = await creator.create_workspace(other, admin_secret=admin_secret(closed), owner="mo")
    assert made.credential is not None
    mallory = await agent(closed, clients, other, made.credential, "mallory")
    assert mallory.token is not None
    ref = {"path": path, "token": lease.token}
    ids = {"{name}": workspace, "{member_id}": str(member_id), "{work_id}": str(work.id),
           "{memory_id}": str(memory.id), "{thread_id}": str(thread.id),
           "{zone_id}": str(zone.id), "{digest}": blob.hash}  # fmt: skip
    encoded = base64.b64encode(content).decode()
    version = {"path": path, "hash": blob.hash, "token": lease.token}
    bodies: dict[str, object] = {
        "POST /v1/workspaces": {"name": workspace, "owner": "mallory"},
        "POST /v1/agents": {"workspace": workspace, "name": "mallory", "credential": made.credential},
        "POST /v1/invitations": {"role": "admin"},
        "POST /v1/invitations/redeem": {"secret": "lfi_" + "0" * 40, "name": "mallory"},
        "POST /v1/leases/acquire": {"paths": [path], "ttl_s": 5},
        "POST /v1/leases/renew": {"ttl_s": 60},
        "POST /v1/leases/release": {"leases": [ref]},
        "POST /v1/leases/narrow": {"folder": {"path": "src/", "token": lease.token}, "keep": [path]},
        "POST /v1/versions": {**version, "path": path},
        "POST /v1/versions/batch": {"versions": [version], "contents": {blob.hash: encoded}},
        "POST /v1/conflicts": {"path": path, "version_id": 1, "local_hash": None, "copy_path": None},
        "POST /v1/work": {"title": "mallory's", "paths": [path]},
        "POST /v1/work/{work_id}/finish": {"summary": "taken over"},
        "POST /v1/work/{work_id}/park": {"progress": "taken over"},
        "POST /v1/memories": {"text": "mallory's", "paths": [path]},
        "PUT /v1/context": {"text": "mallory's", "expected_version": 1},
        "POST /v1/threads": {"to": "agent:ann-mount", "topic": "hi", "question": "let me in"},
        "POST /v1/threads/{thread_id}/replies": {"body": "mallory's", "close": True},
        "POST /v1/zones": {"glob": "**", "level": "block", "reason": "mallory's"},
        "POST /v1/zones/allowances": {"path": "secrets/x", "agent": "mallory"},
    }  # fmt: skip
    queries = {"path": path, "agent_id": str(ann.agent.id if ann.agent else 1)}
    document = create_app(None).openapi()  # type: ignore[arg-type]
    with_body = {f"{m.upper()} {p}" for p, ops in document["paths"].items()
                 for m, op in ops.items() if "requestBody" in op}  # fmt: skip
    assert with_body <= set(bodies), f"give these a body aimed at A: {with_body - set(bodies)}"
    secrets = (marker, content.decode(), pending.secret, joined.credential, owner_credential)
    checked = 0
    async with httpx.AsyncClient(base_url=closed.url, timeout=10) as raw:
        for route, operations in document["paths"].items():
            for method, operation in operations.items():
                label = f"{method.upper()} {route}"
                if label in ("GET /v1/events", "DELETE /v1/agents/me"):
                    continue  # an endless stream of B's own; retires mallory's own token
                url = route
                for param, value in ids.items():
                    url = url.replace(param, value)
                params = {p["name"]: queries[p["name"]] for p in operation.get("parameters", [])
                          if p["in"] == "query" and p["name"] in queries}  # fmt: skip
                response = await raw.request(
                    method, url, params=params, json=bodies.get(label),
                    headers={"authorization": f"Bearer {mallory.token}"},
                )  # fmt: skip
                assert response.status_code < 500, (label, response.text)
                for secret in secrets:
                    assert secret not in response.text, (label, response.text)
                if response.status_code == 200 and method == "get" and "{" in route:
                    pytest.fail(f"{label} answered 200 for A's object: {response.text}")
                checked += 1
        # Whatever names a workspace answers for A exactly as for one that does not exist.
        for label, aimed in (
            ("GET /v1/workspaces/{name}", None),
            ("POST /v1/workspaces", bodies["POST /v1/workspaces"]),
            ("POST /v1/agents", bodies["POST /v1/agents"]),
        ):
            answers = set()
            for name in (workspace, f"{workspace}-ghost"):
                method, route = label.split(" ", 1)
                body = json.loads(json.dumps(aimed).replace(workspace, name)) if aimed else None
                for auth in ({}, {"authorization": f"Bearer {mallory.token}"}):
                    response = await raw.request(
                        method, route.replace("{name}", name), json=body, headers=auth
                    )
                    text = response.text.replace(name, "NAME")
                    answers.add((auth != {}, response.status_code, text))
            assert len(answers) == 2, (label, answers)  # one per auth, the same for both names
    assert checked > 40
    assert await _readable_state(olga, path) == before
    assert await ann.latest_version(path) is not None
    async with Client(closed.url) as late:  # the pending invitation was not used up
        assert (await late.redeem(pending.secret, "late")).role == "admin"
