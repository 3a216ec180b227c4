# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Load every filter and test plugin once, in the controller process, before the first task.

Ansible forks a worker for each task on each dialer, and each worker would otherwise load and import
every filter and test plugin file again on its first template (ours import the whole grammar): measured
with py-spy on a 20-dialer run, about a tenth of the controller's CPU. Loaded here, every fork inherits
them. It prints nothing and changes no result.
"""
from __future__ import absolute_import, division, print_function

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader

__metaclass__ = type

DOCUMENTATION = r"""
---
name: vicireg_preload
type: aggregate
short_description: Load the filter and test plugins once before the first fork (speed only)
description:
  - Loads every filter and test plugin in the controller process when the playbook starts, so that
    the per-task worker processes inherit them instead of each loading them again.
requirements:
  - enable it in ansible.cfg (callbacks_enabled = vicireg_preload)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "vicireg_preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        # get() of any name fills the loader's cache of every non-collection plugin (and finds nothing).
        for loader in (filter_loader, test_loader):
            loader.get("vicireg_preload_nothing")
