"""Human units in scenario files: durations ("90s", "1h30m", "7d") and rates ("10/h", "2 per minute").

Numbers are seconds (durations) or events per second (rates). Strings combine a number with a unit;
durations may chain several parts ("1h30m", "1 day 6 hours"), and a rate's denominator is a unit or a
whole duration ("3/h", "3 per 15m"). Units are lowercase, so "1M" (a month? a minute?) is refused rather
than guessed. Every bad value raises ``ValueError`` with a one-line message that shows a valid example.
"""

from __future__ import annotations

import math
import numbers
import re

from scheduler.errors import show_value

UNIT_SECONDS: dict[str, float] = {}
for _seconds, _names in (
    (0.001, ("ms", "msec", "millisecond", "milliseconds")),
    (1.0, ("s", "sec", "secs", "second", "seconds")),
    (60.0, ("m", "min", "mins", "minute", "minutes")),
    (3600.0, ("h", "hr", "hrs", "hour", "hours")),
    (86400.0, ("d", "day", "days")),
    (604800.0, ("w", "wk", "wks", "week", "weeks")),
):
    UNIT_SECONDS.update(dict.fromkeys(_names, _seconds))

# Longest names first so that "ms" is not read as "m" followed by garbage.
_UNIT = "|".join(sorted(UNIT_SECONDS, key=len, reverse=True))
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"

# Both patterns are plain enough to be valid in Python and in JSON Schema (ECMA-262) regexes.
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}\s*(?:{_UNIT})\s*)+)$"
RATE_PATTERN = rf"^\s*{_NUMBER}\s*(?:(?:/|per\s)\s*(?:(?:{_UNIT})|(?:{_NUMBER}\s*(?:{_UNIT})\s*)+))?\s*$"

_BARE_NUMBER = re.compile(rf"\s*({_NUMBER})\s*")
_DURATION_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})\s*")
_DURATION_WHOLE = re.compile(rf"\s*(?:{_NUMBER}\s*(?:{_UNIT})\s*)+")
_RATE = re.compile(rf"\s*({_NUMBER})\s*(?:/|per\s)\s*(.+?)\s*")
_UNKNOWN_UNIT = re.compile(rf"\s*{_NUMBER}\s*([A-Za-z]+)")

MAX_TEXT = 1000  # characters; a real duration or rate has a few dozen, and millions take seconds to read
DURATION_EXAMPLE = "expected a duration such as 90s, 15m, 2h or 7d"
RATE_EXAMPLE = "expected a rate such as 10/h, 2/m, 0.5/s or 1200/d"


def _number(value: object, what: str) -> float | None:
    """A plain int or float as a finite float; None when ``value`` is not a number at all."""
    if isinstance(value, bool):
        raise ValueError(f"{what}, got {show_value(value)}")
    if not isinstance(value, numbers.Real):
        return None
    number = float(value) if not isinstance(value, int) or abs(value) < 1e300 else math.inf
    if not math.isfinite(number):
        raise ValueError(f"{what}, got {show_value(value)} (not a finite number)")
    return number


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_TEXT:
        raise ValueError(f"{what}, got a text of {len(text):,} characters (at most {MAX_TEXT:,})")


def parse_duration(value: object) -> float:
    """Seconds from a number (already seconds) or a string such as "45s", "1h30m", "1.5h", "500ms"."""
    number = _number(value, DURATION_EXAMPLE)
    if number is None:
        if not isinstance(value, str):
            raise ValueError(f"{DURATION_EXAMPLE}, got {show_value(value)}")
        _check_length(value, DURATION_EXAMPLE)
        number = _duration_text(value)
    if number < 0:
        raise ValueError(f"a duration must not be negative, got {show_value(value)}")
    return number


def _duration_text(text: str) -> float:
    bare = _BARE_NUMBER.fullmatch(text)
    if bare is not None:
        return float(bare.group(1))
    stripped = text.strip()
    rest = stripped[1:]
    if stripped.startswith("-") and (_BARE_NUMBER.fullmatch(rest) or _DURATION_WHOLE.fullmatch(rest)):
        return -_duration_text(rest)  # the caller refuses it with a clear message
    if not _DURATION_WHOLE.fullmatch(text):
        unknown = _UNKNOWN_UNIT.match(text)
        if unknown is not None and unknown.group(1) not in UNIT_SECONDS:
            unit = unknown.group(1)
            case = " (units are lowercase)" if unit.lower() in UNIT_SECONDS else ""
            raise ValueError(f"unknown unit {show_value(unit)}{case} in {show_value(text)}: {DURATION_EXAMPLE}")
        raise ValueError(f"{DURATION_EXAMPLE}, got {show_value(text)}")
    total = sum(float(n) * UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if not math.isfinite(total):
        raise ValueError(f"{DURATION_EXAMPLE}, got {show_value(text)} (too large)")
    return total


def parse_rate(value: object, *, allow_zero: bool = False) -> float:
    """Events per second from a number (already per second) or a string such as "10/h", "2/m",
    "1200/d", "10 per hour" or "3 per 15m". Negative rates, and zero unless ``allow_zero``, are refused."""
    number = _number(value, RATE_EXAMPLE)
    if number is None:
        if not isinstance(value, str):
            raise ValueError(f"{RATE_EXAMPLE}, got {show_value(value)}")
        _check_length(value, RATE_EXAMPLE)
        number = _rate_text(value)
    if number < 0 or (number == 0 and not allow_zero):
        least = "zero or positive" if allow_zero else "positive"
        raise ValueError(f"a rate must be {least}, got {show_value(value)}")
    return number


def _rate_text(text: str) -> float:
    bare = _BARE_NUMBER.fullmatch(text)
    if bare is not None:
        return float(bare.group(1))
    stripped = text.strip()
    rest = stripped[1:]
    if stripped.startswith("-") and (_BARE_NUMBER.fullmatch(rest) or _RATE.fullmatch(rest)):
        return -_rate_text(rest)  # the caller says what is allowed
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{RATE_EXAMPLE}, got {show_value(text)}")
    count, per = float(match.group(1)), match.group(2)
    if per in UNIT_SECONDS:  # "10/h": per one unit
        seconds = UNIT_SECONDS[per]
    else:
        try:
            seconds = _duration_text(per)
        except ValueError:
            raise ValueError(f"{RATE_EXAMPLE}, got {show_value(text)}") from None
        if _BARE_NUMBER.fullmatch(per):  # "10/5" is ambiguous: 5 what?
            raise ValueError(f"the denominator needs a unit (10/h, 3 per 15m), got {show_value(text)}")
    if seconds <= 0:
        raise ValueError(f"a rate needs a positive time span after '/', got {show_value(text)}")
    rate = count / seconds
    if not math.isfinite(rate):
        raise ValueError(f"{RATE_EXAMPLE}, got {show_value(text)} (too large)")
    return rate


def format_duration(seconds: float) -> str:
    """The shortest readable form, to the millisecond: 5400 -> "1h30m", 0.5 -> "500ms", 0 -> "0s"."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds!r} as a duration")
    sign = "-" if seconds < 0 else ""
    millis = round(abs(seconds) * 1000)
    if millis == 0:
        return "0s"
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if millis:
        whole, frac = divmod(millis, 1000)
        if not parts and whole == 0:
            parts.append(f"{frac}ms")
        elif frac == 0:
            parts.append(f"{whole}s")
        else:
            parts.append(f"{whole}.{frac:03d}".rstrip("0") + "s")
    return sign + "".join(parts)
