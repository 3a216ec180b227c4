"""What Asterisk reads as written is accepted; only where it would misread is the string refused.

chan_sip's splitter (__ast_app_separate_args, remove_chars=0) does not cut inside (...), [...] or
"...", skips the character after a backslash, and ast_strip_quoted drops one pair of quotes around
a field.  A secret holding such characters is read as written unless one of them changes a cut.
"""
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vicireg_grammar import RegistrationError, parse_registration, registration_line

# (value, protocol, fields Asterisk reads)
READ_AS_WRITTEN = [
    ("name:pa(ss@host", "sip", dict(username="name", secret="pa(ss")),
    ("name:pa)ss@host", "sip", dict(secret="pa)ss")),
    ("name:[pass]@host", "sip", dict(secret="[pass]")),
    ("name:pass]@host", "sip", dict(secret="pass]")),
    ('name:pa"ss@host', "sip", dict(secret='pa"ss')),
    ('name:"pass@host', "sip", dict(secret='"pass')),
    (r"user:pw\x@host", "sip", dict(secret="pw\\x")),
    (r"user:pw\\;x@host", "sip", dict(secret="pw\\;x")),  # the config reader keeps one backslash
    ("name:(pa)ss:auth@host", "sip", dict(secret="(pa)ss", authuser="auth")),  # closed before ':'
    ("udp://user/name:pw@host", "sip", dict(username="user/name", secret="pw", transport="udp")),
    ("tcp://user/name:pw@host", "sip", dict(username="user/name", transport="tcp")),
    # Asterisk's documented quoting, where the secret needs it
    ('user:"pa:ss"@host', "sip", dict(secret="pa:ss")),
    ('user:"[pa:ss]"@host', "sip", dict(secret="[pa:ss]")),
    ('user:"pa?ss"@host', "sip", dict(secret="pa?ss", peer=None)),
    ('user:""pass""@host', "sip", dict(secret='"pass"')),
    ('"user":"pa:ss"@host', "sip", dict(username="user", secret="pa:ss")),
    ("user@[2001:db8::1]:pw@host", "sip", dict(domain="[2001:db8::1]", secret="pw")),
    ('user:a@"b"@host', "sip", dict(secret='a@"b"')),  # the quotes keep no delimiter whole
    ('"peer"?user:"a:b":auth@host', "sip", dict(peer="peer", secret="a:b", authuser="auth")),
    # chan_iax2: strsep at the first '@', then ':'; nothing else is special
    ('user:pa"ss@host', "iax2", dict(secret='pa"ss')),
    ("user:pa(ss]@host", "iax2", dict(secret="pa(ss]")),
    ("user:pass]@host", "iax2", dict(secret="pass]")),
    (r"user:pw\x@host", "iax2", dict(secret="pw\\x")),
    ("user:pa?s/s~x@host", "iax2", dict(secret="pa?s/s~x")),
    ("user:[rsakey]@host", "iax2", dict(secret="[rsakey]")),
]


@pytest.mark.parametrize("value,protocol,fields", READ_AS_WRITTEN, ids=[c[0] for c in READ_AS_WRITTEN])
def test_secret_asterisk_reads_as_written_is_accepted(value, protocol, fields):
    got = parse_registration(value, protocol)
    for key, want in fields.items():
        assert got[key] == want, key
    line = registration_line(value, protocol)
    assert parse_registration(line, protocol) == got


SECRET = "Zq7SECRETx"
# (value, protocol, message pattern, column of the character responsible)
MISREAD = [
    ("user:pa(ss:auth@host", "sip", r"a '\(' at column 8 keeps Asterisk's splitter from splitting "
                                    r"inside '\(\.\.\.\)', so not at the ':' at column 11", 8),
    ("user:[pa:ss]@host", "sip", r"a '\[' at column 6 keeps .*inside '\[\.\.\.\]', so not at the ':' "
                                 r"at column 9", 6),
    ('user:pa"ss:auth@host', "sip", r"a '\"' at column 8 starts a quoted part .* so it does not split at "
                                    r"the ':' at column 11", 8),
    ('user:pa"ss?x@host', "sip", r"a '\"' at column 8 starts a quoted part .*split at the '\?' at "
                                 r"column 11", 8),
    ('user:"pa"s:s"@host', "sip", r"a '\"' at column 9 ends a quoted or bracketed part early .* splits at "
                                  r"the ':' at column 11", 9),
    # quotes (or an [IPv6] address) protect a whole field only, not a part after '@', '?', '/' or '~'
    ('user:a@"b:c"@host', "sip", r"a '\"' at column 8 starts a quoted part that is not a whole field: "
                                 r"Asterisk's splitter does not split at the ':' at column 10", 8),
    ('peer?user:a?"b:c"@host', "sip", r"a '\"' at column 13 starts a quoted part that is not a whole", 13),
    ('user:a~"b:c"@host', "sip", r"a '\"' at column 8 starts a quoted part that is not a whole", 8),
    ("user:a@[::1]:x@host", "sip", r"a '\[' at column 8 starts a bracketed part that is not a whole", 8),
    ("pe(er?user:pw@host", "sip", r"a '\(' at column 3 keeps .*not at the '\?' at column 6", 3),
    ("user:pw@host(x:5060)", "sip", r"a '\(' at column 13 keeps .*not at the ':' at column 15", 13),
    (r"user:pw\:auth@host", "sip", r"a '\\' at column 8 makes Asterisk's splitter skip the ':' at column 9 "
                                   r"instead of splitting there", 8),
    (r"user:pw\?x@host", "sip", r"a '\\' at column 8 makes Asterisk's splitter skip the '\?'", 8),
    ("user:pw\\@host", "sip", r"a '\\' at the end of a field: Asterisk's splitter skips the character after "
                              r"it and reads on past the field's end", 8),
    ('user:"pass"@host', "sip", r"a secret in double quotes that it does not need", 6),
    ('user:""@host', "sip", r"a secret in double quotes that it does not need", 6),
    (r'user:"pa\;ss"@host', "sip", r"a secret in double quotes that it does not need", 6),
    ('user:"@host', "sip", r"a lone '\"' as the secret", 6),
    ('user:pw:"@host', "sip", r"a lone '\"' as the auth user", 9),
    ('user:"%s"@host' % SECRET, "iax2", r"chan_iax2 does not strip them", 6),
    ("user:[%s@host" % SECRET, "iax2", r"RSA key name and drops its last character", 6),
    ("user:abc@%s@host" % SECRET, "iax2", r"a second '@': chan_iax2 splits at the first '@'", 20),
    ("user:p:%s@host" % SECRET, "iax2", r"more than one ':' before '@'", 7),
]


