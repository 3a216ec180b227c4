"""Pull mode against the lab: the Asterisk 22 dialer runs ansible-pull itself, from a bare git repository
inside the dialer, with playbooks/local.yml and an inventory whose secrets are in Ansible Vault.

A commit that changes a carrier is applied (Kamailio gets the new REGISTER); a commit with a bad secret
is rolled back and reported; a push run and a pull run never hold the dialer at once, each naming the
other; no secret reaches the output, the report or the checkout. The dialer borrows this machine's venv,
python and git by read-only bind mounts (tests/lab/pulltools.py), undone at the end.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import pytest

import labtools
import pulltools

sys.path.insert(0, os.path.join(labtools.ROOT, "lab"))
from labkit import registrar  # noqa: E402

INVENTORY = "inventories/pull-lab"
# Where the example unit keeps things on the dialer (removed again at the end).
_ARGV, WORKDIR, _ENV = pulltools.service()
CHECKOUT = _ARGV[_ARGV.index("-d") + 1]
VAULT_FILE = _ARGV[_ARGV.index("--vault-password-file") + 1]
LOCK = "run/lock/vicireg-carriers.lock"
# A wrong secret made per run (a fixed one would be found in the checkout: this very file is in it).
WRONG = "Wrong-" + os.urandom(6).hex()
PLAY = "Pull mode - converge this dialer's carriers from git (ansible-pull)"
OUTPUTS = []  # every pull run's output, checked for secrets at the end


def flat(text):
    """Output with the YAML callback's line wrapping undone."""
    return " ".join(text.split())


def vaulted(password, value):
    """value as an inline !vault scalar, encrypted as ansible-vault encrypt_string does."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    blob = VaultLib([("default", VaultSecret(password.encode()))]).encrypt(value.encode()).decode()
    return "!vault |\n" + "".join("  %s\n" % line for line in blob.splitlines())


def inventory(d, facts, password, secrets=None, extra=""):
    """The dialer's carriers as the lab inventory gives them (inventories/lab/group_vars), their secrets
    in a vault file; secrets overrides some; extra: more carrier entries (YAML text)."""
    acc, kam, iax = d["accounts"], facts["sip_carrier"]["address"], facts["iax_carrier"]["address"]
    secret = {name: acc[name]["password"] for name in ("pjsip", "iax2", "authuser", "long")}
    secret.update(secrets or {})
    carriers = """---
# LAB ONLY (tests/lab/test_pull.py): the dialer's carriers for pull mode; secrets in vault.yml.
vicireg_carriers_group: asterisk
carriers:
  - name: labpjsip
    protocol: pjsip
    registration: "register => {p}:{{{{ vault_pjsip }}}}@{kam}:5060/{p}{expiry}"
  - name: labiax
    protocol: iax2
    registration: "register => {i}:{{{{ vault_iax2 }}}}@{iax}"
  - name: labauth
    protocol: sip
    registration: "register => {a}@lab.carrier:{{{{ vault_authuser }}}}:{ai}@{kam}:5060/{a}"
  - name: labipauth
    protocol: sip
    host: {kam}
    port: 5060
  - name: lablong
    protocol: sip
    registration: "register => {lg}:{{{{ vault_long }}}}@{kam}:5060/{lg}"
