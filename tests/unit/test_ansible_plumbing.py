"""The filters inside real Ansible (2.19 templating), ansible-doc, and the example inventory's vault."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def run(*args):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)


def test_ansible_doc_shows_every_filter():
    for name in ("parse_registration", "registration_line", "pjsip_registration", "redact_registration"):
        out = run("ansible-doc", "-t", "filter", name)
        assert out.returncode == 0, out.stderr
        assert "EXAMPLES" in out.stdout and "RETURN" in out.stdout


def test_filters_in_a_playbook_and_error_without_secret(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        parsed: "{{ 'register => 1234:Zq9secret@carrier.example:5080/1234' | parse_registration }}"
        line: "{{ 'tcp://u:Zq9secret@h' | registration_line }}"
        masked: "{{ 'u:Zq9secret@h' | redact_registration }}"
        pj: "{{ 'u:Zq9secret@h' | pjsip_registration('acme') }}"
    - ansible.builtin.assert:
        that:
          - parsed.port == 5080
          - parsed.username == '1234'
          - line == 'register => tcp://u:Zq9secret@h'
          - masked == 'u:****@h'
          - pj.registration.server_uri == 'sip:h'
    - ansible.builtin.debug:
        msg: "{{ 'sip:u:Zq9secret@h:99999' | parse_registration }}"
""")
    out = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(play))
    assert out.returncode == 2, out.stdout[-3000:]
    assert "ok=2" in out.stdout and "failed=1" in out.stdout
    errors = [line for line in out.stdout.splitlines() if "pasted URI scheme" in line]
    assert errors, out.stdout[-3000:]
    assert all("Zq9secret" not in line and "u:****@h:99999" in line for line in errors)


def test_example_inventory_decrypts_and_passes_preflight():
    out = run("ansible", "-i", "inventories/example", "dialers", "-m", "ansible.builtin.debug", "-a",
              "msg={{ carriers | vicireg_carrier_problems }}", "--vault-password-file",
              "inventories/example/DEMO-vault-password.txt", "-o")
    assert out.returncode == 0, out.stdout + out.stderr
    with open(os.path.join(ROOT, "inventories/example/group_vars/dialers/vault.yml")) as handle:
        assert handle.read().count("!vault |") == 3


def test_validator_cli_reuses_the_grammar_and_masks():
    cli = os.path.join(ROOT, "bin", "vicireg-validate")
    out = subprocess.run([sys.executable, cli, "register => 1234:Zq9secret@carrier.example:5080", "u:Zq9pw@h:99999"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == "OK       register => 1234:****@carrier.example:5080"
    assert lines[1].startswith("INVALID  'u:****@h:99999', column 11: port 99999")
    assert "Zq9" not in out.stdout
    ok = subprocess.run([sys.executable, cli, "--protocol", "iax2", "-"], input="u:p@iax.example\n",
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "register => u:****@iax.example" in ok.stdout


def test_report_action_writes_json_and_junit(tmp_path):
    """One run: a start call lists every dialer as not reached, a later call puts d1's verdicts in;
    d2 (never judged: unreachable) keeps a failed 'not reached' row; JUnit counts it."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "registrations.json").write_text('[{"host": "stale", "carrier": "old"}]')
    play = tmp_path / "report.yml"
    play.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - vicireg_report:
        hosts: [d1, d2]
        dir: "%s/out"
      check_mode: false
    - vicireg_report:
        hosts: [d1, d2]
        judged: [d1]
        rows:
          - {host: d1, carrier: acme, protocol: sip, state: Registered, verdict: registered, cause: null, seconds: 0.4}
          - {host: d1, carrier: bad, protocol: pjsip, state: Rejected, verdict: failed, cause: "credentials refused",
             seconds: 1.2, extra: dropped}
        dir: "%s/out"
      check_mode: false
""" % (tmp_path, tmp_path))
    out = run("ansible-playbook", "-i", "localhost,", "-c", "local", "--check", str(play))
    assert out.returncode == 0, out.stdout[-2000:]
    rows = json.loads((out_dir / "registrations.json").read_text())
    assert [(r["host"], r["carrier"]) for r in rows] == [("d1", "acme"), ("d1", "bad"), ("d2", None)]
    assert "extra" not in rows[1] and rows[2]["state"] == "not reached" and rows[2]["verdict"] == "failed"
    junit = (out_dir / "registrations.junit.xml").read_text()
    assert 'tests="3" failures="2"' in junit and 'message="credentials refused"' in junit


def test_ansible_doc_shows_every_module_of_the_project():
    """Each module's DOCUMENTATION is valid YAML with its options (a ': ' in a plain line breaks it)."""
    names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "library")) if f.endswith(".py"))
    assert "vicireg_registration_status" in names
    for name in names:
        out = run("ansible-doc", "-M", "library", "--json", name)
        assert out.returncode == 0 and not out.stderr.strip(), (name, out.stderr[-2000:])
        doc = json.loads(out.stdout)[name]["doc"]
        assert doc["short_description"] and doc["options"], name
    out = run("ansible-doc", "-M", "library", "--json", "vicireg_registration_status")
    options = json.loads(out.stdout)["vicireg_registration_status"]["doc"]["options"]
    assert {"mode", "audit", "audit_wait", "lock_file", "desired"} <= set(options)
