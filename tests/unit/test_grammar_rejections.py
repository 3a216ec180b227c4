"""Every string Asterisk would refuse or silently misread is refused, with its own message."""
import re

import pytest

from vicireg_grammar import RegistrationError, parse_registration

SECRET = "Zq7SECRETx"

# (value, protocol, a regex the message must match, the column or None, the suggestion or None)
REJECTIONS = [
    ("user:%s;x@host" % SECRET, "sip", r"unescaped ';' starts a comment", 16, "register => user:****@host"),
    ("user:%s@host:5060;transport=tcp" % SECRET, "sip", r"URI parameters", 26,
     "register => tcp://user:****@host:5060"),
    ("user :%s@host" % SECRET, "sip", r"whitespace \(a space\)", 5, "user:****@host"),
    ("user:%s@ho\tst" % SECRET, "sip", r"whitespace \(a tab\)", 19, None),
    ("user:%s@host\x07" % SECRET, "sip", r"control character U\+0007", 21, None),
    ("\u201cuser\u201d:%s@host" % SECRET, "sip", r"look-alike U\+201C .*looks like '\"'", 1, None),
    ("user:%s@host\u00a0" % SECRET, "sip", r"look-alike U\+00A0 \(NO-BREAK SPACE\)", 21, "user:****@host"),
    ("user:%s@h\u00f6st" % SECRET, "sip", r"non-ASCII character U\+00F6", 18, None),
    (":%s@host" % SECRET, "sip", r"an empty user", None, None),
    ("user:%s@" % SECRET, "sip", r"an empty host", None, None),
    ("user:%s@host:99999" % SECRET, "sip", r"port 99999 is not in 1-65535 \(Asterisk silently uses 5060\)",
     22, None),
    ("user:%s@host:0" % SECRET, "sip", r"port 0 is not in 1-65535", 22, None),
    ("user:%s@host:abc" % SECRET, "sip", r"port 'abc' is not a number", 22, None),
    ("user:%s@host:" % SECRET, "sip", r"an empty port", 22, None),
    ("user:%s@host:5060:5070" % SECRET, "sip", r"a second port", 26, None),
    ("user:%s@host~" % SECRET, "sip", r"an empty expiry", 22, None),
    ("user:%s@host~abc" % SECRET, "sip", r"expiry 'abc' is not a number", 22, None),
    ("ws://user:%s@host" % SECRET, "sip", r"transport 'ws' is not udp, tcp or tls", 1, None),
    ("sctp://user:%s@host" % SECRET, "sip", r"transport 'sctp' is not udp, tcp or tls", 1, None),
    ("sip:user:%s@host" % SECRET, "sip", r"pasted URI scheme 'sip:'", 1, "user:****@host"),
    ("sips:user:%s@host" % SECRET, "sip", r"pasted URI scheme 'sips:'", 1, "user:****@host"),
    ("register => register => user:%s@host" % SECRET, "sip", r"doubled 'register =>'", 13,
     "register => user:****@host"),
    ("user:%s@@host" % SECRET, "sip", r"'@@'", 16, "user:****@host"),
    ("user:%s@300.1.2.3" % SECRET, "sip", r"IPv4 host '300.1.2.3' has a number over 255", 17, None),
    ("user:%s@10.1.2" % SECRET, "sip", r"does not have four numbers", 17, None),
    ("user:%s@-bad.example" % SECRET, "sip", r"invalid label '-bad'", 17, None),
    ("user:%s@bad..example" % SECRET, "sip", r"invalid label '\(empty\)'", 21, None),
    ("?user:%s@host" % SECRET, "sip", r"an empty peer name", 1, None),
    ("user@:%s@host" % SECRET, "sip", r"an empty domain", 6, None),
    ("user:%s@host" % SECRET + "x" * 240, "sip", r"at most 255", 256, None),
    ("user:%s@host\nregister => x:y@z" % SECRET, "sip", r"a line break", 21, None),
    ("tcp://user:%s@host/100/200" % SECRET, "sip", r"not allowed in the extension", None, None),
    ("user:%s@host/" % SECRET, "sip", r"an empty extension", 22, None),
    ("user:pa(ss:auth@host", "sip", r"'\(' at column 8 keeps .*not at the ':' at column 11", 8, None),
    ("user:%s\\:x@host" % SECRET, "sip", r"'\\' at column 16 makes Asterisk's splitter skip the ':'", 16,
     None),
    ("user/x:%s@host" % SECRET, "sip", r"'/' in the user part", 5, "register => udp://user/x:****@host"),
    ("tcp:/user:%s@host" % SECRET, "sip", r"'/' in the user part|malformed transport", None, None),
    ("user:%s@host:5060" % SECRET + "=>", "sip", r"stray '=>'", None, None),
    # the domain port lies where a mistyped secret would: masked like it
    ("user@dom:5082x::@host", "sip", r"domain port '\*\*\*\*' is not a number", 10, None),
    # IAX2
    ("tcp://user:%s@host" % SECRET, "iax2", r"a transport: IAX2", 4, None),
    ("user:%s@host/100" % SECRET, "iax2", r"an extension: IAX2", 21, None),
    ("user:%s@host~60" % SECRET, "iax2", r"an expiry: IAX2", 21, None),
    ("user:%s@[2001:db8::1]" % SECRET, "iax2", r"bracketed IPv6 host: chan_iax2 cannot parse", 17, None),
    ("user:%s@host:" % SECRET, "iax2", r"an empty port", None, None),
    ("user:p@ss@host", "iax2", r"a second '@'", 10, None),
    ("", "sip", r"empty registration string", None, None),
    ("register => ", "sip", r"empty registration string", None, None),
]


@pytest.mark.parametrize("value,protocol,pattern,column,suggestion", REJECTIONS,
                         ids=["%d" % i for i in range(len(REJECTIONS))])
def test_rejection_message(value, protocol, pattern, column, suggestion):
    with pytest.raises(RegistrationError) as info:
        parse_registration(value, protocol)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert SECRET not in message
    assert "\n" not in message
    if column is not None:
        assert info.value.column == column, message
        assert ", column %d: " % column in message
    if suggestion is not None:
        assert info.value.suggestion == suggestion, message
        assert repr(suggestion) in message


def test_messages_name_the_expected_form():
    with pytest.raises(RegistrationError, match=re.escape("[peer?][transport://]user[@domain]")):
        parse_registration("user:pw@host:99999")
    with pytest.raises(RegistrationError, match=re.escape("user[:secret]@host[:port]")):
        parse_registration("user:pw@host~60", "iax2")


def test_secret_with_semicolon_suggests_the_escape_and_masks():
    with pytest.raises(RegistrationError) as info:
        parse_registration("1234:ab;cd@carrier.example")
    assert "'\\\\;'" in str(info.value) or "\\;" in str(info.value)
    assert "ab;cd" not in str(info.value) and "ab" not in info.value.suggestion


def test_wrong_types_and_protocols():
    with pytest.raises(RegistrationError, match="must be a string, got int"):
        parse_registration(5060)
    with pytest.raises(RegistrationError, match="protocol must be one of"):
        parse_registration("u:p@h", "h323")
