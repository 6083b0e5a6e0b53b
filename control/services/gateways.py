"""Mapping gateways, routing gateways and gateway groups for operators and agents, and
Routing Analysis: the store's rows, the call path's :class:`RoutingTable` kept in step.

A change is validated by building the gateway the call path would use from the new row
(dial plans compiled, identity policy checked), then stored (audited as the actor),
then the table is rebuilt and swapped. Rights (SPEC 4): an agent works only on gateways
of accounts in its subtree; adding or deleting needs "Add/delete gateway", changing
capacity (line limit, concurrent calls, CPS) "Modify gateway capacity", any other
change "Modify gateway information".
"""
from __future__ import annotations

import threading
import time
from datetime import date

from control.accounts import AccountError, Actor, Authorization, Module, Right
from control.accounts.permissions import require_operator
from control.routing.model import GatewayGroup, MappingGateway, RoutingGateway
from control.routing.router import Router
from control.routing.table import RoutingTable
from control.store import entities
from control.store.defaults import column_defaults
from control.store.rows import check_values
from control.store.schema import mapping_gateways, routing_gateways

ENTITIES = ("mapping_gateways", "routing_gateways", "gateway_groups")
CAPACITY = {"line_limit", "max_concurrent_calls", "rate_limit"}
# what a request names instead of the store's foreign keys
_NAMED_REFS = {"rate_table": ("rate_tables", "rate_table_id"), "work_calendar": ("work_calendars", "work_calendar_id"),
               "gateway_group": ("gateway_groups", "gateway_group_id")}


