# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The registration-string grammar: one module, reused by the filters, the CLI and the modules.

It reads a ``register =>`` value exactly as Asterisk does and refuses what Asterisk would silently
misread.  chan_sip (``channels/sip/config_parser.c``, ``sip_parse_register_line``) splits the value
with ``AST_NONSTANDARD_RAW_ARGS``: at the LAST ``@``, then ``?`` (peer), ``/`` (transport, at most
three fields), ``:`` (secret, authuser), ``~`` (expiry), ``/`` (extension), ``:`` (port), ``@``
(domain) and ``:`` again (domain port, with the field reordering chan_sip does).  The splitter does
not cut inside ``(...)``, ``[...]`` or ``"..."`` and skips the character after a backslash; each
field then loses one pair of surrounding double quotes.  chan_iax2 (``iax2_register``) uses
``strsep``: FIRST ``@``, then ``:``.  Config files end a value at an unescaped ``;`` (a comment).

Pure Python (3.6+, it also runs on the dialers inside Ansible modules), no Ansible import: errors
are :class:`RegistrationError` (a ``ValueError``); the Ansible filter turns them into
``AnsibleFilterError``.  Messages never contain the secret.
"""
from __future__ import absolute_import, division, print_function

import functools
import ipaddress
import re
import unicodedata

__metaclass__ = type

PROTOCOLS = ("sip", "pjsip", "iax2")
TRANSPORTS = ("udp", "tcp", "tls")
MASK = "****"
# VICIdial's registration_string column is VARCHAR(255); Asterisk copies at most 255 characters.
MAX_LENGTH = 255
SIP_FORM = "[peer?][transport://]user[@domain][:secret[:authuser]]@host[:port][/extension][~expiry]"
IAX2_FORM = "user[:secret]@host[:port]"
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
IAX2_PORT = 4569

_PREFIX = re.compile(r"\s*register\s*=>?\s*", re.IGNORECASE)
_REGISTER_AGAIN = re.compile(r"register\s*=>?", re.IGNORECASE)
# Printable ASCII without space: anything else is diagnosed character by character.
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")
# One search decides whether the slower character checks are needed at all.
_SUSPECT = re.compile(r"[^\x21-\x7e]|[;\\]|=>|@@")
_SPLIT_SPECIAL = re.compile(r'[()\[\]"\\]')
_TRANSPORT = re.compile(r"(udp|tcp|tls):", re.IGNORECASE)
_SCHEME = re.compile(r"sips?:", re.IGNORECASE)
_URI_PARAM = re.compile(r"(transport|user|lr|maddr|ttl|method)=?", re.IGNORECASE)
_URI_TRANSPORT = re.compile(r";transport=(udp|tcp|tls)(?=;|$)", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_USER = re.compile(r"[A-Za-z0-9_.!~*'&=+$,%#-]+")
_PEER = re.compile(r"[A-Za-z0-9_.+-]+")
_EXTENSION = re.compile(r"[A-Za-z0-9_+*#.-]+")
# A secret may hold any printable ASCII but the characters that change how Asterisk splits.
_SECRET_BAD = re.compile(r'[()\[\]"\\]')
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]")

_LOOKALIKES = {
    u"\u00a0": "", u"\u2007": "", u"\u202f": "", u"\u200b": "", u"\u2060": "", u"\ufeff": "",
    u"\u2018": "'", u"\u2019": "'", u"\u201a": "'", u"\u201c": '"', u"\u201d": '"', u"\u201e": '"',
    u"\u2010": "-", u"\u2011": "-", u"\u2012": "-", u"\u2013": "-", u"\u2014": "-", u"\u2212": "-",
    u"\uff1a": ":", u"\uff20": "@", u"\uff0f": "/", u"\uff1f": "?", u"\u2044": "/",
}


class RegistrationError(ValueError):
    """A registration string Asterisk would refuse or misread.  The message never holds the secret."""

    def __init__(self, message, column=None, suggestion=None):
        super(RegistrationError, self).__init__(message)
        self.column = column
        self.suggestion = suggestion


class _Context:
    """The original text and where its body starts, to report columns and masked copies."""

    __slots__ = ("value", "protocol", "start", "cols")

    def __init__(self, value, protocol, start):
        self.value = value
        self.protocol = protocol
        self.start = start
        self.cols = None  # body index -> value index, when '\;' escapes shifted them

    def column(self, body_index):
        if body_index is None:
            return None
        if self.cols is not None:
            if body_index >= len(self.cols):
                return len(self.value) + 1
            return self.cols[body_index] + 1
        return self.start + body_index + 1

    def fail(self, what, body_index=None, suggestion=None, column=None):
        col = column if column is not None else self.column(body_index)
        where = ", column %d" % col if col else ""
        form = IAX2_FORM if self.protocol == "iax2" else SIP_FORM
        region = _mask_region(self.value, self.protocol, self.start)
        text = "%r%s: %s; expected %s" % (_apply_mask(self.value, region), where, what, form)
        masked_suggestion = None
        if suggestion is not None:
            masked_suggestion = mask_text(suggestion, self.protocol)
            text += "; did you mean %r?" % masked_suggestion
        # Last guard: no run of the masked region may survive into a message.
        if region is not None and region[1] - region[0] >= 3:
            secret = self.value[region[0]:region[1]]
            if secret in text:
                text = text.replace(secret, MASK)
        raise RegistrationError(text, col, masked_suggestion)


def _mask_region(text, protocol, begin=None):
    """Span (start, end) of text that may hold the secret, for masking a string that may not parse.

    Conservative: from the first ':' of the user part (not a transport's '://', not a pasted
    'sip:' scheme when another ':' follows) to the '@' before the host; to the end without '@'.
    """
    if begin is None:
        m = _PREFIX.match(text)
        begin = m.end() if m else 0
    at = text.find("@", begin) if protocol == "iax2" else text.rfind("@")
    end = at if at >= begin else len(text)
    q = text.find("?", begin, end)
    if q >= 0 and protocol != "iax2":
        begin = q + 1
    t = text.find("://", begin, end)
    if t >= 0:
        begin = t + 3
    s = _SCHEME.match(text, begin)
    if s and text.find(":", s.end(), end) >= 0:
        begin = s.end()
    colon = text.find(":", begin, end)
    if colon < 0:
        return None
    return colon + 1, end


def mask_text(text, protocol="sip"):
    """The text with whatever may be the secret replaced by ****, for any input, valid or not."""
    return _apply_mask(text, _mask_region(text, protocol))


def _apply_mask(text, region):
    if region is None or region[0] == region[1]:
        return text
    return text[:region[0]] + MASK + text[region[1]:]


def _describe(ch):
    try:
        name = unicodedata.name(ch)
    except ValueError:
        name = "control character"
    return "U+%04X (%s)" % (ord(ch), name)


def _check_characters(ctx, body, base):
    """Diagnose the first character that is not printable ASCII (body[base:] relates to value)."""
    m = _NOT_PRINTABLE.search(body)
    ch = m.group()
    idx = m.start()
    col = base + idx + 1
    fixed_value = ctx.value
    if ch in _LOOKALIKES:
        fixed_value = "".join(_LOOKALIKES.get(c, c) for c in ctx.value)
        repl = _LOOKALIKES[ch]
        looks = "looks like %r" % repl if repl else "is invisible"
        what = "non-ASCII look-alike %s, which %s but is not that character" % (_describe(ch), looks)
    elif ch in " \t":
        fixed_value = ctx.value[:base] + re.sub(r"[ \t]", "", body)
        what = "whitespace (%s) inside a field: Asterisk keeps it as part of the value" % (
            "a space" if ch == " " else "a tab")
    elif ord(ch) > 0x7e and ord(ch) != 0x7f:
        what = "non-ASCII character %s" % _describe(ch)
        fixed_value = None
    else:
        what = "control character %s" % _describe(ch)
        fixed_value = None
    ctx.fail(what, suggestion=fixed_value if fixed_value != ctx.value else None, column=col)


def _strip_prefix(ctx, value):
    """The value without 'register =>' and surrounding blanks (ctx.start: where it begins)."""
    m = _PREFIX.match(value) if value[:1] in "rR \t\n\r\x0b\x0c" else None
    start = m.end() if m else len(value) - len(value.lstrip(" \t"))
    body = value[start:].rstrip(" \t")
    ctx.start = start
    again = _REGISTER_AGAIN.match(body) if body[:8].lower() == "register" else None
    if again:
        rest = body[again.end():].lstrip(" \t")
        ctx.fail("a doubled 'register =>': Asterisk would register as user 'register => ...'",
                 0, suggestion="register => " + rest)
    return body


def _unescape(ctx, body):
    """Apply the config file's comment rule: '\\;' is a literal ';', a bare ';' ends the value."""
    i = body.find(";")
    while i >= 0:
        if i == 0 or body[i - 1] != "\\":
            _fail_semicolon(ctx, body, i)
        i = body.find(";", i + 1)
    j = body.find("\\")
    while j >= 0:
        if body[j + 1:j + 2] != ";":
            ctx.fail("a backslash that does not escape ';': Asterisk keeps it in the value and it "
                     "changes how the line is split", j)
        j = body.find("\\", j + 2)
    cols = []
    out = []
    k = 0
    while k < len(body):
        if body[k] == "\\":
            k += 1
        cols.append(ctx.start + k)
        out.append(body[k])
        k += 1
    ctx.cols = cols
    return "".join(out)


