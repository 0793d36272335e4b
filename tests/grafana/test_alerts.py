"""Every alert rule evaluated as Grafana evaluates it (tests/grafana/evaluator.py) against a real
influxd holding a week of seeded faults (tests/grafana/alert_seed.py), with `now` moved."""

from __future__ import annotations

import copy
import itertools
import math
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from energymon.influx import InfluxClient
from energymon_grafana import alerts
from energymon_grafana.rule_groups import home_group
from harness.influxd import InfluxServer
from tests.grafana.alert_seed import METERS, Seed, Times, local_day, times_for
from tests.grafana.evaluator import (
    THRESHOLDS,
    Labels,
    RuleState,
    UnknownExpressionError,
    evaluate_math,
    run,
    threshold,
    union,
)
from tests.grafana.grafana_files import alert_rules, datasource_uids

_numbers = itertools.count(1)
RULES = alert_rules()
BY_UID = {r["uid"]: r for r in RULES}


def home(h: str) -> Labels:
    return (("home", h),)


def device(h: str, d: str) -> Labels:
    return (("device", d), ("home", h))


def meter(h: str, d: str, s: str) -> Labels:
    return (("device", d), ("home", h), ("sensor", s))


F_MAINS = meter("home-f", "mega-f", "mains")
# What fires at FAULT_AT; nothing of home-c ever fires.
FAULT: dict[str, set[Labels]] = {
    "energymon-device-quiet": {device("home-f", "garage")},
    "energymon-meter-quiet": {meter("home-f", "garage", "pzem1")},
    "energymon-home-quiet": {home("home-q")},
    "energymon-collector-spooling": {home("home-f")},
    "energymon-parked-points": {home("home-f")},
    "energymon-spool-full": {home("home-f")},
    "energymon-replication-lag": {home("home-f")},
    "energymon-dead-letters": {home("home-f")},
    "energymon-verify-mismatch": {home("home-f")},
    "energymon-quarantine-growing": {F_MAINS},
    "energymon-meter-alarm": {F_MAINS},
    "energymon-voltage-band": {F_MAINS},
    "energymon-apparent-power": {home("home-f")},
    "energymon-power-factor": {F_MAINS},
    "energymon-energy-budget": {home("home-f")},
    "energymon-cost-budget": {home("home-f")},
}
SILENCE = {"energymon-device-quiet", "energymon-meter-quiet", "energymon-home-quiet"}
# A day's rollup is one point holding the day so far: the seeded day of the fault is over its
# budget at every time of that day, before the other faults too.
WHOLE_DAY = {"energymon-energy-budget", "energymon-cost-budget"}


@pytest.fixture(scope="module")
def seeded(influx_server: InfluxServer) -> Iterator[tuple[InfluxClient, Times]]:
    client = InfluxClient(influx_server.url, f"alerts_{next(_numbers)}")
    client.create_database()
    times = times_for(int(time.time()) * 1000)
    Seed(times).write(client)
    yield client, times
    client.close()


@pytest.fixture(scope="module")
def history(seeded: tuple[InfluxClient, Times]) -> dict[str, dict[int, set[Labels]]]:
    """Every rule's firing instances at every time of the schedule."""
    client, times = seeded
    return {
        uid: dict(zip(times.schedule, run(client, rule, times.schedule), strict=True))
        for uid, rule in BY_UID.items()
    }


def test_every_rule_has_a_seeded_fault() -> None:
    assert set(BY_UID) == set(FAULT)
    assert set(FAULT) >= SILENCE


def test_the_seed_crosses_a_local_midnight(seeded: tuple[InfluxClient, Times]) -> None:
    _, times = seeded
    assert local_day(times.t0_ms) == timedelta(hours=23, minutes=30)
    assert local_day(times.silences["1h"]) == timedelta(minutes=30)


@pytest.mark.parametrize("uid", sorted(set(FAULT) - WHOLE_DAY))
def test_rule_is_quiet_before_the_fault(
    uid: str, seeded: tuple[InfluxClient, Times], history: dict[str, dict[int, set[Labels]]]
) -> None:
    _, times = seeded
    assert history[uid][times.before] == set()


