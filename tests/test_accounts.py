"""Accounts, agents and operators (SPEC §4): field rules, the agent tree, Direct/All views,
agent isolation through every public method, authorizations bounded by the parent,
blocked subtrees with VOS3000 reasons, operator rights, and the audit trail."""
import dataclasses
import inspect
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.accounts import (
    ACCOUNT_EXPIRED, ACCOUNT_LOCKED, NEVER_EXPIRES, Account, AccountDirectory, AccountError,
    AccountTree, Actor, AuditLog, Authorization, BillingModel, Category, Kind, Module,
    NotFound, OperatorDirectory, PermissionDenied, Right, Role, Status, effective_status,
)
from control.accounts.validation import CLEANERS

ALL = frozenset(Authorization)
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
SYSTEM = Actor.system("setup")
ROOT = Actor.operator("root")

SPEC_AUTHORIZATIONS = [
    "Add/delete/modify account", "Add/delete/modify phone", "Add/delete/modify phone card",
    "Add/delete gateway", "Modify gateway information", "Modify gateway capacity",
    "Payment for this account", "Payment for sub accounts",
]


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def empty():
    clock = Clock()
    operators = OperatorDirectory(clock=clock)
    operators.create(SYSTEM, "root", role="super admin")
    return AccountDirectory(operators, clock=clock), operators, clock


def world():
    """R -> A -> A1 -> A11, A -> A2; R -> B -> B1; X alone. A, A1, B hold everything."""
    accounts, operators, clock = empty()
    accounts.create(ROOT, "R", authorizations=ALL)
    accounts.create(ROOT, "A", agent_id="R", authorizations=ALL)
    accounts.create(ROOT, "A1", agent_id="A", authorizations=ALL)
    accounts.create(ROOT, "A11", agent_id="A1")
    accounts.create(ROOT, "A2", agent_id="A")
    accounts.create(ROOT, "B", agent_id="R", authorizations=ALL)
    accounts.create(ROOT, "B1", agent_id="B")
    accounts.create(ROOT, "X")
    return accounts, operators, clock


def ids(records):
    return [r.id for r in records]


def state(accounts):
    return {a.id: a for a in accounts.visible(SYSTEM)}, len(accounts.audit.entries)


# -- fields ---------------------------------------------------------------------------------

def test_every_account_field_has_a_rule():
    assert set(CLEANERS) == {f.name for f in dataclasses.fields(Account)}


def test_authorizations_use_the_spec_names():
    assert [a.value for a in Authorization] == SPEC_AUTHORIZATIONS


def test_fields_are_cleaned_from_text():
    accounts, _, _ = empty()
    accounts.create(ROOT, "1001", name=" Carrier One ", kind="Vendor", status="locked",
                    expiry="2030-01-31", credit_limit="12.50", concurrent_limit="30",
                    rate_table="wholesale", period_rate="office", work_calendar="cn",
                    number_sections="86, 8610 86", billing_model="flow",
                    authorizations=["Payment for this account"])
    a = accounts.get(ROOT, "1001")
    assert a.name == "Carrier One" and a.kind is Kind.VENDOR and a.status is Status.LOCKED
    assert a.expiry == date(2030, 1, 31) and a.credit_limit == Decimal("12.50")
    assert a.concurrent_limit == 30 and a.number_sections == ("86", "8610")
    assert a.billing_model is BillingModel.FLOW
    assert a.authorizations == {Authorization.PAYMENT_FOR_THIS_ACCOUNT}
    assert a.allows_number("8610555") and not a.allows_number("1555")
    b = accounts.create(ROOT, "1002").saved[0]
    assert (b.name, b.status, b.expiry, b.balance, b.concurrent_limit) == \
        ("1002", Status.ACTIVE, NEVER_EXPIRES, Decimal(0), None)
    assert b.allows_number("anything")


@pytest.mark.parametrize("field,value,words", [
    ("credit_limit", 1.5, "never float"),
    ("credit_limit", "-1", "at least 0"),
    ("credit_limit", "NaN", "finite"),
    ("credit_limit", True, "never float"),
    ("expiry", "2100-01-01", "2099-12-31"),
    ("expiry", datetime(2030, 1, 1), "YYYY-MM-DD"),
    ("expiry", "31/01/2030", "YYYY-MM-DD"),
    ("concurrent_limit", -1, ">= 0"),
    ("concurrent_limit", 2.0, ">= 0"),
    ("status", "Frozen", "Active, Locked, Inactive, Expired"),
    ("kind", "reseller", "customer, vendor"),
    ("billing_model", "Prepaid", "Standard, Flow"),
    ("number_sections", ["86x"], "number prefix"),
    ("authorizations", ["Delete everything"], "Add/delete/modify account"),
    ("name", "   ", "empty"),
    ("name", "a\x00b", "printable"),
    ("colour", "red", "unknown account field"),
])
def test_bad_values_are_refused_with_field_and_rule(field, value, words):
    accounts, _, _ = empty()
    with pytest.raises(AccountError) as caught:
        accounts.create(ROOT, "1001", **{field: value})
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field and words in caught.value.rule
    assert str(caught.value) == f"{field}: {caught.value.rule}"
    assert accounts.visible(ROOT) == [] and len(accounts.audit.entries) == 1   # the operator only


