"""The few calls of Grafana's HTTP API that `energymon grafana push` makes, over `requests`.

Not grafana-client: since its 4.0 it depends on niquests, whose urllib3-future installs a
startup hook (urllib3_future.pth) that copies itself over the `urllib3` package of the whole
environment at every interpreter start, so the collector's and replicator's InfluxDB client
would silently run on another HTTP stack (docs/dashboards.md#why-not-grafana-client).
"""

from __future__ import annotations

from typing import Any

import requests

from energymon.errors import GrafanaApiError

TIMEOUT_S = 30


class GrafanaHttp:
    """A session on one Grafana, authenticated with a service account token or basic auth."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if user is not None:
            self.session.auth = (user, password or "")
        elif token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise GrafanaApiError(f"{method} {path}: {exc}") from exc

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The resource, or None when Grafana answers 404."""
        response = self._call("GET", path, params=params)
        if response.status_code == 404:
            return None
        return _json(response, "GET", path)

    def send(self, method: str, path: str, body: Any) -> Any:
        return _json(self._call(method, path, json=body), method, path)

    def close(self) -> None:
        self.session.close()


def _json(response: requests.Response, method: str, path: str) -> Any:
    if response.status_code >= 400:
        raise GrafanaApiError(
            f"{method} {path}: Grafana answered {response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None
