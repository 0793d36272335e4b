"""`energymon simulate device`: a fake Arduino posting readings to a collector, until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from energymon.errors import ConfigError
from simulator.device import DEFAULT_SENSORS, FakeDevice
from simulator.device_step import DeviceEvent, DeviceStep, SendOutcome

log = logging.getLogger("energymon.simulate.device")

_FAILURES = (SendOutcome.BACKOFF, SendOutcome.CLIENT_ERROR, SendOutcome.RETRY_AFTER)


def _sensors(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of distinct names like a,b,c")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the collector (default %(default)s)"
    )
    parser.add_argument("--device", default="mega-01", help="device name (default %(default)s)")
    parser.add_argument("--key", required=True, help="the device's key at the collector")
    parser.add_argument(
        "--sensors",
        type=_sensors,
        default=list(DEFAULT_SENSORS),
        help="comma-separated meters on this device (default pzem1,pzem2,pzem3)",
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="poll interval in device seconds (default 1)"
    )
    parser.add_argument("--batch", type=int, default=20, help="most readings per request (20)")
    parser.add_argument(
        "--capacity", type=int, default=2000, help="readings the device can buffer (2000)"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="device seconds per real second (default 1)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep the boot counter here (like EEPROM), so a restart is a new boot",
    )
    parser.add_argument(
        "--sd-card",
        action="store_true",
        help="also keep unacknowledged readings in --state-dir across restarts",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the household loads")
    parser.add_argument(
        "--count", type=int, help="poll N times, send everything, then exit (default: forever)"
    )


class _EventLog:
    """One log line per change of state, never one per reading or request."""

    def __init__(self, device: FakeDevice, url: str) -> None:
        self._device = device
        self._url = url
        self._waiting_logged = False
        self._connected = False

    def __call__(self, step: DeviceStep) -> None:
        name = self._device.device
        for event in step.events:
            if event is DeviceEvent.CONNECTED:
                self._connected = True
                log.info("%s: connected to %s (boot %d)", name, self._url, self._device.boot)
            elif event is DeviceEvent.DISCONNECTED:
                self._connected = False
                log.warning("%s: lost the collector (%s); buffering", name, _why(step))
            elif event is DeviceEvent.BACKLOG_BUILDING:
                log.warning("%s: backlog building: %d readings buffered", name, step.buffered)
            elif event is DeviceEvent.BACKLOG_DRAINED:
                log.info("%s: backlog drained (%d dropped this boot)", name, step.dropped)
        if step.outcome in _FAILURES and not self._connected and not self._waiting_logged:
            self._waiting_logged = True
            log.warning("%s: waiting for the collector at %s (%s)", name, self._url, _why(step))


def _why(step: DeviceStep) -> str:
    if step.status is None:
        return "no response"
    return f"HTTP {step.status}, retrying in {step.retry_in_s:.1f} s"


def _seconds_since_local_midnight() -> float:
    now = time.localtime()
    return float(now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)


def run(args: argparse.Namespace) -> int:
    from energymon.logs import setup_logging
    from energymon.settings import load_settings

    if args.sd_card and args.state_dir is None:
        raise ConfigError("--sd-card needs --state-dir")
    setup_logging(load_settings(getattr(args, "config", None)))
    state_file = None
    if args.state_dir is not None:
        state_file = args.state_dir / f"{quote(args.device, safe='')}.state.json"
    device = FakeDevice(
        args.url,
        args.device,
        args.key,
        sensors=args.sensors,
        seed=args.seed,
        poll_interval_s=args.interval,
        batch_max=args.batch,
        capacity=args.capacity,
        speed=args.speed,
        state_file=state_file,
        persist_buffer=args.sd_card,
        # The household's day follows the wall clock, so the demo's evening peak is in the evening.
        meter_start_s=_seconds_since_local_midnight(),
        poll_limit=args.count,
    )
    log.info(
        "%s: boot %d, %d meters every %g s at %gx speed, posting to %s",
        args.device, device.boot, len(args.sensors), args.interval, args.speed, args.url,
    )  # fmt: skip
    if device.restored or device.dropped:
        log.info(
            "%s: %d readings of earlier boots to re-send, %d lost (their boot was never anchored)",
            args.device, device.restored, device.dropped,
        )  # fmt: skip
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        device.run(stop, on_step=_EventLog(device, args.url))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        device.close()
    stats = device.stats
    log.info(
        "%s: stopped: %d readings acknowledged in %d requests, %d dropped, %d still buffered",
        args.device, stats.acked_readings, stats.requests, stats.dropped, device.buffered,
    )  # fmt: skip
    return 0
