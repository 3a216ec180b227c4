# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""What each carrier setting may hold, by kind: every field that reaches a config file is checked here.

Allow-lists where Asterisk has one (DTMF modes, insecure, codecs, option keys per driver); for the
rest a strict character class.  Nothing with a line break, a control character, ';', '[' or a
leading '#' can pass, so no carrier field can add a section, a key or an #include/#exec line.
Each check returns None when the value is fine, else a message that never repeats a secret.
"""
from __future__ import absolute_import, division, print_function

import ipaddress
import re

__metaclass__ = type

# Dialplan context names (AST_MAX_CONTEXT is 80 with the terminator).
CONTEXT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,78}")
# Codec names as Asterisk's format registry knows them (core codecs and the common modules).
CODECS = frozenset("""
    ulaw alaw gsm g722 g723 g726 g726aal2 g729 ilbc lpc10 speex speex16 speex32 opus silk silk8 silk12
    silk16 silk24 slin slin12 slin16 slin24 slin32 slin44 slin48 slin96 slin192 adpcm siren7 siren14
    g719 testlaw h261 h263 h263p h264 h265 mpeg4 vp8 vp9 red t140 t140red jpeg png codec2
""".split())
DTMF_MODES = {
    "sip": frozenset(["rfc2833", "info", "shortinfo", "inband", "auto"]),
    "pjsip": frozenset(["rfc2833", "rfc4733", "info", "inband", "auto", "auto_info"]),
    "iax2": frozenset(["rfc2833"]),  # IAX2 carries DTMF in its own frames: the setting is not rendered
}
INSECURE = frozenset(["port", "invite", "port,invite", "invite,port", "no"])
# Yes/no as inventories and VICIdial write it (Active=Y, qualify=N).
YES_NO = {"y": True, "yes": True, "true": True, "on": True, "1": True,
          "n": False, "no": False, "false": False, "off": False, "0": False}
TIMEOUT_MAX = 600
# The broadest source network an IP-authenticated carrier may be matched by.
MATCH_MIN_PREFIX = {4: 16, 6: 32}

# Extra account settings per driver: keys the toolkit does not set itself and that only tune the
# account entry.  Secret-bearing ones are masked in every output (SECRET_OPTIONS).
OPTION_KEYS = {
    "sip": frozenset("""
        nat directmedia canreinvite directrtpsetup trustrpid sendrpid rpid_update progressinband
        promiscredir useclientcode rtptimeout rtpholdtimeout rtpkeepalive t38pt_udptl t38pt_usertpsource
        callerid callingpres outboundproxy auth md5secret remotesecret amaflags
        accountcode language call-limit busylevel maxcallbitrate session-timers session-expires
        session-minse session-refresher qualifyfreq timert1 timerb encryption avpf force_avp icesupport
        videosupport textsupport allowsubscribe subscribecontext mohsuggest mohinterpret usereqphone
        defaultip permit deny acl contactpermit contactdeny contactacl maxforwards allowtransfer
        ignoresdpversion sdpsession sdpowner g726nonstandard preferred_codec_only autoframing
        callgroup pickupgroup namedcallgroup namedpickupgroup parkinglot tonezone vmexten
        supportpath rfc2833compensate buggymwi constantssrc keepalive dtlsenable
    """.split()),
    "pjsip": frozenset("""
        rtp_symmetric force_rport rewrite_contact trust_id_inbound trust_id_outbound
        send_pai send_rpid send_diversion callerid callerid_privacy callerid_tag language 100rel
        timers timers_min_se timers_sess_expires ice_support media_encryption rtp_timeout
        rtp_timeout_hold rtp_keepalive t38_udptl t38_udptl_ec t38_udptl_maxdatagram t38_udptl_nat
        fax_detect fax_detect_timeout allow_transfer moh_suggest accountcode tone_zone media_address
        bind_rtp_to_media_address rtp_ipv6 device_state_busy_at call_group pickup_group
        named_call_group named_pickup_group set_var identify_by inband_progress use_ptime
        use_avpf force_avp media_use_received_transport user_eq_phone moh_passthrough
        preferred_codec_only allow_subscribe sdp_owner sdp_session tos_audio cos_audio
        max_audio_streams record_on_feature record_off_feature rpid_immediate suppress_q850_reason_headers
        send_connected_line ignore_183_without_sdp
    """.split()),
    "iax2": frozenset("""
        trunk encryption forceencryption transfer jitterbuffer forcejitterbuffer callerid language
        accountcode amaflags mohinterpret mohsuggest permit deny acl sendani inkeys dbsecret
        trunktimestamps parkinglot maxcallnumbers
    """.split()),
}
SECRET_OPTIONS = frozenset(["secret", "md5secret", "remotesecret", "auth", "password", "md5_cred", "dbsecret",
                            "outkey", "inkeys"])
# Plain text an option value may hold: printable ASCII without ';' (comment) or '[' (section).
_OPTION_VALUE = re.compile(r"[\x20-\x3a\x3c-\x5a\x5c-\x7e]{1,255}")
_TEXT_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DIGITS = re.compile(r"[0-9]+")
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _show(value, limit=40):
    """A value for a message: repr, cut, so that a 1 MB string does not become a 1 MB message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d characters)" % len(str(value))


def context(value):
    if not isinstance(value, str) or not CONTEXT.fullmatch(value):
        return ("context %s is not a dialplan context name (letters, digits, '_', '.', '+', '-'; "
                "at most 79 characters)" % _show(value))
    return None


def codecs(value):
    if not isinstance(value, list) or not value:
        return "codecs must be a non-empty list of codec names"
    for item in value:
        if not isinstance(item, str) or item.lower() not in CODECS:
            return "codec %s is not a codec Asterisk knows (%s ...)" % (_show(item), ", ".join(sorted(CODECS)[:6]))
    if len(set(c.lower() for c in value)) != len(value):
        return "codecs lists a codec twice"
    return None


