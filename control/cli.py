"""The ``vosmedia`` command.

Subcommands:

``vosmedia run [--config FILE] [--sip-listen HOST:PORT] [--demo] [--demo-vendor HOST:PORT]``
    The switch: SIP B2BUA with the media engine in-process and SQLite as the embedded
    store (``--data-dir``). ``--demo`` adds a customer accepted from 127.0.0.1, a phone
    1001 (password 1001) and a vendor gateway (default 127.0.0.1:5090) for every number.

``vosmedia dtmf-detect [--law alaw|ulaw|linear]``
    Reads 8 kHz audio on stdin (16-bit little-endian linear by default) and prints the
    DTMF digits the in-band detector finds, on one line.

``vosmedia media``
    A standalone media relay node: the compiled media engine driven over the
    rtpengine-compatible NG control protocol (``docs/ng-protocol.md``), so Kamailio,
    OpenSIPS or several vosmedia signalling nodes can share it.  Runs until SIGINT or
    SIGTERM, then stops cleanly (calls are deleted, ports freed).

Defaults and ranges of the media options come from the system parameter declarations
(``control.params``): ``SS_MEDIAPROXYPORT_START``/``_END``, ``SS_QOS_RTP``,
``SS_RTP_TIMEOUT``.  An out-of-range value is rejected with the parameter's name and range.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys

from control.params import ParamError, check_consistency, get_default, validate

log = logging.getLogger("vosmedia.cli")


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6ADDR]:PORT`` or ``PORT`` (on 127.0.0.1), by the configuration's rule."""
    from control.config import ConfigError, parse_host_port
    try:
        host, port = parse_host_port(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if port == 0:
        raise argparse.ArgumentTypeError(f"bad port in {text!r} (1-65535)")
    return host, port


def _param(name: str):
    """An argparse type that parses and range-checks through the parameter declaration."""
    def parse(text: str):
        try:
            return validate(name, text)
        except ParamError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vosmedia", description="vosmedia carrier softswitch and media relay")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"], help="logging threshold")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    media = commands.add_parser(
        "media", help="run a standalone media relay node controlled over the NG protocol",
        description="Run the media engine as a standalone relay node speaking rtpengine's "
                    "NG control protocol (bencode over UDP).")
    media.add_argument("--listen-ng", metavar="HOST:PORT", type=_host_port, default=("127.0.0.1", 2223),
                       help="UDP address for NG requests (default 127.0.0.1:2223)")
    media.add_argument("--interface", metavar="[NAME/]ADDR_OR_IFNAME", action="append", required=True,
                       help="media address or interface name to bind relay ports on; repeat for "
                            "several (e.g. IPv4 and IPv6); NAME/ gives it a name for the NG "
                            "'direction' key")
    media.add_argument("--port-min", metavar="N", type=_param("SS_MEDIAPROXYPORT_START"),
                       default=get_default("SS_MEDIAPROXYPORT_START"),
                       help="first relay port, even (SS_MEDIAPROXYPORT_START, default %(default)s)")
    media.add_argument("--port-max", metavar="M", type=_param("SS_MEDIAPROXYPORT_END"),
                       default=get_default("SS_MEDIAPROXYPORT_END"),
                       help="last relay port (SS_MEDIAPROXYPORT_END, default %(default)s)")
    media.add_argument("--tos", metavar="DSCP", type=_param("SS_QOS_RTP"), default=get_default("SS_QOS_RTP"),
                       help="DSCP of relayed RTP/RTCP (SS_QOS_RTP, default %(default)s = EF)")
    media.add_argument("--num-threads", metavar="N", type=_positive_int, default=1,
                       help="relay worker threads (default %(default)s)")
    media.add_argument("--rtp-timeout", metavar="S", type=_param("SS_RTP_TIMEOUT"),
                       default=get_default("SS_RTP_TIMEOUT"),
                       help="seconds without media on both legs before a call is deleted "
                            "(SS_RTP_TIMEOUT, default %(default)s)")
    media.add_argument("--max-transcoding", metavar="N", type=int, default=1000,
                       help="transcoded directions (two per call) the node accepts; beyond it "
                            "offers that need transcoding fail (default %(default)s)")
    for option, name in (("--jb-mode", "SS_JITTERBUFFER_MODE"), ("--jb-min", "SS_JITTERBUFFER_MIN"),
                         ("--jb-max", "SS_JITTERBUFFER_MAX"), ("--jb-default", "SS_JITTERBUFFER_DEFAULT")):
        media.add_argument(option, metavar="V", type=_param(name), default=get_default(name),
                           help=f"jitter buffer of transcoded streams ({name}, default %(default)s)")
    media.add_argument("--strict-source", action="store_true",
                       help="for every call, relay media only from the address its SDP announced "
                            "(rtpengine's strict-source; per call with the NG flag)")
    media.set_defaults(func=run_media)

    run = commands.add_parser(
        "run", help="run the switch (SIP B2BUA, media engine in-process, SQLite store)",
        description="Run the softswitch: SIP over UDP and TCP, calls bridged by the B2BUA with "
                    "media relayed by the in-process engine, call records in SQLite.")
    run.add_argument("--config", metavar="FILE", help="TOML configuration (see control/config.py)")
    run.add_argument("--sip-listen", metavar="HOST:PORT", action="append",
                     help="SIP address (UDP and TCP); repeat for several ports (default 127.0.0.1:5060)")
    run.add_argument("--demo", action="store_true",
                     help="add demo data: customer 127.0.0.1, phone 1001/1001, a vendor for every number")
    run.add_argument("--demo-vendor", metavar="HOST:PORT", default="127.0.0.1:5090",
                     help="the demo vendor gateway (default %(default)s)")
    run.add_argument("--media-interface", metavar="ADDR", action="append",
                     help="address the media engine relays on (default: the SIP address)")
    run.add_argument("--no-media", action="store_true", help="signalling only: never proxy media")
    run.add_argument("--num-threads", metavar="N", type=_positive_int, default=1,
                     help="media relay worker threads (default %(default)s)")
    run.add_argument("--data-dir", metavar="DIR", default="vosmedia-data",
                     help="where the SQLite store and the write-ahead journal live (default %(default)s)")
    run.add_argument("--store", metavar="URL",
                     help="the store: a PostgreSQL URL (postgresql://user:pass@host/db) or an SQLite "
                          "file (default DIR/vosmedia.db)")
    run.add_argument("--web-listen", metavar="HOST:PORT", type=_host_port, default=("127.0.0.1", 8080),
                     help="the Web API (default 127.0.0.1:8080)")
    run.add_argument("--no-web", action="store_true", help="do not serve the Web API")
    run.add_argument("--admin-password", metavar="TEXT",
                     help="password of the first Web login 'admin' on a fresh store (default: "
                          "'admin' with --demo, else random, written to DIR/admin-password)")
    run.set_defaults(func=run_switch)

    report = commands.add_parser(
        "report", help="traffic (ASR/ACD/PDD) and income reports from the stored call records",
        description="Reports over the call records in the store: 'traffic' gives ASR, ACD and PDD per "
                    "customer or per gateway; 'income' gives fee, cost and profit per customer; 'cdr' "
                    "lists or exports (CSV) the records themselves.")
    report.add_argument("kind", choices=["traffic", "income", "cdr"])
    report.add_argument("--by", choices=["customer", "gateway"], default="customer",
                        help="traffic grouping (default %(default)s)")
    report.add_argument("--hours", type=float, metavar="H",
                        help="the window: the last H hours (default: today, from local midnight)")
    report.add_argument("--top", type=_positive_int, metavar="N", help="income: the N largest customers")
    report.add_argument("--customer", help="cdr: only this customer's calls")
    report.add_argument("--csv", metavar="FILE", help="cdr: write CSV to FILE ('-' for stdout)")
    report.add_argument("--data-dir", metavar="DIR", default="vosmedia-data",
                        help="where the SQLite store is (default %(default)s)")
    report.add_argument("--store", metavar="URL", help="the store URL (PostgreSQL or an SQLite file)")
    report.set_defaults(func=run_report)

    analysis = commands.add_parser(
        "route-analysis", help="Routing Analysis: the ordered routing gateways for a number",
        description="A dry run of live routing (the same code) over the store's gateways: the "
                    "candidates in the order they would be tried, and why the others are skipped. "
                    "Line counts and reachability are a running switch's only through the Web API "
                    "(GET /api/routing-analysis); here every line is free.")
    who = analysis.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ACCOUNT", help="the calling customer account (its first mapping gateway)")
    who.add_argument("--mapping-gateway", metavar="NAME", help="the mapping gateway the call comes in through")
    analysis.add_argument("--number", required=True, help="the called number as the customer sends it")
    analysis.add_argument("--at", metavar="TIME", help="the call's start, ISO 8601 (default now; e.g. 2026-12-07T18:00+01:00)")
    analysis.add_argument("--data-dir", metavar="DIR", default="vosmedia-data",
                          help="where the switch's SQLite store lives (default %(default)s)")
    analysis.add_argument("--store", metavar="URL", help="the store URL (PostgreSQL or an SQLite file)")
    analysis.set_defaults(func=run_route_analysis)

    detect = commands.add_parser(
        "dtmf-detect", help="print the DTMF digits in 8 kHz audio read from stdin",
        description="Run the in-band DTMF detector over 8 kHz audio on stdin (16-bit "
                    "little-endian linear by default, or G.711 bytes) and print the digits "
                    "it finds on one line.")
    detect.add_argument("--law", choices=["linear", "alaw", "ulaw"], default="linear",
                        help="sample format on stdin (default %(default)s)")
    detect.set_defaults(func=run_dtmf_detect)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args, parser)


