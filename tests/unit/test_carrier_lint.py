"""carrier-lint on good and bad inventories: places, messages, exit codes, vaults, Jinja, hostile input.

The bad inventory (tests/data/lint/bad) has one problem per carrier; EXPECTED lists where each is
reported. Vaults are made here with ansible-vault and a throw-away password.
"""
import io
import os
import subprocess
import time
import sys

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import carriers as carrier_filters  # noqa: E402  (filter_plugins/carriers.py: the role's preflight filter)
from vicireg_lint import cli  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data", "lint")
BIN = os.path.dirname(sys.executable)
SECRET = "S3cr3tXyz"
# VICIREG_HYPOTHESIS_SCALE=10 for a deeper run (the default keeps the unit suite fast).
SCALE = float(os.environ.get("VICIREG_HYPOTHESIS_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# (file under bad/, line, column, carrier, start of the message)
EXPECTED = [
    ("group_vars/dialers", 4, 12, "merged", "context 'trunk inbound' is not a dialplan context name"),
    ("group_vars/dialers", 13, 5, "dupkey", "duplicate key 'host' (also on line 12)"),
    ("group_vars/dialers", 16, 11, "twice", "duplicate name (also carrier #3)"),
    ("group_vars/dialers", 19, 73, "jinjaport", "'register => x:****@sip.acme.example:70000/x', column 34: port 70000"),
    ("group_vars/dialers", 21, 19, "nosecret", "the registration string has no secret"),
    ("group_vars/dialers", 23, 11, "badhost", "host '198.51.100.300' looks like an IPv4 address"),
    ("group_vars/dialers", 24, 11, "#8", "name 'badname!' must be 1-15 letters"),
    ("group_vars/dialers", 27, 32, "scheme", "'register => sip:4155550100:****@sip.acme.example', column 13: a pasted"),
    ("group_vars/dialers", 31, 7, "opts", "option md5secret: the value is not acceptable"),
    ("host_vars/dialer1/main.yml", 5, 1, "yaml", "duplicate key 'carriers' (also on line 2)"),
    ("host_vars/dialer1/main.yml", 8, 15, "hidden", "dtmfmode 'loud' is not one of"),
    ("hosts.yml", 5, 15, "carriers", "must be a list of carrier dicts, got dict"),
    ("hosts.yml", 11, 79, "groupcarrier", "'register => 4155550100:****@sip.carrier.example:99999/4155550100', "
                                          "column 52: port 99999"),
    ("hosts.yml", 18, 29, "hostcarrier", "protocol must be one of sip, pjsip, iax2, got 'sip2'"),
]


def lint(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        rc = cli.main(list(args), stdout=out, stderr=err)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def problems(out):
    """[(file, line, column, carrier, message)] of carrier-lint's standard output."""
    rows = []
    for line in out.splitlines():
        path, lineno, column, label, message = line.split(":", 4)
        rows.append((path, int(lineno), int(column), label.strip(), message.strip()))
    return rows


def write(path, text):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w") as handle:
        handle.write(text)
    return str(path)


def test_good_inventory_passes_with_notes_for_what_it_skipped():
    rc, out, err = lint(os.path.join(DATA, "good"))
    assert (rc, out) == (0, "")
    assert "4 file(s), 0 problem(s)" in err
    # The no-extension file (group_vars/dialers/main) is read: its Jinja values are named in notes.
    assert "main:11:19: note: acme: registration holds 1 Jinja expression(s)" in err
    assert "main:23:11: note: fromjinja: host is or holds a Jinja expression: not checked" in err
    assert "main:25:5: note: #5: carrier is a Jinja expression: not checked" in err
    rc, out, err = lint("--quiet", os.path.join(DATA, "good"))
    assert (rc, out, err) == (0, "", "")


def test_bad_inventory_every_problem_at_its_place():
    rc, out, err = lint("--quiet", os.path.join(DATA, "bad"))
    assert rc == 1 and err == ""
    rows = problems(out)
    assert len(rows) == len(EXPECTED), out
    for (path, line, column, label, message), row in zip(sorted(EXPECTED), sorted(rows)):
        assert row[:4] == (os.path.join(DATA, "bad", path), line, column, label), row
        assert row[4].startswith(message), row
    assert "Secret1" not in out


def test_each_file_alone_and_a_file_given_by_name():
    # A no-extension file given by name is read too; exit 1 names only its own problems.
    rc, out, _ = lint(os.path.join(DATA, "bad", "group_vars", "dialers"))
    assert rc == 1 and len(problems(out)) == 9
    rc, out, _ = lint(os.path.join(DATA, "good", "host_vars", "dialer2", "carriers.yml"))
    assert (rc, out) == (0, "")


def test_lab_and_example_inventories_pass():
    rc, out, err = lint(os.path.join(ROOT, "inventories"))
    assert (rc, out) == (0, "")
    assert "lab_asterisk16.yml:3:11: note: carriers: carriers is a Jinja expression: not checked" in err
    assert "labpjsip: registration holds 4 Jinja expression(s)" in err
    assert "3 inline !vault value(s): their structure is checked, their content is not" in err
    demo = os.path.join(ROOT, "inventories", "example", "DEMO-vault-password.txt")
    rc, out, err = lint("--vault-password-file", demo, os.path.join(ROOT, "inventories", "example"))
    assert (rc, out) == (0, "")
    assert "!vault" not in err


def test_usage_errors_exit_2(tmp_path):
    assert lint()[0] == 2
    assert lint(str(tmp_path / "missing"))[0] == 2
    assert lint("--vault-password-file", str(tmp_path / "nopw"), DATA)[0] == 2
    assert lint("--vault-id", "prod@prompt", DATA)[0] == 2


def test_anchor_merge_override_and_alias(tmp_path):
    # A merged key overridden by the carrier is not the anchor's value; an alias of a bad carrier is
    # reported where the anchor defines it.
    path = write(tmp_path / "group_vars" / "all.yml", (
        "base: &base {context: 'bad ctx', host: 198.51.100.1}\n"
        "bad: &bad {name: aliased, host: '1.2.3'}\n"
        "carriers:\n"
        "  - {<<: *base, name: fixed, context: good}\n"
        "  - *bad\n"))
    rc, out, _ = lint("-q", path)
    assert problems(out) == [(path, 2, 33, "aliased", "host '1.2.3' looks like an IPv4 address but is not one")]


def test_each_duplicate_name_at_its_own_carrier(tmp_path):
    path = write(tmp_path / "host_vars" / "h1", "carriers:\n  - {name: A, host: h.example}\n"
                 "  - {name: A, host: h.example}\n  - {name: a, host: h.example}\n")
    rc, out, _ = lint(path)
    message = "duplicate name (also carrier #1); names are compared without case, as Asterisk compares section names"
    assert (rc, problems(out)) == (1, [(path, 3, 12, "A", message), (path, 4, 12, "a", message)])


def _vault(args, password_file, stdin=None):
    return subprocess.run([sys.executable, "-m", "ansible.cli.vault"] + args + ["--vault-password-file", password_file],
                          input=stdin, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def vaults(tmp_path_factory):
    """A password file and an inventory with an inline vault (a bad registration) and a vault file."""
    top = tmp_path_factory.mktemp("vault")
    password = write(top / "pw.txt", "throw-away-test-password\n")
    inline = _vault(["encrypt_string", "--stdin-name", "registration"], password,
                    "register => 4155550100:%s@sip.acme.example:99999" % SECRET)
    inline = "\n".join("  " + line for line in inline.strip().splitlines())
    write(top / "inv" / "group_vars" / "dialers" / "inline.yml", (
        "carriers:\n  - name: vaulted\n  %s\n" % inline))
    # As inventories/example: the secret in its own vaulted variable, named in the registration.
    secret = _vault(["encrypt_string", "--stdin-name", "vault_sales_secret"], password, SECRET + " x")
    write(top / "inv" / "group_vars" / "sales" / "vault.yml", secret)
    write(top / "inv" / "group_vars" / "sales" / "vars.yml", (
        "carriers:\n  - name: sales\n    registration: 'register => 4155550100:{{ vault_sales_secret }}@h.example'\n"))
    plain = write(top / "inv" / "group_vars" / "east.yml",
                  "carriers:\n  - name: infile\n    registration: 'register => u:%s@h.example:0'\n" % SECRET)
    _vault(["encrypt", plain], password)
    return top, password


def test_vault_without_password_checks_structure_only(vaults):
    top, _ = vaults
    rc, out, err = lint(str(top / "inv"))
    assert (rc, out) == (0, "")
    assert "east.yml:1:1: note: vault: vault-encrypted file: its structure is checked" in err
    assert "inline.yml:3:19: note: vaulted: registration is vault-encrypted: not checked" in err
    assert "sales/vars.yml:3:19: note: sales: registration holds 1 Jinja expression(s)" in err
    # A broken vault envelope is a problem even without the password.
    broken = write(top / "broken" / "group_vars" / "all.yml", "carriers:\n  - name: b\n    registration: !vault |\n"
                   "      $ANSIBLE_VAULT;1.1;AES256\n      not-hex\n")
    rc, out, _ = lint("-q", broken)
    assert problems(out) == [(broken, 3, 19, "b", "the !vault value is not a vault: the header or the hexadecimal "
                                                  "body is malformed")]


def test_vault_with_password_decrypts_and_checks_never_showing_the_secret(vaults):
    top, password = vaults
    for option in (["--vault-password-file", password], ["--vault-id", "dev@" + password]):
        rc, out, err = lint(*(option + [str(top / "inv")]))
        assert rc == 1
        rows = problems(out)
        # Inline: at the !vault value; a vault file: line and column in its decrypted text; a vaulted
        # variable named in a registration: where the expression starts.
        assert [(os.path.basename(r[0]), r[1], r[2], r[3]) for r in rows] == [
            ("inline.yml", 3, 19, "vaulted"), ("east.yml", 3, 54, "infile"), ("vars.yml", 3, 43, "sales")], out
        assert "port 99999 is not in 1-65535" in rows[0][4] and "port 0 is not in 1-65535" in rows[1][4]
        assert "whitespace (a space) inside a field" in rows[2][4]
        assert "sales: registration: read {{ vault_sales_secret }} as the inventory sets it" in err
        assert SECRET not in out + err
        assert "decrypted: lines and columns are those of its decrypted content" in err
    wrong = write(top / "wrong.txt", "not-the-password\n")
    rc, out, err = lint("--vault-password-file", wrong, str(top / "inv"))
    assert rc == 1 and "cannot be decrypted with the vault secret(s) given" in out
    assert SECRET not in out + err


def test_a_variable_the_inventory_sets_once_is_read_in_a_carrier(tmp_path):
    write(tmp_path / "group_vars" / "all.yml", "carrier_host: 198.51.100.300\nshared: a\nctx: bad context\n")
    write(tmp_path / "host_vars" / "h1.yml", "shared: b\n")
    path = write(tmp_path / "group_vars" / "dialers.yml", "carriers:\n  - name: a\n    host: '{{ carrier_host }}'\n"
                 "  - name: b\n    host: '{{ shared }}.example'\n    context: '{{ ctx }}'\n")
    rc, out, err = lint(str(tmp_path))
    # 'shared' is set twice (to different values): not read; the context is read and refused.
    assert problems(out) == [
        (path, 3, 11, "a", "host '198.51.100.300' looks like an IPv4 address but is not one"),
        (path, 6, 14, "b", "context 'bad context' is not a dialplan context name (letters, digits, '_', '.', "
                           "'+', '-'; at most 79 characters)")], out
    assert "dialers.yml:5:11: note: b: host holds 1 Jinja expression(s)" in err


def test_yaml_errors_are_problems_without_the_line_text(tmp_path):
    path = write(tmp_path / "host_vars" / "h1.yml", "carriers:\n  - name: x\n    registration: 'u:%s@h\n" % SECRET)
    rc, out, _ = lint("-q", path)
    assert rc == 1 and problems(out)[0][:4] == (path, 4, 1, "yaml")
    assert SECRET not in out
    path = write(tmp_path / "host_vars" / "h2.yml", "carriers: [{name: a\x07b}]\n")
    rc, out, _ = lint("-q", path)
    assert problems(out) == [(path, 1, 20, "yaml", "unacceptable character #x0007: control characters are not "
                                                   "allowed in YAML")]


PARTS = ["register => ", "u100", ":", "@", "/", "sip.example", "5060", SECRET, "~", "tcp://", "70000", " ", ";",
         "\\", "[", "]", "?", "\u00e9", "\t"]


@settings(max_examples=int(150 * SCALE), **SETTINGS)
@given(st.one_of(
    st.text(max_size=80),
    st.builds("".join, st.lists(st.sampled_from(PARTS), max_size=12)),
    st.builds("register => u100:{}@{}".format, st.just(SECRET), st.builds("".join, st.lists(st.sampled_from(PARTS),
                                                                                             max_size=6)))),
       st.sampled_from(["sip", "pjsip", "iax2"]))
def test_lint_and_the_role_filter_agree(tmp_path_factory, registration, protocol):
    """Accept/reject exactly as the role's preflight filter, for generated registration strings."""
    carriers = [{"name": "gen", "protocol": protocol, "registration": registration, "host": "198.51.100.9"}]
    path = write(tmp_path_factory.mktemp("gen") / "group_vars" / "all.yml", yaml.safe_dump({"carriers": carriers}))
    rc, out, err = lint("-q", path)
    rows = carrier_filters.vicireg_problem_rows(carriers, "dialer1")
    if cli.check.jinja_spans(registration):  # Ansible would template it: the linter skips the expressions
        assert rc in (0, 1)
        return
    assert rc == (1 if rows else 0), (registration, out, rows)
    if rows:
        assert sorted(r["cause"] for r in rows) == sorted(p[4] for p in problems(out))
    if registration.startswith("register => u100:%s@" % SECRET) and registration.count(SECRET) == 1:
        assert SECRET not in out + err


@settings(max_examples=int(200 * SCALE), **SETTINGS)
@given(st.dictionaries(st.sampled_from(["name", "registration", "host", "port", "protocol", "options", "codecs",
                                        "description", "active", "match", "bogus"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none(),
                                 st.lists(st.text(max_size=8), max_size=3),
                                 st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)),
                       max_size=6),
       st.binary(max_size=200))
def test_hostile_input_never_a_traceback(tmp_path_factory, carrier, junk):
    top = tmp_path_factory.mktemp("hostile")
    dumped = write(top / "group_vars" / "all.yml", yaml.safe_dump({"carriers": [carrier]}, allow_unicode=True))
    raw = top / "host_vars" / "h1"
    os.makedirs(str(raw.parent), exist_ok=True)
    raw.write_bytes(b"carriers:\n  - " + junk)
    for path in (dumped, str(raw)):
        rc, out, err = lint(path)
        assert rc in (0, 1), (out, err)
        assert ": carrier-lint: could not" not in out, (carrier, junk, out)
        for line in out.splitlines():
            assert line.count(":") >= 4 and line.isprintable()


def test_huge_and_unicode_values(tmp_path):
    path = write(tmp_path / "group_vars" / "all.yml", yaml.safe_dump({"carriers": [
        {"name": "big", "registration": "register => u:%s@" % SECRET + "h" * 1000000},
        {"name": "uni", "registration": "register => u\u00e9:%s@h\u2028.example" % SECRET, "description": "a\nb"},
    ]}, allow_unicode=True, width=10 ** 7))
    rc, out, _ = lint("-q", path)
    assert rc == 1 and SECRET not in out
    assert len(out) < 4000
    assert {p[3] for p in problems(out)} == {"big", "uni"}


def test_the_installed_command():
    """`make venv` installs carrier-lint into the venv; it runs the checkout's own module_utils."""
    command = os.path.join(BIN, "carrier-lint")
    assert os.path.exists(command), "carrier-lint is not installed in the venv: run make venv"
    done = subprocess.run([command, os.path.join(DATA, "bad", "hosts.yml")], capture_output=True, text=True)
    assert done.returncode == 1 and "hosts.yml:18:29: hostcarrier: protocol must be one of" in done.stdout
    done = subprocess.run([command, "--quiet", os.path.join(DATA, "good")], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    done = subprocess.run([command], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: carrier-lint" in done.stderr


# The reviewer's repros: each of these used to check nothing (exit 0), hang, or report a false problem.

GENERAL = "carriers:\n  - name: general\n    host: 198.51.100.1\n"
GENERAL_PROBLEM = "name 'general' is a section Asterisk or VICIdial already uses"


def test_an_inventory_group_named_like_a_carrier_variable_is_a_group(tmp_path):
    # `sip_carriers:` as a group does not make the file a vars file: dialers' vars are still checked.
    path = write(tmp_path / "inventory.yml", "sip_carriers:\n  hosts:\n    kam1:\ndialers:\n  vars:\n"
                 "    carriers:\n      - name: general\n        host: 198.51.100.1\n  hosts:\n    d1:\n")
    rc, out, _ = lint("-q", path)
    assert (rc, problems(out)) == (1, [(path, 7, 15, "general", GENERAL_PROBLEM)]), out
    # A vars file outside group_vars (a list under a carrier variable) is still read as one.
    path = write(tmp_path / "vars" / "carriers.yml", "lab_carriers:\n  - name: general\n    host: 198.51.100.1\n")
    rc, out, _ = lint("-q", path)
    assert (rc, problems(out)) == (1, [(path, 2, 11, "general", GENERAL_PROBLEM)]), out


def test_a_symlinked_group_vars_folder_is_followed_and_a_link_loop_ends(tmp_path):
    write(tmp_path / "shared" / "main.yml", GENERAL)
    write(tmp_path / "inv" / "hosts.yml", "dialers:\n  hosts:\n    d1:\n")
    os.makedirs(str(tmp_path / "inv" / "group_vars"))
    os.symlink("../../shared", str(tmp_path / "inv" / "group_vars" / "dialers"))
    os.symlink("../..", str(tmp_path / "inv" / "group_vars" / "loop"))
    rc, out, _ = lint("-q", str(tmp_path / "inv"))
    assert (rc, problems(out)) == (1, [(str(tmp_path / "inv" / "group_vars" / "dialers" / "main.yml"), 2, 11,
                                        "general", GENERAL_PROBLEM)]), out


def test_ini_inventories_get_a_note_and_an_empty_folder_a_warning(tmp_path):
    ini = "[dialers]\nd1 ansible_host=127.0.0.1\n\n[dialers:vars]\ncarriers=[{\"name\": \"general\"}]\n"
    for name in ("hosts", "hosts.ini"):
        write(tmp_path / "inv" / name, ini)
    write(tmp_path / "inv" / "README.md", "not read\n")
    rc, out, err = lint(str(tmp_path / "inv"))
    assert (rc, out) == (0, ""), out
    for name in ("hosts", "hosts.ini"):
        assert "%s:5:1: note: carriers: carriers is set in an INI inventory: not checked" % name in err, err
    assert "2 file(s), 0 problem(s)" in err
    rc, out, err = lint(str(tmp_path / "inv" / "hosts"))  # named: a note too, not "not valid YAML"
    assert (rc, out) == (0, "") and "INI inventory: not checked" in err
    # A YAML file named hosts (no extension) is a YAML inventory, as for Ansible.
    write(tmp_path / "yamlinv" / "hosts", "all:\n  vars:\n" + "".join("    " + line + "\n"
                                                                      for line in GENERAL.splitlines()))
    rc, out, _ = lint("-q", str(tmp_path / "yamlinv" / "hosts"))
    assert rc == 1 and GENERAL_PROBLEM in out
    os.makedirs(str(tmp_path / "empty" / "docs"))
    rc, out, err = lint("-q", str(tmp_path / "empty"))
    assert (rc, out) == (0, "") and "empty: no group_vars/host_vars file or inventory in it: nothing checked" in err


def test_which_files_are_read_by_their_names():
    read = ["inv/group_vars/dialers", "inv/group_vars/dialers.yml", "inv/host_vars/dialer1.example.com",
            "inv/host_vars/10.0.0.5.yml", "inv/host_vars/dialer1.example.com/main.yml", "inv/hosts.yml"]
    skipped = ["inv/group_vars/dialers.yml.j2", "inv/group_vars/README.md", "inv/group_vars/.dialers.yml.swp",
               "inv/host_vars/d1.yml~", "inv/host_vars/d1/notes.txt", "inv/host_vars/d1/main.yml.bak",
               "inv/host_vars/d1.yml.orig"]
    assert [p for p in read if cli.kind_of(p, named=True) != "vars" and not p.endswith("hosts.yml")] == []
    assert [p for p in skipped if cli.kind_of(p, named=True) is not None] == []


def test_an_alias_bomb_is_a_problem_in_seconds(tmp_path):
    levels = ["a: &a [%s]" % ",".join(['"lol"'] * 9)]
    for index, name in enumerate("bcdefgh"):
        levels.append("%s: &%s [%s]" % (name, name, ",".join(["*" + "abcdefgh"[index]] * 9)))
    path = write(tmp_path / "group_vars" / "bomb.yml", "\n".join(levels) + "\ncarriers:\n  - name: x\n"
                 "    host: 198.51.100.1\n    codecs: *h\n    options: {foo: *h}\n  - *h\n")
    started = time.monotonic()
    rc, out, _ = lint("-q", path)
    assert time.monotonic() - started < 5
    assert (rc, problems(out)) == (1, [(path, 10, 3, "carriers", "holds more than 100000 values once its YAML aliases "
                                                                 "are expanded, or contains itself (an alias bomb?): "
                                                                 "not checked")]), out


def test_a_protocol_expression_checks_the_carrier_under_every_protocol(tmp_path):
    path = write(tmp_path / "group_vars" / "all.yml", (
        "carriers:\n  - name: a\n    protocol: '{{ proto }}'\n"
        "    registration: 'register => 4155550100:pw@sip.example:99999'\n"
        "  - name: b\n    protocol: '{{ proto }}'\n    registration: 'register => 4155550100:pw@sip.example'\n"))
    rc, out, err = lint(path)
    # Port 99999 fails whatever the protocol; b is fine under each.
    assert [r[:4] for r in problems(out)] == [(path, 4, 58, "a")] and "port 99999" in out, out
    assert ("all.yml:3:15: note: a: protocol is or holds a Jinja expression: the carrier is checked under each "
            "protocol (sip, pjsip, iax2), only what fails under all is reported") in err


def test_an_expression_holding_user_and_secret_is_not_a_missing_secret(tmp_path):
    path = write(tmp_path / "group_vars" / "all.yml", (
        "carriers:\n  - name: a\n    registration: 'register => {{ vault_acme_auth }}@sip.acme.example'\n"
        "  - name: b\n    registration: 'register => {{ account }}'\n"
        "  - name: c\n    registration: 'register => 4155550100{{ auth_tail }}.example'\n"))
    assert lint("-q", path)[:2] == (0, "")


USERS = st.sampled_from(["u100", "4155550100", "acme.user", "a-b"])
HOSTS = st.sampled_from(["sip.example", "198.51.100.7", "h"])


@st.composite
def accepted_registrations(draw):
    """(registration string the role accepts, protocol)."""
    protocol = draw(st.sampled_from(["sip", "pjsip", "iax2"]))
    body = draw(USERS) + draw(st.sampled_from([":" + SECRET, ":" + SECRET + ":authu"] if protocol != "iax2"
                                                else [":" + SECRET]))
    body += "@" + draw(HOSTS) + draw(st.sampled_from(["", ":5060", ":4569"]))
    if protocol != "iax2":
        body = draw(st.sampled_from(["", "tcp://"])) + body + draw(st.sampled_from(["", "/4155550100", "~120"]))
    registration = draw(st.sampled_from(["register => ", ""])) + body
    carrier = {"name": "gen", "protocol": protocol, "registration": registration, "host": "198.51.100.9"}
    assume(not carrier_filters.vicireg_problem_rows([carrier], "d"))
    return registration, protocol


@settings(max_examples=int(150 * SCALE), **SETTINGS)
@given(accepted_registrations(), st.data())
def test_an_accepted_string_with_any_piece_an_expression_is_never_a_problem(tmp_path_factory, accepted, data):
    """Whatever piece of an accepted string an expression stands for, the lint finds no problem.
    Not covered: an expression standing for part of a keyword (`regi{{ x }}`, `{{ x }}cp://`): the
    readings are words and separators, they cannot rebuild a keyword."""
    registration, protocol = accepted
    start = len("register => ") if registration.startswith("register => ") else 0
    keyword = registration.find("tcp://")
    cuts = [i for i in range(start, len(registration) + 1) if keyword < 0 or not keyword < i < keyword + len("tcp://")]
    begin = data.draw(st.sampled_from(cuts))
    end = data.draw(st.sampled_from([i for i in cuts if i >= begin]))
    templated = registration[:begin] + "{{ piece }}" + registration[end:]
    carriers = [{"name": "gen", "protocol": protocol, "registration": templated, "host": "198.51.100.9"}]
    path = write(tmp_path_factory.mktemp("piece") / "group_vars" / "all.yml", yaml.safe_dump({"carriers": carriers}))
    rc, out, _ = lint("-q", path)
    assert (rc, out) == (0, ""), (registration, templated)
