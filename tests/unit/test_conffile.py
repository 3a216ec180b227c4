"""The Asterisk config reader (main/config.c rules) the renderer proves its files with."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vicireg_conffile as conffile


def test_escaped_semicolon_is_a_literal_and_a_bare_one_starts_a_comment():
    assert conffile.structure("[s]\nsecret=a\\;b ; the comment\nkey = x;y\n") == [
        ("s", [("secret", "a;b"), ("key", "x")])]


def test_a_backslash_before_an_escaped_semicolon_stays():
    # config.c removes only the '\' right before the ';'.
    assert conffile.structure("[s]\nk=a\\\\;b\n") == [("s", [("k", "a\\;b")])]
    assert conffile.structure("[s]\nk=a\\;;b\n") == [("s", [("k", "a;")])]


def test_comment_only_lines_and_blank_lines_are_nothing():
    assert conffile.structure("; a comment\n\n   ; indented\n[s]\n;k=v\n") == [("s", [])]


def test_block_comments_span_lines_and_hide_sections_and_directives():
    text = "[a]\nk=1 ;-- starts\n[hidden]\n#exec /bin/sh\nstill=hidden --; after=0\nj=2\n"
    assert conffile.structure(text) == [("a", [("k", "1"), ("after", "0"), ("j", "2")])]
    # ';---' is not a block comment: an ordinary comment to the end of the line.
    assert conffile.structure("[a]\nk=1 ;--- x\nj=2\n") == [("a", [("k", "1"), ("j", "2")])]
    # An escaped ';--' opens nothing.
    assert conffile.structure("[a]\nk=x\\;--y\nj=2\n") == [("a", [("k", "x;--y"), ("j", "2")])]
    # Unclosed: everything after it is comment.
    assert conffile.structure("[a]\n;-- open\nk=1\n[b]\n") == [("a", [])]


def test_sections_templates_and_options_after_the_name():
    text = "[tpl](!)\nk=1\n[peer](tpl)\nj=2\n[plain] ; note\n"
    assert conffile.structure(text) == [("tpl(!)", [("k", "1")]), ("peer(tpl)", [("j", "2")]), ("plain", [])]
    assert conffile.section_names(text) == ["tpl", "peer", "plain"]


def test_a_section_line_without_a_closing_bracket_is_junk():
    assert conffile.structure("[a]\n[broken\nk=1\n") == [("a", []), ("!junk [broken", [("k", "1")])]


def test_include_and_exec_lines_are_directives():
    text = "[general]\n#include sip-vicidial.conf\n #tryinclude \"vicireg-sip-register.conf\"\n#exec /bin/sh\n"
    got = conffile.structure(text)
    assert got == [("general", []), ("#include sip-vicidial.conf", []),
                   ('#tryinclude "vicireg-sip-register.conf"', []), ("#exec /bin/sh", [])]
    assert conffile.includes(text) == ["sip-vicidial.conf", "vicireg-sip-register.conf"]
    assert [e.kind for e in conffile.entries(text)] == ["section", "directive", "directive", "directive"]


def test_arrow_drops_the_gt_and_a_spaced_gt_is_kept():
    assert conffile.structure("register=>u:p@h\nregister => u:q@h\n") == [
        (None, [("register", "u:p@h"), ("register", "u:q@h")])]
    assert conffile.structure("[s]\nsecret = >x\nsecret=>>y\nsecret=> >z\n") == [
        ("s", [("secret", ">x"), ("secret", ">y"), ("secret", ">z")])]


def test_first_equals_splits_and_key_and_value_are_stripped():
    assert conffile.structure("[s]\n  a = b = c  \nset_var=X=1\n") == [("s", [("a", "b = c"), ("set_var", "X=1")])]


def test_lines_without_equals_are_junk_and_show_in_the_structure():
    got = conffile.structure("[s]\nk=1\nthis is junk\n")
    assert got == [("s", [("k", "1")]), ("!junk this is junk", [])]


def test_options_before_any_section_belong_to_no_section():
    assert conffile.structure("k=1\n[s]\nj=2\n") == [(None, [("k", "1")]), ("s", [("j", "2")])]


def test_mismatch_is_none_for_equal_text():
    text = "[a]\nk=1\n\n[b]\nj=2 ; c\n"
    assert conffile.mismatch(text, [("a", [("k", "1")]), ("b", [("j", "2")])]) is None


@pytest.mark.parametrize("text,fragment", [
    ("[a]\nk=1\n[x]\n", "2 sections read back where 1 were written"),
    ("[b]\nk=1\n", "section 1 reads as [b], expected [a]"),
    ("[a]\nj=1\n", "reads as key 'j', expected 'k'"),
    ("[a]\nk=2\n", "in [a]"),
    ("[a]\nk=1\nj=2\n", "2 keys read back where 1 were written"),
    ("[a]\n#exec x\n", "0 keys read back where 1 were written"),
    ("[a]\nk=1\n#exec x\n", "2 sections read back where 1 were written"),
    ("[a]\nk=1 ;-- open\n", None),
])
def test_mismatch_returns_a_message_for_any_difference(text, fragment):
    message = conffile.mismatch(text, [("a", [("k", "1")])])
    if fragment is None:
        assert message is None  # the block comment hides nothing that was expected
    else:
        assert message and fragment in message, message


def test_mismatch_of_a_value_names_the_key_not_the_value():
    message = conffile.mismatch("[a]\nsecret=WRONGsecret\n", [("a", [("secret", "s3cret")])])
    assert message is not None and "s3cret" not in message and "WRONG" not in message


_line = st.text(alphabet=st.sampled_from(list("ab=>;[]#\\- (!)\t")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=8))
def test_structure_is_stable_under_blank_lines_and_indentation(lines):
    """Adding blank lines and indentation never changes what a text reads as (config.c strips)."""
    text = "\n".join(lines)
    padded = "\n\n".join("  %s\t" % line for line in lines)
    assert conffile.structure(padded) == conffile.structure(text)
    assert conffile.mismatch(text, conffile.structure(text)) is None
