"""One carrier list checked by the role's own preflight (vicireg_carriers.problems_by_carrier), each
problem placed on the value that causes it.

Where a problem sits is found by asking the preflight again, never by knowing its rules: a problem
belongs to the first setting whose removal makes it go away (else to the carrier as a whole), and
a registration string's column is the grammar's own. Values the linter cannot see are kept out of
the verdict: a vault value not decrypted, a Jinja expression (a string that is one expression is
skipped; one with expressions inside is checked with each expression read as a word, a number or
a piece holding separators, and only what fails with every such reading is reported; a protocol
that is an expression is read as each protocol). An expression that only names a variable the
inventory sets once, to a plain string (a decrypted vault value too), is read as that string.
"""
import collections
import itertools
import re

import vicireg_carriers as carriers
import vicireg_grammar as grammar

from vicireg_lint import source

JINJA = re.compile(r"\{\{.*?(\}\}|\Z)|\{%.*?(%\}|\Z)|\{#.*?(#\}|\Z)", re.S)
# What a Jinja expression inside a string is read as: a word, or a number (a port, an extension).
PLACEHOLDERS = ("x", "1")
# Every mix of the placeholders over the first expressions of a carrier (2**6 readings at most).
MIXED_MAX = 6
# Also, one expression at a time (the others read as x): a piece holding separators, or nothing
# (`{{ auth }}` may hold user:secret, `{{ account }}` user:secret@host, `{{ port }}` 5060/100); 5*6 more at most.
SEPARATED = ("x:x", "x@x", "x:x@x", "1/1", "")
# An expression that only names a variable: `{{ vault_acme_secret }}`.
REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def jinja_spans(value):
    """The Jinja expressions of a string Ansible templates ([] for others and for !unsafe)."""
    if not isinstance(value, str) or isinstance(value, source.Unsafe):
        return []
    return [m.span() for m in JINJA.finditer(value)]


def _unseen_here(value, whole):
    """'vault' or 'Jinja' for one value itself: whole=True, only a string that is one expression."""
    if isinstance(value, source.Vault):
        return "vault"
    spans = jinja_spans(value)
    if spans and (not whole or (len(spans) == 1 and value[spans[0][0]:spans[0][1]] == value.strip())):
        return "Jinja"
    return None


def _unseen(value):
    """Why a value cannot be checked ('vault' or 'Jinja'), or None; containers by their contents (any
    Jinja inside them), each container once (aliases share them)."""
    why = _unseen_here(value, True)
    if why or not isinstance(value, (list, dict)):
        return why
    seen, todo = set(), [value]
    while todo:
        item = todo.pop()
        if isinstance(item, (list, dict)):
            if id(item) not in seen:
                seen.add(id(item))
                children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
                todo += reversed(children)
        elif _unseen_here(item, False):
            return _unseen_here(item, False)
    return None


def _substitute(value, replace):
    """(value with each Jinja expression replaced by replace(expression), or kept when that is None;
    index map back to value)."""
    out, back, last = [], [], 0
    for start, end in jinja_spans(value):
        out.append(value[last:start])
        back += range(last, start)
        word = replace(value[start:end])
        if word is None:
            word = value[start:end]
            back += range(start, end)
        else:
            back += [start] * len(word)
        out.append(word)
        last = end
    out.append(value[last:])
    back += range(last, len(value) + 1)
    return "".join(out), back


class Found:
    """A problem or note: node, index in the node's string (or None), carrier label, message."""

    def __init__(self, node, label, message, index=None, note=False):
        self.node, self.label, self.message, self.index, self.note = node, label, message, index, note


def _label(label):
    return "carriers" if label is None else label


def carrier_label(item, index):
    """The preflight's own label for the carrier at index: its name when valid, else '#N'."""
    label = "#%d" % (index + 1)
    if isinstance(item, dict):
        label = next((lb for lb, _ in carriers.problems_by_carrier([{"name": item.get("name")}]) if lb != "#1"), label)
    return label


def _problems(carrier):
    """The preflight's messages for one carrier alone."""
    return [message for _, message in carriers.problems_by_carrier([carrier])]


def _culprit(carrier, message, cache, fixed=()):
    """The first key (not in fixed) whose removal makes message go away, or None (the carrier as a whole)."""
    for key in carrier:
        if key in fixed:
            continue
        if key not in cache:
            cache[key] = _problems({k: v for k, v in carrier.items() if k != key})
        if message not in cache[key]:
            return key
    return None


def _column(carrier, variant, back):
    """Index in the original registration string where the grammar points, or None."""
    protocol = carrier.get("protocol", "sip")
    if protocol not in grammar.PROTOCOLS or not isinstance(variant, str):
        return None
    try:
        grammar.parse_registration(variant, protocol)
    except grammar.RegistrationError as exc:
        if exc.column and 0 < exc.column <= len(back):
            return back[exc.column - 1]
    return None


def _resolve(carrier, known):
    """(carrier with `{{ name }}` of known variables replaced, {key: index map}, {key: names})."""
    carrier, backs, names = dict(carrier), {}, {}
    for key, value in list(carrier.items()):
        used = []

        def replace(text):
            match = REFERENCE.fullmatch(text)
            if match and match.group(1) in known:
                used.append(match.group(1))
                return known[match.group(1)]
            return None
        if jinja_spans(value):
            new, back = _substitute(value, replace)
            if used:
                carrier[key], backs[key], names[key] = new, back, used
    return carrier, backs, names