def dtmfmode(value, driver):
    allowed = DTMF_MODES[driver]
    if not isinstance(value, str) or value.lower() not in allowed:
        return "dtmfmode %s is not one of %s" % (_show(value), ", ".join(sorted(allowed)))
    return None


def insecure(value):
    if not isinstance(value, str) or value.lower() not in INSECURE:
        return "insecure %s is not one of %s" % (_show(value), ", ".join(sorted(INSECURE)))
    return None


def qualify(value):
    """(normalised value: True, False or milliseconds, problem)."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int) and 1 <= value <= 60000:
        return value, None
    if isinstance(value, str) and value.strip().lower() in YES_NO:
        return YES_NO[value.strip().lower()], None
    if isinstance(value, str) and _DIGITS.fullmatch(value) and 1 <= int(value) <= 60000:
        return int(value), None
    return None, ("qualify %s is not yes/no (Y/N, true/false) or a number of milliseconds (1-60000)"
                  % _show(value))


def active(value):
    """(True/False, problem): VICIdial's Active=Y/N, or a bool."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in YES_NO:
        return YES_NO[value.strip().lower()], None
    return None, "active %s is not yes/no (Y/N, true/false)" % _show(value)


def timeout(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= TIMEOUT_MAX:
        return "timeout must be a number of seconds from 1 to %d, got %s" % (TIMEOUT_MAX, _show(value))
    return None


def port(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return "port must be a number from 1 to 65535, got %s" % _show(value)
    return None


_USER = re.compile(r"[A-Za-z0-9_.!~*'&=+$,%-]{1,64}")


def user(value):
    if not isinstance(value, str) or not _USER.fullmatch(value):
        return "fromuser %s is not a SIP user name" % _show(value)
    return None


def text(value, what, limit=255):
    """Free text that is never rendered (description): one line of at most limit characters."""
    if not isinstance(value, str):
        return "%s must be a string" % what
    if len(value) > limit:
        return "%s has %d characters (at most %d)" % (what, len(value), limit)
    if _TEXT_BAD.search(value):
        return "%s holds a line break or a control character" % what
    return None


def host(value):
    """An IPv4/IPv6 address or a DNS name (no port, no user, no scheme): None when fine."""
    if not isinstance(value, str) or not value:
        return "host must be a non-empty string"
    if "@" in value:  # user:secret@host: not shown, it may hold a secret
        return "host holds '@': a host is an address or a DNS name, never credentials"
    shown = _show(value)
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" in bare:
        return "host %s holds an IPv6 zone ('%%'): give the carrier's global address or a name" % _show(value)
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        address = None
    if address is not None:
        if address.is_unspecified or address.is_multicast:
            return "host %s is not an address a carrier can have" % shown
        return None
    if ":" in value or "/" in value:
        return ("host %s is not an address or a DNS name (give the port as 'port', several source "
                "addresses as 'match')" % shown)
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "host %s is not a valid DNS name or IP address" % shown
    if all(label.isdigit() for label in labels):
        return "host %s looks like an IPv4 address but is not one" % shown
    return None


def match(value):
    """(list of normalised networks or DNS names, problem) for an IP-auth carrier's extra source addresses."""
    if not isinstance(value, list) or not value:
        return None, "match must be a non-empty list of addresses, networks (CIDR) or DNS names"
    out = []
    for item in value:
        if not isinstance(item, str):
            return None, "match entries must be strings, got %s" % type(item).__name__
        if "%" in item:
            return None, "match entry %s holds an IPv6 zone ('%%')" % _show(item)
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            # A DNS name: PJSIP resolves it (SRV targets too) when it loads the identify.
            if "/" not in item and ":" not in item and host(item) is None:
                out.append(item.rstrip(".").lower())
                continue
            return None, "match entry %s is not an address, a network or a DNS name" % _show(item)
        if net.prefixlen < MATCH_MIN_PREFIX[net.version]:
            return None, ("match entry %s is broader than /%d: every source in it would be taken for "
                          "the carrier" % (_show(item), MATCH_MIN_PREFIX[net.version]))
        out.append(str(net) if net.num_addresses > 1 else str(net.network_address))
    return out, None


def options(value, driver, reserved):
    """Problems of an 'options' dict for a driver; reserved: keys the toolkit sets itself."""
    if not isinstance(value, dict):
        return ["options must be a mapping of setting to value"]
    problems = []
    allowed = OPTION_KEYS[driver]
    for key in sorted(value, key=str):
        val = value[key]
        if not isinstance(key, str) or key.lower() not in allowed or key.lower() in reserved:
            if isinstance(key, str) and key.lower() in reserved:
                problems.append("option %s is set by the toolkit itself (use the carrier's own setting)"
                                % _show(key))
            else:
                problems.append("option %s is not a %s account setting this toolkit allows"
                                % (_show(key), driver))
            continue
        if isinstance(val, bool):
            continue
        if isinstance(val, int):
            continue
        secret = key.lower() in SECRET_OPTIONS
        if not isinstance(val, str) or not _OPTION_VALUE.fullmatch(val) or val != val.strip():
            problems.append("option %s: the value %s (one line of printable ASCII without ';' or '[', "
                            "no surrounding blanks, at most 255 characters)"
                            % (key, "is not acceptable" if secret else "%s is not acceptable" % _show(val)))
        elif val.startswith("#") or "=>" in val:
            problems.append("option %s: a value may not start with '#' or hold '=>'" % key)
    return problems


def option_value(value):
    """How an accepted option value is written (booleans as yes/no)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
