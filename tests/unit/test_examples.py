"""The pipelines under examples/: valid for GitHub Actions and GitLab CI (their vendors' schemas, as
check-jsonschema ships them, offline), and doing what examples/README.md says: plan with --check --diff,
apply only on the default branch and one at a time, the reports kept also when a run fails, the vault
password only ever written to a file that is removed.
"""
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GITHUB = os.path.join(ROOT, "examples", "github", "workflows", "vicireg.yml")
GITLAB = os.path.join(ROOT, "examples", "gitlab", ".gitlab-ci.yml")
BIN = os.path.dirname(sys.executable)
# Any attempt to fetch a schema goes to a closed port: the check must work without a network.
OFFLINE = dict(os.environ, http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="")
REPORTS = {"reports/registrations.json", "reports/registrations.junit.xml"}
# The only ways a script may touch the vault password: check it is set, write it to the job's file.
VAULT_LINES = (re.compile(r"""^: "\$\{VICIREG_VAULT_PASSWORD:\?[^}$`]*\}"$"""),
               re.compile(r"""^printf '%s\\n' "\$VICIREG_VAULT_PASSWORD" > "\$dir/vault-password"$"""))


def check_jsonschema(schema, path):
    return subprocess.run([os.path.join(BIN, "check-jsonschema"), "--builtin-schema", schema, path],
                          capture_output=True, text=True, env=OFFLINE, timeout=120)


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("schema,path", [("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)])
def test_valid_under_the_vendor_schema(schema, path):
    out = check_jsonschema(schema, path)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("schema,path,wrong,right,message", [
    ("vendor.github-workflows", GITHUB, "    run-on: ubuntu-24.04\n", "    runs-on: ubuntu-24.04\n",
     "$.jobs.lint: 'runs-on' is a required property"),
    ("vendor.gitlab-ci", GITLAB, "  resource_grop: ", "  resource_group: ", "'resource_grop' was unexpected"),
    ("vendor.gitlab-ci", GITLAB, "  scirpt:\n", "  script:\n", "'scirpt' was unexpected"),
])
def test_a_misspelled_key_fails_the_schema(tmp_path, schema, path, wrong, right, message):
    """The schema check can fail: the same file with one key misspelled is refused."""
    with open(path) as handle:
        text = handle.read()
    assert right in text
    broken = tmp_path / os.path.basename(path)
    broken.write_text(text.replace(right, wrong, 1))
    out = check_jsonschema(schema, str(broken))
    assert out.returncode == 1 and message in out.stdout, out.stdout + out.stderr


def test_yamllint_strict_passes_on_examples():
    out = subprocess.run([os.path.join(BIN, "yamllint"), "--strict", "examples/"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout


def shell_lines(scripts):
    for script in scripts:
        for line in str(script).splitlines():
            yield line.strip()


def assert_secret_handling(scripts):
    lines = list(shell_lines(scripts))
    assert not [x for x in lines if re.search(r"\bset\s+-[a-wyz]*x|\bset\s+-o\s+xtrace|\bbash\s+-x", x)], "set -x"
    vault = [x for x in lines if "VICIREG_VAULT_PASSWORD" in x]
    assert vault, "the vault password is never written to its file"
    for line in vault:
        assert any(p.match(line) for p in VAULT_LINES), "the vault password used otherwise than written: %s" % line
    assert any(p.match(line) for p in VAULT_LINES[1:] for line in vault)
    assert any(re.match(r"^umask 0?077$", x) for x in lines), "the secret files must be created 0600"


# GitHub Actions


def github_steps(job):
    return load(GITHUB)["jobs"][job]["steps"]


def runs(job):
    return [s.get("run", "") for s in github_steps(job)]


def test_github_plan_is_check_diff_on_pull_requests_only():
    jobs = load(GITHUB)["jobs"]
    assert jobs["plan"]["if"] == "github.event_name == 'pull_request'"
    assert "ansible-playbook site.yml -i \"$VICIREG_INVENTORY\" --check --diff" in runs("plan")
    assert not [r for r in runs("plan") if "ansible-playbook" in r and "--check" not in r]


def test_github_apply_only_on_the_default_branch_one_at_a_time():
    doc = load(GITHUB)
    apply = doc["jobs"]["apply"]
    assert apply["if"] == ("github.event_name == 'push' && github.ref == "
                           "format('refs/heads/{0}', github.event.repository.default_branch)")
    assert apply["concurrency"] == {"group": "vicireg-apply", "cancel-in-progress": False}
    assert "ansible-playbook site.yml -i \"$VICIREG_INVENTORY\"" in runs("apply")
    # No other job writes to the dialers.
    for name, job in doc["jobs"].items():
        if name != "apply":
            assert not [r for r in runs(name) if "ansible-playbook site.yml" in r and "--check" not in r], name


@pytest.mark.parametrize("job", ["plan", "apply", "status"])
def test_github_keeps_the_reports_also_when_the_run_fails(job):
    steps = github_steps(job)
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert len(uploads) == 1 and uploads[0]["if"] == "always()"
    assert set(uploads[0]["with"]["path"].split()) == REPORTS
    removal = [s for s in steps if "rm -rf \"$RUNNER_TEMP/vicireg\"" in s.get("run", "")]
    assert len(removal) == 1 and removal[0]["if"] == "always()"
    run_at = [i for i, s in enumerate(steps) if "ansible-playbook" in s.get("run", "")]
    assert len(run_at) == 1 and steps.index(removal[0]) > run_at[0]


@pytest.mark.parametrize("job", ["plan", "apply", "status"])
def test_github_vault_password_only_from_the_secret_store_into_a_file(job):
    steps = github_steps(job)
    assert_secret_handling(s.get("run", "") for s in steps)
    with_secret = [s for s in steps if "secrets.VICIREG_VAULT_PASSWORD" in str(s)]
    assert len(with_secret) == 1
    assert with_secret[0]["env"]["VICIREG_VAULT_PASSWORD"] == "${{ secrets.VICIREG_VAULT_PASSWORD }}"
    assert "ANSIBLE_VAULT_PASSWORD_FILE=$dir/vault-password" in with_secret[0]["run"]
    assert "StrictHostKeyChecking=yes" in with_secret[0]["run"]


def test_github_uses_only_the_three_official_actions():
    used = set()
    for job in load(GITHUB)["jobs"].values():
        used.update(s["uses"].split("@")[0] for s in job["steps"] if "uses" in s)
    assert used == {"actions/checkout", "actions/setup-python", "actions/upload-artifact"}


def test_github_lint_runs_the_three_linters():
    lint = " ".join(runs("lint"))
    for command in ("yamllint --strict .", "ansible-lint --profile production", "carrier-lint inventories/",
                    "pip install -r requirements-dev.txt", "pip install -e ."):
        assert command in lint


def test_github_job_summary_script_reads_the_report(tmp_path):
    """The summary step is Python run by the runner: run it on a report."""
    script = [s for s in github_steps("apply") if s.get("shell") == "python"][0]["run"]
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "registrations.json").write_text(
        '[{"host": "d1", "carrier": "acme", "protocol": "sip", "state": "Auth. Sent", "verdict": "failed", '
        '"cause": "credentials refused | x", "seconds": 2.1}]')
    summary = tmp_path / "summary.md"
    subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), check=True,
                   env=dict(os.environ, GITHUB_STEP_SUMMARY=str(summary), GITHUB_JOB="apply"))
    text = summary.read_text()
    assert "### vicireg apply (1 failed of 1)" in text
    assert "| d1 | acme | sip | Auth. Sent | failed | credentials refused \\| x |" in text


# GitLab CI


def gitlab_job(name):
    """A job with its `extends` templates merged in (the job's own keys win, as in GitLab)."""
    doc = load(GITLAB)
    job = dict(doc[name])
    for parent in [job.pop("extends")] if isinstance(job.get("extends"), str) else job.pop("extends", []):
        merged = dict(doc[parent])
        merged.update(job)
        job = merged
    return job


def gitlab_ifs(job):
    return [r.get("if") for r in job.get("rules", [])]


def test_gitlab_plan_is_check_diff_on_merge_requests_only():
    plan = gitlab_job("plan")
    assert gitlab_ifs(plan) == ['$CI_PIPELINE_SOURCE == "merge_request_event"']
    assert plan["script"] == ['ansible-playbook site.yml -i "$VICIREG_INVENTORY" --check --diff']


def test_gitlab_apply_only_on_the_default_branch_one_at_a_time():
    apply = gitlab_job("apply")
    assert gitlab_ifs(apply) == ['$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH']
    assert all(r.get("when", "on_success") != "always" for r in apply["rules"])
    assert apply["resource_group"] and apply["interruptible"] is False
    assert apply["script"] == ['ansible-playbook site.yml -i "$VICIREG_INVENTORY"']
    doc = load(GITLAB)
    for name in doc:
        if isinstance(doc[name], dict) and "script" in doc[name] and name != "apply":
            assert not [x for x in shell_lines(gitlab_job(name)["script"])
                        if "ansible-playbook site.yml" in x and "--check" not in x], name


@pytest.mark.parametrize("name", ["plan", "apply", "status"])
def test_gitlab_keeps_the_reports_also_when_the_run_fails(name):
    job = gitlab_job(name)
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert set(artifacts["paths"]) == REPORTS
    assert artifacts["reports"]["junit"] == "reports/registrations.junit.xml"
    assert job["after_script"] == ['rm -rf "/tmp/vicireg-$CI_JOB_ID"']  # after_script runs however the job ends
    assert_secret_handling(job["before_script"] + job["script"] + job["after_script"])
    assert 'export ANSIBLE_VAULT_PASSWORD_FILE="$dir/vault-password" ANSIBLE_PRIVATE_KEY_FILE="$dir/ssh-key"' \
        in job["before_script"]
    assert any("StrictHostKeyChecking=yes" in x for x in job["before_script"])


def test_gitlab_lint_and_status():
    lint = gitlab_job("lint")
    for command in ("yamllint --strict .", "ansible-lint --profile production", "carrier-lint inventories/"):
        assert command in lint["script"]
    status = gitlab_job("status")
    assert gitlab_ifs(status) == ['$CI_PIPELINE_SOURCE == "schedule"']
    assert status["script"] == ['ansible-playbook playbooks/status.yml -i "$VICIREG_INVENTORY"']


def test_secret_checks_see_an_echoed_password_and_set_x():
    """The secret checks can fail."""
    good = ["umask 077", 'printf \'%s\\n\' "$VICIREG_VAULT_PASSWORD" > "$dir/vault-password"']
    assert_secret_handling(good)
    for bad in ('echo "$VICIREG_VAULT_PASSWORD"', "set -x", "set -eux", 'printf \'%s\\n\' "$VICIREG_VAULT_PASSWORD"',
                'ansible-playbook site.yml -e "pw=$VICIREG_VAULT_PASSWORD"'):
        with pytest.raises(AssertionError):
            assert_secret_handling(good + [bad])