def _fail_semicolon(ctx, body, i):
    at = body.rfind("@")
    tail = body[i + 1:]
    if i > at >= 0 or _URI_PARAM.match(tail):
        m = _URI_TRANSPORT.search(body)
        suggestion = None
        if m and ctx.protocol != "iax2":
            stripped = body[:m.start()] + body[m.end():]
            if ";" not in stripped:
                suggestion = "register => %s://%s" % (m.group(1).lower(), _drop_transport(stripped))
        elif ";" not in body[:i]:
            suggestion = "register => " + body[:i]
        ctx.fail("URI parameters (';%s') are not part of a register line: ';' starts a comment and "
                 "Asterisk ignores the rest; give the transport as 'tcp://' or 'tls://' in front"
                 % tail.split(";")[0].split("=")[0], i, suggestion=suggestion)
    ctx.fail("an unescaped ';' starts a comment: Asterisk reads the line only up to here; "
             "write a ';' that belongs to the secret as '\\;'", i,
             suggestion="register => " + body.replace(";", "\\;"))


def _drop_transport(body):
    m = _TRANSPORT.match(body[body.find("?") + 1:] if "?" in body.split("@")[0] else body)
    if m and "://" in body:
        return body.replace(body[body.find(m.group()):body.find("://") + 3], "", 1)
    return body


