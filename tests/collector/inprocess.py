"""The collector in this process: the real store, committer and app over `httpx.ASGITransport`,
on a manual clock, against a real influxd. Also a gate in front of InfluxDB's `/write`, to hold a
write in flight or fail it, so the committer's stages can be observed one at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import requests
from starlette.applications import Starlette

from collector.app import ApiConfig, build_app
from collector.committer import GroupCommitter
from collector.statedb import StateDB
from collector.store import DurableStore
from energymon.clock import ManualClock
from energymon.influx import InfluxClient

DEVICE = "mega-01"
KEY = "in-process-key"
START_MS = 1_700_000_000_000


@dataclass
class InProcessCollector:
    store: DurableStore
    committer: GroupCommitter
    app: Starlette
    clock: ManualClock
    client: httpx.AsyncClient

    async def post(self, body: Any, key: str = KEY) -> httpx.Response:
        return await self.client.post(
            "/api/v1/readings", json=body, headers={"Authorization": f"Bearer {key}"}
        )


@asynccontextmanager
async def in_process(
    influx: InfluxClient,
    data_dir: Path,
    *,
    spool_max_bytes: int = 10**8,
    max_inflight_bytes: int = 524_288,
    max_body_bytes: int = 262_144,
    write_timeout_s: float = 5.0,
    device_keys: dict[str, str] | None = None,
) -> AsyncIterator[InProcessCollector]:
    clock = ManualClock(START_MS)
    store = DurableStore(
        StateDB(data_dir),
        influx,
        home="h1",
        spool_max_bytes=spool_max_bytes,
        clock=clock,
        write_timeout_s=write_timeout_s,
    )
    committer = GroupCommitter(store, max_points=10_000)
    config = ApiConfig(device_keys or {DEVICE: KEY}, max_body_bytes, 1000, max_inflight_bytes)
    app = build_app(committer, clock, config)
    running = asyncio.create_task(committer.run())
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            yield InProcessCollector(store, committer, app, clock, client)
    finally:
        await committer.stop()
        await running
        committer.shutdown_executor()
        # The writes' connections belong to this test's event loop.
        influx.close()
        store.db.close()


class InfluxGate:
    """An HTTP front of a real influxd whose `/write` waits while the gate is closed; `fail()`
    answers the waiting and later writes 503 instead of passing them on."""

    def __init__(self, influx_url: str) -> None:
        self.target = influx_url
        self.open = threading.Event()
        self.open.set()
        self.failing = False
        self.writes_waiting = 0
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.startswith("/write"):
                    with gate._lock:
                        gate.writes_waiting += 1
                    gate.open.wait()
                    with gate._lock:
                        gate.writes_waiting -= 1
                    if gate.failing:
                        self._answer(503, b'{"error":"gate failing"}', "application/json")
                        return
                self._forward(body)

            def _forward(self, body: bytes | None) -> None:
                response = requests.request(
                    self.command,
                    gate.target + self.path,
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=30,
                )
                content_type = response.headers.get("Content-Type", "application/json")
                self._answer(response.status_code, response.content, content_type)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Influxdb-Version", "1.6.7")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold(self) -> None:
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def fail(self) -> None:
        self.failing = True
        self.open.set()

    def close(self) -> None:
        self.open.set()
        self._server.shutdown()
        self._server.server_close()
