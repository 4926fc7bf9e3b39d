"""A TCP forwarder to PostgreSQL that counts what each client sends: statements and round trips, per listener.

PostgreSQL on this machine listens on 127.0.0.1 only; a worker host in a network namespace reaches it through this
forwarder, listening on the host's service address. Passing through, it reads the frontend protocol
(https://www.postgresql.org/docs/current/protocol-message-formats.html): each Query ('Q', which may hold several
statements: counted as one) and each Execute ('E') is a statement; a round trip is counted each time the client
speaks again after the server has answered, so a pipeline of several statements sent together is one. SSL is not
spoken (connect with `sslmode=disable`): an encrypted stream could not be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

STARTUP_CODES = {80877103, 80877104, 80877102}  # SSLRequest, GSSENCRequest, CancelRequest: answered, then startup


@dataclass
class WireCounts:
    connections: int = 0
    statements: int = 0
    round_trips: int = 0
    messages: Counter[str] = field(default_factory=Counter)  # by protocol message type


class FrontendReader:
    """Splits the client's byte stream into protocol messages, however TCP cut it."""

    def __init__(self, counts: WireCounts) -> None:
        self.counts = counts
        self.buffer = b""
        self.started = False  # before the startup message, messages have no type byte

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!II", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                self.started = code not in STARTUP_CODES
                continue
            if len(self.buffer) < 5:
                return
            kind, length = chr(self.buffer[0]), struct.unpack("!I", self.buffer[1:5])[0]
            if len(self.buffer) < 1 + length:
                return
            self.buffer = self.buffer[1 + length :]
            self.counts.messages[kind] += 1
            if kind in "QE":
                self.counts.statements += 1


class CountingForwarder:
    """Listens on (label, address) pairs, each on a port of its own choosing, and forwards every connection to
    `upstream`. `counts[label]` adds up what came through that listener; `port_of(label)` says where it listens."""

    def __init__(self, listeners: list[tuple[str, str]], upstream: tuple[str, int]) -> None:
        self.listeners = listeners
        self.upstream = upstream
        self.counts: dict[str, WireCounts] = {label: WireCounts() for label, _ in listeners}
        self._ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-forwarder", daemon=True)

    def start(self) -> CountingForwarder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> CountingForwarder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def port_of(self, label: str) -> int:
        return self._ports[label]

    def snapshot(self) -> dict[str, WireCounts]:
        """A copy of the counts so far, per listener."""
        with self._lock:
            return {
                label: WireCounts(c.connections, c.statements, c.round_trips, Counter(c.messages))
                for label, c in self.counts.items()
            }

    async def _listen(self) -> None:
        for label, address in self.listeners:
            server = await asyncio.start_server(
                lambda r, w, label=label: self._forward(label, r, w), address, 0, reuse_address=True
            )
            self._servers.append(server)
            self._ports[label] = server.sockets[0].getsockname()[1]

    async def _forward(self, label: str, client_reader, client_writer) -> None:
        counts = self.counts[label]
        reader = FrontendReader(counts)
        state = {"answered": True}  # the server has spoken since the client last did
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        with self._lock:
            counts.connections += 1

        async def from_client() -> None:
            while data := await client_reader.read(65536):
                with self._lock:
                    if state["answered"]:
                        counts.round_trips += 1
                        state["answered"] = False
                    reader.feed(data)
                server_writer.write(data)
                await server_writer.drain()

        async def from_server() -> None:
            while data := await server_reader.read(65536):
                state["answered"] = True
                client_writer.write(data)
                await client_writer.drain()

        pumps = [asyncio.ensure_future(from_client()), asyncio.ensure_future(from_server())]
        try:
            # When either side closes (a worker killed, the server gone), close the other.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.close()
