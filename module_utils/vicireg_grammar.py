# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The registration-string grammar: one module, reused by the filters, the CLI and the modules.

It reads a ``register =>`` value exactly as Asterisk does and refuses what Asterisk would read
otherwise than it is written.  chan_sip (``sip_parse_register_line``) splits it with
``__ast_app_separate_args``: at the LAST ``@``, then ``?`` (peer), ``/`` (transport, three fields),
``:`` (secret, authuser), ``~`` (expiry), ``/`` (extension), ``:`` (port), ``@`` (domain), ``:``
(domain port, reordered as chan_sip does).  The splitter does not cut inside ``(...)``, ``[...]``
or ``"..."`` and skips the character after a backslash; a field then loses one pair of surrounding
double quotes.  Each split is also done literally (brackets and backslashes ordinary, quotes only
around a whole field, ``[IPv6]`` whole); where the two differ, the character responsible is named.
chan_iax2 (``iax2_register``) uses ``strsep``: FIRST ``@``, then ``:``.  Config files end a value
at an unescaped ``;`` and read ``\\;`` as ``;``; any other backslash stays (``main/config.c``).

Pure Python (3.6+, it also runs on the dialers inside Ansible modules), no Ansible import: errors
are :class:`RegistrationError` (a ``ValueError``).  Messages never contain the secret: whatever lies
from the first ``:`` after the user to the last ``@`` is masked in them.
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
# How much of a refused string a message repeats.
SHOWN_MAX = 300
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
_URI_PARAM = re.compile(r"(transport|user|lr|maddr|ttl|method)(?=[=;]|$)", re.IGNORECASE)
_URI_TRANSPORT = re.compile(r";transport=(udp|tcp|tls)(?=;|$)", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_USER = re.compile(r"[A-Za-z0-9_.!~*'&=+$,%#-]+")
# RFC 3261 allows '/' in a user; chan_sip reads it only behind a transport prefix.
_USER_SLASH = re.compile(r"[A-Za-z0-9_.!~*'&=+$,%#/-]+")
_PEER = re.compile(r"[A-Za-z0-9_.+-]+")
_EXTENSION = re.compile(r"[A-Za-z0-9_+*#.-]+")
_RSA_KEY = re.compile(r"\[[A-Za-z0-9_.-]+\]")
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
# Where a field starts or ends: a quote there is Asterisk's documented quoting of the whole field.
_SEPS = "?/:@~"

_LOOKALIKES = {
    u"\u00a0": "", u"\u2007": "", u"\u202f": "", u"\u200b": "", u"\u2060": "", u"\ufeff": "",
    u"\u2018": "'", u"\u2019": "'", u"\u201a": "'", u"\u201c": '"', u"\u201d": '"', u"\u201e": '"',
    u"\u2010": "-", u"\u2011": "-", u"\u2012": "-", u"\u2013": "-", u"\u2014": "-", u"\u2212": "-",
    u"\uff1a": ":", u"\uff20": "@", u"\uff0f": "/", u"\uff1f": "?", u"\u2044": "/",
}
# For masking, look-alikes of the separators count as the separators (one character each).
_MASK_TABLE = dict((ord(k), v) for k, v in _LOOKALIKES.items() if v in (":", "@", "/", "?"))
_isascii = getattr(str, "isascii", lambda text: not re.search(r"[^\x00-\x7f]", text))  # 3.7+
# Transports Asterisk knows or people write: 'user://...' may as well be a secret starting with '//'.
_MASK_TRANSPORT = re.compile(r"[ \t]*(udp|tcp|tls|wss?|sctp)://", re.IGNORECASE)


class RegistrationError(ValueError):
    """A registration string Asterisk would refuse or misread.  The message never holds the secret."""

    def __init__(self, message, column=None, suggestion=None):
        super(RegistrationError, self).__init__(message)
        self.column = column
        self.suggestion = suggestion


class _Context:
    """The original text and where its body starts, to report columns and masked copies."""

    __slots__ = ("value", "protocol", "start", "cols", "_region", "cuts", "quoted")

    def __init__(self, value, protocol, start):
        self.value = value
        self.protocol = protocol
        self.start = start
        self.cols = None  # body index -> value index, when '\;' escapes shifted them
        self._region = False
        self.cuts = set()  # body indexes Asterisk's splits cut at
        self.quoted = []  # (start, end, delimiter kept whole) of each quoted or [IPv6] part that mattered

    @property
    def region(self):
        if self._region is False:
            self._region = _mask_region(self.value, self.protocol)
        return self._region

    def column(self, body_index):
        if body_index is None:
            return None
        if self.cols is not None:
            if body_index >= len(self.cols):
                return len(self.value) + 1
            return self.cols[body_index] + 1
        return self.start + body_index + 1

    def show(self, text, pos, quote=True):
        """A field's text for a message, with whatever of it lies in the secret region masked."""
        region = self.region
        if region is not None and text and self.column(pos) <= region[1] and \
                self.column(pos + len(text) - 1) > region[0]:
            out = []
            for k, ch in enumerate(text):
                if region[0] <= self.column(pos + k) - 1 < region[1]:
                    if not out or out[-1] is not MASK:
                        out.append(MASK)
                else:
                    out.append(ch)
            text = "".join(out)
        return repr(text) if quote else text

    def fail(self, what, body_index=None, suggestion=None, column=None):
        col = column if column is not None else self.column(body_index)
        where = ", column %d" % col if col else ""
        form = IAX2_FORM if self.protocol == "iax2" else SIP_FORM
        region = self.region
        shown = _apply_mask(self.value, region)
        if len(shown) > SHOWN_MAX:  # a 1 MB paste gives a short message, not a 1 MB one
            shown = shown[:SHOWN_MAX] + "...(%d characters)" % len(self.value)
        text = "%r%s: %s; expected %s" % (shown, where, what, form)
        masked_suggestion = None
        if suggestion is not None and len(suggestion) > MAX_LENGTH:
            suggestion = None  # it would be refused for its length: no use suggesting it
        if suggestion is not None:
            fixed = _mask_region(suggestion, self.protocol)
            masked_suggestion = _apply_mask(suggestion, fixed)
            # A fix that changed the secret's text may have moved a separator: then check the copy.
            if region and (fixed is None or suggestion[fixed[0]:fixed[1]] != self.value[region[0]:region[1]]) \
                    and _leaks(self.value, region, masked_suggestion):
                masked_suggestion = None
            else:
                text += "; did you mean %r?" % masked_suggestion
        raise RegistrationError(text, col, masked_suggestion)


def _leaks(value, region, text):
    """Whether text holds 4 characters of the secret region that occur nowhere else in value."""
    secret = value[region[0]:region[1]] if region else ""
    rest = None
    for k in range(len(secret) - 3):
        if secret[k:k + 4] in text:
            rest = rest or value[:region[0]] + "\n" + value[region[1]:]
            if secret[k:k + 4] not in rest:
                return True
    return False


def _mask_region(text, protocol="sip", begin=None):
    """Span (start, end) of text that may hold the secret, for any text, valid or not.

    From the first ':' after the user part to the LAST '@' (to the end without one), for sip and
    iax2 alike.  The user part starts after 'register =>', a 'peer?' (a '?' with no ':' before it),
    a transport ('tcp://', 'ws://'...) and a pasted 'sip:' scheme (when another ':' follows).
    """
    if not _isascii(text):
        text = text.translate(_MASK_TABLE)
    if begin is None:
        m = _PREFIX.match(text) if text[:1] in "rR \t\n\r\x0b\x0c" else None
        begin = m.end() if m else 0
    q = text.find("?", begin)
    if q >= 0 and text.find(":", begin, q) < 0:
        begin = q + 1
    if text.find("://", begin) >= 0:
        m = _MASK_TRANSPORT.match(text, begin)
        if m:
            begin = m.end()
    at = text.rfind("@")
    end = at if at >= begin else len(text)
    if text[begin:begin + 3].lower() == "sip":
        s = _SCHEME.match(text, begin)
        if s and text.find(":", s.end(), end) >= 0:
            begin = s.end()
    colon = text.find(":", begin, end)
    if colon < 0:
        return None
    return colon + 1, end


def mask_text(text, protocol="sip"):
    """The text with whatever may be the secret replaced by ****, for any input, valid or not."""
    if not isinstance(text, str):
        raise RegistrationError("a registration string must be a string, got %s" % type(text).__name__)
    return _apply_mask(text, _mask_region(text, protocol))


def _apply_mask(text, region, mask=MASK):
    if region is None or region[0] == region[1]:
        return text
    return text[:region[0]] + mask + text[region[1]:]


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
    """The config reader: a ';' ends the value unless written '\\;', which becomes ';'.

    Any other backslash stays in the value; what it does to the split is judged there.
    """
    i = body.find(";")
    while i >= 0:
        if i == 0 or body[i - 1] != "\\":
            _fail_semicolon(ctx, body, i)
        i = body.find(";", i + 1)
    if "\\;" not in body:
        return body
    cols = []
    out = []
    for k, ch in enumerate(body):
        if ch == "\\" and body[k + 1:k + 2] == ";":
            continue
        cols.append(ctx.start + k)
        out.append(ch)
    ctx.cols = cols
    return "".join(out)


def _fail_semicolon(ctx, body, i):
    at = body.rfind("@")
    tail = body[i + 1:]
    param = _URI_PARAM.match(tail)
    if i > at >= 0 or param:
        m = _URI_TRANSPORT.search(body)
        suggestion = None
        if m and ctx.protocol != "iax2":
            stripped = body[:m.start()] + body[m.end():]
            if ";" not in stripped:
                suggestion = "register => %s://%s" % (m.group(1).lower(), _drop_transport(stripped))
        elif ";" not in body[:i]:
            suggestion = "register => " + body[:i]
        name = param.group(1) if param else tail.split(";")[0].split("=")[0]
        ctx.fail("URI parameters (';%s') are not part of a register line: ';' starts a comment and "
                 "Asterisk ignores the rest; give the transport as 'tcp://' or 'tls://' in front"
                 % ctx.show(name, i + 1, quote=False), i, suggestion=suggestion)
    ctx.fail("an unescaped ';' starts a comment: Asterisk reads the line only up to here; "
             "write a ';' that belongs to the secret as '\\;'", i,
             suggestion="register => " + body.replace(";", "\\;"))


def _drop_transport(body):
    m = _TRANSPORT.match(body[body.find("?") + 1:] if "?" in body.split("@")[0] else body)
    if m and "://" in body:
        return body.replace(body[body.find(m.group()):body.find("://") + 3], "", 1)
    return body


# --- Asterisk's splitter, and the literal reading it is checked against -------------------------

def _scan(text, delim, maxargs, stop=None):
    """Asterisk's split: where __ast_app_separate_args(text, delim, remove_chars=0, ..., maxargs)
    cuts, and the index of a backslash that ends text (the scan then runs past the field's end) or
    None.  With stop: the index of the '\\', '"', '(' or '[' that keeps it from cutting there."""
    cuts, paren, bracket, quote = [], [], [], None
    n = len(text)
    scan = 0
    while scan < n:
        if scan == stop:
            held = [quote] if quote is not None else paren[-1:] + bracket[-1:]
            return max(held) if held else None
        c = text[scan]
        if c == "\\":
            if scan + 1 == stop:
                return scan
            scan += 2  # the character after it is skipped
            if scan > n:
                return cuts, n - 1
            continue
        if c == "(":
            paren.append(scan)
        elif c == ")" and paren:
            paren.pop()
        elif c == "[":
            bracket.append(scan)
        elif c == "]" and bracket:
            bracket.pop()
        elif c == '"':
            quote = scan if quote is None else None
        elif c == delim and not (paren or bracket or quote is not None):
            cuts.append(scan)
            if len(cuts) == maxargs - 1:
                break
        scan += 1
    return None if stop is not None else (cuts, None)


def _scan_literal(text, delim, maxargs):
    """Where the same split cuts as the string is written: '(' ')' '[' ']' '\\' are ordinary, a
    '"..."' quotes a field, a bracketed IPv6 address after '@' stays whole.  Also returns the
    (start, end, delimiter index) of each such part that kept a delimiter from being cut: the
    parser checks at the end that each is a whole field."""
    cuts, kept = [], []
    n = len(text)
    scan = 0
    while scan < n:
        c = text[scan]
        end = None
        if c == '"' and (scan == 0 or text[scan - 1] in _SEPS):
            end = text.find('"', scan + 1)
            while end >= 0 and not (end + 1 == n or text[end + 1] in _SEPS):
                end = text.find('"', end + 1)
        elif c == "[" and (scan == 0 or text[scan - 1] == "@"):
            m = _IPV6.match(text, scan)
            end = m.end() - 1 if m else None
        elif c == delim:
            cuts.append(scan)
            if len(cuts) == maxargs - 1:
                break
        if end is not None and end >= 0:
            inner = text.find(delim, scan, end)
            if inner >= 0:
                kept.append((scan, end, inner))
            scan = end
        scan += 1
    return cuts, kept


def _fail_misread(ctx, base, text, delim, maxargs, cuts, literal):
    """Name the character that makes Asterisk cut, or not cut, where the literal reading differs."""
    p = min(set(cuts) ^ set(literal))
    at = "the %r at column %d" % (delim, ctx.column(base + p))
    who = _scan(text, delim, maxargs, stop=p)
    if who is None:  # Asterisk cuts where the string, as written, does not
        who = max([k for k in range(p) if text[k] in '()[]"\\'] or [p])
        why = "ends a quoted or bracketed part early for Asterisk's splitter, so it splits at " + at
    elif text[who] == "\\":
        why = "makes Asterisk's splitter skip %s instead of splitting there" % at
    elif text[who] == '"':
        why = "starts a quoted part for Asterisk's splitter (quotes work only around a whole field), " \
              "so it does not split at " + at
    else:
        why = "keeps Asterisk's splitter from splitting inside '%s...%s', so not at %s" % (
            text[who], ")" if text[who] == "(" else "]", at)
    ctx.fail("a '%s' at column %d %s; Asterisk would read the fields otherwise than written"
             % (text[who], ctx.column(base + who), why), base + who)


def _separate(ctx, base, text, delim, maxargs):
    """(start, end) spans of Asterisk's split of text (at body index base); refuses a misread."""
    if not text:
        return []
    if _SPLIT_SPECIAL.search(text) is None:
        spans = []
        pos = 0
        for part in text.split(delim, maxargs - 1):
            spans.append((pos, pos + len(part)))
            pos += len(part) + 1
            ctx.cuts.add(base + pos - 1)
        return spans
    cuts, trailing = _scan(text, delim, maxargs)
    if trailing is not None:
        ctx.fail("a '\\' at the end of a field: Asterisk's splitter skips the character after it and "
                 "reads on past the field's end", base + trailing)
    literal, kept = _scan_literal(text, delim, maxargs)
    if cuts != literal:
        _fail_misread(ctx, base, text, delim, maxargs, cuts, literal)
    ctx.cuts.update(base + c for c in cuts)
    ctx.quoted += [(base + a, base + b, base + k) for a, b, k in kept]
    spans = []
    start = 0
    for c in cuts:
        spans.append((start, c))
        start = c + 1
    spans.append((start, len(text)))
    return spans


class _Field:
    """One field as Asterisk cut it: the text and its index in the body (for columns)."""

    __slots__ = ("text", "pos")

    def __init__(self, text, pos):
        self.text = text
        self.pos = pos


def _fields(ctx, base, text, delim, count):
    """Asterisk's split of text into at most count fields (None for the missing ones)."""
    out = [_Field(text[a:b], base + a) for a, b in _separate(ctx, base, text, delim, count)]
    return out + [None] * (count - len(out))


def _stripq(ctx, field, what):
    """ast_strip_quoted(field, '"', '"'): one pair of surrounding double quotes goes."""
    if field is None:
        return None
    t = field.text
    if t[:1] == '"' and t[-1:] == '"':
        if len(t) == 1:
            ctx.fail("a lone '\"' as the %s: Asterisk strips it like a pair of quotes and reads "
                     "nothing" % what, field.pos)
        return _Field(t[1:-1], field.pos + 1)
    return field


def _check_port(ctx, field, what, default_note):
    t = field.text
    if t == "":
        ctx.fail("an empty %s after ':' (Asterisk silently uses %s)" % (what, default_note), field.pos)
    if ":" in t:
        k = t.index(":")
        ctx.fail("a second port ':%s' after the %s (Asterisk reads only the first)"
                 % (ctx.show(t[k + 1:], field.pos + k + 1, quote=False), what), field.pos + k)
    if not _DIGITS.fullmatch(t):
        ctx.fail("%s %s is not a number (Asterisk silently uses %s)" % (what, ctx.show(t, field.pos),
                                                                         default_note), field.pos)
    port = int(t)
    if not 1 <= port <= 65535:
        ctx.fail("%s %s is not in 1-65535 (Asterisk silently uses %s)" % (
            what, ctx.show(t, field.pos, quote=False), default_note), field.pos)
    return port


def _check_expiry(ctx, field):
    t = field.text
    if t == "":
        ctx.fail("an empty expiry after '~' (Asterisk reads it as 0)", field.pos)
    if not _DIGITS.fullmatch(t):
        ctx.fail("expiry %s is not a number of seconds (Asterisk reads it as 0)" % ctx.show(t, field.pos),
                 field.pos)
    expiry = int(t)
    if not 1 <= expiry <= 2147483647:
        ctx.fail("expiry %s is out of range (1 to 2147483647 seconds)" % t, field.pos)
    return expiry


def _check_host(ctx, field, what, allow_ipv6=True):
    t = field.text
    shown = ctx.show(t, field.pos)
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
            ctx.fail("%s is not a valid IPv6 address" % shown, field.pos)
        return t
    if _SCHEME.match(t):
        ctx.fail("a pasted URI scheme '%s' in front of the %s" % (t.split(":")[0] + ":", what), field.pos)
    if len(t) > 253:
        ctx.fail("a %s name longer than 253 characters" % what, field.pos)
    labels = t.split(".")
    if all(label.isdigit() for label in labels if label) and any(labels):
        if len(labels) != 4 or not all(labels):
            ctx.fail("%s %s looks like an IPv4 address but does not have four numbers" % (what, shown),
                     field.pos)
        for k, label in enumerate(labels):
            if int(label) > 255:
                col = field.pos + sum(len(x) + 1 for x in labels[:k])
                ctx.fail("IPv4 %s %s has a number over 255" % (what, shown), col)
        return t
    pos = field.pos
    for label in labels:
        if not _LABEL.fullmatch(label):
            bad = ctx.show(label, pos) if label else "'(empty)'"
            ctx.fail("%s %s has an invalid label %s (letters, digits, '-' and '_'; no leading or "
                     "trailing '-', at most 63 characters)" % (what, shown, bad), pos)
        pos += len(label) + 1
    return t


def _check_chars(ctx, field, pattern, what):
    m = pattern.fullmatch(field.text)
    if m is None:
        for k, ch in enumerate(field.text):
            if not pattern.fullmatch(ch):
                ctx.fail("a character %r that is not allowed in the %s" % (ch, what), field.pos + k)
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
    port (effective), port_given (whether the string wrote one: no port means SRV lookup), extension,
    expiry (None when not given).
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
    port_given = port is not None
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
        "host": host, "port": port, "port_given": port_given, "extension": ext or "s", "expiry": expiry,
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
    peer_f, rest_f = _fields(ctx, 0, userpart, "?", 2)
    if rest_f is None or rest_f.text == "":
        if rest_f is not None:
            ctx.fail("nothing after '?': the user is missing after the peer name", rest_f.pos)
        rest_f, peer_f = peer_f, None
    elif peer_f.text == "":
        ctx.fail("an empty peer name before '?'", 0)
    # [transport:]/[blank]/user...
    t_f, blank_f, user_part_f = _fields(ctx, rest_f.pos, rest_f.text, "/", 3)
    if user_part_f is None or user_part_f.text == "":
        user_part_f, t_f = t_f, None
    if blank_f is not None and blank_f.text != "":
        if t_f is None and not _TRANSPORT.fullmatch(user_part_f.text):
            ctx.fail("a '/' in the user part: Asterisk refuses the line without a transport in front; "
                     "behind one ('udp://user/name:secret@host') it is read as part of the user name",
                     blank_f.pos - 1, suggestion="register => " + _escape_semicolons(
                         body[:rest_f.pos] + "udp://" + body[rest_f.pos:]))
        ctx.fail("a malformed transport prefix; write 'udp://', 'tcp://' or 'tls://'",
                 (t_f or user_part_f).pos)
    if blank_f is not None and t_f is None:
        ctx.fail("a stray '/' at the end of the user part", blank_f.pos - 1)
    transport = "udp"
    if t_f is not None:
        if not _TRANSPORT.fullmatch(t_f.text):
            name = t_f.text[:-1] if t_f.text.endswith(":") else t_f.text
            if not t_f.text.endswith(":") or not name:
                ctx.fail("a malformed transport prefix; write 'udp://', 'tcp://' or 'tls://'", t_f.pos)
            ctx.fail("transport %s is not udp, tcp or tls (Asterisk silently uses udp)"
                     % ctx.show(name, t_f.pos), t_f.pos)
        transport = t_f.text[:3].lower()
    if user_part_f.text == "":
        ctx.fail("an empty user", user_part_f.pos)
    scheme = _SCHEME.match(user_part_f.text)
    if scheme:
        _fail_scheme(ctx, body, user_part_f.pos, scheme.group())
    u_f, secret_f, auth_f = _fields(ctx, user_part_f.pos, user_part_f.text, ":", 3)
    hp_f, expiry_f = _fields(ctx, at + 1, hostpart, "~", 2)
    if hp_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    hp2_f, ext_f = _fields(ctx, hp_f.pos, hp_f.text, "/", 2)
    if hp2_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    host_f, port_f = _fields(ctx, hp2_f.pos, hp2_f.text, ":", 2)
    if u_f is None:
        ctx.fail("an empty user", user_part_f.pos)
    user_f, domain_f = _fields(ctx, u_f.pos, u_f.text, "@", 2)
    domain_port_f = None
    if auth_f is not None:
        a3 = _fields(ctx, auth_f.pos, auth_f.text, ":", 2)
        if a3[1] is not None:
            # chan_sip reorders [:domainport]:secret:authuser (see sip_parse_register_line).
            domain_port_f, secret_f, auth_f = secret_f, a3[0], a3[1]
        elif a3[0] is None:
            auth_f = _Field("", auth_f.pos)
    if user_f is None or user_f.text == "":
        ctx.fail("an empty user", u_f.pos)
    user_f = _stripq(ctx, user_f, "user name")
    if user_f.text == "":
        ctx.fail("an empty user (only quotes)", user_f.pos)
    username = _check_chars(ctx, user_f, _USER if t_f is None else _USER_SLASH, "user name")
    peer = None
    if peer_f is not None:
        peer = _check_chars(ctx, _stripq(ctx, peer_f, "peer name"), _PEER, "peer name")
    domain = None
    if domain_f is not None:
        if domain_f.text == "":
            ctx.fail("an empty domain after '@'", domain_f.pos)
        domain = _check_host(ctx, _stripq(ctx, domain_f, "domain"), "domain")
    domain_port = None
    if domain_port_f is not None:
        domain_port = _check_port(ctx, domain_port_f, "domain port", "the default")
        if domain is None:
            ctx.fail("a domain port without a domain (write user@domain:port::@host)", domain_port_f.pos)
    secret = None
    secret_at = None
    quoted_secret = None
    if secret_f is not None:
        if len(secret_f.text) > 1 and secret_f.text[0] == '"' == secret_f.text[-1]:
            quoted_secret = secret_f
        secret_f = _stripq(ctx, secret_f, "secret")
        secret_at = secret_f.pos
        secret = secret_f.text or None
    authuser = None
    if auth_f is not None:
        auth_f = _stripq(ctx, auth_f, "auth user")
        if ":" in auth_f.text:
            ctx.fail("too many ':' in the user part", auth_f.pos + auth_f.text.index(":"))
        if auth_f.text:
            authuser = _check_chars(ctx, auth_f, _USER, "auth user")
    if host_f is None:
        ctx.fail("an empty host after the last '@'", at + 1)
    if _SCHEME.match(host_f.text) and port_f is not None:
        ctx.fail("a pasted URI scheme %r in front of the host" % (host_f.text + ":"), host_f.pos,
                 suggestion=_escape_semicolons(body[:host_f.pos] + body[port_f.pos:]))
    host = _check_host(ctx, _stripq(ctx, host_f, "host"), "host")
    port = DEFAULT_PORT[transport]
    if port_f is not None:
        port = _check_port(ctx, port_f, "port", str(DEFAULT_PORT[transport]))
    extension = "s"
    if ext_f is not None:
        ext_f = _stripq(ctx, ext_f, "extension")
        if ext_f.text == "":
            ctx.fail("an empty extension after '/'", ext_f.pos)
        extension = _check_chars(ctx, ext_f, _EXTENSION, "extension")
    expiry = None
    if expiry_f is not None:
        expiry = _check_expiry(ctx, _stripq(ctx, expiry_f, "expiry"))
    reg = {
        "protocol": protocol, "peer": peer, "transport": transport, "username": username,
        "domain": domain, "domain_port": domain_port, "secret": secret, "authuser": authuser,
        "host": host, "port": port, "port_given": port_f is not None, "extension": extension,
        "expiry": expiry,
    }
    ctx.cuts.update((at, len(body)))
    for start, end, inner in ctx.quoted:  # quotes (and [IPv6]) protect whole fields only
        if (start and start - 1 not in ctx.cuts) or end + 1 not in ctx.cuts:
            ctx.fail("a '%s' at column %d starts a %s part that is not a whole field: Asterisk's splitter "
                     "does not split at the %r at column %d inside it, the string as written does" % (
                         body[start], ctx.column(start), "quoted" if body[start] == '"' else "bracketed",
                         body[inner], ctx.column(inner)), start)
    if quoted_secret is not None and not _quotes_needed(body, quoted_secret, reg):
        ctx.fail("a secret in double quotes that it does not need: Asterisk strips them, so it is "
                 "unclear whether they belong to the secret; write it without them (to keep quotes "
                 "at both ends of a secret, double them)", quoted_secret.pos)
    return reg, secret_at


def _quotes_needed(body, field, reg):
    """Whether '"secret"' needs its quotes: written bare, Asterisk would not read it the same."""
    bare = body[:field.pos] + field.text[1:-1] + body[field.pos + len(field.text):]
    try:
        return _parse(_escape_semicolons(bare), reg["protocol"], fast=False)[0] != reg
    except RegistrationError:
        return True


def _parse_iax2(ctx, body):
    at = body.find("@")
    if at < 0:
        ctx.fail("no '@host': the carrier's host is missing (Asterisk refuses the line)", len(body))
    userpart, hostpart = body[:at], body[at + 1:]
    colon = userpart.find(":")
    user = userpart if colon < 0 else userpart[:colon]
    if colon >= 0 and userpart[colon:colon + 3] == "://":
        ctx.fail("a transport: IAX2 registrations have none", colon)
    if "?" in user:
        ctx.fail("a peer name: IAX2 registrations have none", user.index("?"))
    # The secret is read as written ('?', '/', '~', quotes and brackets are nothing special to
    # strsep); the host part is not.
    for token, what in (("/", "an extension: IAX2 registrations have none"),
                        ("~", "an expiry: IAX2 registrations have none (refresh is set in iax.conf)"),
                        ("@", "a second '@': chan_iax2 splits at the first '@', so a secret cannot "
                              "contain '@'")):
        i = hostpart.find(token)
        if i >= 0:
            ctx.fail(what, at + 1 + i)
    if colon >= 0 and ":" in userpart[colon + 1:]:
        ctx.fail("more than one ':' before '@': chan_iax2 silently drops everything after the second",
                 userpart.index(":", colon + 1))
    if user == "":
        ctx.fail("an empty user", 0)
    _check_chars(ctx, _Field(user, 0), _USER, "user name")
    secret = userpart[colon + 1:] if colon >= 0 else ""
    if secret.startswith("[") and not _RSA_KEY.fullmatch(secret):
        ctx.fail("a secret starting with '[': chan_iax2 reads it as an RSA key name and drops its last "
                 "character; write [keyname]", colon + 1)
    if len(secret) > 1 and secret[0] == '"' == secret[-1]:
        ctx.fail("a secret in double quotes: chan_iax2 does not strip them, they would be part of the "
                 "secret; write it without them", colon + 1)
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
        "protocol": "iax2", "peer": None, "transport": None, "username": user, "domain": None,
        "domain_port": None, "secret": secret or None, "authuser": None, "host": host, "port": port,
        "port_given": len(hparts) > 1, "extension": None, "expiry": None,
    }, colon + 1