def _separate(text, delim, maxargs):
    """__ast_app_separate_args(text, delim, remove_chars=0, ..., maxargs) as (start, end) spans."""
    if not text:
        return []
    if _SPLIT_SPECIAL.search(text) is None:
        spans = []
        pos = 0
        for part in text.split(delim, maxargs - 1):
            spans.append((pos, pos + len(part)))
            pos += len(part) + 1
        return spans
    spans = []
    n = len(text)
    scan = 0
    paren = bracket = quote = 0
    wasdelim = -1
    while scan < n and len(spans) < maxargs - 1:
        begin = scan
        closed = False
        while scan < n:
            c = text[scan]
            if c == "(":
                paren += 1
            elif c == ")":
                if paren:
                    paren -= 1
            elif c == "[":
                bracket += 1
            elif c == "]":
                if bracket:
                    bracket -= 1
            elif c == '"' and delim != '"':
                quote ^= 1
            elif c == "\\":
                scan += 1
            elif c == delim and not paren and not quote and not bracket:
                wasdelim = scan
                spans.append((begin, scan))
                scan += 1
                closed = True
                break
            scan += 1
        if not closed:
            spans.append((begin, min(scan, n)))
            return spans
    if scan < n or (scan > 0 and scan - 1 == wasdelim):
        spans.append((scan, n))
    return spans


class _Field:
    """One field as Asterisk cut it: the text and its index in the body (for columns)."""

    __slots__ = ("text", "pos")

    def __init__(self, text, pos):
        self.text = text
        self.pos = pos


def _fields(base, text, delim, count):
    """Asterisk's split of text into at most count fields (None for the missing ones)."""
    out = [_Field(text[a:b], base + a) for a, b in _separate(text, delim, count)]
    return out + [None] * (count - len(out))


def _stripq(field):
    """ast_strip_quoted(field, '"', '"'): one pair of surrounding double quotes goes."""
    if field is None:
        return None
    t = field.text
    if len(t) >= 1 and t[0] == '"' and t[-1] == '"':
        return _Field(t[1:-1], field.pos + (1 if len(t) > 1 else 0))
    return field


def _check_port(ctx, field, what, default_note):
    t = field.text
    if t == "":
        ctx.fail("an empty %s after ':' (Asterisk silently uses %s)" % (what, default_note), field.pos)
    if ":" in t:
        ctx.fail("a second port ':%s' after the %s (Asterisk reads only the first)"
                 % (t.split(":", 1)[1], what), field.pos + t.index(":"))
    if not _DIGITS.fullmatch(t):
        ctx.fail("%s %r is not a number (Asterisk silently uses %s)" % (what, t, default_note), field.pos)
    port = int(t)
    if not 1 <= port <= 65535:
        ctx.fail("%s %s is not in 1-65535 (Asterisk silently uses %s)" % (what, t, default_note), field.pos)
    return port


