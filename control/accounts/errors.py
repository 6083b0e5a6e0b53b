"""Errors of the accounts package: values a user can read, naming the field and the rule."""
from __future__ import annotations


class AccountError(ValueError):
    """A request was refused. ``field`` names what was wrong, ``rule`` says which rule it broke.

    A ValueError so callers that already turn ValueError into a 400 answer need nothing new.
    """

    def __init__(self, field: str, rule: str):
        field = field or "request"           # an empty name (e.g. an unnamed JSON key) still names something
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(AccountError):
    """No such record, or none the actor may see.

    The two are one error with one text on purpose: an agent probing ids outside its
    subtree learns nothing it could not learn about an id that does not exist.
    """

    def __init__(self, field: str, kind: str, key: str):
        super().__init__(field, f"no {kind} {key!r}")
        self.key = key


class PermissionDenied(AccountError):
    """The actor is known and the target is in its scope, but it lacks the right to act."""
