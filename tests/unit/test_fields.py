"""Per-field rules of the preflight (vicireg_fields through carrier_problems), by example.

Tests marked xfail(strict=True, reason="BUG: ...") document a bug found in the code under test: they
fail today and will XPASS (and so fail, strict) once it is fixed; then drop the marker and the
matching entry in carrier_oracle.known_bug / known_crash.
"""
import pytest

import vicireg_carriers as carriers
import vicireg_conffile as conffile
import vicireg_fields as fields
import vicireg_grammar as grammar
import vicireg_render as render

REG = "1234:s3cretA@sip.acme.example:5060/1234"


def problems(**carrier):
    carrier.setdefault("name", "acme")
    if "registration" not in carrier and "host" not in carrier:
        carrier["registration"] = REG
    return carriers.carrier_problems([carrier], carrier.pop("_chan_sip", True))


def refused(what, **carrier):
    found = problems(**carrier)
    assert found, "accepted: %r" % (carrier,)
    assert all(p.startswith("carrier %r: " % carrier.get("name", "acme")) or p.startswith("carrier #")
               for p in found), found
    assert any(what in p for p in found), found
    return found


def accepted(**carrier):
    assert problems(**carrier) == []


def rendered(carrier, chan_sip=True):
    plan = carriers.carrier_plan([carrier], chan_sip)
    drivers = ("sip", "pjsip", "iax2") if chan_sip else ("pjsip", "iax2")
    return render.render_files(plan, drivers)["files"]


def section(files, filename, name, kind=None):
    for sec, options in conffile.structure(files[filename]):
        if sec == name and (kind is None or dict(options).get("type") == kind):
            return options
    raise AssertionError("no [%s] in %s" % (name, filename))


# --- qualify, timeout, port ---------------------------------------------------------------------

@pytest.mark.parametrize("value,written", [("N", "no"), ("n", "no"), ("Y", "yes"), (False, "no"), (True, "yes"),
                                           (" no ", "no"), ("off", "no"), (2500, "2500"), ("2500", "2500")])
def test_qualify_words_and_milliseconds_render_as_chan_sip_reads_them(value, written):
    files = rendered({"name": "acme", "registration": REG, "qualify": value})
    assert ("qualify", written) in section(files, "vicireg-sip-peers.conf", "acme")
    iax = rendered({"name": "iaxco", "protocol": "iax2", "host": "iax.example", "qualify": value})
    assert ("qualify", written) in section(iax, "vicireg-iax-peers.conf", "iaxco")


@pytest.mark.parametrize("value,frequency", [("N", "0"), (False, "0"), ("Y", "30"), (5000, "30")])
def test_qualify_n_turns_pjsip_qualify_off(value, frequency):
    files = rendered({"name": "pj", "protocol": "pjsip", "host": "192.0.2.1", "qualify": value})
    assert ("qualify_frequency", frequency) in section(files, "vicireg-pjsip.conf", "pj", "aor")


@pytest.mark.parametrize("value", ["maybe", 0, -1, 60001, "60001", "0x10", 1.5, [], {}, "Y\nN", "yes;"])
def test_qualify_refuses_other_values(value):
    refused("qualify", qualify=value)


def test_qualify_with_a_unicode_digit_is_a_problem_not_a_crash():
    refused("qualify", qualify="\u00b2")


@pytest.mark.parametrize("value", [99999999999999, 601, 0, -5, True, "20", float("nan"), float("inf")])
def test_timeout_out_of_range_or_not_a_number_is_refused(value):
    refused("timeout", timeout=value)


@pytest.mark.parametrize("value", [1, 20, 600])
def test_timeout_in_range_is_accepted(value):
    accepted(timeout=value)


@pytest.mark.parametrize("value", [0, 65536, -1, "5060", True, 5060.0])
def test_port_must_be_an_integer_port(value):
    refused("port", port=value)


# --- host, fromdomain, match ----------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0/0", "0.0.0.0", "::", "224.0.0.1", "10.0.0.0/24", "192.0.2.1:5060",
                                  "sip:192.0.2.1", "-bad.example", "bad..example", "1.2.3", "a b", "a;b",
                                  "a\nb", "[x]", "#h", "", "h\n[evil]"])
def test_host_refuses_networks_ports_and_syntax(host):
    refused("host", host=host, registration="")


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1", "[2001:db8::1]", "sip.example", "sip.example.",
                                  "a-b.c_d.example"])