def _check_expiry(ctx, field):
    t = field.text
    if t == "":
        ctx.fail("an empty expiry after '~' (Asterisk reads it as 0)", field.pos)
    if not _DIGITS.fullmatch(t):
        ctx.fail("expiry %r is not a number of seconds (Asterisk reads it as 0)" % t, field.pos)
    expiry = int(t)
    if not 1 <= expiry <= 2147483647:
        ctx.fail("expiry %s is out of range (1 to 2147483647 seconds)" % t, field.pos)
    return expiry


def _check_host(ctx, field, what, allow_ipv6=True):
    t = field.text
    if t == "":
        ctx.fail("an empty %s" % what, field.pos)
    if t.startswith("["):
        m = _IPV6.fullmatch(t)
        if not allow_ipv6:
            ctx.fail("a bracketed IPv6 %s: chan_iax2 cannot parse it; use a host name" % what, field.pos)
        if not m:
            ctx.fail("a malformed bracketed IPv6 %s" % what, field.pos)
        try:
            ipaddress.IPv6Address(m.group(1))
        except ValueError:
            ctx.fail("%r is not a valid IPv6 address" % t, field.pos)
        return t
    if _SCHEME.match(t):
        ctx.fail("a pasted URI scheme '%s' in front of the %s" % (t.split(":")[0] + ":", what), field.pos,
                 suggestion=None)
    if len(t) > 253:
        ctx.fail("a %s name longer than 253 characters" % what, field.pos)
    labels = t.split(".")
    if all(label.isdigit() for label in labels if label) and any(labels):
        if len(labels) != 4 or not all(labels):
            ctx.fail("%s %r looks like an IPv4 address but does not have four numbers" % (what, t), field.pos)
        for k, label in enumerate(labels):
            if int(label) > 255:
                col = field.pos + sum(len(x) + 1 for x in labels[:k])
                ctx.fail("IPv4 %s %r has a number over 255" % (what, t), col)
        return t
    pos = field.pos
    for label in labels:
        if not _LABEL.fullmatch(label):
            bad = label if label else "(empty)"
            ctx.fail("%s %r has an invalid label %r (letters, digits, '-' and '_'; no leading or "
                     "trailing '-', at most 63 characters)" % (what, t, bad), pos)
        pos += len(label) + 1
    return t


def _check_chars(ctx, field, pattern, what):
    m = pattern.fullmatch(field.text)
    if m is None:
        for k, ch in enumerate(field.text):
            if not pattern.fullmatch(ch):
                ctx.fail("a character %r that is not allowed in the %s" % (ch, what), field.pos + k)
    return field.text


def _check_secret(ctx, field):
    m = _SECRET_BAD.search(field.text)
    if m:
        ctx.fail("a %r in the secret: Asterisk's splitter treats it specially, so the secret would be "
                 "misread" % m.group(), field.pos + m.start())
    return field.text


def _prepare(value, protocol):
    if protocol not in PROTOCOLS:
        raise RegistrationError("protocol must be one of %s, got %r" % (", ".join(PROTOCOLS), protocol))
    protocol = PROTOCOLS[PROTOCOLS.index(protocol)]  # a plain str, also for tagged template values
    if not isinstance(value, str):
        raise RegistrationError("a registration string must be a string, got %s" % type(value).__name__)
    ctx = _Context(value, protocol, 0)
    for nl in ("\n", "\r"):
        i = value.find(nl)
        if i >= 0:
            ctx.fail("a line break: a register line is one line, and Asterisk reads only up to it",
                     column=i + 1, suggestion=value.replace("\r", "").replace("\n", ""))
    if len(value) > MAX_LENGTH:
        ctx.fail("a string of %d characters: VICIdial's Registration String field and Asterisk keep at "
                 "most %d" % (len(value), MAX_LENGTH), column=MAX_LENGTH + 1)
    body = _strip_prefix(ctx, value)
    if not body:
        raise RegistrationError("an empty registration string: nothing to register (a carrier with IP "
                                "authentication has no registration string)")
    if _SUSPECT.search(body) is None:
        return ctx, body
    if _NOT_PRINTABLE.search(body) is not None:
        _check_characters(ctx, body, ctx.start)
    if "=>" in body:
        ctx.fail("a stray '=>': only one 'register =>' may start the line", body.index("=>"))
    if ";" in body or "\\" in body:
        body = _unescape(ctx, body)
    if "@@" in body:
        ctx.fail("'@@': an empty part between two '@'", body.index("@@"),
                 suggestion=value.replace("@@", "@"))
    return ctx, body


