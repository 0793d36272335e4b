"""The panel kinds every dashboard uses, built with grafana-foundation-sdk, with the project's
rules applied once: missing data is a gap (never connected, never zero), queries are raw
InfluxQL, each panel says what it shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common, dashboard

from energymon_grafana.query import InfluxQL, InfluxQLTarget, ResultFormat, Select, Tier

# A panel's resolution is fixed instead of following its width, so that `$__interval` (and
# with it the source a tiered panel reads) depends on the time range only.
MAX_DATA_POINTS = 720


@dataclass(frozen=True)
class Target:
    query: str
    alias: str = ""
    result_format: ResultFormat = "time_series"


def source(datasource_uid: str) -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val="influxdb", uid=datasource_uid)


def targets(
    datasource_uid: str, items: Sequence[Target]
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    return [
        InfluxQLTarget(
            InfluxQL(chr(ord("A") + i), t.query, datasource_uid, t.alias, t.result_format)
        )
        for i, t in enumerate(items)
    ]


def tiered(tiers: Sequence[Tier], make: Callable[[Tier], Select], alias: str) -> list[Target]:
    """One target per source; `make(tier)` returns the tier's query, guarded by the tier."""
    return [Target(str(make(tier)), alias) for tier in tiers]


def steps(*pairs: tuple[float | None, str]) -> cogbuilder.Builder[dashboard.ThresholdsConfig]:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=v, color=c) for v, c in pairs])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    datasource_uid: str,
    items: Sequence[Target],
    *,
    bars: bool = False,
    min_interval: str | None = None,
    always_points: bool = False,
    width: int = 12,
    height: int = 8,
    time_from: str | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(source(datasource_uid))
        .targets(targets(datasource_uid, items))
        .max_data_points(MAX_DATA_POINTS)
        .span(width)
        .height(height)
        .span_nulls(False)
        .line_width(1)
        .fill_opacity(80 if bars else 10)
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .show_points(common.VisibilityMode.ALWAYS if always_points else common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.NONE)
        )
    )
    if always_points:
        panel = panel.point_size(4)
    if min_interval is not None:
        panel = panel.interval(min_interval)
    if time_from is not None:
        panel = panel.time_from(time_from)
    return panel


def value(
    title: str,
    description: str,
    unit: str,
    datasource_uid: str,
    items: Sequence[Target],
    *,
    no_value: str | None = None,
    thresholds: cogbuilder.Builder[dashboard.ThresholdsConfig] | None = None,
    mappings: Sequence[dashboard.ValueMapping] = (),
    fields: str = "",
    decimals: int | None = None,
    width: int = 6,
    height: int = 5,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(source(datasource_uid))
        .targets(targets(datasource_uid, items))
        .max_data_points(MAX_DATA_POINTS)
        .span(width)
        .height(height)
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields(fields).values(False)
        )
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .thresholds(thresholds or steps((None, "green")))
    )
    if no_value is not None:
        panel = panel.no_value(no_value)
    if mappings:
        panel = panel.mappings(list(mappings))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def gauge_bars(
    title: str,
    description: str,
    unit: str,
    datasource_uid: str,
    items: Sequence[Target],
    *,
    min_interval: str | None = None,
    width: int = 12,
    height: int = 8,
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(source(datasource_uid))
        .targets(targets(datasource_uid, items))
        .max_data_points(MAX_DATA_POINTS)
        .span(width)
        .height(height)
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
        )
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .thresholds(steps((None, "blue")))
    )
    if min_interval is not None:
        panel = panel.interval(min_interval)
    return panel


def rows_table(
    title: str, description: str, datasource_uid: str, items: Sequence[Target], width: int = 24
) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(source(datasource_uid))
        .targets(targets(datasource_uid, items))
        .max_data_points(MAX_DATA_POINTS)
        .span(width)
        .height(8)
    )


def online_mappings() -> list[dashboard.ValueMapping]:
    return [
        dashboard.ValueMap(
            options={
                "1": dashboard.ValueMappingResult(text="online", color="green", index=0),
                "0": dashboard.ValueMappingResult(text="offline", color="red", index=1),
            }
        )
    ]
