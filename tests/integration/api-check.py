#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers for test-api.sh (python3 standard library only).

  api-check.py record OUT -- GEN [GEN ARGS...]
      Listens on 127.0.0.1 (a free port), runs GEN ARGS... 127.0.0.1:PORT, and stores the
      one TCP stream it receives in OUT; prints the generator's JSON summary. The stream is
      then replayed, byte for byte, to the pods and to the ground-truth collector, so both
      decode the very same records (the generator's time stamps come from the clock).
  api-check.py replay FILE BIND HOST:PORT...
      Sends FILE over one TCP connection per destination, from address BIND (the exporter's
      identity), and waits until the collector has read it all (it closes after our EOF).
  api-check.py templates FILE...
      The template sets in recorded streams: {"TID": [[ie, pen, length], ...]}.
  api-check.py sse URL OUT
      An SSE client: every event becomes one JSON line {"event", "data"} in OUT (flushed at
      once); the HTTP status and headers come first as {"status", "headers"}.
  api-check.py check SUITE --api URL [--truth FILE]... [options]
      Runs one group of checks against the API and prints "ok - WHAT" or "not ok - WHAT:
      why" per check (test-api.sh numbers them). Suites: flows, top, timeseries, exporters,
      templates, pods, stream, errors, partial. The truth is the tap's --json output
      (flow_record_to_json() lines); flows are compared as multisets of every field the
      tap prints.
"""
import collections
import http.client
import ipaddress
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.parse

# flow_record_to_json()'s members: what identifies a flow in both the tap and the API.
FLOW_KEYS = ("start_ms", "end_ms", "src_addr", "dst_addr", "src_port", "dst_port", "proto",
             "tcp_flags", "tos", "octets", "packets", "ingress_if", "egress_if", "src_as",
             "dst_as", "vlan", "direction", "end_reason", "sampling", "exporter", "odid",
             "template_id", "flows")

# ---- traffic ----------------------------------------------------------------------------


def cmd_record(argv):
    out = argv[0]
    gen = argv[argv.index("--") + 1:]
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(30)
    port = ls.getsockname()[1]
    p = subprocess.Popen(gen + ["127.0.0.1:%d" % port], stdout=subprocess.PIPE, text=True)
    conn, _ = ls.accept()
    conn.settimeout(30)
    with open(out, "wb") as f:
        while True:
            b = conn.recv(1 << 16)
            if not b:
                break
            f.write(b)
    conn.close()
    ls.close()
    summary, _ = p.communicate(timeout=30)
    if p.returncode != 0:
        sys.exit("generator failed")
    sys.stdout.write(summary)


def cmd_replay(argv):
    path, bind, dests = argv[0], argv[1], argv[2:]
    data = open(path, "rb").read()
    for d in dests:
        host, port = d.rsplit(":", 1)
        s = socket.socket()
        s.bind((bind, 0))
        s.settimeout(30)
        s.connect((host, int(port)))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        s.close()


def stream_templates(data):
    """Template records of an IPFIX byte stream: {tid: [[ie, pen, length], ...]}."""
    out, off = {}, 0
    while off + 16 <= len(data):
        ver, mlen = struct.unpack_from(">HH", data, off)
        if ver != 10 or mlen < 16:
            raise ValueError("not an IPFIX stream at %d" % off)
        so = off + 16
        while so + 4 <= off + mlen:
            sid, slen = struct.unpack_from(">HH", data, so)
            if sid == 2:
                ro = so + 4
                while ro + 4 <= so + slen:
                    tid, n = struct.unpack_from(">HH", data, ro)
                    ro += 4
                    fields = []
                    for _ in range(n):
                        ie, ln = struct.unpack_from(">HH", data, ro)
                        ro += 4
                        pen = 0
                        if ie & 0x8000:
                            pen = struct.unpack_from(">I", data, ro)[0]
                            ro += 4
                            ie &= 0x7fff
                        fields.append([ie, pen, ln])
                    out[str(tid)] = fields
            so += slen
        off += mlen
    return out


def cmd_templates(argv):
    t = {}
    for p in argv:
        t.update(stream_templates(open(p, "rb").read()))
    print(json.dumps(t))


def cmd_sse(argv):
    url, out = urllib.parse.urlsplit(argv[0]), argv[1]
    f = open(out, "w")
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    c.request("GET", url.path + ("?" + url.query if url.query else ""),
              headers={"Accept": "text/event-stream"})
    r = c.getresponse()
    f.write(json.dumps({"status": r.status, "headers": dict(r.getheaders())}) + "\n")
    f.flush()
    if r.status != 200:
        f.write(json.dumps({"event": "body", "data": r.read().decode(errors="replace")}) + "\n")
        return
    ev, data = "message", []
    while True:
        line = r.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    d = json.loads(text)
                except ValueError:
                    d = text
                f.write(json.dumps({"event": ev, "data": d}) + "\n")
                f.flush()
            ev, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "event":
                ev = v
            elif k == "data":
                data.append(v)
    f.write(json.dumps({"event": "eof", "data": None}) + "\n")

# ---- checks -----------------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, what, why=""):
        if cond:
            print("ok - %s" % what)
        else:
            self.failed += 1
            print("not ok - %s%s" % (what, (": " + why) if why else ""))
        sys.stdout.flush()
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, "got %s, expected %s" % (short(got), short(want)))


def short(v, n=400):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def get(api, path, params=None, headers=None, raw_query=None):
    """GET; returns (status, parsed JSON body or text, headers)."""
    url = urllib.parse.urlsplit(api)
    q = raw_query if raw_query is not None else (urllib.parse.urlencode(params or {}))
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        c.request("GET", path + ("?" + q if q else ""), headers=headers or {})
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return r.status, body, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def load_truth(paths):
    recs = []
    for p in paths:
        with open(p) as f:
            for line in f:
                if '"src_addr"' in line:
                    recs.append(json.loads(line))
    return recs


def ident(r):
    return tuple(r.get(k) for k in FLOW_KEYS)


def in_nets(addr, nets):
    a = ipaddress.ip_address(addr)
    return any(a.version == n.version and a in n for n in nets)


def fetch_all_flows(api, params, limit, max_pages=2000):
    """Pages through /flows. Returns (flows, pages, problems, metas)."""
    flows, problems, metas, cursor, pages = [], [], [], None, 0
    while pages < max_pages:
        p = dict(params)
        p["limit"] = str(limit)
        if cursor:
            p["cursor"] = cursor
        st, body, _ = get(api, "/api/v1/flows", p)
        pages += 1
        if st != 200 or not isinstance(body, dict):
            problems.append("page %d: HTTP %s %s" % (pages, st, short(body, 300)))
            break
        page = body.get("flows", [])
        metas.append({k: body.get(k) for k in ("partial", "missing_pods", "truncated",
                                               "count", "pods", "answered")})
        if body.get("count") != len(page):
            problems.append("page %d: count %s for %d flows" % (pages, body.get("count"),
                                                                len(page)))
        if len(page) > limit:
            problems.append("page %d: %d flows over limit %d" % (pages, len(page), limit))
        flows.extend(page)
        cursor = body.get("next_cursor")
        if not cursor:
            break
    else:
        problems.append("more than %d pages" % max_pages)
    return flows, pages, problems, metas


def order_ok(flows):
    """Global order: end_ms desc, pod asc, seq desc."""
    for a, b in zip(flows, flows[1:]):
        if (a["end_ms"], b.get("pod", ""), a["seq"]) <= (b["end_ms"], a.get("pod", ""),
                                                         b["seq"]):
            return False
    return True


def compare_flows(ck, what, flows, want):
    got_c = collections.Counter(ident(f) for f in flows)
    want_c = collections.Counter(ident(r) for r in want)
    missing = want_c - got_c
    extra = got_c - want_c
    ck.ok(not missing and not extra, "%s: exactly the %d matching flows" % (what, len(want)),
          "got %d flows, %d missing (e.g. %s), %d unexpected (e.g. %s)"
          % (len(flows), sum(missing.values()), short(list(missing)[:1]),
             sum(extra.values()), short(list(extra)[:1])))


def flows_case(ck, api, truth, what, params, pred, limit=1000, expect_partial=False,
               missing=None):
    want = [r for r in truth if pred(r)]
    flows, pages, problems, metas = fetch_all_flows(api, params, limit)
    ck.ok(not problems, "%s: every page 200 with a consistent count" % what, "; ".join(problems))
    compare_flows(ck, what, flows, want)
    keys = collections.Counter((f.get("pod"), f.get("seq")) for f in flows)
    dup = [k for k, n in keys.items() if n > 1]
    ck.ok(not dup, "%s: every flow appears once over %d page(s)" % (what, pages),
          "repeated (pod, seq): %s" % short(dup[:5]))
    ck.ok(order_ok(flows), "%s: pages in the global order (end_ms desc, pod, seq desc)" % what)
    bad = [m for m in metas if m.get("partial") is not expect_partial or m.get("truncated")]
    if not expect_partial:
        ck.ok(metas and not bad, "%s: partial false and not truncated on every page" % what,
              short(bad[:2]))
    else:
        names = [[p.get("pod") for p in (m.get("missing_pods") or [])] for m in metas]
        ck.ok(metas and not bad and all(n == missing for n in names),
              "%s: partial true and missing_pods %s on every page" % (what, missing),
              "metas %s" % short(metas[:2]))
    return want


def suite_flows(ck, a, truth):
    api = a.api
    ck.ok(len(truth) == a.expect_records, "truth: the tap decoded every record sent (%d)"
          % len(truth), "tap has %d, generator sent %d" % (len(truth), a.expect_records))
    flows_case(ck, api, truth, "all flows, pages of 250", {}, lambda r: True, limit=250)
    net = [ipaddress.ip_network("10.64.0.0/10")]
    flows_case(ck, api, truth, "src=10.64.0.0/10", {"src": "10.64.0.0/10"},
               lambda r: in_nets(r["src_addr"], net), limit=400)
    net6 = [ipaddress.ip_network("2001:db8:8000::/33"), ipaddress.ip_network("10.0.0.0/12")]
    flows_case(ck, api, truth, "src=2001:db8:8000::/33,10.0.0.0/12 (IPv6 and IPv4)",
               {"src": "2001:db8:8000::/33, 10.0.0.0/12"}, lambda r: in_nets(r["src_addr"], net6))
    # ports that occur (some on both pods) plus one that does not
    ports = sorted({r["dst_port"] for r in truth})[::97][:25] + [0]
    pset = set(ports)
    flows_case(ck, api, truth, "dst_port list of %d" % len(ports),
               {"dst_port": ",".join(map(str, ports))}, lambda r: r["dst_port"] in pset)
    flows_case(ck, api, truth, "proto=udp", {"proto": "udp"}, lambda r: r["proto"] == 17)
    sp = set(sorted({r["src_port"] for r in truth})[::211][:20]) | pset
    net = [ipaddress.ip_network("10.128.0.0/9"), ipaddress.ip_network("2001:db8::/32")]
    flows_case(ck, api, truth, "addr and port (either side)",
               {"addr": "10.128.0.0/9,2001:db8::/32", "port": ",".join(map(str, sorted(sp)))},
               lambda r: (in_nets(r["src_addr"], net) or in_nets(r["dst_addr"], net))
               and (r["src_port"] in sp or r["dst_port"] in sp))
    flows_case(ck, api, truth, "exporter=127.0.0.3", {"exporter": "127.0.0.3"},
               lambda r: r["exporter"] == "127.0.0.3")
    flows_case(ck, api, truth, "odid=1", {"odid": "1"}, lambda r: r["odid"] == 1)
    net = [ipaddress.ip_network("10.0.0.0/9"), ipaddress.ip_network("2001:db8::/32")]
    flows_case(ck, api, truth, "combined: src, proto list, exporter, raw filter",
               {"src": "10.0.0.0/9,2001:db8::/32", "proto": "tcp,icmp",
                "exporter": "127.0.0.3", "filter": "packets >= 300 or dst_port < 5000"},
               lambda r: in_nets(r["src_addr"], net) and r["proto"] in (6, 1)
               and r["exporter"] == "127.0.0.3"
               and (r["packets"] >= 300 or r["dst_port"] < 5000))
    flows_case(ck, api, truth, "filter= raw expression",
               {"filter": "(dst_port < 3000 or src_port > 63000) and not proto == icmp "
                          "and family == 4"},
               lambda r: (r["dst_port"] < 3000 or r["src_port"] > 63000) and r["proto"] != 1
               and ":" not in r["src_addr"])
    # a time window: [start, end] overlaps [from, to)
    ends = sorted(r["end_ms"] for r in truth)
    lo, hi = ends[len(ends) // 3], ends[len(ends) // 2]
    flows_case(ck, api, truth, "from/to window and proto=tcp",
               {"from": str(lo), "to": str(hi), "proto": "tcp"},
               lambda r: r["start_ms"] < hi and r["end_ms"] >= lo and r["proto"] == 6)
    st, body, _ = get(api, "/api/v1/flows", {"filter": "", "limit": "7"})
    ck.ok(st == 200 and len(body.get("flows", [])) == 7 and body.get("next_cursor"),
          "filter= (empty) means no filter; limit 7 gives 7 flows and a cursor",
          "HTTP %s %s" % (st, short(body, 200)))


def rank_check(ck, what, entries, sums, metric, n):
    """entries from the API; sums {key: {"octets", "packets", "flows"}} from the truth."""
    want = sorted(sums.items(), key=lambda kv: (-kv[1][metric], kv[0]))[:n]
    got_vals = [e[metric] for e in entries]
    ck.eq(got_vals, [v[metric] for _, v in want], "%s: the top %d %s values" % (what, n, metric))
    # keys: those strictly above the last value must be exactly the truth's; at the last
    # value (ties) any truth key with that value may appear (pods break ties by their own
    # key encoding, the merge by strcmp)
    last = want[-1][1][metric] if want else None
    above_got = {e["key"] for e in entries if e[metric] != last}
    above_want = {k for k, v in want if v[metric] != last}
    tied = {k for k, v in sums.items() if v[metric] == last}
    at_got = [e["key"] for e in entries if e[metric] == last]
    ck.ok(above_got == above_want and set(at_got) <= tied and len(set(at_got)) == len(at_got),
          "%s: the keys (ties at %s compared as a set of %d)" % (what, last, len(tied)),
          "above: got %s want %s; at the last value got %s of %s"
          % (short(sorted(above_got)), short(sorted(above_want)), at_got, short(sorted(tied))))
    bad = [(e["key"], {m: e[m] for m in ("octets", "packets", "flows")}, sums.get(e["key"]))
           for e in entries
           if sums.get(e["key"]) != {m: e[m] for m in ("octets", "packets", "flows")}]
    ck.ok(not bad, "%s: every entry's three sums equal the truth's" % what, short(bad[:3]))
    order = [(-e[metric], e["key"]) for e in entries]
    ck.ok(order == sorted(order), "%s: ranked by %s desc, then key" % (what, metric))
    # what holds even when the merge cannot prove exactness: no sum is over the truth's
    over = [e["key"] for e in entries
            if any(e[m] > sums.get(e["key"], {}).get(m, 0) for m in ("octets", "packets", "flows"))]
    ck.ok(not over, "%s: no entry's sums exceed the truth's (sound lower bounds)" % what,
          short(over[:5]))


def suite_top(ck, a, truth):
    """/flows/top is answered from the mediators' per-minute rollups (mediator/rollup.c),
    bucketed by the minute of end_ms. A minute is open, with exact per-key sums that queries
    read at once (no wait for a minute boundary), until 120 s after it ends (seal_after_s,
    fixed in mediator.c); then it is sealed to the union of its top rollup_top_k keys by each
    metric, the rest going to "other" with exact false. The generator's flows end within
    [now - 60 s, now + 60 s], so the window reaches to now+5m (the API's default window ends
    now and misses flows ending after the current minute), and the pods run with
    rollup_top_k 100000 so that sealing keeps every key: the answers do not depend on how
    long the checks before this one took."""
    api = a.api
    win = {"from": "now-30m", "to": "now+5m"}
    tot = {"octets": sum(r["octets"] for r in truth), "packets": sum(r["packets"] for r in truth),
           "flows": len(truth)}
    cases = [("src", "octets", 10, lambda r: [r["src_addr"]]),
             ("dst_port", "packets", 10, lambda r: [str(r["dst_port"])]),
             ("src_port", "flows", 20, lambda r: [str(r["src_port"])]),
             ("proto", "flows", 5, lambda r: [str(r["proto"])]),
             ("exporter", "octets", 5, lambda r: ["%s,%d" % (r["exporter"], r["odid"])])]
    for by, metric, n, keyf in cases:
        sums = {}
        for r in truth:
            for k in keyf(r):
                s = sums.setdefault(k, {"octets": 0, "packets": 0, "flows": 0})
                s["octets"] += r["octets"]
                s["packets"] += r["packets"]
                s["flows"] += 1
        what = "top by=%s metric=%s n=%d" % (by, metric, n)
        st, body, _ = get(api, "/api/v1/flows/top", dict(win, by=by, metric=metric, n=str(n)))
        if not ck.ok(st == 200 and isinstance(body, dict) and "entries" in body,
                     "%s: 200" % what, "HTTP %s %s" % (st, short(body, 300))):
            continue
        ck.ok(body.get("partial") is False and body.get("pods_inexact") == [],
              "%s: partial false, no pod inexact" % what,
              "partial %s pods_inexact %s" % (body.get("partial"), body.get("pods_inexact")))
        rank_check(ck, what, body["entries"], sums, metric, n)
        ck.eq(body.get("totals"), tot, "%s: totals equal the truth's" % what)
        ck.eq(body.get("other"), {m: tot[m] - sum(e[m] for e in body["entries"]) for m in tot},
              "%s: other is totals minus the entries" % what)
        if len(sums) <= n:
            ck.eq(body.get("exact"), True, "%s: exact (every key listed by every pod)" % what)
        print("# %s: exact=%s (the merge proves exactness only when every pod's unlisted "
              "keys cannot reach the last entry)" % (what, body.get("exact")))
    # the default window ends now: flows ending later (the generator's end times reach 60 s
    # ahead) are outside it
    st, body, _ = get(api, "/api/v1/flows/top", {"by": "proto", "metric": "flows"})
    now = time.time() * 1000
    want = sum(1 for r in truth if r["end_ms"] < (now // 60000 + 1) * 60000)
    later = len(truth) - want
    ok = st == 200 and body.get("totals", {}).get("flows") in range(want, want + 1 + later)
    ck.ok(ok, "top with the default window (last hour up to now) holds the flows ending "
              "up to the current minute (%d; %d end later)" % (want, later),
          "HTTP %s totals %s" % (st, body.get("totals") if isinstance(body, dict) else body))


def suite_timeseries(ck, a, truth):
    st, body, _ = get(a.api, "/api/v1/flows/timeseries",
                      {"from": "now-30m", "to": "now+5m", "interval": "1m"})
    if not ck.ok(st == 200 and isinstance(body, dict) and "points" in body,
                 "timeseries: 200", "HTTP %s %s" % (st, short(body, 300))):
        return
    pts = body["points"]
    for m in ("flows", "octets", "packets"):
        want = len(truth) if m == "flows" else sum(r[m] for r in truth)
        ck.eq(sum(p[m] for p in pts), want, "timeseries: %s sum to the truth's" % m)
    per = collections.Counter()
    for r in truth:
        per[r["end_ms"] // 60000 * 60000] += 1
    got = {p["start_ms"]: p["flows"] for p in pts if p["flows"]}
    ck.eq(got, dict(per), "timeseries: flows per minute (by end_ms) equal the truth's")
    ck.ok(all(p["start_ms"] % 60000 == 0 for p in pts)
          and [p["start_ms"] for p in pts] == sorted(p["start_ms"] for p in pts),
          "timeseries: points aligned to the minute and ascending")
    ck.ok(body.get("step_s") == 60 and body.get("partial") is False,
          "timeseries: step_s 60, partial false", short({k: body.get(k) for k in
                                                          ("step_s", "partial")}))
    st, body, _ = get(a.api, "/api/v1/flows/timeseries",
                      {"from": "now-30m", "to": "now+5m", "interval": "5m"})
    ok = st == 200 and sum(p["octets"] for p in body.get("points", [])) == \
        sum(r["octets"] for r in truth) and all(p["start_ms"] % 300000 == 0
                                                for p in body["points"])
    ck.ok(ok, "timeseries interval=5m: aligned points, same octets", short(body, 300))


def suite_exporters(ck, a, truth):
    st, body, _ = get(a.api, "/api/v1/exporters")
    if not ck.ok(st == 200 and isinstance(body, dict), "exporters: 200",
                 "HTTP %s %s" % (st, short(body, 300))):
        return
    want = {}
    for r in truth:
        e = want.setdefault((r["exporter"], r["odid"]), {"flows": 0, "octets": 0, "packets": 0})
        e["flows"] += 1
        e["octets"] += r["octets"]
        e["packets"] += r["packets"]
    got = {(e["address"], e["odid"]): {k: e[k] for k in ("flows", "octets", "packets")}
           for e in body.get("exporters", [])}
    ck.eq(got, want, "exporters: both exporters with the truth's flows, octets, packets")
    pods = {(e["address"], e["odid"]): e.get("pods") for e in body.get("exporters", [])}
    ck.eq(pods, {("127.0.0.2", 1): ["pod-0"], ("127.0.0.3", 2): ["pod-1"]},
          "exporters: each seen by its own pod")
    ck.ok(body.get("partial") is False and body.get("answered") == 2,
          "exporters: both pods answered", short(body, 300))


def suite_templates(ck, a, truth):
    gen = json.loads(a.gen_templates)   # {"exporter,odid": {tid: fields}}
    want = []
    for k, tmpls in gen.items():
        exp, odid = k.split(",")
        for tid, fields in tmpls.items():
            want.append((exp, int(odid), int(tid), tuple(tuple(f) for f in fields)))
    want.sort()

    def rows(body):
        return sorted((t["exporter"], t["odid"], t["template_id"],
                       tuple((f["ie"], f["pen"], f["length"]) for f in t["fields"]))
                      for t in body.get("templates", []))

    st, body, _ = get(a.api, "/api/v1/templates")
    if not ck.ok(st == 200 and isinstance(body, dict) and "templates" in body,
                 "templates: 200", "HTTP %s %s" % (st, short(body, 300))):
        return
    ck.eq(rows(body), want, "templates: exactly the templates the generator sent (from Redis)")
    ck.ok(body.get("count") == len(want) and body.get("malformed") == 0
          and body.get("truncated") is False and body.get("exporters") == len(gen),
          "templates: count, exporters, malformed 0, not truncated",
          short({k: body.get(k) for k in ("count", "exporters", "malformed", "truncated")}))
    st, body, _ = get(a.api, "/api/v1/templates", {"exporter": "127.0.0.3"})
    ck.eq(rows(body) if st == 200 else st, [w for w in want if w[0] == "127.0.0.3"],
          "templates ?exporter=127.0.0.3: only that exporter's")
    st, body, _ = get(a.api, "/api/v1/templates", {"exporter": "127.0.0.3", "odid": "2"})
    ck.eq(rows(body) if st == 200 else st, [w for w in want if w[0] == "127.0.0.3"],
          "templates ?exporter=127.0.0.3&odid=2")
    st, body, _ = get(a.api, "/api/v1/templates", {"exporter": "127.0.0.3", "odid": "1"})
    ck.eq(rows(body) if st == 200 else st, [], "templates ?exporter=127.0.0.3&odid=1: none")
    st, body, _ = get(a.api, "/api/v1/templates", {"exporter": "192.0.2.1"})
    ck.eq(rows(body) if st == 200 else st, [], "templates ?exporter=192.0.2.1: none")
    st, body, _ = get(a.api, "/api/v1/templates", {"limit": "1"})
    ck.ok(st == 200 and len(body.get("templates", [])) == 1 and body.get("truncated") is True,
          "templates ?limit=1: one template, truncated", short(body, 300))
    st, body, _ = get(a.api, "/api/v1/templates", {"exporter": "10.0.0.0/8"})
    ck.ok(st == 400 and "exporter" in json.dumps(body),
          "templates ?exporter=10.0.0.0/8: 400 naming exporter", "HTTP %s %s" % (st, body))


def suite_pods(ck, a, truth):
    st, body, _ = get(a.api, "/api/v1/pods")
    if not ck.ok(st == 200 and isinstance(body, dict) and "pods" in body, "pods: 200",
                 "HTTP %s %s" % (st, short(body, 300))):
        return
    pods = {p.get("name"): p for p in body["pods"]}
    ck.eq(sorted(pods), ["pod-0", "pod-1"], "pods: both pods listed")
    ck.ok(body.get("count") == 2 and body.get("ok") == 2, "pods: count 2, ok 2",
          short({k: body.get(k) for k in ("count", "ok")}))
    sent = {"pod-0": 0, "pod-1": 0}
    for r in truth:
        sent["pod-0" if r["exporter"] == "127.0.0.2" else "pod-1"] += 1
    for name in ("pod-0", "pod-1"):
        p = pods.get(name, {})
        s = p.get("status") or {}
        ck.ok(p.get("ok") is True and s.get("pod") == name and s.get("ready") is True,
              "pods: %s ok, its controller's document names it and says ready" % name,
              short(p, 300))
        comp = s.get("components", {})
        got = (comp.get("collector", {}).get("counters", {}).get("records"),
               comp.get("mediator", {}).get("counters", {}).get("records"))
        ck.eq(got, (sent[name], sent[name]),
              "pods: %s collector and mediator records equal what was sent" % name)
        exps = [e[0] if isinstance(e, list) else e.get("address")
                for e in comp.get("collector", {}).get("exporters", [])]
        ck.eq(exps, ["127.0.0.2" if name == "pod-0" else "127.0.0.3"],
              "pods: %s lists its exporter" % name)


def sse_events(path):
    head, events = None, []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if "status" in d:
                head = d
            else:
                events.append(d)
    return head, events


def suite_stream(ck, a, truth):
    """--sse FILE:PREDICATE-NAME pairs; truth = the new traffic only."""
    preds = {
        "ports": None,
        "udp": lambda r: r["proto"] == 17 and in_nets(r["src_addr"],
                                                      [ipaddress.ip_network("10.0.0.0/9")]),
    }
    for spec in a.sse:
        path, name = spec.split("=", 1)
        if name.startswith("ports:"):
            ps = {int(x) for x in name[6:].split(",")}
            pred, what = (lambda r, ps=ps: r["dst_port"] in ps), "stream dst_port list"
        else:
            pred, what = preds[name], "stream proto=udp&src=10.0.0.0/9"
        head, events = sse_events(path)
        ck.ok(head and head["status"] == 200 and head["headers"].get(
              "Content-Type", "").startswith("text/event-stream"),
              "%s: 200 text/event-stream" % what, short(head))
        ck.ok(events and events[0]["event"] == "hello", "%s: starts with event: hello" % what,
              short(events[:1]))
        flows = [e["data"] for e in events if e["event"] == "flow"]
        bad = [f for f in flows if not isinstance(f, dict) or not pred(f)]
        ck.ok(not bad, "%s: every flow event matches the filter (%d events)" % (what,
                                                                               len(flows)),
              short(bad[:2]))
        want = [r for r in truth if pred(r)]
        ck.eq(len(flows), len(want), "%s: as many flow events as matching new flows" % what)
        compare_flows(ck, what, [f for f in flows if isinstance(f, dict)], want)
        others = collections.Counter(e["event"] for e in events
                                     if e["event"] not in ("hello", "flow"))
        print("# %s: other events %s" % (what, dict(others)))


def suite_errors(ck, a, truth):
    api = a.api

    def err(path, params, status, param, what, raw=None):
        st, body, hdr = get(api, path, params, raw_query=raw)
        e = body.get("error", {}) if isinstance(body, dict) else {}
        ok = st == status and (param is None or e.get("parameter") == param
                               or str(e.get("message", "")).startswith(param + ":"))
        ck.ok(ok, what, "HTTP %s %s" % (st, short(body, 300)))
        return st, body, hdr

    err("/api/v1/flows", {"filter": "proto == "}, 400, "filter", "bad filter: 400 naming filter")
    st, body, _ = get(api, "/api/v1/flows", {"filter": "proto == "})
    ck.ok("column" in json.dumps(body), "bad filter: the message has the column",
          short(body, 300))
    err("/api/v1/flows", {"dst_port": "80,99999"}, 400, "dst_port",
        "dst_port=80,99999: 400 naming dst_port")
    err("/api/v1/flows", {"src": "10.0.0.1/8"}, 400, "src", "src with host bits: 400 naming src")
    err("/api/v1/flows", {"proto": "tcpp"}, 400, "proto", "proto=tcpp: 400 naming proto")
    err("/api/v1/flows", {"limit": "100000"}, 400, "limit", "limit=100000: 400 naming limit")
    err("/api/v1/flows", {"cursor": "garbage"}, 400, "cursor", "bad cursor: 400 naming cursor")
    err("/api/v1/flows", {"bogus": "1"}, 400, "bogus", "unknown parameter: 400 naming it")
    err("/api/v1/flows", None, 400, "src", "a parameter given twice: 400",
        raw="src=10.0.0.0/8&src=10.0.0.0/9")
    err("/api/v1/flows/top", {"by": "color"}, 400, "by", "top by=color: 400 naming by")
    err("/api/v1/flows/top", {"proto": "tcp"}, 400, "proto",
        "top with a filter parameter: 400 naming it")
    err("/api/v1/flows/timeseries", {"interval": "90s"}, 400, "interval",
        "timeseries interval=90s: 400 naming interval")
    err("/api/v1/flows/stream", {"from": "now-1m"}, 400, "from",
        "stream with from: 400 naming from")
    err("/api/v1/flows", {"from": "yesterday"}, 400, "from", "from=yesterday: 400 naming from")
    err("/api/v1/nope", {}, 404, None, "unknown route: 404")
    err("/api/v2/flows", {}, 404, None, "unknown version prefix: 404")
    st, body, _ = get(api, "/api/v1/flows", raw_query="filter=" + "x" * 5000)
    ck.eq(st, 414, "URL over max_url_bytes: 414")
    url = urllib.parse.urlsplit(api)
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    c.request("POST", "/api/v1/flows", body=b"{}")
    r = c.getresponse()
    r.read()
    ck.ok(r.status == 405 and "GET" in (r.getheader("Allow") or ""),
          "POST /api/v1/flows: 405 with Allow: GET", "HTTP %s Allow %s" % (r.status,
                                                                          r.getheader("Allow")))
    c.close()
    if a.limited_api:
        codes, retry = [], None
        for _ in range(3):
            st, body, hdr = get(a.limited_api, "/api/v1/exporters")
            codes.append(st)
            if st == 429:
                retry = hdr.get("retry-after")
        ck.ok(codes[0] == 200 and 429 in codes[1:] and retry and int(retry) >= 1,
              "rate_limit_rps 1, burst 1: 200 then 429 with Retry-After",
              "codes %s Retry-After %s" % (codes, retry))
        st, _, _ = get(a.limited_api, "/healthz")
        ck.eq(st, 200, "rate limited: /healthz is not limited")
        time.sleep(1.1)
        st, _, _ = get(a.limited_api, "/api/v1/exporters")
        ck.eq(st, 200, "rate limited: a request after a second is served again")


def suite_partial(ck, a, truth):
    api, dead, alive = a.api, a.dead, a.alive
    alive_exp = "127.0.0.2" if alive == "pod-0" else "127.0.0.3"
    t0 = time.time()
    want = flows_case(ck, api, truth, "%s dead: proto=tcp" % dead, {"proto": "tcp"},
                      lambda r: r["proto"] == 6 and r["exporter"] == alive_exp,
                      expect_partial=True, missing=[dead])
    print("# %d flows of %s in %.1f s" % (len(want), alive, time.time() - t0))
    st, body, _ = get(api, "/api/v1/flows", {"proto": "tcp", "limit": "5"})
    mp = body.get("missing_pods", []) if isinstance(body, dict) else []
    ck.ok(st == 200 and body.get("partial") is True and body.get("pods") == 2
          and body.get("answered") == 1 and [m.get("pod") for m in mp] == [dead]
          and all(isinstance(m.get("error"), dict) and m["error"].get("code") for m in mp),
          "%s dead: missing_pods names it with an error code" % dead, short(body, 400))
    st, body, _ = get(api, "/api/v1/exporters")
    ck.ok(st == 200 and [e["address"] for e in body.get("exporters", [])] == [alive_exp]
          and body.get("partial") is True,
          "%s dead: exporters partial, only %s's exporter" % (dead, alive), short(body, 300))
    st, body, _ = get(api, "/api/v1/pods")
    pods = {p.get("name"): p for p in body.get("pods", [])} if isinstance(body, dict) else {}
    ck.ok(st == 200 and pods.get(dead, {}).get("ok") is False
          and pods.get(dead, {}).get("error") and pods.get(alive, {}).get("ok") is True
          and body.get("ok") == 1,
          "%s dead: /pods shows it not ok (with an error), %s ok" % (dead, alive),
          short(body, 400))
    st, body, _ = get(api, "/readyz")
    ck.eq(st, 200, "%s dead: /readyz still 200 (%s answers)" % (dead, alive))


def cmd_check(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("suite")
    ap.add_argument("--api", required=True)
    ap.add_argument("--truth", action="append", default=[])
    ap.add_argument("--expect-records", type=int, default=0)
    ap.add_argument("--gen-templates", default="{}")
    ap.add_argument("--sse", action="append", default=[])
    ap.add_argument("--limited-api")
    ap.add_argument("--dead")
    ap.add_argument("--alive")
    a = ap.parse_args(argv)
    truth = load_truth(a.truth)
    ck = Checks()
    globals()["suite_" + a.suite](ck, a, truth)


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"record": cmd_record, "replay": cmd_replay, "templates": cmd_templates,
     "sse": cmd_sse, "check": cmd_check}[cmd](argv)


main()
