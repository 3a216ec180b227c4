# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Filters of the status audit (roles/vicireg_carriers/tasks/status.yml): thin wrappers over
module_utils/vicireg_metrics."""
from __future__ import absolute_import, division, print_function

import os
import sys

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_metrics as metrics  # noqa: E402


def vicireg_prometheus_text(rows, host, now=None, asterisk_up=True, drift=False):
    """The dialer's node_exporter textfile: one series per carrier and metric, HELP/TYPE, escaped labels."""
    return metrics.textfile(str(host), rows or [], now, bool(asterisk_up), bool(drift))


def vicireg_status_notes(hosts, hostvars):
    """One line per dialer note of the audit: drift, VICIdial conflicts, a run holding the lock."""
    lines = []
    for host in hosts or []:
        audit = hostvars[host].get("vicireg_carriers_audit") or {}
        for note in [audit.get("drift"), audit.get("lock_note")] + list(audit.get("conflicts") or []):
            if note:
                lines.append("%s: %s" % (host, note))
    return lines


class FilterModule:
    """The status audit's filters."""

    def filters(self):
        return {"vicireg_prometheus_text": vicireg_prometheus_text, "vicireg_status_notes": vicireg_status_notes}