@pytest.mark.parametrize("bad", ["", "has space", "-lead", "x" * 65, "a/b", None, 7])
def test_account_ids(bad):
    accounts, _, _ = empty()
    with pytest.raises(AccountError) as caught:
        accounts.create(ROOT, bad)
    assert caught.value.field == "id"


def test_read_only_and_permanent_fields():
    accounts, _, _ = world()
    for field, value in [("category", "Agent"), ("id", "Z"), ("balance", "100")]:
        with pytest.raises(AccountError) as caught:
            accounts.update(ROOT, "A2", **{field: value})
        assert caught.value.field == field
    with pytest.raises(AccountError, match="balance: a new account starts at 0"):
        accounts.create(ROOT, "Z", balance="5")
    with pytest.raises(AccountError, match="category: derived"):
        accounts.create(ROOT, "Z", category="Agent")
    with pytest.raises(AccountError, match="id: given as account_id"):
        accounts.create(ROOT, "Z", id="Y")
    assert "Z" not in ids(accounts.visible(ROOT)) and "Y" not in ids(accounts.visible(ROOT))


# -- tree -----------------------------------------------------------------------------------

def test_agent_id_must_exist():
    accounts, _, _ = world()
    with pytest.raises(NotFound) as caught:
        accounts.create(ROOT, "Z", agent_id="nobody")
    assert caught.value.field == "agent_id"
    with pytest.raises(AccountError, match="agent_id"):
        accounts.update(ROOT, "A2", agent_id="nobody")
    assert accounts.get(ROOT, "A2").agent_id == "A"


@pytest.mark.parametrize("node,parent", [("A", "A"), ("A", "A1"), ("A", "A11"), ("R", "B1")])
def test_cycles_are_refused_and_nothing_changes(node, parent):
    accounts, _, _ = world()
    before = state(accounts)
    with pytest.raises(AccountError) as caught:
        accounts.update(ROOT, node, agent_id=parent)
    assert caught.value.field == "agent_id" and "cycle" in caught.value.rule
    assert state(accounts) == before


def test_category_is_derived():
    accounts, _, _ = world()
    assert accounts.category(ROOT, "A") is Category.AGENT
    assert accounts.category(ROOT, "A2") is Category.ACCOUNT
    assert accounts.category(ROOT, "X") is Category.ACCOUNT
    accounts.create(ROOT, "X1", agent_id="X")
    assert accounts.category(ROOT, "X") is Category.AGENT
    accounts.update(ROOT, "X1", agent_id="B")
    assert accounts.category(ROOT, "X") is Category.ACCOUNT
    assert accounts.category(ROOT, "B") is Category.AGENT
    accounts.delete(ROOT, "B1")
    accounts.delete(ROOT, "X1")
    assert accounts.category(ROOT, "B") is Category.ACCOUNT


def test_delete_needs_no_sub_accounts_and_zero_balance():
    accounts, _, _ = world()
    with pytest.raises(AccountError, match="sub-accounts"):
        accounts.delete(ROOT, "A1")
    accounts.apply_payment(ROOT, "A11", "3")
    with pytest.raises(AccountError, match="balance: is 3"):
        accounts.delete(ROOT, "A11")
    accounts.apply_payment(ROOT, "A11", "-3")
    accounts.delete(ROOT, "A11")
    assert ids(accounts.direct(ROOT, "A1")) == []


def test_direct_and_all():
    accounts, _, _ = world()
    assert ids(accounts.direct(ROOT, "R")) == ["A", "B"]
    assert ids(accounts.all(ROOT, "R")) == ["A", "B", "A1", "A2", "B1", "A11"]
    assert ids(accounts.direct(ROOT, "A")) == ["A1", "A2"]
    assert ids(accounts.all(ROOT, "A")) == ["A1", "A2", "A11"]
    assert ids(accounts.all(ROOT, "A11")) == []
    agent = Actor.agent("A")
    assert ids(accounts.all(agent, "A")) == ["A1", "A2", "A11"]
    assert ids(accounts.direct(agent, "A1")) == ["A11"]
    assert ids(accounts.visible(agent)) == ["A", "A1", "A2", "A11"]


