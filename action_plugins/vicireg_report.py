# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Write the run's report on the controller: registrations.json and registrations.junit.xml.

An action plugin, not a module: the report is the controller's file, and writing it in-process
spares two module round trips on every run.  Called by the role on the first dialer of each batch
(run_once, no connection): at the start of a run it lists every dialer of the play as not reached
yet, so a report never outlives the run that wrote it; later calls put in the verdicts.
"""
from __future__ import absolute_import, division, print_function

import os
import sys

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_lock as lock  # noqa: E402
import vicireg_report as report  # noqa: E402

DOCUMENTATION = r"""
---
module: vicireg_report
short_description: Write registrations.json and registrations.junit.xml on the controller
description:
  - Merges the verdict rows of the dialers judged now into this run's report and writes it as JSON
    and JUnit XML into I(dir), atomically. Also in check mode (it touches no dialer).
  - Every host of I(hosts) gets at least one row; a dialer without verdicts yet is listed as not
    reached, with I(pending_cause). A report left by another run is replaced, never merged.
options:
  hosts:
    description: Every dialer of the run (the play's hosts).
    type: list
    elements: str
    required: true
  rows:
    description: Rows from the C(vicireg_report_rows) filter for the dialers in I(judged).
    type: list
    elements: dict
    default: []
  judged:
    description: Dialers whose rows are given now (their earlier rows in this run are replaced).
    type: list
    elements: str
    default: []
  pending_cause:
    description: Cause written for a dialer not judged yet.
    type: str
  dir:
    description: Directory for the files (created when missing).
    type: path
    required: true
"""


def _run_id():
    """This ansible-playbook run (the id the dialers' locks name)."""
    return lock.controller_run()["run"]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        folder, hosts = args.get("dir"), args.get("hosts")
        rows, judged = args.get("rows") or [], args.get("judged") or []
        if not folder or not isinstance(hosts, list) or not isinstance(rows, list) or not isinstance(judged, list):
            raise AnsibleActionFail("vicireg_report needs dir, hosts (a list), rows and judged (lists)")
        pending = args.get("pending_cause") or "not reached: the run ended before this dialer was judged"
        try:
            os.makedirs(folder, exist_ok=True)
            merged = report.merge(report.load(folder, _run_id()), [str(h) for h in hosts],
                                  [str(h) for h in judged], rows, pending)
            paths = report.write(folder, _run_id(), merged)
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail("cannot write the report in %s: %s" % (folder, exc))
        result.update(changed=False, files=paths, rows=merged, table=report.report_table(merged))
        return result
