from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from energymon.errors import StoreError
from energymon.lineproto import format_line
from energymon.settings import Settings
from energymon_cli.main import main
from replicator.deadletters import DeadLetter, DeadLetterStore
from tests.replicator.helpers import HOME, T0, Rig, points, reading


def test_a_refused_point_goes_to_the_dead_letters_and_the_rest_flows(rig: Rig) -> None:
    # Another writer stored `note` as a string in the cloud: our integer `note` conflicts.
    rig.cloud.write([format_line("derived", {"home": HOME, "k": "x"}, {"note": "text"}, T0)])
    good = [reading("d", "s", i, T0 + i * 1000).to_line(HOME) for i in range(1, 400)]
    bad = format_line("derived", {"home": HOME, "k": "y"}, {"note": 7}, T0 + 500)
    fine = format_line("derived", {"home": HOME, "k": "y"}, {"other": 1.5}, T0 + 600)
    rig.write([*good[:200], bad, fine, *good[200:]])
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)

    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud, "derived")) == 2  # the cloud's own point and `fine`
    store = rig.dead_letters()
    [letter] = store.list()
    assert letter.line == bad
    assert "field type conflict" in letter.reason
    assert letter.target == "cloud"

    # Copying the same range again (a repair) does not duplicate the dead letter.
    rig.clock.advance(60)
    rig.record([bad])
    rig.clock.advance(11)
    replicator.run_once()
    assert store.count() == 1


def test_dead_letters_can_be_replayed_once_the_cloud_is_fixed(
    rig: Rig, use_settings: Callable[..., Settings]
) -> None:
    rig.cloud.write([format_line("derived", {"home": HOME}, {"note": "text"}, T0)])
    bad = format_line("derived", {"home": HOME, "k": "y"}, {"note": 7}, T0 + 500)
    rig.write([bad])
    rig.run_until_caught_up(rig.replicator())
    store = rig.dead_letters()
    assert store.count() == 1
    use_settings(
        data_dir=rig.data_dir,
        cloud_url=rig.cloud.url,
        cloud_db=rig.cloud.database,
        influx_url=rig.local.url,
        influx_db=rig.local.database,
    )
    assert main(["replicator", "dead-letters", "replay"]) == 1  # still refused
    rig.cloud.query('DROP MEASUREMENT "derived"', method="POST")
    assert main(["replicator", "dead-letters", "replay"]) == 0
    assert store.count() == 0
    assert len(points(rig.cloud, "derived")) == 1


def test_the_store_keeps_its_letters_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "replicator" / "dead_letters.db"
    with closing(DeadLetterStore(path)) as store:
        store.add(["a 1", "b 2"], target="cloud", reason="conflict", now_ms=T0)
        store.add(["a 1"], target="cloud", reason="again", now_ms=T0 + 1)
        store.update_reason(2, "still refused")
        assert store.remove(1) and not store.remove(1)
    with closing(DeadLetterStore(path)) as reopened:
        assert reopened.list() == [DeadLetter(2, T0, "cloud", "still refused", "b 2", True)]
    with pytest.raises(StoreError, match="closed"):
        reopened.count()
