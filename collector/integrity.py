"""The spool checked at start: is every acknowledged row the tally lists still there?

Two checks, both before the collector listens. `PRAGMA quick_check` finds a damaged database
file (pages scribbled over, a truncated file). The tally (`collector.tally`, kept outside the
database) finds what a consistent but older database no longer holds: the rows of a write-ahead
log that was truncated, scribbled or deleted, or of a file that was emptied.

What the collector does with the answer (`apply`):
- a database that fails `quick_check`, or cannot be opened, is refused: the collector does not
  start, and says which readings the tally lists as at risk. Writing on into a damaged file
  could damage the ledger and anchors too, which decide what is a duplicate; an operator moves
  the file aside (the readings are then re-anchored from the devices' re-sends).
- a sound database that lacks rows starts degraded: refusing would leave every device
  unserved, and their buffers would overflow, losing more than the damage did. The loss is
  logged with its exact (device, boot, seq) ranges, kept in the `spool_losses` table (so a
  restart does not forget it) and shown in `/health` until an operator clears it with
  `energymon spool-losses clear`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from collector.spool import Spool
from collector.statedb import StateDB
from collector.tally import SeqRange, SpoolTally, TalliedRow, body_crc
from energymon.errors import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    quick_check: str
    lost_rows: tuple[TalliedRow, ...]
    tally_damaged_lines: int

    @property
    def sound(self) -> bool:
        return self.quick_check == "ok"

    @property
    def lost_points(self) -> int:
        return sum(r.points for r in self.lost_rows)

    @property
    def lost_ranges(self) -> tuple[SeqRange, ...]:
        return tuple(s for r in self.lost_rows for s in r.ranges)


def check(db: StateDB, tally: SpoolTally) -> IntegrityReport:
    try:
        problems = [str(row[0]) for row in db.fetch_all("PRAGMA quick_check")]
        held = {
            int(row_id): body_crc(bytes(body))
            for row_id, body in db.fetch_all("SELECT id, body FROM spool")
        }
    except StoreError as exc:
        # Damaged beyond what quick_check can report in rows.
        return IntegrityReport(str(exc), (), tally.damaged_lines)
    quick_check = "ok" if problems == ["ok"] else "; ".join(problems[:5])
    if quick_check != "ok":
        return IntegrityReport(quick_check, (), tally.damaged_lines)
    lost = tuple(row for row in tally.rows.values() if held.get(row.id) != row.crc)
    return IntegrityReport(quick_check, lost, tally.damaged_lines)


def describe(ranges: tuple[SeqRange, ...]) -> str:
    return ", ".join(map(str, ranges)) or "no readings (health records only)"


def refusal(tally: SpoolTally, why: str) -> StoreError:
    """The error that stops the collector from starting on a damaged database."""
    at_risk = tuple(s for r in tally.rows.values() for s in r.ranges)
    return StoreError(
        f"collector.db is damaged ({why}); not starting. Acknowledged readings the spool "
        f"held, now at risk: {describe(at_risk)}. Move collector.db aside to start afresh."
    )


def apply(db: StateDB, spool: Spool, tally: SpoolTally, now_ms: int) -> IntegrityReport:
    """Check, record any loss, attach the tally to the spool; raises `StoreError` when the
    database itself is damaged."""
    report = check(db, tally)
    if not report.sound:
        raise refusal(tally, f"quick_check: {report.quick_check}")
    if report.lost_rows:
        log.error(
            "the spool lost %d acknowledged points (damaged collector.db or its log): %s",
            report.lost_points,
            describe(report.lost_ranges),
        )
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO spool_losses (found_ms, points, ranges) VALUES (?, ?, ?)",
                (now_ms, report.lost_points, json.dumps([_listed(s) for s in report.lost_ranges])),
            )
    if report.tally_damaged_lines:
        log.error(
            "%d damaged lines in %s: the spool's record may be incomplete",
            report.tally_damaged_lines,
            tally.path,
        )
    held = {int(row_id) for (row_id,) in db.fetch_all("SELECT id FROM spool")}
    # Rows the database holds but the tally lacks were spooled just before a crash, before
    # their acknowledgement: recorded now, so they are watched from here on.
    kept = [r for r in tally.rows.values() if r.id in held and r not in report.lost_rows]
    tally.rewrite(kept)
    for row_id, body, points in db.fetch_all("SELECT id, body, points FROM spool ORDER BY id"):
        if int(row_id) not in tally.rows:
            tally.add(int(row_id), bytes(body), int(points))
    spool.tally = tally
    spool.lost_points, spool.lost_ranges = recorded_losses(db)
    return report


def recorded_losses(db: StateDB) -> tuple[int, tuple[SeqRange, ...]]:
    rows = db.fetch_all("SELECT points, ranges FROM spool_losses ORDER BY id")
    ranges = tuple(
        SeqRange(str(device), int(boot), int(first), int(last))
        for _, text in rows
        for device, boot, first, last in json.loads(text)
    )
    return sum(int(points) for points, _ in rows), ranges


def _listed(r: SeqRange) -> list[object]:
    return [r.device, r.boot, r.first_seq, r.last_seq]


def clear_losses(db: StateDB) -> int:
    """Forget the recorded losses (an operator has seen them); how many points they were."""
    points, _ = recorded_losses(db)
    with db.transaction() as conn:
        conn.execute("DELETE FROM spool_losses")
    return points
