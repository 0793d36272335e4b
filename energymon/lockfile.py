"""One process per data directory: a second collector or replicator on the same state would
break the guarantees (two ledgers, two watermarks), so it refuses to start instead.

`flock` is released by the kernel when the process dies, SIGKILL included: no stale locks.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from energymon.errors import ConfigError


class ProcessLock:
    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot use {self.path.parent} as the {self.what}'s data directory "
                f"(ENERGYMON_DATA_DIR): {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"another {self.what} (pid {holder}) already uses {self.path.parent}"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
