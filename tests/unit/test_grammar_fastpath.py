"""The one-regex fast path and the faithful splitter must give the same verdict and message."""
from hypothesis import given, settings
from hypothesis import strategies as st

import vicireg_grammar as grammar

PIECES = st.lists(st.sampled_from([
    "user", "1234", "sip", "SIP", "peer", "pw", "s3cr%t", "auth", "dom.example", "host.example",
    "10.1.2.3", "300.1.2.3", "5060", "99999", "0", "abc", "100", "120", "tcp", "TLS", "ws",
    "@", ":", "::", "?", "/", "//", "~", ";", "\\;", '"', "[", "]", "(", "-", "_", ".", "",
    "register => ", "=", "#", "*",
    # characters Asterisk's splitter treats specially, now accepted where it reads them as written
    ")", "\\", "\\x", '""', "'", "!", "$", "%", "(pa)", "[::1]", "udp://", "user/name", "\\\\;",
]), min_size=1, max_size=14)


def outcome(value, protocol, fast):
    try:
        return ("ok",) + tuple(grammar._parse(value, protocol, fast=fast))
    except grammar.RegistrationError as exc:
        return ("error", str(exc), exc.column, exc.suggestion)


@settings(max_examples=3000, deadline=None)
@given(pieces=PIECES, protocol=st.sampled_from(["sip", "pjsip"]))
def test_fast_path_agrees_with_faithful_parser(pieces, protocol):
    value = "".join(pieces)
    assert outcome(value, protocol, True) == outcome(value, protocol, False)


def test_fast_path_is_taken_for_plain_strings():
    ctx, body = grammar._prepare("1234:pw@carrier.example:5060/1234~300", "sip")
    assert grammar._fast_sip(ctx, body, "sip") is not None
