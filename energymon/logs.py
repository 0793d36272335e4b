"""Logging of every `energymon` process: one format, to stderr, at the configured level."""

from __future__ import annotations

import logging
import sys

from energymon.settings import Settings


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
