"""The HTTP API fuzzed from its own OpenAPI document, and repository paths fuzzed everywhere.

Schemathesis generates requests for every operation of /v1/openapi.json, as served by a real
coordinator process, both schema-valid ones (positive) and schema-breaking ones (negative),
authenticated as a registered agent. Whatever it sends, the coordinator must answer without
a server error, with a status code the document declares, and with a body that matches the
declared schema. Its hypothesis tests run here as plain synchronous tests (trio_mode only
takes over async ones).

Paths are the one input that could reach outside a repository, so `check_repo_path` gets a
property test of its own, and the server must agree with it on every random path it is sent.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from coordinator._app import create_app
from leasefs.wire import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    InvalidPath,
    check_lease_key,
    check_repo_path,
)
from tests.helpers import CoordinatorProcess

# The operations the app declares, known at collection time so that each is its own test.
# create_app only keeps the coordinator it is given; building the document needs none.
_DOCUMENT = create_app(None).openapi()  # type: ignore[arg-type]
OPERATIONS = sorted(f"{m.upper()} {p}" for p, ops in _DOCUMENT["paths"].items() for m in ops)
AUTHENTICATED = {
    f"{m.upper()} {p}"
    for p, ops in _DOCUMENT["paths"].items()
    for m, op in ops.items()
    if any(q["name"] == "authorization" for q in op.get("parameters", []))
} - {"GET /v1/workspaces/{name}"}  # a token only decides whether it is shown (test_access)
# An endless event stream cannot be judged by "the response": it has its own tests below.
STREAMING = {"GET /v1/events"}
# Retires the token it is called with: every example gets an agent of its own.
RETIRES_TOKEN = "DELETE /v1/agents/me"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SQLITE_MAX_INT = 2**63 - 1
FUZZ = settings(
    deadline=None,
    database=None,  # it would land in the repository (.hypothesis/)
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
# LEASEFS_FUZZ_SCALE=10 fuzzes ten times deeper (a nightly run, not every commit).
_SCALE = float(os.environ.get("LEASEFS_FUZZ_SCALE", "1"))
EXAMPLES = {"positive": int(40 * _SCALE), "negative": int(30 * _SCALE)}


@dataclass
class Api:
    url: str
    workspace: str
    token: str
    schema: Any
    session: requests.Session  # schemathesis calls through requests
    http: httpx.Client

    def register(self, workspace: str | None = None) -> str:
        """A new agent's token in the fuzzed workspace (or another one, created if need be)."""
        if workspace is not None:
            self.http.post("/v1/workspaces", json={"name": workspace})
        response = self.http.post(
            "/v1/agents",
            json={"workspace": workspace or self.workspace, "name": "fuzzer", "tool": "pytest"},
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def operation(self, label: str) -> Any:
        method, path = label.split(" ", 1)
        return self.schema[path][method]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A coordinator of the module's own (the fuzzer fills it with workspaces and zones)."""
    server = CoordinatorProcess(tmp_path_factory.mktemp("fuzzed"), "--max-blob-bytes", "65536")
    server.start()
    session = requests.Session()
    http = httpx.Client(base_url=server.url, timeout=10)
    try:
        workspace = f"fuzz-{os.getpid()}"
        http.post("/v1/workspaces", json={"name": workspace})
        api = Api(server.url, workspace, "", None, session, http)
        api.token = api.register()
        api.schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json", timeout=10)
        yield api
    finally:
        http.close()
        session.close()
        server.stop()
        print("".join(server.output[-100:]))  # shown by pytest when a test failed


def test_the_served_document_has_every_operation(api: Api) -> None:
    served = api.http.get("/v1/openapi.json").json()
    assert served == json.loads(json.dumps(_DOCUMENT))
    assert len(OPERATIONS) > 20 and "POST /v1/leases/acquire" in OPERATIONS


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("label", [op for op in OPERATIONS if op not in STREAMING])
def test_fuzzed_requests_get_declared_answers(api: Api, label: str, mode: str) -> None:
    """No 5xx, a declared status, a declared content type, a body matching its schema."""
    operation = api.operation(label)
    fixed = {"authorization": f"Bearer {api.token}"} if label in AUTHENTICATED else None
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode), headers=fixed)

    @settings(FUZZ, max_examples=EXAMPLES[mode])
    @given(case=strategy)
    def fuzz(case: Case[Any]) -> None:
        headers = {"authorization": f"Bearer {api.register()}"} if label == RETIRES_TOKEN else {}
        case.call_and_validate(
            base_url=api.url, session=api.session, headers=headers, checks=CHECKS, timeout=10
        )

    try:
        fuzz()
    except Unsatisfiable:
        if mode == "positive":
            raise
        pytest.skip(f"{label} takes no input that its schema could refuse")