# ------------------------------------------------------------------ vosmedia media

def _resolve_interfaces(specs: list[str]) -> tuple[list[str], dict[str, str]]:
    """``[NAME/]ADDR_OR_IFNAME`` values -> engine addresses and direction names."""
    from vosmedia.netif import resolve_interface

    addresses: list[str] = []
    names: dict[str, str] = {}
    for spec in specs:
        name, slash, target = spec.partition("/")
        if not slash or not target:
            name, target = "", spec
        try:
            address = resolve_interface(target, socket.AF_INET)
        except ValueError as first:
            try:
                address = resolve_interface(target, socket.AF_INET6)
            except ValueError:
                raise ValueError(f"--interface {spec}: {first}") from None
        if address in ("0.0.0.0", "::"):
            raise ValueError(f"--interface {spec}: a wildcard address cannot be announced in SDP; "
                             "give the address or interface media should use")
        if address not in addresses:
            addresses.append(address)
        names[name or target] = address
        names.setdefault(address, address)
    return addresses, names


def run_media(args, parser: argparse.ArgumentParser) -> int:
    try:
        check_consistency({"SS_MEDIAPROXYPORT_START": args.port_min,
                           "SS_MEDIAPROXYPORT_END": args.port_max,
                           "SS_JITTERBUFFER_MIN": args.jb_min, "SS_JITTERBUFFER_MAX": args.jb_max,
                           "SS_JITTERBUFFER_DEFAULT": args.jb_default})
        if args.max_transcoding < 0:
            raise ValueError("--max-transcoding must be 0 or more")
        addresses, names = _resolve_interfaces(args.interface)
    except (ParamError, ValueError) as exc:
        parser.error(str(exc))

    from vosmedia.engine import MediaEngine

    try:
        engine = MediaEngine(interfaces=addresses, port_min=args.port_min, port_max=args.port_max,
                             num_threads=args.num_threads, tos=args.tos,
                             rtp_timeout=float(args.rtp_timeout), strict=args.strict_source,
                             max_transcoding=args.max_transcoding,
                             jitter_buffer=(int(args.jb_mode), args.jb_min, args.jb_max, args.jb_default))
    except (ValueError, OSError) as exc:
        print(f"vosmedia media: cannot start the media engine: {exc}", file=sys.stderr)
        return 1
    engine.start()
    try:
        return asyncio.run(_serve_media(engine, args, names))
    finally:
        engine.close()


