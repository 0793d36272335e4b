from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from energymon.backoff import Backoff
from energymon.influx import InfluxClient
from energymon.settings import Settings
from energymon_cli.main import main
from replicator.audit import AuditConfig
from replicator.health import HealthServer
from replicator.points import TimeRange
from replicator.restore import Restorer
from replicator.service import ReplicatorService, ServiceConfig
from replicator.sink import BatchSink
from replicator.verify import HOUR_MS, verify
from tests.replicator.helpers import HOME, T0, Rig, points, reading

DAY = 24 * HOUR_MS


def _three_hours(rig: Rig) -> None:
    rig.write_readings(
        [reading("d", s, i, T0 - 3 * HOUR_MS + i * 10_000) for s in ("a", "b") for i in range(1080)]
    )


def test_verify_finds_and_repairs_a_hole_made_in_the_cloud(
    rig: Rig, use_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _three_hours(rig)
    rig.run_until_caught_up(rig.replicator())
    hole = T0 - 2 * HOUR_MS
    rig.cloud.query(
        f"DELETE FROM electricity WHERE sensor = 'b' "
        f"AND time >= {hole}ms AND time < {hole + 600_000}ms",
        method="POST",
    )
    window = TimeRange(T0 - DAY, T0)
    sink = BatchSink(rig.cloud, rig.dead_letters(), rig.clock, batch_size=100, target="cloud")

    found = verify(rig.local, rig.cloud, sink, HOME, window, repair=False)
    assert [(m.hour_ms, m.series, m.local_points - m.cloud_points) for m in found.mismatches] == [
        (hole - hole % HOUR_MS, "device=d,sensor=b", 60)
    ]
    assert sink.stats.points == 0

    use_settings(
        data_dir=rig.data_dir,
        home=HOME,
        cloud_url=rig.cloud.url,
        cloud_db=rig.cloud.database,
        influx_url=rig.local.url,
        influx_db=rig.local.database,
    )
    assert main(["replicator", "verify", "--since", "2023-11-13", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "device=d,sensor=b" in out
    assert "1 repaired, 0 still different" in out
    assert verify(rig.local, rig.cloud, sink, HOME, window, repair=False).ok
    assert points(rig.cloud) == points(rig.local)


def test_restore_into_an_empty_local_influxdb_resumes_after_an_interruption(
    rig: Rig, tmp_path: Path
) -> None:
    _three_hours(rig)
    rig.run_until_caught_up(rig.replicator())
    fresh = InfluxClient(rig.local.url, rig.local.database + "_restored")
    sink = BatchSink(fresh, rig.dead_letters(), rig.clock, batch_size=100, target="local")

    def restorer() -> Restorer:
        return Restorer(
            cloud=rig.cloud,
            sink=sink,
            state_path=tmp_path / "restore.json",
            clock=rig.clock,
            home=HOME,
            window_ms=HOUR_MS,
        )

    first = restorer()
    plan = first.run_once(first.plan(None))
    assert not plan.done
    # Interrupted: a new process continues from the saved position.
    second = restorer()
    plan = second.plan(None)
    assert plan.position_ms > plan.since_ms
    while not plan.done:
        plan = second.run_once(plan)
    assert first.copied_points + second.copied_points == 2160
    assert points(fresh) == points(rig.local)
    fields = {tuple(r) for s in fresh.query("SHOW FIELD KEYS") for r in s.values}
    assert ("energy_wh", "integer") in fields
    assert ("voltage_v", "float") in fields


def test_service_reports_health_and_verifies(rig: Rig) -> None:
    _three_hours(rig)
    service = ReplicatorService(
        replicator=rig.replicator(),
        backoff=Backoff(1.0, 60.0),
        clock=rig.clock,
        config=ServiceConfig(
            HOME,
            rig.cloud.url,
            poll_interval_s=0.5,
            audit=AuditConfig(HOME, verify_interval_s=86400, verify_days=1, verify_repair=True),
        ),
    )
    while service.run_once() == 0:
        pass
    # The checks run on their own thread in the service; here, one slice after the other.
    service.auditor.run_until_idle()
    service.run_once()
    health = service.health()
    assert health.lag_s == 1.0
    assert health.consecutive_failures == 0
    assert health.verify is not None and health.verify.checked_hours == 24
    assert health.verify.mismatched_hours == 0
    server = HealthServer("127.0.0.1", 0, service.health)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health") as response:
            body = json.load(response)
    finally:
        server.stop()
    assert body["status"] == "ok"
    assert body["dead_letters"] == 0
    assert body["backlog_points"] == 1  # the previous health record, not a second old yet
    records = rig.local.query("SELECT * FROM energymon_health WHERE component = 'replicator'")[0]
    [record] = list(records.records())
    assert record["verify_ok"] is True
    assert record["replication_lag_s"] == 1

    # The cloud goes away: failures are counted and back off; the health record still goes out.
    rig.cloud.url = "http://127.0.0.1:9"
    rig.clock.advance(61)
    delays = [service.run_once() for _ in range(4)]
    assert delays[0] < delays[-1]
    assert service.health().consecutive_failures == 4
    assert service.health().status == "degraded"
    assert (
        len(
            list(
                rig.local.query("SELECT * FROM energymon_health WHERE component = 'replicator'")[
                    0
                ].records()
            )
        )
        == 2
    )
