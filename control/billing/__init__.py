"""Real-time billing (SPEC §5), pure and in memory.

* :mod:`.money` — exact amounts and the one fee-rounding rule;
* :mod:`.settings` — the ``SERVER_BILLING_*`` parameters as one immutable value;
* :mod:`.rates` — rate tables: import, longest-prefix lookup;
* :mod:`.rating` — what a call costs, how long free funds last, reservations;
* :mod:`.calendar` — work calendars and package period rates;
* :mod:`.reservations` — the reservations held against accounts while calls run.

Nothing here touches the database: the store loads rows and hands plain values in.
"""
