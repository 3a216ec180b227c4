# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Write the run's report on the controller: registrations.json and registrations.junit.xml.

An action plugin, not a module: the report is the controller's file, and writing it in-process
spares two module round trips (~1 s each through a local connection) on every run.
"""
from __future__ import absolute_import, division, print_function

import json
import os
import sys
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_report as report  # noqa: E402

DOCUMENTATION = r"""
---
module: vicireg_report
short_description: Write registrations.json and registrations.junit.xml on the controller
description:
  - Takes the report rows (host, carrier, protocol, state, verdict, cause, seconds) and writes them
    as JSON and as JUnit XML into I(dir), atomically. Also in check mode: it touches no dialer.
options:
  rows:
    description: Rows from the C(vicireg_report_rows) filter.
    type: list
    elements: dict
    required: true
  dir:
    description: Directory for the two files (created when missing).
    type: path
    required: true
"""


def _write(path, text):
    fd, tmp = tempfile.mkstemp(prefix=".vicireg-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        rows, folder = args.get("rows"), args.get("dir")
        if not isinstance(rows, list) or not folder:
            raise AnsibleActionFail("vicireg_report needs rows (a list) and dir")
        rows = [{k: row.get(k) for k in report.FIELDS} for row in rows]
        try:
            os.makedirs(folder, exist_ok=True)
            paths = [os.path.join(folder, "registrations.json"), os.path.join(folder, "registrations.junit.xml")]
            _write(paths[0], json.dumps(rows, indent=2, sort_keys=True) + "\n")
            _write(paths[1], report.report_junit(rows))
        except OSError as exc:
            raise AnsibleActionFail("cannot write the report in %s: %s" % (folder, exc))
        result.update(changed=False, files=paths, rows=len(rows))
        return result