def _escape_semicolons(text):
    return text.replace(";", "\\;")


# --- output -------------------------------------------------------------------------------------

_FIELDS = ("protocol", "peer", "transport", "username", "domain", "domain_port", "secret", "authuser",
           "host", "port", "extension", "expiry")
_KINDS = tuple((k, int if k in ("domain_port", "port", "expiry") else str) for k in _FIELDS)
_NOT_IAX2 = ("peer", "transport", "domain", "domain_port", "authuser", "extension", "expiry")


def _checked(value, protocol):
    """A parsed-registration dict, type-checked, with the defaults parsing fills in.

    Messages name the field, never its value.
    """
    reg = {}
    for key, kind in _KINDS:
        v = value.get(key)
        if v.__class__ is not kind:  # None, "", subclasses (tagged template values) or wrong types
            if v is None or v == "":
                v = None
            elif not isinstance(v, kind) or isinstance(v, bool):
                raise RegistrationError("field %r must be %s or null, got %s" % (
                    key, "an integer" if kind is int else "a string", type(v).__name__))
            else:
                v = kind(v)
        reg[key] = None if v == "" else v
    given = value.get("port_given")
    if given is not None and not isinstance(given, bool):
        raise RegistrationError("field 'port_given' must be true, false or null, got %s" % type(given).__name__)
    protocol = reg["protocol"] or protocol
    if protocol not in PROTOCOLS:
        raise RegistrationError("field 'protocol' must be one of %s" % ", ".join(PROTOCOLS))
    reg["protocol"] = PROTOCOLS[PROTOCOLS.index(protocol)]
    missing = [k for k in ("username", "host") if not reg[k]]
    if missing:
        raise RegistrationError("a parsed registration needs %s" % " and ".join(missing))
    if protocol == "iax2":
        extra = [k for k in _NOT_IAX2 if reg[k] is not None]
        if extra:
            raise RegistrationError("field %r has no place in an IAX2 registration" % extra[0])
        reg["port_given"] = reg["port"] is not None and (given is not False or reg["port"] != IAX2_PORT)
        reg["port"] = IAX2_PORT if reg["port"] is None else reg["port"]
        return reg
    reg["transport"] = (reg["transport"] or "udp").lower()
    if reg["transport"] not in TRANSPORTS:
        raise RegistrationError("field 'transport' must be udp, tcp or tls")
    # A port written in the string turns SRV lookup off (chan_sip's srvlookup, RFC 3263): keep
    # whether it was written, not only its value.
    default = DEFAULT_PORT[reg["transport"]]
    reg["port_given"] = reg["port"] is not None and (given is not False or reg["port"] != default)
    reg["port"] = default if reg["port"] is None else reg["port"]
    reg["extension"] = reg["extension"] or "s"
    return reg


