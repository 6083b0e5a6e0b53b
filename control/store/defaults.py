"""A table's column defaults as Python values (what the database fills in), so a row
can be checked whole before it is inserted, or used without a database at all."""
from __future__ import annotations

import json
from datetime import date
from functools import cache

from sqlalchemy import JSON, Boolean, Date, Integer

from control.store import schema


@cache
def _defaults(name: str) -> tuple:
    table = schema.metadata.tables[name]
    values = []
    for column in table.c:
        default = column.server_default
        if default is None:
            values.append((column.name, None))
            continue
        text = default.arg if isinstance(default.arg, str) else getattr(default.arg, "text", str(default.arg))
        values.append((column.name, _parse(column, text)))
    return tuple(values)


def column_defaults(name: str) -> dict:
    """Fresh copies each time (JSON defaults are lists and dicts)."""
    return {column: json.loads(json.dumps(value, default=str)) if isinstance(value, (list, dict)) else value
            for column, value in _defaults(name)}


def _parse(column, text: str):
    if isinstance(column.type, JSON):
        return json.loads(text)
    if isinstance(column.type, Boolean):
        return text.lower() in ("1", "true")
    if isinstance(column.type, Integer):
        return int(text)
    if isinstance(column.type, Date):
        return date.fromisoformat(text)
    return text