def parse_registration(value, protocol="sip"):
    """Parse a register value as Asterisk reads it; raise RegistrationError on anything it misreads.

    Returns a dict: protocol, peer, transport, username, domain, domain_port, secret, authuser, host,
    port (effective), extension, expiry (None when not given).
    """
    return _parse(value, protocol)[0]


def _parse(value, protocol, fast=True):
    """(parsed dict, (start, end) of the secret in value or None).

    The fast path reads the plain shapes that make up nearly every real string with one regular
    expression; anything it is not sure of goes the faithful way (tests check both agree).
    """
    ctx, body = _prepare(value, protocol)
    found = _fast_sip(ctx, body, protocol) if fast and protocol != "iax2" else None
    if found is not None:
        reg, secret_at = found
    elif protocol == "iax2":
        reg, secret_at = _parse_iax2(ctx, body)
    else:
        reg, secret_at = _parse_sip(ctx, body, protocol)
    span = None
    if secret_at is not None and reg["secret"]:
        first = ctx.column(secret_at) - 1
        last = ctx.column(secret_at + len(reg["secret"]) - 1)
        span = (first, last)
    return reg, span


_U = r"[A-Za-z0-9_.!~*'&=+$,%#-]"
_FAST = re.compile(
    r"(?:(?P<peer>[A-Za-z0-9_.+-]+)\?)?(?:(?P<transport>(?i:udp|tcp|tls))://)?(?P<user>" + _U + r"+)"
    r"(?:@(?P<domain>[A-Za-z0-9_.-]+)(?::(?P<dport>[0-9]+):(?P<dsecret>[^:?/@]*):(?P<dauth>" + _U + r"*))?)?"
    r"(?::(?P<secret>[^:?/@]*)(?::(?P<auth>" + _U + r"*))?)?"
    r"@(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>[^:/~@]*))?(?:/(?P<ext>[A-Za-z0-9_+*#.-]+))?"
    r"(?:~(?P<expiry>[^~@]*))?")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                       r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NUMERIC = re.compile(r"[0-9.]+")


@functools.lru_cache(maxsize=4096)
def _host_ok(host):
    if _NUMERIC.fullmatch(host):
        parts = host.split(".")
        return len(parts) == 4 and all(p and int(p) <= 255 for p in parts)
    return len(host) <= 253 and _HOSTNAME.fullmatch(host) is not None


def _fail_scheme(ctx, body, pos, scheme):
    ctx.fail("a pasted URI scheme %r: Asterisk would register as user %r" % (scheme, scheme[:-1]), pos,
             suggestion=_escape_semicolons(body[:pos] + body[pos + len(scheme):]))


def _fast_sip(ctx, body, protocol):
    """The plain shapes in one regular expression; None when the faithful parser must decide."""
    if _SPLIT_SPECIAL.search(body) is not None:
        return None
    m = _FAST.fullmatch(body)
    if m is None:
        return None
    (peer, transport, user, domain, dport, dsecret, dauth, secret, auth, host, port, ext,
     expiry) = m.groups()
    if dport is not None:
        if secret is not None:
            return None
        secret, auth, dport = dsecret, dauth, int(dport)
        if not 1 <= dport <= 65535:
            return None
        secret_at = m.start(6)
    else:
        secret_at = m.start(8)
        if secret is not None and user.lower() in ("sip", "sips"):
            _fail_scheme(ctx, body, m.start(3), user + ":")
    if not _host_ok(host) or (domain is not None and not _host_ok(domain)):
        return None
    transport = transport.lower() if transport else "udp"
    if port is None:
        port = DEFAULT_PORT[transport]
    elif port.isdigit() and 0 < int(port) < 65536:  # ASCII only: checked before
        port = int(port)
    else:
        # The same checks, in the same order, as the faithful parser: same verdict, same message.
        port = _check_port(ctx, _Field(port, m.start(11)), "port", str(DEFAULT_PORT[transport]))
    if expiry is not None:
        if expiry.isdigit() and 0 < int(expiry) <= 2147483647:
            expiry = int(expiry)
        else:
            expiry = _check_expiry(ctx, _Field(expiry, m.start(13)))
    return {
        "protocol": protocol, "peer": peer, "transport": transport, "username": user,
        "domain": domain, "domain_port": dport, "secret": secret or None, "authuser": auth or None,
        "host": host, "port": port, "extension": ext or "s", "expiry": expiry,
    }, secret_at


