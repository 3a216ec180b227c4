"""pjsip_style: wizard — VICIdial's PJSIP_WIZ shape, registering exactly as the plain sections do."""
import pytest

import vicireg_carriers as carriers
import vicireg_conffile as conffile
import vicireg_render as render

WIZ = {"name": "acme", "protocol": "pjsip", "pjsip_style": "wizard",
       "registration": "u1@dom.example:Zq9Secret:auth1@edge.example:5070/7001~300"}


def wizard_options(files, name="acme"):
    (section,) = [opts for sec, opts in conffile.structure(files["vicireg-pjsip-wizard.conf"]) if sec == name]
    return section


def test_a_wizard_carrier_reads_back_with_the_mapping_of_the_plain_sections():
    out = render.render_files(carriers.carrier_plan([WIZ]), ("pjsip",))
    opts = dict(wizard_options(out["files"]))
    plain = render.render_files(carriers.carrier_plan([dict(WIZ, pjsip_style="sections")]), ("pjsip",))
    reg = dict(next(o for s, o in conffile.structure(plain["files"]["vicireg-pjsip.conf"]) if s == "acme-reg"))
    assert opts["type"] == "wizard" and opts["sends_registrations"] == "yes" and opts["sends_auth"] == "yes"
    assert opts["server_uri_pattern"] == reg["server_uri"] == "sip:dom.example"
    assert opts["client_uri_pattern"] == reg["client_uri"] == "sip:u1@dom.example"
    assert opts["registration/outbound_proxy"] == reg["outbound_proxy"] == "sip:edge.example:5070;lr"
    assert opts["registration/contact_user"] == "7001" and opts["registration/expiration"] == "300"
    assert opts["outbound_auth/username"] == "auth1" and opts["outbound_auth/password"] == "Zq9Secret"
    assert opts["remote_hosts"] == "edge.example" and opts["contact_pattern"] == "sip:edge.example:5070"
    assert out["files"]["vicireg-pjsip.conf"].count("[") == 0  # nothing in the plain file


def test_the_wizard_secret_travels_as_a_token_and_is_masked_in_diffs():
    out = render.render_files(carriers.carrier_plan([WIZ]), ("pjsip",))
    assert "Zq9Secret" not in out["templates"]["vicireg-pjsip-wizard.conf"]
    assert "Zq9Secret" in out["secrets"].values()
    assert "Zq9Secret" not in render.redact_config(out["files"]["vicireg-pjsip-wizard.conf"])


def test_wizard_objects_and_registration_name():
    item = carriers.carrier_plan([WIZ])[0]
    assert carriers.section_names(item) == ["acme", "acme-oauth", "acme-identify", "acme-reg-0"]
    assert carriers.verify_targets([item])[0]["registration"] == "acme-reg-0"
    out = render.render_files([item], ("pjsip",))
    (target,) = render.current_targets(out["files"])
    assert target["registration"] == "acme-reg-0" and target["registers"] is True


def test_an_ip_auth_wizard_carrier_sends_neither_auth_nor_registrations():
    out = render.render_files(carriers.carrier_plan([{"name": "ipw", "protocol": "pjsip", "pjsip_style": "wizard",
                                                      "host": "192.0.2.5", "match": ["198.51.100.0/24"]}]),
                              ("pjsip",))
    opts = dict(wizard_options(out["files"], "ipw"))
    assert opts["sends_auth"] == "no" and opts["sends_registrations"] == "no"
    assert opts["identify/match"] == "198.51.100.0/24" and opts["remote_hosts"] == "192.0.2.5"


@pytest.mark.parametrize("carrier,message", [
    (dict(WIZ, pjsip_style="wizzard"), "pjsip_style must be one of sections, wizard"),
    (dict(WIZ, protocol="sip"), "pjsip_style wizard needs PJSIP"),
])
def test_a_wrong_style_is_refused(carrier, message):
    problems = carriers.carrier_problems([carrier])
    assert any(message in p for p in problems), problems
    assert not any("Zq9Secret" in p for p in problems)


def test_a_sip_carrier_on_a_dialer_without_chan_sip_may_use_the_wizard():
    assert carriers.carrier_problems([dict(WIZ, protocol="sip")], chan_sip=False) == []
