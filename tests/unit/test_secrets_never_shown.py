"""Secrets never shown: not in preflight messages, templates, redacted config, report rows or targets;
and back, whole, in the file written on the dialer.

The leak check is differential: every output is also computed for a CONTROL inventory that differs
only in the secrets (same length, each character replaced by a letter that is in no secret, ';'
kept where it was so that columns stay the same).  A 4-character piece of a secret counts as shown
when it is in the output, not in the control's output and not in the non-secret text supplied: the
piece came from the secret.
"""
import copy
import json
import os
import string

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import carriers as carrier_filters  # filter_plugins/carriers.py: the report rows of refused carriers
import vicireg_carriers as carriers
import vicireg_fields as fields
import vicireg_grammar as grammar
import vicireg_render as render
import vicireg_report as report
import vicireg_status as status

SCALE = float(os.environ.get("VICIREG_HYPOTHESIS_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PRINTABLE = [chr(c) for c in range(0x21, 0x7f)]
# What the grammar refuses in a secret outright: blanks (not in PRINTABLE), and for sip '/' '?'
# (field separators) and ':' (starts the auth user); for iax2 ':' '@'.  ';' is written '\;'.
SIP_SECRET = st.text(alphabet=[c for c in PRINTABLE if c not in "/?:"], min_size=6, max_size=24)
IAX2_SECRET = st.text(alphabet=[c for c in PRINTABLE if c not in ":@"], min_size=6, max_size=24)
OPTION_SECRET = st.text(alphabet=[chr(c) for c in range(0x20, 0x7f) if chr(c) not in ";["], min_size=6,
                        max_size=24)
SIP_SHAPES = {
    "plain": "1234:{}@sip.acme.example:5060/1234",
    "prefixed": "register => 1234:{}@sip.acme.example",
    "transport": "tcp://1234:{}@sip.acme.example:5070",
    "domain": "1234@acme.example:{}@sip.acme.example",
    "authuser": "1234:{}:auth77@sip.acme.example",
    # refused by the grammar for a reason that is not the secret
    "bad-port": "1234:{}@sip.acme.example:99999",
    "uri-param": "1234:{}@sip.acme.example;transport=tcp",
    "doubled": "register => register => 1234:{}@sip.acme.example",
    "scheme": "sip:1234:{}@sip.acme.example:5060",
    "no-host": "1234:{}@",
    "blank-host": "1234:{}@sip acme.example",
}
IAX2_SHAPES = {
    "plain": "user:{}@iax.example",
    "port": "user:{}@iax.example:4570",
    "bad-port": "user:{}@iax.example:0",
    "extension": "user:{}@iax.example/100",
}
# Another field made hostile, so that the carrier is refused for something else as well.
OTHER = {
    "none": {},
    "host": {"host": "0.0.0.0"},
    "context": {"context": "trunk\n[evil]"},
    "port": {"port": 0},
    "option": {"options_extra": {"nat": "a;b"}},
    "name": {"name": "bad name"},
    "codecs": {"codecs": ["ulaw\n#exec x"]},
}

# About half the examples are carriers the preflight accepts (valid shape, no other hostile field).
VALID_SIP = ["plain", "prefixed", "transport", "domain", "authuser"]
SIP_DRAW = VALID_SIP * 3 + sorted(set(SIP_SHAPES) - set(VALID_SIP))
IAX2_DRAW = ["plain", "port"] * 3 + ["bad-port", "extension"]
OTHER_DRAW = ["none"] * 8 + sorted(set(OTHER) - {"none"})


def _control_char(*secrets):
    used = set("".join(secrets))
    for c in string.ascii_letters:
        if c not in used:
            return c
    return None


def _control(secret, letter):
    return "".join(c if c == ";" else letter for c in secret)


def _esc(secret):
    return secret.replace(";", "\\;")


def _grams(*texts):
    return {t[i:i + 4] for t in texts for i in range(len(t) - 3)}


def _build(protocol, shape, reg_secret, option_secrets, other):
    shapes = IAX2_SHAPES if protocol == "iax2" else SIP_SHAPES
    carrier = {"name": "acme", "protocol": protocol, "registration": shapes[shape].format(_esc(reg_secret)),
               "options": dict(option_secrets)}
    for key, value in other.items():
        if key == "options_extra":
            carrier["options"].update(value)
        else:
            carrier[key] = value
    return [carrier, {"name": "ipauth", "host": "192.0.2.10", "options": {"callerid": "Acme <100>"}}]


def _report_text(rows_by_host, refused_rows):
    hosts = sorted(set(rows_by_host) | {"d2"})
    rows = report.report_rows(rows_by_host) + refused_rows
    merged = report.merge([], hosts, sorted(rows_by_host) + ["d3"], rows, "not reached yet")
    return json.dumps(merged) + "\n".join(report.report_table(merged)) + report.report_junit(merged)


def _outputs(carrier_list, chan_sip):
    """Every text the toolkit shows for these carriers (joined), and the real files (or None)."""
    shown = []
    shown += carriers.carrier_problems(carrier_list, chan_sip)
    shown += [repr(p) for p in carriers.problems_by_carrier(carrier_list, chan_sip)]
    refused_rows = carrier_filters.vicireg_problem_rows(carrier_list, "d3")
    shown.append(json.dumps(refused_rows))
    try:
        plan = carriers.carrier_plan(carrier_list, chan_sip)
    except grammar.RegistrationError as exc:
        shown.append(str(exc))
        shown.append(_report_text({}, refused_rows))
        return "\n".join(shown), None, None
    drivers = ("sip", "pjsip", "iax2") if chan_sip else ("pjsip", "iax2")
    rendered = render.render_files(plan, drivers)
    real = {f: render.fill_template(t, rendered["secrets"]) for f, t in rendered["templates"].items()}
    assert real == rendered["files"]
    shown += list(rendered["templates"].values())
    shown += [render.redact_config(text) for text in real.values()]
    shown.append(carriers.mask_secrets("\n".join(real.values()), carrier_list))
    shown.append(json.dumps(rendered["digests"]))
    shown += [item["redacted"] for item in plan]
    targets = carriers.verify_targets(plan)
    shown.append(json.dumps(targets))
    shown.append(json.dumps(render.current_targets(real)))
    results = []
    for target in targets:
        judge = status.Judge(target, 0.0)
        judge.observe("Rejected" if target["registers"] else "UNREACHABLE", 1.0)
        judge.timeout(2.0)
        results.append({"name": target["name"], "driver": target["driver"], "state": judge.state,
                        "verdict": judge.verdict, "cause": judge.cause, "seconds": judge.seconds})
    shown.append(_report_text({"d1": results}, refused_rows))
    shown.append(carrier_filters.vicireg_failures(results, "d1"))
    return "\n".join(shown), real, rendered


def _check(protocol, shape, reg_secret, option_secrets, other, chan_sip=True):
    letter = _control_char(reg_secret, *option_secrets.values())
    assume(letter is not None)
    everyone = [reg_secret] + list(option_secrets.values())
    assume(not any("@@" in s for s in everyone))  # token text: its own xfail test (test_render_structure.py)
    # A leading '>' is lost in the file written: its own xfail test (test_render_structure.py).
    assume(not any(s.startswith(">") for s in everyone))
    parse_as = "iax2" if protocol == "iax2" else "sip"
    # The secret must be one the grammar reads as written in the valid shape.
    valid_shape = (IAX2_SHAPES if protocol == "iax2" else SIP_SHAPES)["plain"].format(_esc(reg_secret))
    try:
        assume(grammar.parse_registration(valid_shape, parse_as)["secret"] == reg_secret)
    except grammar.RegistrationError:
        assume(False)
    for key, value in option_secrets.items():
        assume(fields.options({key: value}, "iax2" if protocol == "iax2" else "sip", set()) == [])
    hostile = _build(protocol, shape, reg_secret, option_secrets, other)
    control = _build(protocol, shape, _control(reg_secret, letter),
                     {k: _control(v, letter) for k, v in option_secrets.items()}, other)
    shown, real, rendered = _outputs(hostile, chan_sip)
    shown_control, _, _ = _outputs(control, chan_sip)
    supplied = json.dumps(_build(protocol, shape, "", {k: "" for k in option_secrets}, other))
    secrets = [reg_secret, _esc(reg_secret)] + list(option_secrets.values())
    leaked = sorted(g for g in _grams(*secrets) if g in shown and g not in shown_control and g not in supplied)
    assert not leaked, "secret pieces shown: %r" % leaked
    if real is None:
        event("refused")
        return
    event("rendered")
    # The secret is back, whole, in the files written on the dialer.
    lines = "\n".join(real.values()).splitlines()
    key = "password" if protocol == "pjsip" or not chan_sip else "secret"
    assert "%s=%s" % (key, _esc(reg_secret)) in lines
    for key, value in option_secrets.items():
        assert "%s=%s" % (key, value) in lines


@settings(max_examples=int(400 * SCALE), **SETTINGS)
@given(reg_secret=SIP_SECRET, shape=st.sampled_from(SIP_DRAW), other=st.sampled_from(OTHER_DRAW),
       options=st.dictionaries(st.sampled_from(["auth", "md5secret", "remotesecret"]), OPTION_SECRET, max_size=3))
def test_sip_secrets_are_never_shown(reg_secret, shape, other, options):
    _check("sip", shape, reg_secret, options, OTHER[other])


@settings(max_examples=int(200 * SCALE), **SETTINGS)
@given(reg_secret=SIP_SECRET, shape=st.sampled_from(SIP_DRAW), other=st.sampled_from(OTHER_DRAW))
def test_pjsip_secrets_are_never_shown(reg_secret, shape, other):
    _check("pjsip", shape, reg_secret, {}, OTHER[other])
    _check("sip", shape, reg_secret, {}, OTHER[other], chan_sip=False)


@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(reg_secret=IAX2_SECRET, shape=st.sampled_from(IAX2_DRAW), other=st.sampled_from(OTHER_DRAW),
       options=st.dictionaries(st.just("dbsecret"), OPTION_SECRET, max_size=1))
def test_iax2_secrets_are_never_shown(reg_secret, shape, other, options):
    assume(not reg_secret.startswith("["))  # '[key]' is an RSA key name, not a secret
    _check("iax2", shape, reg_secret, options, OTHER[other])


def test_the_leak_check_can_fail():
    """The differential check notices a secret that is shown: here a message that repeats a host
    holding the secret (hosts are shown, on purpose: they are not secret fields)."""
    hostile = [{"name": "acme", "host": "Zq9Secret..example"}]
    control = [{"name": "acme", "host": "Qq9Qqqqqq..example"}]
    shown, _, _ = _outputs(hostile, True)
    shown_control, _, _ = _outputs(control, True)
    assert [g for g in _grams("Zq9Secret") if g in shown and g not in shown_control]


def test_a_copy_of_the_inventory_is_not_changed_by_the_checks():
    carrier_list = _build("sip", "plain", "s3cret;Zq9", {"md5secret": "Zq9Md5x"}, {})
    before = copy.deepcopy(carrier_list)
    _outputs(carrier_list, True)
    assert carrier_list == before
