"""`energymon grafana push` against a fake Grafana on loopback (tests/grafana/fake_grafana.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from energymon.errors import GrafanaApiError
from energymon_cli.main import main
from energymon_grafana import alerts, notify
from energymon_grafana.push import Pusher, connect, expand_env
from tests.grafana.fake_grafana import REDACTED, FakeGrafana, serving
from tests.grafana.grafana_files import DASHBOARDS

ENV = {
    "GRAFANA_ALERT_EMAIL": "owner@example.org",
    "GRAFANA_TELEGRAM_BOT_TOKEN": "123456:bot-token",
    "GRAFANA_TELEGRAM_CHAT_ID": "-100200300",
}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    with serving(fake) as url:
        yield fake, url


def push(url: str, *extra: str, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return main(["grafana", "push", "--url", url, "--token", "service-account-token", *extra])


def test_push_creates_everything_then_changes_nothing(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert push(url, monkeypatch=monkeypatch) == 0
    s = fake.state
    assert list(s.folders) == [alerts.FOLDER_UID]
    assert s.folders[alerts.FOLDER_UID]["title"] == alerts.FOLDER_TITLE
    assert {d["meta"]["folderUid"] for d in s.dashboards.values()} == {alerts.FOLDER_UID}
    assert set(s.dashboards) == {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert set(s.rules) == {r.uid for r in alerts.RULES}
    assert {r["folderUID"] for r in s.rules.values()} == {alerts.FOLDER_UID}
    assert s.groups == {(alerts.FOLDER_UID, alerts.GROUP): 60}
    assert s.contact_points[notify.EMAIL_UID]["settings"]["addresses"] == "owner@example.org"
    assert s.contact_points[notify.TELEGRAM_UID]["settings"]["chatid"] == "-100200300"
    assert s.policy["receiver"] == notify.CONTACT_POINT
    assert s.templates == {notify.TEMPLATE_NAME: notify.TEMPLATE}
    first = len(s.writes)
    assert first > 0
    capsys.readouterr()

    assert push(url, monkeypatch=monkeypatch) == 0
    assert len(s.writes) == first, s.writes[first:]
    out = capsys.readouterr()
    assert out.out == "" and "changed 0 resources" in out.err


def test_dry_run_shows_the_diff_and_writes_nothing(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert push(url, monkeypatch=monkeypatch) == 0
    fake.state.rules["energymon-replication-lag"]["for"] = "10m"
    fake.state.policy["repeat_interval"] = "12h"
    writes = len(fake.state.writes)
    capsys.readouterr()

    assert push(url, "--dry-run", monkeypatch=monkeypatch) == 0
    assert len(fake.state.writes) == writes
    out = capsys.readouterr()
    assert "would change 2 resources" in out.err
    assert '-  "for": "10m",' in out.out and '+  "for": "5m",' in out.out
    assert '-  "repeat_interval": "12h",' in out.out
    assert "+++ energymon: alert rule energymon-replication-lag" in out.out

    assert push(url, monkeypatch=monkeypatch) == 0
    assert fake.state.rules["energymon-replication-lag"]["for"] == "5m"
    assert fake.state.writes[writes:] == [
        "PUT /api/v1/provisioning/policies",
        "PUT /api/v1/provisioning/alert-rules/energymon-replication-lag",
    ]


def test_the_fake_serves_only_what_the_push_calls(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every endpoint of the fake is one grafana-client reaches: a first push creates, a second
    after edits in Grafana updates each kind of resource, a fleet push lists data sources."""
    fake, url = grafana
    assert push(url, monkeypatch=monkeypatch) == 0
    fake.state.folders[alerts.FOLDER_UID]["title"] = "renamed"
    fake.state.contact_points[notify.TELEGRAM_UID]["settings"]["chatid"] = "1"
    fake.state.rules["energymon-replication-lag"]["for"] = "10m"
    assert push(url, monkeypatch=monkeypatch) == 0
    fake.state.add_datasource("energymon-home-smith", "energymon-home-smith")
    assert push(url, "--fleet", monkeypatch=monkeypatch) == 0
    assert fake.routes_hit == {f"{verb} {pattern.pattern}" for verb, pattern, _ in fake.routes}
    assert fake.unrouted == []
    assert fake.state.folders[alerts.FOLDER_UID]["title"] == alerts.FOLDER_TITLE


def test_a_redacted_secret_counts_as_set_and_is_never_printed(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert push(url, monkeypatch=monkeypatch) == 0
    assert fake.state.contact_points[notify.TELEGRAM_UID]["settings"]["bottoken"] != REDACTED
    capsys.readouterr()
    assert push(url, "--dry-run", monkeypatch=monkeypatch) == 0
    assert "would change 0 resources" in capsys.readouterr().err
    fake.state.contact_points[notify.TELEGRAM_UID]["settings"]["chatid"] = "1"
    assert push(url, "--dry-run", monkeypatch=monkeypatch) == 0
    shown = capsys.readouterr().out
    assert "-100200300" in shown and ENV["GRAFANA_TELEGRAM_BOT_TOKEN"] not in shown


def test_an_unconfigured_integration_is_left_out(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    monkeypatch.delenv("GRAFANA_TELEGRAM_BOT_TOKEN", raising=False)
    api = connect(url, "service-account-token", None, None)
    pusher = Pusher(api, {"GRAFANA_ALERT_EMAIL": "a@example.org"}, DASHBOARDS[0].parent)
    for change in pusher.plan():
        change.write()
    assert set(fake.state.contact_points) == {notify.EMAIL_UID}


def test_basic_auth_and_a_refusal(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    assert main(["grafana", "push", "--url", url, "--user", "admin", "--password", "secret"]) == 0
    assert fake.state.rules and not fake.state.contact_points
    assert fake.state.policy["receiver"] == "grafana-default-email"
    assert main(["grafana", "push", "--url", url, "--user", "admin", "--password", "wrong"]) == 2
    with pytest.raises(GrafanaApiError, match="401"):
        Pusher(connect(url, "wrong", None, None), {}, Path(DASHBOARDS[0].parent)).plan()


@pytest.mark.parametrize(
    ("url", "api"),
    [
        ("http://g.example:3000", "http://g.example:3000/api"),
        ("https://g.example/grafana", "https://g.example/grafana/api"),
        ("https://g.example/grafana/?verify=false", "https://g.example/grafana/api"),
    ],
)
def test_the_api_sits_under_the_urls_path(url: str, api: str) -> None:
    assert connect(url, "token", None, None).client.url == api


def test_env_expansion_is_grafanas() -> None:
    env = {"A": "x", "LONG_NAME": "y"}
    assert expand_env("$A-${LONG_NAME}-$UNSET-$$A", env) == "x-y--$A"
