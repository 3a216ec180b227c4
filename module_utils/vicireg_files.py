# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Config file writes that cannot be subverted, shared by the modules that write on a dialer.

A new file is created exclusively (O_EXCL through mkstemp: a symlink planted in the directory is
never followed), gets its final owner and mode before it holds a byte, is synced, then renamed
over the target in the same directory.
"""
from __future__ import absolute_import, division, print_function

import os
import tempfile

__metaclass__ = type


def read(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def write_atomic(path, text, uid, gid, mode):
    """Replace path by text (see the module docstring)."""
    fd, tmp = tempfile.mkstemp(prefix=".vicireg-", dir=os.path.dirname(path))
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def rewrite(path, text):
    """Replace path by text, keeping its owner and mode."""
    info = os.stat(path)
    write_atomic(path, text, info.st_uid, info.st_gid, info.st_mode & 0o7777)


def restore(items):
    """Put back each item's backup_file over its dest (a dest that had none is removed).

    Returns the paths that could not be put back, with the reason."""
    failed = []
    for item in items:
        try:
            if item.get("backup_file"):
                info = os.stat(item["backup_file"])
                write_atomic(item["dest"], read(item["backup_file"]), info.st_uid, info.st_gid,
                             info.st_mode & 0o7777)
            elif os.path.lexists(item["dest"]):
                os.remove(item["dest"])
        except (IOError, OSError) as exc:
            failed.append("%s (%s)" % (item["dest"], exc.strerror or exc))
    return failed
