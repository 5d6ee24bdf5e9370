"""A client's TCP connection, for the simulated terminals and platforms."""

from __future__ import annotations

import asyncio


class TcpClient:
    """Holds one asyncio stream connection."""

    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int, patience_s: float = 0.0) -> None:
        """Connect; with ``patience_s``, keep trying that long (a server still starting)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience_s
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(host, port)
                return
            except OSError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self._writer = None
