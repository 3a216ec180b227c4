"""The pull-mode examples (examples/pull/): the systemd units pass `systemd-analyze verify` (when this
machine has it) and hold what docs/pull.md promises; the cron line is one valid /etc/cron.d entry."""
import configparser
import os
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "pull")
SERVICE = os.path.join(EXAMPLES, "vicireg-pull.service")
TIMER = os.path.join(EXAMPLES, "vicireg-pull.timer")
CRON = os.path.join(EXAMPLES, "vicireg-pull.cron")


def unit(path):
    """A unit file's sections and keys (case kept; an indented line continues the one above)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    with open(path) as handle:
        parser.read_file(handle)
    return parser


def exec_start(service):
    """ExecStart as argv (systemd joins lines ending in a backslash)."""
    return shlex.split(service["Service"]["ExecStart"].replace("\\\n", " "))


def option(argv, name):
    return argv[argv.index(name) + 1]


def test_the_service_runs_ansible_pull_of_local_yml_with_the_vault_file_outside_the_checkout():
    service = unit(SERVICE)
    assert service["Service"]["Type"] == "oneshot"
    argv = exec_start(service)
    assert argv[0] == "/opt/vicireg/venv/bin/ansible-pull" and argv[-1] == "playbooks/local.yml"
    assert option(argv, "--vault-password-file") == "/etc/vicireg/vault-pass"
    assert option(argv, "--limit") == "%l"
    work, checkout = service["Service"]["WorkingDirectory"], option(argv, "-d")
    # ansible-pull fetches with the -i inventory when that path resolves from where it starts: keep the
    # working directory out of the checkout, so the fetch needs no inventory (nor its vault).
    assert not (work + "/").startswith(checkout + "/")
    assert "TimeoutStartSec" in service["Service"]


def test_the_timer_starts_the_service_at_a_random_moment():
    timer = unit(TIMER)
    assert timer["Timer"]["Unit"] == "vicireg-pull.service"
    assert timer["Timer"]["RandomizedDelaySec"]
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here: keys checked above")
def test_systemd_analyze_verify_accepts_both_units_without_a_warning(tmp_path):
    # verify checks that ExecStart's program exists and that the units' dependencies load: a root
    # with this machine's system units, the two examples and a stand-in for the venv's ansible-pull.
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr" / "lib" / "systemd" / "system", symlinks=True)
    program = tmp_path / "opt" / "vicireg" / "venv" / "bin" / "ansible-pull"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    for path in (SERVICE, TIMER):
        shutil.copy(path, units)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=%s" % tmp_path,
                          str(units / "vicireg-pull.service"), str(units / "vicireg-pull.timer")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stderr + out.stdout


def test_systemd_analyze_verify_would_catch_a_mistyped_key(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    bad = tmp_path / "vicireg-pull.timer"
    bad.write_text(open(TIMER).read().replace("RandomizedDelaySec=", "RandomizedDelaySecs="))
    (tmp_path / "vicireg-pull.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert "Unknown key 'RandomizedDelaySecs'" in out.stderr


def test_the_cron_line_is_one_cron_d_entry_that_runs_the_same_pull():
    lines = [ln for ln in open(CRON).read().splitlines() if ln.strip() and not ln.startswith("#")]
    entries = [ln for ln in lines if "=" not in ln.split()[0]]
    assert len(entries) == 1
    fields = entries[0].split(None, 6)
    minute, user, command = fields[0], fields[5], fields[6]
    assert minute.startswith("*/") and user == "root"
    assert "%" not in command  # cron turns % into a newline
    subprocess.run(["sh", "-n", "-c", command], check=True)
    argv = shlex.split(command.split("ansible-pull", 1)[1].split(">>")[0])
    service = exec_start(unit(SERVICE))
    for name in ("-U", "-C", "-d", "-i", "--vault-password-file"):
        assert option(argv, name) == option(service, name), name
    assert argv[-1] == "playbooks/local.yml" and "-s" in argv
    # Its own flock file: the toolkit's lock file is locked by each step of a run, and would deadlock.
    assert "flock -n" in command and "vicireg-carriers.lock" not in command