def test_tree_build_refuses_missing_parents_and_cycles():
    assert AccountTree.build([("b", "a"), ("a", None)]).children("a") == ["b"]
    with pytest.raises(AccountError, match="does not exist"):
        AccountTree.build([("a", "zz")])
    with pytest.raises(AccountError, match="cycle"):
        AccountTree.build([("a", "b"), ("b", "c"), ("c", "a"), ("d", None)])


def test_load_round_trip_and_checks():
    accounts, operators, _ = world()
    accounts.apply_payment(ROOT, "A2", "7.25")
    accounts.update(ROOT, "A1", authorizations=[])
    records = accounts.visible(ROOT)
    again = AccountDirectory(operators)
    again.load(reversed(records))
    assert again.visible(ROOT) == records
    assert ids(again.all(ROOT, "R")) == ids(accounts.all(ROOT, "R"))
    with pytest.raises(AccountError, match="only into an empty"):
        again.load(records)
    greedy = dataclasses.replace(accounts.get(ROOT, "A11"), authorizations=ALL)
    others = [r for r in records if r.id != "A11"]
    for bad, words in [([*others, greedy], "which its agent lacks"),
                       ([*records, records[0]], "appears twice"),
                       ([dataclasses.replace(r, agent_id="A11") if r.id == "R" else r
                         for r in records], "cycle")]:
        with pytest.raises(AccountError, match=words):
            AccountDirectory(operators).load(bad)


# -- authorizations -------------------------------------------------------------------------

def test_sub_account_cannot_hold_more_than_its_agent():
    accounts, _, _ = world()
    with pytest.raises(AccountError) as caught:
        accounts.create(ROOT, "Z", agent_id="A2",
                        authorizations=[Authorization.ADD_DELETE_GATEWAY])
    assert caught.value.field == "authorizations" and "Add/delete gateway" in caught.value.rule
    accounts.create(ROOT, "Z2", agent_id="A2")
    with pytest.raises(AccountError, match="authorizations"):
        accounts.update(ROOT, "Z2", authorizations=["Payment for sub accounts"])


def test_lowering_an_agent_trims_its_subtree():
    accounts, _, _ = world()
    accounts.update(ROOT, "A11", authorizations=ALL)
    keep = {Authorization.ADD_DELETE_MODIFY_PHONE, Authorization.PAYMENT_FOR_SUB_ACCOUNTS}
    change = accounts.update(ROOT, "A", authorizations=keep)
    assert ids(change.saved) == ["A", "A1", "A11"]
    for node in ("A", "A1", "A11"):
        assert accounts.get(ROOT, node).authorizations == keep
    assert [e.entity_id for e in change.audit] == ["A", "A1", "A11"]
    assert all(e.changed == ("authorizations",) for e in change.audit)
    assert "trimmed" in change.audit[1].memo


def test_moving_under_a_poorer_agent_trims():
    accounts, _, _ = world()
    accounts.update(ROOT, "X", authorizations=[Authorization.ADD_DELETE_MODIFY_ACCOUNT])
    accounts.update(ROOT, "A1", agent_id="X")
    assert accounts.get(ROOT, "A1").authorizations == {Authorization.ADD_DELETE_MODIFY_ACCOUNT}
    assert ids(accounts.all(ROOT, "X")) == ["A1", "A11"]


def test_agent_grants_only_what_it_holds():
    accounts, _, _ = world()
    accounts.update(ROOT, "A", authorizations=[Authorization.ADD_DELETE_MODIFY_ACCOUNT])
    agent = Actor.agent("A")
    accounts.update(agent, "A2", authorizations=[Authorization.ADD_DELETE_MODIFY_ACCOUNT])
    with pytest.raises(AccountError, match="lacks .*'Payment for sub accounts'"):
        accounts.update(agent, "A2", authorizations=ALL)
    with pytest.raises(AccountError, match="authorizations"):
        accounts.create(agent, "Z", authorizations=ALL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["R", "A", "A1", "A11", "A2", "B", "B1", "X"]),
                          st.sets(st.sampled_from(list(Authorization)))), max_size=15))
def test_no_account_ever_holds_more_than_its_agent(changes):
    accounts, _, _ = world()
    for node, wanted in changes:
        try:
            accounts.update(ROOT, node, authorizations=wanted)
        except AccountError:
            parent = accounts.get(ROOT, node).agent_id
            assert parent and wanted - accounts.get(ROOT, parent).authorizations
        for record in accounts.visible(ROOT):
            if record.agent_id:
                assert record.authorizations <= accounts.get(ROOT, record.agent_id).authorizations


# -- agents act inside their subtree --------------------------------------------------------

