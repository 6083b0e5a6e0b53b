"""What operators and agents can do, one function per action, for every entry point (the
Web API, the command line, tests): each takes the acting
:class:`~control.accounts.Actor`, checks its scope and rights through the account
directory, persists through the store and updates what the running switch holds in
memory in the same step.

``Services.open(store, params, writer)`` loads everything at start:

* :attr:`tariffs` — rate tables, work calendars, package period rates
  (:mod:`control.services.tariffs`);
* :attr:`accounts` — accounts, agents and payments (:mod:`control.services.accounts`);
* :attr:`gateways` — mapping and routing gateways, gateway groups, Routing Analysis
  (:mod:`control.services.gateways`), and the call path's routing table;
* :attr:`phones` — registered endpoints (:mod:`control.services.phones`), what the
  registrar authenticates against;
* :attr:`charging` — the call path's billing (:class:`control.charging.Charging`) over
  the same in-memory records.
"""
from __future__ import annotations

from control.accounts import Module, Operator, OperatorDirectory, Right, Role
from control.billing.reservations import Reservations
from control.charging import Charging
from control.services.accounts import AccountService
from control.services.gateways import GatewayService
from control.services.phones import PhoneService
from control.services.tariffs import Tariffs
from control.store import entities


class Services:
    def __init__(self, store, params, writer):
        self.store = store
        self.params = params
        self.operators = OperatorDirectory()
        self.funds = Reservations()
        self.accounts = AccountService(store, None, self.funds, self.operators)
        self.tariffs = Tariffs(store, self.accounts.directory.require)
        self.accounts.tariffs = self.tariffs
        self.charging = Charging(params, writer, self.accounts, self.tariffs, self.funds)
        self.gateways = GatewayService(store, self.accounts, self.tariffs, params)
        self.gateways.router.vendor_usable = self.charging.vendor_usable
        self.phones = PhoneService(store, self.accounts)

    @classmethod
    def open(cls, store, params, writer) -> Services:
        services = cls(store, params, writer)
        services.operators.load(load_operators(store))
        services.tariffs.load()
        services.accounts.load()
        services.gateways.load()
        services.phones.load()
        return services


def load_operators(store) -> list[Operator]:
    """Operator logins from the store (agent logins, bound to an account, are not
    operators: their scope is their account's subtree)."""
    found = []
    for row in entities.find(store, "operators"):
        if row["account_id"] is not None:
            continue
        rights = entities.operator_rights(store, row["id"])
        grants = frozenset((Module(module), Right(right)) for module, flags in rights.items()
                           for right, on in flags.items() if on)
        found.append(Operator(row["name"], Role(row["role"]), grants, tuple(row["login_ip_allow"]),
                              enabled=not row["locked"]))
    return found
