"""Preflight rules, the render plan, rendering and change detection (pure logic)."""
import pytest

import vicireg_carriers as carriers
import vicireg_render as render
from vicireg_grammar import RegistrationError

GOOD = [
    {"name": "acme", "registration": "register => 1234:s3cretA@sip.acme.example:5060/1234"},
    {"name": "acme-pj", "protocol": "pjsip", "registration": "tcp://5678:s3cretB@pj.acme.example:5080/5678~300"},
    {"name": "iaxco", "protocol": "iax2", "registration": "user:s3cretC@iax.example"},
    {"name": "ipauth", "host": "10.9.8.7"},
    {"name": "old", "active": False, "registration": "x:s3cretD@old.example"},
]


def test_good_carriers_have_no_problems():
    assert carriers.carrier_problems(GOOD) == []


def test_every_problem_is_reported_at_once_without_secrets():
    bad = [
        {"name": "a" * 16, "registration": "u:s3cretE@h"},
        {"name": "dup", "registration": "u:s3cretF@h:99999"},
        {"name": "DUP", "registration": "u:s3cretG@h"},
        {"name": "noauth", "registration": "u@h"},
        {"name": "nohost"},
        {"name": "bad name", "registration": "u:s3cretH@h"},
        {"registration": "u:s3cretI@h"},
        {"name": "proto", "protocol": "h323"},
        {"name": "typo", "registraton": "u:s3cretJ@h", "host": "h"},
    ]
    problems = carriers.carrier_problems(bad)
    text = "\n".join(problems)
    assert "must be 1-15 letters" in text
    assert "carrier 'dup'" in text and "1-65535" in text
    assert "duplicate name" in text
    assert "carrier 'noauth'" in text and "no secret" in text
    assert "carrier 'nohost'" in text and "needs 'host'" in text
    assert "carrier #6: name 'bad name' must be" in text
    assert "carrier #7: 'name' is required" in text
    assert "protocol must be one of" in text
    assert "unknown setting(s) 'registraton'" in text
    assert "s3cret" not in text
    assert len(problems) >= 9


def test_plan_skips_inactive_and_maps_sip_to_pjsip_without_chan_sip():
    with_sip = carriers.carrier_plan(GOOD, chan_sip=True)
    assert [p["name"] for p in with_sip] == ["acme", "acme-pj", "iaxco", "ipauth"]
    assert [p["driver"] for p in with_sip] == ["sip", "pjsip", "iax2", "sip"]
    without = carriers.carrier_plan(GOOD, chan_sip=False)
    assert [p["driver"] for p in without] == ["pjsip", "pjsip", "iax2", "pjsip"]
    assert without[0]["pjsip"]["registration_name"] == "acme-reg"


def test_plan_refuses_bad_input():
    with pytest.raises(RegistrationError, match="carrier 'x'"):
        carriers.carrier_plan([{"name": "x", "registration": "sip:u:pw@h"}])


def test_verify_targets_hold_no_secret():
    targets = carriers.verify_targets(carriers.carrier_plan(GOOD))
    assert "s3cret" not in repr(targets)
    assert targets[0] == {"name": "acme", "driver": "sip", "registers": True, "registration": None,
                          "username": "1234", "domain": None,
                          "qualify": True,
                          "host": "sip.acme.example", "port": 5060, "port_given": True, "transport": "udp",
                          "timeout": 20}
    assert targets[3]["registers"] is False and targets[3]["host"] == "10.9.8.7"