""".format(p=acc["pjsip"]["username"], i=acc["iax2"]["username"], a=acc["authuser"]["username"],
           ai=acc["authuser"]["authuser"], lg=acc["long"]["username"], kam=kam, iax=iax,
           expiry="{{ vault_pjsip_expiry | default('') }}") + extra
    vault = "---\n" + "".join("vault_%s: %s" % (name, vaulted(password, value)) for name, value in secret.items())
    return {INVENTORY + "/hosts.yml": "---\nall:\n  children:\n    dialers:\n      hosts:\n        %s:\n" % d["name"],
            INVENTORY + "/group_vars/dialers/vars.yml": carriers,
            INVENTORY + "/group_vars/dialers/vault.yml": vault}


@pytest.fixture(scope="module")
def pull_lab():
    facts = labtools.facts()
    d = labtools.dialer(facts, 22)
    root = d["root"]
    mounts_before = pulltools.mounts_under(root)
    had_ansible_home = os.path.exists(os.path.join(root, "root/.ansible"))
    password = os.urandom(12).hex()
    borrowed = pulltools.Borrowed(root, pulltools.borrowed_paths())
    work = tempfile.mkdtemp(prefix="vicireg-pull-work-")
    repo = pulltools.Repository(root, work)
    made = [os.path.join(root, p.lstrip("/")) for p in (WORKDIR, os.path.dirname(VAULT_FILE))]
    subprocess.run(["rm", "-rf", repo.bare] + made, check=True)  # leftovers of a killed run of this test
    try:
        borrowed.mount()
        for folder in made:
            os.makedirs(folder, exist_ok=True)
        vault_path = os.path.join(root, VAULT_FILE.lstrip("/"))
        with open(os.open(vault_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(password + "\n")
        repo.create()
        repo.commit(inventory(d, facts, password), "the lab's carriers for lab-a22-02")
        hostname = pulltools.ssh(d, "hostname -s").stdout.strip()
        assert hostname == d["name"], "the dialer's short host name should be its inventory name"
        yield {"facts": facts, "d": d, "root": root, "repo": repo, "password": password, "hostname": hostname,
               "secrets": [a["password"] for a in d["accounts"].values()] + [WRONG, password]}
    finally:
        try:
            # The dialer's carriers as the lab inventory has them, from this controller.
            out = labtools.run_playbook("--limit", d["name"])
            assert out.returncode == 0, out.stdout[-3000:]
        finally:
            home = [] if had_ansible_home else [os.path.join(root, "root/.ansible")]  # ansible-pull made it
            subprocess.run(["rm", "-rf", work] + made + home, check=True)
            repo.remove()
            borrowed.unmount()
            assert pulltools.mounts_under(root) == mounts_before


def pull(lab, *extra, background=False):
    """ansible-pull on the dialer with the example unit's command line (examples/pull/vicireg-pull.service):
    only the repository (-U), the inventory (-i), the venv and systemd's %l are this lab's."""
    argv, workdir, env = pulltools.service()
    argv = list(argv)
    argv[0] = os.path.join(os.path.realpath(sys.prefix), "bin", "ansible-pull")
    argv[argv.index("-U") + 1] = lab["repo"].url
    argv[argv.index("-i") + 1] = INVENTORY + "/hosts.yml"
    argv[argv.index("%l")] = lab["hostname"]  # what systemd puts for %l: the short host name
    argv[-1:-1] = extra
    env = dict(env, PATH=pulltools.GIT_CORE + ":" + env["PATH"])  # the borrowed git
    command = "mkdir -p %s && cd %s && env %s %s" % (workdir, workdir, " ".join(
        shlex.quote("%s=%s" % kv) for kv in env.items()), " ".join(shlex.quote(a) for a in argv))
    if background:
        return subprocess.Popen(pulltools.ssh_argv(lab["d"], command), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    start = time.time()
    out = pulltools.ssh(lab["d"], command)
    out.seconds = time.time() - start
    OUTPUTS.append(out.stdout + out.stderr)
    return out


def report(lab):
    """The pull run's report on the dialer (the checkout's reports/), rows by carrier."""
    with open(os.path.join(lab["root"], CHECKOUT.lstrip("/"), "reports", "registrations.json")) as handle:
        return {r["carrier"]: r for r in json.load(handle) if r["host"] == lab["d"]["name"]}


def pjsip_conf(lab):
    with open(os.path.join(lab["root"], "etc/asterisk/vicireg-pjsip.conf"), "rb") as handle:
        return handle.read()


def registered_on_dialer(lab, carrier):
    out = subprocess.run(["chroot", lab["root"], "asterisk", "-rx", "pjsip show registrations"],
                         capture_output=True, text=True, timeout=20).stdout
    return re.search(r"%s-reg/\S+\s+\S+\s+Registered" % carrier, out) is not None


def holder(lab):
    try:
        with open(os.path.join(lab["root"], LOCK)) as handle:
            text = handle.read()
    except OSError:
        return None
    return json.loads(text) if text.strip() else None


def test_a_commit_that_changes_a_carrier_is_applied_by_the_dialers_pull_run(pull_lab):
    lab = pull_lab
    first = pull(lab)  # the lab's carriers as they are: converged (or nothing to change)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    before = pjsip_conf(lab)
    user = lab["d"]["accounts"]["pjsip"]["username"]
    lab["repo"].commit({INVENTORY + "/group_vars/dialers/expiry.yml": "---\nvault_pjsip_expiry: \"~300\"\n"},
                       "labpjsip registers for 300 s")
    since = registrar.log_lines()
    out = pull(lab)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    after = pjsip_conf(lab)
    assert after != before and b"expiration=300" in after
    sent = [r for r in registrar.registers(since, "received") if r.get("to", "").startswith("sip:%s@" % user)]
    assert sent, "Kamailio got no REGISTER for %s after the pull run" % user
    assert all(r["src"].startswith(lab["d"]["address"] + ":") for r in sent)
    assert any(r["expires_hdr"] == "300" and "%s@%s" % (user, lab["d"]["address"]) in r["contact"] for r in sent)
    rows = report(lab)
    assert rows["labpjsip"]["verdict"] == "registered"
    assert {r["verdict"] for r in rows.values()} <= {"registered", "reachable"}
    assert "labpjsip" in out.stdout and "HOST" in out.stdout  # the table, in the pull run's output
    # The next run, nothing new in git: every carrier judged again, nothing written, reloaded or sent.
    mtime = os.stat(os.path.join(lab["root"], "etc/asterisk/vicireg-pjsip.conf")).st_mtime_ns
    since = registrar.log_lines()
    same = pull(lab)
    assert same.returncode == 0, same.stdout[-3000:]
    assert "nothing to change" in flat(same.stdout)
    assert os.stat(os.path.join(lab["root"], "etc/asterisk/vicireg-pjsip.conf")).st_mtime_ns == mtime
    assert not [r for r in registrar.registers(since, "received") if r.get("to", "").startswith("sip:%s@" % user)]
    assert report(lab)["labpjsip"]["verdict"] == "registered"
    print("pull run seconds: change %.1f, nothing to change %.1f" % (out.seconds, same.seconds))


def test_a_commit_with_a_bad_secret_is_rolled_back_and_reported(pull_lab):
    lab = pull_lab
    good = pjsip_conf(lab)
    lab["repo"].commit(inventory(lab["d"], lab["facts"], lab["password"], {"pjsip": WRONG}), "a wrong secret")
    since = registrar.log_lines()
    out = pull(lab, "-vvv")  # the most verbose output must not show the new secret either
    text = flat(out.stdout)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "lab-a22-02: carrier labpjsip (pjsip): state" in text and "credentials refused" in text, text[-3000:]
    assert re.search(r"Rolled back to the previous files; registered again: [a-z, ]*\blabpjsip\b", text)
    row = report(lab)["labpjsip"]
    assert row["verdict"] == "failed" and "credentials refused" in row["cause"]
    assert pjsip_conf(lab) == good  # byte for byte
    assert registered_on_dialer(lab, "labpjsip")
    user = lab["d"]["accounts"]["pjsip"]["username"]
    answers = [r for r in registrar.registers(since, "reply") if r.get("to", "").startswith("sip:%s@" % user)]
    assert any(r["code"] != "200" for r in answers) and answers[-1]["code"] == "200", answers
    # The repository is fixed the way an operator fixes it: a commit that puts the secret back.
    lab["repo"].commit(inventory(lab["d"], lab["facts"], lab["password"]), "the right secret again")
    again = pull(lab)
    assert again.returncode == 0, again.stdout[-3000:]


def lab_carriers(lab):
    """The dialer's carriers as the lab inventory gives them, as a list for extra vars (a push run)."""
    acc, kam = lab["d"]["accounts"], lab["facts"]["sip_carrier"]["address"]
    reg = {name: "register => %s:%s@%s:5060/%s" % (acc[kind]["username"], acc[kind]["password"], kam,
                                                   acc[kind]["username"])
           for name, kind in (("labpjsip", "pjsip"), ("lablong", "long"))}
    return [{"name": "labpjsip", "protocol": "pjsip", "registration": reg["labpjsip"]},
            {"name": "labiax", "protocol": "iax2", "registration": "register => %s:%s@%s" % (
                acc["iax2"]["username"], acc["iax2"]["password"], lab["facts"]["iax_carrier"]["address"])},
            {"name": "labauth", "protocol": "sip", "registration": "register => %s@lab.carrier:%s:%s@%s:5060/%s" % (
                acc["authuser"]["username"], acc["authuser"]["password"], acc["authuser"]["authuser"], kam,
                acc["authuser"]["username"])},
            {"name": "labipauth", "protocol": "sip", "host": kam, "port": 5060},
            {"name": "lablong", "protocol": "sip", "registration": reg["lablong"]}]


