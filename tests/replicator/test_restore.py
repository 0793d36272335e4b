"""Restore on real influxd processes: it works every time it is asked, and it never replaces a
differing local value unless told to."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from energymon.settings import Settings
from energymon_cli.main import main
from tests.replicator.helpers import HOME, T0, Rig, points, reading

HOUR_MS = 3_600_000


def _replicated(rig: Rig, use_settings: Callable[..., Settings]) -> None:
    rig.write_readings([reading("d", s, i, T0 - 2 * HOUR_MS + i * 10_000) for s in ("a", "b")
                        for i in range(720)])  # fmt: skip
    rig.run_until_caught_up(rig.replicator())
    use_settings(
        data_dir=rig.data_dir, home=HOME, cloud_url=rig.cloud.url, cloud_db=rig.cloud.database,
        influx_url=rig.local.url, influx_db=rig.local.database,
    )  # fmt: skip


def _lose_local(rig: Rig) -> None:
    rig.local.query(f'DROP DATABASE "{rig.local.database}"', database=None, method="POST")
    rig.local.create_database()


def test_a_second_restore_after_losing_the_local_database_again_restores_everything(
    rig: Rig, use_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _replicated(rig, use_settings)
    expected = points(rig.cloud)
    for _ in range(2):
        _lose_local(rig)
        assert main(["replicator", "restore"]) == 0
        assert "restored 1440 points" in capsys.readouterr().out
        assert points(rig.local) == expected


def test_restore_keeps_differing_local_values_and_reports_them_unless_overwrite(
    rig: Rig, use_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _replicated(rig, use_settings)
    cloud_points = points(rig.cloud)
    # Locally: one point lost, one with another value (a meter fixed by hand, say).
    t_lost, t_changed = T0 - 2 * HOUR_MS + 100 * 10_000, T0 - 2 * HOUR_MS + 200 * 10_000
    rig.local.query(
        f"DELETE FROM electricity WHERE sensor = 'a' AND time >= {t_lost}ms "
        f"AND time <= {t_lost}ms", method="POST",
    )  # fmt: skip
    rig.local.write([reading("d", "b", 200, t_changed, power_w=999.0).to_line(HOME)])
    changed_locally = points(rig.local)

    assert main(["replicator", "restore"]) == 1
    out = capsys.readouterr().out
    assert "restored 1 points" in out
    assert "1 local points differ from the cloud and were kept" in out
    assert "'power_w': 999.0" in out and "sensor=b" in out
    assert points(rig.local) == changed_locally | {
        p for p in cloud_points if f"{t_lost})" in p and "'a')" in p
    }
    assert len(points(rig.local)) == 1440

    assert main(["replicator", "restore", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "1 local points differed and now hold the cloud's values" in out
    assert points(rig.local) == cloud_points
