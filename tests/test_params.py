"""System parameter declarations, validation, the run-time store and the generated docs."""
import subprocess
import sys
from pathlib import Path

import pytest

from control import params
from control.params import PARAMS, ParamError, ParamStore, get_default, validate

ROOT = Path(__file__).resolve().parent.parent

SPEC_DEFAULTS = {
    "SS_MEDIAPROXYPORT_START": 10000,
    "SS_MEDIAPROXYPORT_END": 60000,
    "SS_RTP_TIMEOUT": 30,
    "SS_QOS_RTP": 46,
    "SS_QOS_SIGNAL": 24,
    "SS_SIP_RESEND_INTERVAL": (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0),
    "SS_SIP_TIMEOUT_INVITE": 10,
    "SS_SIP_TIMEOUT_RINGING": 120,
    "SS_SIP_SESSION_TTL": 600,
    "SS_JITTERBUFFER_MODE": 1,
    "SS_JITTERBUFFER_MIN": 20,
    "SS_JITTERBUFFER_MAX": 200,
    "SS_JITTERBUFFER_DEFAULT": 60,
    "SS_VOICEGAIN": 0,
    "SS_COMFORTNOISE": True,
    "SS_ECHOCANCELTAIL": 128,
    "SS_SIP_STOP_SWITCH_AFTER_SDP": True,
    "SS_SIP_USER_AGENT_STOP_SWITCH_AFTER_INVITE_TIMEOUT": False,
    "SERVER_BILLING_FEE_PRECISTION": 2,
    "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME": 1,
}

SPEC_RANGES = {
    "SS_MEDIAPROXYPORT_START": (1024, 65535),
    "SS_MEDIAPROXYPORT_END": (1024, 65535),
    "SS_QOS_RTP": (0, 63),
    "SS_QOS_SIGNAL": (0, 63),
    "SS_SIP_TIMEOUT_INVITE": (1, 300),
    "SS_SIP_TIMEOUT_RINGING": (1, 600),
    "SS_SIP_SESSION_TTL": (90, 7200),
    "SS_SIP_USER_AGENT_EXPIRE": (20, 7200),
    "SS_VOICEGAIN": (-10, 10),
    "SERVER_BILLING_FEE_PRECISTION": (0, 4),
    "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME": (1, 15),
}


# --- declarations --------------------------------------------------------------------

@pytest.mark.parametrize("name,default", sorted(SPEC_DEFAULTS.items()))
def test_spec_defaults(name, default):
    assert get_default(name) == default
    assert type(get_default(name)) is type(default)


@pytest.mark.parametrize("name,bounds", sorted(SPEC_RANGES.items()))
def test_spec_ranges_are_inclusive(name, bounds):
    low, high = bounds
    step = PARAMS[name].multiple_of
    assert validate(name, low) == low
    assert validate(name, high - high % step) == high - high % step
    for outside in (low - step, high + 1):
        with pytest.raises(ParamError):
            validate(name, outside)


def test_chosen_defaults_are_explained():
    # The spec gives no default for these; the help must say why the chosen one.
    assert get_default("SS_MEDIAPROXYMODE") == 2
    assert "Default Auto" in PARAMS["SS_MEDIAPROXYMODE"].help
    assert get_default("SS_ECHOCANCEL") is False
    assert "Default Off" in PARAMS["SS_ECHOCANCEL"].help
    for name, default, words in (("SERVER_BILLING_FEE_UNIT", 1, "Default 1"),
                                 ("SERVER_BILLING_FREE_TIME", 0, "Default 0"),
                                 ("SERVER_BILLING_HOLD_TIME_PRECISION", 50, "Default 50"),
                                 ("SERVER_BILLING_RECORD_ZERO_HOLD_TIME", True, "Default On")):
        assert get_default(name) == default
        assert words in PARAMS[name].help
    assert get_default("SS_SIP_USER_AGENT_EXPIRE") == 3600
    assert "Default 3600" in PARAMS["SS_SIP_USER_AGENT_EXPIRE"].help


def test_every_declaration_is_complete():
    for name, param in PARAMS.items():
        assert name == param.name and name.isupper()
        assert name.startswith(("SS_", "SERVER_"))
        assert param.applies in (params.HOT, params.RESTART)
        assert len(param.help) > 20
        assert validate(name, param.default) == param.default


