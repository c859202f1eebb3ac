"""Dashboards over the read models: coverage expiring or expired (by window, month of end
and company), and registrations waiting for their service-in mail (SPEC M-1). Counted by
the database over current registrations; windows are as of today in Tokyo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from lifecycle.clock import Clock, tokyo_today
from lifecycle.domain.periods import RenewalPolicy
from lifecycle.projections.system import ReadModels

WINDOWS = (30, 60, 90, 180)
EXPIRY_LISTS = ("ending_30", "ending_60", "ending_90", "ending_180", "expired_renewable", "lapsed")
EXPIRY_SORTS = {
    "end": "r.period_end, r.serial",
    "-end": "r.period_end DESC, r.serial",
    "serial": "r.serial",
    "contract_number": "c.contract_number, r.period_end, r.serial",
    "company": "c.name, r.period_end, r.serial",
    "model": "r.model, r.period_end, r.serial",
}
SERVICE_IN_SORTS = {
    "deadline": "s.deadline, s.position",
    "-deadline": "s.deadline DESC, s.position",
    "registered_on": "s.registered_on, s.position",
    "contract_number": "c.contract_number, s.deadline, s.position",
}
EXPORT_LIMIT = 100_000


@dataclass(frozen=True)
class ExpiryFilters:
    contract_number: str | None = None
    site_id: str | None = None
    service: str | None = None
    model: str | None = None
    company: str | None = None  # part of the company name


def _expiry_where(filters: ExpiryFilters) -> tuple[str, dict[str, Any]]:
    clauses, params = ["r.is_current = 1"], {}
    if filters.contract_number:
        clauses.append("c.contract_number = :contract_number")
        params["contract_number"] = filters.contract_number.strip().upper()
    if filters.site_id:
        clauses.append("r.site_id = :site_id")
        params["site_id"] = filters.site_id
    if filters.service:
        clauses.append("r.service = :service")
        params["service"] = filters.service
    if filters.model:
        clauses.append("r.model = :model")
        params["model"] = filters.model
    if filters.company:
        clauses.append("c.name LIKE :company")
        params["company"] = f"%{filters.company}%"
    return " AND ".join(clauses), params


class Dashboards:
    def __init__(self, read_models: ReadModels, clock: Clock, policy: RenewalPolicy) -> None:
        self.read_models = read_models
        self.clock = clock
        self.policy = policy
        self.coverage = read_models.view("coverage")
        self.service_in_view = read_models.view("service_in")
        self.parties = read_models.view("parties")

    def today(self) -> date:
        return tokyo_today(self.clock)

    def _tables(self, sql: str) -> str:
        """SQL naming tables of several read models (they share the database)."""
        names = {
            "registrations": self.coverage.table("registrations"),
            "service_ins": self.service_in_view.table("service_ins"),
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
    def _list_condition(name: str) -> str:
        if name.startswith("ending_"):
            return f"r.period_end >= :today AND r.period_end <= :d{name.removeprefix('ending_')}"
        if name == "expired_renewable":
            return "r.period_end < :today AND r.period_end >= :lapsed_before"
        return "r.period_end < :lapsed_before"  # lapsed

    def expiry(
        self,
        list_name: str = "ending_90",
        filters: ExpiryFilters | None = None,
        sort: str = "end",
        limit: int = 50,
        offset: int = 0,
        min_position: int | None = None,
        export: bool = False,
    ) -> dict[str, Any]:
        self.read_models.wait_for(min_position, "coverage", "parties")
        today = self.today()
        where, params = _expiry_where(filters or ExpiryFilters())
        params.update(self.expiry_bounds(today))
        source = "{registrations} r LEFT JOIN {contracts} c ON c.contract_id = r.contract_id"
        counts_sql = ", ".join(
            f"COALESCE(SUM(CASE WHEN {self._list_condition(name)} THEN 1 ELSE 0 END), 0) AS {name}"
            for name in EXPIRY_LISTS
        )
        counts = self._query(f"SELECT {counts_sql} FROM {source} WHERE {where}", params)[0]
        selected = f"{where} AND {self._list_condition(list_name)}"
        by_month = self._query(
            f"SELECT r.end_month AS month, COUNT(*) AS count FROM {source} WHERE {selected} "
            "GROUP BY r.end_month ORDER BY r.end_month",
            params,
        )
        by_company = self._query(
            f"SELECT r.contract_id AS company_id, c.contract_number AS contract_number, c.name AS company_name, "
            f"COUNT(*) AS count FROM {source} WHERE {selected} "
            "GROUP BY r.contract_id, c.contract_number, c.name ORDER BY COUNT(*) DESC, c.contract_number",
            params,
        )
        page = {"limit": EXPORT_LIMIT, "offset": 0} if export else {"limit": limit, "offset": offset}
        items = self._query(
            "SELECT r.serial, r.kind, r.ticket_id, r.model, r.service, r.period_start, r.period_end, "
            "r.covered_from, r.site_id, r.contract_id, c.contract_number, c.name AS company_name "
            f"FROM {source} WHERE {selected} ORDER BY {EXPIRY_SORTS[sort]} LIMIT :limit OFFSET :offset",
            {**params, **page},
        )
        total = int(counts[list_name])
        return {
            "as_of": today,
            "list": list_name,
            "counts": {name: int(counts[name]) for name in EXPIRY_LISTS},
            "by_month": [{"month": r["month"], "count": int(r["count"])} for r in by_month],
            "by_company": [{**r, "count": int(r["count"])} for r in by_company],
            "total": total,
            "limit": page["limit"],
            "offset": page["offset"],
            "items": [self._expiry_item(r, today) for r in items],
        }

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
            "contract_number": row["contract_number"],
            "company_name": row["company_name"],
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
        min_position: int | None = None,
        export: bool = False,
    ) -> dict[str, Any]:
        self.read_models.wait_for(min_position, "service_in", "parties")
        today = self.today()
        clauses, params = ["s.notified_at IS NULL"], {"today": today.isoformat()}
        if contract_number:
            clauses.append("c.contract_number = :contract_number")
            params["contract_number"] = contract_number.strip().upper()
        if site_id:
            clauses.append("s.site_id = :site_id")
            params["site_id"] = site_id
        where = " AND ".join(clauses)
        source = "{service_ins} s LEFT JOIN {contracts} c ON c.contract_id = s.contract_id"
        counts = self._query(
            "SELECT COUNT(*) AS waiting, "
            "COALESCE(SUM(CASE WHEN s.deadline < :today THEN 1 ELSE 0 END), 0) AS overdue, "
            "COALESCE(SUM(CASE WHEN s.deadline = :today THEN 1 ELSE 0 END), 0) AS due_today "
            f"FROM {source} WHERE {where}",
            params,
        )[0]
        selected = f"{where} AND s.deadline < :today" if overdue_only else where
        page = {"limit": EXPORT_LIMIT, "offset": 0} if export else {"limit": limit, "offset": offset}
        rows = self._query(
            "SELECT s.*, c.contract_number, c.name AS company_name, st.name AS site_name "
            f"FROM {source} LEFT JOIN {{sites}} st ON st.site_id = s.site_id "
            f"WHERE {selected} ORDER BY {SERVICE_IN_SORTS[sort]} LIMIT :limit OFFSET :offset",
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
