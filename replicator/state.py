"""The replicator's progress, persisted atomically (write, fsync, rename, fsync the directory),
so that after SIGKILL or a power cut the file holds either the old or the new state, whole."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from energymon.errors import ReplicationError

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """An exact check and repair of [position_ms, until_ms), hour by hour, in progress: the
    position is saved after each hour, so a restart resumes it."""

    position_ms: int
    until_ms: int
    reason: str

    @property
    def done(self) -> bool:
        return self.position_ms >= self.until_ms

    def widened(self, start_ms: int, until_ms: int, reason: str) -> Reconciliation:
        return Reconciliation(
            min(self.position_ms, start_ms), max(self.until_ms, until_ms),
            f"{self.reason}; {reason}",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplicatorState:
    # Every point of this home with a time stamp before the watermark is in the cloud, except
    # those written after the copy; the journal, followed up to `journal_cursor`, finds them.
    watermark_ms: int
    journal_cursor: int
    # Set when something cannot vouch for the past (no state, a pruned or recreated journal,
    # a cloud that lost data): the whole history is checked point by point and repaired.
    reconcile: Reconciliation | None = None
    # The identity of the journal the cursor belongs to.
    journal_id: str | None = None


def atomic_write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(content, sort_keys=True).encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise ReplicationError(f"cannot save {path}: {exc}") from exc


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReplicationError(f"cannot read {path}: {exc}") from exc
    if not isinstance(content, dict):
        raise ReplicationError(f"{path} does not hold an object")
    return content


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ReplicatorState | None:
        content = read_json(self.path)
        if content is None:
            return None
        if content.get("version") != STATE_VERSION:
            raise ReplicationError(f"{self.path} has an unknown version {content.get('version')}")
        try:
            watermark = int(content["watermark_ms"])
            reconcile = content.get("reconcile")
            if content.get("unverified_from_ms") is not None:
                # Written by a replicator that verified only the last days: check everything.
                reconcile = {"position_ms": 0, "until_ms": watermark, "reason": "upgrade"}
            journal_id = content.get("journal_id")
            return ReplicatorState(
                watermark,
                int(content["journal_cursor"]),
                None if reconcile is None else Reconciliation(
                    int(reconcile["position_ms"]), int(reconcile["until_ms"]),
                    str(reconcile["reason"]),
                ),
                None if journal_id is None else str(journal_id),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplicationError(f"{self.path} is malformed: {exc}") from exc

    def save(self, state: ReplicatorState) -> None:
        atomic_write_json(self.path, {"version": STATE_VERSION, **asdict(state)})
