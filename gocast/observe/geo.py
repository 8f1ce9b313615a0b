# -*- test-case-name: tests.test_geo -*-
"""
Where listeners are: ``geoip { enabled database precision }``.

Each listener's address (after ``server.trusted_proxies``) is looked up
once, when it connects, in a MaxMind GeoLite2/GeoIP2 database read with
``maxminddb``; only as much as ``precision`` allows is kept (country,
region or city), for privacy. A missing or unreadable database is a
warning at start or reload, never a crash: every listener is then
"unknown".
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Tuple

import attr
import maxminddb
from maxminddb.errors import InvalidDatabaseError
from twisted.logger import Logger

from ..config._schema import GeoipConfig

#: The country of a listener that cannot be located.
UNKNOWN = "unknown"


@attr.frozen
class Location:
    #: ISO 3166-1 alpha-2 code, or "unknown".
    country: str = UNKNOWN
    #: ISO 3166-2 subdivision code (``ENG``, ``CA``), with precision region or city.
    region: Optional[str] = None
    #: English city name, with precision city.
    city: Optional[str] = None


NOWHERE = Location()


class GeoLocator:
    """Looks addresses up; :meth:`configure` (at start and reload) opens the database the config names."""

    _log = Logger()

    def __init__(self) -> None:
        self.reader: Any = None
        self.precision = "country"
        self._opened: Optional[Tuple[str, float]] = None

    def configure(self, config: GeoipConfig) -> None:
        self.precision = config.precision
        if not config.enabled:
            self._close()
            return
        try:
            stamp = (config.database, os.stat(config.database).st_mtime)
            if stamp == self._opened and self.reader is not None:
                return  # the same file: keep the reader
            reader = maxminddb.open_database(config.database)
        except (OSError, ValueError, InvalidDatabaseError) as e:
            self._close()
            self._log.warn("geoip: cannot read {database}: {why}; listener locations will be 'unknown'",
                           database=config.database, why=getattr(e, "strerror", None) or e)
            return
        self._close()
        self.reader, self._opened = reader, stamp
        self._log.info("geoip: {database} ({kind}, built {built})", database=config.database,
                       kind=reader.metadata().database_type, built=reader.metadata().build_epoch)

    def _close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader, self._opened = None, None

    def _record(self, address: str) -> Optional[Dict[str, Any]]:
        if self.reader is None:
            return None
        try:
            found = self.reader.get(address)
        except ValueError:  # not an IP address
            return None
        return found if isinstance(found, dict) else None

    def country_and_continent(self, address: str) -> Tuple[str, str]:
        """The country code and the continent's (``EU``, ``NA``...; "" if unknown), for routing to a region."""
        found = self._record(address)
        if found is None:
            return UNKNOWN, ""
        return _country(found), str((found.get("continent") or {}).get("code") or "")

    def locate(self, address: str) -> Location:
        found = self._record(address)
        if found is None:
            return NOWHERE
        country = _country(found)
        if self.precision == "country":
            return Location(country)
        subdivisions = found.get("subdivisions") or [{}]
        region = subdivisions[0].get("iso_code")
        if self.precision == "region":
            return Location(country, region)
        city = ((found.get("city") or {}).get("names") or {}).get("en")
        return Location(country, region, city)


def _country(found: Dict[str, Any]) -> str:
    """The ISO code of a database record's country (or the country it is registered to)."""
    return (found.get("country") or found.get("registered_country") or {}).get("iso_code") or UNKNOWN


def audience(locations: Iterable[Location], most: Optional[int] = None) -> Dict[str, Dict[str, int]]:
    """The roadmap's ``listeners_by_country`` and ``listeners_by_city`` (cities only where known; ``most`` of each)."""
    countries: Counter = Counter()
    cities: Counter = Counter()
    for location in locations:
        countries[location.country] += 1
        if location.city:
            cities[location.city] += 1
    return {"listeners_by_country": dict(countries.most_common(most)),
            "listeners_by_city": dict(cities.most_common(most))}


def merged(audiences: Iterable[Dict[str, Dict[str, int]]]) -> Dict[str, Dict[str, int]]:
    """Several :func:`audience` breakdowns (of nodes, of mounts) added up."""
    totals: Dict[str, Counter] = {"listeners_by_country": Counter(), "listeners_by_city": Counter()}
    for one in audiences:
        for key, counts in totals.items():
            counts.update(one.get(key) or {})
    return {key: dict(counts.most_common()) for key, counts in totals.items()}


def audience_of(mounts: Iterable[Any]) -> Dict[str, Dict[str, int]]:
    """:func:`audience` of the listeners of all ``mounts``."""
    return audience(location for mount in mounts for location in mount_locations(mount))


def mount_locations(mount: Any) -> List[Location]:
    """Where a mount's listeners are: its ICY listeners and its HLS sessions."""
    found = [getattr(s, "location", NOWHERE) for s in mount.listener_subscribers() if getattr(s, "counted", True)]
    return found + list(mount.session_locations())
