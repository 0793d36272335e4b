"""A damaged spool, on a real collector process and a real influxd: readings acknowledged into
the spool, the collector killed, `collector.db` or its write-ahead log damaged as a failing SD
card would, the collector started again. Whatever the damage, the collector either refuses to
start naming the readings at risk, or starts and accounts for every acknowledged reading: in
InfluxDB, or reported lost by (device, boot, seq) range. It never claims that everything is in
InfluxDB when it is not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from energymon.errors import EnergymonError
from energymon.settings import Settings
from energymon_cli.main import main
from harness.influxd import InfluxServer
from tests.collector.helpers import batch, wait_for
from tests.conftest import DEVICE, RunningCollector

EVERYTHING_STORED = "every acknowledged reading is in InfluxDB"


def _truncate_wal(db: Path) -> None:
    wal = db.with_name(db.name + "-wal")
    os.truncate(wal, wal.stat().st_size // 2)


def _delete_wal(db: Path) -> None:
    db.with_name(db.name + "-wal").unlink()


def _scribble_wal(db: Path) -> None:
    wal = db.with_name(db.name + "-wal")
    size = wal.stat().st_size
    with open(wal, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(4096))


def _empty_db(db: Path) -> None:
    os.truncate(db, 0)


def _scribble_db(db: Path) -> None:
    # Pages of the file itself: checkpointed first, so the damage is not masked by the log.
    wal = db.with_name(db.name + "-wal")
    wal.unlink()
    with open(db, "r+b") as f:
        f.seek(100)
        f.write(os.urandom(8192))


DAMAGES = {
    "wal-truncated": _truncate_wal,
    "wal-deleted": _delete_wal,
    "wal-scribbled": _scribble_wal,
    "db-emptied": _empty_db,
    "db-scribbled": _scribble_db,
}


def _seqs_in_influx(c: RunningCollector) -> set[int]:
    return {
        int(r["seq"]) for s in c.influx.query("SELECT seq FROM electricity") for r in s.records()
    }


def _lost_seqs(health: dict[str, object]) -> set[int]:
    lost: set[int] = set()
    ranges = health["spool_lost"]["ranges"]  # type: ignore[index]
    for text in ranges:
        device, _, rest = text.rpartition(" boot ")
        assert device == DEVICE
        first, _, last = rest.partition(" seq ")[2].partition("-")
        lost |= set(range(int(first), int(last or first) + 1))
    return lost


def _spool_then_kill(own_influx: InfluxServer, c: RunningCollector) -> None:
    """Seqs 1-3 stored in InfluxDB, 4-9 acknowledged into the spool only, then SIGKILL."""
    assert c.post(batch(range(1, 4))).json()["accepted"] == 3
    own_influx.stop()
    assert c.post(batch(range(4, 10), uptime_ms=20_000)).json()["accepted"] == 6
    c.process.kill()


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_spool_never_hides_a_lost_acknowledged_reading(
    damage: str, own_influx: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(own_influx)
    _spool_then_kill(own_influx, c)
    db = c.data_dir / "collector.db"
    DAMAGES[damage](db)
    own_influx.start()
    log_start = c.process.log_path.stat().st_size
    try:
        c.process.start()
    except EnergymonError:
        # Refused: the log says so and names the readings at risk.
        log = c.process.log_path.read_text(errors="replace")[log_start:]
        assert "collector.db is damaged" in log and "not starting" in log
        assert f"{DEVICE} boot 1 seq 4-9" in log
        assert EVERYTHING_STORED not in log
        return
    health = wait_for(
        lambda: requests.get(f"{c.url}/health", timeout=10).json(),
        lambda h: h["spool"]["depth_points"] == 0,
    )
    stored, lost = _seqs_in_influx(c), _lost_seqs(health)
    # Every acknowledged reading is accounted for, and none is claimed both ways.
    assert stored | lost >= set(range(4, 10))
    assert not stored & lost & set(range(4, 10))
    log = c.process.log_path.read_text(errors="replace")[log_start:]
    if lost:
        assert health["status"] == "degraded"
        assert any("lost from a damaged spool" in r for r in health["reasons"])
        assert EVERYTHING_STORED not in log
    if damage == "wal-deleted":
        # Nothing of the log reached the file: every spooled reading is gone, and named.
        assert lost == set(range(4, 10))


def test_an_operator_lists_and_clears_the_losses(
    own_influx: InfluxServer,
    start_collector: Callable[..., RunningCollector],
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = start_collector(own_influx)
    _spool_then_kill(own_influx, c)
    _delete_wal(c.data_dir / "collector.db")
    own_influx.start()
    c.process.start()
    c.process.kill()
    use_settings(data_dir=c.data_dir)
    assert main(["spool-losses", "list"]) == 0
    assert f"6 acknowledged points lost: {DEVICE} boot 1 seq 4-9" in capsys.readouterr().out
    assert main(["spool-losses", "clear"]) == 0
    capsys.readouterr()
    c.process.start()
    health = requests.get(f"{c.url}/health", timeout=10).json()
    assert health["spool_lost"] == {"points": 0, "ranges": []}
    assert main(["spool-losses", "list"]) == 0
    assert "no acknowledged readings were lost" in capsys.readouterr().out
