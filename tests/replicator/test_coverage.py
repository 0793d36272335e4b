"""Whole-history coverage on real influxd processes: losses older than any recent window, in
the cloud or in the replicator's own position, are found and re-copied without an operator."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from energymon import journal
from energymon.errors import InfluxError
from energymon.influx import InfluxClient
from energymon.settings import Settings
from energymon_cli.main import main
from replicator.audit import AuditConfig, Auditor, AuditThread
from replicator.engine import Replicator
from replicator.sink import BatchSink
from replicator.verify import DAY_MS, HOUR_MS
from tests.replicator.helpers import HOME, T0, Rig, points, reading

DAYS = 10
CONFIG = AuditConfig(
    home=HOME,
    verify_interval_s=86400,
    verify_days=3,
    verify_repair=True,
    history_check_interval_s=86400,
    cloud_check_interval_s=300,
    exact_cycle_s=7 * 86400,
)


def _history(rig: Rig) -> None:
    """Ten days, a reading every ten minutes from two sensors, replicated."""
    start = T0 - DAYS * DAY_MS
    rig.write_readings(
        [reading("d", s, i, start + i * 600_000) for s in ("a", "b") for i in range(DAYS * 144)]
    )


def _auditor(rig: Rig, replicator: Replicator, **config: float) -> Auditor:
    return Auditor(
        replicator=replicator,
        local=rig.local,
        cloud=rig.cloud,
        sink=BatchSink(rig.cloud, rig.dead_letters(), rig.clock, batch_size=500, target="cloud"),
        clock=rig.clock,
        config=replace(CONFIG, **config),  # type: ignore[arg-type]
        state_path=rig.data_dir / "replicator" / "audit.json",
    )


def _delete_in_cloud(rig: Rig, start_ms: int, end_ms: int) -> None:
    rig.cloud.query(
        f"DELETE FROM electricity WHERE time >= {start_ms}ms AND time < {end_ms}ms", method="POST"
    )


def test_a_lost_state_file_reconciles_the_whole_history_and_resumes(rig: Rig) -> None:
    _history(rig)
    rig.run_until_caught_up(rig.replicator())
    # Lost eight days ago, long before any recent window; then the state file goes too.
    _delete_in_cloud(rig, T0 - 8 * DAY_MS, T0 - 8 * DAY_MS + 3 * HOUR_MS)
    (rig.data_dir / "replicator" / "state.json").unlink()
    first = rig.replicator()
    for _ in range(5):
        first.run_once()
    state = first.state
    assert state is not None and state.reconcile is not None
    assert T0 - DAYS * DAY_MS < state.reconcile.position_ms < T0 - 8 * DAY_MS
    # Killed: the next process resumes the reconciliation where the file says.
    second = rig.replicator()
    assert second.state == state
    rig.run_until_caught_up(second)
    assert second.state is not None and second.state.reconcile is None
    assert points(rig.cloud) == points(rig.local)


def _recreate_journal(rig: Rig) -> None:
    path = rig.data_dir / journal.STATE_DB_NAME
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        for statement in (journal.SCHEMA, *journal.IDENTITY_SCHEMA):
            conn.execute(statement)


def test_a_recreated_journal_whose_ids_pass_the_cursor_is_detected(rig: Rig) -> None:
    for i in range(5):
        rig.write_readings([reading("d", "a", i, T0 - HOUR_MS + i * 1000)])
    replicator = rig.replicator()
    rig.clock.advance(11)
    rig.run_until_caught_up(replicator)
    assert replicator.state is not None and replicator.state.journal_cursor == 5
    # Recreated under the running replicator, which still has the old file open.
    _recreate_journal(rig)
    # Seven late writes from nine days ago, journalled as 1..7 in the new journal.
    late = [reading("late", "a", i, T0 - 9 * DAY_MS + i * 1000) for i in range(7)]
    for r in late:
        rig.write_readings([r])
    rig.clock.advance(11)
    rig.run_until_caught_up(replicator)
    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud)) == 12


def test_unjournalled_late_data_of_ten_days_ago_is_found_by_the_daily_sweep(rig: Rig) -> None:
    _history(rig)
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    rig.write_readings([reading("x", "a", 1, T0 - DAYS * DAY_MS + 5)], journal_entry=False)
    auditor = _auditor(rig, replicator)
    auditor.run_until_idle()
    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud)) == DAYS * 288 + 1


def test_a_dropped_cloud_database_is_noticed_and_the_whole_history_copied_again(
    rig: Rig,
) -> None:
    _history(rig)
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    auditor = _auditor(rig, replicator)
    auditor.run_until_idle()
    assert auditor.baseline is not None and auditor.baseline.cloud_points == DAYS * 288
    rig.cloud.query(f'DROP DATABASE "{rig.cloud.database}"', database=None, method="POST")
    rig.cloud.create_database()  # the operator's `energymon cloud add-home`, or the replicator
    rig.clock.advance(60)
    rig.write_readings([reading("d", "a", 99_999, rig.clock.now_ms() - 5000)])
    rig.run_until_caught_up(replicator)
    assert len(points(rig.cloud)) == 1  # only the live copy went on
    rig.clock.advance(CONFIG.cloud_check_interval_s)
    assert auditor.run_slice() == "cloud"
    rig.run_until_caught_up(replicator)
    assert points(rig.cloud) == points(rig.local)


def test_the_rolling_exact_check_finds_a_changed_value_anywhere_within_its_cycle(
    rig: Rig,
) -> None:
    _history(rig)
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    # One value changed nine days ago; counts, minima and maxima are untouched.
    t = T0 - 9 * DAY_MS + 600_000 * 20
    changed = reading("d", "a", 20, t, power_w=230.5).to_line(HOME)
    rig.cloud.write([changed])
    assert points(rig.cloud) != points(rig.local)
    auditor = _auditor(rig, replicator, verify_days=1)
    for _ in range(7 * 24):
        rig.clock.advance(3600)
        auditor.run_until_idle()
    assert points(rig.cloud) == points(rig.local)


def test_a_replicator_never_creates_the_cloud_database_unless_allowed(rig: Rig) -> None:
    rig.cloud.query(f'DROP DATABASE "{rig.cloud.database}"', database=None, method="POST")
    rig.cloud = InfluxClient(rig.cloud.url, rig.cloud.database, create_database=False)
    rig.write_readings([reading("d", "a", 1, T0)])
    replicator = rig.replicator()
    # How the refused write is classified is the transport's business; here only: no CREATE.
    with contextlib.suppress(InfluxError):
        replicator.run_once()
    databases = {r[0] for s in rig.cloud.query("SHOW DATABASES", database=None) for r in s.values}
    assert rig.cloud.database not in databases


def test_verify_all_checks_and_repairs_the_whole_history_from_the_command_line(
    rig: Rig, use_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _history(rig)
    rig.run_until_caught_up(rig.replicator())
    old = T0 - DAYS * DAY_MS + 7
    rig.write_readings([reading("x", "a", 1, old)], journal_entry=False)
    use_settings(
        data_dir=rig.data_dir, home=HOME, cloud_url=rig.cloud.url, cloud_db=rig.cloud.database,
        influx_url=rig.local.url, influx_db=rig.local.database,
    )  # fmt: skip
    assert main(["replicator", "verify"]) == 0  # the last three days are equal
    assert main(["replicator", "verify", "--all", "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"first difference at {old} ms" in out
    assert "1 repaired, 0 still different" in out
    assert points(rig.cloud) == points(rig.local)


def test_a_failing_check_is_retried_and_never_stops_its_thread(rig: Rig) -> None:
    rig.write_readings([reading("d", "a", 1, T0)])
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    auditor = _auditor(rig, replicator)
    auditor.cloud = InfluxClient("http://127.0.0.1:9", rig.cloud.database, timeout_s=1)
    thread = AuditThread(auditor, idle_s=0.01, error_delay_s=0.01)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while thread.last_error is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "unreachable" in thread.last_error
        auditor.cloud = rig.cloud
        while thread.last_error is not None or auditor.summary() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        thread.stop()
    summary = auditor.summary()
    assert summary is not None and summary.unresolved_hours == 0
