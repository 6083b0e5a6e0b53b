"""The Web API: every endpoint is a thin translation from HTTP to one
:mod:`control.services` call made as the token's actor, so scope and rights are checked
exactly as they are for every other entry point.

FastAPI (on Starlette, served by uvicorn in the switch's own event loop) was chosen for
the OpenAPI document it derives from the request models and for validation errors that
name the field; endpoints are plain functions, which FastAPI runs in its thread pool, so
a slow database write never stalls the SIP event loop.

Errors are JSON ``{"error": {"field": ..., "rule": ...}}``: 400 bad value, 401 no or
bad token, 403 not allowed, 404 not found (or outside the caller's scope: the same
answer), 409 conflicts with stored data.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from control.accounts import AccountError, Actor, Module, NotFound, PermissionDenied, Right
from control.services.logins import LoginFailed
from control.store import Conflict, StoreError
from control.store import NotFound as StoreNotFound
from control.store import audit as store_audit
from control.store import cdrs as store_cdrs

log = logging.getLogger("vosmedia.web")
Money = Decimal


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AccountFields(Strict):
    name: str | None = Field(None, min_length=1, max_length=128)
    kind: Literal["customer", "vendor"] | None = None
    status: Literal["Active", "Locked", "Inactive", "Expired"] | None = None
    expiry: str | None = Field(None, description="YYYY-MM-DD")
    credit_limit: Money | None = Field(None, ge=0)
    concurrent_limit: int | None = Field(None, ge=0)
    rate_table: str | None = None
    period_rate: str | None = None
    work_calendar: str | None = None
    number_sections: list[str] | None = None
    blocked_sections: list[str] | None = None
    billing_model: Literal["Standard", "Flow"] | None = None
    agent_id: str | None = None
    authorizations: list[str] | None = None


class NewAccount(AccountFields):
    id: str = Field(min_length=1, max_length=64)


class Payment(Strict):
    kind: Literal["recharge", "deduct", "adjust"]
    amount: Money
    memo: str = Field("", max_length=512)


class Transfer(Strict):
    from_account: str = Field(alias="from")
    to_account: str = Field(alias="to")
    amount: Money
    memo: str = Field("", max_length=512)


class CreditLimit(Strict):
    credit_limit: Money = Field(ge=0)
    memo: str = Field("", max_length=512)


class RateTableIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    memo: str = Field("", max_length=512)


class CalendarIn(Strict):
    working_weekdays: list[int] | None = None
    work_start: str | None = None
    work_end: str | None = None
    holidays: list[str] | None = None
    time_zone: str | None = None


class ParameterIn(Strict):
    value: str | int | bool | list[float] = Field(description="as `vosmedia` shows it, e.g. \"On\", 30, \"0.5,1,2\"")


class LoginIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=4, max_length=256)
    role: Literal["super admin", "admin", "operator", "read-only"] = "operator"
    account_id: str | None = Field(None, description="an agent login for this account's subtree")
    rights: dict[str, list[Literal["view", "add", "edit", "delete"]]] | None = Field(
        None, description='per-module rights of an "operator", e.g. {"CDRs": ["view"]}')


class PasswordIn(Strict):
    password: str = Field(min_length=4, max_length=256)


class WebAccessIn(Strict):
    allow: list[str] = Field(max_length=256)
    confirm: bool = False


class PeriodRateIn(Strict):
    work_calendar: str
    working_rate_table: str
    non_working_rate_table: str


class ExactJSON(JSONResponse):
    """JSON with money as exact decimal strings ("5.0100"), never floats, and dates in
    ISO 8601. Every endpoint answers through it."""

    def render(self, content) -> bytes:
        return json.dumps(content, default=_plain, ensure_ascii=False, separators=(",", ":")).encode()


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _error(status: int, field: str, rule: str) -> JSONResponse:
    return ExactJSON({"error": {"field": field, "rule": rule}}, status_code=status)


def build_api(services, logins, operations=None, manager_dir: str | None = None,
              web_access=None) -> FastAPI:
    """The API over a running switch's services and logins; ``operations`` adds the live
    endpoints, ``manager_dir`` serves the Web Manager at /manage, ``web_access`` (a
    :class:`~control.services.webaccess.WebAccess`) guards every path."""
    api = FastAPI(title="vosmedia Web API", version="1", openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None, default_response_class=ExactJSON)
    accounts, tariffs = services.accounts, services.tariffs

    # ------------------------------------------------------------------ errors

    @api.exception_handler(AccountError)
    def account_error(_request, exc: AccountError):
        if isinstance(exc, LoginFailed):
            return _error(401, exc.field, exc.rule)
        status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, PermissionDenied) else 400
        return _error(status, exc.field, exc.rule)

    @api.exception_handler(StoreError)
    def store_error(_request, exc: StoreError):
        return _error(404 if isinstance(exc, StoreNotFound) else 409, "store", str(exc))

    @api.exception_handler(RequestValidationError)
    def invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return _error(400, ".".join(where) or "body", first.get("msg", "invalid"))

    @api.exception_handler(StarletteHTTPException)
    def http_error(_request, exc: StarletteHTTPException):
        return _error(exc.status_code, "request", str(exc.detail))

    @api.exception_handler(ValueError)
    def value_error(_request, exc: ValueError):
        return _error(400, "value", str(exc))

    @api.exception_handler(Exception)
    def internal(_request, exc: Exception):
        # a bug, not a bad request: logged with its trace; the answer says no more
        log.error("Web API request failed", exc_info=exc)
        return _error(500, "server", "internal error; the switch logged it")

    # ------------------------------------------------------------------ who is asking

    def actor(request: Request) -> Actor:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise LoginFailed("send Authorization: Bearer <token> from POST /api/login")
        return logins.actor_for_token(token.strip())[0]

    Who = Depends(actor)

    @api.get("/api/logins", tags=["session"])
    def list_logins(who: Actor = Who):
        return ExactJSON(logins.list(who))

    @api.post("/api/logins", status_code=201, tags=["session"])
    def create_login(body: LoginIn, who: Actor = Who):
        return ExactJSON(logins.create(who, body.name, body.password, role=body.role,
                                       account_id=body.account_id, rights=body.rights), status_code=201)

    @api.delete("/api/logins/{name}", status_code=204, tags=["session"])
    def delete_login(name: str, who: Actor = Who):
        logins.delete(who, name)
        return Response(status_code=204)

    @api.put("/api/logins/{name}/password", tags=["session"])
    def set_password(name: str, body: PasswordIn, who: Actor = Who):
        logins.set_password(who, name, body.password)
        return ExactJSON({"name": name, "changed": True})

    @api.post("/api/login", tags=["session"])
    def login(body: LoginRequest, request: Request):
        who, token = logins.login(body.name, body.password, request.client.host if request.client else "")
        return ExactJSON({"token": token, "actor": who.kind.value, "id": who.id})

    # ------------------------------------------------------------------ accounts

    @api.get("/api/accounts", tags=["accounts"])
    def list_accounts(who: Actor = Who):
        return ExactJSON(accounts.visible(who))

    @api.post("/api/accounts", status_code=201, tags=["accounts"])
    def create_account(body: NewAccount, who: Actor = Who):
        fields = body.model_dump(exclude_none=True)
        return ExactJSON(accounts.create(who, fields.pop("id"), fields), status_code=201)

    @api.get("/api/accounts/{account_id}", tags=["accounts"])
    def get_account(account_id: str, who: Actor = Who):
        return ExactJSON(accounts.view(who, account_id))

    @api.patch("/api/accounts/{account_id}", tags=["accounts"])
    def update_account(account_id: str, body: AccountFields, who: Actor = Who):
        return ExactJSON(accounts.update(who, account_id, body.model_dump(exclude_unset=True)))

    @api.delete("/api/accounts/{account_id}", status_code=204, tags=["accounts"])
    def delete_account(account_id: str, who: Actor = Who):
        accounts.delete(who, account_id)
        return Response(status_code=204)

    @api.get("/api/accounts/{account_id}/sub-accounts", tags=["accounts"])
    def sub_accounts(account_id: str, scope: Literal["direct", "all"] = "direct", who: Actor = Who):
        return ExactJSON(accounts.sub_accounts(who, account_id, scope))

    # ------------------------------------------------------------------ payments

    @api.post("/api/accounts/{account_id}/payments", status_code=201, tags=["payments"])
    def pay(account_id: str, body: Payment, who: Actor = Who):
        return ExactJSON(accounts.pay(who, account_id, body.kind, body.amount, body.memo), status_code=201)

    @api.put("/api/accounts/{account_id}/credit-limit", tags=["payments"])
    def credit_limit(account_id: str, body: CreditLimit, who: Actor = Who):
        return ExactJSON(accounts.set_credit_limit(who, account_id, body.credit_limit, body.memo))

    @api.post("/api/transfers", status_code=201, tags=["payments"])
    def transfer(body: Transfer, who: Actor = Who):
        out, into = accounts.transfer(who, body.from_account, body.to_account, body.amount, body.memo)
        return ExactJSON({"from": out, "to": into}, status_code=201)

    @api.get("/api/accounts/{account_id}/ledger", tags=["payments"])
    def ledger(account_id: str, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
               who: Actor = Who):
        return ExactJSON(accounts.ledger(who, account_id, limit=limit, offset=offset))

    # ------------------------------------------------------------------ tariffs

    @api.get("/api/rate-tables", tags=["tariffs"])
    def rate_tables(who: Actor = Who):
        return ExactJSON(tariffs.list(who, "rate_tables"))

    @api.post("/api/rate-tables", status_code=201, tags=["tariffs"])
    def create_rate_table(body: RateTableIn, who: Actor = Who):
        return ExactJSON(tariffs.create_rate_table(who, body.name, body.memo), status_code=201)

    @api.put("/api/rate-tables/{name}/rates", tags=["tariffs"],
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
    async def import_rates(name: str, request: Request, who: Actor = Who):
        text = (await request.body()).decode("utf-8-sig", errors="replace")
        return ExactJSON({"rates": await run_in_threadpool(tariffs.import_rates, who, name, text)})

    @api.get("/api/rate-tables/{name}/rates", response_class=PlainTextResponse, tags=["tariffs"])
    def export_rates(name: str, who: Actor = Who):
        return PlainTextResponse(tariffs.export_rates(who, name), media_type="text/csv")

    @api.get("/api/rate-tables/{name}/lookup", tags=["tariffs"])
    def rate_lookup(name: str, number: str = Query(pattern=r"^[0-9]{1,32}$"), who: Actor = Who):
        return ExactJSON({"rate": tariffs.rate_lookup(who, name, number)})

    @api.delete("/api/rate-tables/{name}", status_code=204, tags=["tariffs"])
    def delete_rate_table(name: str, who: Actor = Who):
        tariffs.delete(who, "rate_tables", name)
        return Response(status_code=204)

    @api.get("/api/work-calendars", tags=["tariffs"])
    def calendars(who: Actor = Who):
        return ExactJSON(tariffs.list(who, "work_calendars"))

    @api.put("/api/work-calendars/{name}", tags=["tariffs"])
    def save_calendar(name: str, body: CalendarIn, who: Actor = Who):
        return ExactJSON(tariffs.save_calendar(who, name, body.model_dump(exclude_none=True)))

    @api.get("/api/period-rates", tags=["tariffs"])
    def period_rates(who: Actor = Who):
        return ExactJSON(tariffs.list(who, "period_rates"))

    @api.put("/api/period-rates/{name}", tags=["tariffs"])
    def save_period_rate(name: str, body: PeriodRateIn, who: Actor = Who):
        return ExactJSON(tariffs.save_period_rate(who, name, body.work_calendar, body.working_rate_table,
                                                  body.non_working_rate_table))

    # ------------------------------------------------------------------ gateways, routing

    gateways = services.gateways
    for path, entity in (("mapping-gateways", "mapping_gateways"), ("routing-gateways", "routing_gateways"),
                         ("gateway-groups", "gateway_groups")):
        _gateway_routes(api, gateways, f"/api/{path}", entity, Who)

    phones = services.phones

    @api.get("/api/phones", tags=["phones"])
    def list_phones(who: Actor = Who):
        return ExactJSON(phones.list(who))

    @api.post("/api/phones", status_code=201, tags=["phones"])
    def create_phone(body: dict = Body(...), who: Actor = Who):
        return ExactJSON(phones.create(who, body), status_code=201)

    @api.get("/api/phones/{number}", tags=["phones"])
    def get_phone(number: str, who: Actor = Who):
        return ExactJSON(phones.get(who, number))

    @api.patch("/api/phones/{number}", tags=["phones"])
    def update_phone(number: str, body: dict = Body(...), who: Actor = Who):
        return ExactJSON(phones.update(who, number, body))

    @api.delete("/api/phones/{number}", status_code=204, tags=["phones"])
    def delete_phone(number: str, who: Actor = Who):
        phones.delete(who, number)
        return Response(status_code=204)

    @api.get("/api/routing-analysis", tags=["gateways"])
    def routing_analysis(number: str = Query(pattern=r"^[0-9+*#]{1,64}$"), customer: str | None = None,
                         mapping_gateway: str | None = None, at: float | None = None, who: Actor = Who):
        return ExactJSON(gateways.analyse(who, number, customer=customer, mapping_gateway=mapping_gateway, at=at))

    # ------------------------------------------------------------------ records

    def _cdr_filters(who: Actor, customer, since, until, caller, callee, reason) -> dict:
        return {"customer_ids": _customer_scope(who, customer), "since": since, "until": until,
                "caller": caller, "callee": callee, "reason": reason}

    def number():          # a fresh Query per parameter (FastAPI keeps state on each)
        return Query(None, pattern=r"^[0-9+*#a-zA-Z._-]{1,64}$")

    @api.get("/api/cdrs", tags=["records"])
    def cdr_list(customer: str | None = None, since: float | None = None, until: float | None = None,
                 caller: str | None = number(), callee: str | None = number(), reason: str | None = None,
                 limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0), who: Actor = Who):
        filters = _cdr_filters(who, customer, since, until, caller, callee, reason)
        return ExactJSON(store_cdrs.query_cdrs(services.store, limit=limit, offset=offset, **filters))

    @api.get("/api/cdrs.csv", response_class=PlainTextResponse, tags=["records"])
    def cdr_csv(customer: str | None = None, since: float | None = None, until: float | None = None,
                caller: str | None = number(), callee: str | None = number(), reason: str | None = None,
                who: Actor = Who):
        out = io.StringIO()
        store_cdrs.export_csv(services.store, out, **_cdr_filters(who, customer, since, until, caller, callee, reason))
        return PlainTextResponse(out.getvalue(), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'})

    @api.get("/api/audit", tags=["records"])
    def audit_entries(entity_id: str | None = None, limit: int = Query(100, ge=1, le=1000), who: Actor = Who):
        accounts.directory.require(who, Module.AUDIT_LOG, Right.VIEW, entity_id if who.kind.value == "agent" else None)
        if who.kind.value == "agent":
            if entity_id is None:
                raise AccountError("entity_id", "an agent reads the audit log one account of its subtree at a time")
            return ExactJSON(store_audit.query(services.store, entity="accounts", entity_id=entity_id, limit=limit))
        return ExactJSON(store_audit.query(services.store, entity_id=entity_id, limit=limit))

    def _customer_scope(who: Actor, customer: str | None) -> list[str] | None:
        """The customer accounts whose records the actor may read (None: all)."""
        accounts.directory.require(who, Module.CDRS, Right.VIEW, customer, field="customer")
        if customer is not None:
            return [customer]
        if who.kind.value == "agent":
            return [a["id"] for a in accounts.visible(who)]
        return None

    if web_access is not None:
        _access_control(api, web_access, Who)
    if operations is not None:
        _live_routes(api, operations, Who, logins)
    if manager_dir is not None:
        api.mount("/manage", StaticFiles(directory=manager_dir, html=True), name="manage")
    return api


def _access_control(api: FastAPI, web_access, who_dependency) -> None:
    """The allow list, checked before anything else, and its two endpoints."""

    @api.middleware("http")
    async def allow_list(request: Request, call_next):
        address = request.client.host if request.client else ""
        if not web_access.allows(address):
            return _error(403, "source", f"{address} is not in the Web access control list")
        return await call_next(request)

    @api.get("/api/web-access", tags=["parameters"])
    def get_access(who: Actor = who_dependency):
        return ExactJSON(web_access.list(who))

    @api.put("/api/web-access", tags=["parameters"])
    def put_access(body: WebAccessIn, request: Request, who: Actor = who_dependency):
        source = request.client.host if request.client else ""
        return ExactJSON(web_access.replace(who, body.allow, source_ip=source, confirm=body.confirm))


def _live_routes(api: FastAPI, operations, who_dependency, logins) -> None:
    """Endpoints over the running switch's live state. They are ``async`` on purpose: they
    run on the event loop that owns that state, never in the thread pool."""

    async def figures(who: Actor) -> dict:
        today = await run_in_threadpool(operations.income, who)      # a query: off the loop
        return operations.dashboard(who, today)

    @api.get("/api/dashboard", tags=["live"])
    async def dashboard(who: Actor = who_dependency):
        return ExactJSON(await figures(who))

    @api.get("/api/events", tags=["live"], response_class=StreamingResponse)
    async def events(request: Request, token: str = Query(min_length=1, max_length=1024)):
        """Server-sent events: the dashboard every 2 s (``?token=``: EventSource sends no headers)."""
        who = (await run_in_threadpool(logins.actor_for_token, token))[0]
        first = await figures(who)                     # refuses at once, before streaming

        async def stream():
            data = first
            while not await request.is_disconnected():
                yield f"event: dashboard\ndata: {json.dumps(data, default=_plain, separators=(',', ':'))}\n\n"
                await asyncio.sleep(2)
                data = await figures(who)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @api.get("/api/current-calls", tags=["live"])
    async def current_calls(who: Actor = who_dependency):
        return ExactJSON(operations.current_calls(who))

    @api.get("/api/online-phones", tags=["live"])
    async def online_phones(who: Actor = who_dependency):
        return ExactJSON(operations.online_phones(who))

    @api.get("/api/online-gateways", tags=["live"])
    async def online_gateways(who: Actor = who_dependency):
        return ExactJSON(operations.online_gateways(who))

    @api.get("/api/alarms", tags=["live"])
    async def alarms(who: Actor = who_dependency):
        return ExactJSON(operations.alarms(who))

    @api.get("/api/system", tags=["live"])
    async def system(who: Actor = who_dependency):
        return ExactJSON(operations.system(who))

    @api.get("/api/reports/income", tags=["reports"])
    def income(hours: float | None = Query(None, gt=0, le=24 * 366), top: int | None = Query(None, ge=1, le=1000),
               who: Actor = who_dependency):
        return ExactJSON(operations.income(who, hours=hours, top=top))

    @api.get("/api/reports/traffic", tags=["reports"])
    def traffic(by: Literal["customer", "gateway"] = "customer", hours: float | None = Query(None, gt=0, le=24 * 366),
                who: Actor = who_dependency):
        return ExactJSON(operations.traffic(who, by=by, hours=hours))

    @api.get("/api/parameters", tags=["parameters"])
    async def parameters(who: Actor = who_dependency):
        return ExactJSON(operations.parameters(who))

    @api.put("/api/parameters/{name}", tags=["parameters"])
    async def set_parameter(name: str, body: ParameterIn, who: Actor = who_dependency):
        parsed = await run_in_threadpool(operations.store_parameter, who, name, body.value)
        return ExactJSON(operations.apply_parameter(name, parsed))

    @api.get("/metrics", response_class=PlainTextResponse, tags=["live"])
    async def metrics():
        """Prometheus text format; reachable from the Web access control's allow list."""
        return PlainTextResponse(operations.metrics(), media_type="text/plain; version=0.0.4")


