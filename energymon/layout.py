"""The home's layout: which meter measures what.

A meter is `device/sensor`. Its role is `mains` (the whole home), `submeter` (a part of the
mains, never added to the home total) or `circuit` (an independent supply, added to the total).
A meter the layout does not list is a `circuit`, so a home without sub-meters sums right with
no layout at all. The setting (`ENERGYMON_LAYOUT`) reads
`mains=arduino-1/pzem1;submeter=arduino-1/pzem2,arduino-1/pzem3;circuit=pi/solar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from energymon.errors import ConfigError
from energymon.lineproto import name_problem

Role = Literal["mains", "submeter", "circuit"]
ROLES: tuple[Role, ...] = ("mains", "submeter", "circuit")
DEFAULT_ROLE: Role = "circuit"


@dataclass(frozen=True, slots=True, order=True)
class Meter:
    device: str
    sensor: str

    def __str__(self) -> str:
        return f"{self.device}/{self.sensor}"


@dataclass(frozen=True, slots=True)
class Layout:
    roles: tuple[tuple[Meter, Role], ...] = ()

    def role(self, device: str, sensor: str) -> Role:
        meter = Meter(device, sensor)
        for known, role in self.roles:
            if known == meter:
                return role
        return DEFAULT_ROLE

    @property
    def meters(self) -> tuple[Meter, ...]:
        return tuple(meter for meter, _ in self.roles)


def parse_layout(text: str, source: str = "ENERGYMON_LAYOUT") -> Layout:
    roles: dict[Meter, Role] = {}
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        role, sep, names = item.partition("=")
        role = role.strip()
        if not sep or role not in ROLES:
            raise ConfigError(
                f"{source}: {item!r} is not role=device/sensor,... with a role of "
                f"{', '.join(ROLES)}"
            )
        for name in names.split(","):
            meter = _meter(name.strip(), source)
            if meter in roles:
                raise ConfigError(f"{source}: meter {meter} is listed twice")
            roles[meter] = role
    mains = [m for m, r in roles.items() if r == "mains"]
    if len(mains) > 1:
        raise ConfigError(
            f"{source}: more than one mains meter ({', '.join(map(str, mains))}); a second "
            "independent supply is a circuit"
        )
    return Layout(tuple(sorted(roles.items())))


def _meter(name: str, source: str) -> Meter:
    device, sep, sensor = name.partition("/")
    if not sep:
        raise ConfigError(f"{source}: meter {name!r} is not device/sensor")
    for part, what in ((device, "device"), (sensor, "sensor")):
        problem = name_problem(part)
        if problem:
            raise ConfigError(f"{source}: {what} name {part!r} {problem}")
    return Meter(device, sensor)
