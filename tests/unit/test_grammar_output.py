"""registration_line round trip, redact_registration and the PJSIP mapping."""
import pytest

from vicireg_grammar import (RegistrationError, parse_registration, pjsip_registration,
                             redact_registration, registration_line)

VALID = [
    ("name@domain", "sip"),
    ("register => 1234:s3cret@sip.carrier.example:5060/1234", "sip"),
    ("peer?tcp://name@namedomain:pass:authuser@domain:1234/extension~111", "sip"),
    ("tls://name@namedomain:pass:authuser@domain/extension~111", "sip"),
    ("name@namedomain:4321:pass:authuser@domain", "sip"),
    ("name@namedomain:4321::@domain", "sip"),
    (r"user:pa\;ss@host", "sip"),
    ('user:"pa:ss/x?y"@host', "sip"),
    ("user::authonly@host", "sip"),
    ("user:p@ss@10.0.0.1:5080", "sip"),
    ("user:pw@[2001:db8::1]:5070", "pjsip"),
    ("user:secret@iax.example", "iax2"),
    ("user:[rsakey]@iax.example:4570", "iax2"),
    ("user@iax.example", "iax2"),
    # secrets Asterisk's splitter reads as written, and ones that need the quotes
    ("user:pa(ss@host", "sip"),
    ("user:[pass]@host", "sip"),
    ('user:pa"ss@host', "sip"),
    (r"user:pw\x@host", "sip"),
    ('user:"[pa:ss]"@host', "sip"),
    ('user:""pass""@host', "sip"),
    ("udp://user/name:pw@host", "sip"),
    ('user:pa"ss@iax.example', "iax2"),
]


@pytest.mark.parametrize("value,protocol", VALID)
def test_round_trip(value, protocol):
    line = registration_line(value, protocol)
    assert line.startswith("register => ")
    assert "\n" not in line
    assert parse_registration(line, protocol) == parse_registration(value, protocol)
    # From the parsed dict too, and the canonical line is a fixed point.
    assert registration_line(parse_registration(value, protocol)) == line
    assert registration_line(line, protocol) == line


def test_canonical_line_keeps_the_port_as_written_and_escapes_semicolons():
    # No port written: Asterisk looks up SRV records; a port written stays, even the default one.
    assert registration_line("u:p@h") == "register => u:p@h"
    assert registration_line("u:p@h:5060") == "register => u:p@h:5060"
    assert registration_line("tls://u:p@h") == "register => tls://u:p@h"
    assert registration_line(r"u:a\;b@h/100~300") == r"register => u:a\;b@h/100~300"
    assert parse_registration("u:p@h")["port_given"] is False
    assert parse_registration("u:p@h:5060")["port_given"] is True


def test_registration_line_refuses_a_dict_asterisk_cannot_read_back():
    reg = parse_registration("u:p@h")
    reg["username"] = "us er"
    with pytest.raises(RegistrationError):
        registration_line(reg)


@pytest.mark.parametrize("value,expected", [
    ("register => 1234:s3cret@carrier.example", "register => 1234:****@carrier.example"),
    # from the first ':' after the user to the last '@': a mistyped secret may spill into these
    ("name@namedomain:4321:pass:authuser@domain", "name@namedomain:****@domain"),
    (r"u:a\;b@h", "u:****@h"),
    ("u@h", "u@h"),
    ("sip:u:s3cret@h", "sip:u:****@h"),  # invalid strings are masked too
    ("u:s3cret@h:99999", "u:****@h:99999"),
])
def test_redact(value, expected):
    assert redact_registration(value) == expected


def test_pjsip_mapping_full():
    got = pjsip_registration("tls://1234@carrier.example:5062:pw:auth1234@edge.example:5071/1234~300", "acme")
    assert got["registration_name"] == "acme-reg" and got["auth_name"] == "acme-auth"
    assert got["registration"] == {
        "type": "registration",
        "transport": "transport-tls",
        # chan_sip: R-URI sip:DOMAIN (the domain port is not sent), To/From without a port, sent to the host.
        "server_uri": "sip:carrier.example",
        "client_uri": "sip:1234@carrier.example",
        "outbound_proxy": "sip:edge.example:5071;lr",
        "contact_user": "1234",
        "expiration": 300,
        "outbound_auth": "acme-auth",
    }
    assert got["auth"] == {"type": "auth", "auth_type": "userpass", "username": "auth1234", "password": "pw"}


