"""Least privilege on an auth-enabled influxd 1.x: `energymon cloud add-home` makes a database
and a user per home; home A's credentials replicate A and cannot read, write or delete B."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from energymon.clients import cloud_influx
from energymon.clock import ManualClock
from energymon.errors import InfluxAuthError
from energymon.influx import InfluxClient
from energymon.settings import Settings, make_settings
from energymon_cli.main import main
from harness.influxd import InfluxServer
from tests.replicator.helpers import T0, Rig, points, reading

ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def auth_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxd-auth"), admin=ADMIN)
    server.start()
    yield server
    server.stop()


def _add_home(
    home: str,
    server: InfluxServer,
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> dict[str, str]:
    use_settings(cloud_url=server.url, cloud_admin_username=ADMIN[0], cloud_admin_password=ADMIN[1])
    assert main(["cloud", "add-home", home]) == 0
    out = capsys.readouterr().out
    pairs = [line.split("=", 1) for line in out.splitlines() if line.startswith("ENERGYMON_")]
    return {k.removeprefix("ENERGYMON_").lower(): v for k, v in pairs}


def _admin(server: InfluxServer, database: str) -> InfluxClient:
    client = InfluxClient(server.url, database, username=ADMIN[0], password=ADMIN[1])
    client.ping()  # learns the version, so that results come as MessagePack like the others'
    return client


def test_home_a_replicates_and_cannot_reach_home_b(
    auth_cloud: InfluxServer,
    influx: InfluxClient,
    tmp_path: Path,
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home_a = _add_home("home-a", auth_cloud, use_settings, capsys)
    home_b = _add_home("home-b", auth_cloud, use_settings, capsys)
    assert home_a["cloud_db"] != home_b["cloud_db"]
    b_admin = _admin(auth_cloud, home_b["cloud_db"])
    b_admin.write([f"electricity,home=home-b,device=x,sensor=y power_w=1 {T0}"])

    # Home A's Pi, configured with exactly the printed lines, replicates.
    settings_a = make_settings(**home_a)
    cloud_a = cloud_influx(settings_a)
    rig = Rig(influx, cloud_a, tmp_path / "data", ManualClock(T0 + 3_600_000), home="home-a")
    rig.write_readings([reading("d", "s", i, T0 + i * 1000, power_w=i) for i in range(100)])
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    assert points(_admin(auth_cloud, home_a["cloud_db"]), home="home-a") == points(
        influx, home="home-a"
    )
    assert len(points(cloud_a, home="home-a")) == 100  # A reads its own database

    # Not B's: not read, not written, not deleted, not dropped.
    a_on_b = InfluxClient(
        auth_cloud.url, home_b["cloud_db"], username=home_a["cloud_username"],
        password=home_a["cloud_password"], create_database=False,
    )  # fmt: skip
    refused = {
        "read": lambda: a_on_b.query("SELECT * FROM electricity"),
        "write": lambda: a_on_b.write([f"electricity,home=home-b,sensor=y power_w=2 {T0}"]),
        "delete": lambda: a_on_b.query("DELETE FROM electricity", method="POST"),
        "drop series": lambda: a_on_b.query("DROP SERIES FROM electricity", method="POST"),
        "drop database": lambda: a_on_b.query(
            f'DROP DATABASE "{home_b["cloud_db"]}"', database=None, method="POST"
        ),
        "create database": lambda: a_on_b.query(
            'CREATE DATABASE "energymon_home-c"', database=None, method="POST"
        ),
        "grant": lambda: a_on_b.query(
            f'GRANT ALL ON "{home_b["cloud_db"]}" TO "{home_a["cloud_username"]}"',
            database=None, method="POST",
        ),
    }  # fmt: skip
    for attempt in refused.values():
        with pytest.raises(InfluxAuthError):
            attempt()
    [series] = b_admin.query("SELECT * FROM electricity")
    assert series.values == [[T0, "x", "home-b", 1.0, "y"]]

    # Before: a client that creates its database on first write, as every client did, is
    # refused with these credentials, so only an admin could replicate.
    creating = InfluxClient(
        auth_cloud.url, home_a["cloud_db"], username=home_a["cloud_username"],
        password=home_a["cloud_password"],
    )  # fmt: skip
    with pytest.raises(InfluxAuthError):
        creating.write([f"electricity,home=home-a,device=d,sensor=s power_w=1 {T0}"])


def test_read_then_write_grants_leave_write_alone_on_1x(auth_cloud: InfluxServer) -> None:
    admin = _admin(auth_cloud, "")
    for statement in (
        'CREATE DATABASE "grants"',
        "CREATE USER \"grants_user\" WITH PASSWORD 'pw'",
        'GRANT READ ON "grants" TO "grants_user"',
        'GRANT WRITE ON "grants" TO "grants_user"',
    ):
        admin.query(statement, database=None, method="POST")
    [grants] = admin.query('SHOW GRANTS FOR "grants_user"', database=None)
    assert grants.values == [["grants", "WRITE"]]
    user = InfluxClient(auth_cloud.url, "grants", username="grants_user", password="pw",
                        create_database=False)  # fmt: skip
    with pytest.raises(InfluxAuthError):
        user.query("SELECT * FROM m")
    # ... and WRITE alone already deletes.
    user.write([f"m,home=x v=1 {T0}"])
    user.query("DELETE FROM m", method="POST")
    assert admin.query('SELECT * FROM "grants".."m"', database=None) == []


def test_adding_a_home_again_gives_new_working_credentials(
    auth_cloud: InfluxServer,
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = _add_home("home-r", auth_cloud, use_settings, capsys)
    second = _add_home("home-r", auth_cloud, use_settings, capsys)
    assert first["cloud_password"] != second["cloud_password"]
    old = cloud_influx(make_settings(**first))
    new = cloud_influx(make_settings(**second))
    new.write([f"electricity,home=home-r,device=d,sensor=s power_w=1 {T0}"])
    assert len(new.query("SELECT * FROM electricity")) == 1
    with pytest.raises(InfluxAuthError):
        old.query("SELECT * FROM electricity")


def test_grafana_reads_its_home_and_nothing_else(
    auth_cloud: InfluxServer,
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_settings(
        cloud_url=auth_cloud.url, cloud_admin_username=ADMIN[0], cloud_admin_password=ADMIN[1]
    )
    settings_of = {}
    for home in ("home-g", "home-h"):
        assert main(["cloud", "add-home", home]) == 0
        printed = capsys.readouterr().out.splitlines()
        settings_of[home] = dict(
            line.split("=", 1) for line in printed if line.startswith("GRAFANA_INFLUX_")
        )
    g, h = settings_of["home-g"], settings_of["home-h"]
    _admin(auth_cloud, g["GRAFANA_INFLUX_DB"]).write(
        [f"electricity,home=home-g,device=d,sensor=s power_w=1 {T0}"]
    )
    _admin(auth_cloud, h["GRAFANA_INFLUX_DB"]).write(
        [f"electricity,home=home-h,device=d,sensor=s power_w=2 {T0}"]
    )

    def grafana(database: str) -> InfluxClient:
        return InfluxClient(
            auth_cloud.url, database, username=g["GRAFANA_INFLUX_USER"],
            password=g["GRAFANA_INFLUX_PASSWORD"], create_database=False,
        )  # fmt: skip

    [series] = grafana(g["GRAFANA_INFLUX_DB"]).query("SELECT power_w FROM electricity")
    assert series.values == [[T0, 1.0]]
    with pytest.raises(InfluxAuthError):
        grafana(h["GRAFANA_INFLUX_DB"]).query("SELECT power_w FROM electricity")
    with pytest.raises(InfluxAuthError):  # read only, even on its own home
        grafana(g["GRAFANA_INFLUX_DB"]).write(
            [f"electricity,home=home-g,device=d,sensor=s power_w=9 {T0 + 1}"]
        )