def _parse_sip(ctx, body, protocol):
    at = body.rfind("@")
    if at < 0:
        ctx.fail("no '@host': the carrier's host is missing (Asterisk refuses the line)", len(body))
    if at == 0:
        ctx.fail("an empty user before '@'", 0)
    if at == len(body) - 1:
        ctx.fail("an empty host after the last '@'", at + 1)
    userpart = body[:at]
    hostpart = body[at + 1:]
    # peer?rest
    peer_f, rest_f = _fields(0, userpart, "?", 2)
    if rest_f is None or rest_f.text == "":
        if rest_f is not None:
            ctx.fail("nothing after '?': the user is missing after the peer name", rest_f.pos)
        rest_f, peer_f = peer_f, None
    elif peer_f.text == "":
        ctx.fail("an empty peer name before '?'", 0)
    # [transport:]/[blank]/user...
    t_f, blank_f, user_part_f = _fields(rest_f.pos, rest_f.text, "/", 3)
    if user_part_f is None or user_part_f.text == "":
        user_part_f, t_f = t_f, None
    if blank_f is not None and blank_f.text != "":
        if t_f is None:
            ctx.fail("a '/' in the user part (Asterisk refuses the line); a transport goes in front as "
                     "'tcp://'", blank_f.pos - 1)
        ctx.fail("a malformed transport prefix; write 'udp://', 'tcp://' or 'tls://'", t_f.pos)
    if blank_f is not None and t_f is None:
        ctx.fail("a stray '/' at the end of the user part", blank_f.pos - 1)
    transport = "udp"
    if t_f is not None:
        if not _TRANSPORT.fullmatch(t_f.text):
            name = t_f.text[:-1] if t_f.text.endswith(":") else t_f.text
            if not t_f.text.endswith(":") or not name:
                ctx.fail("a malformed transport prefix; write 'udp://', 'tcp://' or 'tls://'", t_f.pos)
            ctx.fail("transport %r is not udp, tcp or tls (Asterisk silently uses udp)" % name, t_f.pos)
        transport = t_f.text[:3].lower()
    if user_part_f.text == "":
        ctx.fail("an empty user", user_part_f.pos)
    scheme = _SCHEME.match(user_part_f.text)
    if scheme:
        _fail_scheme(ctx, body, user_part_f.pos, scheme.group())
    u_f, secret_f, auth_f = _fields(user_part_f.pos, user_part_f.text, ":", 3)
    hp_f, expiry_f = _fields(at + 1, hostpart, "~", 2)
    if hp_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    hp2_f, ext_f = _fields(hp_f.pos, hp_f.text, "/", 2)
    if hp2_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    host_f, port_f = _fields(hp2_f.pos, hp2_f.text, ":", 2)
    if u_f is None:
        ctx.fail("an empty user", user_part_f.pos)
    user_f, domain_f = _fields(u_f.pos, u_f.text, "@", 2)
    domain_port_f = None
    if auth_f is not None:
        a3 = _fields(auth_f.pos, auth_f.text, ":", 2)
        if a3[1] is not None:
            # chan_sip reorders [:domainport]:secret:authuser (see sip_parse_register_line).
            domain_port_f, secret_f, auth_f = secret_f, a3[0], a3[1]
        elif a3[0] is None:
            auth_f = _Field("", auth_f.pos)
    if user_f is None or user_f.text == "":
        ctx.fail("an empty user", u_f.pos)
    user_f = _stripq(user_f)
    username = _check_chars(ctx, user_f, _USER, "user name")
    peer = None
    if peer_f is not None:
        peer = _check_chars(ctx, _stripq(peer_f), _PEER, "peer name")
    domain = None
    if domain_f is not None:
        if domain_f.text == "":
            ctx.fail("an empty domain after '@'", domain_f.pos)
        domain = _check_host(ctx, _stripq(domain_f), "domain")
    domain_port = None
    if domain_port_f is not None:
        domain_port = _check_port(ctx, domain_port_f, "domain port", "the default")
        if domain is None:
            ctx.fail("a domain port without a domain (write user@domain:port::@host)", domain_port_f.pos)
    secret = None
    secret_at = None
    if secret_f is not None:
        secret_f = _stripq(secret_f)
        secret_at = secret_f.pos
        if secret_f.text:
            secret = _check_secret(ctx, secret_f)
    authuser = None
    if auth_f is not None:
        auth_f = _stripq(auth_f)
        if ":" in auth_f.text:
            ctx.fail("too many ':' in the user part", auth_f.pos + auth_f.text.index(":"))
        if auth_f.text:
            authuser = _check_chars(ctx, auth_f, _USER, "auth user")
    if host_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    if _SCHEME.match(host_f.text) and port_f is not None:
        ctx.fail("a pasted URI scheme %r in front of the host" % (host_f.text + ":"), host_f.pos,
                 suggestion=_escape_semicolons(body[:host_f.pos] + body[port_f.pos:]))
    host = _check_host(ctx, _stripq(host_f), "host")
    port = DEFAULT_PORT[transport]
    if port_f is not None:
        port = _check_port(ctx, port_f, "port", str(DEFAULT_PORT[transport]))
    extension = "s"
    if ext_f is not None:
        ext_f = _stripq(ext_f)
        if ext_f.text == "":
            ctx.fail("an empty extension after '/'", ext_f.pos)
        extension = _check_chars(ctx, ext_f, _EXTENSION, "extension")
    expiry = None
    if expiry_f is not None:
        expiry = _check_expiry(ctx, _stripq(expiry_f))
    return {
        "protocol": protocol, "peer": peer, "transport": transport, "username": username,
        "domain": domain, "domain_port": domain_port, "secret": secret, "authuser": authuser,
        "host": host, "port": port, "extension": extension, "expiry": expiry,
    }, secret_at


