# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""One run per dialer at a time: a lease in a lock file on the dialer.

A run's calls are separate processes (one per task), so no process can hold an flock for the whole
run. The file holds the holder instead: its run id, controller, pid, user and play, since when, and
until when its lease runs. flock guards only each read-modify-write. A run refreshes its lease with
every call and releases it by emptying the file: the file is never unlinked, since another process
may already have it open and would then write its claim into a file nobody else reads.

A lease that has run out is stale (its run was killed, or lost its dialer): the next run takes it
over and says so. The controller detects a killed run on the same machine at once (its pid is gone):
`steal` names the run id it may take over.
"""
from __future__ import absolute_import, division, print_function

import fcntl
import json
import os
import time

__metaclass__ = type

DEFAULT_PATH = "/run/lock/vicireg-carriers.lock"


class LockLost(Exception):
    """This run's lease was taken over or released by someone else."""


def _locked(path):
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _read(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    try:
        holder = json.loads(data.decode("utf-8")) if data.strip() else None
    except ValueError:
        return None  # garbage (a crash mid-write on another system): nobody holds it
    return holder if isinstance(holder, dict) and holder.get("run") else None


def _write(fd, holder):
    data = json.dumps(holder, sort_keys=True).encode("utf-8") if holder else b""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, data)


def describe(holder, now=None):
    """One line naming the holder: run, controller, pid, user, play, age and lease."""
    now = time.time() if now is None else now
    return "run %s from %s (pid %s, user %s, play %r), holding it for %ds, lease ends in %ds" % (
        holder.get("run"), holder.get("controller"), holder.get("pid"), holder.get("user"), holder.get("play"),
        max(0, now - float(holder.get("since", now))), float(holder.get("expires", now)) - now)


def acquire(path, owner, lease, steal=None, now=None):
    """Take the lock for owner (a dict with at least 'run').

    Returns (acquired, holder, taken_over): holder is the current holder when busy; taken_over is the
    stale holder this call replaced (lease run out, or named by steal), else None.
    """
    now = time.time() if now is None else now
    fd = _locked(path)
    try:
        holder = _read(fd)
        taken_over = None
        if holder and holder["run"] != owner["run"]:
            if float(holder.get("expires", 0)) > now and holder["run"] != steal:
                return False, holder, None
            taken_over = holder
        record = dict(owner)
        record["since"] = holder["since"] if holder and holder["run"] == owner["run"] else now
        record["expires"] = now + float(lease)
        _write(fd, record)
        return True, record, taken_over
    finally:
        os.close(fd)


def refresh(path, owner, lease, now=None):
    """Extend owner's lease; raises LockLost when it no longer holds the lock."""
    now = time.time() if now is None else now
    fd = _locked(path)
    try:
        holder = _read(fd)
        if not holder or holder["run"] != owner["run"]:
            raise LockLost("this run no longer holds the dialer's lock %s: %s" % (
                path, "released by someone else" if not holder else "taken by " + describe(holder, now)))
        holder["expires"] = now + float(lease)
        _write(fd, holder)
    finally:
        os.close(fd)


def release(path, owner):
    """Give the lock up if owner holds it; True when it did."""
    if not os.path.exists(path):
        return False
    fd = _locked(path)
    try:
        holder = _read(fd)
        if holder and holder["run"] == owner["run"]:
            _write(fd, None)
            return True
        return False
    finally:
        os.close(fd)


def holder_of(path):
    """The current holder (stale or not), or None; for read-only audits."""
    if not os.path.exists(path):
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return _read(fd)
    finally:
        os.close(fd)


def controller_run(play=None):
    """This ansible-playbook run, seen from a controller-side plugin (a worker forked from it): run id
    (pid and start time, so a recycled pid is another run), controller host name, pid, user, play."""
    import getpass
    import socket
    pid = os.getppid()
    started = _start_time(pid) or "?"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    host = socket.gethostname()
    return {"run": "%s:%d-%s" % (host, pid, started), "controller": host, "pid": pid, "started": started,
            "user": user, "play": play}


def _start_time(pid):
    try:
        with open("/proc/%d/stat" % int(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (IOError, OSError, IndexError, ValueError):
        return None


def dead_here(holder):
    """True when holder's run was on this very controller and its process is gone (killed, crashed):
    its lease need not run out first."""
    import socket
    if not holder or holder.get("controller") != socket.gethostname():
        return False
    return _start_time(holder.get("pid", -1)) != holder.get("started")
