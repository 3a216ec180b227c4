"""render_files: what each file reads back as, secrets apart as tokens, the read-back safety net,
redaction and change detection."""
import pytest

import vicireg_carriers as carriers
import vicireg_conffile as conffile
import vicireg_grammar as grammar
import vicireg_render as render

ALL = ("sip", "pjsip", "iax2")


def render_all(carrier_list, chan_sip=True):
    plan = carriers.carrier_plan(carrier_list, chan_sip)
    return render.render_files(plan, ALL if chan_sip else ("pjsip", "iax2"))


def values(text, section, key, kind=None):
    out = []
    for name, options in conffile.structure(text):
        if name == section and (kind is None or dict(options).get("type") == kind):
            out += [v for k, v in options if k == key]
    return out


GT_SECRETS = [">s3cret", ">>x12345", ">gt=1"]


def _gt_carriers(secret):
    return [
        {"name": "sipc", "registration": "u:%s@sip.example" % secret},
        {"name": "pjc", "protocol": "pjsip", "registration": "u:%s@pj.example" % secret},
        {"name": "iaxc", "protocol": "iax2", "registration": "u:%s@iax.example" % secret},
        {"name": "opt", "host": "192.0.2.1", "options": {"md5secret": secret, "callerid": ">x"}},
    ]


def _check_gt(files, secret):
    assert values(files["vicireg-sip-peers.conf"], "sipc", "secret") == [secret]
    assert values(files["vicireg-pjsip.conf"], "pjc-auth", "password") == [secret]
    assert values(files["vicireg-iax-peers.conf"], "iaxc", "secret") == [secret]
    assert values(files["vicireg-sip-peers.conf"], "opt", "md5secret") == [secret]
    assert values(files["vicireg-sip-peers.conf"], "opt", "callerid") == [">x"]
    for name in ("vicireg-sip-register.conf", "vicireg-iax-register.conf"):
        (reg,) = values(files[name], None, "register")
        protocol = "iax2" if "iax" in name else "sip"
        assert grammar.parse_registration(reg, protocol)["secret"] == secret


@pytest.mark.parametrize("secret", GT_SECRETS)
def test_a_secret_starting_with_gt_reads_back_whole_in_the_proven_text(secret):
    out = render_all(_gt_carriers(secret))
    _check_gt(out["files"], secret)
    assert "secret = %s" % secret in out["files"]["vicireg-sip-peers.conf"].splitlines()


@pytest.mark.parametrize("secret", GT_SECRETS)
def test_a_secret_starting_with_gt_reads_back_whole_in_the_file_written(secret):
    out = render_all(_gt_carriers(secret))
    written = {f: render.fill_template(t, out["secrets"]) for f, t in out["templates"].items()}
    _check_gt(written, secret)
    assert written == out["files"]


def test_a_semicolon_in_a_secret_is_escaped_and_reads_back():
    out = render_all([{"name": "semi", "registration": "u:se\\;cret@sip.example"},
                      {"name": "semipj", "protocol": "pjsip", "registration": "u:pj\\;cret@sip.example"}])
    assert "secret=se\\;cret" in out["files"]["vicireg-sip-peers.conf"].splitlines()
    assert values(out["files"]["vicireg-sip-peers.conf"], "semi", "secret") == ["se;cret"]
    assert values(out["files"]["vicireg-pjsip.conf"], "semipj-auth", "password") == ["pj;cret"]
    (reg,) = values(out["files"]["vicireg-sip-register.conf"], None, "register")
    assert reg == "u:se;cret@sip.example"
    assert "se\\;cret" in out["secrets"].values()


def test_templates_hold_tokens_and_fill_back_to_the_files():
    out = render_all([{"name": "a", "registration": "u:Zq9Alpha@sip.example", "options": {"auth": "x:Zq9Beta@r"}},
                      {"name": "b", "protocol": "iax2", "registration": "u:Zq9Gamma@iax.example",
                       "options": {"dbsecret": "Zq9Delta/k"}},
                      {"name": "c", "protocol": "pjsip", "registration": "u:Zq9Eps@pj.example"}])
    templates = "\n".join(out["templates"].values())
    assert "Zq9" not in templates
    assert sorted(out["secrets"].values()) == sorted(
        ["Zq9Alpha", "Zq9Alpha", "x:Zq9Beta@r", "Zq9Gamma", "Zq9Gamma", "Zq9Delta/k", "Zq9Eps"])
    for token in out["secrets"]:
        assert templates.count(token) == 1
    for name, template in out["templates"].items():
        assert render.fill_template(template, out["secrets"]) == out["files"][name]
        assert render.digest(template) != render.digest(out["files"][name]) or "Zq9" not in out["files"][name]


def test_a_value_that_looks_like_a_token_is_not_filled():
    out = render_all([{"name": "a", "host": "192.0.2.1", "options": {"callerid": "@@vicireg-secret-2@@"}},
                      {"name": "b", "registration": "u:s3cretB@sip.example"}])
    for name, template in out["templates"].items():
        assert render.fill_template(template, out["secrets"]) == out["files"][name]


def test_a_pjsip_contact_brackets_an_ipv6_host():
    out = render_all([{"name": "v6", "protocol": "pjsip", "host": "2001:db8::1", "port": 5080}])
    assert values(out["files"]["vicireg-pjsip.conf"], "v6", "contact", "aor") == ["sip:[2001:db8::1]:5080"]


def test_a_bracketed_ipv6_host_is_bracketed_in_the_contact_and_bare_in_match():
    out = render_all([{"name": "v6", "protocol": "pjsip", "host": "[2001:db8::1]"}])
    text = out["files"]["vicireg-pjsip.conf"]
    assert values(text, "v6", "contact", "aor") == ["sip:[2001:db8::1]"]
    assert values(text, "v6-identify", "match") == ["2001:db8::1"]


