"""`energymon demo`, scripted: the backlog builds while the internet is cut, drains after, and
the demo ends with the cloud holding exactly what the Pi holds."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


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


# --- leaving the demo, as a person does --------------------------------------------------------


def _start_in_a_terminal() -> tuple[int, int, str, Path]:
    """The demo on a pseudo-terminal of its own; returns once readings show on its screen."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the demo
        os.execv(sys.executable, [sys.executable, "-m", "energymon_cli", "demo", "--speed", "20"])
    output = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        output += _read(fd, 1.0)
        counts = re.findall(r"readings  local:\s+(\d+)", output)
        if counts and int(counts[-1]) > 0:
            root = re.search(r"devices in (\S+)", output)
            assert root is not None, output[-2000:]
            return pid, fd, output, Path(root.group(1))
    raise AssertionError("no readings on the demo's screen: " + output[-2000:])


def _read(fd: int, timeout_s: float) -> str:
    if not select.select([fd], [], [], timeout_s)[0]:
        return ""
    try:
        return os.read(fd, 65536).decode(errors="replace")
    except OSError:  # the child is gone and the terminal with it
        return ""


def _finish(pid: int, fd: int | None) -> tuple[int, str]:
    output = ""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if fd is not None:
            output += _read(fd, 0.5)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if fd is not None:
                output += _read(fd, 0.5)
            return os.waitstatus_to_exitcode(status), output
        if fd is None:
            time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the demo did not end: " + output[-2000:])


def _left_behind(root: Path) -> list[str]:
    """Processes still running from the demo's folder (influxd, collector, replicator, devices)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(root) in cmdline:
                found.append(cmdline)
    return found


def test_q_ends_with_the_proof_and_nothing_left() -> None:
    pid, fd, _, root = _start_in_a_terminal()
    os.write(fd, b"q")
    code, output = _finish(pid, fd)
    os.close(fd)
    assert code == 0, output[-2000:]
    assert re.search(r"converged: the cloud holds the same \d+ readings", output)
    assert not _left_behind(root) and not root.exists()


def test_ctrl_c_ends_with_the_proof_and_nothing_left() -> None:
    pid, fd, _, root = _start_in_a_terminal()
    os.killpg(pid, signal.SIGINT)  # what the terminal sends the whole foreground group
    code, output = _finish(pid, fd)
    os.close(fd)
    assert code == 0, output[-2000:]
    assert re.search(r"converged: the cloud holds the same \d+ readings", output)
    assert not _left_behind(root) and not root.exists()


def test_a_closed_terminal_still_proves_and_cleans_up() -> None:
    pid, fd, _, root = _start_in_a_terminal()
    os.close(fd)  # the window is closed: the kernel hangs up the demo's session
    code, _ = _finish(pid, None)
    assert code == 0
    assert not _left_behind(root) and not root.exists()


def test_quitting_while_the_internet_is_cut_restores_it_and_proves() -> None:
    pid, fd, _, root = _start_in_a_terminal()
    os.write(fd, b"c")
    time.sleep(2)
    os.write(fd, b"q")
    code, output = _finish(pid, fd)
    os.close(fd)
    assert "restoring the internet" in output
    assert code == 0, output[-2000:]
    assert re.search(r"converged: the cloud holds the same \d+ readings", output)
    assert not _left_behind(root)
