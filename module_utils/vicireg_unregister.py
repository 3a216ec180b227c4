# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Take a chan_sip registration's contact off the carrier's registrar (REGISTER, Expires: 0).

chan_sip never un-REGISTERs: a register line removed or changed on reload leaves its old contact at
the carrier until it expires, and inbound calls ring a contact nobody answers for (or a second one).
Run on the dialer before the reload: ask the registrar for the account's bindings (a REGISTER without
Contact, RFC 3261 10.2.3), and remove only this dialer's chan_sip contact with the old user part,
authenticated with the old secret (digest, MD5, qop=auth when asked).  Other dialers' contacts of a
shared account, and the PJSIP ones, are left alone.  UDP and TCP; standard library only.
"""
from __future__ import absolute_import, division, print_function

import hashlib
import os
import random
import re
import socket

try:
    from ansible.module_utils import vicireg_dns as dns
except ImportError:
    import vicireg_dns as dns

__metaclass__ = type

_CONTACT = re.compile(r"<(sips?:[^>]+)>([^,]*)")
_URI = re.compile(r"sips?:(?:([^@;>]+)@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?")
_AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


class SipError(Exception):
    """The registrar could not be asked or did not agree (the message holds no secret)."""


def destination(reg):
    """(address, port) chan_sip sends to: SRV first for a name (as srvlookup does), else its address."""
    host = reg["host"].strip("[]")
    if dns.is_address(host):
        return host, reg["port"]
    if reg.get("transport", "udp") in dns.SRV_PREFIX:
        try:
            targets = sorted(dns.query(dns.SRV_PREFIX[reg["transport"]] + host, dns.TYPE_SRV))
        except dns.DnsError:
            targets = []
        for _, _, port, target in targets:
            found = dns.addresses(target)
            if found:
                return found[0], port
    found = dns.addresses(host)
    if not found:
        raise SipError("carrier host name %s does not resolve" % reg["host"])
    return found[0], reg["port"]


def _digest(challenge, method, uri, user, secret, cnonce=None):
    params = dict((k.lower(), a if a else b) for k, a, b in _AUTH_PARAM.findall(challenge))
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    ha1 = hashlib.md5(("%s:%s:%s" % (user, realm, secret)).encode("utf-8")).hexdigest()
    ha2 = hashlib.md5(("%s:%s" % (method, uri)).encode("utf-8")).hexdigest()
    out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5' % (user, realm, nonce, uri)
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce = cnonce or "%016x" % random.getrandbits(64)
        response = hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, ha2)).encode()).hexdigest()
        out += ', qop=auth, nc=00000001, cnonce="%s"' % cnonce
    else:
        response = hashlib.md5(("%s:%s:%s" % (ha1, nonce, ha2)).encode()).hexdigest()
    out += ', response="%s"' % response
    if params.get("opaque"):
        out += ', opaque="%s"' % params["opaque"]
    return out


class _Dialog:
    def __init__(self, reg, target, timeout):
        self.reg = reg
        self.target = target
        self.timeout = timeout
        self.tcp = reg.get("transport") == "tcp"
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM if self.tcp else socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect(target)
        self.local = self.sock.getsockname()
        self.callid = "%s@vicireg" % os.urandom(8).hex()
        self.tag = os.urandom(4).hex()
        self.cseq = random.randint(1000, 9000)
        host = reg["host"] if not (":" in reg["host"] and not reg["host"].startswith("[")) else "[%s]" % reg["host"]
        self.aor = "sip:%s@%s" % (reg["username"], reg.get("domain") or host)
        port = ":%d" % reg["port"] if reg.get("port_given") and reg["port"] != 5060 else ""
        self.ruri = "sip:%s" % (reg["domain"] if reg.get("domain") else host + port)

    def close(self):
        self.sock.close()

    def _send(self, contacts, auth):
        self.cseq += 1
        via_host = "[%s]" % self.local[0] if ":" in self.local[0] else self.local[0]
        lines = ["REGISTER %s SIP/2.0" % self.ruri,
                 "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport" % ("TCP" if self.tcp else "UDP", via_host,
                                                                   self.local[1], os.urandom(6).hex()),
                 "Max-Forwards: 70", "From: <%s>;tag=%s" % (self.aor, self.tag), "To: <%s>" % self.aor,
                 "Call-ID: %s" % self.callid, "CSeq: %d REGISTER" % self.cseq, "User-Agent: vicireg"]
        lines += ["Contact: <%s>;expires=0" % c for c in contacts]
        if contacts:
            lines.append("Expires: 0")
        if auth:
            lines.append("Authorization: %s" % auth)
        data = ("\r\n".join(lines + ["Content-Length: 0", "", ""])).encode("utf-8")
        self.sock.sendall(data) if self.tcp else self.sock.send(data)
        return self._receive()

    def _receive(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65535)
            except socket.timeout:
                raise SipError("no answer from the registrar at %s:%d" % self.target)
            if not chunk:
                raise SipError("the registrar at %s:%d closed the connection" % self.target)
            buf += chunk
            if not self.tcp or b"\r\n\r\n" in buf:
                head = buf.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
                status = re.match(r"SIP/2\.0 (\d{3})", head)
                if status and status.group(1)[0] != "1":
                    return int(status.group(1)), head
                buf = b"" if not self.tcp else buf.split(b"\r\n\r\n", 1)[1]

    def request(self, contacts, user, secret):
        """The final response (code, head) of a REGISTER, answering one digest challenge."""
        code, head = self._send(contacts, None)
        if code in (401, 407):
            challenge = re.search(r"^(?:WWW|Proxy)-Authenticate:\s*(.*)$", head, re.MULTILINE | re.IGNORECASE)
            if not challenge:
                raise SipError("the registrar asked for credentials without a challenge")
            code, head = self._send(contacts, _digest(challenge.group(1), "REGISTER", self.ruri, user, secret))
        return code, head


def bindings(head):
    """Contact URIs of a 200 answer to REGISTER, with their user, host and port."""
    out = []
    for line in re.findall(r"^(?:Contact|m):\s*(.*)$", head, re.MULTILINE | re.IGNORECASE):
        for uri, _params in _CONTACT.findall(line):
            m = _URI.match(uri)
            if m:
                out.append({"uri": uri, "user": m.group(1), "host": m.group(2).strip("[]"),
                            "port": int(m.group(3) or 5060)})
    return out


def release(reg, contact_user, local_port, local_hosts=(), timeout=2.0):
    """Remove this dialer's contact 'contact_user@<local address>:local_port' of a registration.

    reg: the parsed old registration (with its secret).  local_hosts: addresses chan_sip binds (an
    empty or wildcard bind: the address this host reaches the registrar from).  Returns the number of
    contacts removed; raises SipError (no secret in it) when the registrar cannot be asked.
    """
    target = destination(reg)
    dialog = _Dialog(reg, target, timeout)
    try:
        ours = set(h for h in local_hosts if h and h not in ("0.0.0.0", "::", "[::]")) or {dialog.local[0]}
        user = reg.get("authuser") or reg["username"]
        code, head = dialog.request([], user, reg.get("secret") or "")
        if code != 200:
            raise SipError("the registrar answered %d to a query of %s's bindings" % (code, reg["username"]))
        mine = [b["uri"] for b in bindings(head)
                if b["user"] == contact_user and b["host"] in ours and b["port"] == local_port]
        if not mine:
            return 0
        code, head = dialog.request(mine, user, reg.get("secret") or "")
        if code != 200:
            raise SipError("the registrar answered %d to removing %s's old contact" % (code, reg["username"]))
        return len(mine)
    except (OSError, socket.error) as exc:
        raise SipError("cannot reach the registrar at %s:%d (%s)" % (target[0], target[1],
                                                                   getattr(exc, "strerror", None) or exc))
    finally:
        dialog.close()
