"""Routing: mapping gateways, routing gateways, candidate selection, number transforms."""
