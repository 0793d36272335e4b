"""The alert rules as code; `energymon grafana build` writes them to
grafana/provisioning/alerting/energymon.yaml (Grafana's file provisioning format,
pkg/services/provisioning/alerting/rules_types.go: AlertRuleGroupV1 / AlertRuleV1 / QueryV1).

Every rule queries the `energymon` data source with InfluxQL, reduces each series to one number
and ends in a `threshold` expression. Thresholds that differ per home come from the home's
`energymon_home` point through a `math` expression: Grafana joins the two sides by labels (a
meter's {home, device, sensor} contains its home's {home}), so one rule serves every home of a
database. The few fixed numbers are constants here, documented in docs/dashboards.md.

Silence rules are measured against what is known, not against "had data recently": the
collector reports a growing `reading_age_s` for every device and meter it ever saw, and a home
is known for `HOME_MEMORY` after its last record. Their `noDataState` is Alerting, so a query
that finds nothing (the collector itself gone) never clears a firing silence.
"""

from __future__ import annotations

from typing import Any

from energymon_grafana.alert_model import Math, Query, Reduce, Rule, Step, Threshold, rule_dict

FOLDER_TITLE = "energymon"
FOLDER_UID = "energymon"
GROUP = "energymon"
GROUP_INTERVAL = "1m"
ORG_ID = 1

# How long a silent home stays known to "Home gone quiet": its window of records.
HOME_MEMORY = "44640m"
# Below this mean power a meter's power factor says nothing about the installation.
PF_MIN_POWER_W = 100
DEVICE_QUIET_S = 300
METER_QUIET_S = 600
REPLICATION_LAG_S = 900