def test_accounts_an_agent_creates_land_in_its_subtree():
    accounts, _, _ = world()
    agent = Actor.agent("A")
    assert accounts.create(agent, "N1").saved[0].agent_id == "A"
    assert accounts.create(agent, "N2", agent_id="").saved[0].agent_id == "A"
    assert accounts.create(agent, "N3", agent_id="A11").saved[0].agent_id == "A11"
    for outside in ("R", "B", "B1", "X", "missing"):
        with pytest.raises(NotFound) as caught:
            accounts.create(agent, "N4", agent_id=outside)
        assert caught.value.field == "agent_id"
    assert "N4" not in ids(accounts.visible(ROOT))


def test_outside_and_missing_look_the_same_to_an_agent():
    accounts, _, _ = world()
    agent = Actor.agent("A")
    with pytest.raises(NotFound) as outside:
        accounts.get(agent, "B1")
    with pytest.raises(NotFound) as missing:
        accounts.get(agent, "Q1")
    assert (outside.value.field, outside.value.rule.replace("B1", "?")) == \
        (missing.value.field, missing.value.rule.replace("Q1", "?"))


# Every public method of AccountDirectory, called by agent A on accounts outside its
# subtree (its own agent R, the sibling agent B and its child B1, the unrelated root X).
# Methods not acting for a user are listed apart with the reason.
OUTSIDE = ("R", "B", "B1", "X")
NOT_FOR_USERS = {
    "load": "the store fills an empty directory at start",
    "usable": "the call path asks on its own behalf",
    "peek": "the call path reads records on its own behalf",
    "chain": "the call path checks number sections on its own behalf",
    "revert": "the services undo a change the store refused",
    "permits": "require as a yes/no, for filtering lists (tested through the services' lists)",
}
AGENT_CALLS = {
    "get": lambda d, who, t: d.get(who, t),
    "category": lambda d, who, t: d.category(who, t),
    "direct": lambda d, who, t: d.direct(who, t),
    "all": lambda d, who, t: d.all(who, t),
    "audit_entries": lambda d, who, t: d.audit_entries(who, t),
    "require": lambda d, who, t: d.require(who, Module.PHONES, Right.VIEW, t),
    "create": lambda d, who, t: d.create(who, "NEW", agent_id=t),
    "update": lambda d, who, t: d.update(who, t, status="Locked"),
    "delete": lambda d, who, t: d.delete(who, t),
    "apply_payment": lambda d, who, t: d.apply_payment(who, t, "100"),
}
# Reads without a target: what they return must hold nothing from outside.
AGENT_LISTS = {
    "visible": lambda d, who: ids(d.visible(who)),
    "audit_entries": lambda d, who: [e.entity_id for e in d.audit_entries(who)],
}


def test_isolation_table_covers_every_public_method():
    public = {name for name, _ in inspect.getmembers(AccountDirectory, inspect.isfunction)
              if not name.startswith("_")}
    assert public == set(AGENT_CALLS) | set(AGENT_LISTS) | set(NOT_FOR_USERS)


@pytest.mark.parametrize("method", sorted(AGENT_CALLS))
@pytest.mark.parametrize("target", OUTSIDE)
def test_agent_cannot_reach_outside_its_subtree(method, target):
    accounts, _, _ = world()
    before = state(accounts)
    with pytest.raises(NotFound):
        AGENT_CALLS[method](accounts, Actor.agent("A"), target)
    assert state(accounts) == before


@pytest.mark.parametrize("method", sorted(AGENT_LISTS))
def test_agent_lists_hold_only_its_subtree(method):
    accounts, _, _ = world()
    accounts.update(ROOT, "B1", status="Locked")
    accounts.apply_payment(ROOT, "X", "5")
    accounts.update(ROOT, "A2", status="Locked")
    seen = AGENT_LISTS[method](accounts, Actor.agent("A"))
    assert seen and set(seen) <= {"A", "A1", "A2", "A11"}


def test_agent_moves_stay_inside_and_own_record_is_off_limits():
    accounts, _, _ = world()
    agent = Actor.agent("A")
    accounts.update(agent, "A11", agent_id="A2")
    assert ids(accounts.direct(agent, "A2")) == ["A11"]
    before = state(accounts)
    for target in ("B", "B1", "R", "X"):
        with pytest.raises(NotFound):
            accounts.update(agent, "A11", agent_id=target)
    with pytest.raises(PermissionDenied, match="inside its subtree"):
        accounts.update(agent, "A11", agent_id=None)
    for call in (lambda: accounts.update(agent, "A", status="Active", credit_limit="1000"),
                 lambda: accounts.update(agent, "A", authorizations=ALL),
                 lambda: accounts.delete(agent, "A")):
        with pytest.raises(PermissionDenied, match="its own account"):
            call()
    assert state(accounts) == before
    assert accounts.get(agent, "A").id == "A"        # it still reads its own record


