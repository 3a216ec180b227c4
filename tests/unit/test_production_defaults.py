"""Production defaults apart from the lab's: host keys are checked unless the inventory is the lab's,
and the runtime requirements hold only what a controller needs to run the playbooks."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(ROOT, "lab"))

from labkit import state  # noqa: E402


def config_dump(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_HOST_KEY_CHECKING", None)
    env.pop("ANSIBLE_SSH_ARGS", None)
    out = subprocess.run([os.path.join(BIN, "ansible-config"), "dump", "--only-changed", "-t", "all"] + list(extra),
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ansible_cfg_checks_host_keys():
    dump = config_dump()
    assert "HOST_KEY_CHECKING" not in dump  # left at Ansible's default: True
    assert "StrictHostKeyChecking" not in dump and "UserKnownHostsFile" not in dump
    assert "ControlPersist" in dump  # the ssh_args line is still read


def test_example_inventory_checks_host_keys():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", "inventories/example", "--list",
                          "--vault-password-file", "inventories/example/DEMO-vault-password.txt"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dialer1.callcenter.example" in out.stdout
    assert "StrictHostKeyChecking" not in out.stdout and "host_key_checking" not in out.stdout


def test_lab_inventory_alone_turns_checking_off(tmp_path, monkeypatch):
    written = {}
    monkeypatch.setattr(state, "atomic_write", lambda path, text: written.update(text=text))
    cfg = {"roots": {"a16": {"asterisk_major": 16}, "a22": {"asterisk_major": 22}}, "dialer": {"ssh_port": 2222}}
    state.write_inventory(cfg, [])
    assert "ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" in written["text"]


def requirement_names(name):
    names = []
    with open(os.path.join(ROOT, name)) as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                names.append(line.split("==")[0].lower())
    return names


def test_runtime_requirements_are_the_controller_only():
    runtime = requirement_names("requirements.txt")
    assert set(runtime) == {"ansible-core", "jinja2"}
    dev = requirement_names("requirements-dev.txt")
    assert not set(runtime) & set(dev)
    assert {"pytest", "molecule", "ansible-lint", "yamllint", "hypothesis"} <= set(dev)
    with open(os.path.join(ROOT, "requirements-dev.txt")) as handle:
        assert "-r requirements.txt" in handle.read()
