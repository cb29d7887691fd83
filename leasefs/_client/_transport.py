"""The HTTP plumbing under `Client`: what every call to the coordinator goes through.

One connection pool; rate-limited requests sent again after the wait asked for; and the
boundary where failures become ours. An answer's error body becomes a typed exception in
`_rejection`, and httpx's own exceptions become ours through one table, `_HTTPX_ERRORS`,
applied by `httpx_errors_as_ours` around every call into httpx (as httpx's own transport maps
httpcore's exceptions with one table), so none escapes the client. The calls themselves, one
module per domain, are mixins over `Transport` (see `_client`).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar

import anyio
import httpx
from pydantic import BaseModel, TypeAdapter

from .._config import _settings
from ..wire import AgentInfo, Health, ServerLimits, is_plain_remote
from ._exceptions import (
    CoordinatorUnavailable,
    InsecureTransport,
    LeasefsError,
    RateLimited,
    rejection_for,
)

# A rate-limited request is sent again after the wait the coordinator asks for, this often.
_RATE_LIMIT_RETRIES = 5
_RATE_LIMIT_MAX_WAIT_S = 5.0

M = TypeVar("M", bound=BaseModel)

_HTTPX_ERRORS: dict[type[httpx.HTTPError], type[CoordinatorUnavailable]] = {
    # Refused, reset or timed out; a TLS handshake that failed; an answer that broke off.
    httpx.TransportError: CoordinatorUnavailable,
}
"""httpx's exceptions and ours: the one table. Anything it does not name (a bug of ours, say
`httpx.StreamConsumed`) is raised as it is."""

# What broke, for the message of a mapped exception (``{url}``: the coordinator's).
_UNREACHABLE = "cannot reach the coordinator at {url}"
_DOWNLOAD_BROKE = "download from {url} broke"
_EVENTS_BROKE = "event stream from {url} broke"


@contextmanager
def httpx_errors_as_ours(what_broke: str, url: str) -> Iterator[None]:
    """Raise an exception of httpx's inside as the most specific of ours in `_HTTPX_ERRORS`,
    ``from`` it, its message ``what_broke`` (formatted with ``url``) and every cause's."""
    try:
        yield
    except Exception as exc:
        ours: type[CoordinatorUnavailable] | None = None
        for theirs, candidate in _HTTPX_ERRORS.items():
            if isinstance(exc, theirs) and (ours is None or issubclass(candidate, ours)):
                ours = candidate
        if ours is None:
            raise
        raise ours(f"{what_broke.format(url=url)}: {_reason(exc)}", url=url) from exc


def _reason(exc: BaseException) -> str:
    """What went wrong, from the whole chain of causes: under trio, httpx's ``ConnectError``
    often carries no message and the useful one (say, a certificate that failed
    verification) sits on an exception underneath."""
    parts: list[str] = []
    texts: set[str] = set()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if text not in texts or not parts:
            texts.add(text)
            parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or current.__context__
    return "; ".join(parts)


def _rejection(response: httpx.Response) -> LeasefsError:
    """The exception for an error answer, from its body (``error``, ``message``, ``details``),
    or from its status alone when the body is not ours (a proxy's page, say)."""
    try:
        body = json.loads(response.content)
        code, message = body["error"], body["message"]
        details = body.get("details")
    except (ValueError, KeyError, TypeError):
        code = f"http_{response.status_code}"
        message = f"the coordinator answered {response.status_code}: {response.text[:200]}"
        details = None
    return rejection_for(response.status_code, code, message, details)


def _verification(base_url: str, ca_cert: str | os.PathLike[str] | None) -> bool | ssl.SSLContext:
    """How to check the coordinator's certificate: against ``ca_cert`` (or the ``ca_cert``
    setting, for a team's private CA), else the usual public trust store. Plain http needs
    none, and loading a CA bundle costs ~30 ms of CPU per client."""
    if not base_url.startswith("https://"):
        return False
    cafile = ca_cert or _settings.resolve("ca_cert")
    if not cafile:
        return True
    try:
        return ssl.create_default_context(cafile=os.fspath(cafile))
    except (OSError, ssl.SSLError) as exc:
        raise LeasefsError(f"cannot load the CA certificate {cafile}: {exc}") from exc


async def _converted(chunks: AsyncIterator[bytes], url: str) -> AsyncIterator[bytes]:
    """A download's chunks, a connection broken halfway raised as ours."""
    with httpx_errors_as_ours(_DOWNLOAD_BROKE, url):
        async for chunk in chunks:
            yield chunk


