"""The collector's health report: the `/health` JSON users and Grafana read, and its records."""

from __future__ import annotations

import json
from pathlib import Path

from collector.health import (
    CollectorHealth,
    CounterHealth,
    DeviceHealth,
    InfluxHealth,
    SpoolHealth,
    snapshot,
)
from energymon.clock import ManualClock
from energymon.health import HealthReport
from energymon.influx import InfluxClient
from tests.collector.helpers import batch
from tests.collector.test_store import make_store, submission

NOW_MS = 1_700_000_060_000


def report(
    *, reachable: bool | None = True, depth_points: int = 0, parked_points: int = 0
) -> CollectorHealth:
    return CollectorHealth(
        now_ms=NOW_MS,
        influx=InfluxHealth(reachable, "http://127.0.0.1:8086"),
        spool=SpoolHealth(depth_points, 2048, 10**6, 1),
        parked_points=parked_points,
        devices={
            'Küche "alt"': DeviceHealth(
                boot=2,
                last_seq=None,
                last_reading_ms=None,
                reading_age_s=None,
                last_contact_age_s=1.5,
                dropped=37,
                meter_errors={"pzem2": 5, "pzem3": 12},
            ),
            "mega-01": DeviceHealth(
                boot=1,
                last_seq=9,
                last_reading_ms=NOW_MS - 2500,
                reading_age_s=2.5,
                last_contact_age_s=2.0,
                dropped=0,
                meter_errors={},
            ),
        },
        counters=CounterHealth(
            accepted=10, duplicates=2, quarantined=1, spooled_points=6, group_commits=5
        ),
    )


def test_json_keeps_every_key_in_its_order() -> None:
    expected = {
        "status": "degraded",
        "influx": {"reachable": True, "url": "http://127.0.0.1:8086"},
        "spool": {"depth_points": 6, "bytes": 2048, "max_bytes": 1000000, "full_refusals": 1},
        "parked_points": 4,
        "devices": {
            'Küche "alt"': {
                "boot": 2,
                "last_seq": None,
                "last_reading_ms": None,
                "age_s": None,
                "last_contact_age_s": 1.5,
                "dropped": 37,
                "meter_errors": {"pzem2": 5, "pzem3": 12},
            },
            "mega-01": {
                "boot": 1,
                "last_seq": 9,
                "last_reading_ms": NOW_MS - 2500,
                "age_s": 2.5,
                "last_contact_age_s": 2.0,
                "dropped": 0,
                "meter_errors": {},
            },
        },
        "counters": {
            "accepted": 10,
            "duplicates": 2,
            "quarantined": 1,
            "spooled_points": 6,
            "group_commits": 5,
            "refused_not_durable": 1,
        },
        "reasons": [
            "6 acknowledged points wait in the spool",
            "4 acknowledged points are parked: InfluxDB refused them",
        ],
    }
    # Serialised, so that the order of the keys counts too.
    assert json.dumps(report(depth_points=6, parked_points=4).to_json()) == json.dumps(expected)


def test_status_is_degraded_while_influx_is_down_or_the_spool_holds_points() -> None:
    assert report().status == "ok"
    assert report(reachable=None).status == "ok"
    assert report(reachable=False).status == "degraded"
    assert report(depth_points=1).status == "degraded"
    assert report(reachable=False).to_json()["status"] == "degraded"


def test_status_is_degraded_while_acknowledged_points_sit_parked() -> None:
    parked = report(parked_points=1)
    assert parked.status == "degraded"
    assert parked.to_json()["reasons"] == [
        "1 acknowledged points are parked: InfluxDB refused them"
    ]


def test_lines_one_for_the_collector_and_one_per_device() -> None:
    assert report(reachable=None, parked_points=4).to_lines("h1") == [
        "energymon_health,component=collector,home=h1 influx_reachable=true,spool_points=0i,"
        "spool_bytes=2048i,spool_full_refusals=1i,parked_points=4i,accepted=10i,duplicates=2i,"
        f"quarantined=1i,group_commits=5i,devices=2i {NOW_MS}",
        'energymon_health,component=collector,device=Küche\\ "alt",home=h1 boot=2i,'
        f"last_contact_age_s=1.5,dropped=37i,meter_errors=17i {NOW_MS}",
        "energymon_health,component=collector,device=mega-01,home=h1 boot=1i,"
        f"last_contact_age_s=2.0,dropped=0i,meter_errors=0i,last_seq=9i,reading_age_s=2.5 {NOW_MS}",
    ]
    assert (
        report(reachable=False)
        .to_lines("h1")[0]
        .startswith("energymon_health,component=collector,home=h1 influx_reachable=false,")
    )


def test_the_collector_reports_like_the_replicator() -> None:
    assert isinstance(report(), HealthReport)


def test_snapshot_of_a_real_store(influx: InfluxClient, tmp_path: Path) -> None:
    arrival_ms = NOW_MS - 10_000
    store = make_store(influx, tmp_path, ManualClock(arrival_ms))
    body = batch(range(1, 4), uptime_ms=5000)
    body["dropped"] = 3
    body["meter_errors"] = {"pzem2": 1}
    [outcome] = store.commit([submission(body, arrival_ms)])
    assert outcome.accepted == 3
    health = snapshot(store, NOW_MS)
    assert health.status == "ok" and health.influx.reachable is True
    assert health.counters == CounterHealth(
        accepted=3, duplicates=0, quarantined=0, spooled_points=0, group_commits=1
    )
    assert health.spool == SpoolHealth(0, 0, 10**8, 0)
    [(name, device)] = health.devices.items()
    assert name == body["device"]
    # Reading 3 was measured at the anchor (arrival - uptime) plus its uptime.
    reading_ms = arrival_ms - 5000 + 3000
    assert device == DeviceHealth(
        boot=body["boot"],
        last_seq=3,
        last_reading_ms=reading_ms,
        reading_age_s=(NOW_MS - reading_ms) / 1000,
        last_contact_age_s=10.0,
        dropped=3,
        meter_errors={"pzem2": 1},
    )
    store.db.close()
