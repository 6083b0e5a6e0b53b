"""Candidate selection (SPEC 3.3): the ordered routing gateways for one call, and why the
others were skipped. Live routing and Routing Analysis both call :func:`plan`; nothing
here sends or waits.

Order:

1. Prefix groups: the longest prefix of the number any routing gateway serves; with the
   mapping gateway's extension mode, then each broader prefix as fallback.
2. Inside a group: with the ASR sort on, gateways below the ASR threshold go last; with
   the cost sort on, by the vendor's rate for the number; then priority (lower first),
   then line usage ratio (least used first), then name (stable).
3. Protect routes after every normal candidate of every group.

Skipped at once (no post-dial delay), each with its reason: locked, expired, outside its
time period, not allowed for this mapping gateway, unreachable (OPTIONS), vendor account
unusable, line limit full, group full (its reserved lines are for protect routes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

FULL = "full"       # the skip reasons that make an empty plan AllGatewayBusy


@dataclass
class RoutePlan:
    number: str
    candidates: list = field(default_factory=list)          # RoutingGateway, in order
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (gateway name, why)
    prefix: str | None = None                               # the longest prefix matched

    @property
    def all_busy(self) -> bool:
        """Nothing to try and every gateway that matched was only full."""
        return not self.candidates and bool(self.skipped) and all(
            why.startswith(FULL) for _, why in self.skipped)


@dataclass(frozen=True)
class SortConfig:
    asr: tuple = (0, 3600, 10, 30)        # SS_GATEWAYASRROUTESORTCONFIG
    cost: tuple = (0, 0)                  # SS_GATEWAYFEERATEROUTESORTCONFIG

    @classmethod
    def from_params(cls, params) -> SortConfig:
        return cls(tuple(params.get("SS_GATEWAYASRROUTESORTCONFIG")),
                   tuple(params.get("SS_GATEWAYFEERATEROUTESORTCONFIG")))


def plan(table, state, number: str, *, mapping=None, now: float, sort: SortConfig = SortConfig(),
         vendor_usable=lambda account: True, vendor_price=lambda gateway, number: None) -> RoutePlan:
    """The candidates for ``number`` (as routed: after the mapping gateway's transforms)
    from ``table`` (a RoutingTable) given the runtime ``state`` (a RouteState)."""
    result = RoutePlan(number)
    groups = table.index.matches(number)
    if not groups:
        return result
    result.prefix = groups[0][0]
    if mapping is None or not mapping.route_extension:
        groups = groups[:1]
    today = datetime.fromtimestamp(now, timezone.utc).date()
    seen: set[int] = set()
    normal, protect = [], []
    for _prefix, ids in groups:
        usable = []
        for gateway_id in ids:
            if gateway_id in seen:
                continue
            seen.add(gateway_id)
            gateway = table.gateways[gateway_id]
            why = _skip_reason(gateway, table, state, mapping, now, today, vendor_usable)
            if why:
                result.skipped.append((gateway.name, why))
            else:
                usable.append(gateway)
        usable.sort(key=_order(state, number, now, sort, vendor_price))
        normal.extend(g for g in usable if not g.protect)
        protect.extend(g for g in usable if g.protect)
    result.candidates = normal + protect
    return result


def _skip_reason(gateway, table, state, mapping, now, today, vendor_usable) -> str:
    if gateway.locked:
        return "locked"
    if gateway.expiry < today:
        return f"expired on {gateway.expiry}"
    if gateway.period != "always":
        calendar = table.calendars.get(gateway.calendar)
        working = calendar.is_working(now) if calendar is not None else True
        if working != (gateway.period == "working"):
            return f"outside its period ({gateway.period.replace('_', '-')} hours of {gateway.calendar})"
    if mapping is not None:
        if gateway.allowed and mapping.name not in gateway.allowed:
            return f"mapping gateway {mapping.name} is not in its allowed list"
        if mapping.name in gateway.denied:
            return f"mapping gateway {mapping.name} is denied"
    if gateway.id in state.unreachable:
        return "unreachable (no answer to OPTIONS)"
    if not vendor_usable(gateway.account):
        return f"vendor account {gateway.account} is not usable (locked, expired or out of money)"
    in_use = state.lines[gateway.id]
    if gateway.line_limit is not None and in_use >= gateway.line_limit:
        return f"{FULL}: {in_use} of {gateway.line_limit} lines in use"
    group = table.groups.get(gateway.group) if gateway.group is not None else None
    if group is not None and group.line_limit is not None:
        limit = group.line_limit - (0 if gateway.protect else group.reserved_lines)
        used = state.group_lines[group.id]
        if used >= limit:
            return (f"{FULL}: group {group.name} has {used} of {group.line_limit} lines in use"
                    + (f" ({group.reserved_lines} reserved for protect routes)" if group.reserved_lines else ""))
    return ""


def _order(state, number, now, sort: SortConfig, vendor_price):
    asr_on, window, min_calls, threshold = (tuple(sort.asr) + (0, 3600, 10, 30)[len(sort.asr):])[:4]
    cost_on, direction = (tuple(sort.cost) + (0, 0)[len(sort.cost):])[:2]

    def key(gateway):
        parts = []
        if asr_on:
            calls, ratio = state.asr(gateway.id, now, window)
            measured = calls >= min_calls
            parts += [measured and ratio < threshold, -ratio if measured else 0.0]
        if cost_on:
            price = vendor_price(gateway, number)
            if price is None:
                parts.append((1, 0))                  # unknown cost after every known one
            else:
                parts.append((0, -price if direction else price))
        usage = state.lines[gateway.id] / gateway.line_limit if gateway.line_limit else 0.0
        return (*parts, gateway.priority, usage, gateway.name)

    return key
