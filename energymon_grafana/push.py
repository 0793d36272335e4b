"""`energymon grafana push`: upload the folder, dashboards, alert rules, message template,
contact point and notification policy to an existing Grafana over its HTTP API, for a hosted
Grafana where provisioning files cannot be mounted.

It writes into one organisation (`--org-id`, sent as X-Grafana-Org-Id): a home's, where the
rules read the data source `energymon`, or with `--fleet` the operator's, which gets the Fleet
dashboard and one rule group per `energymon-home-NAME` data source (rule_groups.py).

Each resource is read first and written only when it differs from what we would send (compared
on the keys we send: Grafana adds its own, such as ids and versions), so a second push changes
nothing, and `--dry-run` prints the same plan as a diff without writing.

The calls go through grafana-client, pinned to its last 3.x release: from 4.0 on it depends on
niquests and with it urllib3-future, whose `.pth` startup hook overwrites the environment's
urllib3, the transport under the collector's and replicator's InfluxDB client
(docs/dependencies.md). Its element objects (folder, dashboard, alertingprovisioning) name the
endpoints; their errors become GrafanaApiError, and a 404 on a read means "not there yet".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from energymon.errors import ConfigError, GrafanaApiError
from energymon_grafana import alerts, notify
from energymon_grafana.alert_model import HOME_DATASOURCE_PREFIX
from energymon_grafana.rule_groups import HOME_GROUP, RuleGroup, fleet_groups

# grafana-client's default of a few seconds is short for a hosted Grafana saving a dashboard.
TIMEOUT_S = 30
NOT_FOUND = 404
ORG_HEADER = "X-Grafana-Org-Id"
# fleet.UID, not imported: fleet.py loads the dashboard SDK, which only `grafana build` needs.
FLEET_DASHBOARD = "energymon-fleet"
# A reference to an environment variable, as os.ExpandEnv reads one.
_ENV_NAME = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Change:
    """One write the push makes: what, and the JSON before and after."""

    kind: str
    name: str
    before: Any
    after: Any
    write: Callable[[], Any]
    secure: frozenset[str] = frozenset()

    def diff(self) -> str:
        """The change as a unified diff; secrets never reach the terminal."""
        old = [] if self.before is None else _pretty(_mask(self.before, self.secure))
        return "".join(
            difflib.unified_diff(
                old,
                _pretty(_mask(self.after, self.secure)),
                f"grafana: {self.kind} {self.name}",
                f"energymon: {self.kind} {self.name}",
            )
        )


def _mask(node: Any, secure: frozenset[str]) -> Any:
    if isinstance(node, dict):
        return {k: "[secret]" if k in secure else _mask(v, secure) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v, secure) for v in node]
    return node


def _pretty(value: Any) -> list[str]:
    return [line + "\n" for line in json.dumps(value, indent=2, sort_keys=True).splitlines()]


def expand_env(value: str, env: Mapping[str, str]) -> str:
    """What Grafana's provisioning makes of `value`: `$VAR` and `${VAR}` from the environment
    (unset is empty, as os.ExpandEnv), `$$` a literal `$`."""
    return "$".join(
        _ENV_NAME.sub(lambda m: env.get(m.group(1) or m.group(2), ""), part)
        for part in value.split("$$")
    )


def _expand(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return expand_env(node, env)
    if isinstance(node, dict):
        return {k: _expand(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env) for v in node]
    return node


def project(desired: Any, actual: Any, secure: frozenset[str] = frozenset()) -> Any:
    """`actual` cut down to the keys of `desired`; a secure key that Grafana holds reads as the
    desired value (it answers them redacted)."""
    if isinstance(desired, dict) and isinstance(actual, dict):
        return {
            k: (v if k in secure and actual.get(k) else project(v, actual.get(k), secure))
            for k, v in desired.items()
            if k in actual
        }
    if isinstance(desired, list) and isinstance(actual, list) and len(desired) == len(actual):
        return [project(d, a, secure) for d, a in zip(desired, actual, strict=True)]
    return actual


def connect(
    url: str,
    token: str | None,
    user: str | None,
    password: str | None,
    org_id: int = alerts.ORG_ID,
) -> GrafanaApi:
    """A grafana-client session on the Grafana at `url`, in organisation `org_id`: basic auth
    when `user` is given, else the service account token (or none)."""
    credential: str | tuple[str, str] | None = token
    if user is not None:
        credential = (user, password or "")
    # grafana-client puts "api" straight after the URL's path: a sub-path needs its slash.
    parts = urlsplit(url)
    if not parts.path.endswith("/"):
        parts = parts._replace(path=parts.path + "/")
    api = GrafanaApi.from_url(urlunsplit(parts), credential=credential, timeout=TIMEOUT_S)
    # from_url does not pass `organization_id` on; the session header is what GrafanaClient
    # sets from it, and Grafana reads it per request (authn orgIDFromHeader). A service
    # account token of another organisation is then refused (api-key.organization-mismatch).
    api.client.organization_id = org_id
    api.client.s.headers[ORG_HEADER] = str(org_id)
    return api


def _call(what: str, request: Callable[[], Any], *, absent_is_none: bool = False) -> Any:
    """`request`'s answer, with grafana-client's and requests' errors as GrafanaApiError; with
    `absent_is_none`, a 404 is None (a read of something not created yet)."""
    try:
        return request()
    except GrafanaException as exc:
        if absent_is_none and exc.status_code == NOT_FOUND:
            return None
        # grafana-client's 401 error says only "Unauthorized"; Grafana's body says why.
        said = exc.response.get("message") if isinstance(exc.response, dict) else None
        detail = f"{exc} ({said})" if said and said not in str(exc) else str(exc)
        raise GrafanaApiError(f"{what}: Grafana answered {exc.status_code} {detail}") from exc
    except requests.RequestException as exc:
        raise GrafanaApiError(f"{what}: {exc}") from exc


class Pusher:
    """Plans and makes the writes against one organisation of one Grafana: a home's (every
    dashboard, the rules reading the data source `energymon`), or with `fleet` the operator's
    (the Fleet dashboard, one rule group per home data source)."""

    def __init__(
        self,
        api: GrafanaApi,
        env: Mapping[str, str],
        dashboards_dir: Path,
        *,
        org_id: int = alerts.ORG_ID,
        fleet: bool = False,
    ) -> None:
        self.api = api
        self.provisioning = api.alertingprovisioning
        self.env = env
        self.dashboards_dir = dashboards_dir
        self.org_id = org_id
        self.fleet = fleet

    def _change(
        self,
        kind: str,
        name: str,
        desired: Any,
        actual: Any,
        write: Callable[[], Any],
        *,
        secure: frozenset[str] = frozenset(),
    ) -> list[Change]:
        before = None if actual is None else project(desired, actual, secure)
        if before == desired:
            return []
        return [
            Change(kind, name, before, desired, partial(_call, f"{kind} {name}", write), secure)
        ]

    def folder(self) -> list[Change]:
        desired = {"uid": alerts.FOLDER_UID, "title": alerts.FOLDER_TITLE}
        folders = self.api.folder
        actual = _call(
            "folder", partial(folders.get_folder, alerts.FOLDER_UID), absent_is_none=True
        )
        write = (
            partial(folders.create_folder, alerts.FOLDER_TITLE, uid=alerts.FOLDER_UID)
            if actual is None
            else partial(
                folders.update_folder, alerts.FOLDER_UID, title=alerts.FOLDER_TITLE, overwrite=True
            )
        )
        return self._change("folder", alerts.FOLDER_UID, desired, actual, write)

    def dashboards(self) -> list[Change]:
        changes = []
        for path in sorted(self.dashboards_dir.glob("*.json")):
            board = json.loads(path.read_text())
            if self.fleet and board["uid"] != FLEET_DASHBOARD:
                continue
            board.pop("id", None)
            board.pop("version", None)
            desired = {"dashboard": board, "meta": {"folderUid": alerts.FOLDER_UID}}
            actual = _call(
                "dashboard",
                partial(self.api.dashboard.get_dashboard, board["uid"]),
                absent_is_none=True,
            )
            body = {
                "dashboard": board,
                "folderUid": alerts.FOLDER_UID,
                "overwrite": True,
                "message": "energymon grafana push",
            }
            changes += self._change(
                "dashboard",
                board["uid"],
                desired,
                actual,
                partial(self.api.dashboard.update_dashboard, body),
            )
        return changes

    def template(self) -> list[Change]:
        desired = {"name": notify.TEMPLATE_NAME, "template": notify.TEMPLATE}
        actual = _call(
            "template",
            partial(self.provisioning.get_template, notify.TEMPLATE_NAME),
            absent_is_none=True,
        )
        return self._change(
            "template",
            notify.TEMPLATE_NAME,
            desired,
            actual,
            partial(
                self.provisioning.create_or_update_template,
                notify.TEMPLATE_NAME,
                {"template": notify.TEMPLATE},
            ),
        )

    def configured(self) -> list[notify.Integration]:
        """The integrations whose environment variables are all set."""
        return [i for i in notify.INTEGRATIONS if all(self.env.get(v) for v in i.env)]

    def contact_points(self) -> list[Change]:
        existing = _call("contact points", self.provisioning.get_contactpoints)
        by_uid = {cp["uid"]: cp for cp in existing}
        changes = []
        for integration in self.configured():
            desired = {
                **notify.receiver_dict(integration),
                "name": notify.CONTACT_POINT,
                "settings": _expand(integration.settings, self.env),
            }
            actual = by_uid.get(integration.uid)
            write = (
                partial(self.provisioning.create_contactpoint, desired)
                if actual is None
                else partial(self.provisioning.update_contactpoint, integration.uid, desired)
            )
            changes += self._change(
                "contact point",
                integration.uid,
                desired,
                actual,
                write,
                secure=frozenset(integration.secure),
            )
        return changes

    def policy(self) -> list[Change]:
        desired = _expand(notify.POLICY, self.env)
        return self._change(
            "policy",
            "root",
            desired,
            _call("policy", self.provisioning.get_notification_policy_tree, absent_is_none=True),
            partial(self.provisioning.set_notification_policy_tree, desired),
        )

    def rule_groups(self) -> list[RuleGroup]:
        """The home's group, or in fleet mode one group per home data source of the org."""
        if not self.fleet:
            return [HOME_GROUP]
        groups = fleet_groups(_call("data sources", self.api.datasource.list_datasources))
        if not groups:
            raise ConfigError(
                f"organisation {self.org_id} has no InfluxDB data source named "
                f"{HOME_DATASOURCE_PREFIX}NAME: add the homes' data sources first"
            )
        return groups

    def rules(self) -> list[Change]:
        changes = []
        interval_s = int(alerts.GROUP_INTERVAL.removesuffix("m")) * 60
        for group in self.rule_groups():
            bodies = []
            for rule in group.rules:
                desired = group.body(rule, self.org_id)
                bodies.append(desired)
                actual = _call(
                    "alert rule",
                    partial(self.provisioning.get_alertrule, rule.uid),
                    absent_is_none=True,
                )
                write = (
                    partial(self.provisioning.create_alertrule, desired)
                    if actual is None
                    else partial(self.provisioning.update_alertrule, rule.uid, desired)
                )
                changes += self._change("alert rule", rule.uid, desired, actual, write)
            body = {
                "title": group.title,
                "folderUid": alerts.FOLDER_UID,
                "interval": interval_s,
                "rules": bodies,
            }
            actual_group = _call(
                "rule group",
                partial(self.provisioning.get_rule_group, alerts.FOLDER_UID, group.title),
                absent_is_none=True,
            )
            actual_interval = (
                None if actual_group is None else {"interval": actual_group["interval"]}
            )
            changes += self._change(
                "rule group",
                group.title,
                {"interval": interval_s},
                actual_interval,
                partial(self.provisioning.update_rule_group, alerts.FOLDER_UID, group.title, body),
            )
        return changes

    def plan(self) -> list[Change]:
        """Every write, in an order where each one's dependencies exist before it. Without a
        configured integration there is no contact point for the policy to route to, and
        Grafana would refuse it: the policy is then left as it is."""
        return [
            *self.folder(),
            *self.dashboards(),
            *self.template(),
            *self.contact_points(),
            *(self.policy() if self.configured() else []),
            *self.rules(),
        ]
