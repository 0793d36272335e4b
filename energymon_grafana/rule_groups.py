"""The alert rule groups `energymon grafana push` writes: the home's own group, or in the
operator's organisation one group per home.

A home's organisation (and a Pi) has one data source, uid `energymon`, and gets the rules of
alerts.py as they are. The operator's organisation has no `energymon` data source but one per
home, named `energymon-home-NAME` (the Fleet dashboard repeats its row over them); the Fleet
dashboard's alert list sees only its own organisation's alerts. So the operator's organisation
gets the same rules once per home, each group's queries reading that home's data source.

In one organisation Grafana keeps a rule's uid unique and its title unique within its folder
(the unique indexes of alert_rule on org_id+uid and org_id+namespace_uid+title), and refuses a
uid longer than 40 characters or with characters other than letters, digits, `-` and `_`
(pkg/util/shortid_generator.go, MaxUIDLength and validUIDPattern): a home's rules therefore get
uids from a readable prefix and a hash of the home's exact name, and titles ending in the name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from energymon.errors import ConfigError
from energymon_grafana import alerts
from energymon_grafana.alert_model import DATASOURCE_UID, HOME_DATASOURCE_PREFIX, Rule, rule_dict

MAX_UID_CHARS = 40
# pkg/services/ngalert/store: AlertRuleMaxTitleLength and AlertRuleMaxRuleGroupNameLength.
MAX_TITLE_CHARS = 190
HASH_CHARS = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_HOME_LABEL = "{{ $labels.home }}"


@dataclass(frozen=True)
class RuleGroup:
    """One rule group: its title, its rules, the data source their queries read, and labels
    every rule of it carries."""

    title: str
    rules: tuple[Rule, ...]
    datasource_uid: str
    labels: tuple[tuple[str, str], ...] = ()

    def body(self, rule: Rule, org_id: int) -> dict[str, Any]:
        """`rule` as the provisioning API takes it (ProvisionedAlertRule)."""
        data = rule_dict(rule, self.datasource_uid)
        return {
            **data,
            "labels": {**data["labels"], **dict(self.labels)},
            "orgID": org_id,
            "folderUID": alerts.FOLDER_UID,
            "ruleGroup": self.title,
        }


HOME_GROUP = RuleGroup(alerts.GROUP, alerts.RULES, DATASOURCE_UID)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:HASH_CHARS]


def _uid(readable: str, *identity: str) -> str:
    """A valid Grafana uid: `readable` cleaned and cut, then a hash of `identity`, so two
    homes whose names clean to the same text still differ."""
    prefix = _UNSAFE.sub("-", readable).strip("-")[: MAX_UID_CHARS - HASH_CHARS - 1]
    return f"{prefix}-{_digest(*identity)}"


def _literal(home: str) -> str:
    """The home's name where a Go template reads it: plain when it holds nothing the template
    language would read, else as a quoted string action (JSON's escapes are Go's)."""
    if not any(c in home for c in "{}$"):
        return home
    return "{{ " + json.dumps(home, ensure_ascii=False) + " }}"


def _for_home(rule: Rule, home: str) -> Rule:
    title = f"{rule.title} ({home})"
    if len(title) > MAX_TITLE_CHARS:
        raise ConfigError(
            f"home {home!r}: the rule title {title!r} is longer than Grafana's "
            f"{MAX_TITLE_CHARS} characters"
        )
    # A no-data or error instance has no labels from the query, and templates do not see the
    # rule's own labels: the home is written into the text.
    name = _literal(home)
    return replace(
        rule,
        uid=_uid(f"{rule.uid.removeprefix('energymon-')}-{home}", home, rule.uid),
        title=title,
        summary=rule.summary.replace(_HOME_LABEL, name),
        description=rule.description.replace(_HOME_LABEL, name),
    )


def home_group(home: str, datasource_uid: str) -> RuleGroup:
    """Every rule for one home in the operator's organisation, reading `datasource_uid`. The
    label `home` names the home on every instance, also the no-data and error ones (a rule's
    labels take precedence over the query's: state/cache.go expandAnnotationsAndLabels), so the
    Fleet alert list and the notification policy group them by home."""
    return RuleGroup(
        _uid(f"energymon-{home}", home),
        tuple(_for_home(r, home) for r in alerts.RULES),
        datasource_uid,
        (("home", home),),
    )


def fleet_groups(datasources: Iterable[Mapping[str, Any]]) -> list[RuleGroup]:
    """One group per InfluxDB data source named `energymon-home-NAME` (GET /api/datasources:
    DataSourceListItemDTO), by home name."""
    homes = sorted(
        (str(ds["name"]).removeprefix(HOME_DATASOURCE_PREFIX), str(ds["uid"]))
        for ds in datasources
        if ds.get("type") == "influxdb" and str(ds["name"]).startswith(HOME_DATASOURCE_PREFIX)
    )
    return [home_group(home, uid) for home, uid in homes if home]
