#!/usr/bin/env python3
"""labctl.py - the vicireg loopback test lab: build, start, stop, inspect (see lab/README.md).

    python3 lab/labctl.py up [--hosts N] | down | status [--json] | build [--force] | accounts
    python3 lab/labctl.py ssh HOST [CMD..]
    python3 lab/labctl.py dns add|del|list|reset|query ...
    python3 lab/labctl.py registrar contacts [USER] | registers [--since-line N] | flush USER

The code is the package lab/labkit/ (one module per concern); this file is its entry point, and,
imported (`import labctl` with lab/ on sys.path, as tests and benchmarks do), it offers the
package's names as the single-file labctl.py did (paths, process/mount helpers, state ...).
Standard library only: it runs as root with the system python3 before any venv exists.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from labkit.config import *  # noqa: E402,F401,F403
from labkit.procs import *  # noqa: E402,F401,F403
from labkit.machine import *  # noqa: E402,F401,F403
from labkit.roots import *  # noqa: E402,F401,F403
from labkit.carriers import *  # noqa: E402,F401,F403
from labkit.hosts import *  # noqa: E402,F401,F403
from labkit.state import *  # noqa: E402,F401,F403
from labkit.lifecycle import *  # noqa: E402,F401,F403
from labkit import dns, dnswire, registrar  # noqa: E402,F401
from labkit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
