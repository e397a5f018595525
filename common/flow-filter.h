/* SPDX-License-Identifier: MIT */
/*
 * flow-filter.h - filter expressions over canonical flow records, compiled once and
 * evaluated per record (mediator pipelines, the flow store's queries, the API's live feed).
 *
 * Grammar (keywords case-insensitive; `&&`, `||`, `!` are accepted for and, or, not):
 *
 *   expr    := or
 *   or      := and { "or" and }
 *   and     := unary { "and" unary }
 *   unary   := "not" unary | "(" expr ")" | cmp
 *   cmp     := field op value | field ["not"] "in" set | field ["not"] "in" cidr
 *   op      := == | != | < | <= | > | >=
 *   set     := "(" value { "," value } ")"
 *   value   := number (decimal or 0x hex) | protocol name (tcp, udp, icmp, ...) |
 *              IPv4 or IPv6 address | CIDR (addr/len)
 *
 * Fields: src_addr, dst_addr, exporter, addr (src or dst) - addresses (== != in);
 * src_port, dst_port, port (src or dst), proto, tcp_flags, tos, octets, packets, flows,
 * start_ms, end_ms, duration_ms, ingress_if, egress_if, src_as, dst_as, odid, vlan,
 * template_id, direction, end_reason, sampling, family - unsigned integers (all ops, sets).
 * An IPv4 literal or CIDR matches only family-4 records, an IPv6 one only family 6.
 * Example: `proto == tcp and dst_port in (80, 443) and not src_addr in 10.0.0.0/8`.
 *
 * The empty expression (or only whitespace) matches every record.
 *
 * Details (the grammar above is normative; these settle what it leaves open):
 * - Field names, keywords and protocol names are case-insensitive (`PROTO == TCP AND ...`).
 *   `not` binds tighter than `and`, which binds tighter than `or`.
 * - `in` also takes a single value without parentheses (`src_addr in 10.0.0.0/8`,
 *   `proto in tcp`), the same as a one-member set. `field == cidr` means `field in cidr`.
 * - Numbers are unsigned, decimal or 0x hex, and must fit the field (`dst_port == 70000`,
 *   `proto == 300` are errors), for every operator. Protocol names are valid only for
 *   `proto`: icmp 1, igmp 2, tcp 6, udp 17, ipv6 41, gre 47, esp 50, ah 51,
 *   icmp6/ipv6-icmp/icmpv6 58, ospf 89, pim 103, vrrp 112, l2tp 115, sctp 132.
 * - Address fields take only ==, !=, in and not in. The literal's spelling decides its family:
 *   a dotted quad (and a.b.c.d/len) is IPv4, anything with ':' is IPv6, including
 *   `::ffff:a.b.c.d` (which therefore matches only family-6 records, and an IPv4 literal never
 *   matches a family-6 record). Prefix lengths are 0..32 for IPv4 and 0..128 for IPv6; a CIDR
 *   with host bits set (`10.0.0.1/8`) is an error that suggests the network (`10.0.0.0/8`),
 *   because it is usually a typo for one or the other.
 * - Either-side fields `addr` and `port`: `addr OP x` means `src_addr OP x or dst_addr OP x`
 *   for ==, in, <, <=, > and >=, while `!=` and `not in` are the negations: `port != 80` is
 *   `not (port == 80)`, i.e. neither side is 80, and `addr not in S` means neither address
 *   is in S.
 * - duration_ms is end_ms - start_ms, or 0 when end_ms < start_ms; flows is the record's
 *   flows count with 0 read as 1; family is 4 or 6.
 * - Errors (-EINVAL, -E2BIG) start with "column N: " (1-based byte column; for end of input
 *   it is the length + 1), then say what was expected and what was found.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"

#define FLOW_FILTER_MAX_LEN 4096u       /* expression text, bytes */
#define FLOW_FILTER_MAX_NODES 512u      /* comparisons + operators */
#define FLOW_FILTER_MAX_SET 1024u       /* members of one set */
#define FLOW_FILTER_MAX_DEPTH 64u       /* nesting of parentheses and not */
/* Set members are counted as written (before duplicates are removed). Every node counts once:
 * each comparison, each `and`/`or` keyword and each `not`. */

typedef struct FlowFilter FlowFilter;

/**
 * flow_filter_compile() - parses and compiles @expr.
 * @expr:   expression text (NUL-terminated); NULL or blank matches everything
 * @ret:    the compiled filter, owned by the caller (flow_filter_free())
 * @reterr: on -EINVAL, a heap message naming the 1-based column, e.g.
 *          "column 17: expected ')' to close the set opened at column 9" (caller frees)
 *
 * Return: 0, -EINVAL for a syntax or type error, -E2BIG when a cap above is exceeded
 * (@reterr set too), -ENOMEM.
 */
int flow_filter_compile(const char *expr, FlowFilter **ret, char **reterr);
FlowFilter *flow_filter_free(FlowFilter *f);

/* Whether @r satisfies @f. Allocation-free, safe to call from several threads at once. */
bool flow_filter_match(const FlowFilter *f, const FlowRecord *r);

/* The source text the filter was compiled from ("" for match-all). */
const char *flow_filter_expr(const FlowFilter *f);

/* True when the filter matches every record (blank expression). */
bool flow_filter_is_all(const FlowFilter *f);

typedef enum FlowFilterPortField {
        FLOW_FILTER_SRC_PORT,
        FLOW_FILTER_DST_PORT,
} FlowFilterPortField;

typedef enum FlowFilterAddrField {
        FLOW_FILTER_SRC_ADDR,
        FLOW_FILTER_DST_ADDR,
        FLOW_FILTER_EXPORTER,
} FlowFilterAddrField;

/*
 * Index probes for pruning (the flow store asks them per segment of records). Each callback
 * returns false only when *no* record of the probed set can have that value; NULL callbacks
 * count as "maybe". @addr is 16 octets (IPv4 mapped, as in FlowRecord), @prefix_len counts
 * bits of the address as written (0..32 for family 4, 0..128 for family 6).
 */
typedef struct FlowFilterProbe {
        bool (*proto)(void *userdata, uint8_t proto);
        bool (*port)(void *userdata, FlowFilterPortField field, uint16_t port);
        bool (*addr)(void *userdata, FlowFilterAddrField field, const uint8_t addr[16],
                     uint8_t family, unsigned prefix_len);
        void *userdata;
} FlowFilterProbe;

/**
 * flow_filter_may_match() - false only when no record of the probed set can match @f.
 * Conservative: anything under `not`, inequalities and fields without a probe are "maybe".
 * `port`/`addr` (either side) probe both sides; a set probes each member.
 *
 * `a and b` may match when both may, `a or b` when either may, `not a` always may. Only `==`
 * and `in` on proto, src_port, dst_port, port, src_addr, dst_addr, exporter and addr call a
 * probe; `!=`, `not in`, <, <=, >, >= and other fields are "maybe". Address probes get the
 * network address (IPv4-mapped for family 4, host bits clear) and the prefix length as written:
 * 32 or 128 for a plain address. A match-all filter, or a NULL @probe, is always "maybe".
 * Probes run on the caller's thread, in no particular order, and may stop early.
 */
bool flow_filter_may_match(const FlowFilter *f, const FlowFilterProbe *probe);
