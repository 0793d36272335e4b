"""A wall clock that jumps: the Pi's clock ran an hour ahead for half a minute (collector and
replicator alike), then NTP set it right. Replication must go on at once, the replicator's own
health records keep their pace, and the lag it reports is never negative."""

from __future__ import annotations

from energymon.backoff import Backoff
from replicator.audit import AuditConfig
from replicator.service import ReplicatorService, ServiceConfig
from tests.replicator.helpers import HOME, Rig, points, reading

JUMP_S = 3600


def _health_records(rig: Rig) -> list[int]:
    series = rig.local.query(
        "SELECT replication_ok FROM energymon_health WHERE component = 'replicator'"
    )
    return [int(row[0]) for s in series for row in s.values]


def test_a_clock_jump_neither_stalls_replication_nor_health(rig: Rig) -> None:
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
    seq = 0
    lags: list[float] = []

    def second() -> None:
        """A second of a collector stamping readings with this clock, and one step."""
        nonlocal seq
        seq += 1
        rig.write_readings([reading("mega-01", "a", seq, rig.clock.now_ms() - 300)])
        rig.clock.advance(1)
        service.run_once()
        lag = service.health().lag_s
        assert lag is not None
        lags.append(lag)

    for _ in range(20):
        second()
    rig.clock.jump(JUMP_S)
    for _ in range(30):
        second()
    # Stamped ahead and written just before the correction, too new for the forward copy: only
    # the journal can tell it is there.
    seq += 1
    rig.write_readings([reading("mega-01", "a", seq, rig.clock.now_ms() - 100)])
    rig.clock.jump(-JUMP_S)
    corrected_ms = rig.clock.now_ms()
    for _ in range(30):
        second()

    # Everything written after the correction is in the cloud at once, not an hour later.
    assert points(rig.cloud) == points(rig.local), (
        f"{len(points(rig.local) - points(rig.cloud))} points missing"
    )
    assert min(lags) >= 0
    assert lags[-1] < 5
    # The replicator's own record keeps its once-a-minute pace through and after the jump.
    for _ in range(65):
        second()
    after = [t for t in _health_records(rig) if corrected_ms <= t < corrected_ms + JUMP_S * 1000]
    assert len(after) >= 2, _health_records(rig)
    assert points(rig.cloud) == points(rig.local)