class GatewayService:
    def __init__(self, store, accounts, tariffs, params):
        self.store = store
        self.accounts = accounts              # AccountService: the directory's rights
        self.tariffs = tariffs
        self.params = params
        self.router = Router(params, vendor_price=self._vendor_price)   # what the B2BUA asks
        self.listeners: list = []             # called with the new table after each change
        self._rows: dict[str, dict[int, dict]] = {e: {} for e in ENTITIES}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        with self._lock:
            for entity in ENTITIES:
                self._rows[entity] = {row["id"]: row for row in entities.find(self.store, entity)}
            self._rebuild()

    def _rebuild(self) -> None:
        mapping = [MappingGateway.from_row(r) for r in self._rows["mapping_gateways"].values()]
        gateways = [self._routing(r) for r in self._rows["routing_gateways"].values()]
        groups = [GatewayGroup.from_row(r) for r in self._rows["gateway_groups"].values()]
        self.router.table = RoutingTable.build(mapping, gateways, groups, self.tariffs.calendars)
        for listener in self.listeners:
            listener(self.router.table)

    @property
    def table(self) -> RoutingTable:
        return self.router.table

    @property
    def state(self):
        return self.router.state

    def _routing(self, row: dict) -> RoutingGateway:
        return RoutingGateway.from_row(
            row, rate_table=self.tariffs.name_of("rate_tables", row["rate_table_id"]) or None,
            calendar=self.tariffs.name_of("work_calendars", row["work_calendar_id"]))

    # ------------------------------------------------------------------ reads

    def list(self, actor: Actor, entity: str) -> list[dict]:
        self._check_entity(entity)
        self.accounts.directory.require(actor, Module.GATEWAYS, Right.VIEW)
        with self._lock:
            rows = list(self._rows[entity].values())
        if entity == "gateway_groups":
            return rows if actor.kind.value != "agent" else []
        return [self._shown(r) for r in rows if self.accounts.directory.permits(actor, Module.GATEWAYS, Right.VIEW, r["account_id"])]

    def get(self, actor: Actor, entity: str, name: str) -> dict:
        row = self._find(entity, name)
        if entity != "gateway_groups":
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.VIEW, row["account_id"])
        else:
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.VIEW)
            require_operator(actor, "gateway_groups", "gateway groups are shared; only operators manage them")
        return self._shown(row)

    def _shown(self, row: dict) -> dict:
        shown = {k: v for k, v in row.items() if k != "password"}
        for name, (kind, column) in _NAMED_REFS.items():
            if column in row:
                shown.pop(column)
                shown[name] = (self._name_of(kind, row[column]))
        return shown

    # ------------------------------------------------------------------ changes

    def create(self, actor: Actor, entity: str, fields: dict) -> dict:
        self._check_entity(entity)
        values = self._values(entity, fields)
        if entity == "gateway_groups":
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.ADD)
            require_operator(actor, "gateway_groups", "gateway groups are shared; only operators manage them")
        else:
            if not values.get("account_id"):
                raise AccountError("account_id", "a gateway belongs to an account")
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.ADD, values["account_id"],
                                            field="account_id")
            self._check_account_kind(entity, values["account_id"])
        with self._lock:
            if any(r["name"] == values.get("name") for r in self._rows[entity].values()):
                raise AccountError("name", f"{values.get('name')!r} already exists")
            self._validate(entity, {**column_defaults(entity), **values, "id": 0})
            row = entities.create(self.store, entity, values, operator=actor.label)
            self._rows[entity][row["id"]] = row
            self._rebuild()
            return self._shown(row)

    def update(self, actor: Actor, entity: str, name: str, fields: dict) -> dict:
        old = self._find(entity, name)
        values = self._values(entity, fields)
        if entity == "gateway_groups":
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.EDIT)
            require_operator(actor, "gateway_groups", "gateway groups are shared; only operators manage them")
        else:
            info = set(values) - CAPACITY
            owner = old["account_id"]
            if values.keys() & CAPACITY:
                self.accounts.directory.require(actor, Module.GATEWAYS, Right.EDIT, owner,
                                                authorization=Authorization.MODIFY_GATEWAY_CAPACITY)
            if info or not values:
                self.accounts.directory.require(actor, Module.GATEWAYS, Right.EDIT, owner)
            if "account_id" in values:
                self.accounts.directory.require(actor, Module.GATEWAYS, Right.ADD, values["account_id"],
                                                field="account_id")
                self._check_account_kind(entity, values["account_id"])
        with self._lock:
            self._validate(entity, {**old, **values})
            row = entities.update(self.store, entity, old["id"], values, operator=actor.label)
            self._rows[entity][row["id"]] = row
            self._rebuild()
            return self._shown(row)

    def delete(self, actor: Actor, entity: str, name: str) -> None:
        old = self._find(entity, name)
        if entity == "gateway_groups":
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.DELETE)
            require_operator(actor, "gateway_groups", "gateway groups are shared; only operators manage them")
        else:
            self.accounts.directory.require(actor, Module.GATEWAYS, Right.DELETE, old["account_id"])
        with self._lock:
            entities.delete(self.store, entity, old["id"], operator=actor.label)
            del self._rows[entity][old["id"]]
            self._rebuild()

    # ------------------------------------------------------------------ Routing Analysis

    def analyse(self, actor: Actor, number: str, *, customer: str | None = None,
                mapping_gateway: str | None = None, at: float | None = None) -> dict:
        """The dry run of live routing for a call from a customer (its first mapping
        gateway) or a mapping gateway to ``number`` at ``at``: the same transforms and the
        same :func:`plan` as a live call, over the current table and line counts."""
        self.accounts.directory.require(actor, Module.ROUTING, Right.VIEW)
        table = self.table
        mapping = None
        if mapping_gateway is not None:
            mapping = next((g for g in table.mapping.values() if g.name == mapping_gateway), None)
            if mapping is None:
                raise AccountError("mapping_gateway", f"no mapping gateway {mapping_gateway!r}")
            customer = mapping.account
        if customer is not None:
            self.accounts.directory.require(actor, Module.ROUTING, Right.VIEW, customer, field="customer")
            if mapping is None:
                mapping = next((g for g in table.mapping.values() if g.account == customer), None)
        when = time.time() if at is None else at
        routed = mapping.routed_callee(number) if mapping is not None else number
        blocked = self.accounts.number_blocked(customer, routed) if customer else ""
        result = self.router.route(routed, mapping, when)
        return {
            "number": number, "routed_number": routed, "customer": customer,
            "mapping_gateway": mapping.name if mapping else None, "at": when,
            "number_section": blocked or "allowed", "prefix": result.prefix,
            "candidates": [] if blocked else [
                {"order": i + 1, "gateway": g.name, "vendor": g.account, "priority": g.priority,
                 "protect": g.protect, "lines_in_use": self.state.lines[g.id], "line_limit": g.line_limit,
                 "callee_sent": g.callee_for(routed)}
                for i, g in enumerate(result.candidates)],
            "skipped": [{"gateway": name, "why": why} for name, why in result.skipped],
            "outcome": ("Number Restricted" if blocked else "AllGatewayBusy" if result.all_busy
                        else "NoAvailableRouter" if not result.candidates else "routable"),
        }

    def _vendor_price(self, gateway, number: str):
        name = gateway.rate_table
        if not name:
            record = self.accounts.record(gateway.account)
            name = record.rate_table if record is not None else ""
        table = self.tariffs.tables.get(name) if name else None
        rate = table.lookup(number) if table is not None else None
        return rate.price if rate is not None else None

    # ------------------------------------------------------------------ helpers

    def _values(self, entity: str, fields: dict) -> dict:
        """Request fields as store columns: names of rate tables, calendars and groups
        become their ids."""
        values = dict(fields)
        for name, (kind, column) in _NAMED_REFS.items():
            if name in values:
                values[column] = self._id_of(kind, values.pop(name), name)
        if "expiry_date" in values and isinstance(values["expiry_date"], str):
            try:
                values["expiry_date"] = date.fromisoformat(values["expiry_date"])
            except ValueError:
                raise AccountError("expiry_date", "a date YYYY-MM-DD") from None
        table = {"mapping_gateways": mapping_gateways, "routing_gateways": routing_gateways}.get(entity)
        if table is not None:
            for name in values:
                if name not in table.c or name == "id":
                    raise AccountError(name, "unknown gateway field")     # "" too: AccountError names it
        return values

    def _validate(self, entity: str, row: dict) -> None:
        """Build what the call path would build from the row; its errors name the field."""
        try:
            if entity == "mapping_gateways":
                MappingGateway.from_row(row)
            elif entity == "routing_gateways":
                self._routing(row)
                if not row.get("address"):
                    raise AccountError("address", "a routing gateway needs an address")
            check_values(entities.TABLES[entity], {k: v for k, v in row.items() if k != "id"})
        except AccountError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            field = getattr(exc, "field", None) or _field_in(str(exc)) or "gateway"
            raise AccountError(field, getattr(exc, "rule", None) or str(exc)) from None

    def _id_of(self, kind: str, name, field: str):
        if name in (None, ""):
            return None
        if kind == "gateway_groups":
            for row in self._rows["gateway_groups"].values():
                if row["name"] == name:
                    return row["id"]
            raise AccountError(field, f"no gateway group {name!r}")
        return self.tariffs.id_of(kind, name, field)

    def _name_of(self, kind: str, id):
        if id is None:
            return None
        if kind == "gateway_groups":
            row = self._rows["gateway_groups"].get(id)
            return row["name"] if row else None
        return self.tariffs.name_of(kind, id) or None

    def _find(self, entity: str, name: str) -> dict:
        self._check_entity(entity)
        with self._lock:
            for row in self._rows[entity].values():
                if row["name"] == name:
                    return row
        raise AccountError("name", f"no {entity[:-1].replace('_', ' ')} {name!r}")

    def _check_account_kind(self, entity: str, account_id: str) -> None:
        record = self.accounts.record(account_id)
        wanted = "customer" if entity == "mapping_gateways" else "vendor"
        if record is not None and record.kind.value != wanted:
            raise AccountError("account_id", f"a {entity[:-1].replace('_', ' ')} belongs to a {wanted} account")

    @staticmethod
    def _check_entity(entity: str) -> None:
        if entity not in ENTITIES:
            raise AccountError("entity", f"one of {', '.join(ENTITIES)}")


def _field_in(message: str) -> str | None:
    first = message.split(":", 1)[0].strip()
    return first if first and " " not in first else None
