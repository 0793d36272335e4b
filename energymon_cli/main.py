"""The `energymon` command: one entry point whose subcommands come from each package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from collector import cli as collector_cli
from energymon import __version__
from energymon.errors import EnergymonError
from energymon.settings import load_settings, settings_markdown
from energymon_grafana import cli as grafana_cli
from harness import cli as harness_cli
from replicator import cli as replicator_cli
from simulator import cli as simulator_cli


def _config_show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    for name, value in settings.model_dump().items():
        # SecretStr dumps as '**********', so keys and passwords never reach the terminal.
        print(f"ENERGYMON_{name.upper()}={'' if value is None else value}")
    return 0


def _config_docs(args: argparse.Namespace) -> int:
    print(settings_markdown(), end="")
    return 0


SETTINGS_HELP = (
    "Settings come from ENERGYMON_* environment variables, or from an env file given with "
    "--config FILE (before or after the command); `energymon config docs` lists every setting "
    "with its default, `energymon config show` the effective values."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energymon", description=__doc__, epilog=SETTINGS_HELP)
    parser.add_argument("--version", action="version", version=f"energymon {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None, help="env file with ENERGYMON_* settings"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    collector_cli.register(sub)
    simulator_cli.register(sub)
    replicator_cli.register(sub)
    harness_cli.register(sub)
    grafana_cli.register(sub)
    config = sub.add_parser("config", help="show the effective settings or their documentation")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("show", help="effective settings, secrets masked").set_defaults(
        handler=_config_show
    )
    config_sub.add_parser("docs", help="the settings table of docs/configuration.md").set_defaults(
        handler=_config_docs
    )
    _everywhere(parser)
    return parser


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """Every command takes --config too, and says where settings come from: a user types the
    option after the command as often as before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(
                    "--config",
                    type=Path,
                    default=argparse.SUPPRESS,
                    help="env file with ENERGYMON_* settings",
                )
                command.epilog = command.epilog or SETTINGS_HELP
                _everywhere(command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except EnergymonError as exc:
        # The one place where the project's errors become a message and an exit status.
        print(f"energymon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`energymon config show | head`): nothing more to say, and
        # Python must not complain about it when it flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
