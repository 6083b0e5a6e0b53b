"""What the running switch is doing, for operators and agents: the dashboard figures,
current calls with per-leg media, online phones and gateways, reports, alarms, system
performance, system parameters and the Prometheus metrics.

Everything here reads the SIP core's live state, which belongs to the event loop: the
Web API calls these functions from ``async`` endpoints, on that loop, never from its
thread pool. Agents see only their subtree's calls and money; alarms, system figures and
parameters are for operators.
"""
from __future__ import annotations

import datetime
import time
from decimal import Decimal

from control import params as declared
from control.accounts import AccountError, Actor, ActorKind, Module, Right
from control.accounts.permissions import require_operator
from control.store import parameters as store_parameters
from control.store import reports

ONLINE_WINDOW = 300.0        # a mapping gateway that sent a call in the last 5 minutes is online


class Operations:
    def __init__(self, switch):
        self.switch = switch                # control.app.Switch (core, services, store, monitor)

    @property
    def _require(self):
        return self.switch.services.accounts.directory.require

    def _scope(self, actor: Actor) -> set[str] | None:
        """The customer accounts whose traffic the actor sees (None: all)."""
        if actor.kind is not ActorKind.AGENT:
            return None
        return {a["id"] for a in self.switch.services.accounts.visible(actor)}

    # ------------------------------------------------------------------ live figures

    def current_calls(self, actor: Actor) -> list[dict]:
        self._require(actor, Module.CURRENT_CALLS, Right.VIEW)
        scope = self._scope(actor)
        calls = [call for call in list(self.switch.core.active)
                 if scope is None or call.record.customer_id in scope]
        return sorted((call.snapshot() for call in calls), key=lambda c: c["start_time"])

    def dashboard(self, actor: Actor, today: list[dict]) -> dict:
        """The live figures; ``today`` is :meth:`income` for today (a database query, so
        the caller runs it off the event loop)."""
        self._require(actor, Module.CURRENT_CALLS, Right.VIEW)
        core = self.switch.core
        scope = self._scope(actor)
        table = core.router.table
        state = core.router.state
        now = core.timers.now
        mapping_online = sum(1 for g in table.mapping.values()
                             if now - state.last_seen.get(g.id, -1e9) <= ONLINE_WINDOW
                             and (scope is None or g.account in scope))
        routing = [g for g in table.gateways.values() if scope is None]
        calls = [c for c in core.active if scope is None or c.record.customer_id in scope]
        return {
            "concurrent_calls": len(calls),
            "cps": core.calls_per_second() if scope is None else None,
            "online_phones": len(core.registrar.online()) if scope is None else None,
            "online_mapping_gateways": mapping_online,
            "online_routing_gateways": sum(1 for g in routing if g.id not in state.unreachable and not g.locked),
            "routing_gateways": len(routing),
            "today": {"income": sum((row["fee"] for row in today), Decimal(0)),
                      "cost": sum((row["cost"] for row in today), Decimal(0)),
                      "profit": sum((row["profit"] for row in today), Decimal(0))},
            "alarms": len(core.alarms.active()) if scope is None else None,
        }

    def online_gateways(self, actor: Actor) -> dict:
        self._require(actor, Module.GATEWAYS, Right.VIEW)
        require_operator(actor)
        core = self.switch.core
        state, table, now = core.router.state, core.router.table, core.timers.now
        return {
            "mapping": [{"name": g.name, "account": g.account, "calls": state.ingress[g.id],
                         "last_call_s_ago": round(now - state.last_seen[g.id], 1) if g.id in state.last_seen else None}
                        for g in table.mapping.values()
                        if now - state.last_seen.get(g.id, -1e9) <= ONLINE_WINDOW],
            "routing": [{"name": g.name, "vendor": g.account, "reachable": g.id not in state.unreachable,
                         "lines_in_use": state.lines[g.id], "line_limit": g.line_limit, "locked": g.locked}
                        for g in table.gateways.values()],
        }

    def online_phones(self, actor: Actor) -> list[dict]:
        self._require(actor, Module.PHONES, Right.VIEW)
        require_operator(actor)
        return self.switch.core.registrar.online()

    # ------------------------------------------------------------------ reports

    def _window(self, hours: float | None) -> tuple[float, float]:
        until = time.time()
        if hours is not None:
            return until - hours * 3600, until
        midnight = datetime.datetime.combine(datetime.date.today(), datetime.time())
        return midnight.timestamp(), until

    def income(self, actor: Actor, hours: float | None = None, top: int | None = None) -> list[dict]:
        self._require(actor, Module.REPORTS, Right.VIEW)
        since, until = self._window(hours)
        scope = self._scope(actor)
        return reports.income(self.switch.store, since, until, top=top,
                              customer_ids=None if scope is None else sorted(scope))

    def traffic(self, actor: Actor, by: str = "customer", hours: float | None = None) -> list[dict]:
        self._require(actor, Module.REPORTS, Right.VIEW)
        if by not in reports.GROUPS:
            raise AccountError("by", f"one of {', '.join(reports.GROUPS)}")
        since, until = self._window(hours)
        scope = self._scope(actor)
        return reports.traffic(self.switch.store, by, since, until,
                               customer_ids=None if scope is None else sorted(scope))

    # ------------------------------------------------------------------ alarms, system

    def alarms(self, actor: Actor) -> list[dict]:
        self._require(actor, Module.ALARMS, Right.VIEW)
        return [a.__dict__ for a in self.switch.core.alarms.active()]

    def system(self, actor: Actor) -> dict:
        self._require(actor, Module.ALARMS, Right.VIEW)
        require_operator(actor)
        monitor = self.switch.monitor
        return {"latest": monitor.latest(), "history": monitor.history()}

    # ------------------------------------------------------------------ parameters

    def parameters(self, actor: Actor) -> list[dict]:
        self._require(actor, Module.PARAMETERS, Right.VIEW)
        params = self.switch.params
        return [{"name": name, "value": declared.format_value(param, params.get(name)),
                 "default": declared.format_value(param, param.default), "applies": param.applies,
                 "pending_restart": params.needs_restart(name), "help": param.help}
                for name, param in declared.PARAMS.items()]

    def store_parameter(self, actor: Actor, name: str, value):
        """Validate and store one parameter (a database write: off the event loop);
        returns the parsed value for :meth:`apply_parameter`."""
        self._require(actor, Module.PARAMETERS, Right.EDIT)
        if name not in declared.PARAMS:
            raise AccountError("name", f"no system parameter {name!r}")
        try:
            declared.check_consistency({**self.switch.params.values(), name: declared.validate(name, value)})
            return store_parameters.set_param(self.switch.store, name, value, operator=actor.label)
        except declared.ParamError as exc:
            raise AccountError("value", str(exc)) from None

    def apply_parameter(self, name: str, parsed) -> dict:
        """Give the running switch a stored value (on the event loop, where its listeners
        live); says whether it acts at once or after a restart."""
        self.switch.params.set(name, parsed)
        param = declared.PARAMS[name]
        return {"name": name, "value": declared.format_value(param, parsed),
                "applies": "after restart" if self.switch.params.needs_restart(name) else "at once"}

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> str:
        """Prometheus text exposition of the switch's counters and gauges."""
        core = self.switch.core
        lines: list[str] = []

        def metric(name: str, kind: str, text: str, samples) -> None:
            lines.append(f"# HELP vosmedia_{name} {text}")
            lines.append(f"# TYPE vosmedia_{name} {kind}")
            for labels, value in samples:
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                lines.append(f"vosmedia_{name}{{{label_text}}} {value}" if label_text else f"vosmedia_{name} {value}")

        metric("calls_active", "gauge", "Calls in progress.", [({}, len(core.active))])
        metric("calls_per_second", "gauge", "New calls per second over the last 10 s.", [({}, core.calls_per_second())])
        metric("sip_invites_total", "counter", "INVITEs received.", [({}, core.stats["invites"])])
        metric("cdrs_total", "counter", "Call records written.", [({}, core.stats["cdrs"])])
        metric("calls_ended_total", "counter", "Ended calls by termination reason.",
               [({"reason": reason}, count) for reason, count in sorted(core.ended_by_reason.items())])
        metric("sip_messages_total", "counter", "SIP messages by outcome.",
               [({"outcome": key}, core.stats[key]) for key in
                ("received", "malformed", "oversized", "flood_dropped", "scanner_blocked", "internal_errors")])
        metric("alarms_active", "gauge", "Active alarms.", [({}, len(core.alarms.active()))])
        metric("gateway_lines_in_use", "gauge", "Calls on each routing gateway.",
               [({"gateway": g.name}, core.router.state.lines[g.id]) for g in core.router.table.gateways.values()])
        metric("gateway_reachable", "gauge", "1 while a routing gateway answers OPTIONS.",
               [({"gateway": g.name}, int(g.id not in core.router.state.unreachable))
                for g in core.router.table.gateways.values()])
        engine = self.switch.engine
        if engine is not None:
            for key, value in sorted(engine.totals().items()):
                counter = any(word in key for word in ("packets", "bytes", "errors", "dropped"))
                metric(f"media_{key}", "counter" if counter else "gauge",
                       f"Media engine {key.replace('_', ' ')}.", [({}, value)])
        writer = self.switch.cdr
        metric("store_queue_depth", "gauge", "Records accepted and not yet committed.", [({}, writer.pending())])
        metric("online_phones", "gauge", "Registered phones.", [({}, len(core.registrar.online()))])
        return "\n".join(lines) + "\n"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
