"""The replicator's health: `GET /health` and a record in `energymon_health` every minute.

`ReplicatorHealth` follows `energymon.health`'s conventions. The record is written into the
local InfluxDB at the current time, so the replicator carries it to the cloud like any other
point: a home whose records stop arriving has gone quiet.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from energymon.health import HealthReport, Status, health_line
from energymon.lineproto import FieldValue

log = logging.getLogger(__name__)

COMPONENT = "replicator"


@dataclass(frozen=True, slots=True)
class VerifySummary:
    finished_ms: int
    checked_hours: int
    mismatched_hours: int
    repaired_hours: int
    unresolved_hours: int


@dataclass(frozen=True, slots=True)
class ReplicatorHealth:
    now_ms: int
    cloud_url: str
    watermark_ms: int | None
    backlog_points: int | None
    last_success_ms: int | None
    consecutive_failures: int
    last_error: str | None
    dead_letters: int
    verify: VerifySummary | None
    # Why the service cannot do its whole job right now, one sentence each; none: "ok".
    problems: tuple[str, ...] = ()

    @property
    def lag_s(self) -> float | None:
        """How far the cloud copy is behind; never negative, even when the wall clock went
        back behind the watermark (the next step pulls the watermark back to it)."""
        if self.watermark_ms is None:
            return None
        return max(0, self.now_ms - self.watermark_ms) / 1000

    @property
    def status(self) -> Status:
        if self.problems or self.consecutive_failures:
            return "degraded"
        if self.dead_letters or (self.verify and self.verify.unresolved_hours):
            return "degraded"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["lag_s"] = self.lag_s
        out["status"] = self.status
        out["problems"] = list(self.problems)
        return out

    def to_lines(self, home: str) -> list[str]:
        fields: dict[str, FieldValue] = {
            "status_ok": self.status == "ok",
            "replication_ok": self.consecutive_failures == 0,
            "consecutive_failures": self.consecutive_failures,
            "dead_letters": self.dead_letters,
        }
        if self.lag_s is not None:
            fields["replication_lag_s"] = float(self.lag_s)
        if self.watermark_ms is not None:
            fields["watermark_ms"] = self.watermark_ms
        if self.backlog_points is not None:
            fields["backlog_points"] = self.backlog_points
        if self.last_success_ms is not None:
            fields["last_success_ms"] = self.last_success_ms
        if self.verify is not None:
            v = self.verify
            fields |= {
                "verify_finished_ms": v.finished_ms,
                "verify_checked_hours": v.checked_hours,
                "verify_mismatched_hours": v.mismatched_hours,
                "verify_repaired_hours": v.repaired_hours,
                "verify_unresolved_hours": v.unresolved_hours,
                "verify_ok": v.unresolved_hours == 0,
            }
        return [health_line(COMPONENT, home, fields, self.now_ms)]


class HealthServer:
    """`GET /health` on its own small HTTP server thread."""

    def __init__(self, host: str, port: int, health: Callable[[], HealthReport]) -> None:
        provider = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/health":
                    self.send_error(404)
                    return
                body = json.dumps(provider().to_json()).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # One line per request would drown the meaningful events.
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("health on http://%s:%d/health", self._server.server_address[0], self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
