"""carrier-lint under pre-commit: the hook other repositories use (.pre-commit-hooks.yaml, installed by
pre-commit itself from this repository, as `try-repo` does) and this repository's own
.pre-commit-config.yaml (yamllint, ansible-lint, carrier-lint from the venv).

pre-commit's hook environment is built from the local package index (PyYAML, setuptools); nothing
else is fetched.
"""
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vicireg_lint import cli  # noqa: E402  (this checkout's, not the venv's installed one)
BIN = os.path.dirname(sys.executable)
BAD = "carriers:\n  - name: acme\n    registration: 'register => 4155550100:Secret1@sip.acme.example:99999'\n"
GOOD = "carriers:\n  - name: acme\n    registration: 'register => 4155550100:Secret1@sip.acme.example:5060'\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """pre-commit from the venv, its hook environments in a throw-away home."""
    if not os.path.exists(os.path.join(BIN, "carrier-lint")):
        pytest.fail("carrier-lint is not installed in the venv: run make venv")
    out = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    out.pop("VIRTUAL_ENV", None)
    return out


# Paths a commit may touch: the ones carrier-lint must check, and the ones it must leave alone.
CHECKED = ["group_vars/dialers", "group_vars/dialers.yml", "host_vars/dialer1.example.com", "host_vars/10.0.0.5.yml",
           "host_vars/dialer1.example.com/main.yml", "group_vars/dialers/vault.yml", "hosts.yml", "hosts",
           "hosts.ini", "inventory.yml", "prod/hosts"]
LEFT = ["README.md", "group_vars/dialers.yml.j2", "group_vars/README.md", "host_vars/d1/.main.yml.swp",
        "host_vars/d1.yml~", "host_vars/d1/notes.txt", "docs/hosts.md"]
# Outside any inventory folder.
OUTSIDE = ["roles/x/tasks/main.yml", "site.yml", "README.md", "molecule/default/molecule.yml"]


def _selected(config, hook, prefix):
    """[(path, read)]: each path pre-commit hands to the hook (re.search of its files regex, as pre-commit
    matches), and whether carrier-lint then reads it."""
    with open(os.path.join(ROOT, config)) as handle:
        hooks = yaml.safe_load(handle)
    if isinstance(hooks, dict):
        hooks = [h for repo in hooks["repos"] for h in repo["hooks"]]
    files = re.compile(next(h for h in hooks if h["id"] == hook)["files"])
    paths = [prefix + path for path in CHECKED + LEFT] + OUTSIDE
    return {path: bool(files.search(path)) and cli.kind_of(path, named=True) is not None for path in paths}


@pytest.mark.parametrize("config,prefix", [(".pre-commit-hooks.yaml", "inventories/prod/"),
                                           (".pre-commit-hooks.yaml", "inventory/"),
                                           (".pre-commit-config.yaml", "inventories/lab/")])
def test_the_hooks_select_every_vars_file_and_inventory_and_nothing_else(config, prefix):
    read = _selected(config, "carrier-lint", prefix)
    assert [p for p in CHECKED if not read[prefix + p]] == []
    assert [p for p in LEFT if read[prefix + p]] + [p for p in OUTSIDE if read[p]] == []


def git_repo(path, files, env):
    """A fresh git repository holding files ({path: text}), all committed."""
    for name, text in files.items():
        full = os.path.join(str(path), name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "inventory"]):
        subprocess.run(["git"] + args, cwd=str(path), env=env, check=True, capture_output=True)
    return str(path)


def pre_commit(args, cwd, env):
    done = subprocess.run([sys.executable, "-m", "pre_commit"] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def test_hook_for_other_repositories_fails_on_a_bad_inventory_and_passes_on_a_good_one(tmp_path, env):
    repo = git_repo(tmp_path / "site", {"inventories/prod/group_vars/dialers.yml": BAD,
                                        "inventories/prod/hosts.yml": "all:\n  hosts:\n    d1:\n",
                                        "README.md": "not an inventory\n"}, env)
    rc, out = pre_commit(["try-repo", ROOT, "carrier-lint", "--all-files"], repo, env)
    assert rc == 1, out
    assert "inventories/prod/group_vars/dialers.yml:3:68: acme: 'register => 4155550100:****@" in out, out
    assert "port 99999 is not in 1-65535" in out and "Secret1" not in out
    with open(os.path.join(repo, "inventories/prod/group_vars/dialers.yml"), "w") as handle:
        handle.write(GOOD)
    rc, out = pre_commit(["try-repo", ROOT, "carrier-lint", "--all-files"], repo, env)
    assert rc == 0 and "carrier-lint" in out and "Passed" in out, out


def test_this_repositorys_carrier_lint_hook(tmp_path, env):
    config = os.path.join(ROOT, ".pre-commit-config.yaml")
    repo = git_repo(tmp_path / "site", {"inventories/lab/host_vars/d1": BAD}, env)
    rc, out = pre_commit(["run", "carrier-lint", "--all-files", "--config", config], repo, env)
    assert rc == 1 and "inventories/lab/host_vars/d1:3:68: acme: " in out, out
    with open(os.path.join(repo, "inventories/lab/host_vars/d1"), "w") as handle:
        handle.write(GOOD)
    rc, out = pre_commit(["run", "carrier-lint", "--all-files", "--config", config], repo, env)
    assert rc == 0 and "carrier-lint" in out and "Passed" in out, out


def test_this_repositorys_whole_config_passes_on_the_repository(env):
    """yamllint, ansible-lint (the whole project, about 30 s) and carrier-lint, as a commit would run them."""
    rc, out = pre_commit(["run", "--all-files"], ROOT, env)
    assert rc == 0, out
    for hook in ("yamllint --strict", "ansible-lint (production profile)", "carrier-lint"):
        assert hook in out and "Failed" not in out, out
