"""A configuration file's customers and vendors written to the store once: an account
(with its opening balance) and a gateway each. A name the store already holds is left
as it is, so operators' later changes win over the file."""
from __future__ import annotations

from decimal import Decimal

from control.accounts import Actor
from control.store.defaults import column_defaults

CONFIG = Actor.system("config")


def bootstrap_account(accounts, account_id: str, name: str, *, rate_table: str = "", kind: str = "customer",
                      balance: Decimal = Decimal(0), credit_limit: Decimal = Decimal(0)) -> None:
    if accounts.directory_has(account_id):
        return
    accounts.create(CONFIG, account_id, {"name": name, "kind": kind, "rate_table": rate_table or "",
                                         "credit_limit": credit_limit})
    if balance:
        accounts.pay(CONFIG, account_id, "adjust", balance, memo="opening balance")


def _dtmf(settings) -> dict:
    return {"dtmf_receive": settings.receive, "dtmf_send": settings.send,
            "dtmf_payload": settings.payload, "use_peer_rfc2833": settings.use_peer_rfc2833}


def bootstrap_customer(services, customer) -> None:
    """A [[customer]]: its account (rated when it names a rate table) and an IP mapping
    gateway of the same name."""
    account = customer.account or customer.name
    bootstrap_account(services.accounts, account, customer.name, rate_table=customer.rate_table or "",
                      balance=customer.balance, credit_limit=customer.credit_limit)
    if any(g.name == customer.name for g in services.gateways.table.mapping.values()):
        return
    services.gateways.create(CONFIG, "mapping_gateways", customer_row(customer))


def bootstrap_vendor(services, vendor) -> None:
    """A [[vendor]]: its vendor account (``account``, default the vendor's name) and a
    routing gateway of the same name."""
    account = vendor.account or vendor.name
    bootstrap_account(services.accounts, account, vendor.name, kind="vendor",
                      balance=vendor.balance, credit_limit=vendor.credit_limit)
    if any(g.name == vendor.name for g in services.gateways.table.gateways.values()):
        return
    services.gateways.create(CONFIG, "routing_gateways", {**vendor_row(vendor),
                                                          "rate_table": vendor.rate_table or None})


def customer_row(customer) -> dict:
    """The mapping gateway a [[customer]] section stands for, as store columns."""
    return {"name": customer.name, "account_id": customer.account or customer.name, "auth_mode": "IP",
            "addresses": sorted(customer.addresses), "media_proxy": customer.media_proxy,
            "dtmf": _dtmf(customer.dtmf), "trusted": customer.trusted}


def vendor_row(vendor) -> dict:
    """The routing gateway a [[vendor]] section stands for, as store columns (its rate
    table is a name here; the store holds its id)."""
    return {"name": vendor.name, "account_id": vendor.account or vendor.name, "address": vendor.host,
            "port": vendor.port, "protocol": vendor.transport, "prefixes": list(vendor.prefixes),
            "priority": vendor.priority,
            "media_proxy": vendor.media_proxy, "dtmf": _dtmf(vendor.dtmf)}


def full_row(entity: str, values: dict) -> dict:
    """``values`` completed with the store's column defaults."""
    return {**column_defaults(entity), **values}


def bootstrap_phone(services, phone, customers) -> None:
    """A [[phone]]: it belongs to its customer's account (``customer = NAME``), or else to
    an account of its own named after its number."""
    if phone.user in {row["number"] for row in services.phones.list(CONFIG)}:
        return
    owner = next((c for c in customers if c.name == phone.customer), None)
    account = (owner.account or owner.name) if owner is not None else phone.user
    bootstrap_account(services.accounts, account, owner.name if owner is not None else f"phone {phone.user}")
    services.phones.create(CONFIG, {"number": phone.user, "password": phone.password, "account_id": account,
                                    "media_proxy": phone.media_proxy, "dtmf": _dtmf(phone.dtmf),
                                    "line_limit": phone.line_limit})
