"""The router the B2BUA asks: the current :class:`RoutingTable` (swapped whole on a
change), the runtime :class:`RouteState`, and the one :func:`plan` call both live calls
and Routing Analysis make."""
from __future__ import annotations

from control.routing.select import SortConfig, plan
from control.routing.state import RouteState
from control.routing.table import RoutingTable


class Router:
    def __init__(self, params, table: RoutingTable | None = None, *,
                 vendor_usable=lambda account: True, vendor_price=lambda gateway, number: None):
        self.params = params
        self.table = table or RoutingTable()
        self.state = RouteState()
        self.vendor_usable = vendor_usable      # Charging.vendor_usable once billing is up
        self.vendor_price = vendor_price        # the vendor's rate for the cost sort

    def route(self, number: str, mapping, now: float):
        return plan(self.table, self.state, number, mapping=mapping, now=now,
                    sort=SortConfig.from_params(self.params), vendor_usable=self.vendor_usable,
                    vendor_price=self.vendor_price)

    @classmethod
    def from_config(cls, config, params) -> Router:
        """A router over a configuration file's customers and vendors alone (no store):
        the same rows the store would be given, numbered in file order."""
        from control.routing.model import MappingGateway, RoutingGateway
        from control.services.bootstrap import customer_row, full_row, vendor_row
        mapping = [MappingGateway.from_row(full_row("mapping_gateways", {**customer_row(c), "id": i}))
                   for i, c in enumerate(config.customers, 1)]
        gateways = [RoutingGateway.from_row(full_row("routing_gateways", {**vendor_row(v), "id": i}),
                                            rate_table=v.rate_table, calendar="")
                    for i, v in enumerate(config.vendors, 1)]
        return cls(params, RoutingTable.build(mapping, gateways))
