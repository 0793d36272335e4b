"""The "Home energy" dashboard: now, today and this month, days and months, circuits, voltage
band, devices and the pipeline. The same file serves the Pi (one home) and a home's own
organisation in the cloud Grafana (the `home` variable picks among the homes its data source
holds)."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from energymon_grafana import panels
from energymon_grafana.common import (
    DATASOURCE_UID,
    METER_ALIAS,
    METER_TAGS,
    NOT_SUBMETER,
    RECENT,
    board,
    component,
    home_filter,
    meter_filter,
    ranged,
    variable,
)
from energymon_grafana.panels import Target
from energymon_grafana.query import (
    READINGS_TIERS,
    ROLLUP_TIERS,
    TIME_FILTER,
    Select,
    Tier,
    by_time,
    ident,
    measurement,
    tags,
)

UID = "energymon-home-energy"
# Day and month points sit at the local midnight that starts them: a bucket narrower than
# any time-zone offset step keeps each one apart, whatever the home's zone.
CALENDAR_BUCKET = "15m"


def _raw_field(tier: Tier, raw: str, rollup: str) -> str:
    return ident(raw if tier.measurement == "electricity" else rollup)


def per_meter_mean(raw: str, rollup: str) -> Callable[[Tier], Select]:
    def make(tier: Tier) -> Select:
        return Select(
            [f"mean({_raw_field(tier, raw, rollup)})"],
            measurement(tier.measurement),
            ranged(tier, meter_filter()),
            [by_time(), *tags(*METER_TAGS)],
            fill="null",
        )

    return make


def voltage_band(tier: Tier) -> Select:
    raw = tier.measurement == "electricity"
    low, mean, high = (
        ("voltage_v",) * 3 if raw else ("voltage_v_min", "voltage_v_mean", "voltage_v_max")
    )
    return Select(
        [
            f'min({ident(low)}) AS "min"',
            f'mean({ident(mean)}) AS "mean"',
            f'max({ident(high)}) AS "max"',
        ],
        measurement(tier.measurement),
        ranged(tier, meter_filter()),
        [by_time(), *tags(*METER_TAGS)],
        fill="null",
    )


def home_total(field: str, inner: str = "mean") -> Callable[[Tier], Select]:
    """Sum over the home's meters but its sub-meters, of each meter's `inner` per interval."""

    def make(tier: Tier) -> Select:
        per_meter = Select(
            [f'{inner}({ident(field)}) AS "v"'],
            measurement(tier.measurement),
            ranged(tier, [*home_filter(), NOT_SUBMETER]),
            [by_time(), *tags(*METER_TAGS)],
            fill="none",
        )
        return Select(
            ['sum("v")'],
            per_meter.subquery(),
            [TIME_FILTER],
            [by_time(), *tags("home")],
            fill="null",
        )

    return make


def energy_per_interval(tier: Tier) -> Select:
    return Select(
        ['sum("energy_wh")'],
        measurement(tier.measurement),
        ranged(tier, [*home_filter(), NOT_SUBMETER]),
        [by_time(), *tags("home")],
        fill="null",
    )


def energy_per_circuit(tier: Tier) -> Select:
    return Select(
        ['sum("energy_wh") / 1000'],
        measurement(tier.measurement),
        ranged(tier, meter_filter()),
        tags(*METER_TAGS, "role"),
    )


def calendar(table: str, field: str, scale: str, window: str | None) -> str:
    """Home total of each day or month point; `window` None means the dashboard's range."""
    when = TIME_FILTER if window is None else f"time > now() - {window}"
    return str(
        Select(
            [f"sum({ident(field)}){scale}"],
            measurement(table),
            [*home_filter(), NOT_SUBMETER, when],
            [by_time(CALENDAR_BUCKET), *tags("home")],
            fill="none",
        )
    )


def now_per_meter(field: str) -> Target:
    return Target(
        str(
            Select(
                [f"last({ident(field)})"],
                measurement("electricity"),
                [*meter_filter(), RECENT],
                tags(*METER_TAGS),
            )
        ),
        METER_ALIAS,
    )


def health_now(component_name: str, columns: list[str], by: tuple[str, ...] = ("home",)) -> str:
    return str(
        Select(
            columns,
            measurement("energymon_health"),
            [component(component_name), *home_filter(), "time >= now() - 15m"],
            tags(*by),
        )
    )