def _parse_iax2(ctx, body):
    for token, what in (("://", "a transport: IAX2 registrations have none"),
                        ("~", "an expiry: IAX2 registrations have none (refresh is set in iax.conf)"),
                        ("?", "a peer name: IAX2 registrations have none")):
        i = body.find(token)
        if i >= 0:
            ctx.fail(what, i)
    at = body.find("@")
    if at < 0:
        ctx.fail("no '@host': the carrier's host is missing (Asterisk refuses the line)", len(body))
    slash = body.find("/", at)
    if slash >= 0:
        ctx.fail("an extension: IAX2 registrations have none", slash)
    if body.find("/") >= 0:
        ctx.fail("a '/' in the user part", body.find("/"))
    if "@" in body[at + 1:]:
        ctx.fail("a second '@': chan_iax2 splits at the first '@', so a secret cannot contain '@'",
                 body.index("@", at + 1))
    if '"' in body:
        ctx.fail("a '\"': chan_iax2 does not strip quotes, they would become part of the value",
                 body.index('"'))
    userpart, hostpart = body[:at], body[at + 1:]
    parts = userpart.split(":")
    if len(parts) > 2:
        ctx.fail("more than one ':' before '@': chan_iax2 silently drops everything after the second",
                 len(parts[0]) + len(parts[1]) + 1)
    username = parts[0]
    if username == "":
        ctx.fail("an empty user", 0)
    _check_chars(ctx, _Field(username, 0), _USER, "user name")
    secret = parts[1] if len(parts) == 2 and parts[1] else None
    if secret is not None:
        if secret.startswith("[") or secret.endswith("]"):
            if not re.fullmatch(r"\[[A-Za-z0-9_.-]+\]", secret):
                ctx.fail("a malformed RSA key name: write [keyname]", len(username) + 1)
        elif _SECRET_BAD.search(secret):
            ch = _SECRET_BAD.search(secret).group()
            ctx.fail("a %r in the secret" % ch, len(username) + 1 + secret.index(ch))
    if hostpart == "":
        ctx.fail("an empty host after '@'", at + 1)
    hparts = hostpart.split(":")
    if hostpart.startswith("["):
        _check_host(ctx, _Field(hostpart, at + 1), "host", allow_ipv6=False)
    host = _check_host(ctx, _Field(hparts[0], at + 1), "host", allow_ipv6=False)
    port = IAX2_PORT
    if len(hparts) > 1:
        port = _check_port(ctx, _Field(":".join(hparts[1:]), at + 2 + len(hparts[0])), "port", "nothing: "
                           "chan_iax2 refuses the line" if hparts[1] == "" else str(IAX2_PORT))
    return {
        "protocol": "iax2", "peer": None, "transport": None, "username": username, "domain": None,
        "domain_port": None, "secret": secret, "authuser": None, "host": host, "port": port,
        "extension": None, "expiry": None,
    }, len(username) + 1


def _escape_semicolons(text):
    return text.replace(";", "\\;")


# --- output -------------------------------------------------------------------------------------

_FIELDS = ("protocol", "peer", "transport", "username", "domain", "domain_port", "secret", "authuser",
           "host", "port", "extension", "expiry")


def _as_parsed(value, protocol):
    if isinstance(value, dict):
        missing = [k for k in ("username", "host") if not value.get(k)]
        if missing:
            raise RegistrationError("a parsed registration needs %s" % " and ".join(missing))
        return value
    return parse_registration(value, protocol)