def test_agent_needs_the_account_authorization_and_payment_authorizations():
    accounts, _, _ = world()
    accounts.update(ROOT, "A", authorizations=[Authorization.PAYMENT_FOR_THIS_ACCOUNT])
    agent = Actor.agent("A")
    for call in (lambda: accounts.create(agent, "N"),
                 lambda: accounts.update(agent, "A2", status="Locked"),
                 lambda: accounts.delete(agent, "A2")):
        with pytest.raises(PermissionDenied, match="Add/delete/modify account"):
            call()
    accounts.apply_payment(agent, "A", "10", memo="own top-up")
    with pytest.raises(PermissionDenied, match="Payment for sub accounts"):
        accounts.apply_payment(agent, "A2", "10")
    accounts.update(ROOT, "A", authorizations=[Authorization.PAYMENT_FOR_SUB_ACCOUNTS,
                                               Authorization.ADD_DELETE_MODIFY_ACCOUNT])
    accounts.apply_payment(agent, "A11", "10")
    with pytest.raises(PermissionDenied, match="Payment for this account"):
        accounts.apply_payment(agent, "A", "10")
    accounts.update(agent, "A2", credit_limit="50")
    assert accounts.get(ROOT, "A").balance == Decimal(10)
    accounts.update(ROOT, "A", authorizations=[Authorization.ADD_DELETE_MODIFY_ACCOUNT])
    for call in (lambda: accounts.update(agent, "A2", credit_limit="60"),
                 lambda: accounts.create(agent, "N", credit_limit="5")):
        with pytest.raises(PermissionDenied, match="Payment for sub accounts"):
            call()
    accounts.create(agent, "N")
    assert accounts.get(ROOT, "A11").balance == Decimal(10)


def test_agent_rights_on_other_modules():
    accounts, _, _ = world()
    accounts.update(ROOT, "A", authorizations=[Authorization.MODIFY_GATEWAY_CAPACITY])
    agent = Actor.agent("A")
    accounts.require(agent, Module.GATEWAYS, Right.VIEW, "A2")
    accounts.require(agent, Module.GATEWAYS, Right.EDIT, "A", include_self=True,
                     authorization=Authorization.MODIFY_GATEWAY_CAPACITY)
    with pytest.raises(PermissionDenied, match="Modify gateway information"):
        accounts.require(agent, Module.GATEWAYS, Right.EDIT, "A2")
    with pytest.raises(PermissionDenied, match="Add/delete/modify phone"):
        accounts.require(agent, Module.PHONES, Right.ADD, "A2")
    for module in (Module.PARAMETERS, Module.OPERATORS, Module.RATE_TABLES):
        with pytest.raises(PermissionDenied, match="agents have no"):
            accounts.require(agent, module, Right.EDIT)
    with pytest.raises(PermissionDenied, match="does not exist"):
        accounts.get(Actor.agent("ghost"), "A")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["create", "update", "move", "delete", "pay", "grant"]),
                          st.sampled_from(["R", "A", "A1", "A11", "A2", "B", "B1", "X", "N"]),
                          st.sampled_from(["R", "A", "A1", "A11", "A2", "B", "B1", "X", None])),
                max_size=25))
def test_random_agent_requests_never_touch_outside(requests):
    accounts, _, _ = world()
    agent = Actor.agent("A1")
    outside = {r.id: r for r in accounts.visible(ROOT) if r.id not in ("A1", "A11")}
    calls = {
        "create": lambda node, other: accounts.create(agent, node, agent_id=other),
        "update": lambda node, other: accounts.update(agent, node, status="Locked"),
        "move": lambda node, other: accounts.update(agent, node, agent_id=other),
        "delete": lambda node, other: accounts.delete(agent, node),
        "pay": lambda node, other: accounts.apply_payment(agent, node, "1"),
        "grant": lambda node, other: accounts.update(agent, node, authorizations=ALL),
    }
    for kind, node, other in requests:
        try:
            calls[kind](node, other)
        except AccountError:
            pass
        now = {r.id: r for r in accounts.visible(ROOT)}
        assert {k: now.get(k) for k in outside} == outside
        assert set(now) - set(outside) <= {"A1", "A11", "N"}
        assert {e.entity_id for e in accounts.audit_entries(agent)} <= {"A1", "A11", "N"}


# -- blocked subtrees -----------------------------------------------------------------------

@pytest.mark.parametrize("status,reason,word", [
    ("Locked", ACCOUNT_LOCKED, "locked"),
    ("Inactive", ACCOUNT_LOCKED, "inactive"),
    ("Expired", ACCOUNT_EXPIRED, "expired"),
])
def test_a_blocked_agent_blocks_its_whole_subtree(status, reason, word):
    accounts, _, clock = world()
    accounts.update(ROOT, "A", status=status)
    for node in ("A", "A1", "A11", "A2"):
        verdict = accounts.usable(node, T0)
        assert not verdict and verdict.reason == reason and verdict.sip_code == 403
        assert verdict.blocked_by == "A" and word in verdict.detail
    for node in ("R", "B", "B1", "X"):
        assert accounts.usable(node, T0)
    assert "agent 'A' of account 'A11'" in accounts.usable("A11", T0).detail