def provisioning_file() -> dict[str, Any]:
    """The whole alerting rules file (AlertingFileV1 with one group)."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": ORG_ID,
                "name": GROUP,
                "folder": FOLDER_TITLE,
                "interval": GROUP_INTERVAL,
                "rules": [rule_dict(r) for r in RULES],
            }
        ],
    }


def _recent(window: str) -> str:
    return f"time >= now() - {window} AND time <= now()"


def _last(field: str, where: str, window: str, by: str) -> str:
    return (
        f'SELECT last("{field}") FROM "energymon_health" WHERE {where} AND {_recent(window)} '
        f"GROUP BY {by}"
    )


def _home_setting(field: str) -> str:
    return f'SELECT last("{field}") FROM "energymon_home" WHERE {_recent("1h")} GROUP BY "home"'


def _simple(ref_query: Query, kind: str, limit: float, reducer: str = "last") -> tuple[Step, ...]:
    return (
        ref_query,
        Reduce("B", "A", reducer),
        Threshold("C", "B", kind, (limit,)),
    )


HOME = '"home"'
DEVICE = '"home", "device"'
METER = '"home", "device", "sensor"'
COLLECTOR = "\"component\" = 'collector'"
REPLICATOR = "\"component\" = 'replicator'"
NOT_SUBMETER = "\"role\" != 'submeter'"

# What the person receiving the message does; shared wording of the pipeline rules.
_NOTHING_LOST = "Nothing acknowledged is lost; see System health and docs/dashboards.md#alerts."


def _silence_rules() -> list[Rule]:
    return [
        Rule(
            uid="energymon-device-quiet",
            title="Device gone quiet",
            steps=_simple(
                Query("A", _last("reading_age_s", COLLECTOR, "15m", DEVICE), 900),
                "gt",
                DEVICE_QUIET_S,
            ),
            severity="warning",
            for_="2m",
            no_data_state="Alerting",
            summary="Device {{ $labels.device }} of home {{ $labels.home }} has sent no reading "
            "for {{ $values.B.Value }} s",
            description="The collector knows this device (it never forgets one, even after a "
            "restart) and its newest reading is more than 5 minutes old.",
            runbook="Check the device's power supply and network (ping it, look at its LED), "
            "then its meters' wiring. It keeps unacknowledged readings and re-sends them when it "
            "is back. If the whole rule fires without a device, the collector itself sends no "
            "health record: `systemctl status energymon-collector`.",
        ),
        Rule(
            uid="energymon-meter-quiet",
            title="Meter gone quiet",
            steps=_simple(
                Query(
                    "A",
                    _last("reading_age_s", "\"component\" = 'meter'", "15m", METER),
                    900,
                ),
                "gt",
                METER_QUIET_S,
            ),
            severity="warning",
            for_="1m",
            no_data_state="Alerting",
            summary="Meter {{ $labels.device }}/{{ $labels.sensor }} of home {{ $labels.home }} "
            "has stored no reading for {{ $values.B.Value }} s",
            description="The collector knows this meter (from the layout or from a reading "
            "ever stored) and its newest reading is more than 10 minutes old.",
            runbook="If the device is quiet too, see Device gone quiet. Otherwise the meter's "
            "Modbus wiring, address or supply failed: `energymon meter read` on the device's "
            "port, check the RX/TX and 5 V lines to the PZEM-004T.",
        ),
        Rule(
            uid="energymon-home-quiet",
            title="Home gone quiet",
            steps=(
                Query(
                    "A",
                    'SELECT sum("records") FROM (SELECT count("spool_points") AS '
                    f'"records" FROM "energymon_health" WHERE {COLLECTOR} AND {_recent("10m")} '
                    f'GROUP BY "home"), (SELECT count("spool_points") * 0 AS "records" '
                    f'FROM "energymon_health" WHERE {COLLECTOR} AND {_recent(HOME_MEMORY)} '
                    f'GROUP BY "home") GROUP BY "home"',
                    31 * 86400,
                ),
                Reduce("B", "A"),
                Threshold("C", "B", "lt", (1,)),
            ),
            severity="critical",
            for_="2m",
            no_data_state="Alerting",
            summary="Home {{ $labels.home }} has sent no health record for 10 minutes",
            description="A home whose collector sent health records in the last 31 days sent "
            "none in the last 10 minutes. In the cloud: its Pi, its internet link, its replicator "
            "or its collector is down. On the Pi: the collector is not running (a Pi without a "
            "cloud has no replicator, so the collector's records are the ones counted).",
            runbook="Ask someone at home whether the Pi has power and internet; on the Pi, "
            "`systemctl status energymon-collector energymon-replicator`. The data arrives when "
            "it is back. " + _NOTHING_LOST,
        ),
    ]


def _pipeline_rules() -> list[Rule]:
    return [
        Rule(
            uid="energymon-collector-spooling",
            title="Collector spooling (local InfluxDB unreachable or slow)",
            steps=_simple(Query("A", _last("spool_points", COLLECTOR, "10m", HOME), 600), "gt", 0),
            severity="critical",
            for_="2m",
            exec_err_state="Alerting",
            summary="The collector of home {{ $labels.home }} holds {{ $values.B.Value }} "
            "readings in its spool",
            description="The local InfluxDB did not take the collector's writes in time, so "
            "readings wait in the spool (safe, fsynced) until it answers. Also fires when "
            "Grafana cannot query InfluxDB at all.",
            runbook="`systemctl status influxdb` (or the influxdb container), then free disk "
            "space (`df -h`). The spool drains by itself once InfluxDB answers. " + _NOTHING_LOST,
        ),
        Rule(
            uid="energymon-parked-points",
            title="Acknowledged readings parked (InfluxDB refused them for good)",
            steps=_simple(Query("A", _last("parked_points", COLLECTOR, "10m", HOME), 600), "gt", 0),
            severity="critical",
            summary="The collector of home {{ $labels.home }} holds {{ $values.B.Value }} "
            "acknowledged points parked",
            description="The local InfluxDB refused these points for good (a field type "
            "conflict): they are acknowledged but not in InfluxDB and not replicated. They are "
            "kept in collector.db.",
            runbook="`energymon parked list` shows them and the refusal; resolve the conflict, "
            "then `energymon parked replay`.",
        ),
        Rule(
            uid="energymon-spool-full",
            title="Collector refusing readings (spool full)",
            steps=_simple(
                Query(
                    "A",
                    'SELECT sum("refused") FROM (SELECT non_negative_difference(last('
                    f'"spool_full_refusals")) AS "refused" FROM "energymon_health" WHERE '
                    f'{COLLECTOR} AND {_recent("15m")} GROUP BY time(1m), "home" fill(none)) '
                    f'WHERE {_recent("15m")} GROUP BY "home"',
                    900,
                ),
                "gt",
                0,
            ),
            severity="critical",
            summary="The collector of home {{ $labels.home }} refused {{ $values.B.Value }} "
            "requests in 15 minutes: its spool is full",
            description="The spool reached ENERGYMON_SPOOL_MAX_BYTES, so the collector answers "
            "503 and the devices keep their readings.",
            runbook="Bring the local InfluxDB back (the spool then drains) or free disk space; "
            "the devices re-send what they keep.",
        ),
        Rule(
            uid="energymon-replication-lag",
            title="Replication to the cloud lagging",
            steps=_simple(
                Query("A", _last("replication_lag_s", REPLICATOR, "15m", HOME), 900),
                "gt",
                REPLICATION_LAG_S,
            ),
            severity="warning",
            for_="5m",
            summary="Home {{ $labels.home }}: the cloud is {{ $values.B.Value }} s behind",
            description="The replicator's lag is above 15 minutes: the internet or the cloud "
            "InfluxDB is down, or the replicator is failing.",
            runbook="Check the Pi's internet, then `consecutive_failures` on System health and "
            "`journalctl -u energymon-replicator`. It catches up by itself. " + _NOTHING_LOST,
        ),
        Rule(
            uid="energymon-dead-letters",
            title="Dead letters",
            steps=_simple(Query("A", _last("dead_letters", REPLICATOR, "15m", HOME), 900), "gt", 0),
            severity="warning",
            summary="Home {{ $labels.home }}: {{ $values.B.Value }} points were refused by the "
            "cloud for good",
            description="The cloud InfluxDB refused these points (for example a field type "
            "conflict). They are kept on the Pi.",
            runbook="`energymon replicator dead-letters` lists them with the cloud's answer.",
        ),
        Rule(
            uid="energymon-verify-mismatch",
            title="Verification found mismatches",
            steps=_simple(
                Query("A", _last("verify_mismatched_hours", REPLICATOR, "15m", HOME), 900),
                "gt",
                0,
            ),
            severity="warning",
            summary="Home {{ $labels.home }}: the last verification found {{ $values.B.Value }} "
            "hours differing between Pi and cloud",
            description="The local and cloud contents (digests per meter and hour) differed.",
            runbook="Repaired and unresolved hours are on System health; "
            "`energymon replicator verify` re-checks.",
        ),
        Rule(
            uid="energymon-quarantine-growing",
            title="Readings quarantined",
            steps=_simple(
                Query(
                    "A",
                    'SELECT count("reason") FROM "energymon_quarantine" WHERE '
                    f"{_recent('15m')} GROUP BY {METER}",
                    900,
                ),
                "gt",
                0,
            ),
            severity="warning",
            summary="Meter {{ $labels.device }}/{{ $labels.sensor }} of home {{ $labels.home }}: "
            "{{ $values.B.Value }} invalid readings in 15 minutes",
            description="Readings outside the meter's range were set aside in "
            "energymon_quarantine: a faulty meter or wiring.",
            runbook="`energymon quarantine` shows the reasons and payloads; check the meter's "
            "wiring and replace a meter that keeps reporting impossible values.",
        ),
    ]


def _electrical_rules() -> list[Rule]:
    electricity = f'FROM "electricity" WHERE {_recent("15m")} GROUP BY {METER}'
    return [
        Rule(
            uid="energymon-meter-alarm",
            title="Meter power alarm on",
            steps=_simple(
                Query(
                    "A",
                    'SELECT count("alarm") FROM "electricity" WHERE "alarm" = true AND '
                    f"{_recent('5m')} GROUP BY {METER}",
                    300,
                ),
                "gt",
                0,
            ),
            severity="critical",
            summary="Meter {{ $labels.device }}/{{ $labels.sensor }} of home {{ $labels.home }} "
            "reports its power alarm",
            description="The PZEM-004T's power alarm is on: the power went above the threshold "
            "set with `energymon meter set-alarm`.",
            runbook="Switch off the large loads on that circuit; if the alarm is set too low, "
            "raise it with `energymon meter set-alarm`.",
        ),
        Rule(
            uid="energymon-voltage-band",
            title="Voltage outside the nominal band",
            steps=(
                Query(
                    "A",
                    f'SELECT mean("voltage_v") FROM "electricity" WHERE {_recent("5m")} '
                    f"GROUP BY {METER}",
                    300,
                ),
                Query("L", _home_setting("voltage_low_v"), 3600),
                Query("H", _home_setting("voltage_high_v"), 3600),
                Reduce("V", "A"),
                Reduce("LOW", "L"),
                Reduce("HIGH", "H"),
                Math("M", "($V < $LOW) || ($V > $HIGH)"),
                Threshold("C", "M", "gt", (0,)),
            ),
            severity="warning",
            for_="2m",
            summary="Meter {{ $labels.device }}/{{ $labels.sensor }} of home {{ $labels.home }}: "
            "voltage {{ $values.V.Value }} V for 5 minutes, outside "
            "{{ $values.LOW.Value }}..{{ $values.HIGH.Value }} V",
            description="The 5-minute mean voltage is outside nominal plus or minus "
            "ENERGYMON_VOLTAGE_TOLERANCE_PCT (the home's energymon_home point). Sustained low "
            "voltage makes motors and compressors run hot; high voltage shortens the life of "
            "electronics.",
            runbook="If every meter of the home shows it, it is the grid: report it to PLN "
            "(PLN Mobile or 123) with the times from the Home energy dashboard. If one circuit "
            "only, a loose connection or an overloaded cable: call an electrician.",
        ),
        Rule(
            uid="energymon-apparent-power",
            title="Apparent power above the contracted VA",
            steps=(
                Query(
                    "A",
                    'SELECT sum("va") FROM (SELECT mean("apparent_power_va_mean") AS "va" FROM '
                    f'"energymon_1m" WHERE {NOT_SUBMETER} AND {_recent("10m")} GROUP BY '
                    f"time(1m), {METER} fill(none)) WHERE {_recent('10m')} GROUP BY "
                    'time(1m), "home" fill(none)',
                    600,
                ),
                Query("K", _home_setting("contracted_va"), 3600),
                Reduce("VA", "A", "max"),
                Reduce("LIMIT", "K"),
                Math("M", "$VA > $LIMIT"),
                Threshold("C", "M", "gt", (0,)),
            ),
            severity="warning",
            summary="Home {{ $labels.home }} drew {{ $values.VA.Value }} VA, above its "
            "contracted {{ $values.LIMIT.Value }} VA",
            description="The home total (mains and independent circuits, never sub-meters) of "
            "the 1-minute mean apparent power was above ENERGYMON_CONTRACTED_VA in the last 10 "
            "minutes. PLN's limiter (MCB) trips when this lasts.",
            runbook="Switch off a large load (water heater, iron, air conditioner) before the "
            "breaker trips; if it happens daily, ask PLN for a higher power class.",
        ),
        Rule(
            uid="energymon-power-factor",
            title="Low power factor",
            steps=(
                Query("A", f'SELECT mean("power_factor") {electricity}', 900),
                Query("P", f'SELECT mean("power_w") {electricity}', 900),
                Query("T", _home_setting("min_power_factor"), 3600),
                Reduce("PF", "A"),
                Reduce("W", "P"),
                Reduce("MIN", "T"),
                Math("M", f"($PF < $MIN) && ($W > {PF_MIN_POWER_W})"),
                Threshold("C", "M", "gt", (0,)),
            ),
            severity="warning",
            summary="Meter {{ $labels.device }}/{{ $labels.sensor }} of home {{ $labels.home }}: "
            "power factor {{ $values.PF.Value }} at {{ $values.W.Value }} W for 15 minutes",
            description="The 15-minute mean power factor is below ENERGYMON_MIN_POWER_FACTOR "
            "while the meter carries a real load (standby loads are ignored): the circuit draws "
            "more current, and VA of the contract, than the work done needs.",
            runbook="Find the load (motors, old fluorescent ballasts, cheap chargers) by "
            "switching things off one by one; a motor may need its capacitor replaced.",
        ),
    ]


def _budget_rule(kind: str, field: str, budget: str, unit: str) -> Rule:
    today = (
        f'SELECT sum("x") FROM (SELECT last("{field}") AS "x" FROM "energymon_day" WHERE '
        f"{NOT_SUBMETER} AND time > now() - 1d AND time <= now() GROUP BY {METER}) "
        'GROUP BY "home"'
    )
    return Rule(
        uid=f"energymon-{kind}-budget",
        title=f"Daily {kind} budget exceeded",
        steps=(
            Query("A", today, 86400),
            Query("Q", _home_setting(budget), 3600),
            Reduce("TODAY", "A"),
            Reduce("BUDGET", "Q"),
            Math("M", "($TODAY > $BUDGET) && ($BUDGET > 0)"),
            Threshold("C", "M", "gt", (0,)),
        ),
        severity="info",
        summary=f"Home {{{{ $labels.home }}}} used {{{{ $values.TODAY.Value }}}} {unit} today, "
        f"above its budget of {{{{ $values.BUDGET.Value }}}} {unit}",
        description=f"Today's home total (local calendar day, sub-meters not added) from "
        f"energymon_day is above ENERGYMON_DAILY_BUDGET_{'KWH' if kind == 'energy' else 'COST'}."
        " Off when the budget is 0.",
        runbook="See the per-circuit breakdown on the Home energy dashboard for what used it; "
        "the alert resolves by itself at local midnight.",
    )


RULES: tuple[Rule, ...] = (
    *_silence_rules(),
    *_pipeline_rules(),
    *_electrical_rules(),
    _budget_rule("energy", "energy_wh", "daily_budget_wh", "Wh"),
    _budget_rule("cost", "cost", "daily_budget_cost", "(currency)"),
)
