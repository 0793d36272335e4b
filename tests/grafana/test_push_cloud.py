"""`energymon grafana push` in the cloud: into a home's organisation (`--org-id`), and into the
operator's with one rule group per home (`--fleet`), against the fake Grafana."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from energymon.errors import ConfigError
from energymon_cli.main import main
from energymon_grafana import alerts, fleet
from energymon_grafana.alert_model import DATASOURCE_UID, Rule, rule_dict
from energymon_grafana.push import FLEET_DASHBOARD
from energymon_grafana.rule_groups import MAX_UID_CHARS, home_group
from tests.grafana.fake_grafana import FakeGrafana, serving
from tests.grafana.grafana_files import DASHBOARDS
from tests.grafana.test_push import ENV

HOMES = {"smith": "energymon-home-smith", "jones": "ds-jones-7f3a"}
UID = re.compile(r"[a-zA-Z0-9_-]{1,40}")


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana(orgs=3)
    with serving(fake) as url:
        yield fake, url


def push(url: str, *extra: str, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return main(
        ["grafana", "push", "--url", url, "--user", "admin", "--password", "secret", *extra]
    )


def queried(rule: dict[str, Any]) -> set[str]:
    return {d["datasourceUid"] for d in rule["data"] if d["datasourceUid"] != "__expr__"}


def test_a_home_organisation_gets_everything_reading_its_energymon_source(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert push(url, "--org-id", "2", monkeypatch=monkeypatch) == 0
    home, operator = fake.orgs[2], fake.orgs[1]
    assert set(home.dashboards) == {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert set(home.rules) == {r.uid for r in alerts.RULES}
    for rule in home.rules.values():
        assert rule["orgID"] == 2
        assert queried(rule) == {DATASOURCE_UID}
    assert home.groups == {(alerts.FOLDER_UID, alerts.GROUP): 60}
    assert home.policy["receiver"] == "energymon" and home.templates
    assert operator.writes == [] and fake.orgs[3].writes == []
    first = len(home.writes)
    capsys.readouterr()

    assert push(url, "--org-id", "2", monkeypatch=monkeypatch) == 0
    assert len(home.writes) == first, home.writes[first:]
    assert "changed 0 resources" in capsys.readouterr().err


def test_a_token_of_another_organisation_is_refused(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Grafana's api_key client: a service account belongs to one organisation."""
    fake, url = grafana
    fake.tokens["home-three-token"] = 3
    base = ["grafana", "push", "--url", url, "--token"]
    assert main([*base, "service-account-token", "--org-id", "3"]) == 2
    assert "does not belong to the requested organization" in capsys.readouterr().err
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert main([*base, "home-three-token", "--org-id", "3"]) == 0
    assert set(fake.orgs[3].rules) == {r.uid for r in alerts.RULES}
    assert fake.orgs[1].rules == {}


def test_fleet_push_makes_one_group_per_home_reading_its_source(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    operator = fake.orgs[1]
    for home, uid in HOMES.items():
        operator.add_datasource(f"energymon-home-{home}", uid)
    operator.add_datasource("energymon-home-elsewhere", "prom", kind="prometheus")
    operator.add_datasource("cloud-admin", "cloud-admin")
    assert push(url, "--fleet", monkeypatch=monkeypatch) == 0

    assert set(operator.dashboards) == {"energymon-fleet"}
    expected = {home_group(home, uid).title: (home, uid) for home, uid in HOMES.items()}
    assert set(operator.groups) == {(alerts.FOLDER_UID, title) for title in expected}
    assert len(operator.rules) == len(HOMES) * len(alerts.RULES)
    for rule in operator.rules.values():
        home, uid = expected[rule["ruleGroup"]]
        assert queried(rule) == {uid}
        assert rule["labels"]["home"] == home
        assert rule["title"].endswith(f"({home})")
        summary = rule["annotations"]["summary"]
        assert "$labels.home" not in summary and home in summary
        assert UID.fullmatch(rule["uid"])
    assert operator.policy["receiver"] == "energymon"
    assert all(org.writes == [] for org in (fake.orgs[2], fake.orgs[3]))
    first = len(operator.writes)
    capsys.readouterr()

    assert push(url, "--fleet", monkeypatch=monkeypatch) == 0
    assert len(operator.writes) == first, operator.writes[first:]
    assert "changed 0 resources" in capsys.readouterr().err

    operator.add_datasource("energymon-home-new", "energymon-home-new")
    assert push(url, "--fleet", "--dry-run", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr()
    assert f"would change {len(alerts.RULES) + 1} resources" in out.err
    assert '"datasourceUid": "energymon-home-new"' in out.out
    assert len(operator.writes) == first


def test_fleet_push_without_home_sources_says_so(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fake, url = grafana
    assert push(url, "--fleet", "--dry-run", monkeypatch=monkeypatch) == 2
    assert "no InfluxDB data source named energymon-home-NAME" in capsys.readouterr().err


@pytest.mark.parametrize(
    "homes",
    [
        ("smith", "jones"),
        ("a b", "a-b", "a_b"),
        ("Keluarga Santoso di Jalan Panjang Sekali Nomor 17", "x" * 100, "rumah/🏠"),
    ],
)
def test_derived_uids_are_valid_and_never_collide(homes: tuple[str, ...]) -> None:
    groups = [home_group(home, f"ds-{i}") for i, home in enumerate(homes)]
    uids = [r.uid for g in groups for r in g.rules]
    titles = [r.title for g in groups for r in g.rules]
    assert all(
        UID.fullmatch(u) and len(u) <= MAX_UID_CHARS for u in uids + [g.title for g in groups]
    )
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    assert len({g.title for g in groups}) == len(groups)
    assert home_group(homes[0], "other").rules == groups[0].rules


def test_a_home_name_with_template_syntax_stays_text() -> None:
    [rule] = [r for r in home_group("{{ evil }}", "ds").rules if r.uid.startswith("home-quiet")]
    assert rule.summary.startswith('Home {{ "{{ evil }}" }} has sent')


@pytest.mark.parametrize("rule", alerts.RULES, ids=lambda r: r.uid)
def test_a_home_rule_differs_only_in_identity_text_and_source(rule: Rule) -> None:
    """The steps the evaluator runs are the same (test_alerts.py evaluates the copies too)."""
    group = home_group("smith", "energymon-home-smith")
    derived = group.rules[alerts.RULES.index(rule)]
    original, copy = rule_dict(rule), group.body(derived, 1)
    for key in ("condition", "noDataState", "execErrState", "for", "isPaused"):
        assert copy[key] == original[key]
    for ours, theirs in zip(copy["data"], original["data"], strict=True):
        reads = theirs["datasourceUid"]
        expected = "energymon-home-smith" if reads == DATASOURCE_UID else reads
        assert ours == {**theirs, "datasourceUid": expected}


def test_a_too_long_home_name_is_refused_before_grafana_would() -> None:
    with pytest.raises(ConfigError, match="190"):
        home_group("x" * 200, "ds")


def test_the_push_names_the_fleet_dashboard_by_its_uid() -> None:
    assert FLEET_DASHBOARD == fleet.UID