def _value_of(reg, protocol):
    """The register value (without 'register =>') for a parsed dict."""
    if protocol == "iax2":
        text = reg["username"]
        if reg.get("secret"):
            text += ":" + reg["secret"]
        text += "@%s" % reg["host"]
        if reg.get("port") not in (None, IAX2_PORT):
            text += ":%d" % int(reg["port"])
        return text
    transport = (reg.get("transport") or "udp").lower()
    secret = reg.get("secret") or ""
    if secret and re.search(r"[:?/@]", secret):
        # Quotes keep ':' '?' '/' of a secret away from chan_sip's splitter; strip_quoted drops them.
        secret = '"%s"' % secret
    secret = _escape_semicolons(secret)
    parts = []
    if reg.get("peer"):
        parts.append(reg["peer"] + "?")
    if transport != "udp":
        parts.append(transport + "://")
    parts.append(reg["username"])
    if reg.get("domain"):
        parts.append("@" + reg["domain"])
    authuser = reg.get("authuser") or ""
    if reg.get("domain_port"):
        parts.append(":%d:%s:%s" % (int(reg["domain_port"]), secret, authuser))
    elif authuser:
        parts.append(":%s:%s" % (secret, authuser))
    elif secret:
        parts.append(":" + secret)
    port = reg.get("port") or DEFAULT_PORT.get(transport, 5060)
    parts.append("@%s:%d" % (reg["host"], int(port)))
    extension = reg.get("extension")
    if extension and extension != "s":
        parts.append("/" + extension)
    if reg.get("expiry") is not None:
        parts.append("~%d" % int(reg["expiry"]))
    return "".join(parts)


def registration_line(value, protocol="sip"):
    """The canonical 'register => ...' line for a string or a parsed dict; it parses back the same."""
    if isinstance(value, dict):
        protocol = value.get("protocol") or protocol
    reg = _as_parsed(value, protocol)
    line = "register => " + _value_of(reg, protocol)
    again = parse_registration(line, protocol)
    for key in _FIELDS[1:]:
        if key in reg and reg[key] != again[key]:
            raise RegistrationError("field %r cannot be written so that Asterisk reads it back unchanged"
                                    % key)
    return line


def redact_registration(value, protocol="sip", mask=MASK):
    """The string with its secret replaced by the mask; safe on strings that do not parse."""
    if not isinstance(value, str):
        raise RegistrationError("a registration string must be a string, got %s" % type(value).__name__)
    try:
        span = _parse(value, protocol)[1]
    except RegistrationError:
        return mask_text(value, protocol).replace(MASK, mask)
    if span is None:
        return value
    return value[:span[0]] + mask + value[span[1]:]


_SECTION = re.compile(r"[A-Za-z0-9_-]{1,15}")


def pjsip_registration(value, name, protocol="pjsip", transport_prefix="transport-"):
    """PJSIP 'type=registration' and 'type=auth' sections (as data) for one carrier's registration.

    Sections are named after the carrier ('<name>-reg', '<name>-auth'), so two carriers on one host
    never collide; IPv6 hosts stay bracketed.
    """
    if not isinstance(name, str) or not _SECTION.fullmatch(name):
        raise RegistrationError("carrier name must be 1-15 characters of letters, digits, '-' and '_'")
    if protocol == "iax2":
        raise RegistrationError("an IAX2 registration has no PJSIP form")
    reg = _as_parsed(value, protocol)
    transport = (reg.get("transport") or "udp").lower()
    port = int(reg.get("port") or DEFAULT_PORT[transport])
    registration = {
        "type": "registration",
        "transport": transport_prefix + transport,
        "server_uri": "sip:%s:%d" % (reg["host"], port),
        "client_uri": "sip:%s@%s" % (reg["username"], reg.get("domain") or reg["host"]),
        "contact_user": reg.get("extension") or "s",
    }
    if reg.get("domain"):
        if reg.get("domain_port"):
            registration["client_uri"] += ":%d" % int(reg["domain_port"])
    else:
        registration["client_uri"] += ":%d" % port
    if reg.get("expiry") is not None:
        registration["expiration"] = int(reg["expiry"])
    sections = {"registration_name": name + "-reg", "registration": registration}
    if reg.get("secret"):
        registration["outbound_auth"] = name + "-auth"
        sections["auth_name"] = name + "-auth"
        sections["auth"] = {
            "type": "auth",
            "auth_type": "userpass",
            "username": reg.get("authuser") or reg["username"],
            "password": reg["secret"],
        }
    else:
        sections["auth_name"] = None
        sections["auth"] = None
    return sections
