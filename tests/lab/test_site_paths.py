"""site.yml the ways operators really run it: one dialer or one group (--limit), the role from a
playbook of another group, --tags, an unreachable dialer; carriers given by name; hostile fields.

Each test sets up the state it needs first (a good run), so the file passes in any order and after
`make demo` or a failed run.
"""
import json
import os

import pytest

import labtools

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
WRONG = "WrongSecret-Zq9"


def good(lab, **changes):
    """The a16 dialer's lab carriers, by address, with per-carrier changes (None removes one)."""
    acc = lab["d16"]["accounts"]
    kam = lab["facts"]["sip_carrier"]["address"]
    base = {
        "labsip": {"registration": "register => %s:%s@%s:5060/%s" % (
            acc["sip"]["username"], acc["sip"]["password"], kam, acc["sip"]["username"])},
        "labpjsip": {"protocol": "pjsip", "registration": "%s:%s@%s:5060/%s" % (
            acc["pjsip"]["username"], acc["pjsip"]["password"], kam, acc["pjsip"]["username"])},
        "labipauth": {"host": kam, "port": 5060},
    }
    base.update(changes)
    return [dict(v, name=k, timeout=v.get("timeout", 8)) for k, v in base.items() if v is not None]


def wrong_secret(lab):
    acc = lab["d16"]["accounts"]["sip"]
    return {"registration": "%s:%s@%s:5060/%s" % (acc["username"], WRONG, lab["facts"]["sip_carrier"]["address"],
                                                    acc["username"])}


def rows(out, host):
    return [r for r in out.report or [] if r["host"] == host]


def mtimes(lab):
    conf = os.path.join(lab["root"], "etc", "asterisk")
    return {n: os.stat(os.path.join(conf, n)).st_mtime for n in sorted(os.listdir(conf)) if n.startswith("vicireg-")}


def assert_red_with_cause(out, host):
    assert out.returncode != 0, out.stdout[-3000:]
    assert "%s: carrier labsip (sip): state Auth. Sent: credentials refused" % host in out.stdout, out.stdout[-3000:]
    got = {r["carrier"]: r for r in rows(out, host)}
    assert got["labsip"]["verdict"] == "failed" and got["labpjsip"]["verdict"] == "registered", got
    assert WRONG not in out.stdout and WRONG not in out.stderr


@pytest.mark.parametrize("limit", ["lab-a16-01", "lab_asterisk16"])
def test_wrong_secret_limited_to_one_dialer_or_group_ends_red(lab, limit):
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    out = labtools.run_playbook("--limit", limit, carriers=good(lab, labsip=wrong_secret(lab)))
    assert_red_with_cause(out, lab["name"])
    # The report is this run's: only the dialers of the run, each with its rows.
    assert {r["host"] for r in out.report} == {lab["name"]}


def test_role_from_a_playbook_of_another_group_ends_red(lab):
    """An operator's own playbook (hosts: their group, not 'dialers'), the role inside it."""
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    report = os.path.join(DATA, "reports", "registrations.json")
    if os.path.exists(report):
        os.remove(report)
    out = labtools.run_playbook(carriers=good(lab, labsip=wrong_secret(lab)),
                                playbook=os.path.join(DATA, "operator_playbook.yml"))
    # The report goes next to the operator's playbook (the role's default report dir).
    with open(report) as handle:
        out.report = json.load(handle)
    assert_red_with_cause(out, lab["name"])


def test_a_run_with_unrelated_tags_still_judges_and_ends_red(lab):
    """--tags that match none of the deploy: the carriers on the dialer are still judged."""
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    # Leave a broken carrier on the dialer (no rollback), then run with an unrelated tag.
    broken = good(lab, labsip=wrong_secret(lab))
    assert labtools.run_playbook("--limit", lab["name"], "-e", "vicireg_carriers_rollback=false",
                                 carriers=broken).returncode != 0
    try:
        out = labtools.run_playbook("--limit", lab["name"], "--tags", "operator_unrelated_tag", carriers=broken)
        assert_red_with_cause(out, lab["name"])
    finally:
        assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0


