"""Outbound HTTP to URLs that integrators chose (webhooks, marketplace stock pushes): the
guarded client and the reading of a failed request, shared by the senders.

A URL was checked when it was configured, but what a host name resolves to can change after
that (DNS rebinding), so the check is made again for every connection: host names by the
client's resolver, IP addresses written in the URL (which no resolver sees) before each request.
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from zhongtai.integrations.targets import TargetRefused, address_refusal, url_refusal


class GuardedResolver(AbstractResolver):
    """Resolves as ``inner`` does, then refuses a host any of whose addresses is internal
    (loopback, private, link-local, multicast, reserved), unless private targets are allowed.

    The HTTP client calls it for every new connection, so the address checked is the address
    connected to: a name re-pointed at an internal address after it was configured is caught.
    """

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self.inner = inner
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not self.allow_private:
            for result in results:
                refusal = address_refusal(result["host"])
                if refusal is not None:
                    raise TargetRefused(f"{host} resolves to {refusal}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def guarded_client(
    *,
    allow_private: bool,
    timeout_seconds: float,
    connections: int,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """An HTTP client whose every connection goes through :class:`GuardedResolver` (over
    ``resolver``, the system's unless given), at most ``connections`` of them open at once.

    Make it inside the event loop that uses it; post with ``allow_redirects=False`` (a redirect
    could lead anywhere) after :func:`check_url_address`.
    """
    guarded = GuardedResolver(resolver or aiohttp.ThreadedResolver(), allow_private=allow_private)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0, resolver=guarded),
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        # Receivers' cookies are never sent back; and no proxy from the environment could
        # carry a request past the guard.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


def check_url_address(url: str, *, allow_private: bool) -> None:
    """Raises :class:`TargetRefused` when ``url`` may not be requested by the URL alone: an
    address written in it never reaches the resolver, so it is checked here."""
    refusal = url_refusal(url, allow_private=allow_private)
    if refusal is not None:
        raise TargetRefused(refusal)


def refusal_behind(exc: BaseException) -> TargetRefused | None:
    """The guard's refusal that made a request fail, if that is why it failed (the connector
    reports a refusal by :class:`GuardedResolver` as a failed lookup)."""
    if isinstance(exc, TargetRefused):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and isinstance(exc.os_error, TargetRefused):
        return exc.os_error
    return None


def failure_reason(exc: Exception, *, timeout_seconds: float, allow_hint: str) -> str | None:
    """What to record of a request that raised ``exc``: a refused target (with ``allow_hint``,
    the setting that would allow it), no answer in time, or a network error; None when ``exc``
    is none of these, i.e. unexpected (the caller logs it)."""
    refused = refusal_behind(exc)
    if refused is not None:
        return f"not sent: {refused}; {allow_hint}"
    if isinstance(exc, TimeoutError):
        return f"TimeoutError: no answer within {timeout_seconds}s"
    if isinstance(exc, aiohttp.ClientError):
        return f"{type(exc).__name__}: {exc}"
    return None
