"""What the entry point sets up for the whole process before any package is loaded."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import energymon_cli.main
import collector.service
import requests

answer = requests.models.Response()
answer._content = "tension 230 V, \\u00e9t\\u00e9".encode()
answer.headers["Content-Type"] = "text/plain"
print(answer.text)
print(sorted(name for name in energymon_cli.DETECTORS if sys.modules.get(name) is not None))
"""


def test_requests_runs_without_a_character_set_detector_and_reads_utf8() -> None:
    # -W error: the warning requests gives when it finds no detector must not surface either.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text, loaded = result.stdout.splitlines()
    assert text == "tension 230 V, \u00e9t\u00e9"
    assert loaded == "[]"
