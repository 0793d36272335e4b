"""The replicator service between a real local and a real cloud influxd, with a misbehaving
proxy in front of the cloud: every fault degrades `/health` with its reason and is retried;
nothing is lost, nothing becomes a dead letter that should not, the process never dies."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from energymon.backoff import Backoff
from energymon.clock import SystemClock
from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from harness import faultproxy
from harness.faultproxy import FaultProxy
from harness.influxd import InfluxServer
from replicator.audit import AuditConfig, AuditThread
from replicator.service import ReplicatorService, ServiceConfig
from tests.replicator.helpers import HOME, T0, Rig, points, reading


@pytest.fixture
def proxy(cloud_server: InfluxServer) -> Iterator[FaultProxy]:
    with FaultProxy(cloud_server.http_port) as p:
        yield p


def _service(rig: Rig, cloud: InfluxClient, **config: float) -> ReplicatorService:
    return ReplicatorService(
        replicator=rig.replicator(cloud),
        backoff=Backoff(1.0, 60.0),
        clock=rig.clock,
        config=ServiceConfig(
            HOME,
            cloud.url,
            poll_interval_s=0.5,
            audit=AuditConfig(
                HOME,
                verify_interval_s=float(config.get("verify_interval_s", 86400)),
                verify_days=1,
                verify_repair=True,
            ),
        ),
    )


def _via(proxy: FaultProxy, rig: Rig, timeout_s: float = 5.0) -> InfluxClient:
    return InfluxClient(proxy.url, rig.cloud.database, timeout_s=timeout_s)


def _readings(rig: Rig, first: int, count: int) -> None:
    rig.write_readings(
        [reading("mega-01", s, i, T0 + i * 1000) for s in ("a", "b") for i in range(first, count)]
    )


def _until_caught_up(service: ReplicatorService, steps: int = 50) -> None:
    for _ in range(steps):
        delay = service.run_once()
        if delay > 0 and service.health().status == "ok":
            return
        service.clock.advance(max(delay, 0.1))  # type: ignore[attr-defined]
    raise AssertionError(f"not caught up: {service.health()}")


def test_a_redirect_loses_nothing_and_names_its_target(
    rig: Rig, proxy: FaultProxy, cloud_server: InfluxServer
) -> None:
    _readings(rig, 1, 300)
    service = _service(rig, _via(proxy, rig))
    service.run_once()  # bootstrap: the cloud is empty
    proxy.set(faultproxy.redirect(307, cloud_server.url, paths=["/write"]))
    for _ in range(3):
        service.run_once()
        rig.clock.advance(61)
    health = service.health()
    assert health.status == "degraded"
    assert any(f"redirect (307) to {cloud_server.url}/write" in p for p in health.problems)
    assert points(rig.cloud) == set()  # nothing acknowledged by an empty write
    assert health.watermark_ms is not None and health.watermark_ms <= T0 + 1000
    proxy.clear()
    _until_caught_up(service)
    assert points(rig.cloud) == points(rig.local)
    assert rig.dead_letters().count() == 0


@pytest.mark.parametrize(
    "fault",
    [
        faultproxy.status(404, b"404 page not found\n", paths=["/write"], count=6),
        faultproxy.status(408, b"", paths=["/write"], count=6),
        faultproxy.status(200, b"<html>captive portal</html>", paths=["/write"], count=6),
    ],
)
def test_a_burst_of_proxy_errors_is_waited_out_without_dead_letters(
    rig: Rig, proxy: FaultProxy, fault: faultproxy.Fault
) -> None:
    service = _service(rig, _via(proxy, rig))
    _readings(rig, 1, 200)
    service.run_once()
    proxy.set(fault)
    service.run_once()
    assert service.health().status == "degraded"
    assert f"answered {fault.status}" in (service.health().last_error or "")
    _until_caught_up(service)
    assert rig.dead_letters().count() == 0
    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud)) == 2 * 199


def test_a_failing_verification_degrades_health_and_is_retried(
    rig: Rig, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="replicator.audit")
    _readings(rig, 1, 300)
    service = _service(rig, _via(proxy, rig), verify_interval_s=60)
    _until_caught_up(service)
    # The checks' thread, stepped here instead of running on its own.
    checks = service.audit_thread = AuditThread(service.auditor, idle_s=1.0, error_delay_s=60.0)
    _until_checked(service, checks)
    first = service.health().verify
    assert first is not None
    # The cloud answers writes but not queries, as when its query path is overloaded.
    proxy.set(faultproxy.status(500, b"query engine overloaded", paths=["/query"]))
    for _ in range(5):
        rig.clock.advance(61)
        service.run_once()  # never raises
        checks.run_once()  # never raises either
    health = service.health()
    logged = [r for r in caplog.records if "verification slice failed" in r.getMessage()]
    assert len(logged) == 1, "logged once, not at every attempt"
    assert "query engine overloaded" in logged[0].getMessage()
    assert health.status == "degraded"
    assert any(p.startswith("checks failing") for p in health.problems)
    assert "answered 500: query engine overloaded" in " ".join(health.problems)
    assert health.verify == first
    assert health.consecutive_failures == 0
    assert points(rig.cloud) == points(rig.local)  # replication went on meanwhile
    proxy.clear()
    rig.clock.advance(120)
    service.run_once()
    _until_checked(service, checks, after=first)
    assert any("the checks work again" in r.getMessage() for r in caplog.records)
    health = service.health()
    assert health.verify is not None and health.verify != first
    assert health.verify.unresolved_hours == 0
    assert health.status == "ok", health.problems


def _until_checked(service: ReplicatorService, checks: AuditThread, after: object = None) -> None:
    """Step the checks until they produce a verdict other than `after`."""
    for _ in range(200):
        checks.run_once()
        if service.auditor.summary() not in (None, after):
            return
        service.run_once()
    raise AssertionError("the checks never produced a verdict")


def test_retry_after_as_a_date_sets_the_back_off(rig: Rig, proxy: FaultProxy) -> None:
    service = _service(rig, _via(proxy, rig))
    _readings(rig, 1, 50)
    service.run_once()
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=45), usegmt=True)
    proxy.set(faultproxy.status(408, headers=[("Retry-After", when)], paths=["/write"]))
    assert 40 < service.run_once() <= 45
    assert rig.dead_letters().count() == 0


def test_a_trickling_cloud_is_cut_at_the_deadline_and_reported(rig: Rig, proxy: FaultProxy) -> None:
    service = _service(rig, _via(proxy, rig, timeout_s=1.0))
    _readings(rig, 1, 50)
    service.run_once()
    proxy.set(faultproxy.trickle(0.4, paths=["/write"]))
    began = time.monotonic()
    service.run_once()
    assert time.monotonic() - began < 2.5
    health = service.health()
    assert health.status == "degraded"
    assert "deadline of 1 s" in (health.last_error or "")
    proxy.clear()
    _until_caught_up(service)
    assert points(rig.cloud) == points(rig.local)


def test_a_body_limit_splits_batches_until_they_pass(rig: Rig, proxy: FaultProxy) -> None:
    rig.batch_size = 2000
    service = _service(rig, _via(proxy, rig))
    _readings(rig, 1, 1500)
    service.run_once()
    # A front proxy that resets any request whose body passes 60 kB (about 400 points).
    proxy.set(faultproxy.reset_above(60_000, paths=["/write"]))
    _until_caught_up(service, steps=30)
    assert points(rig.cloud) == points(rig.local)
    limit = service.replicator.sink.stats.batch_limit
    assert limit < 400
    # An hour later a larger batch is tried again.
    proxy.clear()
    rig.clock.advance(3601)
    _readings(rig, 1500, 1600)
    rig.clock.advance(11)
    _until_caught_up(service)
    assert service.replicator.sink.stats.batch_limit == 2 * limit
    assert points(rig.cloud) == points(rig.local)
    assert rig.dead_letters().count() == 0


def test_dead_letters_degrade_health_and_a_passed_cause_is_replayed(
    rig: Rig, proxy: FaultProxy
) -> None:
    service = _service(rig, _via(proxy, rig))
    _readings(rig, 1, 10)
    _until_caught_up(service)
    # What an older version made of a load balancer's 404: a "refused" point.
    line = format_line("electricity", {"home": HOME, "device": "d", "sensor": "x"},
                       {"power_w": 5.0}, T0 + 500)  # fmt: skip
    rig.local.write([line])
    store = rig.dead_letters()
    store.add([line], target="cloud", reason="InfluxDB refused the request (404): 404 page "
              "not found", now_ms=rig.clock.now_ms())  # fmt: skip
    health = service.health()
    assert health.status == "degraded"
    assert any("1 dead letters" in p for p in health.problems)
    # Still failing at the next pass: kept, nothing lost.
    proxy.set(faultproxy.status(503, paths=["/write"]))
    rig.clock.advance(601)
    service.run_once()
    assert store.count() == 1
    proxy.clear()
    rig.clock.advance(601)
    service.run_once()
    assert store.count() == 0
    assert points(rig.cloud) == points(rig.local)
    assert service.health().status == "ok", service.health().problems


def test_a_point_influxdb_refuses_stays_a_dead_letter_and_health_says_so(rig: Rig) -> None:
    rig.cloud.write([format_line("derived", {"home": HOME}, {"note": "text"}, T0)])
    rig.write([format_line("derived", {"home": HOME, "k": "y"}, {"note": 7}, T0 + 500)])
    service = _service(rig, rig.cloud)
    for _ in range(3):
        service.run_once()
    rig.clock.advance(601)
    service.run_once()  # replayed, refused again
    [letter] = rig.dead_letters().list()
    assert "field type conflict" in letter.reason
    assert service.health().status == "degraded"
    assert service.health().to_json()["problems"]


def test_every_character_influxdb_stores_in_a_string_replicates(rig: Rig) -> None:
    texts = ["tab\there", "new\nline", "cr\rlf", "nul\x00", "del\x7f", 'q"uote', "back\\slash",
             "trailing\\", "\\n literally", "é ✓ 😀", ""]  # fmt: skip
    lines = []
    for i, text in enumerate(texts):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'energymon_quarantine,home={HOME},device=d,sensor=s reason="{escaped}",'
                     f"seq={i}i {T0 + i * 1000}")  # fmt: skip
    rig.write(lines)
    rig.run_until_caught_up(rig.replicator())
    assert rig.dead_letters().count() == 0
    stored = points(rig.local, "energymon_quarantine")
    assert len(stored) == len(texts)
    assert points(rig.cloud, "energymon_quarantine") == stored


def test_the_health_record_keeps_its_pace_while_replication_backs_off(
    rig: Rig, proxy: FaultProxy
) -> None:
    _readings(rig, 1, 50)
    proxy.set(faultproxy.status(503, headers=[("Retry-After", "120")]))
    service = ReplicatorService(
        replicator=rig.replicator(_via(proxy, rig)),
        backoff=Backoff(1.0, 60.0),
        clock=SystemClock(),
        config=ServiceConfig(
            HOME,
            proxy.url,
            poll_interval_s=0.5,
            audit=AuditConfig(HOME, verify_interval_s=86400, verify_days=1, verify_repair=True),
            health_interval_s=0.5,
        ),
    )
    stop = threading.Event()
    runner = threading.Thread(target=service.run_forever, args=(stop,))
    runner.start()
    try:
        time.sleep(3)
    finally:
        stop.set()
        runner.join()
    assert service.replication.failures == 1  # the cloud asked for two minutes' rest
    series = rig.local.query("SELECT replication_ok FROM energymon_health")
    records = [row for s in series for row in s.values]
    assert len(records) >= 4
    assert all(row[1] is False for row in records)
