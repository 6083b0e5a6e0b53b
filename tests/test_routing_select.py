"""Candidate selection (control/routing/select.py): every ordering rule and every skip,
on real RoutingTable/RouteState objects (no network)."""
from __future__ import annotations

from datetime import date, datetime, timezone

from control.billing.calendar import WorkCalendar
from control.routing.model import GatewayGroup, MappingGateway, RoutingGateway
from control.routing.select import SortConfig, plan
from control.routing.state import RouteState
from control.routing.table import RoutingTable

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc).timestamp()      # a Monday, noon UTC
MG = MappingGateway(1, "mg1", "C1", addresses=frozenset({"10.0.0.1"}))


def gw(id, name, prefixes=("",), **kw):
    return RoutingGateway(id, name, "V1", host=f"10.1.0.{id}", prefixes=tuple(prefixes), **kw)


def names(result):
    return [g.name for g in result.candidates]


def route(gateways, number="4930123", *, state=None, mapping=MG, groups=(), calendars=None, **kw):
    table = RoutingTable.build([mapping] if mapping else [], gateways, groups, calendars)
    return plan(table, state or RouteState(), number, mapping=mapping, now=NOW, **kw)


def test_longest_prefix_wins_and_extension_mode_falls_back():
    gateways = [gw(1, "all"), gw(2, "de", ["49"]), gw(3, "berlin", ["4930"])]
    assert names(route(gateways)) == ["berlin"]
    extended = MappingGateway(1, "mg1", "C1", route_extension=True)
    assert names(route(gateways, mapping=extended)) == ["berlin", "de", "all"]
    assert route(gateways).prefix == "4930"


def test_priority_then_usage_ratio_then_name():
    state = RouteState()
    gateways = [gw(1, "b", priority=1, line_limit=10), gw(2, "a", priority=1, line_limit=10),
                gw(3, "first", priority=0), gw(4, "later", priority=2)]
    assert names(route(gateways, state=state)) == ["first", "a", "b", "later"]
    for _ in range(5):
        state.seize(gateways[1])                      # "a" half used: "b" is less used now
    assert names(route(gateways, state=state)) == ["first", "b", "a", "later"]


def test_protect_routes_come_after_every_normal_route():
    gateways = [gw(1, "backup", ["49"], protect=True, priority=0), gw(2, "main", ["49"], priority=5),
                gw(3, "fallback", ["4"], priority=0)]
    extended = MappingGateway(1, "mg1", "C1", route_extension=True)
    assert names(route(gateways, mapping=extended)) == ["main", "fallback", "backup"]


def test_skips_with_reasons():
    cal = WorkCalendar.parse("office", start="09:00", end="11:00")          # noon: not working
    gateways = [gw(1, "locked", locked=True), gw(2, "old", expiry=date(2020, 1, 1)),
                gw(3, "day", calendar="office", period="working"),
                gw(4, "night", calendar="office", period="non_working"),
                gw(5, "only-mg2", allowed=frozenset({"mg2"})), gw(6, "deny-mg1", denied=frozenset({"mg1"})),
                gw(7, "down"), gw(8, "broke"), gw(9, "ok")]
    state = RouteState()
    state.unreachable.add(7)
    result = route(gateways, state=state, calendars={"office": cal},
                   vendor_usable=lambda account: account != "V1" or True)
    skipped = dict(result.skipped)
    assert names(result) == ["broke", "night", "ok"]
    assert skipped["locked"] == "locked" and skipped["old"].startswith("expired")
    assert "outside its period" in skipped["day"] and "allowed" in skipped["only-mg2"]
    assert "denied" in skipped["deny-mg1"] and "unreachable" in skipped["down"]
    result = route([gw(8, "broke")], vendor_usable=lambda account: False)
    assert "vendor account V1" in dict(result.skipped)["broke"] and not result.all_busy


def test_line_and_group_limits_with_reserved_lines_for_protect():
    group = GatewayGroup(1, "g", line_limit=3, reserved_lines=1)
    normal = gw(1, "normal", group=1, line_limit=5)
    protect = gw(2, "protect", group=1, protect=True)
    state = RouteState()
    state.seize(normal)
    assert names(route([normal, protect], state=state, groups=[group])) == ["normal", "protect"]
    state.seize(normal)                               # 2 of 3: the last line is reserved
    result = route([normal, protect], state=state, groups=[group])
    assert names(result) == ["protect"] and "reserved" in dict(result.skipped)["normal"]
    state.seize(protect)                              # 3 of 3: everything full
    result = route([normal, protect], state=state, groups=[group])
    assert result.candidates == [] and result.all_busy
    single = gw(3, "single", line_limit=1)
    state.seize(single)
    assert route([single], state=state).all_busy


