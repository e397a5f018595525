/* SPDX-License-Identifier: MIT */
/*
 * flow-filter.c - filter expressions over FlowRecords: a hand-written lexer and recursive-descent
 * parser build a small AST (and/or are n-ary, so its depth is bounded by the nesting cap), which
 * is compiled into a branch program in the style of classic BPF: every instruction is one
 * comparison with a "true" and a "false" successor, ending in ACCEPT or REJECT. `and`, `or` and
 * `not` cost nothing at run time (they only decide where the branches go), so evaluation is a
 * loop over a few comparisons: no recursion, no stack, no allocation, and nothing is written,
 * which makes a compiled filter safe to share between threads.
 *
 * Invariants: every branch target is ACCEPT, REJECT or an instruction emitted earlier (code is
 * generated back to front), so evaluation always terminates; set members are sorted and
 * unique; address set values are stored already masked with their group's prefix mask; every
 * integer constant fits its field. The AST is kept only for flow_filter_may_match().
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "flow-filter.h"
#include "macro.h"

/* ---- fields ------------------------------------------------------------------------------- */

typedef enum FieldKind {
        FIELD_INT,
        FIELD_ADDR,
} FieldKind;

typedef enum LoadKind {
        LOAD_U8,
        LOAD_U16,
        LOAD_U32,
        LOAD_U64,
        LOAD_DURATION,          /* end_ms - start_ms, 0 when end < start */
        LOAD_FLOWS,             /* flows, 0 meaning 1 */
} LoadKind;

typedef enum ProbeKind {
        PROBE_NONE,
        PROBE_PROTO,
        PROBE_PORT,
        PROBE_ADDR,
} ProbeKind;

typedef enum FieldId {
        F_SRC_ADDR,
        F_DST_ADDR,
        F_EXPORTER,
        F_ADDR,
        F_SRC_PORT,
        F_DST_PORT,
        F_PORT,
        F_PROTO,
        F_TCP_FLAGS,
        F_TOS,
        F_OCTETS,
        F_PACKETS,
        F_FLOWS,
        F_START_MS,
        F_END_MS,
        F_DURATION_MS,
        F_INGRESS_IF,
        F_EGRESS_IF,
        F_SRC_AS,
        F_DST_AS,
        F_ODID,
        F_VLAN,
        F_TEMPLATE_ID,
        F_DIRECTION,
        F_END_REASON,
        F_SAMPLING,
        F_FAMILY,
        _F_MAX,
} FieldId;

typedef struct Field {
        const char *name;
        uint8_t kind;           /* FieldKind */
        uint8_t load;           /* LoadKind, integers only */
        uint8_t probe;          /* ProbeKind */
        uint8_t probe_field;    /* FlowFilterPortField or FlowFilterAddrField */
        uint16_t off;           /* offset of the value (or address) in FlowRecord */
        uint16_t off_family;    /* addresses: offset of the family byte */
        int8_t either[2];       /* `port`/`addr`: the two one-sided fields; -1 otherwise */
        uint64_t max;           /* largest value the field can hold */
} Field;

#define MEMBER_SIZE(m) sizeof(((FlowRecord *) 0)->m)
#define LOAD_OF(m)                                                                      \
        (MEMBER_SIZE(m) == 1 ? LOAD_U8 : MEMBER_SIZE(m) == 2 ? LOAD_U16 :               \
         MEMBER_SIZE(m) == 4 ? LOAD_U32 : LOAD_U64)
#define MAX_OF(m) (UINT64_MAX >> (64 - 8 * MEMBER_SIZE(m)))
#define PROBED_INT_FIELD(id, m, pk, pf)                                                 \
        [id] = { .name = #m, .kind = FIELD_INT, .load = LOAD_OF(m), .probe = pk,        \
                 .probe_field = pf, .off = offsetof(FlowRecord, m), .max = MAX_OF(m),   \
                 .either = { -1, -1 } }
#define INT_FIELD(id, m) PROBED_INT_FIELD(id, m, PROBE_NONE, 0)
#define ADDR_FIELD(id, n, m, fam, pf)                                                   \
        [id] = { .name = n, .kind = FIELD_ADDR, .probe = PROBE_ADDR, .probe_field = pf, \
                 .off = offsetof(FlowRecord, m), .off_family = offsetof(FlowRecord, fam), \
                 .either = { -1, -1 } }

static const Field fields[_F_MAX] = {
        ADDR_FIELD(F_SRC_ADDR, "src_addr", src_addr, family, FLOW_FILTER_SRC_ADDR),
        ADDR_FIELD(F_DST_ADDR, "dst_addr", dst_addr, family, FLOW_FILTER_DST_ADDR),
        ADDR_FIELD(F_EXPORTER, "exporter", exporter_addr, exporter_family, FLOW_FILTER_EXPORTER),
        [F_ADDR] = { .name = "addr", .kind = FIELD_ADDR, .either = { F_SRC_ADDR, F_DST_ADDR } },
        PROBED_INT_FIELD(F_SRC_PORT, src_port, PROBE_PORT, FLOW_FILTER_SRC_PORT),
        PROBED_INT_FIELD(F_DST_PORT, dst_port, PROBE_PORT, FLOW_FILTER_DST_PORT),
        [F_PORT] = { .name = "port", .kind = FIELD_INT, .max = MAX_OF(src_port),
                     .either = { F_SRC_PORT, F_DST_PORT } },
        PROBED_INT_FIELD(F_PROTO, proto, PROBE_PROTO, 0),
        INT_FIELD(F_TCP_FLAGS, tcp_flags),
        INT_FIELD(F_TOS, tos),
        INT_FIELD(F_OCTETS, octets),
        INT_FIELD(F_PACKETS, packets),
        [F_FLOWS] = { .name = "flows", .kind = FIELD_INT, .load = LOAD_FLOWS,
                      .max = MAX_OF(flows), .either = { -1, -1 } },
        INT_FIELD(F_START_MS, start_ms),
        INT_FIELD(F_END_MS, end_ms),
        [F_DURATION_MS] = { .name = "duration_ms", .kind = FIELD_INT, .load = LOAD_DURATION,
                            .max = MAX_OF(end_ms), .either = { -1, -1 } },
        INT_FIELD(F_INGRESS_IF, ingress_if),
        INT_FIELD(F_EGRESS_IF, egress_if),
        INT_FIELD(F_SRC_AS, src_as),
        INT_FIELD(F_DST_AS, dst_as),
        INT_FIELD(F_ODID, odid),
        INT_FIELD(F_VLAN, vlan),
        INT_FIELD(F_TEMPLATE_ID, template_id),
        INT_FIELD(F_DIRECTION, direction),
        INT_FIELD(F_END_REASON, end_reason),
        INT_FIELD(F_SAMPLING, sampling),
        INT_FIELD(F_FAMILY, family),
};

