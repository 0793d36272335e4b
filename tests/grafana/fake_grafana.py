"""A small stand-in for Grafana's HTTP API on loopback: exactly the endpoints that grafana-client
3.11.2 calls for `energymon grafana push`, with the paths, bodies, status codes and validation
Grafana's source gives them (pkg/api/api.go and pkg/api/folder.go, dashboard.go, datasources.go;
pkg/services/ngalert/api/api_provisioning.go and tooling/definitions/provisioning_*.go;
grafana/alerting receivers/email, receivers/telegram).

Organisations are kept apart as Grafana's authn does (pkg/services/authn/authnimpl/service.go
orgIDFromHeader, clients/api_key.go validateApiKey): X-Grafana-Org-Id chooses the organisation,
a service account token works in its own only.

It is not Grafana: it stores what it is sent, adds the read-only fields Grafana adds (ids,
versions, provenance), answers secure settings redacted, and counts writes. No Grafana binary
runs in the test environment; docs/dashboards.md says so.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

REDACTED = "[REDACTED]"
SECURE = {"telegram": {"bottoken"}}
RULE_REQUIRED = (
    "orgID",
    "folderUID",
    "ruleGroup",
    "title",
    "condition",
    "data",
    "noDataState",
    "execErrState",
    "for",
)
# pkg/util/shortid_generator.go: MaxUIDLength, validUIDPattern.
MAX_UID_CHARS = 40
VALID_UID = re.compile(r"[a-zA-Z0-9\-_]*")
ORG_HEADER = "X-Grafana-Org-Id"
DEFAULT_POLICY = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class State:
    """One organisation's resources: Grafana keeps each organisation's apart."""

    org_id: int
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[tuple[str, str], int] = field(default_factory=dict)
    contact_points: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_POLICY))
    templates: dict[str, str] = field(default_factory=dict)
    datasources: list[dict[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    def add_datasource(self, name: str, uid: str, kind: str = "influxdb") -> None:
        """A data source as GET /api/datasources lists it (dtos.DataSourceListItemDTO)."""
        self.datasources.append(
            {
                "id": len(self.datasources) + 1,
                "uid": uid,
                "orgId": 0,
                "name": name,
                "type": kind,
                "typeName": kind,
                "typeLogoUrl": "",
                "access": "proxy",
                "url": "http://influxdb:8086",
                "user": "",
                "database": "",
                "basicAuth": False,
                "isDefault": False,
                "jsonData": {},
                "readOnly": True,
            }
        )


Route = tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]


class FakeGrafana:
    """Organisations 1.. with their resources; a service account token belongs to one of them,
    the basic-auth user `admin` (who created them) is a member of all."""

    def __init__(self, token: str = "service-account-token", orgs: int = 1) -> None:
        self.orgs = {org_id: State(org_id) for org_id in range(1, orgs + 1)}
        self.tokens = {token: 1}
        prov = "/api/v1/provisioning"
        table: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", "/api/folders/([^/]+)", self.get_folder),
            ("POST", "/api/folders", self.create_folder),
            ("PUT", "/api/folders/([^/]+)", self.update_folder),
            ("GET", "/api/dashboards/uid/([^/]+)", self.get_dashboard),
            ("POST", "/api/dashboards/db", self.save_dashboard),
            ("GET", f"{prov}/alert-rules/([^/]+)", self.get_rule),
            ("POST", f"{prov}/alert-rules", self.create_rule),
            ("PUT", f"{prov}/alert-rules/([^/]+)", self.update_rule),
            ("GET", f"{prov}/folder/([^/]+)/rule-groups/([^/]+)", self.get_group),
            ("PUT", f"{prov}/folder/([^/]+)/rule-groups/([^/]+)", self.put_group),
            ("GET", f"{prov}/contact-points", self.get_contact_points),
            ("POST", f"{prov}/contact-points", self.create_contact_point),
            ("PUT", f"{prov}/contact-points/([^/]+)", self.update_contact_point),
            ("GET", f"{prov}/policies", lambda s, _b: (200, s.policy)),
            ("PUT", f"{prov}/policies", self.put_policy),
            ("GET", f"{prov}/templates/([^/]+)", self.get_template),
            ("PUT", f"{prov}/templates/([^/]+)", self.put_template),
            ("GET", "/api/datasources", lambda s, _b: (200, sorted_datasources(s))),
        ]
        self.routes: list[Route] = [(v, re.compile(p), h) for v, p, h in table]
        # "METHOD pattern" of every route a request reached: a test shows none is unused.
        self.routes_hit: set[str] = set()
        self.unrouted: list[str] = []

    # ---- folders (pkg/api/folder.go)
    def get_folder(self, s: State, _body: Any, uid: str) -> tuple[int, Any]:
        if uid not in s.folders:
            raise HttpError(404, "folder not found")
        return 200, s.folders[uid]

    def create_folder(self, s: State, body: dict[str, Any]) -> tuple[int, Any]:
        uid = body.get("uid") or f"generated-{len(s.folders)}"
        if uid in s.folders:
            raise HttpError(409, "a folder with the same uid already exists")
        if any(f["title"] == body["title"] for f in s.folders.values()):
            raise HttpError(409, "a folder with the same name already exists")
        s.folders[uid] = {"uid": uid, "title": body["title"], "id": 1, "version": 1}
        return 200, s.folders[uid]

    def update_folder(self, s: State, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        folder = self.get_folder(s, None, uid)[1]
        folder["title"] = body["title"]
        folder["version"] += 1
        return 200, folder

    # ---- dashboards (pkg/api/dashboard.go)
    def get_dashboard(self, s: State, _body: Any, uid: str) -> tuple[int, Any]:
        if uid not in s.dashboards:
            raise HttpError(404, "Dashboard not found")
        return 200, s.dashboards[uid]

    def save_dashboard(self, s: State, body: dict[str, Any]) -> tuple[int, Any]:
        board = copy.deepcopy(body["dashboard"])
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in s.folders:
            raise HttpError(400, "folder not found")
        uid = board["uid"]
        old = s.dashboards.get(uid)
        if old is not None and not body.get("overwrite"):
            raise HttpError(412, "version-mismatch")
        version = 1 if old is None else old["dashboard"]["version"] + 1
        board |= {"id": 7, "version": version}
        s.dashboards[uid] = {"dashboard": board, "meta": {"folderUid": folder_uid}}
        return 200, {"status": "success", "uid": uid, "version": version}

    # ---- alert rules (api_provisioning.go: an unknown uid is response.Empty(404), no body)
    def get_rule(self, s: State, _body: Any, uid: str) -> tuple[int, Any]:
        if uid not in s.rules:
            return 404, None
        return 200, s.rules[uid]

    def _store_rule(self, s: State, body: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in RULE_REQUIRED if k not in body]
        if missing:
            raise HttpError(400, f"invalid alert rule: missing {missing}")
        if body["folderUID"] not in s.folders:
            raise HttpError(400, "folder does not exist")
        # The unique index of alert_rule on org_id, namespace_uid and title.
        if any(
            r["title"] == body["title"] and r["folderUID"] == body["folderUID"]
            for uid, r in s.rules.items()
            if uid != body["uid"]
        ):
            raise HttpError(
                400,
                "a conflicting alert rule is found: rule title under the same "
                "organisation and folder should be unique",
            )
        # The rule goes to the caller's organisation, whatever the body says (RoutePostAlertRule
        # and RoutePutAlertRule set OrgID from the signed-in user).
        rule = copy.deepcopy(body) | {
            "id": len(s.rules) + 1,
            "provenance": "api",
            "orgID": s.org_id,
        }
        rule["updated"] = "2026-01-01T00:00:00Z"
        s.rules[body["uid"]] = rule
        s.groups.setdefault((body["folderUID"], body["ruleGroup"]), 60)
        return rule

    def create_rule(self, s: State, body: dict[str, Any]) -> tuple[int, Any]:
        # provisioning/alert_rules.go CreateAlertRule: util.ValidateUID.
        if len(body["uid"]) > MAX_UID_CHARS or not VALID_UID.fullmatch(body["uid"]):
            raise HttpError(400, f"cannot create rule with UID '{body['uid']}'")
        if body["uid"] in s.rules:
            raise HttpError(409, "rule uid exists")
        return 201, self._store_rule(s, body)

    def update_rule(self, s: State, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        if uid not in s.rules:
            return 404, None
        return 200, self._store_rule(s, body)

    def get_group(self, s: State, _body: Any, folder: str, group: str) -> tuple[int, Any]:
        if (folder, group) not in s.groups:
            raise HttpError(404, "")
        rules = [
            r for r in s.rules.values() if r["ruleGroup"] == group and r["folderUID"] == folder
        ]
        return 200, {
            "title": group,
            "folderUid": folder,
            "interval": s.groups[(folder, group)],
            "rules": rules,
        }

    def put_group(self, s: State, body: dict[str, Any], folder: str, group: str) -> tuple[int, Any]:
        if body["interval"] % 10:
            raise HttpError(400, "interval must be a multiple of the base interval")
        for rule in body["rules"]:
            self._store_rule(s, rule)
        s.groups[(folder, group)] = body["interval"]
        return 200, body

    # ---- contact points (provisioning_contactpoints.go, grafana/alerting receivers)
    def get_contact_points(self, s: State, _body: Any) -> tuple[int, Any]:
        """Every contact point: grafana-client 3.11.2 sends no `name` filter."""
        out = []
        for cp in s.contact_points.values():
            shown = copy.deepcopy(cp)
            for key in SECURE.get(cp["type"], ()):
                if key in shown["settings"]:
                    shown["settings"][key] = REDACTED
            out.append(shown)
        return 200, out

    def _validate(self, body: dict[str, Any]) -> None:
        settings = body["settings"]
        if body["type"] == "email" and not settings.get("addresses"):
            raise HttpError(400, "could not find addresses in settings")
        if body["type"] == "telegram" and not (settings.get("bottoken") and settings.get("chatid")):
            raise HttpError(400, "could not find Bot Token / Chat Id in settings")

    def create_contact_point(self, s: State, body: dict[str, Any]) -> tuple[int, Any]:
        self._validate(body)
        s.contact_points[body["uid"]] = copy.deepcopy(body)
        return 202, body

    def update_contact_point(self, s: State, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        if uid not in s.contact_points:
            raise HttpError(404, "contact point not found")
        self._validate(body)
        s.contact_points[uid] = copy.deepcopy(body)
        return 202, {"message": "contactpoint updated"}

    # ---- policies and templates
    def put_policy(self, s: State, body: dict[str, Any]) -> tuple[int, Any]:
        receivers = {cp["name"] for cp in s.contact_points.values()}
        used = {body["receiver"], *(r["receiver"] for r in body.get("routes", []))}
        if not used <= receivers:
            raise HttpError(400, f"receiver {used - receivers} does not exist")
        s.policy = copy.deepcopy(body)
        return 202, {"message": "policies updated"}

    def get_template(self, s: State, _body: Any, name: str) -> tuple[int, Any]:
        if name not in s.templates:
            raise HttpError(404, "")
        return 200, {"name": name, "template": s.templates[name], "provenance": "api"}

    def put_template(self, s: State, body: dict[str, Any], name: str) -> tuple[int, Any]:
        s.templates[name] = body["template"]
        return 202, {"name": name, "template": body["template"]}

    # ---- HTTP
    def organisation(self, auth: str | None, org_header: str | None) -> State:
        """The organisation a request acts in, as Grafana's authn resolves it: the
        X-Grafana-Org-Id header, else the credential's own organisation."""
        requested = int(org_header) if org_header and org_header.isdigit() else 0
        if auth and auth.startswith("Bearer ") and auth[7:] in self.tokens:
            own = self.tokens[auth[7:]]
            # clients/api_key.go validateApiKey: errAPIKeyOrgMismatch.
            if requested not in (0, own):
                raise HttpError(401, "API key does not belong to the requested organization")
            return self.orgs[own]
        if auth and auth.startswith("Basic "):
            if base64.b64decode(auth[6:]).decode() != "admin:secret":
                raise HttpError(401, "Unauthorized")
            # A user without a role in the organisation has no permission there
            # (accesscontrol middleware: deny).
            if (requested or 1) not in self.orgs:
                raise HttpError(403, "Access denied")
            return self.orgs[requested or 1]
        raise HttpError(401, "Unauthorized")

    def handle(
        self, method: str, path: str, raw_body: bytes, auth: str | None, org: str | None = None
    ) -> tuple[int, Any]:
        try:
            state = self.organisation(auth, org)
        except HttpError as exc:
            return exc.status, {"message": str(exc)}
        url = urlparse(path)
        body = json.loads(raw_body) if raw_body else None
        for verb, pattern, handler in self.routes:
            m = pattern.fullmatch(url.path)
            if verb == method and m:
                self.routes_hit.add(f"{verb} {pattern.pattern}")
                try:
                    status, answer = handler(state, body, *m.groups())
                except HttpError as exc:
                    return exc.status, {"message": str(exc)}
                if method != "GET":
                    state.writes.append(f"{method} {url.path}")
                return status, answer
        self.unrouted.append(f"{method} {url.path}")
        return 404, {"message": "Not found"}

    @property
    def state(self) -> State:
        """Organisation 1, the one a credential acts in without the header."""
        return self.orgs[1]


def sorted_datasources(s: State) -> list[dict[str, Any]]:
    """pkg/api/datasources.go GetDataSources: the organisation's, sorted by name in any case."""
    return sorted(s.datasources, key=lambda d: str(d["name"]).lower())


@contextmanager
def serving(fake: FakeGrafana) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, answer = fake.handle(
                self.command,
                self.path,
                self.rfile.read(length),
                self.headers.get("Authorization"),
                self.headers.get(ORG_HEADER),
            )
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows failures, not every request."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
