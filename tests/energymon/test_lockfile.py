from __future__ import annotations

from pathlib import Path

import pytest

from collector.service import CollectorService
from energymon.errors import ConfigError
from energymon.lockfile import ProcessLock
from energymon.settings import load_settings


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    first = ProcessLock(tmp_path / "x.lock", "collector")
    first.acquire()
    with pytest.raises(ConfigError, match=r"another collector \(pid \d+\) already uses"):
        ProcessLock(tmp_path / "x.lock", "collector").acquire()
    first.release()
    ProcessLock(tmp_path / "x.lock", "collector").acquire()


def test_two_collectors_cannot_share_a_data_dir(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, influx_url="http://127.0.0.1:9")
    CollectorService(settings)
    with pytest.raises(ConfigError, match="another collector"):
        CollectorService(settings)
