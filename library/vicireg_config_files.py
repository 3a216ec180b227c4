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
  - One module call instead of a copy and a lineinfile per file; a run that changes nothing costs
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_files as files
from ansible.module_utils import vicireg_write as write


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
        failed = [] if module.check_mode else files.restore(p["restore"])
        if failed:
            module.fail_json(msg="could not put back: %s" % ", ".join(failed), touched=p["restore"])
        module.exit_json(changed=bool(p["restore"]), touched=p["restore"])
    try:
        planned = write.plan(p["conf_dir"], p["files"], p["secrets"], p["includes"], p["owner"], p["group"], p["mode"])
        touched, diffs = write.apply(planned, module.backup_local, p["backups_keep"], module.check_mode, module._diff)
    except write.WriteError as exc:
        module.fail_json(msg=str(exc), touched=exc.touched)
    module.exit_json(changed=bool(touched), touched=touched, diff=diffs)


if __name__ == "__main__":
    main()
