"""Overdraft prevention: the worked check of SPEC §5 and reservations under concurrency."""
from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest

from control.billing.reservations import InsufficientBalance, Reservations


def test_worked_example_two_calls_admitted_third_rejected():
    # balance 10, rate 1/min, advance time 5 min: each call reserves 5
    r = Reservations()
    r.load("acme", Decimal("10"))
    first = r.reserve("acme", Decimal("5"))
    second = r.reserve("acme", Decimal("5"))
    with pytest.raises(InsufficientBalance) as exc:
        r.reserve("acme", Decimal("5"))
    assert exc.value.free == 0 and exc.value.needed == 5
    r.release(first)
    third = r.reserve("acme", Decimal("5"))
    assert r.funds("acme").reserved == 10
    assert {second.id, third.id} == set(r.funds("acme").holds)


def test_credit_limit_extends_the_funds_and_settle_replaces_the_hold():
    r = Reservations()
    r.load("acme", Decimal("1.00"), credit_limit=Decimal("4.00"))
    hold = r.reserve("acme", Decimal("5.00"))
    assert r.free_for(hold) == Decimal("5.00")      # this call may use all of it
    assert r.settle(hold, Decimal("3.25")) == Decimal("-2.25")
    funds = r.funds("acme")
    assert funds.reserved == 0 and funds.free == Decimal("1.75")
    with pytest.raises(InsufficientBalance):
        r.reserve("acme", Decimal("1.76"))


def test_free_funds_at_answer_exclude_other_calls():
    r = Reservations()
    r.load("acme", Decimal("10"))
    a = r.reserve("acme", Decimal("2"))
    b = r.reserve("acme", Decimal("3"))
    assert r.free_for(a) == Decimal("7") and r.free_for(b) == Decimal("8")


def test_bad_requests_are_refused_and_hold_nothing():
    r = Reservations()
    with pytest.raises(KeyError):
        r.reserve("nobody", Decimal("1"))
    r.load("acme", Decimal("1"))
    with pytest.raises(ValueError):
        r.reserve("acme", Decimal("-1"))
    assert r.funds("acme").reserved == 0


def test_hundreds_of_simultaneous_setups_never_overdraw():
    r = Reservations()
    r.load("acme", Decimal("100"), credit_limit=Decimal("17.5"))
    admitted, refused = [], []
    start = threading.Barrier(200)

    def setup(seed):
        rng = random.Random(seed)
        amount = Decimal(rng.choice(["0.5", "1", "1.25", "2.5"]))
        start.wait()
        try:
            admitted.append(r.reserve("acme", amount))
        except InsufficientBalance:
            refused.append(amount)

    threads = [threading.Thread(target=setup, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    funds = r.funds("acme")
    total = sum((h.amount for h in admitted), Decimal(0))
    assert funds.reserved == total and total <= Decimal("117.5")
    assert funds.free >= 0
    assert refused and all(amount > funds.free for amount in refused)   # refusals were forced
    # settle them all concurrently at random charges up to their holds
    charges = {h.id: (h.amount * Decimal(random.Random(h.id).randint(0, 100)) / 100) for h in admitted}
    threads = [threading.Thread(target=r.settle, args=(h, charges[h.id])) for h in admitted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    funds = r.funds("acme")
    assert funds.reserved == 0 and funds.holds == {}
    assert funds.balance == Decimal("100") - sum(charges.values(), Decimal(0))
    assert funds.balance >= -Decimal("17.5")
