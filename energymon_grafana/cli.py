"""`energymon grafana ...`: the Grafana files as code, and pushing them to a Grafana."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from energymon_grafana import DEFAULT_CURRENCY, notify
from energymon_grafana.alert_model import HOME_DATASOURCE_PREFIX
from energymon_grafana.alerts import ORG_ID

if TYPE_CHECKING:
    from energymon_grafana.push import Pusher

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
ALERTING_DIR = ROOT / "grafana" / "provisioning" / "alerting"
IMAGES_DIR = ROOT / "docs" / "images"


def _build(args: argparse.Namespace) -> int:
    # The SDK, YAML and the HTTP client are loaded by these commands only, not by every
    # `energymon` command (a long-running collector above all).
    from energymon_grafana.alerting_files import alerting_files
    from energymon_grafana.files import differing, write_changed
    from energymon_grafana.layout import drawings
    from energymon_grafana.render import Options, generated, stale, write

    options = Options(currency=args.currency)
    images = drawings(generated(options))
    if args.check:
        different = [args.out / n for n in stale(args.out, options)]
        different += [args.alerting / n for n in differing(args.alerting, alerting_files())]
        different += [args.images / n for n in differing(args.images, images)]
        for path in different:
            print(f"{path} differs from the generated file", file=sys.stderr)
        return 1 if different else 0
    written = write(args.out, options) + write_changed(args.alerting, alerting_files())
    written += write_changed(args.images, images)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _push(args: argparse.Namespace) -> int:
    from energymon_grafana.push import Pusher, connect

    api = connect(args.url, args.token, args.user, args.password, args.org_id)
    try:
        pusher = Pusher(api, os.environ, args.dashboards, org_id=args.org_id, fleet=args.fleet)
        return _push_with(pusher, args.dry_run)
    finally:
        api.client.s.close()


def _push_with(pusher: Pusher, dry_run: bool) -> int:
    skipped = [i.uid for i in notify.INTEGRATIONS if i not in pusher.configured()]
    for uid in skipped:
        print(
            f"{uid}: not configured (its GRAFANA_* variables are unset), left out", file=sys.stderr
        )
    if not pusher.configured():
        print(
            "no integration configured: the notification policy is left as it is", file=sys.stderr
        )
    changes = pusher.plan()
    for change in changes:
        print(change.diff(), end="")
        if not dry_run:
            change.write()
    verb = "would change" if dry_run else "changed"
    print(f"{verb} {len(changes)} resources", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grafana = subparsers.add_parser(
        "grafana", help="Grafana dashboards, alert rules and notifications as code"
    )
    sub = grafana.add_subparsers(dest="grafana_command", required=True, metavar="COMMAND")
    build = sub.add_parser(
        "build",
        help="regenerate grafana/dashboards/*.json, grafana/provisioning/alerting/*.yaml and "
        "the layout drawings docs/images/dashboard-*.svg",
        description="Regenerate the dashboards, the alerting provisioning files and the "
        "dashboards' layout drawings from energymon_grafana. The committed files use the "
        "defaults; --currency changes the unit of the cost panels for your own copy.",
    )
    build.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="directory of the JSON")
    build.add_argument(
        "--alerting", type=Path, default=ALERTING_DIR, help="directory of the alerting YAML"
    )
    build.add_argument(
        "--images", type=Path, default=IMAGES_DIR, help="directory of the layout drawings"
    )
    build.add_argument(
        "--currency", default=DEFAULT_CURRENCY, help="currency shown on the cost panels"
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a file differs from the generated one",
    )
    build.set_defaults(handler=_build)
    push = sub.add_parser(
        "push",
        help="upload dashboards, alert rules, contact points, policy and template to a Grafana",
    )
    push.add_argument("--url", required=True, help="Grafana's base URL, e.g. https://g.example")
    auth = push.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service account token (default: $GRAFANA_TOKEN)",
    )
    auth.add_argument("--user", help="basic-auth user (with --password)")
    push.add_argument(
        "--password",
        default=os.environ.get("GRAFANA_PASSWORD"),
        help="basic-auth password (default: $GRAFANA_PASSWORD)",
    )
    push.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    push.add_argument(
        "--dashboards", type=Path, default=DASHBOARD_DIR, help="directory of dashboard JSON"
    )
    push.add_argument(
        "--org-id",
        type=int,
        default=ORG_ID,
        help="the Grafana organisation to write into (X-Grafana-Org-Id): in the cloud, a "
        "home's own organisation, or the operator's with --fleet (default: %(default)s)",
    )
    push.add_argument(
        "--fleet",
        action="store_true",
        help="the operator's organisation: the Fleet dashboard and one rule group per home, "
        f"each reading its data source {HOME_DATASOURCE_PREFIX}NAME (found through the API)",
    )
    push.set_defaults(handler=_push)