def test_expiry_date_is_the_last_usable_day():
    accounts, _, _ = world()
    accounts.update(ROOT, "A", expiry="2025-06-01")
    assert accounts.usable("A11", datetime(2025, 6, 1, 23, 59, 59))
    late = accounts.usable("A11", datetime(2025, 6, 2, 0, 0))
    assert late.reason == ACCOUNT_EXPIRED and late.blocked_by == "A"
    assert "2025-06-01" in late.detail
    assert accounts.usable("A11", date(2025, 6, 2)).reason == ACCOUNT_EXPIRED
    record = accounts.get(ROOT, "A")
    assert effective_status(record, date(2025, 6, 2)) is Status.EXPIRED
    assert effective_status(dataclasses.replace(record, status=Status.LOCKED),
                            date(2025, 6, 2)) is Status.LOCKED


def test_the_nearest_block_is_reported():
    accounts, _, _ = world()
    accounts.update(ROOT, "R", status="Locked")
    accounts.update(ROOT, "A11", expiry="2020-01-01")
    verdict = accounts.usable("A11", T0)
    assert (verdict.reason, verdict.blocked_by) == (ACCOUNT_EXPIRED, "A11")
    assert verdict.detail.startswith("account 'A11' is expired")
    assert accounts.usable("A2", T0).blocked_by == "R"
    with pytest.raises(NotFound):
        accounts.usable("nobody", T0)


def test_a_blocked_agent_can_read_but_not_change():
    accounts, _, clock = world()
    accounts.update(ROOT, "R", expiry="2025-05-31")
    agent = Actor.agent("A")
    assert ids(accounts.direct(agent, "A")) == ["A1", "A2"]
    with pytest.raises(PermissionDenied, match="Account Expired"):
        accounts.update(agent, "A2", status="Locked")
    accounts.update(ROOT, "R", expiry="2099-12-31")
    accounts.update(agent, "A2", status="Locked")


# -- operators ------------------------------------------------------------------------------

def test_operator_roles_and_module_rights():
    accounts, operators, _ = world()
    operators.create(ROOT, "clerk", role="operator",
                     grants={"accounts": ["view", "edit"], Module.PAYMENTS: Right.ADD})
    operators.create(ROOT, "viewer", role="read-only")
    operators.create(ROOT, "boss", role="admin")
    clerk, viewer, boss = Actor.operator("clerk"), Actor.operator("viewer"), Actor.operator("boss")
    accounts.update(clerk, "A2", status="Locked")
    accounts.apply_payment(clerk, "A2", "5", memo="cash")
    with pytest.raises(PermissionDenied) as caught:
        accounts.create(clerk, "N")
    assert caught.value.field == "accounts" and "add" in caught.value.rule
    with pytest.raises(PermissionDenied, match="edit right on agents"):
        accounts.update(clerk, "A2", agent_id="B")
    with pytest.raises(PermissionDenied, match="edit right on payments"):
        accounts.update(clerk, "A2", credit_limit="10")
    with pytest.raises(PermissionDenied, match="audit log"):
        accounts.audit_entries(clerk)
    assert len(accounts.visible(viewer)) == 8 and accounts.audit_entries(viewer)
    with pytest.raises(PermissionDenied):
        accounts.update(viewer, "A2", status="Active")
    accounts.create(boss, "N", agent_id="X", credit_limit="10", authorizations=[])
    for stranger in (Actor.operator("nobody"),):
        with pytest.raises(PermissionDenied):
            accounts.get(stranger, "A")
    operators.update(ROOT, "clerk", enabled=False)
    with pytest.raises(PermissionDenied):
        accounts.get(clerk, "A")


