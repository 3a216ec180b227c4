# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The status audit's Prometheus text file (node_exporter's textfile collector), one per dialer.

Pure Python: the controller renders it from the audit's rows (filter vicireg_prometheus_text) and writes
it atomically on the dialer. Text exposition format 0.0.4: HELP/TYPE lines, label values escaped.
"""
from __future__ import absolute_import, division, print_function

import math
import time

__metaclass__ = type

FILENAME = "vicireg_carriers.prom"
GOOD = ("registered", "reachable")

_CARRIER = [
    ("vicireg_carrier_registered",
     "1 when the carrier is registered (or, IP-auth, reachable) as the status audit found it, else 0."),
    ("vicireg_carrier_seconds_since_registration",
     "Seconds since the carrier last registered (chan_sip only: PJSIP and IAX2 do not show it)."),
    ("vicireg_carrier_conflict",
     "1 when VICIdial's own generated files register the same user at the same host (one contact, two registrations)."),
]
_DIALER = [
    ("vicireg_status_asterisk_up", "1 when the dialer's Asterisk answered the status audit."),
    ("vicireg_status_drift", "1 when the dialer's files differ from what the inventory renders (run site.yml)."),
    ("vicireg_status_last_run_timestamp_seconds", "When the status audit last ran (Unix time)."),
]


def escape_label(value):
    """A label value as the exposition format writes it: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(pairs):
    return "{%s}" % ",".join('%s="%s"' % (k, escape_label("" if v is None else v)) for k, v in pairs)


def _value(number):
    return repr(float(number)) if isinstance(number, float) and number != int(number) else str(int(number))


def textfile(host, rows, now=None, asterisk_up=True, drift=False):
    """The file's text for one dialer. rows: the audit's carrier results (name, driver, state, verdict,
    and optionally since_registration, conflicts). A series whose value is unknown is left out."""
    now = time.time() if now is None else float(now)
    series = dict((name, []) for name, _ in _CARRIER + _DIALER)
    for r in rows or []:
        labels = _labels([("host", host), ("carrier", r.get("name")), ("protocol", r.get("driver")),
                          ("state", r.get("state")), ("verdict", r.get("verdict"))])
        series["vicireg_carrier_registered"].append((labels, 1 if r.get("verdict") in GOOD else 0))
        since = r.get("since_registration")
        if isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since):
            series["vicireg_carrier_seconds_since_registration"].append((labels, r["since_registration"]))
        series["vicireg_carrier_conflict"].append((labels, 1 if r.get("conflicts") else 0))
    dialer = _labels([("host", host)])
    series["vicireg_status_asterisk_up"].append((dialer, 1 if asterisk_up else 0))
    series["vicireg_status_drift"].append((dialer, 1 if drift else 0))
    series["vicireg_status_last_run_timestamp_seconds"].append((dialer, round(now, 3)))
    lines = []
    for name, text in _CARRIER + _DIALER:
        if not series[name]:
            continue
        lines += ["# HELP %s %s" % (name, _help(text)), "# TYPE %s gauge" % name]
        lines += ["%s%s %s" % (name, labels, _value(v)) for labels, v in series[name]]
    return "\n".join(lines) + "\n"