def test_render_blocks_and_files():
    plan = carriers.carrier_plan(GOOD)
    blocks = render.carrier_blocks(plan)
    assert blocks["vicireg-sip-register.conf"] == {"acme": "register => 1234:s3cretA@sip.acme.example:5060/1234"}
    peer = blocks["vicireg-sip-peers.conf"]["acme"]
    assert peer.startswith("[acme]\ntype=peer\nhost=sip.acme.example\nport=5060")
    assert "secret=s3cretA" in peer and "context=trunkinbound" in peer
    ip = blocks["vicireg-sip-peers.conf"]["ipauth"]
    assert "host=10.9.8.7" in ip and "secret" not in ip and "qualify=yes" in ip
    pj = blocks["vicireg-pjsip.conf"]["acme-pj"]
    for line in ("[acme-pj-reg]", "type=registration", "transport=transport-tcp", "server_uri=sip:pj.acme.example",
                 "outbound_proxy=sip:pj.acme.example:5080\\;lr",
                 "client_uri=sip:5678@pj.acme.example", "contact_user=5678", "expiration=300",
                 "outbound_auth=acme-pj-auth", "[acme-pj-auth]", "password=s3cretB", "type=endpoint",
                 "type=aor", "contact=sip:pj.acme.example:5080", "[acme-pj-identify]", "match=pj.acme.example"):
        assert line in pj.splitlines(), line
    assert blocks["vicireg-iax-register.conf"]["iaxco"] == "register => user:s3cretC@iax.example"
    text = render.render_file("vicireg-sip-peers.conf", blocks["vicireg-sip-peers.conf"])
    assert "; vicireg:begin acme\n[acme]" in text and text.endswith("; vicireg:end ipauth\n")
    assert render.file_digests(text) == {k: render.digest(v) for k, v in blocks["vicireg-sip-peers.conf"].items()}


def test_render_refuses_a_driver_the_dialer_lacks():
    with pytest.raises(RegistrationError, match="needs the iax2 driver"):
        render.carrier_blocks(carriers.carrier_plan(GOOD), drivers=("sip", "pjsip"))


def test_semicolon_in_secret_is_escaped_everywhere():
    plan = carriers.carrier_plan([{"name": "semi", "registration": r"u:a\;b@h"},
                                  {"name": "semipj", "protocol": "pjsip", "registration": r"v:c\;d@h"}])
    blocks = render.carrier_blocks(plan)
    assert blocks["vicireg-sip-register.conf"]["semi"] == r"register => u:a\;b@h"
    assert r"secret=a\;b" in blocks["vicireg-sip-peers.conf"]["semi"]
    assert r"password=c\;d" in blocks["vicireg-pjsip.conf"]["semipj"]


def test_changes_name_carriers_files_and_drivers():
    plan = carriers.carrier_plan(GOOD)
    blocks = render.carrier_blocks(plan)
    desired = {f: {c: render.digest(t) for c, t in b.items()} for f, b in blocks.items()}
    assert render.changes(desired, desired)["files"] == []
    current = {f: dict(d) for f, d in desired.items()}
    current["vicireg-sip-peers.conf"]["acme"] = "old"
    current["vicireg-pjsip.conf"]["gone"] = "x"
    del current["vicireg-iax-register.conf"]["iaxco"]
    got = render.changes(desired, current)
    assert got["changed"] == ["acme"] and got["removed"] == ["gone"]
    assert got["added"] == ["iaxco"]
    assert got["drivers"] == ["iax2", "pjsip", "sip"]
    assert got["reload"] == ["iax2 reload", "module reload res_pjsip.so", "sip reload"]


def test_current_targets_read_back_the_files_without_secrets():
    plan = carriers.carrier_plan(GOOD)
    blocks = render.carrier_blocks(plan)
    files = {f: render.render_file(f, b) for f, b in blocks.items()}
    targets = {t["name"]: t for t in render.current_targets(files)}
    assert targets["acme"]["username"] == "1234" and targets["acme"]["registers"] is True
    assert targets["acme-pj"] == {"name": "acme-pj", "driver": "pjsip", "registers": True, "username": None,
                                  "registration": "acme-pj-reg",
                                  "host": "pj.acme.example", "port": 5080, "port_given": True,
                                  "transport": "udp", "timeout": 20}
    assert targets["iaxco"]["driver"] == "iax2" and targets["iaxco"]["port"] == 4569
    assert targets["ipauth"]["registers"] is False and targets["ipauth"]["host"] == "10.9.8.7"
    assert "s3cret" not in repr(targets)


def test_redact_config_masks_secrets_and_register_lines():
    text = "register => u:s3cretK@h\n[p]\nsecret=s3cretL\npassword = s3cretM\nhost=h\n"
    out = render.redact_config(text)
    assert "s3cret" not in out and "host=h" in out and "register => u:****@h" in out
