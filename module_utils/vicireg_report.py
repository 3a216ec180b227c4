# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The run's report: rows per host and carrier, merged over a run, a text table, JUnit XML. Pure Python."""
from __future__ import absolute_import, division, print_function

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET

__metaclass__ = type

FIELDS = ("host", "carrier", "protocol", "state", "verdict", "cause", "seconds")
JSON_NAME, JUNIT_NAME, RUN_NAME = "registrations.json", "registrations.junit.xml", ".registrations.run"


def report_rows(results_by_host):
    """{host: [module carrier results]} -> sorted rows with the report's fields."""
    rows = []
    for host in sorted(results_by_host):
        for item in results_by_host[host] or []:
            rows.append({"host": host, "carrier": item.get("name"), "protocol": item.get("driver"),
                         "state": item.get("state"), "verdict": item.get("verdict"),
                         "cause": item.get("cause"), "seconds": item.get("seconds")})
    return rows


def load(folder, run_id):
    """The rows this run wrote so far ([] when the report on disk is another run's, or absent)."""
    try:
        with open(os.path.join(folder, RUN_NAME)) as handle:
            if handle.read().strip() != run_id:
                return []
        with open(os.path.join(folder, JSON_NAME)) as handle:
            rows = json.load(handle)
    except (IOError, OSError, ValueError):
        return []
    return rows if isinstance(rows, list) else []


def merge(existing, hosts, judged, rows, pending_cause):
    """Rows of every host: new rows for the judged hosts, this run's earlier rows for the others,
    and a 'not reached' row for a host that has none yet."""
    judged = set(judged)
    by_host = {}
    for row in existing:
        # A 'not reached' row is rewritten with the cause known now.
        if row.get("host") not in judged and row.get("state") != "not reached":
            by_host.setdefault(row.get("host"), []).append(row)
    for host in judged:
        by_host[host] = []
    for row in rows:
        by_host.setdefault(row["host"], []).append({k: row.get(k) for k in FIELDS})
    for host in judged:
        if not by_host[host]:
            by_host[host] = [{"host": host, "carrier": None, "protocol": None, "state": "no active carrier",
                              "verdict": "none", "cause": None, "seconds": None}]
    for host in hosts:
        if not by_host.get(host):
            by_host[host] = [{"host": host, "carrier": None, "protocol": None, "state": "not reached",
                              "verdict": "failed", "cause": pending_cause, "seconds": None}]
    return [row for host in sorted(by_host, key=str) for row in by_host[host]]


def _atomic(path, text):
    fd, tmp = tempfile.mkstemp(prefix=".vicireg-", dir=os.path.dirname(path))
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write(folder, run_id, rows):
    paths = [os.path.join(folder, name) for name in (JSON_NAME, JUNIT_NAME, RUN_NAME)]
    _atomic(paths[0], json.dumps(rows, indent=2, sort_keys=True) + "\n")
    _atomic(paths[1], report_junit(rows))
    _atomic(paths[2], run_id + "\n")
    return paths[:2]


def report_table(rows):
    """A plain text table: host, carrier, protocol, state, seconds (and the cause when failed)."""
    header = ("HOST", "CARRIER", "PROTOCOL", "STATE", "SECONDS", "VERDICT / CAUSE")
    body = []
    for r in rows:
        secs = "" if r["seconds"] is None else "%.2f" % r["seconds"]
        verdict = r["verdict"] or ""
        if r["cause"]:
            verdict = "%s: %s" % (verdict, r["cause"])
        body.append(tuple("-" if x is None else str(x) for x in (r["host"], r["carrier"], r["protocol"], r["state"]))
                    + (secs, verdict))
    widths = [max(len(x[i]) for x in [header] + body) for i in range(5)]
    lines = []
    for row in [header] + body:
        lines.append("  ".join(row[i].ljust(widths[i]) for i in range(5)) + "  " + row[5])
    if not body:
        lines.append("(no carriers judged)")
    return [line.rstrip() for line in lines]


_NOT_XML = re.compile(u"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(value):
    """Text XML 1.0 can carry: characters it cannot (control characters) become '?'."""
    return _NOT_XML.sub("?", str(value))


def report_junit(rows, suite="vicireg registrations"):
    """JUnit XML: one test case per host and carrier, failures carry the cause."""
    failures = sum(1 for r in rows if r["verdict"] == "failed")
    total = sum(float(r["seconds"] or 0) for r in rows)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(rows)), failures=str(failures),
                       time="%.3f" % total)
    for r in rows:
        case = ET.SubElement(ts, "testcase", classname=_xml(r["host"]), time="%.3f" % float(r["seconds"] or 0),
                             name=_xml("%s (%s)" % ("-" if r["carrier"] is None else r["carrier"],
                                                    "-" if r["protocol"] is None else r["protocol"])))
        if r["verdict"] == "failed":
            ET.SubElement(case, "failure", message=_xml(r["cause"])).text = _xml("state: %s" % r["state"])
        elif r["verdict"] == "not reached":  # an earlier batch of the rollout failed: nothing done here
            ET.SubElement(case, "skipped", message=_xml(r["cause"]))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