typedef struct ProtoName {
        const char *name;
        uint8_t proto;
} ProtoName;

/* IANA protocol numbers, under the names /etc/protocols and common tools use. */
static const ProtoName proto_names[] = {
        { "icmp", 1 },    { "igmp", 2 },       { "tcp", 6 },     { "udp", 17 },
        { "ipv6", 41 },   { "gre", 47 },       { "esp", 50 },    { "ah", 51 },
        { "icmp6", 58 },  { "ipv6-icmp", 58 }, { "icmpv6", 58 }, { "ospf", 89 },
        { "pim", 103 },   { "vrrp", 112 },     { "l2tp", 115 },  { "sctp", 132 },
};

static bool word_equal(const char *s, size_t len, const char *name) {
        return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

static int field_lookup(const char *s, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (word_equal(s, len, fields[i].name))
                        return (int) i;
        return -1;
}

static int proto_lookup(const char *s, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(proto_names); i++)
                if (word_equal(s, len, proto_names[i].name))
                        return proto_names[i].proto;
        return -1;
}

/* ---- compiled form ------------------------------------------------------------------------ */

#define ACCEPT (-1)
#define REJECT (-2)

/* Up to two instructions per comparison (`port`, `addr`); jump targets are int16_t. */
_Static_assert(2 * FLOW_FILTER_MAX_NODES < INT16_MAX, "branch targets must fit int16_t");
/* Sets of at most this many members are scanned; larger ones use binary search. */
#define SET_LINEAR_MAX 8u

typedef enum InsnKind {
        INSN_EQ,
        INSN_LT,
        INSN_LE,
        INSN_GT,
        INSN_GE,
        INSN_SET_LINEAR,        /* pool[arg..arg+n): sorted values */
        INSN_SET_BSEARCH,       /* same, binary search */
        INSN_SET_BITMAP,        /* pool[arg..arg+4): 256-bit set for 8-bit fields */
        INSN_ADDR,              /* pool[arg...]: n address groups (see addr_in()) */
} InsnKind;

typedef struct Insn {
        uint8_t kind;           /* InsnKind */
        uint8_t load;           /* LoadKind */
        uint16_t off;           /* value or address offset in FlowRecord */
        uint16_t off_family;    /* addresses: family byte offset */
        int16_t jt, jf;         /* successors: instruction index, ACCEPT or REJECT */
        uint32_t n;
        uint64_t arg;           /* constant, or offset into the pool */
} Insn;

typedef enum NodeKind {
        NODE_AND,
        NODE_OR,
        NODE_NOT,
        NODE_CMP,
} NodeKind;

typedef enum CmpOp {
        CMP_EQ,
        CMP_LT,
        CMP_LE,
        CMP_GT,
        CMP_GE,
        CMP_SET,                /* integer set: n sorted values at pool[arg] */
        CMP_ADDR,               /* address set: n groups at pool[arg] */
} CmpOp;

typedef struct Node {
        uint8_t kind;           /* NodeKind */
        uint8_t field;          /* FieldId */
        uint8_t op;             /* CmpOp */
        bool negate;            /* `!=` and `not in`: the comparison's result is inverted */
        int32_t child;          /* AND/OR/NOT: first child; AND/OR keep them last-to-first */
        int32_t next;           /* next sibling, -1 at the end */
        uint32_t n;
        uint64_t arg;
} Node;

/*
 * Address groups in the pool: one header word (family | prefix_len << 8 | count << 16), two
 * mask words, then count pairs of masked value words, sorted. Members of one set that share
 * family and prefix length form one group, so a lookup masks the record's address once per
 * group and binary-searches. IPv4 masks leave out the ::ffff: prefix: the family byte decides.
 */
#define GROUP_HEADER(family, plen, count) \
        ((uint64_t) (family) | (uint64_t) (plen) << 8 | (uint64_t) (count) << 16)
#define GROUP_FAMILY(h) ((uint8_t) ((h) & 0xff))
#define GROUP_PLEN(h) ((unsigned) (((h) >> 8) & 0xff))
#define GROUP_COUNT(h) ((uint32_t) ((h) >> 16))

struct FlowFilter {
        char *expr;
        Insn *insns;
        int32_t entry;          /* first instruction, or ACCEPT for match-all */
        Node *nodes;
        int32_t root;           /* -1 for match-all */
        uint64_t *pool;
};

/* ---- evaluation --------------------------------------------------------------------------- */

static inline uint64_t load_int(const Insn *in, const FlowRecord *r) {
        const uint8_t *p = (const uint8_t *) r + in->off;

        switch (in->load) {
        case LOAD_U8:
                return *p;
        case LOAD_U16: {
                uint16_t v;
                memcpy(&v, p, sizeof(v));
                return v;
        }
        case LOAD_U32: {
                uint32_t v;
                memcpy(&v, p, sizeof(v));
                return v;
        }
        case LOAD_U64: {
                uint64_t v;
                memcpy(&v, p, sizeof(v));
                return v;
        }
        case LOAD_DURATION:
                return r->end_ms >= r->start_ms ? r->end_ms - r->start_ms : 0;
        case LOAD_FLOWS:
                return r->flows ? r->flows : 1;
        }
        return 0;
}

