# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The run's report: rows per host and carrier, a text table, JUnit XML. Pure Python."""
from __future__ import absolute_import, division, print_function

from xml.sax.saxutils import escape, quoteattr

__metaclass__ = type

FIELDS = ("host", "carrier", "protocol", "state", "verdict", "cause", "seconds")


def report_rows(results_by_host):
    """{host: [module carrier results]} -> sorted rows with the report's fields."""
    rows = []
    for host in sorted(results_by_host):
        for item in results_by_host[host] or []:
            rows.append({"host": host, "carrier": item.get("name"), "protocol": item.get("driver"),
                         "state": item.get("state"), "verdict": item.get("verdict"),
                         "cause": item.get("cause"), "seconds": item.get("seconds")})
    return rows


def report_table(rows):
    """A plain text table: host, carrier, protocol, state, seconds (and the cause when failed)."""
    header = ("HOST", "CARRIER", "PROTOCOL", "STATE", "SECONDS", "VERDICT / CAUSE")
    body = []
    for r in rows:
        secs = "" if r["seconds"] is None else "%.2f" % r["seconds"]
        verdict = r["verdict"] or ""
        if r["cause"]:
            verdict = "%s: %s" % (verdict, r["cause"])
        body.append((str(r["host"]), str(r["carrier"]), str(r["protocol"]), str(r["state"]), secs, verdict))
    widths = [max(len(x[i]) for x in [header] + body) for i in range(5)]
    lines = []
    for row in [header] + body:
        lines.append("  ".join(row[i].ljust(widths[i]) for i in range(5)) + "  " + row[5])
    if not body:
        lines.append("(no carriers judged)")
    return [line.rstrip() for line in lines]


def report_junit(rows, suite="vicireg registrations"):
    """JUnit XML: one test case per host and carrier, failures carry the cause."""
    failures = sum(1 for r in rows if r["verdict"] == "failed")
    total = sum(float(r["seconds"] or 0) for r in rows)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<testsuites><testsuite name=%s tests="%d" failures="%d" time="%.3f">'
           % (quoteattr(suite), len(rows), failures, total)]
    for r in rows:
        case = '<testcase classname=%s name=%s time="%.3f"' % (
            quoteattr(str(r["host"])), quoteattr("%s (%s)" % (r["carrier"], r["protocol"])), float(r["seconds"] or 0))
        if r["verdict"] == "failed":
            out.append("%s><failure message=%s>%s</failure></testcase>" % (
                case, quoteattr(str(r["cause"])), escape("state: %s" % r["state"])))
        else:
            out.append("%s/>" % case)
    out.append("</testsuite></testsuites>")
    return "\n".join(out) + "\n"
