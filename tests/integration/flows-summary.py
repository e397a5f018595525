#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarizes flow records for the mediator tests, as one JSON object.

  flows-summary.py ipfixdump FILE...   records read by `ipfixDump -d` (libfixbuf-tools)
  flows-summary.py json FILE...        JSON lines (the mediator's json output)

Prints {"records", "octets", "packets", "flows", "by_proto": {proto: records},
"src": [...distinct sources...] (json only, capped), "check": {...}} where "check" counts
records that fail the --where predicate (a Python expression over the record dict, e.g.
"r['proto'] == 6"), so a test can say "every written record matches the filter".
"""
import json
import re
import subprocess
import sys


def ipfixdump_records(path):
    out = subprocess.run(["ipfixDump", "-d", "--in", path], capture_output=True, text=True,
                         check=True).stdout
    rec = None
    names = {"octetDeltaCount": "octets", "packetDeltaCount": "packets",
             "deltaFlowCount": "flows", "protocolIdentifier": "proto",
             "sourceTransportPort": "src_port", "destinationTransportPort": "dst_port",
             "sourceIPv4Address": "src_addr", "destinationIPv4Address": "dst_addr",
             "sourceIPv6Address": "src_addr", "destinationIPv6Address": "dst_addr"}
    for line in out.splitlines():
        if line.startswith("--- data record"):
            if rec is not None:
                yield rec
            rec = {}
            continue
        m = re.match(r"\s*\((\d+)\)\s+(\w+) : (.*)$", line)
        if m and rec is not None and m.group(2) in names:
            v = m.group(3).strip()
            rec[names[m.group(2)]] = int(v) if v.isdigit() else v
    if rec is not None:
        yield rec


def json_records(path):
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def main():
    args = sys.argv[1:]
    where = None
    if "--where" in args:
        i = args.index("--where")
        where = args[i + 1]
        del args[i:i + 2]
    kind, files = args[0], args[1:]
    gen = ipfixdump_records if kind == "ipfixdump" else json_records
    s = {"records": 0, "octets": 0, "packets": 0, "flows": 0, "by_proto": {}, "failed": 0,
         "distinct_src": 0, "distinct_dst": 0, "src_first_octets": []}
    srcs, dsts = set(), set()
    for path in files:
        for r in gen(path):
            s["records"] += 1
            s["octets"] += int(r.get("octets", 0))
            s["packets"] += int(r.get("packets", 0))
            s["flows"] += int(r.get("flows", 1) or 1)
            p = str(r.get("proto", ""))
            s["by_proto"][p] = s["by_proto"].get(p, 0) + 1
            if len(srcs) < 2000000:
                srcs.add(r.get("src_addr"))
                dsts.add(r.get("dst_addr"))
            if where and not eval(where, {}, {"r": r}):
                s["failed"] += 1
    s["distinct_src"], s["distinct_dst"] = len(srcs), len(dsts)
    s["dst_first_octets"] = sorted({str(d).split(".")[0] for d in dsts if d})[:10]
    s["src_suffixes"] = sorted({".".join(str(a).split(".")[2:]) for a in srcs if a})[:10]
    print(json.dumps(s))


main()
