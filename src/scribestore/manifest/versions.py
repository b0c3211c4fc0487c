"""Version selectors: parsing and matching, with no I/O.

A selector is an ``int`` (0-indexed version number), a ``datetime`` or an ISO
timestamp string. ``match="exact"`` selects by number or creation time;
``match="asof"`` selects the newest version created at or before a time that
was not expired at that time. Naive datetimes are taken as UTC.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from scribestore.exception import AmbiguousVersionError, InvalidVersionError, VersionNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

__all__ = [
    "Match",
    "VersionSelector",
    "check_match",
    "parse_expiry",
    "parse_timestamp",
    "select",
    "select_as_of",
    "to_utc",
    "utcnow",
]

Match = Literal["exact", "asof"]
VersionSelector = int | dt.datetime | str | None

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?"
)


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def expiry(self) -> dt.datetime | None: ...


V = TypeVar("V", bound=_Versioned)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC, with microseconds."""
    return dt.datetime.now(dt.timezone.utc)


def to_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (naive values are taken as UTC).

    Raises:
        InvalidVersionError: the time is outside the years 1 to 9999 in UTC.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:
        raise InvalidVersionError(
            f"time {value.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from None


def parse_timestamp(value: str) -> tuple[dt.datetime, bool]:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]``.

    Returns:
        The aware UTC datetime and whether it had second precision only.

    Raises:
        InvalidVersionError: ``value`` is not such a timestamp.
    """
    m = _TIMESTAMP.fullmatch(value.strip())
    if m is None:
        raise InvalidVersionError(
            f"invalid version {value!r}: expected an int, a datetime, or a timestamp "
            "string YYYY-MM-DDTHH:MM:SS (optionally with .ffffff and a UTC offset)"
        )
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        when = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((frac or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise InvalidVersionError(f"invalid version {value!r}: {exc}") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        try:
            when = when.replace(tzinfo=dt.timezone(sign * offset))
        except ValueError:
            raise InvalidVersionError(
                f"invalid version {value!r}: the UTC offset {zone} is not under 24 hours"
            ) from None
    return to_utc(when), frac is None


def _last_micro_of_second(when: dt.datetime) -> dt.datetime:
    # when + 1 s would overflow in the last second of year 9999.
    return when.replace(microsecond=999_999) if when.microsecond == 0 else when


def check_match(match: object) -> Match:
    """Return ``match`` if it is ``"exact"`` or ``"asof"``.

    Raises:
        InvalidVersionError: any other value (a ValueError).
    """
    if match not in ("exact", "asof"):
        raise InvalidVersionError(f"match must be 'exact' or 'asof', not {match!r}")
    return match


def _describe(versions: Sequence[_Versioned]) -> str:
    return ", ".join(f"{v.version} (created {v.created_at.isoformat()})" for v in versions)


def select(
    name: str,
    versions: Sequence[V],
    version: VersionSelector,
    match: str = "exact",
    *,
    now: dt.datetime | None = None,
) -> V:
    """Pick one of ``versions`` (ordered by version number) for ``version``.

    Raises:
        InvalidVersionError: a bad ``match``, ``asof`` with an int, a malformed
            version string or an unsupported type (all ValueErrors).
        VersionNotFoundError: nothing matches.
        AmbiguousVersionError: a second-precision time matches several versions.
    """
    match = check_match(match)
    if version is None:
        current = now or utcnow()
        for candidate in reversed(versions):
            if candidate.expiry is None or candidate.expiry > current:
                return candidate
        raise VersionNotFoundError(
            f"every version of artifact {name!r} has expired (as of {current.isoformat()}); "
            "load one by number or time with match='exact'"
        )
    if isinstance(version, bool) or not isinstance(version, (int, dt.datetime, str)):
        raise InvalidVersionError(
            f"invalid version {version!r} for artifact {name!r}: use an int, a datetime "
            "or a timestamp string"
        )
    if isinstance(version, int):
        if match == "asof":
            raise InvalidVersionError(
                f"match='asof' needs a datetime or timestamp version, not the int {version} "
                f"(artifact {name!r})"
            )
        return _by_number(name, versions, version)
    if isinstance(version, str):
        when, whole_second = parse_timestamp(version)
    else:
        when, whole_second = to_utc(version), False
    if match == "asof":
        # A second-precision time covers that whole second.
        limit = _last_micro_of_second(when) if whole_second else when
        for candidate in reversed(versions):
            if candidate.created_at <= limit and (
                candidate.expiry is None or candidate.expiry > limit
            ):
                return candidate
        raise VersionNotFoundError(
            f"artifact {name!r} has no unexpired version created at or before "
            f"{when.isoformat()}; its first version was created "
            f"{versions[0].created_at.isoformat() if versions else 'never'}"
        )
    exact = [v for v in versions if v.created_at == when]
    if not exact and (whole_second or when.microsecond == 0):
        last = _last_micro_of_second(when)
        exact = [v for v in versions if when <= v.created_at <= last]
        if len(exact) > 1:
            raise AmbiguousVersionError(
                f"{version!r} matches {len(exact)} versions of artifact {name!r}: "
                f"{_describe(exact)}; give the time with microseconds or the version number"
            )
    if not exact:
        raise VersionNotFoundError(
            f"artifact {name!r} has no version created at {when.isoformat()}; "
            "use match='asof' for the newest version at that time"
        )
    return exact[-1]


def _by_number(name: str, versions: Sequence[V], version: int) -> V:
    """The version numbered ``version`` (a filtered view keeps the numbers of the
    versions it holds, so the list index is only the first guess).

    Raises:
        VersionNotFoundError: none has that number.
    """
    if 0 <= version < len(versions) and versions[version].version == version:
        return versions[version]
    for candidate in versions:
        if candidate.version == version:
            return candidate
    numbers = [v.version for v in versions]
    held = (
        f"versions 0 to {len(versions) - 1}"
        if numbers == list(range(len(numbers)))
        else f"versions {numbers}"
    )
    raise VersionNotFoundError(f"artifact {name!r} has no version {version}; it has {held}")


def parse_expiry(expiry: object) -> dt.datetime:
    """An expiry time: a datetime, a timestamp string, or None for now (UTC).

    Raises:
        InvalidVersionError: anything else, or a malformed timestamp.
    """
    if expiry is None:
        return utcnow()
    if isinstance(expiry, dt.datetime):
        return to_utc(expiry)
    if isinstance(expiry, str):
        return parse_timestamp(expiry)[0]
    raise InvalidVersionError(f"expiry must be a datetime or a timestamp string, not {expiry!r}")


def select_as_of(versions: Mapping[str, Sequence[V]], when: dt.datetime | str) -> dict[str, V]:
    """Each name's newest version unexpired at ``when``; names with none are left
    out (with a logged warning).

    Raises:
        InvalidVersionError: ``when`` is a malformed timestamp.
    """
    chosen: dict[str, V] = {}
    for name, candidates in versions.items():
        try:
            chosen[name] = select(name, candidates, when, "asof")
        except VersionNotFoundError:
            logger.warning(
                "filter: artifact %r has no unexpired version as of %s; left out", name, when
            )
    return chosen