def _spell(reg, quoted, explicit):
    """The register value for a checked dict, as (field or None for a separator, text) pieces."""
    secret = _escape_semicolons('"%s"' % reg["secret"] if quoted else reg["secret"] or "")
    if reg["protocol"] == "iax2":
        plan = [("", "username", "", True), (":", "secret", "", secret), ("@", "host", "", True),
                (":", "port", "", reg["port_given"])]
    else:
        auth = reg["domain_port"] or reg["authuser"]  # ':secret:authuser' are then written, even empty
        plan = [("", "peer", "?", reg["peer"]),
                ("", "transport", "://", reg["transport"] != "udp" or explicit),
                ("", "username", "", True), ("@", "domain", "", reg["domain"]),
                (":", "domain_port", "", reg["domain_port"]), (":", "secret", "", secret or auth),
                (":", "authuser", "", auth), ("@", "host", "", True), (":", "port", "", reg["port_given"]),
                ("/", "extension", "", reg["extension"] != "s"),
                ("~", "expiry", "", reg["expiry"] is not None)]
    out = []
    for before, key, after, keep in plan:
        if keep:
            text = secret if key == "secret" else "" if reg[key] is None else str(reg[key])
            out += [(None, before), (key, text), (None, after)]
    return out


def _field_at(pieces, index):
    """The field of the spelled pieces at a text index (at a separator: the field before it)."""
    pos = 0
    key = None
    for name, text in pieces:
        if pos > index:
            break
        key = name or key
        pos += len(text)
    return key