def build(currency: str) -> dashboard_builders.Dashboard:
    ds = DATASOURCE_UID
    money = f"suffix: {currency}"
    d = board(
        UID,
        "Home energy",
        "Now, today and this month, days and months, circuits, voltage, devices and the "
        "pipeline of every meter (local Pi and cloud alike).",
    )
    for name, label, key, deps in (
        ("home", "Home", "home", ()),
        ("device", "Device", "device", ("home",)),
        ("sensor", "Meter", "sensor", ("home", "device")),
    ):
        d = d.with_variable(variable(name, label, "electricity", key, deps))

    d = d.with_row(dashboard_builders.Row("Now"))
    d = d.with_panel(
        panels.value(
            "Power now",
            "Latest active power of each meter; empty when a meter has not read for 5 minutes.",
            "watt",
            ds,
            [now_per_meter("power_w")],
            no_value="no reading in 5 min",
            width=12,
        )
    )
    d = d.with_panel(
        panels.value(
            "Apparent power vs contracted",
            "The home's apparent power (VA, sub-meters not added) in the newest minute, beside "
            "the contracted limit (ENERGYMON_CONTRACTED_VA). Near the limit the supplier's "
            "breaker trips: spread heavy loads over time.",
            "voltamp",
            ds,
            [
                Target(
                    str(
                        Select(
                            ['sum("va")'],
                            Select(
                                ['last("apparent_power_va_mean") AS "va"'],
                                measurement("energymon_1m"),
                                [*home_filter(), NOT_SUBMETER, RECENT],
                                tags(*METER_TAGS),
                            ).subquery(),
                            [],
                            tags("home"),
                        )
                    ),
                    "$tag_home in use",
                ),
                Target(
                    str(
                        Select(
                            ['last("contracted_va")'],
                            measurement("energymon_home"),
                            [*home_filter(), "time >= now() - 15m"],
                            tags("home"),
                        )
                    ),
                    "$tag_home contracted",
                ),
            ],
            no_value="no rollup in 5 min",
            width=6,
        )
    )
    d = d.with_panel(
        panels.value(
            "Meter alarm",
            "Readings with the meter's power alarm on in the last 5 minutes (red when > 0).",
            "short",
            ds,
            [
                Target(
                    str(
                        Select(
                            ['count("alarm")'],
                            measurement("electricity"),
                            [*meter_filter(), '"alarm" = true', RECENT],
                            tags(*METER_TAGS),
                        )
                    ),
                    METER_ALIAS,
                )
            ],
            no_value="no alarm",
            thresholds=panels.steps((None, "green"), (1, "red")),
            width=6,
        )
    )
    for title, field, unit, text in (
        ("Voltage now", "voltage_v", "volt", "Latest mains voltage seen by each meter."),
        ("Current now", "current_a", "amp", "Latest current through each meter."),
        ("Power factor now", "power_factor", "none", "Latest power factor of each meter."),
        ("Frequency now", "frequency_hz", "hertz", "Latest mains frequency."),
    ):
        d = d.with_panel(
            panels.value(
                title, text, unit, ds, [now_per_meter(field)], no_value="no reading in 5 min"
            )
        )

    d = d.with_row(dashboard_builders.Row("Today and this month"))
    for title, table, field, scale, unit, window, text in (
        ("Energy today", "energymon_day", "energy_wh", " / 1000", "kwatth", "1d",
         "Energy of the home since local midnight (ENERGYMON_TIMEZONE), sub-meters not added."),
        ("Cost today", "energymon_day", "cost", "", money, "1d",
         "What today's energy costs at the tariff in force at each hour (ENERGYMON_TARIFF)."),
        ("Energy this month", "energymon_month", "energy_wh", " / 1000", "kwatth", "32d",
         "Energy of the home since the first of the month, local time."),
        ("Cost this month", "energymon_month", "cost", "", money, "32d",
         "What this month's energy costs so far."),
    ):  # fmt: skip
        d = d.with_panel(
            panels.value(
                title,
                text,
                unit,
                ds,
                [Target(calendar(table, field, scale, window), "$tag_home")],
                no_value="no rollup yet",
                decimals=2 if field == "energy_wh" else 0,
            )
        )
    for title, table, field, scale, unit, window, text in (
        ("Energy per day", "energymon_day", "energy_wh", " / 1000", "kwatth", "30d",
         "The home's energy per local calendar day, the last 30 days."),
        ("Cost per day", "energymon_day", "cost", "", money, "30d",
         "The home's cost per local calendar day, the last 30 days."),
        ("Energy per month", "energymon_month", "energy_wh", " / 1000", "kwatth", "1y",
         "The home's energy per local calendar month, the last 12 months."),
        ("Cost per month", "energymon_month", "cost", "", money, "1y",
         "The home's cost per local calendar month, the last 12 months."),
    ):  # fmt: skip
        d = d.with_panel(
            panels.graph(
                title,
                text,
                unit,
                ds,
                [Target(calendar(table, field, scale, None), "$tag_home")],
                bars=True,
                time_from=window,
            )
        )

    d = d.with_row(dashboard_builders.Row("Power and energy"))
    d = d.with_panel(
        panels.graph(
            "Home power",
            "Active power of the whole home: the mains plus independent circuits, sub-meters "
            "not added (ENERGYMON_LAYOUT).",
            "watt",
            ds,
            panels.tiered(ROLLUP_TIERS, home_total("power_w_mean"), "$tag_home"),
            min_interval="1m",
        )
    )
    d = d.with_panel(
        panels.graph(
            "Home apparent power",
            "Apparent power (VA) of the whole home, the quantity the contracted limit is about.",
            "voltamp",
            ds,
            panels.tiered(ROLLUP_TIERS, home_total("apparent_power_va_max", "max"), "$tag_home"),
            min_interval="1m",
        )
    )
    d = d.with_panel(
        panels.graph(
            "Energy per interval",
            "The home's energy in each bar's interval, from the energy counters (a meter reset "
            "never shows as negative).",
            "watth",
            ds,
            panels.tiered(ROLLUP_TIERS, energy_per_interval, "$tag_home"),
            bars=True,
            min_interval="1m",
        )
    )
    d = d.with_panel(
        panels.gauge_bars(
            "Energy per circuit",
            "Each meter's energy over the selected range; a sub-meter is a part of the mains, "
            "shown here but never added to the home's total.",
            "kwatth",
            ds,
            panels.tiered(ROLLUP_TIERS, energy_per_circuit, "$tag_sensor ($tag_role)"),
            min_interval="1m",
        )
    )
    d = d.with_panel(
        panels.graph(
            "Power",
            "Active power per meter; a gap is a time without readings, never 0 W.",
            "watt",
            ds,
            panels.tiered(READINGS_TIERS, per_meter_mean("power_w", "power_w_mean"), METER_ALIAS),
            width=24,
        )
    )
    d = d.with_panel(
        panels.graph(
            "Voltage",
            "Lowest, mean and highest voltage per meter in each interval: the band shows sags "
            "and surges a mean hides.",
            "volt",
            ds,
            panels.tiered(READINGS_TIERS, voltage_band, f"{METER_ALIAS} $col"),
        )
    )
    for title, raw, rollup, unit in (
        ("Current", "current_a", "current_a_mean", "amp"),
        ("Power factor", "power_factor", "power_factor_mean", "none"),
        ("Frequency", "frequency_hz", "frequency_hz_mean", "hertz"),
    ):
        d = d.with_panel(
            panels.graph(
                title,
                f"Mean {title.lower()} per meter in each interval.",
                unit,
                ds,
                panels.tiered(READINGS_TIERS, per_meter_mean(raw, rollup), METER_ALIAS),
            )
        )

    d = d.with_row(dashboard_builders.Row("Devices and pipeline"))
    d = d.with_panel(
        panels.value(
            "Meters online",
            "Every known meter (the layout's and every meter ever seen): online while its "
            "newest reading is younger than three reading intervals.",
            "none",
            ds,
            [
                Target(
                    health_now("meter", ['last("online")'], (*METER_TAGS, "role")),
                    "$tag_device/$tag_sensor",
                )
            ],
            no_value="no health record",
            thresholds=panels.steps((None, "red"), (1, "green")),
            mappings=panels.online_mappings(),
            width=12,
        )
    )
    d = d.with_panel(
        panels.value(
            "Spool and parked",
            "Points waiting in the collector's spool for InfluxDB, and batches InfluxDB refused "
            "for good (kept for an operator).",
            "short",
            ds,
            [
                Target(health_now("collector", ['last("spool_points")']), "$tag_home spool"),
                Target(health_now("collector", ['last("parked_points")']), "$tag_home parked"),
            ],
            thresholds=panels.steps((None, "green"), (1, "orange")),
            width=12,
        )
    )
    d = d.with_panel(
        panels.value(
            "Replication lag",
            "How far the cloud copy is behind.",
            "s",
            ds,
            [Target(health_now("replicator", ['last("replication_lag_s")']), "$tag_home")],
            no_value="no replicator",
            thresholds=panels.steps((None, "green"), (900, "red")),
            width=8,
        )
    )
    d = d.with_panel(
        panels.value(
            "Last sync",
            "When the cloud last acknowledged a copy.",
            "dateTimeFromNow",
            ds,
            [Target(health_now("replicator", ['last("last_success_ms")']), "$tag_home")],
            no_value="no replicator",
            width=8,
        )
    )
    d = d.with_panel(
        panels.value(
            "Last verification",
            "Hours whose local and cloud digests differed, were repaired, or are still "
            "unresolved, at the last exact verification.",
            "short",
            ds,
            [
                Target(
                    health_now(
                        "replicator",
                        [
                            'last("verify_mismatched_hours") AS "mismatched"',
                            'last("verify_repaired_hours") AS "repaired"',
                            'last("verify_unresolved_hours") AS "unresolved"',
                        ],
                    ),
                    "$tag_home $col",
                )
            ],
            no_value="no verification yet",
            thresholds=panels.steps((None, "green"), (1, "orange")),
            width=8,
        )
    )
    return d
