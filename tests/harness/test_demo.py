"""`energymon demo`, scripted: the backlog builds while the internet is cut, drains after, and
the demo ends with the cloud holding exactly what the Pi holds."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_cuts_restores_and_converges() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "energymon_cli",
            "demo",
            "--seconds",
            "22",
            "--cut-at",
            "5",
            "--restore-at",
            "14",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    screens = result.stdout.split("\x1b[H\x1b[2J")
    missing_while_cut = [
        int(m.group(1))
        for screen in screens
        if "CUT" in screen
        for m in [re.search(r"missing in the cloud:\s+(\d+)", screen)]
        if m
    ]
    assert missing_while_cut and max(missing_while_cut) > 0, "no backlog while the internet was cut"
    assert re.search(r"converged: the cloud holds the same \d+ readings", result.stdout)
    assert "stopping everything" in result.stdout
