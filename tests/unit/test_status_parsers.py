"""Status parsers and verdicts on output captured from real Asterisk 16 and 22 in the lab.

tests/data/captures is written by tests/lab/capture_status.py (`make captures`), never by hand.
"""
import os

import pytest

import vicireg_status as status

CAPTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "captures")


def cap(version, name):
    with open(os.path.join(CAPTURES, version, name)) as handle:
        return handle.read()


def test_captures_come_from_both_asterisk_versions():
    assert "Asterisk 16." in cap("a16", "VERSION.txt")
    assert "Asterisk 22." in cap("a22", "VERSION.txt")


@pytest.mark.parametrize("situation,expected", [
    ("registered", {"d1sip": "Registered", "d1longuserna": "Registered"}),
    ("wrong-secret", {"d1sip": "Auth. Sent"}),
    ("forbidden-and-unknown", {"blockeduser": "No Authentication", "nosuchuser": "Rejected"}),
    ("no-answer", {"d1sip": "Request Sent"}),
])
def test_sip_show_registry(situation, expected):
    rows = status.parse_sip_registry(cap("a16", "sip_show_registry--%s.txt" % situation))
    assert {r["username"]: r["state"] for r in rows} == expected
    for r in rows:
        assert r["port"] in (5060, 5099)
        if r["state"] == "Registered":
            assert r["regtime"] and r["refresh"] > 0
        else:
            assert r["regtime"] is None


def test_sip_registry_row_for_a_long_user_name_and_a_domain():
    rows = status.parse_sip_registry(cap("a16", "sip_show_registry--registered.txt"))
    long_user = {"username": "d1longusername", "host": "127.0.0.10", "port": 5060}
    assert status.find_row(rows, long_user, 12)["state"] == "Registered"
    assert status.find_row(rows, dict(long_user, username="d1longuserXYZ"), 12) is None
    assert status.find_row(rows, dict(long_user, port=5070), 12) is None
    with_domain = [dict(rows[0], username="d1auth@lab.c")]
    assert status.find_row(with_domain, {"username": "d1auth", "domain": "lab.carrier", "host": "127.0.0.10",
                                         "port": 5060}, 12, with_domain=True) is with_domain[0]


@pytest.mark.parametrize("version", ["a16", "a22"])
@pytest.mark.parametrize("situation,state", [
    ("registered", "Registered"), ("wrong-secret", "Rejected"), ("no-answer", "Request Sent")])
def test_iax2_show_registry(version, situation, state):
    rows = status.parse_iax2_registry(cap(version, "iax2_show_registry--%s.txt" % situation))
    ours = [r for r in rows if r["username"] != "ASTloop"]
    assert len(ours) == 1 and ours[0]["state"] == state
    assert ours[0]["username"].startswith("d") and ours[0]["username"].endswith("iax")
    # VICIdial's own inter-server loop is there but never ours.
    assert [r["username"] for r in rows if r["username"] == "ASTloop"] == ["ASTloop"]


@pytest.mark.parametrize("version", ["a16", "a22"])
@pytest.mark.parametrize("situation,name,state", [
    ("registered", "capgood-reg", "Registered"), ("wrong-secret", "capbad-reg", "Rejected"),
    ("forbidden-and-unknown", "capunknown-reg", "Rejected"), ("no-answer", "capnoanswer-reg", "Unregistered")])
def test_pjsip_show_registrations(version, situation, name, state):
    rows = status.parse_pjsip_registrations(cap(version, "pjsip_show_registrations--%s.txt" % situation))
    assert [(r["name"], r["state"]) for r in rows] == [(name, state)]
    assert rows[0]["server_uri"].startswith("sip:127.0.0.")


def test_pjsip_registered_row_has_its_expiry():
    rows = status.parse_pjsip_registrations(cap("a22", "pjsip_show_registrations--registered.txt"))
    assert rows[0]["expires"] > 60


def test_sip_show_peer_status():
    assert status.parse_sip_peer(cap("a16", "sip_show_peer_cappeer--registered.txt")).startswith("OK")
    assert status.parse_sip_peer(cap("a16", "sip_show_peer_capdead--no-answer.txt")) == "UNREACHABLE"
    assert status.parse_sip_peer("Peer nosuch not found.\n") is None
    # Until chan_sip's background reload is done, the old peer (old address) does not count.
    dead = cap("a16", "sip_show_peer_capdead--no-answer.txt")
    assert status.parse_sip_peer(dead, "127.0.0.19:5099") == "UNREACHABLE"
    assert status.parse_sip_peer(dead, "127.0.0.10:5060") is None


@pytest.mark.parametrize("version", ["a16", "a22"])
def test_pjsip_contacts(version):
    assert status.parse_pjsip_contacts(cap(version, "pjsip_show_contacts--registered.txt"), "cappeer") == "Avail"
    assert status.parse_pjsip_contacts(cap(version, "pjsip_show_contacts--no-answer.txt"), "capdead") == "Unavail"
    assert status.parse_pjsip_contacts(cap(version, "pjsip_show_contacts--no-answer.txt"), "other") is None
    text = cap(version, "pjsip_show_contacts--registered.txt")
    assert status.parse_pjsip_contacts(text, "cappeer", "sip:127.0.0.10:5060") == "Avail"
    assert status.parse_pjsip_contacts(text, "cappeer", "sip:127.0.0.19:5060") is None


