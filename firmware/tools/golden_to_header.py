"""Turn the shared golden files into a C++ header the firmware's tests compile in.

Every `NAME.input.json` in the golden directory becomes one case: the batch as the firmware core
holds it (sensor indices, raw integers, the reset report as enum values), and the exact bytes of
`NAME.body.json` it must encode to. An input's optional `reset` object is written as on the wire:
`cause`, `stage` (only for the causes that have one), `watchdog_resets`. Everything is emitted
into flash (EM_FLASH), so the same header serves the host and the AVR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MAX_SENSORS = 3  # em::MAX_METERS
READING_FIELDS = (
    "seq",
    "uptime_ms",
    "sensor",
    "voltage_dv",
    "current_ma",
    "power_dw",
    "energy_wh",
    "frequency_dhz",
    "power_factor_centi",
    "alarm",
)
# The wire names of em::ResetCause and em::Stage (reset_cause.h).
RESET_CAUSES = {
    "power_on": "em::RESET_POWER_ON",
    "watchdog": "em::RESET_WATCHDOG",
    "requested": "em::RESET_REQUESTED",
    "external": "em::RESET_EXTERNAL",
}
CAUSES_WITH_STAGE = ("watchdog", "requested")
STAGES = {
    "boot": "em::STAGE_BOOT",
    "meters": "em::STAGE_METERS",
    "network": "em::STAGE_NETWORK",
    "dhcp": "em::STAGE_DHCP",
    "send": "em::STAGE_SEND",
    "card": "em::STAGE_CARD",
    "idle": "em::STAGE_IDLE",
}


def c_bytes(data: bytes) -> str:
    """A C string literal holding exactly these bytes (octal escapes never run into a digit)."""
    out = []
    for b in data:
        ch = chr(b)
        if ch.isascii() and (ch.isalnum() or ch in " _-:,.{}[]()"):
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def sensors_of(case: dict[str, Any]) -> list[str]:
    """Configuration order: the meter_errors keys as listed, then any other sensor by first use."""
    names: list[str] = list(case["meter_errors"])
    for r in case["readings"]:
        if r["sensor"] not in names:
            names.append(r["sensor"])
    if len(names) > MAX_SENSORS:
        raise SystemExit(f"more than {MAX_SENSORS} sensors in one golden case: {names}")
    return names


def reset_of(name: str, case: dict[str, Any]) -> str:
    """The case's reset report as C++ initialisers: sent, cause, stage, watchdog resets."""
    reset = case.get("reset")
    if reset is None:
        return "false, em::RESET_POWER_ON, em::STAGE_BOOT, 0UL"
    cause = reset["cause"]
    if cause not in RESET_CAUSES:
        raise SystemExit(f"{name}: unknown reset cause {cause!r}")
    # The firmware always knows the stage of a watchdog or requested reset, and never sends one
    # for the other causes.
    if ("stage" in reset) != (cause in CAUSES_WITH_STAGE):
        raise SystemExit(f"{name}: only {CAUSES_WITH_STAGE} resets are sent with a stage")
    stage = reset.get("stage", "boot")
    if stage not in STAGES:
        raise SystemExit(f"{name}: unknown reset stage {stage!r}")
    return f"true, {RESET_CAUSES[cause]}, {STAGES[stage]}, {int(reset['watchdog_resets'])}UL"


