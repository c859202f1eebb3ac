"""Dashboards over the read models: coverage expiring or expired (by window, month of end
and company), and registrations waiting for their service-in mail (SPEC M-1). Counted by
the database over current registrations; windows are as of today in Tokyo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from lifecycle.projections.read_models import STRONG, ReadAt
from lifecycle.queries.base import ReadModelQueries

WINDOWS = (30, 60, 90, 180)
EXPIRY_LISTS = ("ending_30", "ending_60", "ending_90", "ending_180", "expired_renewable", "lapsed")
EXPIRY_SORTS = {
    "end": "r.period_end, r.serial",
    "-end": "r.period_end DESC, r.serial DESC",
    "serial": "r.serial",
    "contract_number": "c.contract_number, r.period_end, r.serial",
    "company": "c.name, r.period_end, r.serial",
    "model": "r.model, r.period_end, r.serial",
}
# notified_at is NULL on every waiting row: leading with it lets the (notified_at, …) indexes
# give the page in order (PostgreSQL does not take IS NULL as an equality when ordering).
SERVICE_IN_SORTS = {
    "deadline": "s.notified_at, s.deadline, s.position",
    "-deadline": "s.notified_at DESC, s.deadline DESC, s.position",
    "registered_on": "s.notified_at, s.registered_on, s.position",
    "contract_number": "c.contract_number, s.deadline, s.position",
}
EXPORT_LIMIT = 100_000


def _segments(ordered: list[tuple[Any, int]], page: dict[str, int]) -> list[tuple[Any, int, int]]:
    """(group, skip, take) of each group of rows a page holds, the groups in the page's order
    with their row counts."""
    segments = []
    skip, wanted = page["offset"], page["limit"]
    for group, count in ordered:
        if skip >= count:
            skip -= count
            continue
        take = min(count - skip, wanted)
        segments.append((group, skip, take))
        wanted -= take
        skip = 0
        if wanted <= 0:
            break
    return segments


@dataclass(frozen=True)
class ExpiryFilters:
    contract_number: str | None = None
    site_id: str | None = None
    service: str | None = None
    model: str | None = None
    company: str | None = None  # part of the company name


def _company_where(filters: ExpiryFilters, alias: str) -> tuple[list[str], dict[str, Any]]:
    """The filters that name companies (by contract number, by part of the name)."""
    clauses, params = [], {}
    if filters.contract_number:
        clauses.append(f"{alias}.contract_id IN (SELECT contract_id FROM {{contracts}} WHERE contract_number = :contract_number)")
        params["contract_number"] = filters.contract_number.strip().upper()
    if filters.company:
        clauses.append(f"{alias}.contract_id IN (SELECT contract_id FROM {{contracts}} WHERE name LIKE :company)")
        params["company"] = f"%{filters.company}%"
    return clauses, params


def _expiry_where(filters: ExpiryFilters) -> tuple[str, dict[str, Any]]:
    """Conditions on the registrations alone (companies by subquery), so that the counts and
    the first pages are read from the coverage index without a join."""
    companies, params = _company_where(filters, "r")
    clauses = ["r.is_current = 1", *companies]
    if filters.site_id:
        clauses.append("r.site_id = :site_id")
        params["site_id"] = filters.site_id
    if filters.service:
        clauses.append("r.service = :service")
        params["service"] = filters.service
    if filters.model:
        clauses.append("r.model = :model")
        params["model"] = filters.model
    return " AND ".join(clauses), params


class Dashboards(ReadModelQueries):
    def _tables(self, sql: str) -> str:
        """SQL naming tables of several read models (they share the database)."""
        names = {
            "registrations": self.coverage.table("registrations"),
            "end_counts": self.coverage.table("end_counts"),
            "company_end_counts": self.coverage.table("company_end_counts"),
            "kind_end_counts": self.coverage.table("kind_end_counts"),
            "service_ins": self.service_in_view.table("service_ins"),
            "waiting_counts": self.service_in_view.table("waiting_counts"),
            "contracts": self.parties.table("contracts"),
            "sites": self.parties.table("sites"),
        }
        return sql.format(**names)

    # --- expiry ----------------------------------------------------------------------

    def expiry_bounds(self, today: date) -> dict[str, str]:
        bounds = {f"d{n}": (today + timedelta(days=n)).isoformat() for n in WINDOWS}
        bounds["today"] = today.isoformat()
        bounds["lapsed_before"] = (today - timedelta(days=self.policy.grace_days)).isoformat()
        return bounds

    @staticmethod
    def _list_condition(name: str, alias: str = "r") -> str:
        if name.startswith("ending_"):
            return f"{alias}.period_end >= :today AND {alias}.period_end <= :d{name.removeprefix('ending_')}"
        if name == "expired_renewable":
            return f"{alias}.period_end < :today AND {alias}.period_end >= :lapsed_before"
        return f"{alias}.period_end < :lapsed_before"  # lapsed

    @staticmethod
    def _in_list(name: str, end: str, bounds: dict[str, str]) -> bool:
        """The same lists as `_list_condition`, for end dates already counted."""
        if name.startswith("ending_"):
            return bounds["today"] <= end <= bounds[f"d{name.removeprefix('ending_')}"]
        if name == "expired_renewable":
            return bounds["lapsed_before"] <= end < bounds["today"]
        return end < bounds["lapsed_before"]

    def expiry(
        self,
        list_name: str = "ending_90",
        filters: ExpiryFilters | None = None,
        sort: str = "end",
        limit: int = 50,
        offset: int = 0,
        read_at: ReadAt = STRONG,
        export: bool = False,
        top_companies: int = 50,
    ) -> dict[str, Any]:
        self.read_models.wait_to_read(read_at, "coverage", "parties")
        today = self.today()
        filters = filters or ExpiryFilters()
        where, params = _expiry_where(filters)
        bounds = self.expiry_bounds(today)
        params.update(bounds)
        per_end = self._per_end(filters, where, params)
        counts = {
            name: sum(int(row["count"]) for row in per_end if self._in_list(name, row["period_end"], bounds))
            for name in EXPIRY_LISTS
        }
        months: dict[str, int] = {}
        for row in sorted(per_end, key=lambda r: r["period_end"]):
            if self._in_list(list_name, row["period_end"], bounds):
                months[row["period_end"][:7]] = months.get(row["period_end"][:7], 0) + int(row["count"])
        selected = f"{where} AND {self._list_condition(list_name)}"
        per_company = self._per_company(filters, list_name, selected, params)
        by_company = sorted(per_company, key=lambda r: (-int(r["count"]), r["company_id"]))[:top_companies]
        page = {"limit": EXPORT_LIMIT, "offset": 0} if export else {"limit": limit, "offset": offset}
        if sort in ("company", "contract_number"):
            items = self._page_by_company(sort, per_company, selected, params, page)
        elif sort == "model" and not (filters.site_id or filters.contract_number or filters.company):
            items = self._page_by_model(filters, list_name, selected, params, page)
        else:  # in the index's order (or one company's or site's rows sorted)
            items = self._page_in_order(selected, EXPIRY_SORTS[sort], {**params, **page})
        companies = self._companies({r["contract_id"] for r in items} | {r["company_id"] for r in by_company})
        return {
            "as_of": today,
            "list": list_name,
            "counts": counts,
            "by_month": [{"month": month, "count": count} for month, count in months.items()],
            "by_company": [
                {**companies.get(r["company_id"], {}), "company_id": r["company_id"], "count": int(r["count"])}
                for r in by_company
            ],
            "total": counts[list_name],
            "limit": page["limit"],
            "offset": page["offset"],
            "items": [self._expiry_item({**r, **companies.get(r["contract_id"], {})}, today) for r in items],
        }

    def _per_end(self, filters: ExpiryFilters, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Current registrations per end date. Coverage ends on few distinct days (month ends),
        so the lists' counts add these up; they come from the counts the projection keeps
        unless a filter needs the registrations themselves (a site, or a service or model
        together with companies: then as many rows as match are counted)."""
        companies, _ = _company_where(filters, "k")
        kinds = {"service": filters.service, "model": filters.model}
        if filters.site_id or (companies and any(kinds.values())):
            return self._query(
                f"SELECT r.period_end AS period_end, COUNT(*) AS count FROM {{registrations}} r WHERE {where} "
                "GROUP BY r.period_end",
                params,
            )
        if companies:
            return self._query(
                "SELECT k.period_end AS period_end, SUM(k.count) AS count FROM {company_end_counts} k "
                f"WHERE {' AND '.join(companies)} GROUP BY k.period_end",
                params,
            )
        if any(kinds.values()):
            named = [f"k.{field} = :{field}" for field, value in kinds.items() if value]
            return self._query(
                "SELECT k.period_end AS period_end, SUM(k.count) AS count FROM {kind_end_counts} k "
                f"WHERE {' AND '.join(named)} GROUP BY k.period_end",
                params,
            )
        return self._query("SELECT period_end, count FROM {end_counts} WHERE count > 0", {})

    def _per_company(
        self, filters: ExpiryFilters, list_name: str, selected: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The list's registrations per company (the sorts by company use these counts too):
        from the counts per company and end date the projection keeps, a row per company and
        month end, unless a filter on the registrations themselves needs them counted."""
        if filters.site_id or filters.service or filters.model:
            return self._query(
                f"SELECT r.contract_id AS company_id, COUNT(*) AS count FROM {{registrations}} r WHERE {selected} "
                "GROUP BY r.contract_id",
                params,
            )
        companies, _ = _company_where(filters, "k")
        where = " AND ".join([self._list_condition(list_name, "k"), *companies])
        return self._query(
            f"SELECT k.contract_id AS company_id, SUM(k.count) AS count FROM {{company_end_counts}} k WHERE {where} "
            "GROUP BY k.contract_id HAVING SUM(k.count) > 0",
            params,
        )

    def _page_by_company(
        self,
        sort: str,
        per_company: list[dict[str, Any]],
        selected: str,
        params: dict[str, Any],
        page: dict[str, int],
    ) -> list[dict[str, Any]]:
        """A page sorted by company name or contract number, then end: the companies are
        ordered here from their counts, and only those on the page are read."""
        companies = self._companies({r["company_id"] for r in per_company})
        field = "company_name" if sort == "company" else "contract_number"
        ordered = sorted(
            per_company, key=lambda r: (companies.get(r["company_id"], {}).get(field) or "", r["company_id"])
        )
        segments = _segments([(c["company_id"], int(c["count"])) for c in ordered], page)
        # Companies with few rows in the list are read together; a large one by its slice.
        whole = [c for c, skip, take in segments if skip == 0 and take <= 200]
        rows_of: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(whole), 500):
            chunk = whole[start : start + 500]
            marks = ", ".join(f":w{i}" for i in range(len(chunk)))
            for row in self._query(
                f"SELECT r.* FROM {{registrations}} r WHERE {selected} AND r.contract_id IN ({marks})",
                {**params, **{f"w{i}": c for i, c in enumerate(chunk)}},
            ):
                rows_of.setdefault(row["contract_id"], []).append(row)
        items: list[dict[str, Any]] = []
        for company_id, skip, take in segments:
            if company_id in whole:
                rows = sorted(rows_of.get(company_id, []), key=lambda r: (r["period_end"], r["serial"]))[:take]
            else:
                rows = self._query(
                    f"SELECT r.* FROM {{registrations}} r WHERE {selected} AND r.contract_id = :company_id "
                    "ORDER BY r.period_end, r.serial LIMIT :limit OFFSET :offset",
                    {**params, "company_id": company_id, "limit": take, "offset": skip},
                )
            items += rows
        return items

    def _page_by_model(
        self, filters: ExpiryFilters, list_name: str, selected: str, params: dict[str, Any], page: dict[str, int]
    ) -> list[dict[str, Any]]:
        """A page sorted by model, then end: the list's count per model from the counts the
        projection keeps, then each model's part of the page from the (model, end) index."""
        named = [f"k.{field} = :{field}" for field in ("service", "model") if getattr(filters, field)]
        per_model = self._query(
            "SELECT k.model AS model, SUM(k.count) AS count FROM {kind_end_counts} k "
            f"WHERE {' AND '.join([self._list_condition(list_name, 'k'), *named])} GROUP BY k.model",
            params,
        )
        ordered = sorted((r["model"], int(r["count"])) for r in per_model if int(r["count"]) > 0)
        items: list[dict[str, Any]] = []
        for model, skip, take in _segments(ordered, page):
            items += self._page_in_order(
                f"{selected} AND r.model = :the_model", "r.period_end, r.serial",
                {**params, "the_model": model, "limit": take, "offset": skip},
            )
        return items

    def _page_in_order(self, selected: str, order: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One page of registrations: the rows skipped by the offset are passed in the index
        alone (their serials), and only the page's rows are read (a unit has one current
        registration, so its serial names it)."""
        return self._query(
            f"SELECT r.* FROM (SELECT r.serial AS page_serial FROM {{registrations}} r WHERE {selected} "
            f"ORDER BY {order} LIMIT :limit OFFSET :offset) page "
            f"JOIN {{registrations}} r ON r.serial = page.page_serial AND r.is_current = 1 ORDER BY {order}",
            params,
        )

    def _companies(self, contract_ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = sorted(contract_ids)
        if len(ids) > 500:  # most of them: read them all at once
            return {
                row["contract_id"]: {"contract_number": row["contract_number"], "company_name": row["name"]}
                for row in self._query("SELECT contract_id, contract_number, name FROM {contracts}", {})
            }
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(f":c{i}" for i in range(len(chunk)))
            for row in self._query(
                f"SELECT contract_id, contract_number, name FROM {{contracts}} WHERE contract_id IN ({marks})",
                {f"c{i}": c for i, c in enumerate(chunk)},
            ):
                found[row["contract_id"]] = {"contract_number": row["contract_number"], "company_name": row["name"]}
        return found

    def _expiry_item(self, row: dict[str, Any], today: date) -> dict[str, Any]:
        end = date.fromisoformat(row["period_end"])
        opens, closes = self.policy.window(end)
        return {
            "serial": row["serial"],
            "kind": row["kind"],
            "ticket_id": row["ticket_id"],
            "model": row["model"],
            "service": row["service"],
            "period": {"start": date.fromisoformat(row["period_start"]), "end": end},
            "days_left": (end - today).days,
            "renewal_open": opens <= today <= closes,
            "renewal_closes": closes,
            "site_id": row["site_id"],
            "company_id": row["contract_id"],
            "contract_number": row.get("contract_number"),
            "company_name": row.get("company_name"),
        }

    # --- service-in --------------------------------------------------------------------

    def service_in(
        self,
        overdue_only: bool = False,
        contract_number: str | None = None,
        site_id: str | None = None,
        sort: str = "deadline",
        limit: int = 50,
        offset: int = 0,
        read_at: ReadAt = STRONG,
        export: bool = False,
    ) -> dict[str, Any]:
        self.read_models.wait_to_read(read_at, "service_in", "parties")
        today = self.today()
        clauses, params = ["s.notified_at IS NULL"], {"today": today.isoformat()}
        if contract_number:
            clauses.append("s.contract_id IN (SELECT contract_id FROM {contracts} WHERE contract_number = :contract_number)")
            params["contract_number"] = contract_number.strip().upper()
        if site_id:
            clauses.append("s.site_id = :site_id")
            params["site_id"] = site_id
        where = " AND ".join(clauses)
        if len(clauses) == 1:  # everything waiting: from the counts per deadline the projection keeps
            per_deadline = self._query("SELECT deadline, count FROM {waiting_counts} WHERE count > 0", {})
        else:  # one company's or site's waiting terms
            per_deadline = self._query(
                f"SELECT s.deadline AS deadline, COUNT(*) AS count FROM {{service_ins}} s WHERE {where} "
                "GROUP BY s.deadline",
                params,
            )
        counts = {
            "waiting": sum(int(r["count"]) for r in per_deadline),
            "overdue": sum(int(r["count"]) for r in per_deadline if r["deadline"] < params["today"]),
            "due_today": sum(int(r["count"]) for r in per_deadline if r["deadline"] == params["today"]),
        }
        selected = f"{where} AND s.deadline < :today" if overdue_only else where
        page = {"limit": EXPORT_LIMIT, "offset": 0} if export else {"limit": limit, "offset": offset}
        if sort == "contract_number":
            source = "{service_ins} s LEFT JOIN {contracts} c ON c.contract_id = s.contract_id"
        else:  # the page is read from the index in order; only its rows are joined
            source = (f"(SELECT s.* FROM {{service_ins}} s WHERE {selected} ORDER BY {SERVICE_IN_SORTS[sort]} "
                      "LIMIT :limit OFFSET :offset) s LEFT JOIN {contracts} c ON c.contract_id = s.contract_id")
        rows = self._query(
            "SELECT s.*, c.contract_number, c.name AS company_name, st.name AS site_name "
            f"FROM {source} LEFT JOIN {{sites}} st ON st.site_id = s.site_id "
            + (f"WHERE {selected} ORDER BY {SERVICE_IN_SORTS[sort]} LIMIT :limit OFFSET :offset"
               if sort == "contract_number" else f"ORDER BY {SERVICE_IN_SORTS[sort]}"),
            {**params, **page},
        )
        items = []
        for row in rows:
            deadline = date.fromisoformat(row["deadline"])
            items.append(
                {
                    "serial": row["serial"],
                    "ticket_id": row["ticket_id"],
                    "kind": row["source"],
                    "registered_on": date.fromisoformat(row["registered_on"]),
                    "deadline": deadline,
                    "overdue": today > deadline,
                    "days_overdue": max((today - deadline).days, 0),
                    "period": {"start": date.fromisoformat(row["period_start"]), "end": date.fromisoformat(row["period_end"])},
                    "site_id": row["site_id"],
                    "site_name": row["site_name"],
                    "company_id": row["contract_id"],
                    "contract_number": row["contract_number"],
                    "company_name": row["company_name"],
                }
            )
        return {
            "as_of": today,
            "counts": {k: int(counts[k]) for k in ("waiting", "overdue", "due_today")},
            "total": int(counts["overdue"] if overdue_only else counts["waiting"]),
            "limit": page["limit"],
            "offset": page["offset"],
            "items": items,
        }

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.coverage.query(self._tables(sql), params)