def test_hot_and_restart():
    assert PARAMS["SS_QOS_RTP"].applies == "hot"
    assert PARAMS["SS_QOS_SIGNAL"].applies == "hot"
    assert PARAMS["SS_MEDIAPROXYPORT_START"].applies == "restart"
    assert PARAMS["SS_MEDIAPROXYPORT_END"].applies == "restart"


def test_bad_declarations_are_refused():
    with pytest.raises(TypeError):
        params.Param("SS_X", float, 1.0, (0, 2), "hot", "floats are not a declared type")
    with pytest.raises(TypeError):
        params.Param("SS_X", int, 1, (0, 2), "later", "unknown applies value")
    with pytest.raises(TypeError):
        params.Param("SS_X", int, 1, (0, 1, 2), "hot", "a 3-tuple is neither range nor choices")


# --- error messages ------------------------------------------------------------------

def test_error_names_parameter_and_range():
    with pytest.raises(ParamError) as err:
        validate("SS_QOS_RTP", 64)
    assert str(err.value) == "SS_QOS_RTP must be an integer in 0..63, got 64"
    assert err.value.name == "SS_QOS_RTP"
    assert isinstance(err.value, ValueError)


def test_error_states_unit():
    with pytest.raises(ParamError, match=r"^SS_SIP_SESSION_TTL must be an integer in 90\.\.7200 s, got 89$"):
        validate("SS_SIP_SESSION_TTL", "89")


def test_error_lists_choices():
    with pytest.raises(ParamError) as err:
        validate("SS_MEDIAPROXYMODE", 4)
    assert str(err.value) == ("SS_MEDIAPROXYMODE must be one of 0 (Off), 1 (On), 2 (Auto), "
                              "3 (Must On), got 4")
    with pytest.raises(ParamError, match=r"SS_ECHOCANCELTAIL must be one of 64, 128, 256, got 100"):
        validate("SS_ECHOCANCELTAIL", 100)


def test_error_on_unparsable_text_quotes_it():
    with pytest.raises(ParamError, match=r"^SS_QOS_SIGNAL must be an integer in 0\.\.63, got 'cs3'$"):
        validate("SS_QOS_SIGNAL", "cs3")


def test_odd_port_start_is_refused():
    with pytest.raises(ParamError, match=r"SS_MEDIAPROXYPORT_START must be an even integer "
                                         r"in 1024\.\.65535, got 10001"):
        validate("SS_MEDIAPROXYPORT_START", 10001)
    assert validate("SS_MEDIAPROXYPORT_END", 60001) == 60001


def test_unknown_name():
    with pytest.raises(ParamError, match=r"unknown parameter 'SS_QOS_RTPP' \(did you mean SS_QOS_RTP\?\)"):
        validate("SS_QOS_RTPP", 1)
    with pytest.raises(ParamError, match="'NO_SUCH_THING'"):
        get_default("NO_SUCH_THING")
    with pytest.raises(ParamError, match="SS_NOPE"):
        ParamStore().get("SS_NOPE")


# --- parsing -------------------------------------------------------------------------

@pytest.mark.parametrize("raw,parsed", [
    ("46", 46), (" 46 ", 46), (46, 46), (46.0, 46), ("+46", 46), ("0", 0),
])
def test_integer_parsing(raw, parsed):
    value = validate("SS_QOS_RTP", raw)
    assert value == parsed and type(value) is int


@pytest.mark.parametrize("raw", ["46.5", 46.5, "4_6", "0x2e", "", "forty", True, None, [46], "٤٦"])
def test_integer_rejects(raw):
    with pytest.raises(ParamError, match="^SS_QOS_RTP must be an integer in 0..63, got "):
        validate("SS_QOS_RTP", raw)


def test_negative_integer_text():
    assert validate("SS_VOICEGAIN", "-10") == -10
    with pytest.raises(ParamError, match="-11"):
        validate("SS_VOICEGAIN", "-11")


@pytest.mark.parametrize("raw,parsed", [
    ("Auto", 2), ("auto", 2), ("Must On", 3), ("must_on", 3), ("MUSTON", 3), ("off", 0), ("1", 1), (3, 3),
])
def test_choice_by_label_or_number(raw, parsed):
    assert validate("SS_MEDIAPROXYMODE", raw) == parsed


@pytest.mark.parametrize("raw,parsed", [
    ("1", True), ("0", False), ("On", True), ("off", False), ("TRUE", True), ("no", False),
    (1, True), (0, False), (True, True), (False, False),
])
def test_switch_parsing(raw, parsed):
    assert validate("SS_COMFORTNOISE", raw) is parsed