def test_unreachable_dialer_gets_a_row_and_the_run_is_red(lab):
    out = labtools.run_playbook("-i", os.path.join(labtools.ROOT, "inventories", "lab"),
                                "-i", os.path.join(DATA, "unreachable_dialer.yml"),
                                "--limit", "%s,lab-unreachable-99" % lab["name"], carriers=good(lab))
    assert out.returncode != 0
    ghost = rows(out, "lab-unreachable-99")
    assert len(ghost) == 1 and ghost[0]["state"] == "not reached" and ghost[0]["verdict"] == "failed", ghost
    assert {r["verdict"] for r in rows(out, lab["name"])} <= {"registered", "reachable"}


def test_carriers_given_by_name_are_proven_on_what_asterisk_shows(lab):
    """IP auth by host name (chan_sip shows the resolved address) and a registrar whose name is
    longer than `sip show registry`'s host column, with user@domain cut at 12 characters."""
    acc = lab["d16"]["accounts"]["sip"]
    long_name = lab["facts"]["sip_carrier"]["names"][1]
    assert len(long_name) + 5 > 39
    named = good(lab, labipauth={"host": "lab.carrier", "port": 5060},
                 labsip={"registration": "%s@lab.carrier:%s@%s:5060/%s" % (
                     acc["username"], acc["password"], long_name, acc["username"])})
    out = labtools.run_playbook("--limit", lab["name"], carriers=named)
    assert out.returncode == 0, out.stdout[-3000:]
    got = {r["carrier"]: r for r in rows(out, lab["name"])}
    assert got["labipauth"]["verdict"] == "reachable" and got["labsip"]["verdict"] == "registered", got
    assert "Rolled back" not in out.stdout
    with open(os.path.join(lab["root"], "etc/asterisk/vicireg-sip-peers.conf")) as handle:
        assert "host=lab.carrier" in handle.read()


@pytest.mark.parametrize("change", [
    {"labipauth": {"host": "127.0.0.10", "context": "trunkinbound\n[evil]\ntype=peer"}},
    {"labipauth": {"host": "127.0.0.10", "codecs": ["ulaw", "alaw\n#exec /bin/touch /tmp/vicireg-pwned"]}},
    {"labipauth": {"host": "127.0.0.10", "options": {"nat": "yes\n#include /etc/shadow"}}},
    {"labipauth": {"host": "acme:SECRET-Zq9@127.0.0.10"}},
    {"labipauth": {"host": "0.0.0.0/0"}},
    {"general": {"host": "127.0.0.10"}},
    {"labphone01": {"host": "127.0.0.10"}},
])
def test_hostile_fields_are_refused_before_anything_is_changed(lab, change):
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    before = mtimes(lab)
    out = labtools.run_playbook("--limit", lab["name"], carriers=good(lab, **change))
    assert out.returncode != 0
    assert mtimes(lab) == before
    assert "SECRET-Zq9" not in out.stdout and "SECRET-Zq9" not in (open(labtools.REPORT).read())
    got = rows(out, lab["name"])
    assert got and all(r["verdict"] == "failed" for r in got), got
    assert not os.path.exists("/tmp/vicireg-pwned")


def test_check_diff_masks_option_secrets_and_shows_secret_free_files(lab):
    """--check --diff: a file that holds no secret is shown as it is (never as Ansible's no_log
    placeholder), secret-bearing options are masked, nothing is written."""
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    before = mtimes(lab)
    acc = lab["d16"]["accounts"]["sip"]
    changed = good(lab, labsip=None, labipauth={"host": "127.0.0.10", "port": 5060,
                                                "options": {"auth": "opt:Opt-Secret-Zq9@lab.carrier"}})
    out = labtools.run_playbook("--limit", lab["name"], "--check", "--diff", carriers=changed)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in out.stdout
    # The register file loses labsip (and holds no secret afterwards): shown, masked.
    assert "-register => %s:****@" % acc["username"] in out.stdout, out.stdout[-4000:]
    assert "+auth=****" in out.stdout
    assert "Opt-Secret-Zq9" not in out.stdout and acc["password"] not in out.stdout
    assert mtimes(lab) == before


