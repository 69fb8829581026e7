"""What the stores that speak HTTP share: one aiohttp session, opened and closed with the store,
and the watch streams that closing it cuts."""

from __future__ import annotations

import aiohttp

from minga.errors import DiscoveryError

MAX_LINE = 256 * 1024 * 1024
"""The longest line a watch stream may send (bytes): a snapshot of a large registry is one line,
some 60 bytes an instance, far past aiohttp's own 128 KiB line limit."""


class LineReader:
    """Reads the lines of a streamed response, however long (up to ``limit`` bytes each)."""

    def __init__(self, resp: aiohttp.ClientResponse, limit: int = MAX_LINE) -> None:
        self.resp = resp
        self.limit = limit
        self._buffer = bytearray()

    async def readline(self) -> bytes:
        """The next line with its ``\n``; what is left without one at the end of the stream; ``b""``
        after it. Raises :class:`~minga.errors.DiscoveryError` for a line over the limit."""
        buffer = self._buffer
        start = 0
        while (end := buffer.find(b"\n", start)) < 0:
            start = len(buffer)
            if start > self.limit:
                raise DiscoveryError(f"a watch line over {self.limit} bytes")
            chunk = await self.resp.content.readany()
            if not chunk:
                line = bytes(buffer)
                buffer.clear()
                return line
            buffer += chunk
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return line


class SessionStore:
    """The session part of a store: :meth:`open`, :meth:`close`, :attr:`closed`.

    ``headers`` go with every request (a credential, say).
    ``timeout`` (seconds) bounds each request. Closing ends every open watch stream; its
    watcher's iteration then ends rather than raising. ``_what`` names the store in errors.
    """

    _what = "the store"

    def __init__(self, timeout: float, headers: dict[str, str] | None = None) -> None:
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._watches: set[aiohttp.ClientResponse] = set()

    @property
    def closed(self) -> bool:
        return self._session is None

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self._headers
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            for resp in self._watches:
                resp.close()
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        """The open session; raises :class:`~minga.errors.DiscoveryError` when the store is not open."""
        if self._session is None:
            raise DiscoveryError(f"{self._what} is not open")
        return self._session

    async def _next_line(self, lines: LineReader, watch: str) -> bytes:
        """The next line of a watch stream; ``b""`` at its end, or when the store was closed under
        it. Raises :class:`~minga.errors.DiscoveryError` naming ``watch`` when it breaks."""
        try:
            return await lines.readline()
        except aiohttp.ClientError as exc:
            if self.closed:
                return b""
            raise DiscoveryError(f"{watch} broke: {exc}") from exc