@pytest.mark.parametrize("raw", [2, -1, "2", "enabled", "", None, 1.0])
def test_switch_rejects(raw):
    with pytest.raises(ParamError, match=r"^SS_ECHOCANCEL must be 0 or 1 \(Off/On\), got "):
        validate("SS_ECHOCANCEL", raw)


def test_resend_interval_parsing():
    name = "SS_SIP_RESEND_INTERVAL"
    assert validate(name, "0.5,1,2,4,4,4,4,4,4,4") == SPEC_DEFAULTS[name]
    assert validate(name, " 0.25 , 1 ") == (0.25, 1.0)
    assert validate(name, [0.5, "2", 3]) == (0.5, 2.0, 3.0)
    assert validate(name, "1e-1") == (0.1,)


@pytest.mark.parametrize("raw", [
    "", "0.5,,1", "0.5,1,", "0,1", "-1,2", "1,65", "nan", "inf,1", "a,b", ",".join(["1"] * 33),
    [], [True], 5, None,
])
def test_resend_interval_rejects(raw):
    with pytest.raises(ParamError, match=r"^SS_SIP_RESEND_INTERVAL must be a comma-separated list "
                                         r"of 1\.\.32 numbers, each in 0\.01\.\.64 s, got "):
        validate("SS_SIP_RESEND_INTERVAL", raw)


def test_format_value_round_trips():
    for name, param in PARAMS.items():
        text = params.format_value(name, param.default)
        assert isinstance(text, str)
        assert validate(name, text) == param.default
    assert params.format_value("SS_SIP_RESEND_INTERVAL", (0.5, 1.0)) == "0.5,1"
    assert params.format_value("SS_COMFORTNOISE", True) == "On"


# --- cross-field rules ---------------------------------------------------------------

def test_port_range_cross_check():
    params.check_consistency({"SS_MEDIAPROXYPORT_START": 20000, "SS_MEDIAPROXYPORT_END": 20001})
    for start, end in ((20000, 20000), (30000, 20000)):
        with pytest.raises(ParamError) as err:
            params.check_consistency({"SS_MEDIAPROXYPORT_START": start, "SS_MEDIAPROXYPORT_END": end})
        message = str(err.value)
        assert "SS_MEDIAPROXYPORT_START must be less than SS_MEDIAPROXYPORT_END" in message
        assert f"SS_MEDIAPROXYPORT_START={start}" in message and f"SS_MEDIAPROXYPORT_END={end}" in message


def test_cross_check_uses_defaults_for_missing_names():
    # END defaults to 60000, so a start above it is refused even when END is not given.
    with pytest.raises(ParamError, match="SS_MEDIAPROXYPORT_END=60000"):
        params.check_consistency({"SS_MEDIAPROXYPORT_START": 60002})


def test_jitter_buffer_cross_check():
    with pytest.raises(ParamError, match="SS_JITTERBUFFER_MIN <= SS_JITTERBUFFER_DEFAULT"):
        params.check_consistency({"SS_JITTERBUFFER_DEFAULT": 300})
    with pytest.raises(ParamError, match="SS_JITTERBUFFER_MIN=80"):
        params.check_consistency({"SS_JITTERBUFFER_MIN": 80})
    params.check_consistency({"SS_JITTERBUFFER_MIN": 60, "SS_JITTERBUFFER_MAX": 60})


# --- ParamStore ----------------------------------------------------------------------

def test_store_starts_with_defaults_and_given_values():
    store = ParamStore({"SS_QOS_RTP": "34"})
    assert store.get("SS_QOS_RTP") == 34
    assert store.get("SS_QOS_SIGNAL") == 24
    assert store.values() == {**{n: p.default for n, p in PARAMS.items()}, "SS_QOS_RTP": 34}


def test_store_refuses_bad_initial_values():
    with pytest.raises(ParamError, match="SS_QOS_RTP"):
        ParamStore({"SS_QOS_RTP": 99})
    with pytest.raises(ParamError, match="SS_MEDIAPROXYPORT_START must be less"):
        ParamStore({"SS_MEDIAPROXYPORT_START": 50000, "SS_MEDIAPROXYPORT_END": 40000})


def test_store_set_validates_and_keeps_old_value_on_error():
    store = ParamStore()
    assert store.set("SS_QOS_RTP", "40") == 40
    with pytest.raises(ParamError, match="got 64"):
        store.set("SS_QOS_RTP", 64)
    assert store.get("SS_QOS_RTP") == 40


