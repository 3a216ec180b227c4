# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Batches of a rollout: a canary first, then batches of a fixed size or a share of the dialers.

Only dialers with something to change are batched (a no-op dialer is judged at once, in parallel);
the order is the play's, so an inventory decides which dialer is the canary.
"""
from __future__ import absolute_import, division, print_function

import math
import re

__metaclass__ = type

_PERCENT = re.compile(r"^\s*(\d{1,3})\s*%\s*$")


def batch_size(value, total):
    """Dialers per batch: an int >= 1, or a share 'N%' (1-100) of the dialers to change, at least 1."""
    if isinstance(value, bool):
        raise ValueError("vicireg_carriers_batch must be a number of dialers or a share like '25%%', got %r" % value)
    if isinstance(value, int):
        if value < 1:
            raise ValueError("vicireg_carriers_batch must be at least 1 dialer, got %d" % value)
        return value
    match = _PERCENT.match(str(value)) if isinstance(value, str) else None
    if isinstance(value, str) and not match and value.strip().isdigit():
        return batch_size(int(value), total)
    if not match or not 1 <= int(match.group(1)) <= 100:
        raise ValueError("vicireg_carriers_batch must be a number of dialers or a share from '1%%' to '100%%', "
                         "got %r" % (value,))
    return max(1, int(math.ceil(total * int(match.group(1)) / 100.0)))


def batches(hosts, canary=1, batch="25%"):
    """[[host, ...], ...]: the first `canary` dialers alone, then the rest in batches."""
    if isinstance(canary, str) and canary.strip().isdigit():
        canary = int(canary)  # -e vicireg_carriers_canary=0 gives a string
    if isinstance(canary, bool) or not isinstance(canary, int) or canary < 0:
        raise ValueError("vicireg_carriers_canary must be a number of dialers (0 for none), got %r" % (canary,))
    hosts = [str(h) for h in hosts]
    size = batch_size(batch, len(hosts))
    out = [hosts[:canary]] if canary and hosts else []
    rest = hosts[canary:]
    out += [rest[i:i + size] for i in range(0, len(rest), size)]
    return out
