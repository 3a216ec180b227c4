#!/usr/bin/env python3
"""Benchmark the vicireg loopback lab (lab/labctl.py): start-up time and memory.

    sudo python3 benchmarks/bench_lab.py                   # from-cache time + memory, N=2 and N=10
    sudo python3 benchmarks/bench_lab.py --from-nothing    # also: build everything from nothing (slow)
    sudo python3 benchmarks/bench_lab.py --sizes 2,10,20 --json reports/bench_lab.json

For every size N it runs `labctl.py down`, then times `labctl.py up --hosts N` (from the cached
roots), times a second `up` on the running lab (must be a no-op), and sums the memory of every lab
process (Kamailio + everything chrooted into a lab host): RSS and PSS (PSS splits shared pages
between the processes that share them, so it is the honest "how much RAM does the lab cost").
Every figure is also printed as a ratio to the N=2 from-cache baseline of the same run.
With --from-nothing, /var/cache/vicireg-lab and /var/lib/vicireg-lab are removed first and the
2-dialer build-from-nothing time is measured too.

At the end the lab is left as it was found (up with the same number of dialers, or down).
Budgets (from the lab's brief): 2 dialers from nothing < 180 s, from cache < 30 s, memory < 1 GiB.
Stdlib only; needs root (like labctl.py).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABCTL = REPO / "lab" / "labctl.py"
sys.path.insert(0, str(LABCTL.parent))
import labctl  # noqa: E402  (the lab's own helpers: process discovery, paths)

BUDGET_FROM_NOTHING = 180.0
BUDGET_FROM_CACHE = 30.0
BUDGET_MEMORY = 1024 ** 3


def labctl_run(*args: str) -> float:
    t = time.monotonic()
    cp = subprocess.run([sys.executable, str(LABCTL), *args], capture_output=True, text=True)
    dt = time.monotonic() - t
    if cp.returncode != 0:
        sys.stderr.write(cp.stdout + cp.stderr)
        raise SystemExit(f"bench: `labctl.py {' '.join(args)}` failed (rc {cp.returncode})")
    return dt


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def lab_memory() -> dict:
    """RSS and PSS (bytes) of every lab process, in total and per program."""
    per: dict[str, dict] = {}
    total_rss = total_pss = 0
    for pid in labctl.lab_process_pids():
        comm = labctl.proc_comm(pid) or "?"
        rss = _kb(f"/proc/{pid}/status", "VmRSS") * 1024
        pss = _kb(f"/proc/{pid}/smaps_rollup", "Pss") * 1024
        e = per.setdefault(comm, {"processes": 0, "rss": 0, "pss": 0})
        e["processes"] += 1
        e["rss"] += rss
        e["pss"] += pss
        total_rss += rss
        total_pss += pss
    return {"rss": total_rss, "pss": total_pss, "per_program": per,
            "processes": sum(e["processes"] for e in per.values())}


def settle_memory(seconds: float = 3.0) -> dict:
    """Let Asterisk finish its post-boot work, then take the larger of two samples."""
    time.sleep(seconds)
    a = lab_memory()
    time.sleep(1.0)
    b = lab_memory()
    return a if a["pss"] >= b["pss"] else b


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:7.1f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-nothing", action="store_true",
                    help="remove the cached roots and lab state first and time a 2-dialer build (slow)")
    ap.add_argument("--sizes", default="2,10", help="comma-separated dialer counts (default 2,10)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (it starts and stops the lab)")
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()} | {2})
    before = labctl.load_state()
    restore_n = before.get("hosts_requested") if before.get("status") == "up" else None

    results: dict = {"sizes": {}, "from_nothing": None}
    if args.from_nothing:
        labctl_run("down")
        for d in (labctl.CACHE_DIR, labctl.STATE_DIR):
            if labctl.mounts_under([str(d)]):
                raise SystemExit(f"bench: something is still mounted under {d}")
            shutil.rmtree(d, ignore_errors=True)
        print("bench: building the 2-dialer lab from nothing (debootstrap x2 + Asterisk) ...", flush=True)
        t = labctl_run("up", "--hosts", "2")
        results["from_nothing"] = {"hosts": 2, "seconds": round(t, 1)}
        print(f"bench: from nothing: {t:.1f}s", flush=True)

    for n in sizes:
        labctl_run("down")
        t_cache = labctl_run("up", "--hosts", str(n))
        mem = settle_memory()
        t_again = labctl_run("up", "--hosts", str(n))
        results["sizes"][n] = {"from_cache_s": round(t_cache, 2), "up_again_s": round(t_again, 2),
                               "rss": mem["rss"], "pss": mem["pss"], "processes": mem["processes"],
                               "per_program": mem["per_program"]}
        print(f"bench: N={n}: from cache {t_cache:.1f}s, up again {t_again:.2f}s, "
              f"PSS {mib(mem['pss']).strip()}, RSS {mib(mem['rss']).strip()}", flush=True)

    base = results["sizes"][2]
    print()
    print("vicireg lab benchmark (ratios are to the N=2 from-cache baseline of this run)")
    if results["from_nothing"]:
        fn = results["from_nothing"]["seconds"]
        print(f"  build from nothing, N=2 : {fn:7.1f} s   x{fn / base['from_cache_s']:.1f} of from-cache   "
              f"budget < {BUDGET_FROM_NOTHING:.0f} s: {'OK' if fn < BUDGET_FROM_NOTHING else 'OVER'}")
    print(f"  {'N':>3}  {'from cache':>10} {'ratio':>6}  {'up again':>8}  {'PSS':>11} {'ratio':>6}  "
          f"{'RSS':>11} {'ratio':>6}  {'procs':>5}  budgets")
    for n, r in results["sizes"].items():
        ok_t = r["from_cache_s"] < BUDGET_FROM_CACHE
        ok_m = r["pss"] < BUDGET_MEMORY
        print(f"  {n:>3}  {r['from_cache_s']:>9.1f}s {r['from_cache_s'] / base['from_cache_s']:>6.2f}  "
              f"{r['up_again_s']:>7.2f}s  {mib(r['pss'])} {r['pss'] / base['pss']:>6.2f}  "
              f"{mib(r['rss'])} {r['rss'] / base['rss']:>6.2f}  {r['processes']:>5}  "
              f"time {'OK' if ok_t else 'OVER'}, memory {'OK' if ok_m else 'OVER'}")
    print("  per program at the largest N: " + ", ".join(
        f"{k} x{v['processes']} PSS {mib(v['pss']).strip()}"
        for k, v in sorted(results["sizes"][max(sizes)]["per_program"].items())))

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")

    # leave the lab as we found it
    if restore_n:
        labctl_run("up", "--hosts", str(restore_n))
        print(f"\nbench: lab restored: up with {restore_n} dialer(s)")
    else:
        labctl_run("down")
        print("\nbench: lab restored: down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