def test_host_accepts_addresses_and_names(host):
    accepted(host=host, registration="")


def test_host_with_credentials_is_refused_without_showing_them():
    found = refused("never credentials", host="acme:SECRET@192.0.2.1", registration="")
    assert not any("SECRET" in p for p in found), found
    found = refused("never credentials", fromdomain="acme:SECRET@192.0.2.1")
    assert not any("SECRET" in p for p in found), found


def test_host_refuses_an_ipv6_zone_id_holding_config_syntax(host):
    refused("host", host=host, registration="")


@pytest.mark.parametrize("protocol", ["sip", "iax2"])
def test_match_needs_pjsip(protocol):
    """chan_sip and chan_iax2 match a carrier by its host only: a match list would be silently unused."""
    refused("match needs PJSIP", protocol=protocol, host="192.0.2.1", registration="", match=["192.0.2.0/24"])
    assert carriers.carrier_problems([{"name": "x", "protocol": "sip", "host": "192.0.2.1",
                                       "match": ["192.0.2.0/24"]}], chan_sip=False) == []


def test_match_refuses_an_ipv6_zone_id_holding_config_syntax():
    refused("match", protocol="pjsip", host="192.0.2.1", registration="", match=["fe80::1%x\n[e]/128"])


@pytest.mark.parametrize("net", ["192.0.2.0/24", "10.1.0.0/16", "192.0.2.7", "2001:db8::/32", "2001:db8::/64"])
def test_match_accepts_narrow_networks(net):
    accepted(protocol="pjsip", host="192.0.2.1", registration="", match=[net])


@pytest.mark.parametrize("net", ["10.0.0.0/8", "10.0.0.0/15", "0.0.0.0/0", "::/0", "2001:db8::/31",
                                 "not an address", "name.example/24", "name.example:5060", "192.0.2.0/33",
                                 "999.1.1.1"])
def test_match_refuses_broad_networks_and_junk(net):
    refused("match", protocol="pjsip", host="192.0.2.1", registration="", match=[net])


@pytest.mark.parametrize("value", [[], "192.0.2.0/24", [24], {"a": 1}])
def test_match_must_be_a_non_empty_list_of_strings(value):
    refused("match", protocol="pjsip", host="192.0.2.1", registration="", match=value)


def test_match_accepts_dns_names_that_pjsip_resolves():
    accepted(protocol="pjsip", host="192.0.2.1", registration="", match=["sbc.carrier.example", "srv.lab.carrier"])
    files = rendered({"name": "pj", "protocol": "pjsip", "host": "sip.carrier.example",
                      "match": ["SBC2.carrier.example."]})
    assert ("match", "sip.carrier.example,sbc2.carrier.example") in section(files, "vicireg-pjsip.conf",
                                                                            "pj-identify")


def test_match_is_rendered_normalised_in_the_identify_section():
    files = rendered({"name": "pj", "protocol": "pjsip", "host": "192.0.2.1", "match": ["198.51.100.9/24"]})
    assert ("match", "192.0.2.1,198.51.100.0/24") in section(files, "vicireg-pjsip.conf", "pj-identify")


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["general", "GENERAL", "General", "ASTloop", "astloop", "globals", "default"])
def test_a_carrier_named_like_an_asterisk_section_is_refused(name):
    refused("already uses", name=name)


@pytest.mark.parametrize("name", ["a" * 16, "bad name", "a.b", "a;b", "a\nb", "[a]", "#a", "", "\u00e9t\u00e9"])
def test_bad_names_are_refused_and_the_carrier_is_numbered(name):
    found = problems(name=name)
    assert found and all(p.startswith("carrier #1: ") for p in found), found


def test_a_carrier_without_a_name_is_numbered():
    found = carriers.carrier_problems([{"name": "ok", "registration": REG}, {"registration": REG}])
    assert found == ["carrier #2: 'name' is required"]


def test_a_carrier_named_with_a_leading_dash_is_quoted_in_messages():
    found = problems(name="-", port=0)
    assert found and all(p.startswith("carrier '-': ") for p in found), found


def _plan(name, protocol="pjsip", registration=REG):
    return carriers.carrier_plan([{"name": name, "protocol": protocol, "registration": registration}])


