"""Call records: one for every call attempt.

The B2BUA hands a :class:`CallRecord` to its sink when a call ends: in the switch that is
:class:`control.store.StoreWriter`, which journals it at once (durable from then on) and
writes it to the store's ``cdrs`` table in batches off the call path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class CallRecord:
    call_id: str                       # the caller's Call-ID
    caller: str
    callee: str
    customer: str = ""
    vendor: str = ""
    customer_id: str | None = None     # the billed account (the agent tree scopes records by it)
    mapping_gateway: str = ""          # the gateway the call came in through
    vendor_id: str | None = None       # the vendor account and routing gateway of the last attempt
    routing_gateway: str = ""
    caller_sent: str | None = None     # the numbers as the last vendor tried was sent them
    callee_sent: str | None = None
    caller_ip: str = ""
    vendor_ip: str = ""
    start: float = 0.0                 # INVITE received (Unix time)
    progress: float | None = None      # first 18x
    answer: float | None = None
    end: float = 0.0
    pdd_ms: int | None = None          # post-dial delay: INVITE to first 18x/200
    duration_s: float = 0.0            # answer to end
    sip_code: int = 0                  # final status sent to the caller (200 for answered calls)
    reason: str = ""                   # why it ended: a name from control.reasons
    detail: str = ""                   # free text adding to the reason (e.g. the codec lists)
    end_direction: str = ""            # "caller", "callee" or "switch"
    caller_codec: str = ""
    vendor_codec: str = ""
    attempts: int = 0                  # vendor attempts (failover)
    dtmf: str = ""                     # digits seen in the call, in order
    media: dict = field(default_factory=dict)   # per-leg packets/bytes/loss/jitter
    # one entry per vendor attempt (failover): vendor, address, times, SIP code, reason
    attempt_details: list = field(default_factory=list)
    # billing (control.charging): the customer's rate and fee, the vendor's cost
    rate_table: str = ""
    rate_prefix: str | None = None
    rate: Decimal | None = None
    billed_time: int = 0
    fee: Decimal = Decimal(0)
    vendor_rate_table: str = ""
    vendor_rate_prefix: str | None = None
    vendor_rate: Decimal | None = None
    cost: Decimal = Decimal(0)
    profit: Decimal = Decimal(0)