def test_pjsip_mapping_defaults_user_as_auth_and_host_as_client_domain():
    got = pjsip_registration("1234:pw@carrier.example", "acme")
    reg = got["registration"]
    # No port: none in the URIs (SRV lookup stays on, the AOR is chan_sip's); chan_sip's 120 s expiry.
    assert reg["server_uri"] == "sip:carrier.example"
    assert reg["client_uri"] == "sip:1234@carrier.example"
    assert "outbound_proxy" not in reg
    assert reg["contact_user"] == "s" and reg["transport"] == "transport-udp"
    assert reg["expiration"] == 120
    assert got["auth"]["username"] == "1234"


def test_pjsip_ipv6_stays_bracketed():
    got = pjsip_registration("1234:pw@[2001:db8::10]:5080/555", "v6carrier")
    assert got["registration"]["server_uri"] == "sip:[2001:db8::10]"
    assert got["registration"]["outbound_proxy"] == "sip:[2001:db8::10]:5080;lr"
    assert got["registration"]["client_uri"] == "sip:1234@[2001:db8::10]"


def test_pjsip_two_carriers_on_one_host_do_not_collide():
    a = pjsip_registration("1111:pw@sbc.example", "east")
    b = pjsip_registration("2222:pw@sbc.example", "west")
    assert {a["registration_name"], a["auth_name"]}.isdisjoint({b["registration_name"], b["auth_name"]})


def test_pjsip_without_secret_has_no_auth():
    got = pjsip_registration("1234@carrier.example", "noauth")
    assert got["auth"] is None and "outbound_auth" not in got["registration"]


@pytest.mark.parametrize("name", ["", "x" * 16, "bad name", None])
def test_pjsip_rejects_bad_carrier_names(name):
    with pytest.raises(RegistrationError):
        pjsip_registration("1234:pw@h", name)


# What chan_sip's transmit_register sends for each form (R-URI, To/From, destination) and the PJSIP
# sections that send the same: (string, server_uri, client_uri, outbound_proxy or None).
CHAN_SIP_FORMS = [
    ("u:pw@carrier.example", "sip:carrier.example", "sip:u@carrier.example", None),
    ("u:pw@carrier.example:5060", "sip:carrier.example", "sip:u@carrier.example", None),
    ("u:pw@carrier.example:5080", "sip:carrier.example", "sip:u@carrier.example", "sip:carrier.example:5080;lr"),
    ("tcp://u:pw@carrier.example", "sip:carrier.example", "sip:u@carrier.example", None),
    ("TCP://u:pw@carrier.example:5090", "sip:carrier.example", "sip:u@carrier.example",
     "sip:carrier.example:5090;lr"),
    ("u@dom.example:pw@edge.example", "sip:dom.example", "sip:u@dom.example", "sip:edge.example;lr"),
    ("u@dom.example:pw@edge.example:5070", "sip:dom.example", "sip:u@dom.example", "sip:edge.example:5070;lr"),
    ("u@dom.example:5082:pw:auth@edge.example", "sip:dom.example", "sip:u@dom.example",
     "sip:edge.example;lr"),
    ("u@dom.example:5060:pw:auth@edge.example", "sip:dom.example", "sip:u@dom.example", "sip:edge.example;lr"),
    ("peer?u:pw:auth@carrier.example/100~300", "sip:carrier.example", "sip:u@carrier.example", None),
    ("u:pw@[2001:db8::1]", "sip:[2001:db8::1]", "sip:u@[2001:db8::1]", None),
    ("u:pw@[2001:db8::1]:5080", "sip:[2001:db8::1]", "sip:u@[2001:db8::1]", "sip:[2001:db8::1]:5080;lr"),
    ('u:"p:w"@carrier.example', "sip:carrier.example", "sip:u@carrier.example", None),
]


@pytest.mark.parametrize("value,server_uri,client_uri,proxy", CHAN_SIP_FORMS)
def test_pjsip_registers_where_and_as_whom_chan_sip_does(value, server_uri, client_uri, proxy):
    reg = pjsip_registration(value, "acme", "sip")["registration"]
    assert (reg["server_uri"], reg["client_uri"], reg.get("outbound_proxy")) == (server_uri, client_uri, proxy)
    parsed = parse_registration(value)
    assert reg["contact_user"] == parsed["extension"]
    assert reg["expiration"] == (parsed["expiry"] or 120)
    assert reg["transport"] == "transport-" + parsed["transport"]


def test_an_empty_auth_user_falls_back_to_the_user_as_in_chan_sip():
    got = pjsip_registration("u:pw:@carrier.example", "acme", "sip")
    assert got["auth"]["username"] == "u" and got["auth"]["password"] == "pw"