def start_push(lab, carriers):
    """site.yml for the dialer in the background, with these carriers as extra vars (a temp file)."""
    fd, path = tempfile.mkstemp(prefix="vicireg-test-vars-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump({"carriers": carriers}, handle)
    proc = subprocess.Popen([os.path.join(labtools.BIN, "ansible-playbook"), "site.yml", "--limit", lab["d"]["name"],
                             "-e", "@" + path], cwd=labtools.ROOT, env=labtools.ANSIBLE_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.vars_path = path
    return proc


def wait_for_holder(lab, test, what):
    deadline = time.time() + 90
    while time.time() < deadline:
        h = holder(lab)
        if h and test(h):
            return h
        time.sleep(0.1)
    raise AssertionError("%s never took the dialer's lock" % what)


SLOW = """  - name: pullhold
    protocol: pjsip
    timeout: 15
    # nothing answers on this port: the run holds the dialer for the timeout, then rolls back
    registration: "{user}:{{{{ vault_pjsip }}}}@{kam}:5099/{user}"
"""


def test_a_push_run_waits_for_or_fails_naming_a_pull_run_that_holds_the_dialer(pull_lab):
    lab = pull_lab
    d = lab["d"]
    slow = SLOW.format(user=d["accounts"]["pjsip"]["username"], kam=lab["facts"]["sip_carrier"]["address"])
    lab["repo"].commit(inventory(d, lab["facts"], lab["password"], extra=slow), "a carrier nobody answers")
    puller = pull(lab, background=True)
    try:
        h = wait_for_holder(lab, lambda h: h["controller"] == d["name"], "the pull run")
        assert h["play"] == PLAY
        busy = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=1")
        text = flat(busy.stdout)
        assert busy.returncode != 0
        named = "another run holds this dialer: run %s from %s (pid %s" % (h["run"], d["name"], h["pid"])
        assert named in text, text[-3000:]
        assert "play %r" % PLAY in text
        waiter = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=120")
        assert waiter.returncode == 0, waiter.stdout[-3000:]
        assert "waited for another run" in flat(waiter.stdout) and h["run"] in flat(waiter.stdout)
    finally:
        out = puller.communicate(timeout=300)[0]
        OUTPUTS.append(out)
    assert puller.returncode != 0 and "pullhold" in out  # nothing answered: that pull run failed, rolled back
    assert holder(lab) is None


def test_a_pull_run_fails_naming_a_push_run_that_holds_the_dialer(pull_lab):
    lab = pull_lab
    d, kam = lab["d"], lab["facts"]["sip_carrier"]["address"]
    lab["repo"].commit(inventory(d, lab["facts"], lab["password"]), "the lab's carriers again")
    acc = d["accounts"]["pjsip"]
    pushed = start_push(lab, lab_carriers(lab) + [
        {"name": "pushhold", "protocol": "pjsip", "timeout": 15,
         "registration": "%s:%s@%s:5099/%s" % (acc["username"], acc["password"], kam, acc["username"])}])
    try:
        h = wait_for_holder(lab, lambda h: h["pid"] == pushed.pid, "the push run")
        out = pull(lab, "-e", "vicireg_carriers_lock_wait=1")
        text = flat(out.stdout)
        assert out.returncode != 0
        named = "another run holds this dialer: run %s from %s (pid %d" % (h["run"], h["controller"], pushed.pid)
        assert named in text, text[-3000:]
        assert report(lab)["labpjsip"]["verdict"] == "failed"
        assert "another run holds this dialer" in report(lab)["labpjsip"]["cause"]
    finally:
        pushed.communicate(timeout=300)
        os.remove(pushed.vars_path)
    assert holder(lab) is None


def test_no_secret_in_any_pull_output_the_report_or_the_inventory(pull_lab):
    lab = pull_lab
    assert len(OUTPUTS) >= 5
    for text in OUTPUTS:
        for secret in lab["secrets"]:
            assert secret not in text, "a secret leaked into a pull run's output"
    # What the pull runs wrote (the report) and the inventory they read (secrets only in vault form).
    checkout = os.path.join(lab["root"], CHECKOUT.lstrip("/"))
    paths = [os.path.join(folder, name) for top in ("reports", INVENTORY)
             for folder, _dirs, files in os.walk(os.path.join(checkout, top)) for name in files]
    assert len(paths) >= 5
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        for secret in lab["secrets"]:
            assert secret.encode() not in data, "a secret in %s" % path
