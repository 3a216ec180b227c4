#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vicireg_config_files
short_description: Write the toolkit's Asterisk include files and include them, in one step
description:
  - Writes each file whose content differs, atomically (a temporary file created exclusively, with
    the final owner, group and mode before any content, renamed over the file in the same directory),
    keeping the previous version as a backup.
  - Everything is checked before the first write; when a write fails part way, the files already
    written are put back, so the dialer keeps its last working config.
  - Makes sure each include line is in its main file, right after C([general]) or at the end.
  - Returns the files it changed with their backups and drivers, for reload and rollback; never
    their content (it holds secrets). With C(--diff) the diff shows every secret masked.
  - With I(restore), puts those backups back instead (a file that had none is removed).
  - One module call instead of a copy and a lineinfile per file: a run that changes nothing costs
    one SSH round trip here.
options:
  conf_dir:
    description: Asterisk's configuration directory.
    type: path
    default: /etc/asterisk
  files:
    description:
      - File name (in I(conf_dir)) to content, with each secret replaced by a token of I(secrets)
        (so that neither the arguments nor C(--diff) show a secret).
    type: dict
    default: {}
  secrets:
    description: Token to secret (as written in the file), put in place of each token on the dialer.
    type: dict
    default: {}
  includes:
    description: Include lines, each a dict with C(file), C(line), C(where) (C(general) or C(end)), C(driver).
    type: list
    elements: dict
    default: []
  owner:
    description: Owner of the written files.
    type: str
    default: root
  group:
    description: Group of the written files.
    type: str
    default: asterisk
  mode:
    description: Mode of the written files.
    type: str
    default: "0640"
  backups_keep:
    description: Previous versions kept per file (the oldest beyond this are removed).
    type: int
    default: 5
  restore:
    description: Files to put back, as returned in C(touched) by an earlier call.
    type: list
    elements: dict
author: vicireg project
"""

EXAMPLES = r"""
- name: Write the toolkit's files
  vicireg_config_files:
    files: "{{ rendered.templates }}"
    secrets: "{{ rendered.secrets }}"
    includes: "{{ ['sip', 'pjsip'] | vicireg_includes }}"
"""

RETURN = r"""
touched:
  description: Changed files with C(dest), C(backup_file) (null when the file is new) and C(driver).
  returned: always
  type: list
  elements: dict
"""

import grp
import os
import pwd
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_files as files
from ansible.module_utils import vicireg_render as render

MAIN_DRIVER = {"sip.conf": "sip", "iax.conf": "iax2", "pjsip.conf": "pjsip", "pjsip_wizard.conf": "pjsip"}
GENERAL = re.compile(r"^\[general\]\s*(;.*)?$")


_read = files.read
_write = files.write_atomic
_restore = files.restore


def _prune_backups(path, count, keep):
    """Ansible names backups PATH.PID.YYYY-MM-DD@HH:MM:SS~; keep the newest `count` of them."""
    folder, base = os.path.split(path)
    pattern = re.compile(re.escape(base) + r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$")
    found = sorted((os.path.join(folder, n) for n in os.listdir(folder) if pattern.match(n)),
                   key=lambda f: (os.path.getmtime(f), f), reverse=True)
    for old in found[max(count, 1):]:
        if old != keep:
            os.remove(old)


def _with_include(text, line, where):
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            conf_dir=dict(type="path", default="/etc/asterisk"),
            files=dict(type="dict", default={}),
            secrets=dict(type="dict", default={}, no_log=True),
            includes=dict(type="list", elements="dict", default=[]),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="asterisk"),
            mode=dict(type="str", default="0640"),
            restore=dict(type="list", elements="dict"),
            backups_keep=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["restore"] is not None:
        failed = [] if module.check_mode else _restore(p["restore"])
        if failed:
            module.fail_json(msg="could not put back: %s" % ", ".join(failed), touched=p["restore"])
        module.exit_json(changed=bool(p["restore"]), touched=p["restore"])
    try:
        uid = pwd.getpwnam(p["owner"]).pw_uid
        gid = grp.getgrnam(p["group"]).gr_gid
    except KeyError as exc:
        module.fail_json(msg="unknown owner or group on the dialer: %s" % exc)
    mode = int(p["mode"], 8)
    secrets = {str(k): str(v) for k, v in p["secrets"].items()}

    # Plan every write first: nothing is written unless every file and include can be.
    plan = []
    for name, template in sorted(p["files"].items()):
        if name not in render.FILES:
            module.fail_json(msg="not a file of this toolkit: %s" % name)
        path = os.path.join(p["conf_dir"], name)
        plan.append((path, render.fill_template(template, secrets), template, render.FILES[name], (uid, gid, mode)))
    pending = {}
    created = set()
    for inc in p["includes"]:
        path = os.path.join(p["conf_dir"], inc["file"])
        text = pending.get(path, _read(path))
        if text is None and inc["file"] in render.CREATE_MAIN:
            text = "; Created by Ansible (vicireg) to include the toolkit's file.\n"
            created.add(path)
        if text is None:
            module.fail_json(msg="%s does not exist: cannot include %s; nothing was changed" % (path, inc["line"]))
        new = _with_include(text, inc["line"], inc["where"])
        if new is None:
            module.fail_json(msg="%s has no [general] section for '%s'; nothing was changed" % (path, inc["line"]))
        pending[path] = new
    for path, new in pending.items():
        if new != _read(path):
            driver = MAIN_DRIVER.get(os.path.basename(path))
            plan.append((path, new, new, driver, (uid, gid, mode) if path in created else None))

    touched, diffs = [], []
    try:
        for path, new, shown, driver, owner in plan:
            old = _read(path)
            info = os.stat(path) if old is not None else None
            if owner is None:  # a main config file keeps its own owner and mode
                owner = (info.st_uid, info.st_gid, info.st_mode & 0o7777)
            same_meta = info is not None and (info.st_uid, info.st_gid, info.st_mode & 0o7777) == owner
            if old == new and same_meta:
                continue
            if module._diff and old != new:
                # Before: the file as it is, secrets masked; after: the template (tokens), masked too.
                diffs.append({"before_header": path, "after_header": path,
                              "before": render.redact_config(old or ""), "after": render.redact_config(shown)})
            backup = None
            if not module.check_mode:
                if old is not None:  # also for an owner/mode change: a rollback needs the old file
                    backup = module.backup_local(path)
                    _prune_backups(path, p["backups_keep"], keep=backup)
                touched.append({"dest": path, "backup_file": backup, "driver": driver})
                _write(path, new, *owner)
            else:
                touched.append({"dest": path, "backup_file": backup, "driver": driver})
    except (OSError, IOError) as exc:
        failed = _restore(touched)
        module.fail_json(msg="writing %s failed (%s); %s" % (
            path, exc.strerror or exc, "the files written before it were put back" if not failed
            else "could NOT put back: %s" % ", ".join(failed)), touched=[])
    module.exit_json(changed=bool(touched), touched=touched, diff=diffs)


if __name__ == "__main__":
    main()
