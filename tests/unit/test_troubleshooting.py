"""docs/troubleshooting.md and the one cause table (CAUSES in module_utils/vicireg_status.py) in step.

The page has a section per cause key (quoting its text) and per state the verification reports, and
names no cause the table lacks; every cause the code reports comes from the table (Judge exercised with
every state, the DNS and CLI causes produced by their code), and no cause text is written elsewhere.
"""
import ast
import importlib.util
import os
import re
import sys

import pytest

import vicireg_audit as audit
import vicireg_conffile
import vicireg_dns as dns
import vicireg_render
import vicireg_status as status

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "docs", "troubleshooting.md")
# States the module and the role write into the report besides Asterisk's own (see the page).
REPORT_STATES = ("absent", "ambiguous", "unavailable", "not deployed", "not reached", "not judged", "refused by the preflight",
                 "no active carrier")
# What parse_pjsip_contacts and `sip show peer` give besides QUALIFY_OK / QUALIFY_BAD.
OTHER_QUALIFY_STATES = ("UNKNOWN", "NonQual", "Unknown", "Created", "Removed")


def sections(level):
    """{heading: body} of the page's sections at this level ('## ' or '### ')."""
    with open(PAGE) as handle:
        text = handle.read()
    parts = re.split(r"^%s(.+)$" % re.escape(level), text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def named(part):
    """{name in backticks of a ### heading: its body} within one ## part of the page."""
    out = {}
    for heading, body in sections("### ").items():
        if heading in part_headings(part):
            for name in re.findall(r"`([^`]+)`", heading):
                out[name] = body
    return out


def part_headings(part):
    return set(h.strip() for h in re.findall(r"^### (.+)$", sections("## ")[part], re.MULTILINE))


def template_pattern(template):
    """A regex matching exactly the texts cause() makes of this template (any text for a field)."""
    pieces = re.split(r"\{\w+\}", template)
    return re.compile("^" + "(.+?)".join(re.escape(p) for p in pieces) + "$", re.DOTALL)


PATTERNS = {key: template_pattern(text) for key, text in status.CAUSES.items()}


def keys_of(text):
    return sorted(key for key, pattern in PATTERNS.items() if pattern.match(text))


def test_every_cause_has_its_section_quoting_its_text_and_no_other_cause_is_named():
    causes = named("Causes")
    assert set(causes) == set(status.CAUSES), (
        "sections without a cause in the table: %s; causes without a section: %s"
        % (sorted(set(causes) - set(status.CAUSES)), sorted(set(status.CAUSES) - set(causes))))
    for key, template in status.CAUSES.items():
        assert "> %s\n" % template in causes[key], "the section %s must quote: %s" % (key, template)


def test_every_state_has_a_section():
    states = named("States")
    wanted = (set(status.OK_STATES) | set(status.FAILED_STATES) | {"Auth. Sent"} | set(status.WAITING_STATES)
              | set(status.QUALIFY_OK) | set(status.QUALIFY_BAD) | set(OTHER_QUALIFY_STATES) | set(REPORT_STATES))
    assert not wanted - set(states), "states without a section: %s" % sorted(wanted - set(states))
    for name, body in states.items():
        assert body.strip(), "the section of state %s is empty" % name


def slug(heading):
    """The anchor GitHub and GitLab give a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_sections_point_at_sections():
    with open(PAGE) as handle:
        text = handle.read()
    slugs = [slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)]
    assert len(slugs) == len(set(slugs)), "two headings with one anchor: a link would go to the first"
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in slugs, "link to #%s, which has no section" % link


def _target(driver, registers, host="carrier.example", port=5060):
    return {"name": "c", "driver": driver, "registers": registers, "username": "u", "host": host, "port": port,
            "timeout": 10, "qualify": True}


@pytest.fixture
def dns_answers(monkeypatch):
    """vicireg_dns asking a fake nameserver: {(name, type): records} and {name: addresses}."""
    records, addresses = {}, {}
    monkeypatch.setattr(dns, "query", lambda name, qtype, servers=None: records.get((name, qtype), []))
    monkeypatch.setattr(dns, "addresses", lambda name: addresses.get(name, []))
    return records, addresses


def dns_outcomes(dns_answers):
    """What resolution_problem says in each DNS situation (None: the name resolves)."""
    records, addresses = dns_answers
    out = [None]
    out.append(dns.resolution_problem("gone.example", 5060, True))  # port written: no SRV
    out.append(dns.resolution_problem("gone.example", 5060, False))  # neither SRV nor address
    records[("_sip._udp.srv.example", dns.TYPE_SRV)] = [(10, 1, 5062, "t1.example"), (20, 1, 5063, "t2.example")]
    out.append(dns.resolution_problem("srv.example", 5060, False))  # targets without addresses
    addresses["t1.example"] = ["192.0.2.1"]
    out.append(dns.resolution_problem("srv.example", 5060, False))  # 'srv:' targets tried
    assert out[-1].startswith("srv:")
    return out


def test_every_cause_judge_reports_comes_from_the_table(dns_answers):
    produced = set()
    states = ([None] + sorted(status.OK_STATES) + sorted(status.FAILED_STATES) + ["Auth. Sent"]
              + list(status.WAITING_STATES) + list(status.QUALIFY_OK) + list(status.QUALIFY_BAD)
              + list(OTHER_QUALIFY_STATES) + ["ambiguous"])
    for problem in dns_outcomes(dns_answers):
        for driver in ("sip", "iax2", "pjsip"):
            for registers in (True, False):
                for state in states:
                    j = status.Judge(_target(driver, registers), 100.0, auth_grace=2.0)
                    j.observe(state, 100.1)
                    j.observe(state, 103.0)
                    j.timeout(111.0, problem)
                    if j.verdict != "failed":
                        assert j.cause is None
                        continue
                    found = keys_of(j.cause)
                    assert found, "cause not in the table: %r (state %s, %s)" % (j.cause, state, driver)
                    produced.update(found)
    for output, command in (("Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)",
                             "sip show registry"), ("No such command 'iax2 show registry'", "iax2 show registry")):
        with pytest.raises(status.AsteriskUnavailable) as caught:
            status.check_cli(output, command, "iax2")
        assert keys_of(str(caught.value)), str(caught.value)
        produced.update(keys_of(str(caught.value)))
    produced.update(keys_of(str(_cli_failure())))
    for missing in ({"c"}, set()):  # the status audit: not in the dialer's files, or its driver not loaded
        row = audit.absent_row(_target("pjsip", True), missing)
        assert row["verdict"] == "failed" and keys_of(row["cause"]), row
        produced.update(keys_of(row["cause"]))
    # Both ways: every key of the table is what some code path reports (no dead entry, no copy elsewhere).
    assert produced == set(status.CAUSES), sorted(set(status.CAUSES) - produced)


def _cli_failure():
    """The error of module_utils/vicireg_asterisk when `asterisk -rx` fails silently, from its own code
    (imported as the module on the dialer imports it: ansible.module_utils.NAME)."""
    aliases = {"ansible.module_utils.%s" % m.__name__: m for m in (status, vicireg_conffile, dns, vicireg_render)}
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    try:
        spec = importlib.util.spec_from_file_location("vicireg_asterisk_under_test",
                                                      os.path.join(ROOT, "module_utils", "vicireg_asterisk.py"))
        asterisk = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(asterisk)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module

    class Module:
        @staticmethod
        def run_command(argv):
            return 1, "", ""

    with pytest.raises(status.AsteriskUnavailable) as caught:
        asterisk.Asterisk(Module(), "asterisk").rx("sip show registry")
    return caught.value


def test_no_cause_text_outside_the_table():
    """No string in the code that reports causes repeats a piece of a cause text: a cause is added to the
    table, not written where it is reported."""
    pieces = set()
    for template in status.CAUSES.values():
        pieces.update(p.strip(" ;()'") for p in re.split(r"\{\w+\}", template) if len(p.strip(" ;()'")) >= 16)
    files = ["module_utils/vicireg_status.py", "module_utils/vicireg_dns.py", "module_utils/vicireg_asterisk.py",
             "module_utils/vicireg_audit.py", "library/vicireg_registration_status.py"]
    for name in files:
        with open(os.path.join(ROOT, name)) as handle:
            tree = ast.parse(handle.read())
        table = set()  # the table itself, and docstrings (Expr statements), are not reports
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CAUSES" for t in node.targets):
                table.update(id(n) for n in ast.walk(node.value))
            elif isinstance(node, ast.Expr):
                table.add(id(node.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in table:
                hits = [p for p in pieces if p in node.value]
                assert not hits, "%s:%d repeats cause text %r: use vicireg_status.cause()" % (
                    name, node.lineno, hits[0])


def test_the_checks_see_a_cause_missing_from_the_table(monkeypatch):
    """The sync checks fail when the code reports a cause the table lacks, or the table one the page lacks."""
    j = status.Judge(_target("sip", True), 100.0)
    j.observe("Request Sent", 101.0)
    monkeypatch.setitem(status.CAUSES, "no_answer", "nobody home at {where}")
    j.timeout(111.0)
    assert j.cause == "nobody home at carrier.example:5060"  # Judge formats its causes from the table
    assert keys_of(j.cause) == []  # a text the table (as the page documents it) lacks is seen
    monkeypatch.setitem(status.CAUSES, "brand_new", "a cause without a section")
    with pytest.raises(AssertionError, match="brand_new"):
        test_every_cause_has_its_section_quoting_its_text_and_no_other_cause_is_named()
