# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Reading a dialer's Asterisk: the CLI (several reads at once), the drivers loaded, the carriers' states,
and the snapshot of what the toolkit's files hold. Used by vicireg_registration_status on the dialer."""
from __future__ import absolute_import, division, print_function

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils import vicireg_status as status
from ansible.module_utils import vicireg_conffile as conffile
from ansible.module_utils import vicireg_dns as dns
from ansible.module_utils import vicireg_render as render

__metaclass__ = type

MODULES = {"sip": "chan_sip.so", "iax2": "chan_iax2.so", "pjsip": "res_pjsip.so"}
# The files each driver reads (and what they include): PJSIP objects also come from the config wizard.
MAIN_FILES = {"sip": ["sip.conf"], "iax2": ["iax.conf"], "pjsip": ["pjsip.conf", "pjsip_wizard.conf"]}


class Asterisk:
    def __init__(self, module, binary):
        self.module = module
        self.binary = binary
        self.calls = 0
        self.cache = {}

    def prefetch(self, commands):
        """Run these CLI commands at once (each `asterisk -rx` is its own console connection); the next
        rx() of each returns its output. A read costs one round trip instead of one per command."""
        todo = [c for c in commands if c not in self.cache]
        if len(todo) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
            for command, result in zip(todo, pool.map(self._run, todo)):
                self.cache[command] = result

    def _run(self, command):
        return self.module.run_command([self.binary, "-rx", command])

    def rx(self, command, driver="core"):
        self.calls += 1
        rc, out, err = self.cache.pop(command) if command in self.cache else self._run(command)
        text = (out or "") + (err or "")
        # Every command read here prints at least a header. On a busy machine `asterisk -rx` can exit
        # before its output arrives (seen in the lab with 20 dialers on 2 cores): ask again, alone.
        for _ in range(2):
            if rc != 0 or text.strip():
                break
            time.sleep(0.05)
            rc, out, err = self._run(command)
            text = (out or "") + (err or "")
        if rc != 0 and not text.strip():
            raise status.AsteriskUnavailable(status.cause("cli_failed", command=command, rc=rc))
        status.check_cli(text, command, driver)
        return text


def loaded_drivers(ast):
    ast.prefetch(["module show like %s" % name for name in MODULES.values()] + ["core show version"])
    out = {}
    for driver, name in MODULES.items():
        text = ast.rx("module show like %s" % name)
        out[driver] = re.search(r"^%s\s.*\bRunning\b" % re.escape(name), text, re.MULTILINE) is not None
    return out


_RESOLVED = {}


def addresses(host, port):
    """The 'ip:port' forms Asterisk shows for a carrier's host, resolved as Asterisk resolves it
    (the system resolver, on the dialer); an empty set when the name does not resolve."""
    key = (host, port)
    if key not in _RESOLVED:
        _RESOLVED[key] = set(("[%s]:%s" if ":" in a else "%s:%s") % (a, port) for a in dns.addresses(host))
    return _RESOLVED[key]


def read_states(ast, targets):
    """{name: (state, regtime)} for every target, with one CLI call per driver in use."""
    states = {}
    by_driver = {}
    for t in targets:
        by_driver.setdefault(t["driver"], []).append(t)
    ast.prefetch(_state_commands(by_driver))
    for driver, items in by_driver.items():
        regs = [t for t in items if t["registers"]]
        peers = [t for t in items if not t["registers"]]
        if regs and driver == "sip":
            rows = status.parse_sip_registry(ast.rx("sip show registry", driver))
            for t in regs:
                states[t["name"]] = _from_row(status.find_row(rows, t, 12, with_domain=True), with_time=True)
        if regs and driver == "iax2":
            rows = status.parse_iax2_registry(ast.rx("iax2 show registry", driver))
            for t in regs:
                states[t["name"]] = _from_row(status.find_row(rows, t, 10, addresses=addresses(t["host"], t["port"])))
        if regs and driver == "pjsip":
            rows = {r["name"]: r for r in status.parse_pjsip_registrations(ast.rx("pjsip show registrations", driver))}
            for t in regs:
                row = rows.get(t.get("registration") or t["name"] + "-reg")
                states[t["name"]] = (row["state"], None) if row else (None, None)
        for t in peers:
            if driver in ("sip", "iax2"):
                text = ast.rx("%s show peer %s" % ("sip" if driver == "sip" else "iax2", t["name"]), driver)
                # chan_sip shows the address it resolved the host to, never the name.
                where = addresses(t["host"], t["port"]) if driver == "sip" else None
                states[t["name"]] = (status.parse_sip_peer(text, where), None)
        if peers and driver == "pjsip":
            text = ast.rx("pjsip show contacts", driver)
            for t in peers:
                host = "[%s]" % t["host"] if ":" in t["host"] and not t["host"].startswith("[") else t["host"]
                # The aor's contact as rendered: a port only when one other than 5060 was given.
                port = ":%s" % t["port"] if t.get("port_given", True) and t["port"] != 5060 else ""
                states[t["name"]] = (status.parse_pjsip_contacts(text, t["name"], "sip:%s%s" % (host, port)), None)
    return states