static bool set_bsearch(const uint64_t *s, uint32_t n, uint64_t v) {
        uint32_t lo = 0, hi = n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (s[mid] == v)
                        return true;
                if (s[mid] < v)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

static bool pair_bsearch(const uint64_t *s, uint32_t n, uint64_t v0, uint64_t v1) {
        uint32_t lo = 0, hi = n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                const uint64_t *e = s + 2 * mid;
                if (e[0] == v0 && e[1] == v1)
                        return true;
                if (e[0] < v0 || (e[0] == v0 && e[1] < v1))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

static bool addr_in(const uint64_t *g, uint32_t ngroups, const FlowRecord *r,
                    const Insn *in) {
        const uint8_t *a = (const uint8_t *) r + in->off;
        uint8_t family = *((const uint8_t *) r + in->off_family);
        uint64_t a0, a1;

        memcpy(&a0, a, 8);
        memcpy(&a1, a + 8, 8);
        for (uint32_t i = 0; i < ngroups; i++) {
                uint64_t h = g[0];
                uint32_t count = GROUP_COUNT(h);

                if (GROUP_FAMILY(h) == family &&
                    pair_bsearch(g + 3, count, a0 & g[1], a1 & g[2]))
                        return true;
                g += 3 + 2 * (size_t) count;
        }
        return false;
}

static inline bool insn_test(const uint64_t *pool, const Insn *in, const FlowRecord *r) {
        switch (in->kind) {
        case INSN_EQ:
                return load_int(in, r) == in->arg;
        case INSN_LT:
                return load_int(in, r) < in->arg;
        case INSN_LE:
                return load_int(in, r) <= in->arg;
        case INSN_GT:
                return load_int(in, r) > in->arg;
        case INSN_GE:
                return load_int(in, r) >= in->arg;
        case INSN_SET_LINEAR: {
                const uint64_t *s = pool + in->arg;
                uint64_t v = load_int(in, r);
                for (uint32_t i = 0; i < in->n; i++)
                        if (s[i] >= v)
                                return s[i] == v;
                return false;
        }
        case INSN_SET_BSEARCH:
                return set_bsearch(pool + in->arg, in->n, load_int(in, r));
        case INSN_SET_BITMAP: {
                uint64_t v = load_int(in, r);   /* 8-bit fields only: v < 256 */
                return (pool[in->arg + (v >> 6)] >> (v & 63)) & 1;
        }
        case INSN_ADDR:
                return addr_in(pool + in->arg, in->n, r, in);
        }
        return false;
}

bool flow_filter_match(const FlowFilter *f, const FlowRecord *r) {
        int32_t pc;

        assert(f);
        assert(r);

        pc = f->entry;
        while (pc >= 0) {
                const Insn *in = &f->insns[pc];
                pc = insn_test(f->pool, in, r) ? in->jt : in->jf;
        }
        return pc == ACCEPT;
}

/* ---- lexer -------------------------------------------------------------------------------- */

typedef enum TokKind {
        TOK_END,
        TOK_LPAREN,
        TOK_RPAREN,
        TOK_COMMA,
        TOK_EQ,
        TOK_NE,
        TOK_LT,
        TOK_LE,
        TOK_GT,
        TOK_GE,
        TOK_AND,
        TOK_OR,
        TOK_NOT,
        TOK_IN,
        TOK_WORD,               /* field, protocol name, number or address */
} TokKind;

typedef struct Token {
        TokKind kind;
        size_t pos;             /* byte offset; the column is pos + 1 */
        size_t len;
} Token;

typedef struct Parser {
        const char *s;
        size_t len;
        size_t pos;             /* lexer position */
        Token tok;              /* current token */
        Node *nodes;
        uint32_t n_nodes;
        uint32_t n_ops;         /* comparisons + operators, capped by FLOW_FILTER_MAX_NODES */
        uint32_t n_insns;       /* instructions the program will need */
        uint64_t *pool;
        size_t n_pool, cap_pool;
        char *err;
} Parser;

static void parser_done(Parser *p) {
        free(p->nodes);
        free(p->pool);
        free(p->err);
}

_printf_(4, 5)
static int fail(Parser *p, int r, size_t pos, const char *fmt, ...) {
        char msg[768];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        free(p->err);
        p->err = config_errorf("column %zu: %s", pos + 1, msg);
        return p->err ? r : -ENOMEM;
}

static const char *tok_desc(const Parser *p, const Token *t, char *buf, size_t size) {
        size_t n = t->len;
        bool cut = n > 40;

        if (t->kind == TOK_END)
                return "end of expression";
        if (cut)
                n = 40;
        (void) snprintf(buf, size, "'%.*s%s'", (int) n, p->s + t->pos, cut ? "..." : "");
        return buf;
}

#define TOK_DESC(p, t) tok_desc((p), (t), (char[64]) {}, 64)

static bool is_word_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == ':' || c == '.';
}

static bool is_word_char(char c) {
        /* '-' for names like ipv6-icmp, '/' for CIDR prefix lengths */
        return is_word_start(c) || c == '-' || c == '/';
}

static int lex(Parser *p) {
        const char *s = p->s;
        size_t i = p->pos;
        Token t = {};

        while (i < p->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                              s[i] == '\f' || s[i] == '\v'))
                i++;
        t.pos = i;
        t.len = 1;
        if (i >= p->len) {
                t.kind = TOK_END;
                t.len = 0;
        } else {
                char c = s[i], d = i + 1 < p->len ? s[i + 1] : '\0';

                switch (c) {
                case '(':
                        t.kind = TOK_LPAREN;
                        break;
                case ')':
                        t.kind = TOK_RPAREN;
                        break;
                case ',':
                        t.kind = TOK_COMMA;
                        break;
                case '=':
                        if (d != '=')
                                return fail(p, -EINVAL, i, "unexpected '='; the equality "
                                            "operator is '=='");
                        t.kind = TOK_EQ;
                        t.len = 2;
                        break;
                case '!':
                        if (d == '=') {
                                t.kind = TOK_NE;
                                t.len = 2;
                        } else
                                t.kind = TOK_NOT;
                        break;
                case '<':
                        t.kind = d == '=' ? TOK_LE : TOK_LT;
                        t.len = d == '=' ? 2 : 1;
                        break;
                case '>':
                        t.kind = d == '=' ? TOK_GE : TOK_GT;
                        t.len = d == '=' ? 2 : 1;
                        break;
                case '&':
                        if (d != '&')
                                return fail(p, -EINVAL, i, "unexpected '&'; did you mean "
                                            "'&&' (and)?");
                        t.kind = TOK_AND;
                        t.len = 2;
                        break;
                case '|':
                        if (d != '|')
                                return fail(p, -EINVAL, i, "unexpected '|'; did you mean "
                                            "'||' (or)?");
                        t.kind = TOK_OR;
                        t.len = 2;
                        break;
                default:
                        if (!is_word_start(c)) {
                                if (c > ' ' && c < 127)
                                        return fail(p, -EINVAL, i, "unexpected character '%c'",
                                                    c);
                                return fail(p, -EINVAL, i, "unexpected byte 0x%02x",
                                            (unsigned) (unsigned char) c);
                        }
                        while (i + t.len < p->len && is_word_char(s[i + t.len]))
                                t.len++;
                        t.kind = TOK_WORD;
                        if (word_equal(s + i, t.len, "and"))
                                t.kind = TOK_AND;
                        else if (word_equal(s + i, t.len, "or"))
                                t.kind = TOK_OR;
                        else if (word_equal(s + i, t.len, "not"))
                                t.kind = TOK_NOT;
                        else if (word_equal(s + i, t.len, "in"))
                                t.kind = TOK_IN;
                }
        }
        p->tok = t;
        p->pos = t.pos + t.len;
        return 0;
}

