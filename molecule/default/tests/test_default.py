"""Molecule verify: real state on the lab dialers after site.yml (testinfra over Ansible/SSH)."""
import os
import re

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("dialers")

CONF = "/etc/asterisk"


def _rx(host, command):
    return host.check_output("asterisk -rx %s" % repr(command))


def _major(host):
    return int(re.search(r"Asterisk (\d+)", _rx(host, "core show version")).group(1))


def test_toolkit_files_are_private_to_asterisk(host):
    names = ["vicireg-pjsip.conf", "vicireg-iax-register.conf", "vicireg-iax-peers.conf"]
    if _major(host) < 21:
        names += ["vicireg-sip-register.conf", "vicireg-sip-peers.conf"]
    for name in names:
        f = host.file("%s/%s" % (CONF, name))
        assert f.exists, name
        assert f.user == "root" and f.group == "asterisk", name
        assert f.mode == 0o640, name
        assert "Managed by Ansible (vicireg)" in f.content_string


def test_register_lines_are_read_in_general(host):
    for main, include in (("iax.conf", "vicireg-iax-register.conf"), ("sip.conf", "vicireg-sip-register.conf")):
        if main == "sip.conf" and _major(host) >= 21:
            continue
        lines = host.file("%s/%s" % (CONF, main)).content_string.splitlines()
        at = lines.index("#tryinclude %s" % include)
        sections = [line for line in lines[:at] if line.startswith("[")]
        assert sections and sections[-1] == "[general]"


def test_vicidial_files_are_untouched(host):
    names = ["iax-vicidial.conf", "pjsip-vicidial.conf"] + (["sip-vicidial.conf"] if _major(host) < 21 else [])
    for name in names:
        f = host.file("%s/%s" % (CONF, name))
        assert f.exists, name
        assert "Managed by Ansible (vicireg)" not in f.content_string
        assert "vicireg:begin" not in f.content_string


def test_every_carrier_is_registered(host):
    iax = _rx(host, "iax2 show registry")
    assert re.search(r"\bd\d+iax\b.*\bRegistered\b", iax), iax
    pj = _rx(host, "pjsip show registrations")
    assert re.search(r"labpjsip-reg/\S+\s+\S+\s+Registered", pj), pj
    assert re.search(r"labauth-reg/\S+\s+\S+\s+Registered", pj) or _major(host) < 21, pj
    if _major(host) < 21:
        sip = _rx(host, "sip show registry")
        assert len(re.findall(r"\bRegistered\b", sip)) >= 3, sip  # labsip, lablong, labauth
    else:
        assert re.search(r"lablong-reg/\S+\s+\S+\s+Registered", pj), pj


def test_ip_auth_carrier_is_reachable(host):
    if _major(host) < 21:
        out = _rx(host, "sip show peer labipauth")
        assert re.search(r"Status\s*:\s*OK", out), out
    else:
        out = _rx(host, "pjsip show contacts")
        assert re.search(r"labipauth/\S+\s+\S+\s+(Avail|NonQual)", out), out
