"""The one HTTP/1.1 client to model workers: keep-alive connections pooled per worker, on
the server's own event loop (no thread hop on the invocation path); batch transform's
threads use it through :class:`BlockingWorkerClient`."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Mapping


class WorkerUnavailable(Exception):
    """The worker could not be reached or closed the connection without an answer."""


class WorkerTimeout(WorkerUnavailable):
    """The worker took the request but did not answer in time (not worth retrying)."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class WorkerPool:
    """Idle keep-alive connections to one worker."""

    def __init__(self, host: str, port: int, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._idle: list[Connection] = []

    async def _connect(self) -> Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as e:
            raise WorkerUnavailable(f"cannot connect to the model server: {e}") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def request(self, method: str, path: str, body: bytes,
                      headers: Mapping[str, str], timeout: float = 60.0,
                      host: str | None = None) -> Response:
        """``host``: the Host header to send (default: the worker's address)."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {host or f'{self.host}:{self.port}'}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        while self._idle:  # a reused connection may have been closed by the worker: retry
            conn = self._idle.pop()
            try:
                return await self._timed(conn, payload, timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                continue
        conn = await self._connect()
        try:
            return await self._timed(conn, payload, timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            raise WorkerUnavailable(f"the model server closed the connection: {e}") from None

    async def _timed(self, conn: Connection, payload: bytes, timeout: float) -> Response:
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(conn, payload)
        except TimeoutError:
            raise WorkerTimeout(f"the model server did not answer within {timeout:g} "
                                    "seconds") from None

    async def _exchange(self, conn: Connection, payload: bytes) -> Response:
        reader, writer = conn
        try:
            writer.write(payload)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")  # the whole head at once
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(None, 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:
                body = await reader.read()
                headers["connection"] = "close"
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close" or len(self._idle) >= self.max_idle:
            writer.close()
        else:
            self._idle.append(conn)
        return Response(status, headers, body)

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readline()


class BlockingWorkerClient:
    """The same client for threads off any event loop (a batch transform's senders): the
    pools live on a private loop thread, started on the first request."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._pools: dict[tuple[str, int], WorkerPool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def request(self, port: int, method: str, path: str, body: bytes,
                headers: Mapping[str, str], timeout: float = 60.0,
                host: str | None = None) -> Response:
        """The answer of the worker at ``host`` (default: this client's) and ``port``;
        WorkerUnavailable (WorkerTimeout) as for ``WorkerPool``."""
        where = (host or self.host, port)
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(self._loop,), daemon=True,
                                 name="worker-client").start()
            pool = self._pools.get(where)
            if pool is None:
                pool = self._pools[where] = WorkerPool(*where)
            loop = self._loop
        call = pool.request(method, path, body, headers, timeout)
        return asyncio.run_coroutine_threadsafe(call, loop).result()

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
            pools = list(self._pools.values())
            self._pools.clear()
        if loop is None:
            return

        async def shut() -> None:
            for pool in pools:
                pool.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()
