"""`parse_retry_after`: delay-seconds and the three HTTP-date forms of RFC 9110."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from energymon.backoff import DELAY_SECONDS_MAX, parse_retry_after

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Whole seconds, in UTC; RFC 850's two-digit years are read as this window.
moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2068, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
now_ms = st.integers(min_value=0, max_value=4_000_000_000_000)


def imf_fixdate(d: datetime) -> str:
    return f"{DAYS[d.weekday()]}, {d:%d} {MONTHS[d.month - 1]} {d:%Y %H:%M:%S} GMT"


def rfc850_date(d: datetime) -> str:
    return f"{LONG_DAYS[d.weekday()]}, {d:%d}-{MONTHS[d.month - 1]}-{d:%y %H:%M:%S} GMT"


def asctime_date(d: datetime) -> str:
    return f"{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:>2} {d:%H:%M:%S %Y}"


@given(st.integers(min_value=0, max_value=DELAY_SECONDS_MAX), now_ms)
def test_delay_seconds_are_read_as_they_are(seconds: int, now: int) -> None:
    assert parse_retry_after(str(seconds), now) == float(seconds)
    assert parse_retry_after(f" 000{seconds}\t", now) == float(seconds)


@given(st.integers(min_value=DELAY_SECONDS_MAX + 1, max_value=10**60))
def test_an_overlong_delay_is_the_largest_one(seconds: int) -> None:
    assert parse_retry_after(str(seconds), 0) == DELAY_SECONDS_MAX


def test_a_delay_longer_than_any_integer_conversion_is_the_largest_one() -> None:
    assert parse_retry_after("9" * 5000, 0) == DELAY_SECONDS_MAX


@given(moments, now_ms, st.sampled_from([imf_fixdate, rfc850_date, asctime_date]))
@example(datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC), 784_111_000_000, imf_fixdate)
def test_an_http_date_is_the_time_until_then_never_negative(
    moment: datetime, now: int, form: Callable[[datetime], str]
) -> None:
    expected = max(0.0, moment.timestamp() - now / 1000)
    assert parse_retry_after(form(moment), now) == expected


def test_the_rfc_examples() -> None:
    now = int(datetime(1999, 12, 31, 23, 58, 0, tzinfo=UTC).timestamp() * 1000)
    assert parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now) == 119.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == 0.0
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", now) == 0.0


@given(st.integers(min_value=1), st.integers(min_value=0))
def test_negative_and_fractional_numbers_are_invalid(whole: int, fraction: int) -> None:
    assert parse_retry_after(f"-{whole}", 0) is None
    assert parse_retry_after(f"{whole}.{fraction}", 0) is None
    assert parse_retry_after(f"{whole}e3", 0) is None


def test_absent_empty_and_nonsense_are_none() -> None:
    for value in (None, "", "  ", "soon", "inf", "nan", "Fri, 31 Feb 1999 23:59:59 GMT", "٣"):
        assert parse_retry_after(value, 0) is None, value


@given(st.text(), now_ms)
def test_any_text_gives_none_or_a_wait_never_an_exception(value: str, now: int) -> None:
    seconds = parse_retry_after(value, now)
    assert seconds is None or seconds >= 0.0