@pytest.mark.parametrize("existing", ["ACME", "acme-REG", "Acme-Auth", "acme-identify"])
def test_section_problems_flags_a_pjsip_section_the_dialer_has(existing):
    found = carriers.section_problems(_plan("acme"), {"pjsip": ["transport-udp", existing]})
    assert len(found) == 1 and "carrier 'acme'" in found[0] and "[%s]" % existing in found[0], found


def test_section_problems_flags_a_sip_peer_the_dialer_has_and_only_in_its_driver():
    plan = _plan("Acme", protocol="sip")
    found = carriers.section_problems(plan, {"sip": ["general", "ACME"], "pjsip": ["acme"], "iax2": ["acme"]})
    assert len(found) == 1 and "sip config" in found[0] and "[ACME]" in found[0], found
    assert carriers.section_problems(plan, {"sip": ["general", "acme2"], "pjsip": ["acme"]}) == []


def test_section_problems_flags_carriers_that_collide_with_each_other():
    plan = carriers.carrier_plan([
        {"name": "acme", "protocol": "pjsip", "registration": REG},
        {"name": "acme-reg", "protocol": "pjsip", "host": "192.0.2.1"}])
    found = carriers.section_problems(plan, {"pjsip": []})
    assert any("[acme-reg] is also defined by carrier" in p for p in found), found


def test_section_problems_flags_a_transport_like_name():
    found = carriers.section_problems(_plan("transport-x"), {"pjsip": []})
    assert any("looks like a PJSIP transport" in p for p in found), found


# --- context, codecs, dtmfmode, insecure, description, fromuser ---------------------------------

@pytest.mark.parametrize("value", ["in\nbound", "in;bound", "[inbound]", "#inbound", "in bound", "a" * 80, "",
                                   "in=>b", "\u00e9", 5])
def test_context_refuses_anything_but_a_context_name(value):
    refused("context", context=value)


@pytest.mark.parametrize("value", [["ulaw\n"], ["ulaw", "al\naw"], ["ulaw;"], ["[ulaw]"], ["nosuch"], [],
                                   "ulaw", ["ulaw", "ULAW"], [None]])
def test_codecs_refuse_anything_but_known_codec_names(value):
    refused("codec", codecs=value)


@pytest.mark.parametrize("value", ["rfc2833\n", "info;", "x", 5])
def test_dtmfmode_is_an_allow_list(value):
    refused("dtmfmode", dtmfmode=value)


def test_dtmfmode_depends_on_the_driver():
    accepted(dtmfmode="shortinfo")
    refused("dtmfmode", dtmfmode="shortinfo", protocol="pjsip")
    refused("dtmfmode", dtmfmode="shortinfo", _chan_sip=False)  # a sip carrier on PJSIP
    accepted(dtmfmode="auto_info", protocol="pjsip")
    refused("dtmfmode", dtmfmode="info", protocol="iax2", registration="u:s3cret@iax.example")


@pytest.mark.parametrize("value", ["port,invite\n", "yes", "port;", 1])
def test_insecure_is_an_allow_list(value):
    refused("insecure", insecure=value)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "a\u2028b", "a\x85b", "x" * 256, 5])
def test_description_is_one_line_of_text(value):
    refused("description", description=value)


@pytest.mark.parametrize("value", ["a b", "a;b", "a\nb", "a@b", "a" * 65, "<a>", ""])
def test_fromuser_is_a_sip_user_name(value):
    refused("fromuser", fromuser=value)


@pytest.mark.parametrize("value", [True, False, "Y", "N", "yes", "no"])
def test_active_takes_booleans_and_vicidial_y_n(value):
    accepted(active=value)
    planned = carriers.carrier_plan([{"name": "acme", "registration": REG, "active": value}])
    assert bool(planned) == (value in (True, "Y", "yes"))


@pytest.mark.parametrize("value", ["Ture", "maybe", "2", [], {}, 1.5])
def test_active_refuses_values_that_are_neither_yes_nor_no(value):
    refused("active", active=value)


def test_unknown_settings_are_refused_by_name():
    refused("unknown setting(s) 'secret'", secret="x")
    refused("unknown setting(s) 'registraton'", registraton="x")


@pytest.mark.parametrize("field", ["context", "codecs", "dtmfmode", "insecure", "qualify", "options", "timeout",
                                   "port", "match", "description", "active"])
