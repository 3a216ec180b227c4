# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Ansible filters over the registration-string grammar (docs: the sidecar YAML files beside this).

A thin wrapper: the grammar lives in module_utils/vicireg_grammar.py, shared with the modules and
the CLI.  This file only checks types, converts errors and returns plain Python types.
"""
from __future__ import absolute_import, division, print_function

import os
import sys

from ansible.errors import AnsibleFilterError

__metaclass__ = type

# Controller-side plugins cannot import the project's module_utils as ansible.module_utils.*:
# put that folder on the path and import the one grammar module from there.
_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_grammar as grammar  # noqa: E402


def _call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except grammar.RegistrationError as exc:
        raise AnsibleFilterError(str(exc))


def _text(value, filter_name):
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str):
        raise AnsibleFilterError("%s: input must be a registration string, got %s"
                                 % (filter_name, type(value).__name__))
    return str(value)


def _protocol(protocol, filter_name):
    if not isinstance(protocol, str) or protocol not in grammar.PROTOCOLS:
        raise AnsibleFilterError("%s: protocol must be one of %s, got %r"
                                 % (filter_name, ", ".join(grammar.PROTOCOLS), protocol))
    return str(protocol)


def parse_registration(value, protocol="sip"):
    """Parse a register line as Asterisk reads it; fail on what Asterisk would misread."""
    if not isinstance(value, str):
        raise AnsibleFilterError("parse_registration: input must be a registration string, got %s"
                                 % type(value).__name__)
    return _call(grammar.parse_registration, str(value), _protocol(protocol, "parse_registration"))


def registration_line(value, protocol="sip"):
    """The canonical 'register => ...' line from a string or a parsed dict."""
    return _call(grammar.registration_line, _text(value, "registration_line"),
                 _protocol(protocol, "registration_line"))


def pjsip_registration(value, name, protocol="pjsip"):
    """PJSIP registration and auth sections, as data, for the carrier called name."""
    if not isinstance(name, str):
        raise AnsibleFilterError("pjsip_registration: name must be a string, got %s" % type(name).__name__)
    return _call(grammar.pjsip_registration, _text(value, "pjsip_registration"), str(name),
                 _protocol(protocol, "pjsip_registration"))


def redact_registration(value, protocol="sip"):
    """The string with the secret masked, for logs and reports."""
    if not isinstance(value, str):
        raise AnsibleFilterError("redact_registration: input must be a registration string, got %s"
                                 % type(value).__name__)
    return _call(grammar.redact_registration, str(value), _protocol(protocol, "redact_registration"))


class FilterModule:
    """Registration-string filters for VICIdial / Asterisk carriers."""

    def filters(self):
        return {
            "parse_registration": parse_registration,
            "registration_line": registration_line,
            "pjsip_registration": pjsip_registration,
            "redact_registration": redact_registration,
        }
