"""The durable store against real influxd processes: direct writes, spool, drain, parking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.ledger import MAX_RUNS
from collector.payload import parse_submission
from collector.statedb import StateDB
from collector.store import DurableStore
from collector.submission import Submission
from energymon.clock import ManualClock
from energymon.errors import SpoolFullError
from energymon.influx import InfluxClient
from energymon.settings import Settings
from harness.influxd import InfluxServer
from tests.collector.helpers import batch

ARRIVAL_MS = 1_700_000_000_000


def make_store(
    influx: InfluxClient,
    data_dir: Path,
    clock: ManualClock,
    spool_max_bytes: int = 10**8,
    write_timeout_s: float = 2.0,
) -> DurableStore:
    return DurableStore(
        StateDB(data_dir),
        influx,
        home="h1",
        spool_max_bytes=spool_max_bytes,
        clock=clock,
        write_timeout_s=write_timeout_s,
    )


def submission(body: dict[str, Any], arrival_ms: int = ARRIVAL_MS) -> Submission:
    return parse_submission(body, 1000, arrival_ms)


def stored(influx: InfluxClient, measurement: str = "electricity") -> list[dict[str, Any]]:
    return [
        r for s in influx.query(f'SELECT * FROM "{measurement}" ORDER BY time') for r in s.records()
    ]


def test_readings_land_at_anchor_plus_uptime(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 4), uptime_ms=10_000)
    [outcome] = store.commit([submission(body)])
    assert (outcome.ack, outcome.accepted, outcome.duplicates, outcome.rejected) == (3, 3, 0, ())
    rows = stored(influx)
    anchor = ARRIVAL_MS - 10_000
    assert [r["time"] for r in rows] == [anchor + 1000, anchor + 2000, anchor + 3000]
    assert rows[0]["seq"] == 1 and rows[0]["boot"] == 1 and rows[0]["home"] == "h1"
    assert rows[0]["energy_wh"] == 123457 and rows[0]["alarm"] is False


def test_resent_batch_is_duplicate_and_lands_on_same_points(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 6), uptime_ms=10_000))])
    # The same batch arrives again a minute later, from a device that lost the reply.
    [again] = store.commit([submission(batch(range(1, 6), uptime_ms=70_000), ARRIVAL_MS + 60_000)])
    assert (again.accepted, again.duplicates, again.ack) == (0, 5, 5)
    rows = stored(influx)
    assert len(rows) == 5
    assert rows[0]["time"] == ARRIVAL_MS - 10_000 + 1000


def test_out_of_order_and_late_batches_are_all_stored(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(11, 21), uptime_ms=30_000))])
    [late] = store.commit([submission(batch(range(1, 11), uptime_ms=31_000), ARRIVAL_MS + 1000)])
    assert (late.accepted, late.duplicates) == (10, 0)
    rows = stored(influx)
    assert [r["seq"] for r in rows] == list(range(1, 21))
    # Both batches share one anchor, so the late readings keep the times they were measured.
    assert rows[0]["time"] == ARRIVAL_MS - 30_000 + 1000


def test_overlapping_batches_in_one_group_commit(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    first, second = store.commit([submission(batch(range(1, 6))), submission(batch(range(4, 9)))])
    assert (first.accepted, second.accepted, second.duplicates) == (5, 3, 2)
    assert len(stored(influx)) == 8


def test_anchor_and_ledger_survive_restart(influx: InfluxClient, tmp_path: Path) -> None:
    make_store(influx, tmp_path, ManualClock(ARRIVAL_MS)).commit(
        [submission(batch(range(1, 3), uptime_ms=5000))]
    )
    later = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS + 3_600_000))
    # An hour later the device's uptime is an hour more: the same boot, the same anchor.
    [outcome] = later.commit(
        [submission(batch(range(1, 5), uptime_ms=3_605_000), ARRIVAL_MS + 3_600_000)]
    )
    assert (outcome.accepted, outcome.duplicates) == (2, 2)
    rows = stored(influx)
    assert [r["time"] - (ARRIVAL_MS - 5000) for r in rows] == [1000, 2000, 3000, 4000]


def test_invalid_measurements_are_quarantined_not_stored(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 5))
    body["readings"][1]["voltage_v"] = 300.0
    body["readings"][2]["power_factor"] = float("nan")
    body["readings"][3]["energy_wh"] = "lots"
    [outcome] = store.commit([submission(body)])
    assert outcome.accepted == 1
    assert [seq for seq, _ in outcome.rejected] == [2, 3, 4]
    assert "voltage_v 300.0 V is outside" in outcome.rejected[0][1]
    assert [r["seq"] for r in stored(influx)] == [1]
    quarantined = stored(influx, "energymon_quarantine")
    assert [r["seq"] for r in quarantined] == [2, 3, 4]
    assert '"energy_wh": "lots"' in quarantined[2]["payload"]
    # Re-sent quarantined readings are duplicates, not quarantined twice.
    [again] = store.commit([submission(body)])
    assert (again.duplicates, again.rejected) == (4, ())


def test_decreasing_energy_is_a_reset_not_an_error(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 3))
    body["readings"][1]["energy_wh"] = 0
    [outcome] = store.commit([submission(body)])
    assert (outcome.accepted, outcome.rejected) == (2, ())


def test_influx_down_spools_then_drains_in_order_exactly_once(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    clock = ManualClock(ARRIVAL_MS)
    store = make_store(influx, tmp_path / "state", clock)
    store.commit([submission(batch(range(1, 4)))])
    own_influx.stop()
    for start in (4, 7, 10):
        [outcome] = store.commit([submission(batch(range(start, start + 3)))])
        assert outcome.accepted == 3  # acknowledged: durable in the spool
    assert store.spool.depth_points == 9
    assert store.influx_reachable is False
    assert store.drain_once(100).error is not None

    own_influx.start()
    # Written while the spool is not empty: queued behind it, so the order is kept.
    store.commit([submission(batch(range(13, 15)))])
    results = [store.drain_once(4) for _ in range(5)]
    assert sum(r.written_points for r in results) == 11
    assert store.spool.empty
    rows = stored(influx)
    assert [r["seq"] for r in rows] == list(range(1, 15))


def test_spool_bound_refuses_instead_of_dropping(
    own_influx: InfluxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    store = make_store(influx, tmp_path / "state", ManualClock(ARRIVAL_MS), spool_max_bytes=3000)
    own_influx.stop()
    store.commit([submission(batch(range(1, 6)))])
    with pytest.raises(SpoolFullError):
        store.commit([submission(batch(range(6, 40)))])
    assert store.spool.full_refusals == 1
    assert any("spool is full" in r.message for r in caplog.records)
    # Refused readings are not marked seen: the device's re-send is stored once there is room.
    own_influx.start()
    assert store.drain_once(100).written_points == 5
    [outcome] = store.commit([submission(batch(range(6, 40)))])
    assert (outcome.accepted, outcome.duplicates) == (34, 0)


def test_permanently_refused_points_are_parked_not_lost(
    influx: InfluxClient, tmp_path: Path
) -> None:
    # Someone else wrote voltage_v as a string: InfluxDB refuses ours for a type conflict.
    # Type conflicts are checked per shard, so the foreign point lies in the same week.
    influx.write([f'electricity,home=h1,device=other,sensor=s voltage_v="x" {ARRIVAL_MS}'])
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    [outcome] = store.commit([submission(batch(range(1, 3)))])
    assert outcome.accepted == 2
    [parked] = store.spool.parked()
    assert parked.points == 2 and "conflict" in parked.reason
    # Still known after a restart, so health keeps showing it until an operator acts.
    assert make_store(influx, tmp_path, ManualClock(ARRIVAL_MS)).spool.parked_points == 2


def test_parked_batches_can_be_replayed_once_the_conflict_is_gone(
    influx: InfluxClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    use_settings: Callable[..., Settings],
) -> None:
    from energymon_cli.main import main

    influx.write([f'electricity,home=h1,device=other,sensor=s voltage_v="x" {ARRIVAL_MS}'])
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 3)))])
    store.db.close()
    use_settings(data_dir=tmp_path, influx_url=influx.url, influx_db=influx.database)
    assert main(["parked", "list"]) == 0
    assert "2 points" in capsys.readouterr().out
    assert main(["parked", "replay"]) == 2  # InfluxDB still refuses: the batch stays
    # The operator removes the foreign points that caused the conflict.
    influx.query("DROP MEASUREMENT electricity", method="POST")
    assert main(["parked", "replay"]) == 0
    assert main(["parked", "list"]) == 0
    assert "no parked batches" in capsys.readouterr().out
    assert [r["seq"] for r in stored(influx)] == [1, 2]


def test_empty_heartbeat_anchors_the_boot(influx: InfluxClient, tmp_path: Path) -> None:
    # The firmware's first request of a boot is empty, so that readings it spills to its SD card
    # can still be timed after a power cut.
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    [heartbeat] = store.commit([submission(batch([], uptime_ms=2000))])
    assert heartbeat.ack is None
    later = submission(batch([5], uptime_ms=3_602_000), ARRIVAL_MS + 3_600_000)
    [outcome] = store.commit([later])
    assert outcome.accepted == 1
    assert stored(influx)[0]["time"] == ARRIVAL_MS - 2000 + 5000


# --- the time and identity model (docs/api.md) ---------------------------------------------


def electricity_times(influx: InfluxClient) -> list[tuple[int, int, int]]:
    return [(r["boot"], r["seq"], r["time"]) for r in stored(influx)]


def test_uptime_going_back_within_a_boot_is_quarantined_not_written_over(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch([1, 2, 3], uptime_ms=10_000))])
    # Seq 5 claims the uptime of seq 2: its point would replace seq 2's.
    body = batch([4, 5], uptime_ms=12_000)
    body["readings"][1]["uptime_ms"] = 2000
    [outcome] = store.commit([submission(body, ARRIVAL_MS + 2000)])
    assert outcome.accepted == 1
    assert [seq for seq, _ in outcome.rejected] == [5]
    assert "does not grow with seq" in outcome.rejected[0][1]
    assert [seq for _, seq, _ in electricity_times(influx)] == [1, 2, 3, 4]
    [quarantined] = stored(influx, "energymon_quarantine")
    assert (quarantined["seq"], quarantined.get("reading_time_ms")) == (5, None)


def test_a_late_fill_must_lie_between_its_neighbours(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch([1, 4], uptime_ms=10_000))])
    body = batch([2, 3], uptime_ms=11_000)
    body["readings"][1]["uptime_ms"] = 4000  # seq 4's uptime
    [outcome] = store.commit([submission(body, ARRIVAL_MS + 1000)])
    assert outcome.accepted == 1 and [seq for seq, _ in outcome.rejected] == [3]
    assert [seq for _, seq, _ in electricity_times(influx)] == [1, 2, 4]


def test_a_boot_overlapping_its_predecessor_is_placed_after_it(
    influx: InfluxClient, tmp_path: Path
) -> None:
    # Boot 1's resonator ran fast: after a long uptime its readings lie ahead of real time, and
    # boot 2's first request proposes an anchor inside them.
    clock = ManualClock(ARRIVAL_MS)
    store = make_store(influx, tmp_path, clock)
    first = batch([1, 2, 3], boot=1, uptime_ms=3_000)
    for i, r in enumerate(first["readings"]):
        r["uptime_ms"] = 1000 * (i + 1)
    store.commit([submission(first)])
    ahead = batch([4, 5], boot=1, uptime_ms=30_000)
    ahead["readings"][0]["uptime_ms"], ahead["readings"][1]["uptime_ms"] = 20_000, 30_000
    store.commit([submission(ahead, ARRIVAL_MS + 1000)])  # anchored earlier: times run ahead
    boot1_end = max(t for _, _, t in electricity_times(influx))
    second = batch([1, 2], boot=2, uptime_ms=2_000)
    [outcome] = store.commit([submission(second, ARRIVAL_MS + 5_000)])
    assert outcome.accepted == 2
    times = electricity_times(influx)
    assert len(times) == 7 and len({t for _, _, t in times}) == 7
    boot2 = sorted(t for boot, _, t in times if boot == 2)
    assert boot2[0] > boot1_end


def test_a_pi_clock_step_back_then_a_restart_overwrites_nothing(
    influx: InfluxClient, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    store = make_store(influx, tmp_path, clock)
    store.commit([submission(batch(range(1, 11), boot=1, uptime_ms=10_500))])
    # The Pi's clock steps back to when boot 1 began (fake-hwclock, NTP), and the device
    # restarts: boot 2 proposes boot 1's very anchor.
    [outcome] = store.commit([submission(batch(range(1, 11), boot=2, uptime_ms=10_500))])
    assert outcome.accepted == 10
    times = [t for _, _, t in electricity_times(influx)]
    assert len(times) == 20 and len(set(times)) == 20


def test_a_board_that_starts_its_boots_again_is_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 6), boot=1, boot_nonce=111, uptime_ms=60_000))])
    # Erased EEPROM: boot 1 again, another nonce. Not duplicates: new readings.
    later = ARRIVAL_MS + 600_000
    again = batch(range(1, 6), boot=1, boot_nonce=222, uptime_ms=6_000)
    [outcome] = store.commit([submission(again, later)])
    assert (outcome.accepted, outcome.duplicates) == (5, 0)
    rows = electricity_times(influx)
    assert len(rows) == 10
    second_life = sorted(t for _, _, t in rows)[5:]
    assert second_life == [later - 6000 + 1000 * s for s in range(1, 6)]


def test_without_a_nonce_an_uptime_below_the_boots_readings_is_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    first = batch(range(1, 6), boot=1, uptime_ms=60_000)
    for r in first["readings"]:
        r["uptime_ms"] *= 10
    store.commit([submission(first)])
    # Older firmware, re-flashed: boot 1 again, uptime under six seconds, below seq 5's.
    later = ARRIVAL_MS + 600_000
    [outcome] = store.commit([submission(batch(range(1, 6), boot=1, uptime_ms=5_500), later)])
    assert (outcome.accepted, outcome.duplicates) == (5, 0)
    assert len(electricity_times(influx)) == 10
    # A re-send of that new life is recognised as such.
    [resend] = store.commit([submission(batch(range(1, 6), boot=1, uptime_ms=7_000), later)])
    assert resend.duplicates == 5


def test_without_a_nonce_a_boot_above_the_current_one_after_a_restart_of_boots_is_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 11), boot=1, uptime_ms=10_500))])
    # Boot 2 lasts four readings, of which the first two were dropped on the device.
    store.commit([submission(batch([3, 4], boot=2, uptime_ms=4_500), ARRIVAL_MS + 20_000)])
    # Re-flashed older firmware: boot 1 again (its uptime is below boot 1's readings), then
    # boot 2 again, already up longer than the first boot 2 ever was.
    store.commit([submission(batch([1], boot=1, uptime_ms=1_500), ARRIVAL_MS + 60_000)])
    later = ARRIVAL_MS + 120_000
    [outcome] = store.commit([submission(batch(range(1, 6), boot=2, uptime_ms=5_500), later)])
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (5, 0, ())
    second_life = sorted(t for boot, _, t in electricity_times(influx) if boot == 2)[2:]
    assert second_life == [later - 5_500 + 1000 * s for s in range(1, 6)]
    # A re-send of that new life is recognised as such.
    [resend] = store.commit([submission(batch(range(1, 6), boot=2, uptime_ms=6_000), later)])
    assert resend.duplicates == 5
    assert len(electricity_times(influx)) == 18


def test_without_a_nonce_seq_1_of_a_boot_the_device_has_left_is_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 11), boot=1, uptime_ms=10_500))])
    # Re-flashed older firmware: boot 1 again (its uptime is below boot 1's readings) for one
    # reading, then boot 2.
    store.commit([submission(batch([1], boot=1, uptime_ms=1_500), ARRIVAL_MS + 60_000)])
    store.commit([submission(batch(range(1, 6), boot=2, uptime_ms=5_500), ARRIVAL_MS + 70_000)])
    # Re-flashed again: boot 1 once more, already up longer than the short boot 1 ever was.
    later = ARRIVAL_MS + 120_000
    [outcome] = store.commit([submission(batch(range(1, 6), boot=1, uptime_ms=5_500), later)])
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (5, 0, ())
    third_life = sorted(t for boot, _, t in electricity_times(influx) if boot == 1)[11:]
    assert third_life == [later - 5_500 + 1000 * s for s in range(1, 6)]
    # A re-send of that new life is recognised as such.
    [resend] = store.commit([submission(batch(range(1, 6), boot=1, uptime_ms=6_000), later)])
    assert resend.duplicates == 5
    assert len(electricity_times(influx)) == 21


def test_without_a_nonce_a_held_seq_with_another_uptime_is_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch([1, 2], boot=1, uptime_ms=2_500))])
    # Re-flashed older firmware a few seconds later: boot 1 again, already up longer than the
    # first boot 1 was, its seqs 1 and 2 measured at other uptimes than the stored ones.
    later = ARRIVAL_MS + 10_000
    again = batch(range(1, 4), boot=1, uptime_ms=5_500)
    for r in again["readings"]:
        r["uptime_ms"] += 2_000
    [outcome] = store.commit([submission(again, later)])
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (3, 0, ())
    second_life = sorted(t for _, _, t in electricity_times(influx))[2:]
    assert second_life == [later - 5_500 + 2_000 + 1000 * s for s in range(1, 4)]
    # A re-send of that new life, same uptimes, is recognised as such.
    [resend] = store.commit([submission(again, later + 1000)])
    assert resend.duplicates == 3
    assert len(electricity_times(influx)) == 5


def test_without_a_nonce_held_seqs_with_the_same_uptimes_but_other_values_are_a_new_life(
    influx: InfluxClient, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    make_store(influx, tmp_path, clock).commit([submission(batch([1, 2], uptime_ms=2_500))])
    # Older firmware whose boot counter was erased, up again a few seconds later: boot 1 again,
    # its seqs 1 and 2 measured at the very uptimes of the stored ones, but other readings.
    later = ARRIVAL_MS + 5_000
    again = batch(range(1, 4), uptime_ms=3_500)
    for r in again["readings"]:
        r["energy_wh"] += 1000
    # What the collector keeps of the first life survives its restart.
    store = make_store(influx, tmp_path, clock)
    [outcome] = store.commit([submission(again, later)])
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (3, 0, ())
    second_life = sorted(t for _, _, t in electricity_times(influx))[2:]
    assert second_life == [later - 3_500 + 1000 * s for s in range(1, 4)]
    # True re-sends stay duplicates: of the new life, and of a reading inside its run.
    [resend] = store.commit([submission(again, later + 1000)])
    middle = batch([2], uptime_ms=3_600)
    middle["readings"][0]["energy_wh"] += 1000
    [inner] = store.commit([submission(middle, later + 1100)])
    assert (resend.duplicates, inner.duplicates) == (3, 1)
    assert len(electricity_times(influx)) == 5


def test_a_resend_ending_in_a_quarantined_reading_stays_a_duplicate(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch([1, 2, 3], uptime_ms=3_500)
    body["readings"][2]["voltage_v"] = 999.0
    [first] = store.commit([submission(body)])
    [again] = store.commit([submission(body, ARRIVAL_MS + 1000)])
    assert (first.accepted, len(first.rejected)) == (2, 1)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, ())
    assert len(stored(influx, "energymon_quarantine")) == 1


def test_a_wrong_pi_clock_at_first_contact_is_corrected_not_quarantined(
    influx: InfluxClient, tmp_path: Path
) -> None:
    # The Pi's clock is three days ahead when boot 1 is first heard from, then NTP fixes it.
    wrong = ARRIVAL_MS + 3 * 86_400_000
    store = make_store(influx, tmp_path, ManualClock(wrong))
    store.commit([submission(batch(range(1, 4), uptime_ms=3_500), wrong)])
    # Two minutes later, by the right clock: the boot's anchor is three days off.
    [outcome] = store.commit([submission(batch(range(4, 7), uptime_ms=123_500), ARRIVAL_MS)])
    assert (outcome.accepted, outcome.rejected) == (3, ())
    later = sorted(t for _, seq, t in electricity_times(influx) if seq >= 4)
    assert later == [ARRIVAL_MS - 123_500 + 1000 * s for s in range(4, 7)]
    # Its earlier readings stay where they were written; nothing was written over.
    assert len(electricity_times(influx)) == 6


def test_a_boot_moved_back_lands_after_its_readings_stamped_ahead_not_into_them(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    anchor = ARRIVAL_MS - 3_500
    outcomes = []
    # (seqs, how far the Pi's clock is ahead): a step of ten minutes, corrected (too small to
    # move the boot back: its readings stay ten minutes ahead), then one of three days,
    # corrected (moved back).
    for seqs, skew_ms in (
        (range(1, 4), 0),
        (range(4, 14), 600_000),
        (range(14, 21), 0),
        (range(21, 31), 3 * 86_400_000),
        (range(31, 41), 0),
        (range(41, 701), 0),
    ):
        body = batch(seqs, uptime_ms=seqs[-1] * 1000 + 500)
        outcomes += store.commit([submission(body, anchor + body["uptime_ms"] + skew_ms)])
    # Moved back, its next readings would have reached those stamped ten minutes ahead.
    assert [o.rejected for o in outcomes] == [()] * 6
    time_of = {seq: t for _, seq, t in electricity_times(influx)}
    assert len(time_of) == 700 and len(set(time_of.values())) == 700
    # Placed after those, short of ten minutes ahead, instead of three days ahead.
    assert time_of[20] < time_of[31] < anchor + 31_000 + 600_000
    assert all(time_of[seq] < time_of[seq + 1] for seq in range(31, 700))


def test_quarantined_readings_never_replace_each_other(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    # Invalid readings of one meter, all claiming one uptime: one quarantined point each.
    body = batch([1, 2, 3], uptime_ms=1500)
    for r in body["readings"]:
        r["uptime_ms"], r["voltage_v"] = 1000, 999.0
    store.commit([submission(body)])
    quarantined = stored(influx, "energymon_quarantine")
    assert sorted(q["seq"] for q in quarantined) == [1, 2, 3]


def test_a_device_with_many_gaps_keeps_a_bounded_ledger(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    # Every other seq: a gap after each reading, far more gaps than the ledger keeps.
    for start in range(1, 2000, 200):
        seqs = list(range(start, start + 200, 2))
        sent_ms = ARRIVAL_MS + start * 1000
        store.commit([submission(batch(seqs, uptime_ms=(start + 200) * 1000), sent_ms)])
    rows = store.db.fetch_all("SELECT count(*) FROM runs")[0][0]
    assert rows == MAX_RUNS
    assert len(electricity_times(influx)) == 1000