def test_register_lines_sit_before_any_section_and_peers_are_sorted():
    out = render_all([{"name": "zeta", "registration": "u:s3cretZ@z.example"},
                      {"name": "alpha", "registration": "u:s3cretA@a.example"},
                      {"name": "mid", "host": "192.0.2.1"}])
    structure = conffile.structure(out["files"]["vicireg-sip-register.conf"])
    assert [(s, [k for k, _ in o]) for s, o in structure] == [(None, ["register", "register"])]
    assert conffile.section_names(out["files"]["vicireg-sip-peers.conf"]) == ["alpha", "mid", "zeta"]
    assert set(out["digests"]["vicireg-sip-register.conf"]) == {"alpha", "zeta"}


def test_only_the_changed_carriers_digest_changes():
    before = render_all([{"name": "a", "registration": "u:s3cretA@a.example"}, {"name": "b", "host": "192.0.2.1"}])
    after = render_all([{"name": "a", "registration": "u:s3cretX@a.example"}, {"name": "b", "host": "192.0.2.1"},
                        {"name": "c", "protocol": "iax2", "host": "192.0.2.9"}])
    change = render.changes(after["digests"], before["digests"])
    assert change["added"] == ["c"] and change["changed"] == ["a"] and change["removed"] == []
    assert change["drivers"] == ["iax2", "sip"] and "iax2 reload" in change["reload"]
    gone = render.changes(before["digests"], after["digests"])
    assert gone["removed"] == ["c"]


def test_current_targets_read_from_the_files_on_the_dialer():
    out = render_all([{"name": "a", "registration": "u:s3cretA@a.example:5070"}, {"name": "b", "host": "192.0.2.1"},
                      {"name": "p", "protocol": "pjsip", "registration": "tcp://v:s3cretP@p.example:5080"}])
    targets = {t["name"]: t for t in render.current_targets(out["files"])}
    assert targets["a"]["registers"] and targets["a"]["username"] == "u" and targets["a"]["port"] == 5070
    assert not targets["b"]["registers"] and targets["b"]["host"] == "192.0.2.1"
    assert targets["p"]["registers"] and targets["p"]["host"] == "p.example" and targets["p"]["port"] == 5080
    assert "s3cret" not in repr(targets)


def test_a_carrier_whose_driver_is_not_loaded_is_refused():
    plan = carriers.carrier_plan([{"name": "a", "registration": "u:s3cretA@a.example"}])
    with pytest.raises(grammar.RegistrationError, match="needs the sip driver"):
        render.render_files(plan, ("pjsip", "iax2"))


@pytest.mark.parametrize("field,value", [("context", "x\n[evil]"),
                                         ("host", "h\n#exec /bin/sh"), ("context", "x\nnat=yes"),
                                         ("context", "x "), ("dtmfmode", "info\n[general]")])
def test_the_read_back_refuses_a_plan_that_bypassed_the_preflight(field, value):
    """The safety net under the preflight: a value that would change the file is caught by reading the
    rendered text back, and the message names the file, not the value."""
    for carrier in ({"name": "a", "registration": "u:s3cretA@a.example"},
                    {"name": "p", "protocol": "pjsip", "host": "192.0.2.1"}):
        plan = carriers.carrier_plan([carrier])
        plan[0][field] = value
        with pytest.raises(grammar.RegistrationError) as info:
            render.render_files(plan)
        message = str(info.value)
        assert "would not be read as rendered" in message and "nothing was written" in message
        assert "evil" not in message and "exec" not in message and "s3cret" not in message


def test_a_secret_that_would_change_the_file_is_refused_without_showing_it():
    plan = carriers.carrier_plan([{"name": "pj", "protocol": "pjsip", "registration": "u:s3cretB@h.example"}])
    plan[0]["pjsip"]["auth"]["password"] = "Zq9x\n[Zq9Section]\nZq9Key=1"
    with pytest.raises(grammar.RegistrationError) as info:
        render.render_files(plan)
    assert "vicireg-pjsip.conf" in str(info.value) and "Zq9" not in str(info.value)


def test_redact_config_masks_every_secret_line_and_register_line():
    text = ("register => u:p4ssword@h\nREGISTER=>x:y\\;z@h:5060\n[a]\nSecret = >abc12\nmd5secret=abc12\n"
            "auth=u:abc12@realm\npassword=abc12\ndbsecret=f/abc12\ninkeys=abc12\noutkey=abc12\nnat=yes\n"
            "secretive=1\nremotesecret => abc12\n")
    out = render.redact_config(text)
    assert "abc12" not in out and "p4ssword" not in out and "y\\;z" not in out
    assert "nat=yes\nsecretive=1" in out and out.endswith("\n")
    assert out.count(grammar.MASK) == 10
    assert render.redact_config("[a]\nsecret=x") == "[a]\nsecret=" + grammar.MASK


def test_the_same_plan_renders_the_same_templates_and_secrets():
    """The role reads its (lazily templated) render twice, once for the templates and once for the
    secrets: both reads must agree, or the tokens written are never filled."""
    plan = carriers.carrier_plan([{"name": "acme", "registration": "u:s3cretA@sip.example"},
                                  {"name": "pj", "protocol": "pjsip", "registration": "u:s3cretB@pj.example"}])
    first, second = render.render_files(plan), render.render_files(plan)
    assert first["templates"] == second["templates"] and first["secrets"] == second["secrets"]
    mixed = {f: render.fill_template(t, second["secrets"]) for f, t in first["templates"].items()}
    assert mixed == first["files"]
