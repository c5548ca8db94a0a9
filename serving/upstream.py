"""The router's and the shadow mirror's HTTP client for the model servers behind them.

aiohttp, not httpx: on the 2-core box an httpx ``AsyncClient`` spent 3.9 ms of CPU per
100-candidate ranking request and aiohttp 1.3 ms (50 req/s straight to one predictor, client
p50 13.6 vs 10.5 ms), and the router shares its machine with the servers it calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from serving.analysis._checks import require_int, require_positive


class UpstreamError(Exception):
    """No answer: connection refused or reset, a timeout, a malformed reply."""


@dataclass(frozen=True)
class UpstreamReply:
    status: int
    content: bytes


def client_session(*, max_connections: int, timeout_s: float) -> aiohttp.ClientSession:
    """An aiohttp session of at most ``max_connections`` kept-alive connections, each request
    bounded by ``timeout_s`` in all (open it inside the event loop that will use it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


class UpstreamClient:
    """POSTs bodies to upstream servers over at most ``max_connections`` kept-alive connections,
    each request bounded by ``timeout_s`` in all. The session is opened on first use, in the
    event loop that uses it (a client used from a new loop opens a new session)."""

    def __init__(self, *, timeout_s: float, max_connections: int) -> None:
        require_positive("timeout_s", timeout_s, "a number of seconds")
        require_int("max_connections", max_connections, 1)
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(self, url: str, content: bytes, content_type: str) -> UpstreamReply:
        try:
            async with self._open().post(url, data=content, headers={"content-type": content_type}) as reply:
                return UpstreamReply(reply.status, await reply.read())
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise UpstreamError(f"{type(error).__name__}: {error}") from error

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = client_session(max_connections=self.max_connections, timeout_s=self.timeout_s)
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None
