#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A strict reader of the Prometheus text exposition format (version 0.0.4), for the tests.

  prom-check.py FILE [NAME ...]

Fails (exit 1, with the line) on anything the format does not allow: a sample whose metric
has no TYPE line before it, a TYPE or HELP line after the metric's samples or given twice, an
invalid metric or label name, bad label syntax or escaping, a value that is not a float, a
duplicate series, a counter whose name does not end in _total (our convention). Then prints
{"series": N, "values": {NAME: value}} for each NAME asked (a series with its labels, as
written, e.g. 'ipfixd_mediator_pipeline_in_total{pipeline="all"}'; null when absent).
"""
import json
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(" + NAME + r")(\{(?:" + LABEL + r")(?:," + LABEL + r")*,?\}|\{\})? (\S+)( -?\d+)?$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def fail(n, line, why):
    sys.exit("prom-check: line %d: %s: %r" % (n, why, line))


def main():
    text = open(sys.argv[1]).read()
    if text and not text.endswith("\n"):
        fail(0, text[-40:], "the exposition must end with a newline")
    types, helps, seen_samples, series = {}, set(), set(), {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                fail(n, line, "bad HELP line")
            if parts[2] in helps:
                fail(n, line, "second HELP for the metric")
            if parts[2] in seen_samples:
                fail(n, line, "HELP after the metric's samples")
            helps.add(parts[2])
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or parts[3] not in TYPES:
                fail(n, line, "bad TYPE line")
            if parts[2] in types:
                fail(n, line, "second TYPE for the metric")
            if parts[2] in seen_samples:
                fail(n, line, "TYPE after the metric's samples")
            if parts[3] == "counter" and not parts[2].endswith("_total"):
                fail(n, line, "counter not named *_total")
            types[parts[2]] = parts[3]
        elif line.startswith("#") or line == "":
            if line == "":
                fail(n, line, "empty line")
            continue
        else:
            m = SAMPLE.match(line)
            if not m:
                fail(n, line, "not a valid sample line")
            name = m.group(1)
            if name not in types:
                fail(n, line, "sample without a TYPE line before it")
            try:
                float(m.group(3))
            except ValueError:
                fail(n, line, "value is not a number")
            key = name + (m.group(2) or "")
            if key in series:
                fail(n, line, "duplicate series")
            series[key] = float(m.group(3))
            seen_samples.add(name)
    vals = {k: series.get(k) for k in sys.argv[2:]}
    print(json.dumps({"series": len(series), "values": vals}))


main()