@pytest.mark.parametrize("uid", sorted(FAULT))
def test_rule_fires_on_its_fault_and_for_nothing_clean(
    uid: str, seeded: tuple[InfluxClient, Times], history: dict[str, dict[int, set[Labels]]]
) -> None:
    _, times = seeded
    assert history[uid][times.fault_at] == FAULT[uid]


@pytest.mark.parametrize("silence", ["1h", "1d", "1w"])
@pytest.mark.parametrize("uid", sorted(FAULT))
def test_silence_stays_firing_and_the_rest_resolves(
    uid: str,
    silence: str,
    seeded: tuple[InfluxClient, Times],
    history: dict[str, dict[int, set[Labels]]],
) -> None:
    _, times = seeded
    expected = FAULT[uid] if uid in SILENCE else set()
    assert history[uid][times.silences[silence]] == expected


@pytest.mark.parametrize("uid", sorted(FAULT))
def test_a_fleet_copy_fires_as_the_rule_it_copies(
    uid: str, seeded: tuple[InfluxClient, Times], history: dict[str, dict[int, set[Labels]]]
) -> None:
    """The operator's per-home copy (energymon grafana push --fleet), evaluated on the same
    data: only its uid, title, texts, labels and data source differ."""
    client, times = seeded
    group = home_group("home-f", "energymon-home-home-f")
    [index] = [i for i, r in enumerate(alerts.RULES) if r.uid == uid]
    copy_ = group.body(group.rules[index], alerts.ORG_ID)
    assert copy_["uid"] != uid
    fired = dict(zip(times.schedule, run(client, copy_, times.schedule), strict=True))
    assert fired == history[uid]


def test_clean_home_never_fires(history: dict[str, dict[int, set[Labels]]]) -> None:
    fired = {
        (uid, labels)
        for uid, by_time in history.items()
        for firing in by_time.values()
        for labels in firing
        if ("home", "home-c") in labels
    }
    assert fired == set()


@pytest.fixture(scope="module")
def collector_gone(influx_server: InfluxServer, seeded: tuple[InfluxClient, Times]) -> Any:
    """A database where the whole collector stops at FAULT_AT: every query finds nothing."""
    _, times = seeded
    client = InfluxClient(influx_server.url, f"alerts_gone_{next(_numbers)}")
    client.create_database()
    seed = Seed(times)
    client.write(
        [
            line
            for line in seed.health_lines()
            if "home=home-f" in line and int(line.rsplit(" ", 1)[1]) <= times.fault_at
        ]
    )
    yield client, times
    client.close()


@pytest.mark.parametrize("uid", sorted(SILENCE - {"energymon-home-quiet"}))
def test_no_data_never_clears_a_firing_silence(uid: str, collector_gone: Any) -> None:
    client, times = collector_gone
    schedule = [*times.schedule[:4], times.silences["1h"], times.silences["1w"]]
    firing = run(client, BY_UID[uid], schedule)
    assert firing[3] == FAULT[uid]
    # The collector is gone too: the query finds nothing, the silence stays firing, and in time
    # every instance the rule knew fires.
    assert FAULT[uid] <= firing[4]
    assert firing[5] == _known(uid)
    careless = copy.deepcopy(BY_UID[uid]) | {"noDataState": "OK"}
    assert run(client, careless, schedule)[4] == set()


def _known(uid: str) -> set[Labels]:
    """The other instances of home-f the rule knew before the collector went."""
    if uid == "energymon-device-quiet":
        return {device("home-f", m.device) for m in METERS if m.home == "home-f"}
    return {meter("home-f", m.device, m.sensor) for m in METERS if m.home == "home-f"}


@pytest.mark.parametrize("kind", ["ge", "le", "gt_", "above"])
def test_the_evaluator_knows_only_grafanas_threshold_functions(kind: str) -> None:
    with pytest.raises(UnknownExpressionError):
        threshold(kind, [1.0])
    assert {"gte", "lte", "within_range", "outside_range"} <= set(THRESHOLDS)


