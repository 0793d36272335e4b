"""The alerting provisioning files: generated from Python, key by key what Grafana's readers
take, in the folder the dashboards use, with secrets from the environment only.

The key sets below are transcribed from Grafana's source (grafana/grafana, grafana/alerting):
each names the struct it comes from. A key outside them is one Grafana silently ignores.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from energymon_grafana import alerts, notify
from energymon_grafana.alert_model import EXPR_UID, Rule, rule_dict
from energymon_grafana.alerting_files import alerting_files
from energymon_grafana.push import expand_env
from tests.grafana.grafana_files import ALERT_FILES, GRAFANA, ROOT, load_yaml

ALERTING = GRAFANA / "provisioning" / "alerting"
# pkg/services/provisioning/alerting/types.go AlertingFileV1 (+ configVersion)
FILE_KEYS = {
    "apiVersion",
    "groups",
    "deleteRules",
    "contactPoints",
    "deleteContactPoints",
    "policies",
    "resetPolicies",
    "muteTimes",
    "deleteMuteTimes",
    "templates",
    "deleteTemplates",
}
# rules_types.go AlertRuleGroupV1, AlertRuleV1, QueryV1; models.RelativeTimeRange
GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}
RULE_KEYS = {
    "uid",
    "title",
    "condition",
    "data",
    "dasboardUid",
    "dashboardUid",
    "panelId",
    "noDataState",
    "execErrState",
    "for",
    "keepFiringFor",
    "missing_series_evals_to_resolve",
    "annotations",
    "labels",
    "isPaused",
    "notification_settings",
    "record",
}
QUERY_KEYS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
RANGE_KEYS = {"from", "to"}
# models.NoDataStateFromString, ErrStateFromString
NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}
# pkg/expr: reduce (ReduceCommand: expression, reducer, settings.mode), math, threshold
EXPR_KEYS = {
    "reduce": {"refId", "type", "expression", "reducer", "settings", "datasource"},
    "math": {"refId", "type", "expression", "datasource"},
    "threshold": {"refId", "type", "expression", "conditions", "datasource"},
}
REDUCE_MODES = {"", "dropNN", "replaceNN"}
# contact_point_types.go ContactPointV1, ReceiverV1
CONTACT_POINT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
# grafana/alerting receivers/email/config.go, receivers/telegram/config.go
SETTINGS_KEYS = {
    "email": {"singleEmail", "addresses", "message", "subject"},
    "telegram": {
        "bottoken",
        "chatid",
        "message_thread_id",
        "message",
        "parse_mode",
        "disable_web_page_preview",
        "protect_content",
        "disable_notifications",
    },
}
REQUIRED_SETTINGS = {"email": {"addresses"}, "telegram": {"bottoken", "chatid"}}
TELEGRAM_PARSE_MODES = {"Markdown", "MarkdownV2", "HTML", "None"}
# notification_policy_types.go: orgId + the route inline (alertmanager config Route as Grafana
# extends it: definitions.Route)
POLICY_KEYS = {
    "orgId",
    "receiver",
    "group_by",
    "continue",
    "object_matchers",
    "matchers",
    "mute_time_intervals",
    "active_time_intervals",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "routes",
}
# text_templates_types.go TemplateV1 (definitions.MessageTemplate inline)
TEMPLATE_KEYS = {"orgId", "name", "template"}
DURATION = re.compile(r"^(\d+[smhdwy])+$")


def files() -> dict[str, dict[str, Any]]:
    return {path.name: load_yaml(path) for path in ALERT_FILES}


def test_committed_files_are_the_generated_ones() -> None:
    generated = alerting_files()
    assert sorted(generated) == sorted(p.name for p in ALERT_FILES)
    for name, text in generated.items():
        assert (ALERTING / name).read_text() == text, (
            f"{name} differs: run `energymon grafana build`"
        )
    assert yaml.safe_load(generated["energymon.yaml"]) == alerts.provisioning_file()


def test_file_and_group_keys() -> None:
    for name, content in files().items():
        assert set(content) <= FILE_KEYS, name
        assert content["apiVersion"] == 1
        for group in content.get("groups", []):
            assert set(group) <= GROUP_KEYS
            assert DURATION.match(group["interval"])


@pytest.mark.parametrize("rule", alerts.RULES, ids=lambda r: r.uid)
def test_rule_keys(rule: Rule) -> None:
    data = rule_dict(rule)
    assert set(data) <= RULE_KEYS
    assert data["noDataState"] in NO_DATA_STATES and data["execErrState"] in ERR_STATES
    assert DURATION.match(data["for"])
    assert set(data["annotations"]) == {"summary", "description", "runbook"}
    for query in data["data"]:
        assert set(query) <= QUERY_KEYS
        model = query["model"]
        if query["datasourceUid"] == EXPR_UID:
            assert set(model) == EXPR_KEYS[model["type"]]
            if model["type"] == "reduce":
                assert model["settings"]["mode"] in REDUCE_MODES
        else:
            assert set(query["relativeTimeRange"]) == RANGE_KEYS


def test_notification_keys() -> None:
    content = notify.provisioning_file()
    [cp] = content["contactPoints"]
    assert set(cp) <= CONTACT_POINT_KEYS
    kinds = set()
    for receiver in cp["receivers"]:
        assert set(receiver) <= RECEIVER_KEYS
        kind = receiver["type"]
        kinds.add(kind)
        assert REQUIRED_SETTINGS[kind] <= set(receiver["settings"]) <= SETTINGS_KEYS[kind]
    assert kinds == {"email", "telegram"}
    [telegram] = [r for r in cp["receivers"] if r["type"] == "telegram"]
    assert telegram["settings"]["parse_mode"] in TELEGRAM_PARSE_MODES
    [policy] = content["policies"]
    assert set(policy) <= POLICY_KEYS
    for route in policy["routes"]:
        assert set(route) <= POLICY_KEYS - {"orgId"}
        assert route["receiver"] == cp["name"]
    assert policy["receiver"] == cp["name"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert DURATION.match(policy[key])
    [template] = content["templates"]
    assert set(template) <= TEMPLATE_KEYS
    for name in ("energymon.title", "energymon.message"):
        assert f'define "{name}"' in template["template"]
        assert any(name in str(r["settings"]) for r in cp["receivers"])


def test_secrets_come_from_the_environment_only() -> None:
    """Grafana expands $VAR in contact point settings and policies (provisioning values
    package): every `$` there is one of our GRAFANA_* references, and the Go templating that
    needs `$` stays in the template, which Grafana does not expand."""
    content = notify.provisioning_file()
    text = yaml.safe_dump({k: content[k] for k in ("contactPoints", "policies")})
    references = set(re.findall(r"\$(\w+)", text))
    assert references == {v for i in notify.INTEGRATIONS for v in i.env}
    assert all(name.startswith("GRAFANA_") for name in references)
    assert "$$" not in text and "${" not in text
    env = dict.fromkeys(references, "x")
    assert "$" not in expand_env(text, env)


def _grafana_env(compose: str) -> dict[str, object]:
    path = ROOT / "docker" / f"docker-compose.{compose}.yml"
    env: dict[str, object] = yaml.safe_load(path.read_text())["services"]["grafana"]["environment"]
    return env


@pytest.mark.parametrize("compose", ["pi", "cloud"])
def test_compose_gives_grafana_its_smtp_settings(compose: str) -> None:
    env = _grafana_env(compose)
    # Grafana's [smtp] section (pkg/setting/setting_smtp.go) through GF_<SECTION>_<KEY>.
    for key in ("ENABLED", "HOST", "USER", "PASSWORD", "FROM_ADDRESS", "STARTTLS_POLICY"):
        assert f"GF_SMTP_{key}" in env
    # Nothing secret in the file: every credential is a reference to docker/.env.
    assert str(env["GF_SMTP_PASSWORD"]).startswith("${")


def test_the_pi_compose_gives_the_provisioned_contact_point_its_settings() -> None:
    """On the Pi the contact point is provisioned from files that reference these variables."""
    env = _grafana_env("pi")
    assert {v for i in notify.INTEGRATIONS for v in i.env} <= set(env)
    for key in ("GRAFANA_TELEGRAM_BOT_TOKEN", "GRAFANA_ALERT_EMAIL"):
        assert str(env[key]).startswith("${"), key


def test_the_cloud_compose_leaves_contact_points_to_the_push() -> None:
    """In the cloud `energymon grafana push` fills the addresses in from the shell running it,
    per organisation (docs/dashboards.md): Grafana's own environment must not carry one home's."""
    env = _grafana_env("cloud")
    assert not {v for i in notify.INTEGRATIONS for v in i.env} & set(env)


def test_one_folder_for_rules_and_dashboards() -> None:
    """Grafana provisions alerting first (RunInitProvisioners) and creates the rules' folder by
    title with a random uid (rules_provisioner.go getOrCreateFolderByTitle); the dashboard
    provider runs later and looks its folder up by `folderUid` when it has one, else by title
    (dashboards/file_reader.go getOrCreateFolder). A `folderUid` there misses the alerting
    folder and makes a second "energymon" (Grafana issues 125079, 87889): so the provider names
    the same title and no uid, and finds the one folder."""
    [group] = files()["energymon.yaml"]["groups"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "energymon.yaml")["providers"]
    assert group["folder"] == alerts.FOLDER_TITLE
    for provider in providers:
        assert provider["folder"] == alerts.FOLDER_TITLE
        assert "folderUid" not in provider
