"""Hypothesis properties of the Ansible filters (the wrapper that playbooks really call)."""
import string

from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registration import (parse_registration, pjsip_registration, redact_registration,
                          registration_line)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROTOCOLS = st.sampled_from(["sip", "pjsip", "iax2"])
ASCII = string.ascii_letters + string.digits + "-_.:@/?~;\\\"'()[]=>+* \t"
# All printable ASCII: the mask and the canonical line must hold for any secret.
SECRET_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7f))
# Text that looks like registration strings: structural characters are common, Unicode too.
NOISE = st.text(alphabet=st.sampled_from(ASCII) | st.characters(), max_size=40)
HOSTS = st.sampled_from(["carrier.example", "10.1.2.3", "sip_proxy", "[2001:db8::1]", "h", "300.1.1.1"])
PORTS = st.sampled_from(["", ":5060", ":99999", ":0", ":abc", ":", ":5060:5070"])


@st.composite
def registration_like(draw):
    # A marker keeps a random secret from being a plain word of some message ("transpor").
    secret = "Zq9" + draw(st.text(alphabet=SECRET_ALPHABET, min_size=5, max_size=20))
    value = "%s%s%s:%s%s@%s%s%s" % (
        draw(st.sampled_from(["", "register => ", "register => register => ", "sip:"])),
        draw(st.sampled_from(["", "tcp://", "tls://", "ws://", "peer?"])),
        draw(st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True)),
        secret,
        draw(st.sampled_from(["", ";x", "\\;", ":auth", " "])),
        draw(HOSTS), draw(PORTS),
        draw(st.sampled_from(["", "/100", "~120", "~", ";transport=tcp", "\n", "\u00a0"])),
    )
    return value, secret


@SETTINGS
@given(value=NOISE, protocol=PROTOCOLS)
def test_any_text_raises_only_filter_errors(value, protocol):
    for func in (parse_registration, registration_line, redact_registration):
        try:
            out = func(value, protocol)
        except AnsibleFilterError:
            continue
        assert isinstance(out, (str, dict))
    try:
        pjsip_registration(value, "carrier1", "sip")
    except AnsibleFilterError:
        pass


@SETTINGS
@given(case=registration_like(), protocol=PROTOCOLS)
def test_secret_never_in_error_messages(case, protocol):
    value, secret = case
    try:
        parse_registration(value, protocol)
    except AnsibleFilterError as exc:
        assert secret not in str(exc)
    try:
        registration_line(value, protocol)
    except AnsibleFilterError as exc:
        assert secret not in str(exc)
    redacted = redact_registration(value, protocol)
    assert secret not in redacted


@SETTINGS
@given(case=registration_like(), protocol=PROTOCOLS)
def test_output_lines_are_single_lines_without_bare_semicolons(case, protocol):
    value, _ = case
    try:
        line = registration_line(value, protocol)
    except AnsibleFilterError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc)
        return
    assert "\n" not in line and "\r" not in line
    for i, ch in enumerate(line):
        if ch == ";":
            assert i > 0 and line[i - 1] == "\\", line
    # and the canonical line reads back to the same fields
    assert parse_registration(line, protocol) == parse_registration(value, protocol)


@SETTINGS
@given(value=NOISE, protocol=PROTOCOLS)
def test_accepted_noise_round_trips(value, protocol):
    try:
        parsed = parse_registration(value, protocol)
    except AnsibleFilterError:
        return
    assert parse_registration(registration_line(value, protocol), protocol) == parsed


def test_filter_type_checks():
    for bad in (None, 5060, ["u:p@h"]):
        try:
            parse_registration(bad)
        except AnsibleFilterError as exc:
            assert "must be a registration string" in str(exc)
        else:
            raise AssertionError("accepted %r" % (bad,))
