"""Termination reasons: the one table of why calls end, with the SIP code the caller gets.

The names are VOS3000's (operators migrating know them) and are stable text in call
records and the API; SPEC §7 lists them. A few reasons for calls the switch itself ends
(timers, limits) have names of our own, marked below. Every part of the code base that
ends or refuses a call takes its reason from here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    name: str                  # stable text in CDRs and the API
    sip_code: int | None       # what the caller is answered with (None: the call was up; BYE)
    meaning: str


NORMAL = Reason("Normal", None, "a party hung up (BYE)")
NO_AVAILABLE_ROUTER = Reason("NoAvailableRouter", 503, "no route, or every route failed")
NOT_FOUND = Reason("Not Found", 404, "the vendor does not know the number")
RESPONSE_TIMEOUT = Reason("Response Timeout", 408, "the vendor did not answer the INVITE in time")
CONNECTION_TIMEOUT = Reason("Connection Timeout", 504, "ringing lasted longer than allowed")
ACCOUNT_LOCKED = Reason("Account Locked", 403, "the account or an agent above it is locked")
ACCOUNT_EXPIRED = Reason("Account Expired", 403, "the account or an agent above it expired")
UNREGISTERED = Reason("Unregistered", 480, "the calling phone is not registered")
CONNECTION_LIMIT = Reason("Connection Limit", 503, "a line or concurrent-call limit is reached")
RATE_LIMIT = Reason("Rate Limit", 503, "calls per second above the gateway's limit")
CALLED_NOT_ONLINE = Reason("Called Not Online", 480, "the called phone is not registered")
INSUFFICIENT_BALANCE = Reason("Insufficient Balance", 402, "balance and credit do not cover the reservation")
RATE_NOT_FOUND = Reason("Rate Not Found", 404, "no rate for the number in the account's rate table")
CODEC_MISMATCH = Reason("Codec Mismatch", 488, "no codec both sides (or the transcoder) accept")
AUTH_FAILED = Reason("Auth Failed", 407, "digest authentication failed")
IP_BLOCKED = Reason("IP Blocked", 403, "the source address is not allowed or is blacklisted")
USER_BUSY = Reason("User Busy", 486, "the called party is busy")
CANCELLED = Reason("Cancelled", 487, "the caller gave up before the answer")
RTP_TIMEOUT = Reason("RTP Timeout", None, "no media in either direction for SS_RTP_TIMEOUT")
ALL_GATEWAY_BUSY = Reason("AllGatewayBusy", 503, "every routing gateway for the number was full")
# ours: calls the switch ends for reasons VOS3000 does not name
NUMBER_RESTRICTED = Reason("Number Restricted", 403, "the number is outside the Number Section Limitation "
                                                     "of the account or an agent above it")
GATEWAY_LOCKED = Reason("Gateway Locked", 403, "the mapping gateway is locked")
GATEWAY_EXPIRED = Reason("Gateway Expired", 403, "the mapping gateway is past its expiry date")
SESSION_TIMEOUT = Reason("Session Timeout", None, "a session refresh failed or did not come (RFC 4028)")
MAX_DURATION = Reason("Max Duration", None, "the call reached its maximum duration")
NO_ACK = Reason("No ACK", None, "the caller never acknowledged the answer")
NO_PRACK = Reason("No PRACK", 504, "the caller never acknowledged a reliable provisional response")
MEDIA_UNAVAILABLE = Reason("Media Unavailable", 503, "the media engine had no capacity for the call")
BAD_ANSWER = Reason("Bad Answer", 502, "the vendor's answer was unusable")
CALLEE_REJECTED = Reason("Callee Rejected", None, "the vendor refused the call with another final response")
SHUTDOWN = Reason("Switch Shutdown", 503, "the switch was stopped during the call")

ALL = tuple(value for value in globals().values() if isinstance(value, Reason))
BY_NAME = {reason.name: reason for reason in ALL}

_BY_VENDOR_STATUS = {404: NOT_FOUND, 408: RESPONSE_TIMEOUT, 480: CALLED_NOT_ONLINE, 486: USER_BUSY,
                     600: USER_BUSY, 487: CANCELLED, 488: CODEC_MISMATCH, 606: CODEC_MISMATCH,
                     402: INSUFFICIENT_BALANCE}


def for_vendor_status(status: int) -> Reason:
    """The reason recorded when a vendor's final response ends the call (relayed as is)."""
    if status in _BY_VENDOR_STATUS:
        return _BY_VENDOR_STATUS[status]
    if 500 <= status < 600:
        return NO_AVAILABLE_ROUTER
    return CALLEE_REJECTED