@pytest.mark.parametrize("label", sorted(AUTHENTICATED))
def test_calls_without_a_valid_token_are_refused(api: Api, label: str) -> None:
    """Every operation that needs a token answers 401 with an error body, whatever else the
    request holds, to a missing, malformed or unknown token."""
    method, path = label.split(" ", 1)
    url = re.sub(r"\{[^}]*\}", "1", path)
    for headers in ({}, {"authorization": "Basic x"}, {"authorization": "Bearer not-a-token"}):
        response = api.http.request(method, url, headers=headers, json={})
        assert response.status_code == 401, (headers, response.text)
        if method != "HEAD":
            assert response.json()["error"] == "unauthorized"


def test_event_stream_rejects_bad_positions(api: Api) -> None:
    """The stream's own inputs: a position that is not a whole number is refused up front."""
    auth = {"authorization": f"Bearer {api.token}"}
    for params, headers in (
        ({"after": "-1"}, {}),
        ({"after": "x"}, {}),
        ({}, {"last-event-id": "x"}),
        ({}, {"last-event-id": "-1"}),
    ):
        response = api.http.get("/v1/events", params=params, headers={**auth, **headers})
        assert 400 <= response.status_code < 500, (params, headers, response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_path"), response.text


# -- repository paths ------------------------------------------------------------------------

# Text rich in what makes paths dangerous: separators, dots, NUL, backslashes, long names.
_tricky_parts = st.sampled_from(
    ["", ".", "..", "...", "/", "//", "\\", "\x00", "a", "é", " ", "~", "x" * 256, "\udc80"]
)
tricky_paths = st.one_of(
    st.text(max_size=40),
    st.lists(_tricky_parts, max_size=8).map("".join),
    st.lists(st.one_of(_tricky_parts, st.text(max_size=5)), max_size=8).map("/".join),
)
safe_names = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/\\\x00"), min_size=1
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= MAX_NAME_BYTES)
canonical_paths = (
    st.lists(safe_names, min_size=1, max_size=6)
    .map("/".join)
    .filter(lambda p: len(p.encode()) <= MAX_PATH_BYTES)
)
PATH_SETTINGS = settings(FUZZ, max_examples=500)


def _stays_inside(path: str) -> bool:
    root = "/repository"
    return posixpath.normpath(posixpath.join(root, path)).startswith(root + "/")


@PATH_SETTINGS
@given(path=tricky_paths)
def test_an_accepted_path_cannot_leave_the_repository(path: str) -> None:
    try:
        accepted = check_repo_path(path)
    except InvalidPath as exc:
        assert str(exc)  # says why
        return
    parts = path.split("/")
    assert accepted == path
    assert not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert all(part not in ("", ".", "..") for part in parts)
    assert posixpath.normpath(path) == path
    assert _stays_inside(path)
    assert len(path.encode()) <= MAX_PATH_BYTES


@PATH_SETTINGS
@given(path=canonical_paths)
def test_every_canonical_relative_path_is_accepted_unchanged(path: str) -> None:
    assert check_repo_path(path) == path


def _expected_invalid(path: str, check: Callable[[str], str] = check_repo_path) -> bool:
    try:
        check(path)
    except InvalidPath:
        return True
    return False


KEY_QUERIES = ("/v1/leases", "/v1/audit")
"""Queries that take a lease key: a path, or a folder lease's path and '/'."""


