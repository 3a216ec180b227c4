# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""What a carrier's name resolves to, as Asterisk on the dialer resolves it: SRV first, then addresses.

chan_sip (srvlookup=yes) and PJSIP (RFC 3263) look up `_sip._udp.NAME` (`_sip._tcp`, `_sips._tcp`)
when the registration writes no port, and use the targets' addresses and ports; otherwise they use the
name's A/AAAA records.  Used on the dialer to say *why* a registration got no answer: "name does not
resolve", "no SRV target resolves", or the SRV targets that were tried.  Pure Python standard library:
one UDP query to the nameservers of /etc/resolv.conf (Asterisk reads the same file), no dependency.
"""
from __future__ import absolute_import, division, print_function

import ipaddress
import random
import socket
import struct

try:
    from ansible.module_utils import vicireg_status as status
except ImportError:  # controller side (tests, tools): loaded next to this file
    import vicireg_status as status

__metaclass__ = type

TYPE_A, TYPE_SRV, TYPE_AAAA, TYPE_NAPTR = 1, 33, 28, 35
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
NAPTR_SERVICE = {"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T"}


class DnsError(Exception):
    """No nameserver answered (the name's fate is unknown, not 'does not resolve')."""


def is_address(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def nameservers(path="/etc/resolv.conf"):
    """[(address, timeout seconds)] from resolv.conf; none listed means the local resolver (glibc)."""
    found, timeout = [], 2.0
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        lines = []
    for line in lines:
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            found.append(parts[1])
        elif parts and parts[0] == "options":
            for opt in parts[1:]:
                if opt.startswith("timeout:") and opt[8:].isdigit():
                    timeout = float(max(1, min(int(opt[8:]), 5)))
    return [(ns, timeout) for ns in (found or ["127.0.0.1"])[:3]]


def _query_packet(qid, name, qtype):
    labels = b"".join(struct.pack("B", len(p)) + p for p in name.rstrip(".").encode("idna").split(b".") if p)
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


def _read_name(data, pos, depth=0):
    """(name, position after it) with compression pointers followed."""
    labels = []
    end = None
    while True:
        if pos >= len(data) or depth > 20:
            raise ValueError("truncated name")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            depth += 1
            continue
        pos += 1
        if length == 0:
            break
        labels.append(data[pos:pos + length].decode("ascii", "replace"))
        pos += length
    return ".".join(labels), (end if end is not None else pos)


def parse_response(data, qid, qtype):
    """(rcode, [records]) of one answer: SRV as (priority, weight, port, target), A/AAAA as address."""
    if len(data) < 12:
        raise ValueError("short answer")
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        raise ValueError("answer to another query")
    pos = 12
    for _ in range(qd):
        pos = _read_name(data, pos)[1] + 4
    records = []
    for _ in range(an):
        pos = _read_name(data, pos)[1]
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        rdata = data[pos:pos + rdlen]
        if rtype == qtype == TYPE_SRV:
            prio, weight, port = struct.unpack(">HHH", rdata[:6])
            records.append((prio, weight, port, _read_name(data, pos + 6)[0]))
        elif rtype == qtype == TYPE_NAPTR:
            order, pref = struct.unpack(">HH", rdata[:4])
            strings, at = [], pos + 4
            for _ in range(3):  # flags, service, regexp: <length><text>
                strings.append(data[at + 1:at + 1 + data[at]].decode("ascii", "replace"))
                at += 1 + data[at]
            records.append((order, pref, strings[0], strings[1], _read_name(data, at)[0]))
        elif rtype == qtype == TYPE_A and rdlen == 4:
            records.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == qtype == TYPE_AAAA and rdlen == 16:
            records.append(socket.inet_ntop(socket.AF_INET6, rdata))
        pos += rdlen
    return flags & 0x000F, records


def query(name, qtype, servers=None):
    """Records of one type for a name ([] for NXDOMAIN or no such record); DnsError when no server answers."""
    for server, timeout in servers or nameservers():
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        qid = random.randint(0, 0xFFFF)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.settimeout(timeout)
            sock.sendto(_query_packet(qid, name, qtype), (server, 53))
            while True:
                data = sock.recv(4096)
                try:
                    rcode, records = parse_response(data, qid, qtype)
                except (ValueError, struct.error, IndexError):
                    continue
                if rcode in (0, 3):  # NOERROR (perhaps no data) or NXDOMAIN
                    return records
                break  # SERVFAIL, REFUSED ...: ask the next server
        except (OSError, socket.timeout):
            continue
        finally:
            sock.close()
    raise DnsError("no nameserver answered")


def addresses(name):
    """The addresses the system resolver gives for a name (hosts file first, as Asterisk's getaddrinfo)."""
    try:
        return sorted(set(i[4][0] for i in socket.getaddrinfo(name.strip("[]"), None, 0, socket.SOCK_DGRAM)))
    except (socket.gaierror, UnicodeError):
        return []


def naptr_srv_name(host, transport):
    """The SRV name a NAPTR record of host sends this transport to (RFC 3263), or None."""
    try:
        found = query(host, TYPE_NAPTR)
    except DnsError:
        return None
    for _, _, flags, service, replacement in sorted(found):
        if flags.lower() == "s" and service.upper() == NAPTR_SERVICE.get(transport) and replacement:
            return replacement
    return None


def resolution_problem(host, port, port_given, transport="udp", srv=True, naptr=False):
    """Why a carrier host cannot be reached by name, or None when it resolves.

    srv: whether the driver looks up SRV records when no port is written (chan_sip's srvlookup,
    always for PJSIP); naptr: whether it reads NAPTR records first (PJSIP, RFC 3263; chan_sip never).
    Returns a cause naming the DNS failure, or a note of the SRV targets tried (prefixed 'srv:'), or None.
    """
    if is_address(host):
        return None
    if srv and not port_given and transport in SRV_PREFIX:
        via = naptr and naptr_srv_name(host, transport)
        name = via or SRV_PREFIX[transport] + host
        try:
            targets = query(name, TYPE_SRV)
        except DnsError:
            targets = None
        if targets:
            targets = sorted(targets)
            usable = ["%s:%d" % (t, p) for _, _, p, t in targets if t and t != "." and addresses(t)]
            if not usable:
                return status.cause("dns_srv_targets", name=name, targets=", ".join(
                    "%s:%d" % (t or ".", p) for _, _, p, t in targets))
            return "srv:" + ", ".join(usable) + (" via the NAPTR record of %s" % host if via else "")
    if addresses(host):
        return None
    if srv and not port_given and transport in SRV_PREFIX:
        return status.cause("dns_no_srv_no_address", host=host, record=SRV_PREFIX[transport] + host)
    return status.cause("dns_no_address", host=host)