def test_asr_sort_moves_poor_gateways_last():
    state = RouteState()
    good, poor, unmeasured = gw(1, "good", priority=5), gw(2, "poor", priority=0), gw(3, "new", priority=9)
    for i in range(10):
        state.outcome(1, NOW - 60, answered=i < 6)        # 60 %
        state.outcome(2, NOW - 60, answered=i < 1)        # 10 %
    state.outcome(3, NOW - 60, answered=False)            # 1 call: below the minimum, not judged
    off = route([good, poor, unmeasured], state=state)
    assert names(off) == ["poor", "good", "new"]
    on = route([good, poor, unmeasured], state=state, sort=SortConfig(asr=(1, 3600, 10, 30)))
    assert names(on) == ["good", "new", "poor"]
    old = route([good, poor, unmeasured], state=state, sort=SortConfig(asr=(1, 30, 10, 30)))
    assert names(old) == ["poor", "good", "new"]          # outside a 30 s window: nothing measured


def test_cost_sort_orders_by_vendor_price_both_ways():
    prices = {"cheap": 1, "dear": 5}
    gateways = [gw(1, "dear", priority=0), gw(2, "cheap", priority=1), gw(3, "unpriced", priority=0)]
    price = lambda g, number: prices.get(g.name)          # noqa: E731
    assert names(route(gateways, sort=SortConfig(cost=(1, 0)), vendor_price=price)) == ["cheap", "dear", "unpriced"]
    assert names(route(gateways, sort=SortConfig(cost=(1, 1)), vendor_price=price)) == ["dear", "cheap", "unpriced"]
    assert names(route(gateways, vendor_price=price)) == ["dear", "unpriced", "cheap"]


def test_mapping_gateway_identification():
    by_ip = MappingGateway(1, "ip", "C1", addresses=frozenset({"10.0.0.1"}))
    by_port = MappingGateway(2, "port", "C2", auth_mode="IP+Port", addresses=frozenset({"10.0.0.2"}), sip_port=5070)
    prefixed = MappingGateway(3, "pfx", "C3", addresses=frozenset({"10.0.0.1"}), prefix="99")
    by_password = MappingGateway(4, "pw", "C4", auth_mode="Password", username="trunk", password="s3cret")
    table = RoutingTable.build([by_ip, by_port, prefixed, by_password], [])
    assert table.identify("10.0.0.1", 5060, "4930").name == "ip"
    assert table.identify("10.0.0.1", 5060, "994930").name == "pfx"
    assert table.identify("10.0.0.2", 5070, "1").name == "port"
    assert table.identify("10.0.0.2", 5060, "1") is None
    assert table.identify("10.9.9.9", 5060, "1") is None
    assert table.password_gateway("trunk").name == "pw" and table.password_gateway("x") is None
    assert prefixed.routed_callee("994930") == "4930"


def test_low_asr_and_vendor_alarms_are_raised_and_cleared():
    """The B2BUA's periodic review raises Low ASR for a gateway under the threshold (with
    enough calls in the window) and clears it when the ratio recovers."""
    from tests.b2bua_driver import T0, make
    b2b, timers, _sink = make({"SS_GATEWAYASRROUTESORTCONFIG": "0,3600,4,50", "SS_GATEWAY_KEEPALIVE_INTERVAL": 0})
    gateway = next(iter(b2b.router.table.gateways.values()))
    b2b.start_probes()
    for answered in (False, False, False):
        b2b.router.state.outcome(gateway.id, b2b.wall(), answered)
    timers.advance(T0 + 5)
    assert b2b.alarms.active() == []                       # 3 calls: below the minimum of 4
    b2b.router.state.outcome(gateway.id, b2b.wall(), True)
    timers.advance(T0 + 10)
    (alarm,) = b2b.alarms.active()
    assert alarm.kind == "Low ASR" and alarm.severity == "Medium" and "25.0%" in alarm.text
    for _ in range(4):
        b2b.router.state.outcome(gateway.id, b2b.wall(), True)
    timers.advance(T0 + 15)
    assert b2b.alarms.active() == []                       # 5 of 8 answered: 62.5 %