def test_managing_operators_follows_ranks():
    _, operators, _ = empty()
    operators.create(ROOT, "boss", role="admin")
    boss = Actor.operator("boss")
    for role in ("super admin", "admin"):
        with pytest.raises(PermissionDenied) as caught:
            operators.create(boss, "x", role=role)
        assert caught.value.field == "role"
    operators.create(boss, "lead", role="operator", grants=[("operators", "add"),
                                                            ("accounts", "view")])
    lead = Actor.operator("lead")
    operators.create(lead, "temp", role="read-only")
    with pytest.raises(PermissionDenied, match="cannot grant rights you lack: accounts:edit"):
        operators.create(lead, "temp2", role="read-only", grants=["accounts:edit"])
    with pytest.raises(PermissionDenied, match="its own"):
        operators.create(lead, "temp3", role="operator")
    with pytest.raises(PermissionDenied, match="own role"):
        operators.update(boss, "boss", role="super admin")
    with pytest.raises(PermissionDenied, match="role"):
        operators.update(boss, "root", enabled=False)
    with pytest.raises(PermissionDenied, match="own operator"):
        operators.delete(ROOT, "root")
    operators.create(ROOT, "root2", role="super admin")
    operators.update(Actor.operator("root2"), "root", role="admin")
    with pytest.raises(AccountError, match="last enabled super admin"):
        operators.update(SYSTEM, "root2", enabled=False)
    assert operators.get(Actor.operator("temp"), "temp").role is Role.READ_ONLY
    with pytest.raises(PermissionDenied):
        operators.update(Actor.operator("temp"), "temp", allowed_ips=["10.0.0.0/8"])


def test_last_super_admin_stays():
    _, operators, _ = empty()
    with pytest.raises(AccountError, match="last enabled super admin"):
        operators.update(SYSTEM, "root", role="admin")
    with pytest.raises(AccountError, match="last enabled super admin"):
        operators.delete(SYSTEM, "root")


def test_login_ip_allow_list():
    _, operators, _ = empty()
    operators.create(ROOT, "night", role="operator", allowed_ips="10.1.0.0/16, 192.0.2.7")
    assert operators.get(ROOT, "night").allowed_ips == ("10.1.0.0/16", "192.0.2.7/32")
    assert operators.login_allowed("night", "10.1.200.3")
    assert operators.login_allowed("night", "192.0.2.7")
    assert not operators.login_allowed("night", "192.0.2.8")
    assert not operators.login_allowed("night", "not-an-ip")
    assert operators.login_allowed("root", "203.0.113.9")          # empty list: anywhere
    assert not operators.login_allowed("ghost", "10.1.0.1")
    operators.update(ROOT, "night", enabled=False)
    assert not operators.login_allowed("night", "10.1.200.3")
    with pytest.raises(AccountError, match="allowed_ips"):
        operators.update(ROOT, "night", allowed_ips=["10.1.0.0/33"])


OPERATOR_CALLS = {
    "get": lambda o, who: o.get(who, "root"),
    "list": lambda o, who: o.list(who),
    "create": lambda o, who: o.create(who, "sneaky", role="super admin"),
    "update": lambda o, who: o.update(who, "root", enabled=False),
    "delete": lambda o, who: o.delete(who, "root"),
}
OPERATOR_NOT_FOR_USERS = {"load", "permits", "login_allowed"}


def test_agents_cannot_use_the_operator_directory():
    public = {name for name, _ in inspect.getmembers(OperatorDirectory, inspect.isfunction)
              if not name.startswith("_")}
    assert public == set(OPERATOR_CALLS) | OPERATOR_NOT_FOR_USERS
    accounts, operators, _ = world()
    before = operators.list(ROOT), len(operators.audit.entries)
    for call in OPERATOR_CALLS.values():
        with pytest.raises(PermissionDenied, match="only operators"):
            call(operators, Actor.agent("A"))
    assert (operators.list(ROOT), len(operators.audit.entries)) == before


# -- audit ----------------------------------------------------------------------------------

def test_every_change_is_audited_with_who_when_before_after():
    accounts, operators, clock = empty()
    log = accounts.audit
    assert log is operators.audit
    clock.now = T0 + timedelta(minutes=1)
    accounts.create(ROOT, "R", authorizations=ALL)
    accounts.create(ROOT, "A", agent_id="R", authorizations=ALL)
    agent = Actor.agent("A")
    steps = [
        (lambda: accounts.create(agent, "A1", credit_limit="5"), "account.create", "agent:A"),
        (lambda: accounts.update(agent, "A1", status="Locked"), "account.update", "agent:A"),
        (lambda: accounts.apply_payment(agent, "A1", "2.50", memo="cash"), "account.payment",
         "agent:A"),
        (lambda: accounts.apply_payment(ROOT, "A1", "-2.50"), "account.payment", "operator:root"),
        (lambda: accounts.delete(agent, "A1"), "account.delete", "agent:A"),
        (lambda: operators.create(ROOT, "clerk"), "operator.create", "operator:root"),
        (lambda: operators.update(ROOT, "clerk", grants=["cdrs:view"]), "operator.update",
         "operator:root"),
        (lambda: operators.delete(ROOT, "clerk"), "operator.delete", "operator:root"),
    ]
    for n, (step, action, who) in enumerate(steps):
        clock.now = T0 + timedelta(hours=n)
        seq = log.entries[-1].seq
        change = step()
        assert log.since(seq) == list(change.audit)
        (entry,) = change.audit
        assert (entry.action, entry.actor, entry.at) == (action, who, clock.now)
        json.dumps([entry.before, entry.after])
    creation, locking, payment = log.entries[3:6]
    assert creation.before is None and creation.after["credit_limit"] == "5"
    assert locking.changed == ("status",)
    assert (locking.before["status"], locking.after["status"]) == ("Active", "Locked")
    assert (payment.before["balance"], payment.after["balance"], payment.memo) == \
        ("0", "2.50", "cash")
    assert log.entries[7].after is None and log.entries[7].before["id"] == "A1"