@pytest.mark.parametrize("value,protocol,pattern,column", MISREAD, ids=[c[0] for c in MISREAD])
def test_only_a_misread_is_refused_naming_character_and_column(value, protocol, pattern, column):
    with pytest.raises(RegistrationError) as info:
        parse_registration(value, protocol)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert info.value.column == column, message
    assert SECRET not in message


def test_slash_in_user_without_transport_is_refused_with_udp_suggestion():
    with pytest.raises(RegistrationError) as info:
        parse_registration("user/name:%s@host" % SECRET)
    assert re.search(r"'/' in the user part: Asterisk refuses the line without a transport", str(info.value))
    assert info.value.column == 5
    assert info.value.suggestion == "register => udp://user/name:****@host"
    assert parse_registration("register => udp://user/name:%s@host" % SECRET)["username"] == "user/name"


def test_canonical_line_writes_quotes_and_transport_only_when_needed():
    assert registration_line("user:pa(ss@host") == "register => user:pa(ss@host"
    assert registration_line('user:"pa:ss"@host') == 'register => user:"pa:ss"@host'
    assert registration_line("udp://user/name:pw@host") == "register => udp://user/name:pw@host"
    assert registration_line({"username": "u", "host": "h", "secret": "a/b"}) == 'register => u:"a/b"@h'
    assert registration_line({"username": "u", "host": "h", "secret": '"x"'}) == 'register => u:""x""@h'
    assert registration_line({"username": "u", "host": "h", "secret": "a;b"}) == "register => u:a\\;b@h"


@pytest.mark.parametrize("secret", ['a"b:c', "pa(ss"])
def test_a_secret_asterisk_cannot_be_given_is_refused_by_name(secret):
    # A '"' before a ':' opens Asterisk's quoting however it is written; an unclosed '(' holds the
    # split up to the auth user even inside quotes.
    with pytest.raises(RegistrationError, match="field 'secret' cannot be written") as info:
        registration_line({"username": "u", "host": "h", "secret": secret, "authuser": "x"})
    assert secret[:3] not in str(info.value)


# --- properties -----------------------------------------------------------------------------------

PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7f))
SHAPES = ["user:{}@host", "register => user:{}@host:5070/100~60", "peer?tcp://user@dom.example:{}:auth@host",
          "user@dom.example:5082:{}:auth@host", "udp://us/er:{}@host", 'user:"{}"@host',
          'user:"{}":auth@host', "user:{}"]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.text(alphabet=PRINTABLE, min_size=1, max_size=20), shape=st.sampled_from(SHAPES),
       protocol=st.sampled_from(["sip", "pjsip", "iax2"]))
def test_canonical_line_reads_back_for_any_accepted_secret(secret, shape, protocol):
    value = shape.format(secret)
    try:
        parsed = parse_registration(value, protocol)
    except RegistrationError:
        return
    line = registration_line(value, protocol)
    assert parse_registration(line, protocol) == parsed
    assert registration_line(parsed) == line
    assert registration_line(line, protocol) == line


# Every printable character but those that can hold up a split (and space, refused as a likely paste
# error): a secret of these is always writable, whatever it holds of ':' '?' '/' '@' '~' ';' ')' ']'.
# ('"', '\\', and an unclosed '(' or '[' before ':auth', cannot always be given to chan_sip at all:
# its bracket count ignores quotes.)
WRITABLE = "".join(c for c in PRINTABLE if c not in ' "\\([')


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.text(alphabet=WRITABLE, min_size=1, max_size=20),
       authuser=st.sampled_from([None, "auth"]), transport=st.sampled_from([None, "tcp"]))
def test_any_plain_secret_can_be_written_and_read_back(secret, authuser, transport):
    reg = {"username": "user", "host": "host", "secret": secret, "authuser": authuser, "transport": transport}
    if "=>" in secret or "@@" in secret:
        # refused as a doubled prefix / an empty part, whatever the quoting
        with pytest.raises(RegistrationError, match="field 'secret'"):
            registration_line(reg)
        return
    line = registration_line(reg)
    got = parse_registration(line)
    assert (got["secret"], got["authuser"]) == (secret, authuser)


def test_alphabet_covers_all_printable_ascii():
    assert set(PRINTABLE) >= set(string.punctuation) | set(string.ascii_letters + string.digits + " ")
