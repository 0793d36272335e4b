"""The cloud's "Fleet" dashboard: every home at a glance, for whoever runs the cloud.

Each home's data sits in its own cloud database, read by its own Grafana user; the operator's
organisation holds one data source per home (named `energymon-home-<home>`). The `home_ds`
variable lists them, and one row is repeated per data source, so a home added to the
provisioning appears without editing the dashboard.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard

from energymon_grafana import panels
from energymon_grafana.alert_model import HOME_DATASOURCE_PREFIX
from energymon_grafana.common import NOT_SUBMETER, board, component
from energymon_grafana.panels import Target
from energymon_grafana.query import Select, by_time, ident, measurement, tags

UID = "energymon-fleet"
HOME_DATASOURCE = "home_ds"
DS = f"${{{HOME_DATASOURCE}}}"
CALENDAR_BUCKET = "15m"
# The keys of Grafana's UnifiedAlertListOptions (public/app/plugins/panel/alertlist/types.ts).
ALERT_LIST_OPTIONS: dict[str, Any] = {
    "viewMode": "list",
    "groupMode": "default",
    "groupBy": ["home"],
    "maxItems": 50,
    "sortOrder": 3,
    "dashboardAlerts": False,
    "alertName": "",
    "alertInstanceLabelFilter": "",
    "showInstances": True,
    "stateFilter": {
        "firing": True,
        "pending": True,
        "noData": True,
        "normal": False,
        "error": True,
        "recovering": False,
    },
}


def today(field: str, scale: str) -> str:
    return str(
        Select(
            [f"sum({ident(field)}){scale}"],
            measurement("energymon_day"),
            [NOT_SUBMETER, "time > now() - 1d"],
            [by_time(CALENDAR_BUCKET), *tags("home")],
            fill="none",
        )
    )


def build(currency: str) -> dashboard_builders.Dashboard:
    d = board(
        UID,
        "Fleet",
        "Every home on this cloud: its newest reading, replication lag, today's energy and "
        "cost, and the alerts that are firing.",
    )
    d = d.with_variable(
        dashboard_builders.DatasourceVariable(HOME_DATASOURCE)
        .label("Home")
        .type("influxdb")
        .regex(f"/^{HOME_DATASOURCE_PREFIX}.*/")
        .multi(True)
        .include_all(True)
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    d = d.with_panel(
        dashboard_builders.Panel()
        .type("alertlist")
        .title("Firing alerts")
        .description("Every energymon alert firing, pending, failing or without data, by home.")
        .span(24)
        .height(8)
        .options(ALERT_LIST_OPTIONS)
    )
    row = dashboard_builders.Row(f"${HOME_DATASOURCE}").repeat(HOME_DATASOURCE)
    d = d.with_row(row)
    d = d.with_panel(
        panels.value(
            "Newest reading",
            "When the newest reading of this home reached the cloud.",
            "dateTimeFromNow",
            DS,
            [
                Target(
                    str(
                        Select(
                            ['last("power_w")'],
                            measurement("electricity"),
                            ["time > now() - 30d"],
                            tags("home"),
                        )
                    ),
                    "$tag_home",
                )
            ],
            fields="/^Time$/",
            no_value="nothing in 30 days",
        )
    )
    d = d.with_panel(
        panels.value(
            "Replication lag",
            "The home's replicator's own lag, as its newest health record says.",
            "s",
            DS,
            [
                Target(
                    str(
                        Select(
                            ['last("replication_lag_s")'],
                            measurement("energymon_health"),
                            [component("replicator"), "time > now() - 1d"],
                            tags("home"),
                        )
                    ),
                    "$tag_home",
                )
            ],
            thresholds=panels.steps((None, "green"), (900, "red")),
            no_value="no replicator record",
        )
    )
    d = d.with_panel(
        panels.value(
            "Energy today",
            "The home's energy since its local midnight, sub-meters not added.",
            "kwatth",
            DS,
            [Target(today("energy_wh", " / 1000"), "$tag_home")],
            decimals=2,
            no_value="no rollup yet",
        )
    )
    d = d.with_panel(
        panels.value(
            "Cost today",
            "What today's energy costs at the home's tariff.",
            f"suffix: {currency}",
            DS,
            [Target(today("cost", ""), "$tag_home")],
            decimals=0,
            no_value="no rollup yet",
        )
    )
    return d
