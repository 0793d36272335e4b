"""What the dashboards share: the data source, the template variables, the filters."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard

from energymon_grafana.query import TIME_FILTER, Tier, equals, ident, matches, not_equals

DATASOURCE_UID = "energymon"
FOLDER_TAG = "energymon"
METER_TAGS = ("home", "device", "sensor")
METER_ALIAS = "$tag_home $tag_device/$tag_sensor"
# Rollups carry the meter's role; a sub-meter is a part of the mains, never added to a total.
NOT_SUBMETER = not_equals("role", "submeter")
RECENT = "time >= now() - 5m"


def home_filter() -> list[str]:
    return [matches("home", "home")]


def meter_filter() -> list[str]:
    return [matches("home", "home"), matches("device", "device"), matches("sensor", "sensor")]


def ranged(tier: Tier, where: list[str]) -> list[str]:
    return [*where, TIME_FILTER, *tier.guard()]


def component(name: str) -> str:
    return equals("component", name)


def variable(
    name: str,
    label: str,
    measurement: str,
    key: str,
    depends: tuple[str, ...],
    *,
    datasource: str = DATASOURCE_UID,
) -> dashboard_builders.QueryVariable:
    query = f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(key)}"
    if depends:
        query += " WHERE " + " AND ".join(matches(d, d) for d in depends)
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(dashboard.DataSourceRef(type_val="influxdb", uid=datasource))
        .query(query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def board(
    uid: str, title: str, description: str, refresh: str = "1m"
) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([FOLDER_TAG])
        .editable()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .refresh(refresh)
        .time("now-6h", "now")
        .timezone("browser")
    )
