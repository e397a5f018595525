#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a pcap of unidirectional IPv4/IPv6 UDP and TCP flows for softflowd to export.

Usage: make-pcap.py OUT.pcap [--flows N] [--seed S] [--ipv6]
Prints one JSON line: {"flows": N, "packets": P, "octets": O} where octets counts IP total
length (what NetFlow/IPFIX octetDeltaCount reports). Every flow has a distinct 5-tuple and
only one direction, so softflowd reports exactly one record per flow.
"""
import json
import random
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                      bytes(src), bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, proto, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64, bytes(src),
                       bytes(dst)) + payload


def main():
    args = sys.argv[1:]
    out = args[0]
    flows = int(args[args.index("--flows") + 1]) if "--flows" in args else 50
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    v6 = "--ipv6" in args
    rnd = random.Random(seed)
    pkts = []
    t0 = 1700000000.0
    total_p = total_o = 0
    for f in range(flows):
        proto = 6 if f % 3 == 0 else 17
        sport, dport = 1024 + f, 53 if proto == 17 else 443
        n = rnd.randint(1, 20)
        for i in range(n):
            size = rnd.randint(0, 1000)
            if proto == 17:
                l4 = struct.pack("!HHHH", sport, dport, 8 + size, 0) + b"\xab" * size
            else:
                flags = 0x02 if i == 0 else 0x10
                l4 = struct.pack("!HHIIBBHHH", sport, dport, i, 0, 5 << 4, flags, 65535, 0, 0) \
                    + b"\xcd" * size
            if v6:
                src = [0x20, 0x01, 0x0D, 0xB8] + [0] * 10 + [f >> 8, f & 255]
                dst = [0x20, 0x01, 0x0D, 0xB8, 0, 1] + [0] * 8 + [0, 1]
                ip = ipv6(src, dst, proto, l4)
                ether = b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd"
                total_o += len(ip)
            else:
                ip = ipv4([10, 1, f >> 8, f & 255], [10, 2, 0, 1], proto, l4)
                ether = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
                total_o += len(ip)
            total_p += 1
            pkts.append((t0 + f * 0.01 + i * 0.001, ether + ip))
    pkts.sort(key=lambda p: p[0])
    with open(out, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in pkts:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            fh.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    print(json.dumps({"flows": flows, "packets": total_p, "octets": total_o}))


if __name__ == "__main__":
    main()
