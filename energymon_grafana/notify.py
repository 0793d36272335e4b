"""Where alerts go: one contact point with an e-mail and a Telegram integration, the
notification policy that sends every alert there, and the message template they use.
`energymon grafana build` writes them to grafana/provisioning/alerting/notifications.yaml.

Formats, as Grafana reads them (pkg/services/provisioning/alerting/): ContactPointV1 {orgId,
name, receivers: ReceiverV1 {uid, type, settings, disableResolveMessage}}, NotificiationPolicyV1
{orgId + the route inline}, TemplateV1 {orgId, name, template}. The integrations' settings are
the ones grafana/alerting's receivers read: email {addresses, singleEmail, subject, message},
telegram {bottoken, chatid, message, parse_mode}.

Grafana expands `$VAR` in the settings of a provisioned contact point and in the policy (values
package, os.ExpandEnv; `$$` is a literal `$`), but not in templates: so the secrets are
`$GRAFANA_*` references filled from Grafana's environment, and every `$` of Go templating lives
in the template, never in a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energymon_grafana.alerts import ORG_ID

CONTACT_POINT = "energymon"
TEMPLATE_NAME = "energymon"
EMAIL_UID = "energymon-email"
TELEGRAM_UID = "energymon-telegram"


@dataclass(frozen=True)
class Integration:
    uid: str
    kind: str
    settings: dict[str, Any]
    # The environment variables it needs; `grafana push` leaves it out when one is unset.
    env: tuple[str, ...]
    # Settings Grafana stores encrypted and answers as redacted.
    secure: tuple[str, ...] = ()


INTEGRATIONS: tuple[Integration, ...] = (
    Integration(
        uid=EMAIL_UID,
        kind="email",
        settings={
            "addresses": "$GRAFANA_ALERT_EMAIL",
            "singleEmail": True,
            "subject": '{{ template "energymon.title" . }}',
            "message": '{{ template "energymon.message" . }}',
        },
        env=("GRAFANA_ALERT_EMAIL",),
    ),
    Integration(
        uid=TELEGRAM_UID,
        kind="telegram",
        settings={
            "bottoken": "$GRAFANA_TELEGRAM_BOT_TOKEN",
            "chatid": "$GRAFANA_TELEGRAM_CHAT_ID",
            "message": '{{ template "energymon.message" . }}',
            "parse_mode": "HTML",
        },
        env=("GRAFANA_TELEGRAM_BOT_TOKEN", "GRAFANA_TELEGRAM_CHAT_ID"),
        secure=("bottoken",),
    ),
)

# Go templates (Grafana's notification templating): one line per alert, summary then runbook.
# Telegram parses the message as HTML, so everything that comes from a rule is escaped.
TEMPLATE = """\
{{ define "energymon.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] \
energymon: {{ .CommonLabels.alertname }}
{{- end }}

{{ define "energymon.message" -}}
{{ range .Alerts -}}
{{ if eq .Status "firing" }}FIRING{{ else }}RESOLVED{{ end }} \
{{ .Labels.severity }}: {{ html .Annotations.summary }}
{{ if eq .Status "firing" }}What to do: {{ html .Annotations.runbook }}
{{ end }}
{{ end -}}
{{- end }}
"""

POLICY: dict[str, Any] = {
    "receiver": CONTACT_POINT,
    "group_by": ["grafana_folder", "alertname", "home"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
    "routes": [
        {
            "receiver": CONTACT_POINT,
            "object_matchers": [["severity", "=", "critical"]],
            "repeat_interval": "1h",
        }
    ],
}


def receiver_dict(integration: Integration) -> dict[str, Any]:
    return {
        "uid": integration.uid,
        "type": integration.kind,
        "settings": dict(integration.settings),
        "disableResolveMessage": False,
    }


def provisioning_file() -> dict[str, Any]:
    """contactPoints, policies and templates of AlertingFileV1."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": ORG_ID,
                "name": CONTACT_POINT,
                "receivers": [receiver_dict(i) for i in INTEGRATIONS],
            }
        ],
        "policies": [{"orgId": ORG_ID, **POLICY}],
        "templates": [{"orgId": ORG_ID, "name": TEMPLATE_NAME, "template": TEMPLATE}],
    }