def _by_driver(targets):
    out = {}
    for t in targets:
        out.setdefault(t["driver"], []).append(t)
    return out


def _state_commands(by_driver):
    """The CLI reads read_states needs, so that they run at once."""
    out = []
    for driver, items in by_driver.items():
        if any(t["registers"] for t in items):
            out.append({"sip": "sip show registry", "iax2": "iax2 show registry",
                        "pjsip": "pjsip show registrations"}[driver])
        peers = [t for t in items if not t["registers"]]
        if peers and driver == "pjsip":
            out.append("pjsip show contacts")
        elif driver in ("sip", "iax2"):
            out += ["%s show peer %s" % (driver, t["name"]) for t in peers]
    return out


def _from_row(row, with_time=False):
    if row is None:
        return (None, None)
    if isinstance(row, list):
        return ("ambiguous", None)
    return (row["state"], row.get("regtime") if with_time else None)


def snapshot(conf_dir, ast):
    """Drivers loaded, digests of the toolkit's files, and the carriers in them with their state now."""
    drivers = loaded_drivers(ast)
    texts = {}
    for filename in render.FILES:
        path = os.path.join(conf_dir, filename)
        if os.path.exists(path):
            with open(path) as handle:
                texts[filename] = handle.read()
    previous = [t for t in render.current_targets(texts) if drivers.get(t["driver"])]
    ast.prefetch((["sip show settings"] if drivers.get("sip") else [])
                 + (["pjsip show transports"] if drivers.get("pjsip") else [])
                 + _state_commands(_by_driver(previous)))
    states = read_states(ast, previous) if previous else {}
    for t in previous:
        t["state"] = states.get(t["name"], (None, None))[0]
        t["registered"] = bool(t["state"]) and (t["state"] in status.OK_STATES or t["state"].startswith(status.QUALIFY_OK))
    sip_binds = status.parse_sip_binds(ast.rx("sip show settings", "sip")) if drivers.get("sip") else []
    pjsip_transports = (status.parse_pjsip_transports(ast.rx("pjsip show transports", "pjsip"))
                        if drivers.get("pjsip") else [])
    sections = {driver: sorted(set(n for main in mains for n in existing_sections(conf_dir, main)))
                for driver, mains in MAIN_FILES.items() if drivers.get(driver)}
    version = ast.rx("core show version").strip()
    major = re.search(r"Asterisk (?:certified/)?(\d+)", version)
    return dict(changed=False, running=True, drivers=drivers, version=version,
                major=int(major.group(1)) if major else None,
                sip_binds=sip_binds, pjsip_transports=pjsip_transports, sections=sections,
                digests={name: render.file_digests(text) for name, text in texts.items()},
                previous=previous)


def existing_sections(conf_dir, main, depth=4):
    """Section names the dialer's own files define: the main file and what it includes (VICIdial's
    *-vicidial.conf among them), the toolkit's own vicireg-* files excepted."""
    names = []
    todo = [(main, 0)]
    seen = set()
    while todo:
        name, level = todo.pop(0)
        path = os.path.join(conf_dir, name)
        if name in seen or os.path.basename(name) in render.FILES or not os.path.isfile(path):
            continue
        seen.add(name)
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError, UnicodeDecodeError):
            continue
        names += conffile.section_names(text)
        if level < depth:
            todo += [(inc, level + 1) for inc in conffile.includes(text) if "*" not in inc]
    return sorted(set(names))