def test_refused_and_empty_changes_leave_no_entry():
    accounts, _, _ = world()
    count = len(accounts.audit.entries)
    assert not accounts.update(ROOT, "A2", status="Active", name="A2")
    for call in (lambda: accounts.update(ROOT, "A", agent_id="A11"),
                 lambda: accounts.create(ROOT, "A"),
                 lambda: accounts.apply_payment(ROOT, "A", 0),
                 lambda: accounts.apply_payment(ROOT, "A", 0.5)):
        with pytest.raises(AccountError):
            call()
    assert len(accounts.audit.entries) == count


def test_agent_reads_only_audit_from_inside_its_subtree():
    accounts, _, _ = world()
    accounts.update(ROOT, "A2", agent_id="B")           # out of A's subtree
    accounts.update(ROOT, "A2", status="Locked")        # while under B
    accounts.update(ROOT, "A2", agent_id="A")           # back
    a_view = accounts.audit_entries(Actor.agent("A"), "A2")
    assert [e.action for e in a_view] == ["account.create"]
    b_view = [e for e in accounts.audit_entries(Actor.agent("B")) if e.entity_id == "A2"]
    assert [e.after["status"] for e in b_view] == ["Locked"]
    assert accounts.audit_entries(ROOT, "A2")[-1].after["agent_id"] == "A"


def test_audit_numbers_continue_after_a_restart():
    log = AuditLog(start_seq=41)
    entry = log.record(T0, "system:setup", "account.create", "account", "R", None, {"id": "R"})
    assert entry.seq == 42 and log.since(41) == [entry] and log.since(42) == []
    assert log.since(0) == [entry] and entry.changed == ("id",)


# -- random tree operations -----------------------------------------------------------------

NODES = [f"n{i}" for i in range(7)]
tree_ops = st.lists(st.tuples(
    st.sampled_from(["create", "move", "delete", "grant"]),
    st.sampled_from(NODES),
    st.one_of(st.none(), st.sampled_from(NODES)),
    st.sets(st.sampled_from(list(Authorization)), max_size=3),
), max_size=40)


def subtree(parents, node):
    found, frontier = {node}, [node]
    while frontier:
        frontier = [c for c, p in parents.items() if p in frontier]
        found.update(frontier)
    return found


@settings(max_examples=150, deadline=None)
@given(tree_ops)
def test_random_tree_operations_keep_the_rules(operations):
    accounts, _, _ = empty()
    model: dict[str, str | None] = {}
    for kind, node, parent, wanted in operations:
        if kind == "create":
            expect = node not in model and (parent is None or parent in model)
            call = lambda: accounts.create(ROOT, node, agent_id=parent)
        elif kind == "move":
            expect = node in model and (parent is None or (
                parent in model and parent not in subtree(model, node)))
            call = lambda: accounts.update(ROOT, node, agent_id=parent)
        elif kind == "delete":
            expect = node in model and node not in model.values()
            call = lambda: accounts.delete(ROOT, node)
        else:
            held = (accounts.get(ROOT, model[node]).authorizations
                    if node in model and model[node] else ALL)
            expect = node in model and wanted <= held
            call = lambda: accounts.update(ROOT, node, authorizations=wanted)
        try:
            call()
            accepted = True
        except AccountError:
            accepted = False
        assert accepted == expect, (kind, node, parent)
        if accepted and kind in ("create", "move"):
            model[node] = parent
        elif accepted and kind == "delete":
            del model[node]
        records = {r.id: r for r in accounts.visible(ROOT)}
        assert {k: r.agent_id for k, r in records.items()} == model
        for key, record in records.items():
            chain = [key]                      # walk up by Agent ID: must reach a root
            while records[chain[-1]].agent_id is not None and len(chain) <= len(records):
                chain.append(records[chain[-1]].agent_id)
            assert len(chain) == len(set(chain)) <= len(records)
            children = sorted(c for c, p in model.items() if p == key)
            assert ids(accounts.direct(ROOT, key)) == children
            assert set(ids(accounts.all(ROOT, key))) == subtree(model, key) - {key}
            expected = Category.AGENT if children else Category.ACCOUNT
            assert accounts.category(ROOT, key) is expected
            if record.agent_id:
                assert record.authorizations <= records[record.agent_id].authorizations