class Transport:
    """A connection to one coordinator: who we are to it, and the requests sent to it.

    `Client` is this plus the calls. A call goes through `_call`, `_call_list` or `_request`;
    a stream (a blob read, the events) through `_http`, under `httpx_errors_as_ours`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        ca_cert: str | os.PathLike[str] | None = None,
        insecure: bool | None = None,
    ) -> None:
        """``insecure``: talk plain http to a coordinator on another machine anyway (None:
        the ``insecure`` setting, ``LEASEFS_INSECURE``); refused otherwise, before sending."""
        self.base_url = base_url.rstrip("/")
        if insecure is None:
            insecure = str(_settings.resolve("insecure") or "").lower() in ("1", "true", "yes")
        self._refusal = (
            None
            if insecure or not is_plain_remote(self.base_url)
            else (
                f"refusing to talk plain http to {self.base_url}: the agent token and the team's "
                "code would cross the network unencrypted. Serve https (leasefs serve --tls-cert "
                "--tls-key) and use an https:// URL, or, on a network you trust, pass "
                "leasefs --insecure (or set LEASEFS_INSECURE=1)"
            )
        )
        self.token = token
        self.agent: AgentInfo | None = None
        self.workspace: str | None = None
        self._timeout = timeout
        self._limits: ServerLimits | None = None
        # One connection pool for both paths: streams (blobs, events) go through the
        # AsyncClient, plain JSON calls straight to its transport (see `_request`).
        self._transport = httpx.AsyncHTTPTransport(verify=_verification(base_url, ca_cert))
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/v1", timeout=timeout, transport=self._transport
        )
        self._timeouts: dict[float, dict[str, float | None]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> Health:
        """The coordinator's state and limits (here since the blob calls read the limits)."""
        return await self._call(Health, "GET", "/health")

    def _headers(self) -> dict[str, str]:
        """Every request's headers, and the one place a request is refused before it is
        sent (every call asks for them first)."""
        if self._refusal is not None:
            raise InsecureTransport(self._refusal)
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: BaseModel | None = None,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        content: Any = None,
        request_timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = self._headers() | (headers or {})
        data = None
        if body is not None:
            data = body.model_dump_json().encode()
            headers["Content-Type"] = "application/json"
        replayable = content is None or isinstance(content, bytes)
        timeout_s = self._timeout if request_timeout is None else request_timeout
        for attempt in range(_RATE_LIMIT_RETRIES + 1):
            with httpx_errors_as_ours(_UNREACHABLE, self.base_url):
                if replayable:
                    response = await self._send_direct(
                        method,
                        url,
                        data if content is None else content,
                        params,
                        headers,
                        timeout_s,
                    )
                else:
                    response = await self._http.request(
                        method,
                        url,
                        content=content,
                        params=params,
                        headers=headers,
                        timeout=timeout_s,
                    )
            if not response.is_error:
                return response
            rejection = _rejection(response)
            if not (
                isinstance(rejection, RateLimited) and replayable and attempt < _RATE_LIMIT_RETRIES
            ):
                raise rejection
            # Refused before it was handled, so sending it again is safe.
            await anyio.sleep(min(rejection.retry_after_s or 1.0, _RATE_LIMIT_MAX_WAIT_S))
        raise AssertionError("unreachable")

    async def _send_direct(
        self,
        method: str,
        url: str,
        content: bytes | None,
        params: dict[str, Any] | list[tuple[str, Any]] | None,
        headers: dict[str, str],
        timeout_s: float,
    ) -> httpx.Response:
        """A request with its whole body at hand, handed to the transport itself.

        `AsyncClient.request` costs about 0.15 ms of CPU more per call (URL merging, cookie
        jar, auth and redirect flows, none of which the coordinator's API uses); the lease
        calls are small and frequent, so that was a tenth of a client's work.
        """
        timeouts = self._timeouts.get(timeout_s)
        if timeouts is None:
            if len(self._timeouts) > 32:  # callers use a handful of values; bound it anyway
                self._timeouts.clear()
            timeouts = self._timeouts[timeout_s] = httpx.Timeout(timeout_s).as_dict()
        request = httpx.Request(
            method,
            f"{self.base_url}/v1{url}",
            params=params,
            headers=headers,
            content=content,
            extensions={"timeout": timeouts},
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _call(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        response = await self._request(method, url, **kwargs)
        return model.model_validate_json(response.content)

    async def _call_list(self, model: type[M], method: str, url: str, **kwargs: Any) -> list[M]:
        response = await self._request(method, url, **kwargs)
        return TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]