def _write(reg):
    """(register value, its parsed fields): the first spelling Asterisk reads back as reg.

    The secret may need quotes, and a '/' in the user an explicit 'udp://'; when none reads back,
    the plain spelling's problem is reported with the field's name.
    """
    prefix = "register => "
    first = None
    for quoted, explicit in ((False, False), (True, False), (False, True), (True, True)):
        if (quoted and not reg["secret"]) or (explicit and reg["transport"] != "udp") or \
                ((quoted or explicit) and reg["protocol"] == "iax2"):
            continue
        pieces = _spell(reg, quoted, explicit)
        text = "".join([p for _, p in pieces])
        try:
            again = _parse(prefix + text, reg["protocol"])[0]
        except RegistrationError as exc:
            if first is None:
                detail = str(exc)
                if exc.suggestion is not None:  # a fix of the generated line would only confuse
                    detail = detail[:detail.rfind("; did you mean")]
                first = (_field_at(pieces, (exc.column or 1) - 1 - len(prefix)), ": " + detail)
            continue
        if again == reg:
            return text, again
        first = first or (next(f for f in _FIELDS if again[f] != reg[f]), "")
    raise RegistrationError("field %r cannot be written so that Asterisk reads it back unchanged%s" % first)


def registration_line(value, protocol="sip"):
    """The canonical 'register => ...' line for a string or a parsed dict; it parses back the same.

    A dict is type-checked, written, and parsed back: only what the grammar read reaches the line.
    """
    reg = value if isinstance(value, dict) else parse_registration(value, protocol)
    return "register => " + _write(_checked(reg, protocol))[0]