def emit_case(i: int, name: str, case: dict[str, Any], body: bytes) -> list[str]:
    for r in case["readings"]:
        missing = [f for f in READING_FIELDS if f not in r]
        if missing:
            raise SystemExit(f"{name}: reading without {missing}")
    sensors = sensors_of(case)
    lines = [f"// {name}"]
    lines.append(f"static const char g{i}_name[] EM_FLASH = {c_bytes(name.encode())};")
    lines.append(f"static const char g{i}_device[] EM_FLASH = {c_bytes(case['device'].encode())};")
    for j, s in enumerate(sensors):
        lines.append(f"static const char g{i}_s{j}[] EM_FLASH = {c_bytes(s.encode())};")
    errors = [int(case["meter_errors"].get(s, 0)) for s in sensors] + [0] * MAX_SENSORS
    lines.append(
        f"static const uint32_t g{i}_errors[{MAX_SENSORS}] EM_FLASH = "
        f"{{{', '.join(f'{e}UL' for e in errors[:MAX_SENSORS])}}};"
    )
    rows = []
    for r in case["readings"]:
        rows.append(
            "    {{{boot}UL, {seq}UL, {up}ULL, {sensor}, {{{v}, {c}UL, {p}UL, {e}UL, {f}, {pf}, {a}}}}}".format(
                boot=case["boot"],
                seq=r["seq"],
                up=r["uptime_ms"],
                sensor=sensors.index(r["sensor"]),
                v=r["voltage_dv"],
                c=r["current_ma"],
                p=r["power_dw"],
                e=r["energy_wh"],
                f=r["frequency_dhz"],
                pf=r["power_factor_centi"],
                a="true" if r["alarm"] else "false",
            )
        )
    if rows:
        lines.append(f"static const em::Reading g{i}_readings[] EM_FLASH = {{")
        lines.append(",\n".join(rows))
        lines.append("};")
    lines.append(f"static const char g{i}_body[] EM_FLASH = {c_bytes(body)};")
    return lines


def main() -> None:
    golden, out = Path(sys.argv[1]), Path(sys.argv[2])
    inputs = sorted(golden.glob("*.input.json"))
    if not inputs:
        raise SystemExit(f"no golden cases in {golden}")
    lines = [
        "// Generated by firmware/tools/golden_to_header.py from tests/contract/golden/. Do not edit.",
        "#ifndef EM_GOLDEN_CASES_H",
        "#define EM_GOLDEN_CASES_H",
        "// Include after json_batch.h (em::Reading, em::ResetCause, em::Stage, EM_FLASH).",
        "namespace golden {",
        "struct Case {",
        "    const char* name;",
        "    const char* device;",
        "    uint32_t boot;",
        "    uint32_t boot_nonce;",
        "    uint64_t uptime_ms;",
        "    uint32_t dropped;",
        "    uint8_t sensor_count;",
        f"    const char* sensors[{MAX_SENSORS}];",
        "    const uint32_t* meter_errors;",
        "    bool has_reset;",
        "    em::ResetCause reset_cause;",
        "    em::Stage reset_stage;",
        "    uint32_t watchdog_resets;",
        "    uint16_t reading_count;",
        "    const em::Reading* readings;",
        "    const char* body;",
        "    uint16_t body_len;",
        "};",
    ]
    table = []
    for i, path in enumerate(inputs):
        name = path.name.removesuffix(".input.json")
        case = json.loads(path.read_text(encoding="utf-8"))
        body = (golden / f"{name}.body.json").read_bytes()
        lines += emit_case(i, name, case, body)
        sensors = sensors_of(case)
        names = [f"g{i}_s{j}" for j in range(len(sensors))] + ["nullptr"] * MAX_SENSORS
        readings = f"g{i}_readings" if case["readings"] else "nullptr"
        table.append(
            f"    {{g{i}_name, g{i}_device, {case['boot']}UL, {case.get('boot_nonce', 0)}UL, "
            f"{case['uptime_ms']}ULL, "
            f"{case['dropped']}UL, {len(sensors)}, {{{', '.join(names[:MAX_SENSORS])}}}, "
            f"g{i}_errors, {reset_of(name, case)}, {len(case['readings'])}, {readings}, "
            f"g{i}_body, {len(body)}}}"
        )
    lines.append(f"static const uint8_t CASE_COUNT = {len(inputs)};")
    lines.append("static const Case CASES[CASE_COUNT] EM_FLASH = {")
    lines.append(",\n".join(table))
    lines.append("};")
    lines.append("}  // namespace golden")
    lines.append("#endif")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