def test_a_null_field_is_refused_or_means_the_default(field):
    carrier = {"name": "acme", "registration": REG, field: None}
    if carriers.carrier_problems([carrier]):
        return
    files = rendered(carrier)
    assert "None" not in files["vicireg-sip-peers.conf"]
    default = dict(rendered({"name": "acme", "registration": REG}))
    assert files == default


def test_a_registration_with_an_empty_quoted_user_is_refused():
    refused("user", registration='"":s3cretA@sip.acme.example')


def test_a_megabyte_registration_gives_a_short_message():
    found = refused("255", registration="1234:s3cretA@" + "h" * 1000000)
    assert max(len(p) for p in found) < 2000


# --- options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["secret", "type", "host", "register", "context", "allow", "setvar", "NOPE",
                                 " nat", "nat\n", "nat;", "[nat]", "#nat", "a=>b", "username"])
def test_option_keys_outside_the_allow_list_are_refused(key):
    refused("option", options={key: "yes"})


@pytest.mark.parametrize("value", ["a;b", "a[b", "a\nb", "#x", "a=>b", " x", "x ", "", "x" * 256, "\u00e9",
                                   "a\x00b", "a\rb", 1.5, None, ["a"], {"a": 1}])
def test_option_values_that_could_change_the_file_are_refused(value):
    refused("option", options={"nat": value})


@pytest.mark.parametrize("value,written", [(True, "yes"), (False, "no"), (5, "5"), ("force_rport,comedia",
                                                                                     "force_rport,comedia"),
                                           (">x", ">x"), ("a=b", "a=b")])
def test_accepted_option_values_read_back_unchanged(value, written):
    files = rendered({"name": "acme", "registration": REG, "options": {"nat": value}})
    assert ("nat", written) in section(files, "vicireg-sip-peers.conf", "acme")


def test_a_secret_option_value_is_not_shown_in_its_message():
    found = refused("option md5secret", options={"md5secret": "Zq9;Secret"})
    assert not any("Zq9" in p for p in found), found
    found = refused("option MD5Secret", options={"MD5Secret": "Zq9\nSecret"})
    assert not any("Zq9" in p for p in found), found


def test_a_chan_sip_option_is_refused_when_the_carrier_runs_on_pjsip():
    carrier = {"name": "acme", "registration": REG, "options": {"nat": "force_rport"}}
    assert carriers.carrier_problems([carrier], chan_sip=True) == []
    found = carriers.carrier_problems([carrier], chan_sip=False)
    assert found == ["carrier 'acme': option 'nat' is not a pjsip account setting this toolkit allows"]
    with pytest.raises(grammar.RegistrationError):
        carriers.carrier_plan([carrier], chan_sip=False)
    on_pjsip = dict(carrier, options={"rtp_symmetric": True})
    assert carriers.carrier_problems([on_pjsip], chan_sip=False) == []
    assert carriers.carrier_problems([on_pjsip], chan_sip=True) != []


@pytest.mark.parametrize("protocol,key", [(d, k) for d in ("sip", "pjsip", "iax2")
                                          for k in sorted(carriers.RESERVED[d])])
def test_options_refuse_keys_the_toolkit_writes_itself(protocol, key):
    refused("set by the toolkit itself", protocol=protocol, options={key: "other"})


def test_option_key_check_ignores_case_and_masks_secret_options():
    accepted(options={"NAT": "yes", "MD5secret": "x"})
    assert fields.options({"md5secret": "a;b"}, "sip", carriers.RESERVED["sip"]) == [
        "option md5secret: the value is not acceptable (one line of printable ASCII without ';' or '[', "
        "no surrounding blanks, at most 255 characters)"]


# --- every field's message names the carrier ---------------------------------------------------------

def test_every_problem_of_every_carrier_is_reported_with_its_carrier():
    found = carriers.carrier_problems([
        {"name": "a", "registration": REG, "context": "x\ny", "codecs": ["nope"], "port": 0, "timeout": 601,
         "options": {"nat": "a;b", "bogus": 1}, "qualify": "sometimes"},
        {"name": "b", "host": "0.0.0.0"},
        "not a dict",
    ])
    assert sum(p.startswith("carrier 'a': ") for p in found) == 7, found
    assert sum(p.startswith("carrier 'b': ") for p in found) == 1, found
    assert found[-1] == "carrier #3: must be a dict, got str"
    assert carriers.carrier_problems("acme") == ["carriers: must be a list of carrier dicts, got str"]
