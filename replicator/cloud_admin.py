"""`energymon cloud add-home NAME`: one database and one least-privilege user per home.

On InfluxDB 1.x a user holds one privilege per database: `GRANT READ` then `GRANT WRITE` leaves
WRITE alone, and the replicator, which must read the cloud to verify and to restore, is refused.
So the home's user gets `ALL` on its own database, and nothing anywhere else; it is no admin,
so it cannot create or drop databases, manage users or reach another home's database. Note that
WRITE (and so ALL) on 1.x also allows `DELETE` and `DROP SERIES` in that database: a home can
destroy its own cloud copy, never another's — which is why a database is never shared between
homes. The admin credentials come from the settings (`ENERGYMON_CLOUD_ADMIN_*`) of the machine
running this command, never from a Pi.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from energymon.errors import ConfigError
from energymon.influx import InfluxClient, quote_ident, quote_string
from energymon.lineproto import name_problem
from energymon.settings import Settings

PASSWORD_BYTES = 24


@dataclass(frozen=True, slots=True)
class HomeAccess:
    home: str
    database: str
    username: str
    password: str
    # Grafana's own user for this home: it reads the home's database and nothing else.
    grafana_username: str
    grafana_password: str

    def env_lines(self, cloud_url: str) -> list[str]:
        """The settings a Pi of this home needs, as lines of its env file."""
        return [
            f"ENERGYMON_HOME={self.home}",
            f"ENERGYMON_CLOUD_URL={cloud_url}",
            f"ENERGYMON_CLOUD_DB={self.database}",
            f"ENERGYMON_CLOUD_USERNAME={self.username}",
            f"ENERGYMON_CLOUD_PASSWORD={self.password}",
        ]

    def grafana_lines(self) -> list[str]:
        """The settings of the home's data source in the cloud Grafana (one data source, in the
        home's own organisation, per home: `grafana/provisioning/datasources/energymon.yaml`)."""
        return [
            f"GRAFANA_INFLUX_DB={self.database}",
            f"GRAFANA_INFLUX_USER={self.grafana_username}",
            f"GRAFANA_INFLUX_PASSWORD={self.grafana_password}",
        ]


def home_names(home: str) -> tuple[str, str, str]:
    """(database, user, Grafana's user) of a home: derived from its name, so one home cannot be
    given another's."""
    problem = name_problem(home)
    if problem:
        raise ConfigError(f"home {problem}")
    return f"energymon_{home}", f"energymon_{home}", f"energymon_{home}_grafana"


def admin_client(settings: Settings) -> InfluxClient:
    if not settings.cloud_url:
        raise ConfigError("ENERGYMON_CLOUD_URL is not set: which cloud should the home be made on?")
    if not settings.cloud_admin_username:
        raise ConfigError("ENERGYMON_CLOUD_ADMIN_USERNAME is not set: adding a home needs an admin")
    return InfluxClient(
        settings.cloud_url,
        "",
        username=settings.cloud_admin_username,
        password=settings.cloud_admin_password.get_secret_value(),
        timeout_s=settings.cloud_timeout_s,
        ca_file=settings.cloud_ca_file,
        allow_http_credentials=settings.cloud_allow_http_credentials,
        create_database=False,
    )


def add_home(admin: InfluxClient, home: str) -> HomeAccess:
    """Create the home's database, its replicator's user with ALL on that database only, and
    Grafana's user with READ on it only (or give existing users new passwords). Safe to run
    again: nothing of the home's data is touched."""
    database, user, grafana_user = home_names(home)

    def run(statement: str) -> None:
        admin.query(statement, database=None, method="POST")

    run(f"CREATE DATABASE {quote_ident(database)}")
    users = {row[0]: row[1] for s in admin.query("SHOW USERS", database=None) for row in s.values}
    passwords = {}
    for name, privilege in ((user, "ALL"), (grafana_user, "READ")):
        if users.get(name):
            raise ConfigError(f"{name} is an admin user; a home's user must not be")
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if name in users:
            run(f"SET PASSWORD FOR {quote_ident(name)} = {quote_string(password)}")
        else:
            run(f"CREATE USER {quote_ident(name)} WITH PASSWORD {quote_string(password)}")
        run(f"GRANT {privilege} ON {quote_ident(database)} TO {quote_ident(name)}")
        passwords[name] = password
    return HomeAccess(home, database, user, passwords[user], grafana_user, passwords[grafana_user])