async def _serve_media(engine, args, names: dict[str, str]) -> int:
    from vosmedia.ng import NgServer

    server = NgServer(engine, interfaces=names, strict_source=args.strict_source)
    host, port = args.listen_ng
    try:
        bound = await server.start(host, port)
    except OSError as exc:
        print(f"vosmedia media: cannot listen for NG on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("media node ready: NG on udp %s:%s, relay on %s ports %d-%d, %d thread(s)",
             bound[0], bound[1], ", ".join(engine.interfaces), args.port_min, args.port_max,
             args.num_threads)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        server.close()
        active = len(server.calls)
        server.delete_all("shutdown")
        log.info("media node stopped (%d active call(s) deleted)", active)
    return 0


# ------------------------------------------------------------------ vosmedia run

def run_switch(args, parser: argparse.ArgumentParser) -> int:
    from control import config as configuration

    try:
        config = configuration.load(args.config) if args.config else configuration.SwitchConfig()
        if args.sip_listen:
            config.listen = [configuration.parse_host_port(item) for item in args.sip_listen]
        if args.demo:
            configuration.demo(config, configuration.parse_host_port(args.demo_vendor))
    except configuration.ConfigError as exc:
        parser.error(str(exc))
    return _run_loop(_serve_switch(config, args))


def _run_loop(main):
    """uvloop when installed (its UDP path costs a fraction of asyncio's), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _serve_switch(config, args) -> int:
    from control.app import Switch

    switch = Switch(config, data_dir=args.data_dir, media_interfaces=args.media_interface,
                    media=not args.no_media, num_threads=args.num_threads, store_url=args.store,
                    web_listen=None if args.no_web else args.web_listen,
                    admin_password=args.admin_password or ("admin" if args.demo else None))
    try:
        await switch.start()
    except (OSError, ValueError) as exc:
        print(f"vosmedia run: cannot start: {exc}", file=sys.stderr)
        await switch.stop()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await switch.stop()
        log.info("switch stopped")
    return 0


# ------------------------------------------------------------------ vosmedia report

def run_report(args, parser: argparse.ArgumentParser) -> int:
    import datetime
    import os
    import time

    from control.store import open_store, reports
    from control.store import cdrs as store_cdrs

    url = args.store or os.path.join(args.data_dir, "vosmedia.db")
    if not args.store and not os.path.exists(url):
        parser.error(f"no store at {url} (give --data-dir or --store)")
    until = time.time()
    if args.hours is not None:
        since = until - args.hours * 3600
    else:
        since = datetime.datetime.combine(datetime.date.today(), datetime.time()).timestamp()
    store = open_store(url)
    try:
        if args.kind == "traffic":
            rows = reports.traffic(store, args.by, since, until)
            _table(rows, [args.by, "calls", "answered", "asr", "acd_s", "pdd_ms"])
        elif args.kind == "income":
            rows = reports.income(store, since, until, top=args.top)
            _table(rows, ["customer", "calls", "fee", "cost", "profit"])
        elif args.csv:
            out = sys.stdout if args.csv == "-" else open(args.csv, "w", newline="")
            try:
                count = store_cdrs.export_csv(store, out, since=since, until=until, customer=args.customer)
            finally:
                if out is not sys.stdout:
                    out.close()
            print(f"{count} call records written", file=sys.stderr)
        else:
            rows = store_cdrs.query_cdrs(store, since=since, until=until, customer=args.customer, limit=50)
            _table(rows, ["call_id", "customer", "caller", "callee", "vendor", "sip_code",
                          "termination_reason", "hold_time", "fee"])
    finally:
        store.close()
    return 0


def _table(rows: list[dict], columns: list[str]) -> None:
    """Rows as an aligned text table on stdout."""
    cells = [columns] + [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())


# ------------------------------------------------------------------ vosmedia route-analysis

def run_route_analysis(args, parser: argparse.ArgumentParser) -> int:
    import datetime
    import os

    from control.accounts import AccountError, Actor
    from control.params import ParamStore
    from control.services import Services
    from control.store import open_store
    from control.store.parameters import load_params

    url = args.store or os.path.join(args.data_dir, "vosmedia.db")
    if not args.store and not os.path.exists(url):
        parser.error(f"no store at {url} (give --data-dir or --store)")
    at = None
    if args.at:
        try:
            when = datetime.datetime.fromisoformat(args.at)
        except ValueError:
            parser.error(f"--at: {args.at!r} is not an ISO 8601 time")
        at = (when if when.tzinfo else when.astimezone()).timestamp()
    store = open_store(url)
    try:
        services = Services.open(store, ParamStore(load_params(store)), None)
        result = services.gateways.analyse(Actor.system("cli"), args.number, customer=args.customer,
                                           mapping_gateway=args.mapping_gateway, at=at)
    except AccountError as exc:
        print(f"vosmedia route-analysis: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"number {result['number']} routed as {result['routed_number']} from customer "
          f"{result['customer']} (mapping gateway {result['mapping_gateway']}): {result['outcome']}")
    if result["number_section"] != "allowed":
        print(f"refused: {result['number_section']}")
    _table(result["candidates"], ["order", "gateway", "vendor", "priority", "protect", "callee_sent"])
    if result["skipped"]:
        print("skipped:")
        _table(result["skipped"], ["gateway", "why"])
    return 0


# ------------------------------------------------------------------ vosmedia dtmf-detect

def run_dtmf_detect(args, parser: argparse.ArgumentParser) -> int:
    from vosmedia import _codec, _dtmf

    detector = _dtmf.DtmfDetector()
    decode = {"alaw": _codec.alaw2lin, "ulaw": _codec.ulaw2lin}.get(args.law)
    digits: list[str] = []
    leftover = b""
    while chunk := sys.stdin.buffer.read(65536):
        if decode is not None:
            digits.append(detector.feed(decode(chunk)))
            continue
        chunk = leftover + chunk
        usable = len(chunk) // 2 * 2
        leftover = chunk[usable:]
        pcm = chunk[:usable]
        if sys.byteorder != "little":
            pcm = _swap16(pcm)
        digits.append(detector.feed(pcm))
    print("".join(digits))
    return 0


def _swap16(data: bytes) -> bytes:
    """Byte-swapped 16-bit samples (little-endian input on a big-endian host)."""
    out = bytearray(data)
    out[0::2], out[1::2] = data[1::2], data[0::2]
    return bytes(out)


if __name__ == "__main__":
    sys.exit(main())