@pytest.fixture(scope="module")
def path_agent(api: Api) -> str:
    """An agent in a workspace of its own: the fuzzer's zones must not block its leases."""
    return api.register(f"paths-{os.getpid()}")


@settings(FUZZ, max_examples=300)
@given(path=st.one_of(tricky_paths, canonical_paths))
def test_the_server_judges_paths_as_check_repo_path_does(
    api: Api, path_agent: str, path: str
) -> None:
    """Random paths in a lease request and in queries: 200 (404 for a version never
    written) when the path is canonical (or, where a lease key is asked for, a canonical
    folder key), 422 invalid_path when it is not; never a 5xx."""
    auth = {"authorization": f"Bearer {path_agent}"}
    body = json.dumps({"paths": [path], "ttl_s": 5}).encode()  # \\u escapes carry anything
    answers = [
        api.http.post(
            "/v1/leases/acquire", content=body, headers={**auth, "content-type": "application/json"}
        )
    ]
    if "\udc80" not in path and not any(0xD800 <= ord(c) <= 0xDFFF for c in path):
        for url in ("/v1/leases", "/v1/versions/latest", "/v1/versions", "/v1/audit"):
            answers.append(api.http.get(url, params={"path": path}, headers=auth))
    for response in answers:
        where = f"{response.request.method} {response.request.url.path} {path!r}"
        assert response.status_code < 500, f"{where}: {response.text}"
        if response.request.url.path in KEY_QUERIES:
            invalid = _expected_invalid(path, check_lease_key)
        else:
            invalid = _expected_invalid(path)
        if invalid:
            assert response.status_code == 422, f"{where}: {response.text}"
            assert response.json()["error"] == "invalid_path", f"{where}: {response.text}"
        else:
            assert response.status_code in (200, 404), f"{where}: {response.text}"
    if answers[0].status_code == 200:
        leases = [
            {"path": lease["path"], "token": lease["token"]}
            for lease in answers[0].json()["leases"]
        ]
        api.http.post(
            "/v1/leases/release", json={"leases": leases}, headers=auth
        ).raise_for_status()


# -- the bug the fuzzer found ------------------------------------------------------------------

_HUGE = str(2**70)
OVERFLOWING = [
    ("GET", f"/v1/audit?after_id={_HUGE}"),
    ("GET", f"/v1/audit?agent_id={_HUGE}"),
    ("GET", f"/v1/work/{_HUGE}"),
    ("POST", f"/v1/work/{_HUGE}/resume"),
    ("POST", f"/v1/work/{_HUGE}/cancel"),
    ("DELETE", f"/v1/memories/{_HUGE}"),
    ("GET", f"/v1/threads/{_HUGE}"),
    ("DELETE", f"/v1/zones/{_HUGE}"),
]


@pytest.mark.parametrize(("method", "url"), OVERFLOWING)
def test_ids_beyond_64_bits_are_refused(api: Api, method: str, url: str) -> None:
    response = api.http.request(method, url, headers={"authorization": f"Bearer {api.token}"})
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("where", ["query", "header"])
def test_event_positions_beyond_64_bits_are_refused(api: Api, where: str) -> None:
    params = {"after": _HUGE} if where == "query" else {}
    headers = {"authorization": f"Bearer {api.token}"}
    if where == "header":
        headers["last-event-id"] = _HUGE
    timeout = httpx.Timeout(10, read=1.0)
    with api.http.stream(
        "GET", "/v1/events", params=params, headers=headers, timeout=timeout
    ) as response:
        if response.status_code < 400:
            # Accepted: then the stream must stay open (a read timeout), not break.
            with pytest.raises(httpx.ReadTimeout):
                for _ in response.iter_bytes():
                    pass


def test_memory_search_with_a_nul_is_not_a_server_error(api: Api) -> None:
    response = api.http.get(
        "/v1/memories",
        params={"query": "lease\x00fs"},
        headers={"authorization": f"Bearer {api.token}"},
    )
    assert response.status_code < 500, response.text
