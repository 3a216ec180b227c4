"""The grammar against Asterisk's own unit vectors (sip_parse_register_line_test) and IAX2's form."""
import pytest

from vicireg_grammar import RegistrationError, parse_registration

# Each vector from channels/sip/config_parser.c with the fields Asterisk's test asserts.
# (callback -> extension, regdomain -> domain, regdomainport -> domain_port, portno -> port)
ASTERISK_VECTORS = [
    ("name@domain", dict(extension="s", username="name", domain=None, host="domain", authuser=None,
                         secret=None, peer=None, transport="udp", expiry=None, port=5060, domain_port=None)),
    ("name:pass@domain", dict(extension="s", username="name", domain=None, host="domain", authuser=None,
                              secret="pass", peer=None, transport="udp", expiry=None, port=5060)),
    ("name@namedomain:pass:authuser@domain",
     dict(extension="s", username="name", domain="namedomain", host="domain", authuser="authuser",
          secret="pass", peer=None, transport="udp", expiry=None, port=5060, domain_port=None)),
    ("name@namedomain:pass:authuser@domain/extension",
     dict(extension="extension", username="name", domain="namedomain", host="domain",
          authuser="authuser", secret="pass", transport="udp", port=5060)),
    ("tcp://name@namedomain:pass:authuser@domain/extension",
     dict(extension="extension", username="name", domain="namedomain", host="domain",
          authuser="authuser", secret="pass", transport="tcp", port=5060, expiry=None)),
    ("tls://name@namedomain:pass:authuser@domain/extension~111",
     dict(extension="extension", username="name", domain="namedomain", host="domain",
          authuser="authuser", secret="pass", transport="tls", port=5061, expiry=111)),
    ("peer?tcp://name@namedomain:pass:authuser@domain:1234/extension~111",
     dict(extension="extension", username="name", domain="namedomain", host="domain",
          authuser="authuser", secret="pass", peer="peer", transport="tcp", port=1234, expiry=111)),
    ("peer?name@namedomain:pass:authuser@domain:1234/extension~111",
     dict(extension="extension", username="name", domain="namedomain", host="domain",
          authuser="authuser", secret="pass", peer="peer", transport="udp", port=1234, expiry=111)),
    ("name@namedomain:4321:pass:authuser@domain",
     dict(extension="s", username="name", domain="namedomain", host="domain", authuser="authuser",
          secret="pass", peer=None, transport="udp", port=5060, domain_port=4321)),
    ("name@namedomain:4321::@domain",
     dict(extension="s", username="name", domain="namedomain", host="domain", authuser=None,
          secret=None, peer=None, transport="udp", port=5060, domain_port=4321)),
    # Asterisk's sip.conf.sample: the host may be a peer defined in sip.conf.
    ("2345:password@sip_proxy/1234", dict(username="2345", secret="password", host="sip_proxy",
                                          extension="1234", port=5060)),
    ("3456@mydomain:5082::@mysipprovider.com",
     dict(username="3456", domain="mydomain", domain_port=5082, secret=None, authuser=None,
          host="mysipprovider.com", port=5060)),
]

ASTERISK_FAILURES = [
    "peer?name:pass:authuser:1234/extension~111",  # test 9: no '@', missing domain
    "@domin:1234",  # test 10: missing user
]


@pytest.mark.parametrize("value,expected", ASTERISK_VECTORS, ids=[v for v, _ in ASTERISK_VECTORS])
def test_asterisk_unit_vectors(value, expected):
    got = parse_registration(value)
    for key, want in expected.items():
        assert got[key] == want, key


@pytest.mark.parametrize("value", ASTERISK_FAILURES)
def test_asterisk_refused_vectors(value):
    with pytest.raises(RegistrationError):
        parse_registration(value)


def test_result_has_exactly_the_public_fields_with_plain_types():
    got = parse_registration("register => peer?tls://u@d:5080:s:a@h:5070/100~60")
    assert set(got) == {"protocol", "peer", "transport", "username", "domain", "domain_port",
                        "secret", "authuser", "host", "port", "port_given", "extension", "expiry"}
    for key, value in got.items():
        assert value is None or type(value) in ((bool,) if key == "port_given" else (str, int)), key


@pytest.mark.parametrize("prefix", ["", "register => ", "register=>", "  register   =>   ", "REGISTER => ",
                                    "register = ", "register=> "])
def test_prefix_with_any_spacing(prefix):
    got = parse_registration(prefix + "1234:pw@carrier.example:5080")
    assert (got["username"], got["secret"], got["host"], got["port"]) == ("1234", "pw", "carrier.example", 5080)


def test_escaped_semicolon_is_part_of_the_secret():
    assert parse_registration(r"user:pa\;ss@host")["secret"] == "pa;ss"


def test_quoted_fields_lose_their_quotes_as_in_ast_strip_quoted():
    got = parse_registration('"user":"pa:ss"@host')
    assert (got["username"], got["secret"]) == ("user", "pa:ss")


def test_secret_may_hold_at_sign_because_host_starts_after_the_last_at():
    got = parse_registration("user:p@ss@host")
    assert (got["secret"], got["host"]) == ("p@ss", "host")


def test_ipv6_host_stays_bracketed():
    got = parse_registration("user:pw@[2001:db8::1]:5070", "pjsip")
    assert (got["host"], got["port"]) == ("[2001:db8::1]", 5070)


def test_default_ports_per_transport_and_protocol():
    assert parse_registration("u:p@h")["port"] == 5060
    assert parse_registration("tcp://u:p@h")["port"] == 5060
    assert parse_registration("TLS://u:p@h")["port"] == 5061
    assert parse_registration("TLS://u:p@h")["transport"] == "tls"
    assert parse_registration("u:p@h", "iax2")["port"] == 4569


IAX2_VECTORS = [
    ("user:secret@iax.example", dict(username="user", secret="secret", host="iax.example", port=4569)),
    ("user@iax.example:4570", dict(username="user", secret=None, host="iax.example", port=4570)),
    ("register => user:[mykey]@10.1.2.3", dict(username="user", secret="[mykey]", host="10.1.2.3")),
]


@pytest.mark.parametrize("value,expected", IAX2_VECTORS)
def test_iax2_form(value, expected):
    got = parse_registration(value, "iax2")
    assert got["protocol"] == "iax2" and got["transport"] is None and got["expiry"] is None
    for key, want in expected.items():
        assert got[key] == want, key
