"""Which registry row or peer status belongs to a carrier: columns Asterisk cuts, addresses it resolved."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vicireg_status as status

CAPTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "captures")
HEADER = "Host                                    dnsmgr Username       Refresh State                Reg.Time"


def cap(version, name):
    with open(os.path.join(CAPTURES, version, name)) as handle:
        return handle.read()


def sip_line(hostport, user, state="Registered", refresh=105, regtime="Thu, 26 Nov 2026 11:34:10"):
    """One `sip show registry` row, formatted as chan_sip does."""
    return "%-39.39s %-6.6s %-12.12s  %8d %-20.20s %-25.25s" % (hostport, "N", user, refresh, state, regtime)


def registry(*lines):
    return "\n".join((HEADER,) + lines + ("%d SIP registrations." % len(lines),))


LONG_HOST = "registrar.sip-trunking.carrier-example.com"  # 42 characters: 'host:port' is cut at 39


def test_a_long_host_cut_at_39_characters_still_matches():
    rows = status.parse_sip_registry(registry(sip_line("%s:5060" % LONG_HOST, "d1sip")))
    assert rows[0]["hostport"] == ("%s:5060" % LONG_HOST)[:39] and rows[0]["port"] is None
    target = {"username": "d1sip", "host": LONG_HOST, "port": 5060}
    assert status.find_row(rows, target, 12) is rows[0]
    assert status.find_row(rows, dict(target, host=LONG_HOST.replace("registrar", "registrat0")), 12) is None
    assert status.find_row(rows, dict(target, username="other"), 12) is None


def test_a_long_user_at_domain_cut_at_12_characters_still_matches():
    rows = status.parse_sip_registry(registry(sip_line("192.0.2.5:5060", "d1auth@lab.carrier.example")))
    assert rows[0]["username"] == "d1auth@lab.c"
    target = {"username": "d1auth", "domain": "lab.carrier.example", "host": "192.0.2.5", "port": 5060}
    assert status.find_row(rows, target, 12, with_domain=True) is rows[0]
    assert status.find_row(rows, dict(target, domain="lab.other.example"), 12, with_domain=True) is None
    assert status.find_row(rows, target, 12) is None  # chan_sip shows user@domain: without it no match


def test_host_and_user_both_cut_match_together():
    rows = status.parse_sip_registry(registry(
        sip_line("%s:5080" % LONG_HOST, "d1longusername"),
        sip_line("%s:5080" % LONG_HOST.replace("trunking", "trunk1ng"), "d1longusername", state="Rejected")))
    target = {"username": "d1longusername", "host": LONG_HOST, "port": 5080}
    assert status.find_row(rows, target, 12)["state"] == "Registered"


def test_rows_the_cut_makes_indistinguishable_are_returned_as_ambiguous():
    a, b = "a" * 40 + ".example", "a" * 40 + ".example2"  # the same first 39 characters
    rows = status.parse_sip_registry(registry(sip_line("%s:5060" % a, "user"), sip_line("%s:5060" % b, "user")))
    found = status.find_row(rows, {"username": "user", "host": a, "port": 5060}, 12)
    assert isinstance(found, list) and len(found) == 2


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(host=st.lists(_label, min_size=2, max_size=4).map(".".join), port=st.integers(1, 65535),
       user=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_.-", min_size=1, max_size=30))
def test_any_host_and_user_find_their_own_row(host, port, user):
    hostport = "%s:%d" % (host, port)
    rows = status.parse_sip_registry(registry(sip_line(hostport, user)))
    target = {"username": user, "host": host, "port": port}
    assert status.find_row(rows, target, 12) is rows[0]
    if len(hostport) < 39:  # the whole port is shown: another port is another registration
        assert status.find_row(rows, dict(target, port=port % 65535 + 1), 12) is None
    if len(user) > 1:
        assert status.find_row(rows, dict(target, username=user[:-1] + ("x" if user[-1] != "x" else "y")),
                               12) is (rows[0] if len(user) > 12 else None)


def test_a_port_cut_by_the_host_column_is_not_read_as_another_port():
    """A full 39-character column may hide digits: its port is unknown, and only the printed prefix
    is compared. ':10000' cut to ':1000' is the same text chan_sip prints for port 1000, so a row can
    then only tell the two apart by user; a shorter host shows the whole port and is exact."""
    host = "a" * 26 + ".example"  # 34 characters: ':10000' is cut to ':1000'
    rows = status.parse_sip_registry(registry(sip_line("%s:10000" % host, "user")))
    assert rows[0]["port"] is None
    assert status.find_row(rows, {"username": "user", "host": host, "port": 10000}, 12) is rows[0]
    assert status.find_row(rows, {"username": "other", "host": host, "port": 1000}, 12) is None
    short = status.parse_sip_registry(registry(sip_line("%s:10000" % host[2:], "user")))
    assert short[0]["port"] == 10000
    assert status.find_row(short, {"username": "user", "host": host[2:], "port": 1000}, 12) is None


def test_the_captured_long_user_name_row():
    rows = status.parse_sip_registry(cap("a16", "sip_show_registry--registered.txt"))
    target = {"username": "d1longusername", "host": "127.0.0.10", "port": 5060}
    assert status.find_row(rows, target, 12)["username"] == "d1longuserna"


@pytest.mark.parametrize("version", ["a16", "a22"])
def test_an_iax2_row_showing_the_resolved_address_matches_through_addresses(version):
    rows = status.parse_iax2_registry(cap(version, "iax2_show_registry--registered.txt"))
    ours = [r for r in rows if r["username"] != "ASTloop"][0]
    where = "%s:%s" % (ours["host"], ours["port"])
    target = {"username": ours["username"], "host": "iax.carrier.example", "port": ours["port"]}
    assert status.find_row(rows, target, 10) is None  # the name is not what Asterisk shows
    assert status.find_row(rows, target, 10, addresses={where}) is ours
    assert status.find_row(rows, target, 10, addresses={"192.0.2.99:%s" % ours["port"]}) is None
    assert status.find_row(rows, dict(target, username="someoneelse"), 10, addresses={where}) is None


def test_an_iax2_user_cut_at_10_characters_matches():
    text = ("Host                                           dnsmgr  Username    Perceived                      "
            "                Refresh  State\n"
            "198.51.100.7:4569                              N       d1longiaxu  <Unregistered>                "
            "                     60  Registered\n1 IAX2 registrations.\n")
    rows = status.parse_iax2_registry(text)
    target = {"username": "d1longiaxuser", "host": "iax.example", "port": 4569}
    assert status.find_row(rows, target, 10, addresses={"198.51.100.7:4569"}) is rows[0]


def test_sip_peer_status_counts_only_at_the_expected_address():
    text = cap("a16", "sip_show_peer_cappeer--registered.txt")
    assert status.parse_sip_peer(text) == "OK (1 ms)"
    assert status.parse_sip_peer(text, {"127.0.0.10:5060"}) == "OK (1 ms)"
    assert status.parse_sip_peer(text, {"127.0.0.10:5061", "127.0.0.11:5060"}) is None
    assert status.parse_sip_peer(text, set()) is None
    dead = cap("a16", "sip_show_peer_capdead--no-answer.txt")
    assert status.parse_sip_peer(dead, {"127.0.0.19:5099"}) == "UNREACHABLE"
    assert status.parse_sip_peer(dead, {"127.0.0.10:5060"}) is None


def test_sip_peer_synthetic_addresses_and_missing_peer():
    text = "  * Name       : acme\n  Addr->IP     : 127.0.0.10:5060\n  Status       : OK (4 ms)\n"
    assert status.parse_sip_peer(text, {"127.0.0.10:5060"}) == "OK (4 ms)"
    assert status.parse_sip_peer(text, {"127.0.0.100:5060"}) is None
    assert status.parse_sip_peer(text.replace("127.0.0.10:5060", "(null)"), {"127.0.0.10:5060"}) is None
    assert status.parse_sip_peer("Peer acme not found.\n", {"127.0.0.10:5060"}) is None
    assert status.parse_sip_peer("Peer acme not found.\n") is None
