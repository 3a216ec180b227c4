# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Controller side of vicireg_registration_status: names this run as the dialer lock's owner, and
waits (bounded) for a dialer another run holds.

The module on the dialer takes the lock or says who holds it; only the controller can tell that a
holder from this same controller is dead (its process is gone), so it may take that lock over at once
instead of waiting for its lease to run out.  Without `lock` the module runs as is.
"""
from __future__ import absolute_import, division, print_function

import os
import sys
import time

from ansible.plugins.action import ActionBase

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_lock as lock  # noqa: E402

# Seconds between two attempts while another run holds the dialer.
RETRY = 1.0


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        wait = float(args.pop("lock_wait", 0) or 0)
        if args.get("lock") and not isinstance(args["lock"], dict):
            args["lock"] = lock.controller_run((task_vars or {}).get("ansible_play_name"))
        elif not args.get("lock"):
            args.pop("lock", None)
        deadline = time.time() + wait
        waited_for = None
        while True:
            out = self._execute_module(module_name="vicireg_registration_status", module_args=args,
                                       task_vars=task_vars)
            holder = out.get("lock_holder") if out.get("lock_busy") else None
            if holder and lock.dead_here(holder) and args.get("lock_steal") != holder.get("run"):
                args["lock_steal"] = holder["run"]  # its process is gone: take it over now
                continue
            if not holder or time.time() >= deadline:
                break
            waited_for = holder
            time.sleep(min(RETRY, max(0.0, deadline - time.time())))
        if waited_for and not out.get("lock_busy"):
            out["lock_waited_for"] = lock.describe(waited_for)
        if out.get("lock_busy"):
            out["lock_busy_text"] = "another run holds this dialer: %s; waited %ds for it (vicireg_carriers_lock_wait)" \
                % (out.get("lock_holder_text"), wait)
            if args.get("strict"):
                out.update(failed=True, msg=out["lock_busy_text"])
        out["lock_owner"] = args.get("lock")
        result.update(out)
        return result