def test_hot_listener_sees_change_at_once():
    store = ParamStore()
    heard = []
    store.on_change(lambda name, value: heard.append((name, value, store.get(name))), "SS_QOS_RTP")
    store.set("SS_QOS_RTP", "34")
    store.set("SS_QOS_SIGNAL", 26)      # not subscribed
    store.set("SS_QOS_RTP", 34)         # unchanged: no event
    assert heard == [("SS_QOS_RTP", 34, 34)]
    assert not store.needs_restart("SS_QOS_RTP")


def test_listener_for_every_parameter_and_removal():
    store = ParamStore()
    heard = []
    remove = store.on_change(lambda name, value: heard.append(name))
    store.update({"SS_QOS_RTP": 10, "SS_RTP_TIMEOUT": 60})
    remove()
    store.set("SS_QOS_RTP", 12)
    assert sorted(heard) == ["SS_QOS_RTP", "SS_RTP_TIMEOUT"]


def test_on_change_refuses_unknown_names():
    with pytest.raises(ParamError, match="SS_QOS_RPT"):
        ParamStore().on_change(lambda name, value: None, "SS_QOS_RPT")


def test_cross_check_in_store_and_atomic_update():
    store = ParamStore()
    with pytest.raises(ParamError, match="SS_MEDIAPROXYPORT_START must be less"):
        store.set("SS_MEDIAPROXYPORT_START", 61000)
    assert store.get("SS_MEDIAPROXYPORT_START") == 10000
    # Moving the whole range above the current END works only as one update.
    store.update({"SS_MEDIAPROXYPORT_START": 61000, "SS_MEDIAPROXYPORT_END": 65000})
    assert (store.get("SS_MEDIAPROXYPORT_START"), store.get("SS_MEDIAPROXYPORT_END")) == (61000, 65000)
    # One bad value in an update leaves every value unchanged.
    with pytest.raises(ParamError, match="SS_QOS_SIGNAL"):
        store.update({"SS_QOS_RTP": 1, "SS_QOS_SIGNAL": 100})
    assert store.get("SS_QOS_RTP") == 46


def test_restart_parameter_needs_restart():
    store = ParamStore()
    heard = []
    store.on_change(lambda name, value: heard.append((name, value)), "SS_MEDIAPROXYPORT_END")
    assert not store.needs_restart("SS_MEDIAPROXYPORT_END")
    store.set("SS_MEDIAPROXYPORT_END", 50000)
    assert store.get("SS_MEDIAPROXYPORT_END") == 50000
    assert store.needs_restart("SS_MEDIAPROXYPORT_END")
    assert store.pending_restart() == ["SS_MEDIAPROXYPORT_END"]
    assert heard == [("SS_MEDIAPROXYPORT_END", 50000)]
    store.set("SS_MEDIAPROXYPORT_END", 60000)      # back to the running value
    assert not store.needs_restart("SS_MEDIAPROXYPORT_END")
    with pytest.raises(ParamError):
        store.needs_restart("SS_BOGUS")


def test_failing_listener_rolls_back():
    store = ParamStore()
    applied = []
    store.on_change(lambda name, value: applied.append(value), "SS_QOS_RTP")

    def refuse(name, value):
        if value == 10:
            raise RuntimeError("cannot apply")
    store.on_change(refuse, "SS_QOS_RTP")
    with pytest.raises(RuntimeError, match="cannot apply"):
        store.set("SS_QOS_RTP", 10)
    assert store.get("SS_QOS_RTP") == 46
    assert applied == [10, 46]       # told the new value, then the restored one


# --- generated docs ------------------------------------------------------------------

def test_docs_parameters_md_is_current():
    doc = ROOT / "docs" / "parameters.md"
    assert doc.read_text(encoding="utf-8") == params.render_markdown(), (
        "docs/parameters.md is stale: run `python -m control.params --markdown > docs/parameters.md`")


def test_markdown_lists_every_parameter_with_its_rule():
    text = params.render_markdown()
    for name, param in PARAMS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert param.rule() in row
        assert ("restart" if param.applies == "restart" else "at once") in row
    assert "| `SS_SIP_RESEND_INTERVAL` | `0.5,1,2,4,4,4,4,4,4,4` |" in text


def test_cli_prints_markdown():
    out = subprocess.run([sys.executable, "-m", "control.params", "--markdown"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout == params.render_markdown()