def _gateway_routes(api: FastAPI, gateways, base: str, entity: str, who_dependency) -> None:
    """List, add, read, change and delete for one kind of gateway record. Bodies are the
    record's fields by name (rate tables, calendars and groups named, not numbered);
    unknown fields are refused by name."""

    @api.get(base, tags=["gateways"], name=f"list {entity}")
    def list_all(who: Actor = who_dependency):
        return ExactJSON(gateways.list(who, entity))

    @api.post(base, status_code=201, tags=["gateways"], name=f"add to {entity}")
    def create(body: dict = Body(...), who: Actor = who_dependency):
        return ExactJSON(gateways.create(who, entity, body), status_code=201)

    @api.get(base + "/{name}", tags=["gateways"], name=f"read from {entity}")
    def read(name: str, who: Actor = who_dependency):
        return ExactJSON(gateways.get(who, entity, name))

    @api.patch(base + "/{name}", tags=["gateways"], name=f"change in {entity}")
    def change(name: str, body: dict = Body(...), who: Actor = who_dependency):
        return ExactJSON(gateways.update(who, entity, name, body))

    @api.delete(base + "/{name}", status_code=204, tags=["gateways"], name=f"delete from {entity}")
    def remove(name: str, who: Actor = who_dependency):
        gateways.delete(who, entity, name)
        return Response(status_code=204)