/* ---- values ------------------------------------------------------------------------------- */

typedef enum WordClass {
        WORD_NAME,
        WORD_NUMBER,
        WORD_ADDR,
} WordClass;

/* Addresses contain ':' or '.' (or '/'), numbers start with a digit, anything else is a name. */
static WordClass word_class(const char *s, size_t len) {
        if (memchr(s, ':', len) || memchr(s, '.', len) || memchr(s, '/', len))
                return WORD_ADDR;
        if (s[0] >= '0' && s[0] <= '9')
                return WORD_NUMBER;
        return WORD_NAME;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Return: 0, -EINVAL when not a number, -ERANGE when above UINT64_MAX. */
static int parse_number(const char *s, size_t len, uint64_t *ret) {
        unsigned base = 10;
        uint64_t v = 0;
        size_t i = 0;

        if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                i = 2;
        }
        if (i >= len)
                return -EINVAL;
        for (; i < len; i++) {
                int d = hex_digit(s[i]);
                if (d < 0 || (unsigned) d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - (unsigned) d) / base)
                        return -ERANGE;
                v = v * base + (unsigned) d;
        }
        *ret = v;
        return 0;
}

typedef struct AddrMember {
        uint8_t family;
        uint8_t plen;           /* as written: 0..32 or 0..128 */
        uint64_t v[2];          /* masked address */
} AddrMember;

static void prefix_mask(uint8_t family, unsigned plen, uint8_t mask[static 16]) {
        unsigned start = family == 4 ? 96 : 0;

        memset(mask, 0, 16);
        for (unsigned b = start; b < start + plen; b++)
                mask[b / 8] |= (uint8_t) (0x80u >> (b % 8));
}

