"""The filters of playbooks/migrate-to-pjsip.yml (pure logic): the choice of carriers, the trial file."""
import pytest
from ansible.errors import AnsibleFilterError

import migrate
import vicireg_carriers as carriers
import vicireg_render as render

INVENTORY = [
    {"name": "acme", "registration": "register => 1234:s3cretA@sip.acme.example:5060/1234"},
    {"name": "beta", "protocol": "sip", "registration": "5678@beta.example:s3cretB:auth5678@edge.beta.example"},
    {"name": "pj", "protocol": "pjsip", "registration": "u:s3cretC@pj.example"},
    {"name": "iaxco", "protocol": "iax2", "registration": "user:s3cretD@iax.example"},
    {"name": "ipauth", "host": "10.9.8.7"},
    {"name": "old", "active": False, "registration": "x:s3cretE@old.example"},
    {"name": "moved", "registration": "m:s3cretF@moved.example"},
    {"name": "fresh", "registration": "f:s3cretG@fresh.example"},
]
# What the dialer's toolkit files hold now: 'moved' went to PJSIP in an earlier run, 'fresh' is nowhere.
PREVIOUS = [{"name": "acme", "driver": "sip"}, {"name": "beta", "driver": "sip"}, {"name": "pj", "driver": "pjsip"},
            {"name": "iaxco", "driver": "iax2"}, {"name": "ipauth", "driver": "sip"},
            {"name": "moved", "driver": "pjsip"}]
SECRETS = ["s3cretA", "s3cretB", "s3cretC", "s3cretD", "s3cretE", "s3cretF", "s3cretG"]


def test_default_moves_every_registering_sip_carrier_on_chan_sip():
    got = migrate.vicireg_migrate_select(INVENTORY, None, PREVIOUS)
    assert got == {"move": ["acme", "beta"], "already": ["moved"], "problems": []}


@pytest.mark.parametrize("requested", [["beta", "acme", "beta"], "beta,acme", "beta acme"])
def test_requested_names_keep_their_order(requested):
    assert migrate.vicireg_migrate_select(INVENTORY, requested, PREVIOUS)["move"] == ["beta", "acme"]


def test_each_refused_name_is_named_with_its_reason():
    got = migrate.vicireg_migrate_select(INVENTORY, ["nope", "pj", "iaxco", "old", "ipauth", "fresh", "moved"],
                                         PREVIOUS)
    assert got["move"] == [] and got["already"] == ["moved"]
    text = "\n".join(got["problems"])
    assert len(got["problems"]) == 6
    assert "'nope' is not among this dialer's carriers" in text
    assert "'pj' has protocol pjsip" in text and "'iaxco' has protocol iax2" in text
    assert "'old' is not active" in text
    assert "'ipauth' authenticates by IP" in text
    assert "'fresh' is not on this dialer's chan_sip" in text
    assert not any(s in text for s in SECRETS)


def test_bad_request_type_is_an_error():
    with pytest.raises(AnsibleFilterError, match="list of carrier names"):
        migrate.vicireg_migrate_select(INVENTORY, {"acme": 1}, PREVIOUS)


def test_as_pjsip_changes_only_the_named_carriers_and_not_the_input():
    out = migrate.vicireg_migrate_as_pjsip(INVENTORY, ["acme", "moved"])
    assert [c.get("protocol") for c in out] == ["pjsip", "sip", "pjsip", "iax2", None, None, "pjsip", None]
    assert "protocol" not in INVENTORY[0]


def test_trial_is_exactly_the_block_the_role_writes():
    """The role's reload must find the same sections the trial registered with (PJSIP keeps the object)."""
    after = migrate.vicireg_migrate_as_pjsip(INVENTORY, ["moved", "acme"])
    trial = migrate.vicireg_migrate_trial(after, "acme", "transport-", 0, 20)
    plan = carriers.carrier_plan(after, True, 20)
    role = render.render_files(plan, ["sip", "pjsip", "iax2"], "transport-", 0)["files"]["vicireg-pjsip.conf"]
    real = migrate.vicireg_migrate_fill(trial["template"], trial["secrets"])
    block = real[real.index("; vicireg:begin acme"):]
    assert block.strip() in role
    assert render.file_digests(real) == {"acme": render.file_digests(role)["acme"]}
    assert "s3cretA" in real and "s3cretA" not in trial["template"] and "s3cretA" not in trial["masked"]
    assert "password=****" in trial["masked"]
    assert trial["file"] == "vicireg-pjsip-migrate.conf" and trial["transport"] == "transport-udp"
    assert trial["target"]["name"] == "acme" and trial["target"]["driver"] == "pjsip"
    assert trial["target"]["registers"] and trial["target"]["username"] == "1234"
    assert not any(s in str(trial["target"]) for s in SECRETS)


def test_trial_refuses_a_carrier_not_on_pjsip_and_a_bad_delay():
    with pytest.raises(AnsibleFilterError, match="not an active pjsip carrier"):
        migrate.vicireg_migrate_trial(INVENTORY, "acme")
    after = migrate.vicireg_migrate_as_pjsip(INVENTORY, ["acme"])
    with pytest.raises(AnsibleFilterError, match="0-3600"):
        migrate.vicireg_migrate_trial(after, "acme", "transport-", True)


def test_summary_names_the_inventory_change_and_the_causes():
    lines = migrate.vicireg_migrate_summary("d1", [{"name": "acme", "how": "registered"}], ["moved"],
                                            [{"name": "beta", "cause": "PJSIP did not register it"}], ["acme"])
    text = "\n".join(lines)
    assert all(line.startswith("d1: ") for line in lines)
    assert "moved to PJSIP: acme (registered)" in text
    assert "inbound path NOT proven (no vicireg_migrate_test_call given) for: acme" in text
    assert "beta stays on chan_sip: PJSIP did not register it" in text
    assert "inventory change to make: carriers: set protocol: pjsip on moved, acme" in text
    check = migrate.vicireg_migrate_summary("d1", [], [], [], planned=["acme", "beta"], check_mode=True)
    assert "would move to PJSIP, one at a time: acme, beta" in check[0]
    assert migrate.vicireg_migrate_summary("d1", [], [], [])[0] == "d1: no chan_sip carrier to move"
    assert migrate.vicireg_migrate_failure("d1", [{"name": "beta", "cause": "x"}]) == "d1: beta stays on chan_sip: x"
