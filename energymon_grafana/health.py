"""The "System health" dashboard: the collector's spool and InfluxDB, the devices and meters,
quarantine and replication.

Health records come every ENERGYMON_HEALTH_INTERVAL_S (a minute by default). Grouped by a
shorter `$__interval` most buckets are empty and every value sits between nulls, which a line
without points does not draw; so every graph here has a minimum interval of the health
interval and draws its points.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import timeseries

from energymon_grafana import panels
from energymon_grafana.common import DATASOURCE_UID, board, component, variable
from energymon_grafana.panels import Target
from energymon_grafana.query import TIME_FILTER, Select, by_time, matches, measurement, tags

UID = "energymon-system-health"
HEALTH_INTERVAL = "1m"


def health(
    component_name: str,
    column: str,
    by: tuple[str, ...] = ("home",),
    extra: tuple[str, ...] = (),
    device: bool = False,
) -> str:
    where = [component(component_name), matches("home", "home")]
    if device:
        where.append(matches("device", "device"))
    return str(
        Select(
            [column],
            measurement("energymon_health"),
            [*where, *extra, TIME_FILTER],
            [by_time(), *tags(*by)],
            fill="null",
        )
    )


def graph(
    title: str, text: str, unit: str, items: list[Target], bars: bool = False
) -> timeseries.Panel:
    return panels.graph(
        title,
        text,
        unit,
        DATASOURCE_UID,
        items,
        bars=bars,
        min_interval=HEALTH_INTERVAL,
        always_points=True,
        width=8,
    )


def build() -> dashboard_builders.Dashboard:
    ds = DATASOURCE_UID
    d = board(
        UID,
        "System health",
        "The collector's spool and InfluxDB, the devices and meters, quarantine and "
        "replication to the cloud.",
    )
    d = d.with_variable(variable("home", "Home", "energymon_health", "home", ()))
    d = d.with_variable(variable("device", "Device", "energymon_health", "device", ("home",)))
    by_device = ("home", "device")
    for title, text, unit, items, bars in (
        ("Collector spool depth", "Points waiting in the spool for InfluxDB.", "short",
         [Target(health("collector", 'last("spool_points")'), "$tag_home")], False),
        ("InfluxDB unreachable", "Health records in which the collector could not reach the "
         "local InfluxDB.", "short",
         [Target(health("collector", 'count("influx_reachable")',
                        extra=('"influx_reachable" = false',)), "$tag_home")], True),
        ("Spool full refusals and parked points", "Readings refused because the spool was "
         "full (devices keep them), and points InfluxDB refused for good.", "short",
         [Target(health("collector", 'last("spool_full_refusals")'), "$tag_home refusals"),
          Target(health("collector", 'last("parked_points")'), "$tag_home parked")], False),
        ("Reading age per device", "Seconds since each device's newest reading; grows while "
         "a device is silent, also for one the collector has not heard since it restarted.",
         "s", [Target(health("collector", 'last("reading_age_s")', by_device, device=True),
                      "$tag_home $tag_device")], False),
        ("Last contact per device", "Seconds since each device last posted.", "s",
         [Target(health("collector", 'last("last_contact_age_s")', by_device, device=True),
                 "$tag_home $tag_device")], False),
        ("Dropped readings and meter errors", "Readings a device dropped (buffer full) and "
         "meter read errors, as the device counts them.", "short",
         [Target(health("collector", 'last("dropped")', by_device, device=True),
                 "$tag_home $tag_device dropped"),
          Target(health("collector", 'last("meter_errors")', by_device, device=True),
                 "$tag_home $tag_device meter errors")], False),
        ("Reading age per meter", "Seconds since each known meter's newest reading (every "
         "meter of the layout and every meter ever seen).", "s",
         [Target(health("meter", 'last("reading_age_s")', ("home", "device", "sensor"),
                        device=True), "$tag_home $tag_device/$tag_sensor")], False),
        ("Replication lag", "How far the cloud copy is behind.", "s",
         [Target(health("replicator", 'last("replication_lag_s")'), "$tag_home")], False),
        ("Replication backlog", "Points not yet copied to the cloud.", "short",
         [Target(health("replicator", 'last("backlog_points")'), "$tag_home")], False),
        ("Consecutive replication failures", "Copy attempts that failed in a row.", "short",
         [Target(health("replicator", 'last("consecutive_failures")'), "$tag_home")], False),
    ):  # fmt: skip
        d = d.with_panel(graph(title, text, unit, items, bars))
    latest = [matches("home", "home"), TIME_FILTER]
    d = d.with_panel(
        panels.value(
            "Dead letters",
            "Batches the cloud refused for good.",
            "short",
            ds,
            [
                Target(
                    str(
                        Select(
                            ['last("dead_letters")'],
                            measurement("energymon_health"),
                            [component("replicator"), *latest],
                            tags("home"),
                        )
                    ),
                    "$tag_home",
                )
            ],
            thresholds=panels.steps((None, "green"), (1, "red")),
            width=8,
            height=8,
        )
    )
    d = d.with_panel(
        panels.value(
            "Verification (last run)",
            "Hours whose local and cloud digests differed, were repaired, or are unresolved.",
            "short",
            ds,
            [
                Target(
                    str(
                        Select(
                            [
                                'last("verify_mismatched_hours") AS "mismatched"',
                                'last("verify_repaired_hours") AS "repaired"',
                                'last("verify_unresolved_hours") AS "unresolved"',
                            ],
                            measurement("energymon_health"),
                            [component("replicator"), *latest],
                            tags("home"),
                        )
                    ),
                    "$tag_home $col",
                )
            ],
            thresholds=panels.steps((None, "green"), (1, "orange")),
            width=8,
            height=8,
        )
    )
    # Its own row: the readings' table is wide, and a panel the SDK places past the grid's edge
    # is moved by Grafana onto the panels beside it.
    d = d.with_row(dashboard_builders.Row("Quarantine"))
    quarantine_where = [matches("home", "home"), matches("device", "device"), TIME_FILTER]
    d = d.with_panel(
        graph(
            "Quarantined readings",
            "Readings acknowledged but not stored as measurements (out of range, unplaceable).",
            "short",
            [
                Target(
                    str(
                        Select(
                            ['count("reason")'],
                            measurement("energymon_quarantine"),
                            quarantine_where,
                            [by_time(), *tags("home", "device", "sensor")],
                            fill="null",
                        )
                    ),
                    "$tag_home $tag_device/$tag_sensor",
                )
            ],
            bars=True,
        )
    )
    d = d.with_panel(
        panels.rows_table(
            "Latest quarantined readings",
            "The newest quarantined readings and why.",
            ds,
            [
                Target(
                    str(
                        Select(
                            ['"device"', '"sensor"', '"reason"', '"payload"', '"boot"', '"seq"'],
                            measurement("energymon_quarantine"),
                            quarantine_where,
                            tail="ORDER BY time DESC LIMIT 50",
                        )
                    ),
                    result_format="table",
                )
            ],
            width=16,
        )
    )
    return d