def test_ranged_thresholds_need_two_parameters() -> None:
    with pytest.raises(UnknownExpressionError):
        threshold("outside_range", [1.0])
    inside = threshold("within_range", [1.0, 3.0])
    assert inside(2.0) and not inside(3.0)
    assert threshold("within_range_included", [1.0, 3.0])(3.0)


def test_a_rule_with_ge_is_refused(seeded: tuple[InfluxClient, Times]) -> None:
    client, times = seeded
    rule = copy.deepcopy(BY_UID["energymon-parked-points"])
    rule["data"][-1]["model"]["conditions"][0]["evaluator"]["type"] = "ge"
    with pytest.raises(UnknownExpressionError):
        RuleState(rule).step(client, times.fault_at)


def test_math_joins_series_by_labels_as_grafana_does() -> None:
    m1 = meter("h1", "d", "s1")
    m2 = meter("h2", "d", "s1")
    per_meter = {m1: 190.0, m2: 230.0}
    per_home = {home("h1"): 198.0, home("h2"): 198.0, home("h3"): 198.0}
    # A meter's labels contain its home's: each meter meets its own home's threshold only.
    assert evaluate_math("$V < $LOW", {"V": per_meter, "LOW": per_home}) == {m1: 1.0, m2: 0.0}
    # Same number of labels, different values: no join.
    assert union({home("h1"): 1.0, home("h2"): 1.0}, {home("h3"): 1.0}) == []
    # One value on each side joins whatever the labels, and drops them.
    assert union({home("h1"): 1.0}, {(("site", "x"),): 2.0}) == [((), 1.0, 2.0)]
    # An unlabelled side joins everything.
    assert evaluate_math("$A > 2", {"A": per_meter}) == {m1: 1.0, m2: 1.0}
    assert evaluate_math("($A > 200) && ($A < 1000) || 0", {"A": per_meter}) == {
        m1: 0.0,
        m2: 1.0,
    }


def test_math_nan_is_alerting_unless_a_threshold_follows() -> None:
    nan = evaluate_math("$A > 1", {"A": {home("h"): math.nan}})
    assert math.isnan(nan[home("h")])
    assert not threshold("gt", [0.0])(math.nan)


def test_rules_are_generated_from_python() -> None:
    generated = alerts.provisioning_file()
    assert [r["uid"] for r in generated["groups"][0]["rules"]] == [r["uid"] for r in RULES]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: str(r["uid"]))
def test_rule_is_well_formed(rule: dict[str, Any]) -> None:
    refs = [d["refId"] for d in rule["data"]]
    assert len(refs) == len(set(refs)) and rule["condition"] == refs[-1]
    uids = datasource_uids() | {"__expr__"}
    for data in rule["data"]:
        assert data["datasourceUid"] in uids
        model = data["model"]
        assert model["refId"] == data["refId"]
        if data["datasourceUid"] == "__expr__":
            earlier = refs[: refs.index(data["refId"])]
            if model["type"] == "math":
                names = set(evaluate_names(model["expression"]))
                assert names and names <= set(earlier)
            else:
                assert model["expression"] in earlier
        else:
            assert model["rawQuery"] is True and data["relativeTimeRange"]["from"] > 0
            # Provisioned models are read raw (rules_types.go QueryV1.mapToModel), but older
            # Grafana versions expanded "$NAME" in them as an environment variable.
            assert "$" not in model["query"]
            assert "now()" in model["query"]
    final = rule["data"][-1]["model"]
    assert final["type"] == "threshold", "a NaN must not reach the condition"
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    assert all(annotations.values())
    assert "$labels.home" in annotations["summary"]
    # Annotations are expanded only as ${VAR} (ValueWithBracedVars) and labels fully.
    assert not any("${" in v for v in annotations.values())
    assert not any("$" in v for v in rule["labels"].values())
    assert rule["noDataState"] == ("Alerting" if rule["uid"] in SILENCE else "OK")
    assert rule["execErrState"] in {"Alerting", "Error"}


def evaluate_names(expression: str) -> list[str]:
    return re.findall(r"\$\{?(\w+)", expression)


def test_rule_uids_are_unique() -> None:
    uids = [r["uid"] for r in RULES]
    assert len(uids) == len(set(uids))
