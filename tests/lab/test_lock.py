"""One run per dialer at a time: a second run waits or fails naming the holder; a killed run's lock and
a run-out lease from another controller are taken over; --check takes no lock."""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

import labtools


def flat(out):
    """The run's output with its line wrapping undone (the YAML callback folds long messages)."""
    return " ".join(out.stdout.split())


LOCK = os.path.join("run", "lock", "vicireg-carriers.lock")


def carriers(facts, port=5060, contact="7201", timeout=8):
    """One PJSIP carrier; on a port where nothing answers the run holds the dialer until its timeout."""
    return [{"name": "locky", "protocol": "pjsip", "timeout": timeout,
             "registration": "{{ lab_accounts.pjsip.username }}:{{ lab_accounts.pjsip.password }}@%s:%d/%s" % (
                 facts["sip_carrier"]["address"], port, contact)}]


def holder(d):
    try:
        with open(os.path.join(d["root"], LOCK)) as handle:
            text = handle.read()
    except OSError:
        return None
    return json.loads(text) if text.strip() else None


def start(d, carrier_list):
    """site.yml on one dialer in the background, in its own process group."""
    fd, path = tempfile.mkstemp(prefix="vicireg-test-vars-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump({"carriers": carrier_list}, handle)
    proc = subprocess.Popen([os.path.join(labtools.BIN, "ansible-playbook"), "site.yml", "--limit", d["name"],
                             "-e", "@" + path], cwd=labtools.ROOT, env=labtools.ANSIBLE_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.vars_path = path
    deadline = time.time() + 60
    while time.time() < deadline and not (holder(d) or {}).get("pid") == proc.pid:
        time.sleep(0.1)
    assert (holder(d) or {}).get("pid") == proc.pid, "the background run never took the lock"
    return proc


def finish(proc):
    out = proc.communicate(timeout=300)[0]
    os.remove(proc.vars_path)
    return proc.returncode, out


@pytest.fixture(scope="module")
def lab():
    facts = labtools.facts()
    d = labtools.dialer(facts, 16)
    out = labtools.run_on(d, carriers(facts))
    assert out.returncode == 0, out.stdout[-3000:]
    return {"facts": facts, "d": d}


def test_a_second_run_fails_naming_the_holder_or_waits_for_it(lab):
    d, facts = lab["d"], lab["facts"]
    slow = start(d, carriers(facts, port=5099, contact="7202", timeout=10))  # holds the dialer ~12 s
    out = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=1", carriers=carriers(facts))
    assert out.returncode != 0
    assert "another run holds this dialer" in flat(out) and "pid %d" % slow.pid in flat(out), out.stdout[-3000:]
    row = [r for r in out.report if r["host"] == d["name"]][0]
    assert row["verdict"] == "failed" and "another run holds this dialer" in row["cause"]
    # With time to wait, the next run starts once the first is done, and converges.
    waiter = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=120",
                                   carriers=carriers(facts, contact="7203"))
    code, first = finish(slow)
    assert code != 0 and "locky" in first  # port 5099 answers nothing: that run failed and rolled back
    assert waiter.returncode == 0, waiter.stdout[-3000:]
    assert "waited for another run" in flat(waiter)
    assert holder(d) is None


def test_a_killed_run_is_taken_over_at_once(lab):
    d, facts = lab["d"], lab["facts"]
    slow = start(d, carriers(facts, port=5099, contact="7204", timeout=30))
    dead = holder(d)
    os.killpg(slow.pid, signal.SIGKILL)
    finish(slow)
    assert holder(d)["run"] == dead["run"]  # nobody gave it back
    out = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=0", carriers=carriers(facts))
    assert out.returncode == 0, out.stdout[-3000:]
    assert "took over the lock of a run that is gone (run %s" % dead["run"] in flat(out)
    assert holder(d) is None


def test_a_lease_from_another_controller_blocks_until_it_runs_out_and_check_mode_takes_no_lock(lab):
    d, facts = lab["d"], lab["facts"]
    path = os.path.join(d["root"], LOCK)
    other = {"run": "ctl-elsewhere:4242-1", "controller": "ctl-elsewhere", "pid": 4242, "started": "1",
             "user": "pipeline", "play": "site", "since": time.time() - 5, "expires": time.time() + 600}
    try:
        with open(path, "w") as handle:
            json.dump(other, handle)
        out = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=1",
                                    carriers=carriers(facts, contact="7205"))
        assert out.returncode != 0 and "ctl-elsewhere" in flat(out) and "user pipeline" in flat(out)
        check = labtools.run_playbook("--limit", d["name"], "--check", carriers=carriers(facts, contact="7205"))
        assert check.returncode == 0, check.stdout[-3000:]
        assert holder(d)["run"] == other["run"]
        with open(path, "w") as handle:
            json.dump(dict(other, expires=time.time() - 1), handle)
        out = labtools.run_playbook("--limit", d["name"], "-e", "vicireg_carriers_lock_wait=0",
                                    carriers=carriers(facts, contact="7205"))
        assert out.returncode == 0, out.stdout[-3000:]
        assert "took over the lock of a run that is gone (run ctl-elsewhere:4242-1" in flat(out)
    finally:
        with open(path, "w"):
            pass
