"""Masking holds for any secret: from the first ':' after the user part to the LAST '@'.

Everything the toolkit prints about a registration string (error messages, "did you mean"
suggestions, redact_registration, mask_text, the validator CLI in text and JSON) is checked.
"""
import ast
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import string
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vicireg_grammar as grammar
from vicireg_grammar import (MASK, RegistrationError, mask_text, parse_registration, pjsip_registration,
                             redact_registration, registration_line)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI_PATH = os.path.join(ROOT, "bin", "vicireg-validate")


def _load_cli():
    loader = importlib.machinery.SourceFileLoader("vicireg_validate", CLI_PATH)
    spec = importlib.util.spec_from_loader("vicireg_validate", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


CLI = _load_cli()


def cli_output(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        CLI.main(list(args))
    return out.getvalue()


def raised(value, protocol="sip"):
    """Every error the grammar's entry points raise for value."""
    out = []
    for call in (lambda: parse_registration(value, protocol), lambda: registration_line(value, protocol),
                 lambda: pjsip_registration(value, "acme", protocol)):
        try:
            call()
        except RegistrationError as exc:
            out.append(exc)
    return out


def errors_of(value, protocol="sip"):
    """str() and suggestion of every error the grammar raises for value."""
    return [text for exc in raised(value, protocol) for text in (str(exc), exc.suggestion or "")]


# --- the reported cases ---------------------------------------------------------------------------

def test_cli_masks_a_secret_holding_a_question_mark_in_message_and_suggestion():
    value = "register => 4155550100:Zq9Sec?Ret77@192.0.2.10:5060/4155550100x y"
    text = cli_output(value)
    as_json = cli_output("--json", value)
    for out in (text, as_json):
        assert "Zq9Sec" not in out and "Ret77" not in out, out
    result = json.loads(as_json)
    assert result["suggestion"] == "register => 4155550100:****@192.0.2.10:5060/4155550100xy"


@pytest.mark.parametrize("secret", ["Zq9Sec?Ret77", "Zq9://Ret77", "Zq9?x://Ret77", "Zq9@Ret77:x"])
@pytest.mark.parametrize("shape", ["user:%s@host", "user:%s@host x", "sip:user:%s@host", "user:%s",
                                   "register => register => user:%s@host", "user:%s;x@host"])
def test_secret_with_question_mark_or_scheme_text_is_masked(shape, secret):
    if "@" in secret and "@" not in shape:
        pytest.skip("without a later '@', what follows the secret's '@' is the host")
    value = shape % secret
    outputs = errors_of(value) + [redact_registration(value), mask_text(value), cli_output(value),
                                  cli_output("--json", value)]
    for out in outputs:
        assert "Zq9" not in out and "Ret77" not in out, (value, out)


def test_iax2_mask_runs_to_the_last_at():
    value = "user:abc@Secret9@host"
    assert mask_text(value, "iax2") == "user:****@host"
    assert redact_registration(value, "iax2") == "user:****@host"
    for out in errors_of(value, "iax2") + [cli_output("--protocol", "iax2", value)]:
        assert "Secret9" not in out, out


def test_redact_masks_all_between_first_colon_and_last_at_for_valid_strings():
    # A secret mistyped with ':' parses (secret 'Zq9', auth user 'Ret77'): both stay hidden.
    value = "user:Zq9:Ret77@host"
    assert redact_registration(value) == "user:****@host"
    out = cli_output("--json", value)
    assert "Ret77" not in out and json.loads(out)["fields"]["authuser"] == MASK


def test_fields_quoted_in_messages_are_masked_where_they_overlap_the_secret():
    for value in ("user:Zq9Sec://Ret77@host", "user@dom:Zq9Ret77:pw:x@host", "user:pw;lrZq9Ret77@host"):
        for out in errors_of(value):
            assert "Zq9" not in out and "Ret77" not in out, (value, out)


def test_lookalike_separators_count_for_the_mask():
    assert mask_text(u"user\uff1aZq9Ret77@host") == u"user\uff1a****@host"
    assert mask_text(u"user:Zq9Ret77\uff20host") == u"user:****\uff20host"


def test_suggestion_dropped_when_its_fix_would_uncover_the_secret():
    # 'sip:X@host' is user 'sip', secret X; the fix (drop the pasted scheme) leaves no ':' to mask from.
    value = "sip:Zq9Ret77@host"
    with pytest.raises(RegistrationError) as info:
        parse_registration(value)
    assert info.value.suggestion is None and "Ret77" not in str(info.value)
    assert "did you mean" not in str(info.value)


# --- the property ---------------------------------------------------------------------------------

PRINTABLE = [chr(c) for c in range(0x20, 0x7f)]
ODD = ["\t", "\n", "\r", "\x00", "\x07", "\x1b", "\x7f", u"\u00a0", u"\u00e9", u"\u2019", u"\u201c",
       u"\uff1a", u"\uff20", u"\uff1f", u"\u200b", u"\u0301", u"\U0001f600"]
# All printable ASCII; in part of the examples some Unicode and control characters too.
SECRETS = st.text(st.sampled_from(PRINTABLE[1:]), min_size=4, max_size=24) | \
    st.text(st.sampled_from(PRINTABLE * 4 + ODD), min_size=4, max_size=24)
EXAMPLES = 2000


def _vocabulary():
    """4-grams of the texts the toolkit prints by itself (message templates, forms, JSON keys)."""
    texts = []
    for path in (os.path.join(ROOT, "module_utils", "vicireg_grammar.py"), CLI_PATH):
        tree = ast.parse(open(path).read())
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body and \
                    isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                docstrings.add(id(node.body[0].value))
        texts += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and id(n) not in docstrings]
    texts += ["5060", "5061", "4569", "register => ", "(Asterisk silently uses %s)" % 5060, "'(empty)'"]
    return set().union(*(grams(t) for t in texts))


def grams(text):
    return {text[k:k + 4] for k in range(len(text) - 3)}


VOCABULARY = _vocabulary()
SENTINEL = u"\U0010fffe"  # stands for the mask: a 4-gram crossing it is no copy of the secret


def pick(common, *others):
    """common nine times out of ten: about a third of the examples have every part plain, so that
    they parse or fail late, deep in the grammar."""
    return st.sampled_from([common] * (9 * len(others)) + list(others))


@st.composite
def placed_secrets(draw):
    """(value, prefix, secret, suffix, protocol): a secret put where a secret goes, in many shapes."""
    secret = draw(SECRETS)
    prefix = "".join([
        draw(pick("", "register => ", "register => ", "register=>", "  REGISTER =>  ",
                  "register => register => ")),
        draw(pick("", "peer?", "p-1?")),
        draw(pick("", "tcp://", "udp://", "TLS://", "ws://", "tcp:/")),
        draw(pick("", "sip:", "sips:")),
        draw(pick("1234", "user", "+15551234567", "us er", "user/x", u"\u201cuser\u201d", '"user"')),
        draw(pick("", "@dom.example", "@dom.example:5082", "@[2001:db8::1]")),
        draw(pick(":", ':"', "::", u"\uff1a", " :", ":\n")),
    ])
    at = draw(pick("@", "", "@@", u"\uff20", "@\n", " @"))
    if "@" in prefix and "@" not in at:
        at = "@"  # else the secret would follow the last '@': the port, as Asterisk reads it
    suffix = "".join([
        '"' if prefix.endswith('"') else "",
        draw(pick("", ":auth", ":", "::x", ";x", "\\;")),
        at,
        draw(pick("host.example", "10.1.2.3", "[2001:db8::1]", "300.1.1.1", "sip_proxy", "ho st",
                  u"h\u00f6st", "sip:host", "", "h;x")),
        draw(pick("", ":5060", ":99999", ":abc", ":", ":5060:5070")),
        draw(pick("", "/100", "/", "/1@2", "/100/200")),
        draw(pick("", "~120", "~", "~abc")),
        draw(pick("", ";transport=tcp", ";x", "\n", "\r\n", "\nregister => x:y@z", " ", "=>", "@",
                  "x" * 240)),
    ])
    if not any(c in suffix for c in (u"@", u"\uff20")):
        # Without an '@' after it, text after an '@' of the secret is the host, as Asterisk reads it.
        secret = secret.replace("@", "a").replace(u"\uff20", "a")
    protocol = draw(st.sampled_from(["sip", "sip", "pjsip", "iax2"]))
    return prefix + secret + suffix, prefix, secret, suffix, protocol


def _allowed(value, prefix, suffix, outputs_columns):
    """4-grams a leak check must not count: those of the non-secret parts of the string (as given, as
    repr() and JSON show them, and as the suggestions rewrite them), of the toolkit's own texts, of
    the names of the string's characters, and of the column numbers in the messages."""
    texts = [prefix, suffix, repr(prefix + MASK + suffix), json.dumps(prefix + MASK + suffix)]
    for part in (prefix, suffix):
        fixed = part.replace(" ", "").replace("\t", "").replace("\r", "").replace("\n", "")
        fixed = "".join(grammar._LOOKALIKES.get(c, c) for c in fixed)
        texts += [fixed, fixed.replace(";", "\\;"), repr(fixed), json.dumps(fixed)]
    texts += [grammar._describe(c) for c in value]
    texts += [", column %d: " % c for c in outputs_columns]
    texts.append("a string of %d characters" % len(value))
    return VOCABULARY.union(*(grams(t) for t in texts))


def _strings(obj):
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in [k] + _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


_TWIN = dict(zip(map(ord, string.ascii_letters + string.digits),
                 string.ascii_lowercase[13:] + string.ascii_lowercase[:13] + string.ascii_uppercase[13:] +
                 string.ascii_uppercase[:13] + string.digits[5:] + string.digits[:5]))


def twin(secret):
    """The secret with every letter and digit replaced (rot13, +5), the rest kept: the grammar takes
    the same path for it, so its outputs hold the same template text, with other secret text."""
    return secret.translate(_TWIN)


def outputs_of(value, protocol):
    """Everything the toolkit prints for value, and the columns its errors name."""
    errors = raised(value, protocol)
    outputs = [text for exc in errors for text in (str(exc), exc.suggestion or "")]
    outputs += [redact_registration(value, protocol), mask_text(value, protocol)]
    outputs.append(cli_output("--protocol", protocol, "--", value))
    for line in cli_output("--json", "--protocol", protocol, "--", value).splitlines():
        outputs += _strings(json.loads(line))
    return outputs, [exc.column or 0 for exc in errors]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=placed_secrets())
def test_no_four_characters_of_any_secret_are_ever_printed(case):
    value, prefix, secret, suffix, protocol = case
    outputs, columns = outputs_of(value, protocol)
    # Template text the same call prints for the twin secret (joins of message pieces, numbers) is
    # no copy of the secret; 4-grams of the twin secret itself stay suspect.
    twin_outputs, _ = outputs_of(prefix + twin(secret) + suffix, protocol)
    allowed = _allowed(value, prefix, suffix, columns).union(
        *(grams(out.replace(MASK, SENTINEL)) - grams(twin(secret)) for out in twin_outputs))
    leaked = {}
    for out in outputs:
        seen = out.replace(MASK, SENTINEL)
        for gram in grams(secret) - allowed:
            if gram in seen:
                leaked[gram] = out
    assert not leaked, (value, protocol, leaked)


def test_vocabulary_is_no_blanket_exclusion():
    # The exclusion must stay meaningful: a plain secret's 4-grams are not toolkit vocabulary.
    assert not grams("Zq9xR7!kP2") & VOCABULARY
    assert unicodedata.name(u"\u00e9")  # the character names used above exist
