"""registration_line / pjsip_registration given a dict: each field type-checked, the line built and
parsed back, and only what the grammar read reaches the output."""
import pytest
from ansible.errors import AnsibleFilterError

import registration as filters
from vicireg_grammar import RegistrationError, pjsip_registration, registration_line

SECRET = "Zq7SECRETx"
BASE = {"username": "1234", "host": "carrier.example", "secret": SECRET}


def both(reg):
    """The error of registration_line and of pjsip_registration for reg (both must refuse)."""
    errors = []
    for call in (lambda: registration_line(reg), lambda: pjsip_registration(reg, "acme")):
        with pytest.raises(RegistrationError) as info:
            call()
        errors.append(str(info.value))
    return errors


@pytest.mark.parametrize("field,value,kind", [
    ("username", 5, "a string"), ("host", ["h"], "a string"), ("secret", 1234, "a string"),
    ("secret", {"x": SECRET}, "a string"), ("port", "5060", "an integer"), ("port", True, "an integer"),
    ("expiry", 1.5, "an integer"), ("domain_port", "5082", "an integer"), ("transport", 3, "a string"),
    ("peer", b"peer", "a string"),
])
def test_wrong_type_is_named_without_raw_type_errors(field, value, kind):
    for message in both(dict(BASE, **{field: value})):
        assert "field %r must be %s or null, got %s" % (field, kind, type(value).__name__) in message
        assert SECRET not in message


@pytest.mark.parametrize("field,value", [
    ("username", "a\nb"), ("host", "carrier.example\nregister => x:y@z"), ("secret", SECRET + "\n"),
    ("authuser", "a\rb"), ("extension", "100\n"), ("host", "h;x"), ("username", "us er"), ("peer", "p?q"),
    ("domain", "dom\x00"),
])
def test_field_asterisk_cannot_read_is_named_and_nothing_passes_through(field, value):
    for message in both(dict(BASE, **{field: value})):
        assert "field %r" % field in message, message
        assert "\n" not in message and "\r" not in message and "\x00" not in message
        assert SECRET not in message


@pytest.mark.parametrize("reg,message", [
    ({"host": "h"}, "needs username"), ({"username": "u"}, "needs host"),
    (dict(BASE, transport="ws"), "field 'transport' must be udp, tcp or tls"),
    (dict(BASE, protocol="h323"), "field 'protocol' must be one of"),
    (dict(BASE, protocol="iax2", extension="100"), "field 'extension' has no place in an IAX2"),
    (dict(BASE, port=0), "field 'port' cannot be written"),
    (dict(BASE, expiry=-1), "field 'expiry' cannot be written"),
])
def test_incomplete_or_impossible_dicts_are_refused(reg, message):
    with pytest.raises(RegistrationError, match=message):
        registration_line(reg)


def test_output_is_what_the_grammar_read_back():
    reg = {"username": "1234", "host": "Carrier.example", "transport": "TCP", "secret": "pw", "port": None,
           "extension": "", "unknown_key": object()}
    assert registration_line(reg) == "register => tcp://1234:pw@Carrier.example"
    got = pjsip_registration(reg, "acme")
    assert got["registration"]["transport"] == "transport-tcp"
    assert got["registration"]["contact_user"] == "s"


class Tagged(str):
    """Stands for the tagged/unsafe str subclasses templating hands to filters."""


def _types(obj):
    if isinstance(obj, dict):
        return {t for k, v in obj.items() for t in _types(k) | _types(v)}
    return {type(obj)}


def test_filters_return_plain_python_types():
    fields = dict(BASE, authuser="auth1234", domain="dom.example", extension="100")
    reg = {k: Tagged(v) for k, v in fields.items()}
    reg["port"] = 5070
    for out in (filters.registration_line(reg), filters.pjsip_registration(reg, Tagged("acme")),
                filters.parse_registration(Tagged("register => 1234:pw@h")),
                filters.redact_registration(Tagged("1234:pw@h"))):
        assert _types(out) <= {str, int, bool, dict, type(None)}, out


def test_filter_errors_for_dicts_name_the_field():
    with pytest.raises(AnsibleFilterError, match="field 'username' must be a string"):
        filters.registration_line({"username": 5, "host": "h"})
    with pytest.raises(AnsibleFilterError, match="field 'username'") as info:
        filters.pjsip_registration(dict(BASE, username="a\nb"), "acme")
    assert SECRET not in str(info.value)