def test_cli_failures_name_the_cause():
    with pytest.raises(status.AsteriskUnavailable, match="not running"):
        status.check_cli("Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n",
                         "sip show registry", "sip")
    with pytest.raises(status.AsteriskUnavailable, match="driver sip is not loaded"):
        status.check_cli("No such command 'sip show registry' (type 'core show help sip show' for other possible "
                         "commands)\n", "sip show registry", "sip")
    status.check_cli(cap("a16", "sip_show_registry--registered.txt"), "sip show registry", "sip")


def _judge(driver="sip", registers=True, **kw):
    target = {"name": "c", "driver": driver, "registers": registers, "username": "u", "host": "h", "port": 5060,
              "timeout": 10, "qualify": True}
    return status.Judge(target, 100.0, **kw)


def test_verdicts_from_captured_states():
    rows = status.parse_sip_registry(cap("a16", "sip_show_registry--forbidden-and-unknown.txt"))
    j = _judge()
    assert j.observe(rows[0]["state"], 100.4) and j.verdict == "failed" and "403" in j.cause
    j = _judge()
    assert j.observe(rows[1]["state"], 100.4) and "rejected" in j.cause
    j = _judge()
    assert j.observe("Registered", 100.5, regtime=99.0) and j.verdict == "registered" and j.seconds == 0.5


def test_auth_sent_persisting_means_credentials_refused():
    j = _judge(auth_grace=2.0)
    assert not j.observe("Auth. Sent", 100.2)
    assert not j.observe("Auth. Sent", 101.0)
    assert j.observe("Auth. Sent", 102.3) and "credentials refused" in j.cause


def test_request_sent_until_timeout_means_no_answer():
    j = _judge()
    assert not j.observe("Request Sent", 101)
    j.timeout(110.1)
    assert j.verdict == "failed" and "no answer from the carrier at h:5060" in j.cause
    j = _judge()
    j.timeout(110.1, dns="carrier host name h does not resolve")
    assert j.cause == "carrier host name h does not resolve"
    j = _judge("pjsip")
    assert not j.observe("Request Sent", 101)
    j.timeout(110.1, dns="srv:registrar.example:5062")
    assert "no SRV target of h answers (tried registrar.example:5062" in j.cause
    assert "dnsmgr" not in j.cause  # PJSIP follows the record's port by itself
    j = _judge("sip")
    assert not j.observe("Request Sent", 101)
    j.timeout(110.1, dns="srv:registrar.example:5062")
    assert "only with dnsmgr enabled (dnsmgr.conf enable=yes), otherwise it sends to port 5060" in j.cause


def test_stale_registration_before_a_chan_sip_reload_does_not_count():
    j = _judge(fresh_since=100)
    assert not j.observe("Registered", 100.3, regtime=95.0)
    assert j.observe("Registered", 100.9, regtime=100.0)


def test_forced_pjsip_reregister_waits_out_the_old_state():
    j = _judge(driver="pjsip")
    j.accept_after = 101.0
    assert not j.observe("Registered", 100.5)
    assert j.observe("Rejected", 100.7) and j.verdict == "failed"


def test_ip_auth_verdicts():
    j = _judge(registers=False)
    assert j.observe(status.parse_sip_peer(cap("a16", "sip_show_peer_cappeer--registered.txt")), 100.1)
    assert j.verdict == "reachable"
    j = _judge(registers=False)
    assert j.observe("UNREACHABLE", 100.1) and "unreachable" in j.cause
    j = _judge(registers=False)
    assert not j.observe("UNKNOWN", 100.1)
    j.target["qualify"] = False
    assert j.observe("NonQual", 100.2) and j.verdict == "unqualified"


def test_transport_binds_and_collisions_from_captures():
    binds = status.parse_sip_binds(cap("a16", "sip_show_settings--registered.txt"))
    assert binds == [("sip-udp", "127.0.0.21:5060"), ("sip-tcp", "127.0.0.21:5060")]
    pj16 = status.parse_pjsip_transports(cap("a16", "pjsip_show_transports--registered.txt"))
    assert pj16 == [("transport-tcp", "tcp", "127.0.0.21:5070"), ("transport-udp", "udp", "127.0.0.21:5070")]
    assert status.transport_problems(binds, pj16, ["transport-udp"]) == []
    pj22 = status.parse_pjsip_transports(cap("a22", "pjsip_show_transports--registered.txt"))
    assert ("transport-udp", "udp", "127.0.0.22:5060") in pj22
    clash = [("transport-udp", "udp", "127.0.0.21:5060")]
    problems = status.transport_problems(binds, clash, ["transport-tls"])
    assert "chan_sip (sip-udp, 127.0.0.21:5060) already holds" in problems[0]
    assert "transport-tls, which a carrier needs, is not defined" in problems[1]


@pytest.mark.parametrize("sip,pjsip,collide", [
    ("0.0.0.0:5060", "127.0.0.21:5060", True),   # VICIdial's usual bindaddr=0.0.0.0
    ("127.0.0.21:5060", "0.0.0.0:5060", True),   # PJSIP's usual bind=0.0.0.0
    ("0.0.0.0:5060", "0.0.0.0:5070", False),
    ("127.0.0.21:5060", "127.0.0.22:5060", False),
    ("[::]:5060", "127.0.0.21:5060", True),      # '::' is dual-stack
    ("0.0.0.0:5060", "[::1]:5060", False),
    ("[::1]:5060", "[::1]:5060", True),
])
def test_wildcard_binds_collide_with_every_address_on_their_port(sip, pjsip, collide):
    problems = status.transport_problems([("sip-udp", sip)], [("transport-udp", "udp", pjsip)], [])
    assert bool(problems) is collide, problems
    # Another protocol never collides (udp vs tcp sockets).
    assert status.transport_problems([("sip-tcp", sip)], [("transport-udp", "udp", pjsip)], []) == []
