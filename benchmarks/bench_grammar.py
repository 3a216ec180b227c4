#!/usr/bin/env python3
"""Throughput of parse+validate over 100,000 mixed registration strings (valid and invalid).

Prints strings per second for the grammar, and for a baseline in the same run (one permissive
regular expression of the documented form, which validates nothing), plus their ratio.
Usage: python benchmarks/bench_grammar.py [--count N] [--repeat R]
"""
import argparse
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))

from vicireg_grammar import RegistrationError, parse_registration  # noqa: E402

BASELINE = re.compile(r"(?:register\s*=>\s*)?(?:([^?]*)\?)?(?:(\w+)://)?([^@:]+)(?:@([^:]+))?"
                      r"(?::([^:@]*)(?::([^@]*))?)?@([^:/~]+)(?::(\d+))?(?:/([^~]+))?(?:~(\d+))?")


def corpus(count, seed=7):
    rnd = random.Random(seed)
    shapes = [
        "register => {u}:{s}@{h}:5060",
        "{u}:{s}@{h}",
        "register => {u}:{s}@{h}:5060/{u}",
        "tcp://{u}:{s}@{h}:5080/{u}~300",
        "{u}@{h}:{s}:auth{u}@{h}",
        "peer{u}?tls://{u}@{h}:5062:{s}:a{u}@{h}:5071/{u}~600",
        "register => {u}:{s}@{h}:99999",        # invalid port
        "sip:{u}:{s}@{h}",                       # pasted scheme
        "{u}:{s}@{h}:5060;transport=tcp",        # URI parameter
        "register => register => {u}:{s}@{h}",   # doubled prefix
        "{u} :{s}@{h}",                          # whitespace
        "{u}:{s}@{h}~abc",                       # bad expiry
    ]
    hosts = ["sip.carrier{0}.example", "10.{0}.2.3", "edge{0}.voip.example.net"]
    out = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        out.append(shape.format(u=str(rnd.randint(1000, 99999999)),
                                s="".join(rnd.choice("abcdefXYZ0123456789!%") for _ in range(12)),
                                h=rnd.choice(hosts).format(rnd.randint(1, 250))))
    return out


def run(func, strings):
    start = time.perf_counter()
    for value in strings:
        func(value)
    return len(strings) / (time.perf_counter() - start)


def grammar(value):
    try:
        parse_registration(value)
    except RegistrationError:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    strings = corpus(args.count)
    invalid = sum(1 for s in strings if not _ok(s))
    best_grammar = max(run(grammar, strings) for _ in range(args.repeat))
    best_base = max(run(BASELINE.fullmatch, strings) for _ in range(args.repeat))
    print("strings: %d (%d invalid), best of %d runs, one core" % (len(strings), invalid, args.repeat))
    print("grammar parse+validate: %10.0f strings/s" % best_grammar)
    print("baseline one regex:     %10.0f strings/s" % best_base)
    print("ratio grammar/baseline: %10.2f" % (best_grammar / best_base))
    print("target 100000 strings/s: %s" % ("met" if best_grammar >= 100000 else "NOT met"))


def _ok(value):
    try:
        parse_registration(value)
        return True
    except RegistrationError:
        return False


if __name__ == "__main__":
    main()
