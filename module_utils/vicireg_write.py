# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Write the toolkit's files and their include lines on the dialer: everything planned first, nothing
written unless all of it can be, each file atomic with its previous version kept for the rollback.

Shared by vicireg_config_files (check mode, --diff, restore) and vicireg_registration_status, which
writes, reloads and judges in one call when a dialer changes.
"""
from __future__ import absolute_import, division, print_function

import grp
import os
import pwd
import re
import time

from ansible.module_utils import vicireg_files as files
from ansible.module_utils import vicireg_render as render

__metaclass__ = type

MAIN_DRIVER = {"sip.conf": "sip", "iax.conf": "iax2", "pjsip.conf": "pjsip", "pjsip_wizard.conf": "pjsip"}
GENERAL = re.compile(r"^\[general\]\s*(;.*)?$")


class WriteError(Exception):
    """Nothing (or, with `touched`, only what could be put back) was written."""

    def __init__(self, message, touched=None):
        Exception.__init__(self, message)
        self.touched = touched or []


def prune_backups(path, count, keep):
    """Ansible names backups PATH.PID.YYYY-MM-DD@HH:MM:SS~; keep the newest `count` of them."""
    folder, base = os.path.split(path)
    pattern = re.compile(re.escape(base) + r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$")
    found = sorted((os.path.join(folder, n) for n in os.listdir(folder) if pattern.match(n)),
                   key=lambda f: (os.path.getmtime(f), f), reverse=True)
    for old in found[max(count, 1):]:
        if old != keep:
            os.remove(old)


def with_include(text, line, where):
    lines = text.splitlines(True)
    if any(x.strip() == line for x in lines):
        return text
    if where == "general":
        for i, x in enumerate(lines):
            if GENERAL.match(x.strip()):
                lines.insert(i + 1, line + "\n")
                return "".join(lines)
        return None  # no [general]: refuse rather than put register lines in another section
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + line + "\n"


def plan(conf_dir, templates, secrets, includes, owner, group, mode):
    """[(path, new text, text to show, driver, (uid, gid, mode) or None for a main file)]."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
        gid = grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise WriteError("unknown owner or group on the dialer: %s" % exc)
    mode = int(str(mode), 8)
    secrets = dict((str(k), str(v)) for k, v in (secrets or {}).items())
    out = []
    for name, template in sorted((templates or {}).items()):
        if name not in render.FILES:
            raise WriteError("not a file of this toolkit: %s" % name)
        out.append((os.path.join(conf_dir, name), render.fill_template(template, secrets), template,
                    render.FILES[name], (uid, gid, mode)))
    pending = {}
    created = set()
    for inc in includes or []:
        path = os.path.join(conf_dir, inc["file"])
        text = pending.get(path, files.read(path))
        if text is None and inc["file"] in render.CREATE_MAIN:
            text = "; Created by Ansible (vicireg) to include the toolkit's file.\n"
            created.add(path)
        if text is None:
            raise WriteError("%s does not exist: cannot include %s; nothing was changed" % (path, inc["line"]))
        new = with_include(text, inc["line"], inc["where"])
        if new is None:
            raise WriteError("%s has no [general] section for '%s'; nothing was changed" % (path, inc["line"]))
        pending[path] = new
    for path, new in pending.items():
        if new != files.read(path):
            out.append((path, new, new, MAIN_DRIVER.get(os.path.basename(path)),
                        (uid, gid, mode) if path in created else None))
    return out


def _needs_write(path, new, owner):
    """(text now or None, owner/group/mode to write with, whether apply writes it): content or metadata differ."""
    old = files.read(path)
    info = os.stat(path) if old is not None else None
    if owner is None and info is not None:  # a main config file keeps its own owner and mode
        owner = (info.st_uid, info.st_gid, info.st_mode & 0o7777)
    same_meta = info is not None and (info.st_uid, info.st_gid, info.st_mode & 0o7777) == owner
    return old, owner, not (old == new and same_meta)


def pending(planned):
    """The paths of a plan that apply would write (the one-call no-op asks this, so the two never disagree)."""
    return [entry[0] for entry in planned if _needs_write(entry[0], entry[1], entry[4])[2]]


def apply(planned, backup, keep=5, check_mode=False, diff=False):
    """Write what differs (content, owner or mode). Returns (touched, diffs); on an OSError puts back what
    it wrote and raises WriteError."""
    touched, diffs = [], []
    path = None
    try:
        for path, new, shown, driver, owner in planned:
            old, owner, needed = _needs_write(path, new, owner)
            if not needed:
                continue
            if diff and old != new:
                # Before: the file as it is, secrets masked; after: the template (tokens), masked too.
                diffs.append({"before_header": path, "after_header": path,
                              "before": render.redact_config(old or ""), "after": render.redact_config(shown)})
            saved = None
            if not check_mode:
                if old is not None:  # also for an owner/mode change: a rollback needs the old file
                    saved = backup(path)
                    prune_backups(path, keep, keep=saved)
                touched.append({"dest": path, "backup_file": saved, "driver": driver})
                files.write_atomic(path, new, *owner)
            else:
                touched.append({"dest": path, "backup_file": saved, "driver": driver})
    except (OSError, IOError) as exc:
        failed = files.restore(touched)
        raise WriteError("writing %s failed (%s); %s" % (
            path, getattr(exc, "strerror", None) or exc, "the files written before it were put back" if not failed
            else "could NOT put back: %s" % ", ".join(failed)))
    return touched, diffs


PEERS = "vicireg-sip-peers.conf"


def without(text, names):
    """text without the marked blocks of these carriers."""
    kept, skip = [], False
    for line in text.splitlines(True):
        m = render.BEGIN.match(line.rstrip("\n"))
        if m and m.group(1) in names:
            skip = True
        if not skip:
            kept.append(line)
        if skip and render.END.match(line.rstrip("\n")):
            skip = False
    return "".join(kept)


def refresh_sip_peers(rx, conf_dir, names, timeout=10.0):
    """chan_sip keeps a reconfigured peer's last qualify result: take these peers out of the toolkit's
    peers file for one `sip reload` (until chan_sip forgets them), then put the file back as it was.
    The reload that follows brings them back as new objects. True when chan_sip dropped them all."""
    path = os.path.join(conf_dir, PEERS)
    original = files.read(path)
    names = set(names)
    if not names or original is None:
        return not names
    gone = False
    try:
        files.rewrite(path, without(original, names))
        rx("sip reload")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(re.search(r"Peer \S+ not found", rx("sip show peer %s" % n)) for n in names):
                gone = True
                break
            time.sleep(0.1)
    finally:
        files.rewrite(path, original)
    return gone
