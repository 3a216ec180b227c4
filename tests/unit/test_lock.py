"""The per-dialer lock (module_utils/vicireg_lock): one holder, a lease, stale holders taken over."""
import json
import multiprocessing
import os

import pytest

import vicireg_lock as lock

A = {"run": "ctl:100-5", "controller": "ctl", "pid": 100, "user": "ops", "play": "site"}
B = {"run": "ctl:200-7", "controller": "ctl", "pid": 200, "user": "ci", "play": "site"}


def test_a_second_run_is_refused_and_told_who_holds_it(tmp_path):
    path = str(tmp_path / "run" / "lock" / "x.lock")
    assert lock.acquire(path, A, 300, now=1000)[0]
    got, holder, taken = lock.acquire(path, B, 300, now=1010)
    assert not got and holder["run"] == A["run"] and taken is None
    text = lock.describe(holder, now=1010)
    assert "ctl:100-5" in text and "pid 100" in text and "user ops" in text and "holding it for 10s" in text
    assert "lease ends in 290s" in text


def test_the_holder_renews_and_releases_and_the_file_stays(tmp_path):
    path = str(tmp_path / "x.lock")
    lock.acquire(path, A, 30, now=1000)
    lock.refresh(path, A, 30, now=1020)
    assert not lock.acquire(path, B, 30, now=1040)[0]  # renewed at 1020: still held at 1040
    assert lock.release(path, B) is False  # not B's to give back
    assert lock.release(path, A) is True
    assert os.path.exists(path) and lock.holder_of(path) is None
    assert lock.acquire(path, B, 30, now=1041)[0]


def test_a_run_out_lease_is_taken_over_and_the_old_holder_learns_it_lost(tmp_path):
    path = str(tmp_path / "x.lock")
    lock.acquire(path, A, 30, now=1000)
    got, holder, taken = lock.acquire(path, B, 30, now=1031)
    assert got and holder["run"] == B["run"] and taken["run"] == A["run"]
    with pytest.raises(lock.LockLost, match="taken by run ctl:200-7"):
        lock.refresh(path, A, 30, now=1032)


def test_steal_takes_over_only_the_named_run(tmp_path):
    path = str(tmp_path / "x.lock")
    lock.acquire(path, A, 300, now=1000)
    assert not lock.acquire(path, B, 300, steal="ctl:999-1", now=1001)[0]
    got, _, taken = lock.acquire(path, B, 300, steal=A["run"], now=1001)
    assert got and taken["run"] == A["run"]


def test_garbage_in_the_file_is_no_holder(tmp_path):
    path = str(tmp_path / "x.lock")
    with open(path, "w") as handle:
        handle.write("{not json")
    assert lock.acquire(path, A, 30, now=1)[0]
    with open(path) as handle:
        assert json.load(handle)["run"] == A["run"]


def _contend(path, index, out):
    owner = dict(A, run="r%d" % index)
    out.put((index, lock.acquire(path, owner, 300)[0]))


def test_of_many_processes_at_once_exactly_one_gets_it(tmp_path):
    path = str(tmp_path / "x.lock")
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_contend, args=(path, i, queue)) for i in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    results = [queue.get(timeout=5) for _ in procs]
    assert sum(1 for _, got in results if got) == 1


def test_a_dead_run_on_this_controller_is_seen_at_once():
    me = lock.controller_run("site")
    assert me["run"].startswith(me["controller"] + ":") and me["play"] == "site"
    assert not lock.dead_here(me)  # our parent (pytest's parent) lives
    assert lock.dead_here(dict(me, pid=2 ** 22 + 7))  # no such pid
    assert lock.dead_here(dict(me, started="1"))  # the pid was recycled: another process
    assert not lock.dead_here(dict(me, controller="elsewhere", pid=2 ** 22 + 7))  # only its lease tells