def check_carrier(carrier, node, label, known=None):
    """Found problems and notes of one carrier mapping (node: its mapping node); known: variables
    that `{{ name }}` may be read as."""
    found = []
    carrier, resolved, names = _resolve(carrier, known or {})
    for key in sorted(names, key=str):
        _, value_node = source.pair(node, key)
        found.append(Found(value_node or node, label, "%s: read %s as the inventory sets it" % (
            key, ", ".join("{{ %s }}" % n for n in sorted(set(names[key])))), note=True))
    unseen = {k: why for k, why in ((k, _unseen(v)) for k, v in carrier.items()) if why}
    if "protocol" in carrier and jinja_spans(carrier["protocol"]):
        unseen["protocol"] = "Jinja"  # read as each protocol, whatever the text around the expressions
    partial = [k for k, v in carrier.items() if k not in unseen and jinja_spans(v)]
    for key in sorted(unseen, key=str):
        _, value_node = source.pair(node, key)
        what = "is vault-encrypted" if unseen[key] == "vault" else "is or holds a Jinja expression"
        if key == "protocol" and unseen[key] == "Jinja":
            found.append(Found(value_node or node, label, "protocol is or holds a Jinja expression: the carrier is "
                               "checked under each protocol (%s), only what fails under all is reported"
                               % ", ".join(grammar.PROTOCOLS), note=True))
            continue
        found.append(Found(value_node or node, label, "%s %s: not checked" % (key, what), note=True))
    for key in partial:
        _, value_node = source.pair(node, key)
        found.append(Found(value_node or node, label, "%s holds %d Jinja expression(s): the text around them is "
                           "checked, the expressions are not" % (key, len(jinja_spans(carrier[key]))), note=True))
    # Each reading: unseen values kept as they are, or null (the preflight skips a null setting);
    # the expressions inside strings read as each mix of placeholders. A problem of an unseen value, or of
    # the carrier as a whole, counts when every reading has the same message; a problem of another
    # setting counts when that setting fails in every reading.
    count = min(MIXED_MAX, sum(len(jinja_spans(carrier[k])) for k in partial))
    mixes = list(itertools.product(PLACEHOLDERS, repeat=count))
    mixes += [tuple(word if j == i else PLACEHOLDERS[0] for j in range(count))
              for i in range(count) for word in SEPARATED]
    # A protocol that is an expression may be any of them: each is a reading.
    protocols = grammar.PROTOCOLS if unseen.get("protocol") else (None,)
    readings = []
    for keep in ((True, False) if set(unseen) - {"protocol"} else (True,)):
        for protocol in protocols:
            for mix in (mixes if partial else [()]):
                variant = {k: (v if keep or k not in unseen else None) for k, v in carrier.items()}
                if protocol is not None:
                    variant["protocol"] = protocol
                backs = {}
                words = itertools.chain(mix, itertools.repeat(PLACEHOLDERS[0]))
                for key in partial:
                    variant[key], backs[key] = _substitute(carrier[key], lambda text: next(words))
                readings.append((variant, backs, "/".join(w or "nothing" for w in mix)))
    failing = None  # {key or None: [(message, index)]}
    for variant, backs, word in readings:
        if failing == {}:
            break  # nothing fails in every reading
        cache = {}
        here = {}
        for message in _problems(variant):
            key = _culprit(variant, message, cache, ("protocol",) if protocols[0] else ())
            index = None
            if key == "registration":
                index = _column(variant, variant[key], backs.get(key, range(len(str(variant[key])) + 1)))
                if index is not None and key in resolved:
                    index = resolved[key][index]
            if key in partial:
                message += " (with the Jinja expressions read as %s)" % word
            here.setdefault(key, []).append((message, index))
        if failing is None:
            failing = here
            continue
        for key in list(failing):
            if key not in here:
                del failing[key]
            elif key is None or key in unseen:
                same = set(m for m, _ in here[key])
                failing[key] = [(m, i) for m, i in failing[key] if m in same]
    for key, messages in (failing or {}).items():
        key_node, value_node = source.pair(node, key) if key is not None else (None, None)
        for message, index in messages:
            found.append(Found(value_node or node, label, message, index))
    return found


def check_list(value, node, var, known=None):
    """Found problems and notes of one carrier list variable (value and its node)."""
    if not isinstance(value, list) or not isinstance(node, source.yaml.SequenceNode):
        return [Found(node, var, message) for _, message in carriers.problems_by_carrier(value)]
    found = []
    per_carrier = []
    for index, (item, item_node) in enumerate(zip(value, node.value)):
        label = carrier_label(item, index)
        why = _unseen(item)
        if why and not isinstance(item, dict):
            found.append(Found(item_node, label, "carrier is %s: not checked"
                               % ("vault-encrypted" if why == "vault" else "a Jinja expression"), note=True))
            continue
        if not isinstance(item, dict):
            found += [Found(item_node, label, m) for m in _problems(item)]
            continue
        found += check_carrier(item, item_node, label, known)
        per_carrier.append((index, item, item_node, label))
    # List-wide problems (the same name twice): what the whole list has beyond its carriers' own.
    whole = [(label, m) for label, m in carriers.problems_by_carrier(value)]
    alone = collections.Counter()
    for index, item in enumerate(value):
        alone.update((("#%d" % (index + 1)) if label == "#1" else label, m)
                     for label, m in carriers.problems_by_carrier([item]))
    placed = set()
    for label, message in whole:
        if alone[(label, message)] > 0:
            alone[(label, message)] -= 1
            continue
        match = re.search(r"#(\d+)", message)
        after = int(match.group(1)) if match else 0
        for index, item, item_node, item_label in per_carrier:
            if index + 1 > after and item_label == label and index not in placed:
                placed.add(index)
                _, name_node = source.pair(item_node, "name")
                found.append(Found(name_node or item_node, label, message))
                break
        else:
            found.append(Found(node, _label(None), "%s: %s" % (label, message)))
    return found