static int parse_addr(Parser *p, const Token *t, AddrMember *ret) {
        const char *s = p->s + t->pos, *slash = memchr(s, '/', t->len);
        size_t alen = slash ? (size_t) (slash - s) : t->len;
        bool v6 = memchr(s, ':', alen) != NULL;
        unsigned maxlen = v6 ? 128 : 32, plen = maxlen;
        char buf[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
        uint8_t a[16] = {}, mask[16];

        if (alen == 0 || alen >= sizeof(buf))
                return fail(p, -EINVAL, t->pos, "%s is not a valid IPv%c address",
                            TOK_DESC(p, t), v6 ? '6' : '4');
        memcpy(buf, s, alen);
        buf[alen] = '\0';
        if (v6) {
                if (inet_pton(AF_INET6, buf, a) != 1)
                        return fail(p, -EINVAL, t->pos, "'%s' is not a valid IPv6 address",
                                    buf);
        } else {
                uint8_t v4[4];
                if (inet_pton(AF_INET, buf, v4) != 1)
                        return fail(p, -EINVAL, t->pos, "'%s' is not a valid IPv4 address "
                                    "(expected a.b.c.d, or an IPv6 address with ':')", buf);
                flow_addr_set_v4(a, v4);
        }

        if (slash) {
                const char *l = slash + 1;
                size_t llen = t->len - alen - 1;
                unsigned n = 0;
                bool ok = llen >= 1 && llen <= 3;

                for (size_t k = 0; ok && k < llen; k++) {
                        ok = l[k] >= '0' && l[k] <= '9';
                        n = n * 10 + (unsigned) (l[k] - '0');
                }
                if (!ok || n > maxlen)
                        return fail(p, -EINVAL, (size_t) (l - p->s),
                                    "bad prefix length '/%.*s' in %s: must be 0..%u for IPv%c",
                                    (int) MIN(llen, 20), l, TOK_DESC(p, t), maxlen,
                                    v6 ? '6' : '4');
                plen = n;
        }

        prefix_mask(v6 ? 6 : 4, plen, mask);
        for (unsigned i = v6 ? 0 : 12; i < 16; i++)
                if (a[i] & ~mask[i]) {
                        uint8_t m[16];
                        for (unsigned j = 0; j < 16; j++)
                                m[j] = a[j] & mask[j];
                        (void) flow_addr_format(m, v6 ? 6 : 4, net, sizeof(net));
                        return fail(p, -EINVAL, t->pos, "%s has host bits set beyond the /%u "
                                    "prefix (did you mean %s/%u?)", TOK_DESC(p, t), plen, net,
                                    plen);
                }
        for (unsigned i = 0; i < 16; i++)
                a[i] &= mask[i];

        *ret = (AddrMember) { .family = v6 ? 6 : 4, .plen = (uint8_t) plen };
        memcpy(ret->v, a, 16);
        return 0;
}

/* One integer value for field @fd from the current token, range-checked. */
static int parse_int_value(Parser *p, const Field *fd, uint64_t *ret) {
        const Token *t = &p->tok;
        const char *s = p->s + t->pos;
        uint64_t v;
        int r, proto;

        if (t->kind != TOK_WORD)
                return fail(p, -EINVAL, t->pos, "expected a number for %s, found %s", fd->name,
                            TOK_DESC(p, t));
        switch (word_class(s, t->len)) {
        case WORD_ADDR:
                return fail(p, -EINVAL, t->pos, "%s is an integer field; found address %s",
                            fd->name, TOK_DESC(p, t));
        case WORD_NAME:
                proto = proto_lookup(s, t->len);
                if (fd == &fields[F_PROTO]) {
                        if (proto < 0)
                                return fail(p, -EINVAL, t->pos, "unknown protocol name %s "
                                            "(known: icmp, igmp, tcp, udp, ipv6, gre, esp, ah, "
                                            "icmp6, ipv6-icmp, ospf, pim, vrrp, l2tp, sctp, or "
                                            "use a number)", TOK_DESC(p, t));
                        *ret = (uint64_t) proto;
                        return 0;
                }
                if (proto >= 0)
                        return fail(p, -EINVAL, t->pos, "%s is a protocol name, only valid for "
                                    "proto; %s expects a number", TOK_DESC(p, t), fd->name);
                if (field_lookup(s, t->len) >= 0)
                        return fail(p, -EINVAL, t->pos, "expected a number for %s, found field "
                                    "%s (fields can only be compared with constants)",
                                    fd->name, TOK_DESC(p, t));
                return fail(p, -EINVAL, t->pos, "expected a number for %s, found %s", fd->name,
                            TOK_DESC(p, t));
        case WORD_NUMBER:
                break;
        }

        r = parse_number(s, t->len, &v);
        if (r == -ERANGE || (r == 0 && v > fd->max))
                return fail(p, -EINVAL, t->pos, "%.*s is out of range for %s (0..%llu)",
                            (int) MIN(t->len, 40), s, fd->name, (unsigned long long) fd->max);
        if (r < 0)
                return fail(p, -EINVAL, t->pos, "%s is not a number (expected decimal digits or "
                            "0x followed by hex digits)", TOK_DESC(p, t));
        *ret = v;
        return 0;
}

static int parse_addr_value(Parser *p, const Field *fd, AddrMember *ret) {
        const Token *t = &p->tok;

        if (t->kind != TOK_WORD)
                return fail(p, -EINVAL, t->pos, "expected an address for %s, found %s", fd->name,
                            TOK_DESC(p, t));
        if (word_class(p->s + t->pos, t->len) != WORD_ADDR)
                return fail(p, -EINVAL, t->pos, "%s is an address field; expected an IPv4 or "
                            "IPv6 address or a CIDR prefix, found %s", fd->name, TOK_DESC(p, t));
        return parse_addr(p, t, ret);
}

/* ---- parser ------------------------------------------------------------------------------- */

static int pool_reserve(Parser *p, size_t n, size_t *ret_off) {
        if (p->n_pool + n > p->cap_pool) {
                size_t cap = MAX(p->cap_pool * 2, p->n_pool + n);
                uint64_t *np = realloc(p->pool, cap * sizeof(uint64_t));
                if (!np)
                        return -ENOMEM;
                p->pool = np;
                p->cap_pool = cap;
        }
        *ret_off = p->n_pool;
        p->n_pool += n;
        return 0;
}

static int count_op(Parser *p, size_t pos) {
        if (p->n_ops >= FLOW_FILTER_MAX_NODES)
                return fail(p, -E2BIG, pos, "expression has more than %u comparisons and "
                            "operators", FLOW_FILTER_MAX_NODES);
        p->n_ops++;
        return 0;
}

/* Nodes never outnumber counted operators (and/or chains are n-ary), so this cannot fail. */
static int32_t node_new(Parser *p, NodeKind kind) {
        int32_t i = (int32_t) p->n_nodes++;

        assert(p->n_nodes <= FLOW_FILTER_MAX_NODES);
        p->nodes[i] = (Node) { .kind = kind, .child = -1, .next = -1 };
        return i;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int cmp_addr_member(const void *a, const void *b) {
        const AddrMember *x = a, *y = b;

        if (x->family != y->family)
                return x->family < y->family ? -1 : 1;
        if (x->plen != y->plen)
                return x->plen < y->plen ? -1 : 1;
        if (x->v[0] != y->v[0])
                return x->v[0] < y->v[0] ? -1 : 1;
        if (x->v[1] != y->v[1])
                return x->v[1] < y->v[1] ? -1 : 1;
        return 0;
}

static int store_int_set(Parser *p, Node *n, uint64_t *vals, size_t count) {
        size_t m = 0, off;
        int r;

        qsort(vals, count, sizeof(*vals), cmp_u64);
        for (size_t i = 0; i < count; i++)
                if (m == 0 || vals[m - 1] != vals[i])
                        vals[m++] = vals[i];
        if (m == 1) {
                n->op = CMP_EQ;
                n->arg = vals[0];
                return 0;
        }
        r = pool_reserve(p, m, &off);
        if (r < 0)
                return r;
        memcpy(p->pool + off, vals, m * sizeof(*vals));
        n->op = CMP_SET;
        n->n = (uint32_t) m;
        n->arg = off;
        return 0;
}

static int store_addr_set(Parser *p, Node *n, AddrMember *members, size_t count) {
        size_t m = 0, words = 0, off;
        uint32_t groups = 0;
        int r;

        qsort(members, count, sizeof(*members), cmp_addr_member);
        for (size_t i = 0; i < count; i++)
                if (m == 0 || cmp_addr_member(&members[m - 1], &members[i]) != 0)
                        members[m++] = members[i];
        for (size_t i = 0; i < m; i++) {
                if (i == 0 || members[i].family != members[i - 1].family ||
                    members[i].plen != members[i - 1].plen) {
                        groups++;
                        words += 3;
                }
                words += 2;
        }
        r = pool_reserve(p, words, &off);
        if (r < 0)
                return r;

        n->op = CMP_ADDR;
        n->n = groups;
        n->arg = off;
        for (size_t i = 0, head = 0; i < m; i++) {
                uint64_t *w = p->pool;
                if (i == 0 || members[i].family != members[i - 1].family ||
                    members[i].plen != members[i - 1].plen) {
                        uint8_t mask[16];

                        head = off;
                        prefix_mask(members[i].family, members[i].plen, mask);
                        w[off] = GROUP_HEADER(members[i].family, members[i].plen, 0);
                        memcpy(&w[off + 1], mask, 16);
                        off += 3;
                }
                w[head] += (uint64_t) 1 << 16;
                w[off++] = members[i].v[0];
                w[off++] = members[i].v[1];
        }
        return 0;
}

static int parse_or(Parser *p, unsigned depth, int32_t *ret);

static int parse_cmp(Parser *p, int32_t *ret) {
        _cleanup_free_ uint64_t *vals = NULL;
        _cleanup_free_ AddrMember *addrs = NULL;
        Token ft = p->tok, opt;
        size_t count = 0, cap = 0;
        bool negate = false, is_set = false;
        CmpOp op = CMP_EQ;
        const Field *fd;
        int32_t i;
        int fi, r;

        if (ft.kind != TOK_WORD)
                return fail(p, -EINVAL, ft.pos, "expected a field name, 'not' or '(', found %s",
                            TOK_DESC(p, &ft));
        fi = field_lookup(p->s + ft.pos, ft.len);
        if (fi < 0) {
                if (word_class(p->s + ft.pos, ft.len) != WORD_NAME ||
                    proto_lookup(p->s + ft.pos, ft.len) >= 0)
                        return fail(p, -EINVAL, ft.pos, "expected a field name, found value %s "
                                    "(write the field first, e.g. 'proto == tcp')",
                                    TOK_DESC(p, &ft));
                return fail(p, -EINVAL, ft.pos, "unknown field %s (fields: src_addr, dst_addr, "
                            "exporter, addr, src_port, dst_port, port, proto, tcp_flags, tos, "
                            "octets, packets, flows, start_ms, end_ms, duration_ms, ingress_if, "
                            "egress_if, src_as, dst_as, odid, vlan, template_id, direction, "
                            "end_reason, sampling, family)", TOK_DESC(p, &ft));
        }
        fd = &fields[fi];
        r = count_op(p, ft.pos);
        if (r < 0)
                return r;

        r = lex(p);
        if (r < 0)
                return r;
        opt = p->tok;
        switch (opt.kind) {
        case TOK_EQ:
                break;
        case TOK_NE:
                negate = true;
                break;
        case TOK_LT:
                op = CMP_LT;
                break;
        case TOK_LE:
                op = CMP_LE;
                break;
        case TOK_GT:
                op = CMP_GT;
                break;
        case TOK_GE:
                op = CMP_GE;
                break;
        case TOK_NOT:
                r = lex(p);
                if (r < 0)
                        return r;
                if (p->tok.kind != TOK_IN)
                        return fail(p, -EINVAL, p->tok.pos, "expected 'in' after '%s %.*s', "
                                    "found %s", fd->name, (int) opt.len, p->s + opt.pos,
                                    TOK_DESC(p, &p->tok));
                negate = true;
                is_set = true;
                break;
        case TOK_IN:
                is_set = true;
                break;
        default:
                return fail(p, -EINVAL, opt.pos, "expected an operator (==, !=, <, <=, >, >=, "
                            "in, not in) after %s, found %s", fd->name, TOK_DESC(p, &opt));
        }
        if (fd->kind == FIELD_ADDR && op != CMP_EQ)
                return fail(p, -EINVAL, opt.pos, "'%.*s' does not apply to address field %s "
                            "(use ==, !=, in or not in)", (int) opt.len, p->s + opt.pos,
                            fd->name);
        r = lex(p);
        if (r < 0)
                return r;

        /* One value, or with `in` a parenthesized set (a bare value is a set of one). */
        bool paren = is_set && p->tok.kind == TOK_LPAREN;
        Token open = p->tok;
        if (paren) {
                r = lex(p);
                if (r < 0)
                        return r;
                if (p->tok.kind == TOK_RPAREN)
                        return fail(p, -EINVAL, p->tok.pos, "empty set: expected at least one "
                                    "value for %s after '('", fd->name);
        }
        if (!is_set && p->tok.kind == TOK_END)
                return fail(p, -EINVAL, p->tok.pos, "expected a value after '%s %.*s', found "
                            "end of expression", fd->name, (int) opt.len, p->s + opt.pos);
        for (;;) {
                if (count >= FLOW_FILTER_MAX_SET)
                        return fail(p, -E2BIG, p->tok.pos, "the set opened at column %zu has "
                                    "more than %u members", open.pos + 1, FLOW_FILTER_MAX_SET);
                if (count == cap) {
                        cap = cap ? cap * 2 : 4;
                        if (fd->kind == FIELD_ADDR) {
                                AddrMember *na = reallocarray(addrs, cap, sizeof(*addrs));
                                if (!na)
                                        return -ENOMEM;
                                addrs = na;
                        } else {
                                uint64_t *nv = reallocarray(vals, cap, sizeof(*vals));
                                if (!nv)
                                        return -ENOMEM;
                                vals = nv;
                        }
                }
                if (fd->kind == FIELD_ADDR)
                        r = parse_addr_value(p, fd, &addrs[count]);
                else
                        r = parse_int_value(p, fd, &vals[count]);
                if (r < 0)
                        return r;
                count++;
                r = lex(p);
                if (r < 0)
                        return r;
                if (!paren)
                        break;
                if (p->tok.kind == TOK_RPAREN) {
                        r = lex(p);
                        if (r < 0)
                                return r;
                        break;
                }
                if (p->tok.kind != TOK_COMMA)
                        return fail(p, -EINVAL, p->tok.pos, "expected ',' or ')' to continue "
                                    "the set opened at column %zu, found %s", open.pos + 1,
                                    TOK_DESC(p, &p->tok));
                r = lex(p);
                if (r < 0)
                        return r;
        }

        i = node_new(p, NODE_CMP);
        p->nodes[i].field = (uint8_t) fi;
        p->nodes[i].negate = negate;
        if (fd->kind == FIELD_ADDR)
                r = store_addr_set(p, &p->nodes[i], addrs, count);
        else if (op != CMP_EQ) {
                p->nodes[i].op = op;
                p->nodes[i].arg = vals[0];
        } else
                r = store_int_set(p, &p->nodes[i], vals, count);
        if (r < 0)
                return r;
        p->n_insns += fd->either[0] >= 0 ? 2 : 1;
        *ret = i;
        return 0;
}

static int parse_unary(Parser *p, unsigned depth, int32_t *ret) {
        Token t = p->tok;
        int32_t i, child;
        int r;

        if (t.kind != TOK_NOT && t.kind != TOK_LPAREN)
                return parse_cmp(p, ret);

        if (depth >= FLOW_FILTER_MAX_DEPTH)
                return fail(p, -E2BIG, t.pos, "expression nests parentheses and 'not' more than "
                            "%u levels deep", FLOW_FILTER_MAX_DEPTH);
        r = lex(p);
        if (r < 0)
                return r;
        if (t.kind == TOK_NOT) {
                r = count_op(p, t.pos);
                if (r < 0)
                        return r;
                r = parse_unary(p, depth + 1, &child);
                if (r < 0)
                        return r;
                i = node_new(p, NODE_NOT);
                p->nodes[i].child = child;
                *ret = i;
                return 0;
        }

        r = parse_or(p, depth + 1, ret);
        if (r < 0)
                return r;
        if (p->tok.kind != TOK_RPAREN)
                return fail(p, -EINVAL, p->tok.pos, "expected ')' to close the '(' at column "
                            "%zu, found %s", t.pos + 1, TOK_DESC(p, &p->tok));
        return lex(p);
}

/* and := unary { "and" unary }, or := and { "or" and }: both build one n-ary node. */
static int parse_chain(Parser *p, unsigned depth, TokKind sep, int32_t *ret) {
        int32_t first, chain, c;
        int r;

        r = sep == TOK_OR ? parse_chain(p, depth, TOK_AND, &first) :
                            parse_unary(p, depth, &first);
        if (r < 0)
                return r;
        if (p->tok.kind != sep) {
                *ret = first;
                return 0;
        }
        chain = node_new(p, sep == TOK_OR ? NODE_OR : NODE_AND);
        p->nodes[chain].child = first;
        while (p->tok.kind == sep) {
                r = count_op(p, p->tok.pos);
                if (r < 0)
                        return r;
                r = lex(p);
                if (r < 0)
                        return r;
                r = sep == TOK_OR ? parse_chain(p, depth, TOK_AND, &c) :
                                    parse_unary(p, depth, &c);
                if (r < 0)
                        return r;
                p->nodes[c].next = p->nodes[chain].child;      /* prepend: last child first */
                p->nodes[chain].child = c;
        }
        *ret = chain;
        return 0;
}

static int parse_or(Parser *p, unsigned depth, int32_t *ret) {
        return parse_chain(p, depth, TOK_OR, ret);
}

/* ---- code generation ---------------------------------------------------------------------- */

typedef struct Gen {
        const Node *nodes;
        Insn *insns;
        uint32_t n;
} Gen;

static int32_t emit(Gen *g, const Node *n, const Field *fd, int32_t jt, int32_t jf) {
        Insn *in = &g->insns[g->n];

        *in = (Insn) {
                .load = fd->load,
                .off = fd->off,
                .off_family = fd->off_family,
                .jt = (int16_t) jt,
                .jf = (int16_t) jf,
                .n = n->n,
                .arg = n->arg,
        };
        switch ((CmpOp) n->op) {
        case CMP_EQ:
                in->kind = INSN_EQ;
                break;
        case CMP_LT:
                in->kind = INSN_LT;
                break;
        case CMP_LE:
                in->kind = INSN_LE;
                break;
        case CMP_GT:
                in->kind = INSN_GT;
                break;
        case CMP_GE:
                in->kind = INSN_GE;
                break;
        case CMP_SET:
                in->kind = n->n <= SET_LINEAR_MAX ? INSN_SET_LINEAR : INSN_SET_BSEARCH;
                break;
        case CMP_ADDR:
                in->kind = INSN_ADDR;
                break;
        }
        return (int32_t) g->n++;
}

/* Emits @idx so that it continues at @t when true and @f when false; returns its entry. */
static int32_t gen(Gen *g, int32_t idx, int32_t t, int32_t f) {
        const Node *n = &g->nodes[idx];
        const Field *fd;
        int32_t target;

        switch ((NodeKind) n->kind) {
        case NODE_AND:
                /* children are stored last-to-first, which is the order back-to-front emission
                 * needs: each earlier child falls through to the entry of the next one */
                target = t;
                for (int32_t c = n->child; c >= 0; c = g->nodes[c].next)
                        target = gen(g, c, target, f);
                return target;
        case NODE_OR:
                target = f;
                for (int32_t c = n->child; c >= 0; c = g->nodes[c].next)
                        target = gen(g, c, t, target);
                return target;
        case NODE_NOT:
                return gen(g, n->child, f, t);
        case NODE_CMP:
                break;
        }

        if (n->negate) {
                int32_t tmp = t;
                t = f;
                f = tmp;
        }
        fd = &fields[n->field];
        if (fd->either[0] < 0)
                return emit(g, n, fd, t, f);
        /* either side: src matches, or else dst matches */
        target = emit(g, n, &fields[fd->either[1]], t, f);
        return emit(g, n, &fields[fd->either[0]], t, target);
}

/* Turns sets over 8-bit fields into 256-bit bitmaps (needs pool space, so done here). */
static int gen_bitmaps(Parser *p, Insn *insns, uint32_t n) {
        for (uint32_t i = 0; i < n; i++) {
                Insn *in = &insns[i];
                const uint64_t *vals;
                uint64_t bm[4] = {};
                size_t off;
                int r;

                if ((in->kind != INSN_SET_LINEAR && in->kind != INSN_SET_BSEARCH) ||
                    in->load != LOAD_U8)
                        continue;
                vals = p->pool + in->arg;
                for (uint32_t k = 0; k < in->n; k++)
                        bm[vals[k] >> 6] |= UINT64_C(1) << (vals[k] & 63);
                r = pool_reserve(p, 4, &off);
                if (r < 0)
                        return r;
                memcpy(p->pool + off, bm, sizeof(bm));
                in->kind = INSN_SET_BITMAP;
                in->arg = off;
        }
        return 0;
}

/* ---- public API --------------------------------------------------------------------------- */

FlowFilter *flow_filter_free(FlowFilter *f) {
        if (!f)
                return NULL;
        free(f->expr);
        free(f->insns);
        free(f->nodes);
        free(f->pool);
        free(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(FlowFilter *, flow_filter_free);

static int compile(Parser *p, const char *expr, FlowFilter *f) {
        int32_t root;
        Gen g;
        int r;

        if (p->len > FLOW_FILTER_MAX_LEN)
                return fail(p, -E2BIG, FLOW_FILTER_MAX_LEN, "expression is longer than %u "
                            "bytes", FLOW_FILTER_MAX_LEN);
        r = lex(p);
        if (r < 0)
                return r;
        if (p->tok.kind == TOK_END) {
                f->expr = strdup("");
                return f->expr ? 0 : -ENOMEM;
        }

        p->nodes = calloc(FLOW_FILTER_MAX_NODES, sizeof(Node));
        if (!p->nodes)
                return -ENOMEM;
        r = parse_or(p, 0, &root);
        if (r < 0)
                return r;
        if (p->tok.kind == TOK_RPAREN)
                return fail(p, -EINVAL, p->tok.pos, "unbalanced ')': no '(' is open here");
        if (p->tok.kind != TOK_END)
                return fail(p, -EINVAL, p->tok.pos, "expected 'and', 'or' or end of expression "
                            "after a complete comparison, found %s", TOK_DESC(p, &p->tok));

        f->insns = calloc(p->n_insns, sizeof(Insn));
        if (!f->insns)
                return -ENOMEM;
        g = (Gen) { .nodes = p->nodes, .insns = f->insns };
        f->entry = gen(&g, root, ACCEPT, REJECT);
        assert(g.n == p->n_insns);
        r = gen_bitmaps(p, f->insns, g.n);
        if (r < 0)
                return r;

        f->expr = strndup(expr, p->len);
        if (!f->expr)
                return -ENOMEM;
        f->root = root;
        f->nodes = TAKE_PTR(p->nodes);
        f->pool = TAKE_PTR(p->pool);
        return 0;
}

int flow_filter_compile(const char *expr, FlowFilter **ret, char **reterr) {
        _cleanup_(flow_filter_freep) FlowFilter *f = NULL;
        _cleanup_(parser_done) Parser p = {};
        int r;

        assert(ret);

        if (!expr)
                expr = "";
        p.s = expr;
        p.len = strnlen(expr, FLOW_FILTER_MAX_LEN + 1);
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->entry = ACCEPT;
        f->root = -1;

        r = compile(&p, expr, f);
        if (r < 0) {
                /* p.err is set for -EINVAL and -E2BIG, and NULL for -ENOMEM */
                if (reterr && p.err)
                        *reterr = TAKE_PTR(p.err);
                return r;
        }
        *ret = TAKE_PTR(f);
        return 0;
}

const char *flow_filter_expr(const FlowFilter *f) {
        assert(f);
        return f->expr;
}

bool flow_filter_is_all(const FlowFilter *f) {
        assert(f);
        return f->root < 0;
}

/* ---- pruning ------------------------------------------------------------------------------ */

static bool probe_int(const FlowFilterProbe *probe, FieldId id, uint64_t v) {
        const Field *fd = &fields[id];

        if (fd->either[0] >= 0)
                return probe_int(probe, (FieldId) fd->either[0], v) ||
                       probe_int(probe, (FieldId) fd->either[1], v);
        switch ((ProbeKind) fd->probe) {
        case PROBE_PROTO:
                return !probe->proto || probe->proto(probe->userdata, (uint8_t) v);
        case PROBE_PORT:
                return !probe->port ||
                       probe->port(probe->userdata, (FlowFilterPortField) fd->probe_field,
                                   (uint16_t) v);
        case PROBE_NONE:
        case PROBE_ADDR:
                break;
        }
        return true;
}

static bool probe_addr(const FlowFilterProbe *probe, FieldId id, const uint8_t a[16],
                       uint8_t family, unsigned plen) {
        const Field *fd = &fields[id];

        if (fd->either[0] >= 0)
                return probe_addr(probe, (FieldId) fd->either[0], a, family, plen) ||
                       probe_addr(probe, (FieldId) fd->either[1], a, family, plen);
        return !probe->addr ||
               probe->addr(probe->userdata, (FlowFilterAddrField) fd->probe_field, a, family,
                           plen);
}

static bool may_cmp(const FlowFilter *f, const Node *n, const FlowFilterProbe *probe) {
        const uint64_t *w;

        if (n->negate)
                return true;
        switch ((CmpOp) n->op) {
        case CMP_EQ:
                return probe_int(probe, n->field, n->arg);
        case CMP_SET:
                for (uint32_t i = 0; i < n->n; i++)
                        if (probe_int(probe, n->field, f->pool[n->arg + i]))
                                return true;
                return false;
        case CMP_ADDR:
                w = f->pool + n->arg;
                for (uint32_t gi = 0; gi < n->n; gi++) {
                        uint64_t h = w[0];
                        uint32_t count = GROUP_COUNT(h);

                        for (uint32_t k = 0; k < count; k++) {
                                uint8_t a[16];

                                memcpy(a, &w[3 + 2 * k], 16);
                                if (GROUP_FAMILY(h) == 4)
                                        flow_addr_set_v4(a, a + 12);    /* as FlowRecord */
                                if (probe_addr(probe, n->field, a, GROUP_FAMILY(h),
                                               GROUP_PLEN(h)))
                                        return true;
                        }
                        w += 3 + 2 * (size_t) count;
                }
                return false;
        case CMP_LT:
        case CMP_LE:
        case CMP_GT:
        case CMP_GE:
                break;
        }
        return true;
}

static bool may_node(const FlowFilter *f, int32_t idx, const FlowFilterProbe *probe) {
        const Node *n = &f->nodes[idx];

        switch ((NodeKind) n->kind) {
        case NODE_AND:
                for (int32_t c = n->child; c >= 0; c = f->nodes[c].next)
                        if (!may_node(f, c, probe))
                                return false;
                return true;
        case NODE_OR:
                for (int32_t c = n->child; c >= 0; c = f->nodes[c].next)
                        if (may_node(f, c, probe))
                                return true;
                return false;
        case NODE_NOT:
                return true;
        case NODE_CMP:
                return may_cmp(f, n, probe);
        }
        return true;
}

bool flow_filter_may_match(const FlowFilter *f, const FlowFilterProbe *probe) {
        assert(f);

        if (f->root < 0 || !probe)
                return true;
        return may_node(f, f->root, probe);
}