def redact_registration(value, protocol="sip", mask=MASK):
    """The string with its secret replaced by the mask; safe on strings that do not parse.

    Masked: from the first ':' after the user to the last '@' (see _mask_region), and the secret's
    span as parsed when the string parses.
    """
    if not isinstance(value, str):
        raise RegistrationError("a registration string must be a string, got %s" % type(value).__name__)
    region = _mask_region(value, protocol)
    try:
        span = _parse(value, protocol)[1]
    except RegistrationError:
        span = None
    if span is not None:
        region = span if region is None else (min(region[0], span[0]), max(region[1], span[1]))
    return _apply_mask(value, region, mask)


_SECTION = re.compile(r"[A-Za-z0-9_-]{1,15}")


# chan_sip asks for [general] defaultexpiry when the string writes no ~expiry (Asterisk's default);
# PJSIP's own default (3600) would change what the carrier is asked for.
CHAN_SIP_DEFAULT_EXPIRY = 120


def _uri_host(host):
    return "[%s]" % host if ":" in host and not host.startswith("[") else host


def pjsip_registration(value, name, protocol="pjsip", transport_prefix="transport-"):
    """PJSIP 'type=registration' and 'type=auth' sections (as data) that register as chan_sip does.

    What chan_sip sends (transmit_register) and the PJSIP that sends the same:
    - Request-URI 'sip:DOMAIN' or 'sip:HOST', never a port -> server_uri.  The host's port and the
      domain port are read (and shown by 'sip show registry') but never sent: seen on the wire
      (tests/lab/test_wire_pjsip.py), IPv4 and IPv6 alike.
    - To and From 'sip:USER@DOMAIN-or-HOST', never a port -> client_uri (PJSIP's To and From).
    - Sent to the host on its port (SRV first when no port is written; RFC 3263 in PJSIP does the same
      only when the URI has no port) -> outbound_proxy 'sip:HOST[:port];lr' when a domain is given or a
      port other than 5060 is written (PJSIP sends to the proxy, the R-URI stays chan_sip's).
    - Contact user = the extension, Expires = ~expiry or 120, auth user = authuser or user.
    Sections are named after the carrier ('<name>-reg', '<name>-auth'), so two carriers on one host
    never collide; IPv6 hosts stay bracketed.  A dict is checked and read back like registration_line.
    """
    if not isinstance(name, str) or not _SECTION.fullmatch(name):
        raise RegistrationError("carrier name must be 1-15 characters of letters, digits, '-' and '_'")
    name = str(name)
    reg = _checked(value, protocol) if isinstance(value, dict) else None
    if (reg["protocol"] if reg else protocol) == "iax2":
        raise RegistrationError("an IAX2 registration has no PJSIP form")
    reg = _write(reg)[1] if reg else parse_registration(value, protocol)
    host = _uri_host(reg["host"])
    # A written port other than 5060 goes to the proxy URI (which then looks up no SRV, as RFC 3263
    # wants for a port); the Request-URI never has one.
    port = ":%d" % reg["port"] if reg["port_given"] and reg["port"] != 5060 else ""
    registration = {
        "type": "registration", "transport": str(transport_prefix) + reg["transport"],
        "client_uri": "sip:%s@%s" % (reg["username"], reg["domain"] or host),
        "contact_user": reg["extension"],
        "expiration": reg["expiry"] if reg["expiry"] is not None else CHAN_SIP_DEFAULT_EXPIRY,
    }
    registration["server_uri"] = "sip:%s" % (reg["domain"] or host)
    if reg["domain"] or port:
        registration["outbound_proxy"] = "sip:%s%s;lr" % (host, port)
    sections = {"registration_name": name + "-reg", "registration": registration, "auth_name": None,
                "auth": None}
    if reg["secret"]:
        registration["outbound_auth"] = sections["auth_name"] = name + "-auth"
        sections["auth"] = {"type": "auth", "auth_type": "userpass",
                            "username": reg["authuser"] or reg["username"], "password": reg["secret"]}
    return sections
