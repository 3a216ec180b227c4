# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Read Asterisk configuration text the way Asterisk's config reader (main/config.c) does.

Used to prove, before anything is written to a dialer, that a rendered file holds exactly the
sections and keys the carriers call for (a newline, ';', '[' or '#' smuggled into a value would
change that structure), and to list the sections a dialer already has.  Pure Python (3.6+): it runs
on the controller and inside modules on the dialer.

The rules followed: a ';' starts a comment unless written '\\;' (which becomes ';'); ';--' opens
a block comment that '--;' closes; each line is stripped; '[name]' (optionally followed by
'(options)') opens a section; a line starting with '#' is a directive (#include, #tryinclude,
#exec); otherwise 'key = value' or 'key => value' (the '>' after the first '=' is dropped), with
key and value stripped; a line without '=' is ignored by Asterisk (reported here as 'junk').
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Entry:
    """One meaningful line: kind is 'section', 'option', 'directive' or 'junk'."""

    __slots__ = ("kind", "name", "value", "line")

    def __init__(self, kind, name, value, line):
        self.kind, self.name, self.value, self.line = kind, name, value, line

    def __repr__(self):
        return "Entry(%r, %r, %r, line %d)" % (self.kind, self.name, self.value, self.line)


def _strip_comments(raw, in_block):
    """(text without comments, still inside a block comment) for one physical line."""
    out = []
    i = 0
    n = len(raw)
    while i < n:
        if in_block:
            end = raw.find("--;", i)
            if end < 0:
                return "".join(out), True
            i = end + 3
            in_block = False
            continue
        c = raw[i]
        if c == ";":
            if i > 0 and raw[i - 1] == "\\":
                out[-1] = ";"  # '\;' is a literal ';'
                i += 1
                continue
            if raw.startswith(";--", i) and raw[i + 3:i + 4] != "-":
                in_block = True
                i += 3
                continue
            break
        out.append(c)
        i += 1
    return "".join(out), in_block


def entries(text):
    """Every meaningful line of text, in order, as Entry objects."""
    out = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), 1):
        line, in_block = _strip_comments(raw, in_block)
        line = line.strip()
        if not line:
            continue
        if line[0] == "[":
            close = line.find("]")
            if close < 0:
                out.append(Entry("junk", None, line, number))
                continue
            out.append(Entry("section", line[1:close], line[close + 1:].strip(), number))
        elif line[0] == "#":
            word, _, rest = line[1:].partition(" ")
            out.append(Entry("directive", word.strip(), rest.strip(), number))
        elif "=" in line:
            key, _, value = line.partition("=")
            if value.startswith(">"):
                value = value[1:]
            out.append(Entry("option", key.strip(), value.strip(), number))
        else:
            out.append(Entry("junk", None, line, number))
    return out


def structure(text):
    """[(section name or None, [(key, value), ...]), ...] plus any directive or junk line, in order.

    Directives and junk appear as ('#directive', ...) / ('!junk', ...) pseudo sections so that a
    comparison with an expected structure fails on them.
    """
    out = [(None, [])]
    for e in entries(text):
        if e.kind == "section":
            out.append((e.name if not e.value else "%s%s" % (e.name, e.value), []))
        elif e.kind == "option":
            out[-1][1].append((e.name, e.value))
        elif e.kind == "directive":
            out.append(("#%s %s" % (e.name, e.value), []))
        else:
            out.append(("!junk %s" % e.value, []))
    if not out[0][1]:
        out.pop(0)
    return out


def section_names(text):
    """Names of the sections text defines (templates included), in order."""
    return [e.name for e in entries(text) if e.kind == "section"]


def includes(text):
    """Files text includes (#include / #tryinclude), as written."""
    return [e.value.strip('"<>') for e in entries(text)
            if e.kind == "directive" and e.name in ("include", "tryinclude") and e.value]


def mismatch(text, expected):
    """None when text reads back as exactly expected (see structure()), else what differs."""
    got = structure(text)
    if got == expected:
        return None
    for i, (want, have) in enumerate(zip(expected, got)):
        if want != have:
            if want[0] != have[0]:
                return "section %d reads as [%s], expected [%s]" % (i + 1, have[0], want[0])
            for k, (a, b) in enumerate(zip(want[1], have[1])):
                if a != b:
                    return "in [%s], line %d of the section reads as key %r, expected %r" % (
                        want[0], k + 1, b[0], a[0])
            return "in [%s], %d keys read back where %d were written" % (want[0], len(have[1]), len(want[1]))
    return "%d sections read back where %d were written" % (len(got), len(expected))