def test_a_dialer_failing_argument_validation_stops_every_dialer_before_a_change(lab):
    """The role's argument spec refuses one dialer's setting: no other dialer is changed either."""
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    before = mtimes(lab)
    out = labtools.run_playbook("-i", os.path.join(labtools.ROOT, "inventories", "lab"),
                                "-i", os.path.join(DATA, "bad_dialer_setting.yml"),
                                carriers=good(lab, labsip=wrong_secret(lab)))
    assert out.returncode != 0
    assert "vicireg_carriers_poll_interval" in out.stdout, out.stdout[-3000:]
    assert "lab-a22-02 failed before any change" in out.stdout.replace("dialer(s) ", ""), out.stdout[-3000:]
    # The a16 dialer would have changed labsip: it was stopped before anything was written.
    assert mtimes(lab) == before
    assert {r["host"] for r in out.report} == {lab["name"], "lab-a22-02"}


def _printable_secret(rng, length=14):
    """A secret from all printable ASCII that the grammar reads back as written, whose every
    4-character piece holds a character that is neither a letter nor a digit (so that no piece can
    turn up in the output by chance, as timings and names would)."""
    import string

    import vicireg_grammar

    chars = [c for c in string.printable if c not in string.whitespace]
    while True:
        secret = "".join(rng.choice(chars) for _ in range(length))
        pieces = [secret[i:i + 4] for i in range(len(secret) - 3)]
        if not all(any(not c.isalnum() for c in p) for p in pieces):
            continue
        try:
            parsed = vicireg_grammar.parse_registration("u1:%s@127.0.0.10" % secret.replace(";", "\\;"))
        except vicireg_grammar.RegistrationError:
            continue
        if parsed["secret"] == secret:
            return secret


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_piece_of_a_printable_secret_in_vvv_diff_report_or_errors(lab, seed):
    """Secrets from all printable ASCII (fixed seeds), in a registration and in a secret-bearing
    option: a failing run with -vvv --diff shows neither them nor any 4-character piece of them."""
    import random

    rng = random.Random(seed)
    reg_secret, opt_secret = _printable_secret(rng), _printable_secret(rng)
    acc = lab["d16"]["accounts"]["sip"]
    assert labtools.run_playbook("--limit", lab["name"], carriers=good(lab)).returncode == 0
    bad = good(lab, labsip={"registration": "%s:%s@127.0.0.10:5060/%s" % (
        acc["username"], reg_secret.replace(";", "\\;"), acc["username"])},
        labipauth={"host": "127.0.0.10", "port": 5060, "options": {"remotesecret": opt_secret}})
    out = labtools.run_playbook("--limit", lab["name"], "-vvv", "--diff", carriers=bad)
    assert out.returncode != 0  # the registration's secret is wrong at the carrier
    with open(labtools.REPORT) as handle:
        text = out.stdout + out.stderr + handle.read()
    for secret in (reg_secret, opt_secret):
        leaked = [secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in text]
        assert not leaked, "pieces of a secret in the output: %r" % leaked


def test_documented_null_initial_delay_is_accepted(lab):
    """vicireg_carriers_pjsip_initial_delay: null (keep Asterisk's) passes the role's argument spec,
    and the PJSIP registration then carries no max_random_initial_delay."""
    d22 = labtools.dialer(lab["facts"], 22)
    out = labtools.run_playbook("--limit", d22["name"], "-e", '{"vicireg_carriers_pjsip_initial_delay": null}')
    assert out.returncode == 0, out.stdout[-3000:]
    with open(os.path.join(d22["root"], "etc/asterisk/vicireg-pjsip.conf")) as handle:
        assert "max_random_initial_delay" not in handle.read()
    assert labtools.run_playbook("--limit", d22["name"]).returncode == 0
