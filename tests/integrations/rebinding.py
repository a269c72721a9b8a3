"""A DNS under the test's control, for the outbound guard's checks at connection time."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class EverythingIsLoopback(AbstractResolver):
    """A DNS whose every name now points at this machine (a name re-pointed after it was
    checked at subscription or connection, as in DNS rebinding)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ]

    async def close(self) -> None:
        return None
