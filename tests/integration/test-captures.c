/* SPDX-License-Identifier: MIT */
/*
 * test-captures.c - replays the real exporter captures in shared/testdata/ipfix through the
 * collector's own decoding path (NetFlow v9 translation, IPFIX framing, Decoder, in-memory
 * TmplStore), in-process, and compares what it decodes with MANIFEST.tsv and SEQUENCES.tsv,
 * whose counts come from independent decoders (tshark, libfixbuf's ipfixDump).
 *
 * Datagrams are handled the way collector/worker.c handles UDP (udp_datagram/udp_message):
 * v9 is translated to one IPFIX message and fed with its init time, v10 datagrams are framed
 * with ipfix_frame() (several messages back to back are tolerated), and there is one Decoder
 * per (source address, source port, observation domain). Everything is replayed twice (see
 * ReplayMode): as the collector runs, decoders per file and one TmplStore shared by a
 * replayed sequence, so data files find earlier files' templates through the store as a
 * restarted session would; and without a store, with decoders kept for the whole replay,
 * which scopes templates to the UDP session exactly as tshark does.
 *
 * Every number asserted is either the manifest's, or, where the manifest's notes document
 * that the decoders disagree, a number decided below (OVERRIDES) with the reason. Where our
 * decoder itself falls short, the file is listed in KNOWN_FAILURES with what it decodes
 * today: the test fails if that changes, in either direction, so the list stays true.
 *
 * Usage: test-captures TESTDATA_DIR   (exit code 77, "skipped", when the directory is absent)
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "datagram.h"
#include "decoder.h"
#include "ipfix.h"
#include "log.h"
#include "netflow9.h"
#include "pcap-read.h"
#include "wire.h"

/* The collector's defaults (collector/collector-config.c). */
#define MAX_TEMPLATES 1024u
#define MAX_UNKNOWN_ELEMENTS 4096u
#define STORE_MAX_TEMPLATES 100000u

/* dat2pcap.py sends every .dat file from this exporter; the counts were made that way. */
static const uint8_t DAT_EXPORTER[4] = { 192, 0, 2, 1 };
#define DAT_EXPORTER_PORT 50000
/* An .ipfix file is one stream, like a TCP connection from this (made up) exporter. */
static const uint8_t FILE_EXPORTER[4] = { 192, 0, 2, 10 };

#define NONE (-1L)      /* "-" in the TSV files, or "keep the manifest's value" */

/* The numbers compared for every file. */
typedef enum What {
        W_RECORDS,      /* data records decoded: flows + options records */
        W_MISSING,      /* data sets dropped for an unknown template */
        W_MESSAGES,     /* IPFIX messages accepted (a v9 packet is one) */
        W_TEMPLATES,    /* template records accepted: learned + refreshed + withdrawn */
        W_ERRORS,       /* every error counter, see counts_errors() */
        _W_MAX,
} What;

static const char *const WHAT[_W_MAX] = { "records", "missing", "messages", "templates",
                                          "errors" };

/* ---- documented disagreements between the reference decoders ------------------------- */

/*
 * The manifest's notes list every file where tshark, ipfixDump, upstream's own tests and
 * the length-only walker (tools/struct_count.py, walker_data_records) disagree. For each,
 * the correct count is decided here; NONE keeps the manifest's number.
 */
typedef struct Override {
        const char *path;
        const char *sequence;   /* NULL: the file played alone; else a SEQUENCES.tsv name */
        bool store_only;        /* applies to REPLAY_STORE only (see ReplayMode) */
        long records;           /* data records, options records included */
        long missing;           /* data sets without a template */
        long messages;
        long templates;         /* template records, options templates included */
        const char *why;
} Override;

static const Override OVERRIDES[] = {
        /*
         * softflowd output captured with `nc -k`: three complete IPFIX messages (484+64+240
         * octets) in one payload. tshark treats the payload as one message and decodes only
         * the first; cut into one datagram per message it decodes 13 records (12 flows and
         * 1 options record), and so does the walker. The collector frames every message of a
         * datagram (worker.c udp_datagram: "tolerate several back to back"), so 3 messages
         * and 13 records are right.
         */
        { "logstash-codec-netflow/ipfix.dat", NULL, false, 13, NONE, 3, NONE,
          "3 IPFIX messages back to back; tshark decodes only the first" },
        { "logstash-codec-netflow/ipfix.dat", "IPFIX", false, 13, NONE, NONE, NONE,
          "3 IPFIX messages back to back; tshark decodes only the first" },
        /*
         * The v9 header's count says 2 records but the packet carries 5 flowsets: 2
         * templates (1024, 2048), options template 256, and one record each for 256 (options
         * data), 2048 and 1024. tshark honours the count and stops after the 2 templates.
         * RFC 3954 defines count as the number of records, yet exporters get it wrong so often
         * that collectors walk flowsets by their lengths, as the walker and our translator do.
         * Every flowset is well formed and fits its template exactly (plus padding), so 3
         * templates and 3 records are right.
         */
        { "logstash-codec-netflow/netflow9_test_invalid01.dat", NULL, false, 3, NONE, NONE, 3,
          "v9 header count too small; flowsets walked by length" },
        { "logstash-codec-netflow/netflow9_test_invalid01.dat", "Netflow 9 invalid 01", false, 3,
          NONE, NONE, NONE, "v9 header count too small; flowsets walked by length" },
        /*
         * H3C exports IE 44 (sourceIPv4Prefix) with length 2. tshark 4.0 throws "Trying to
         * fetch an IPv4 address with length 2" at the first record and stops. The data
         * flowsets are well formed for the template (16 flowsets of 1 record each, as the
         * walker and upstream's spec count), so a collector that walks records by template
         * lengths decodes 16. libfixbuf warns "Illegal length 2" and still decodes them.
         */
        { "logstash-codec-netflow/netflow9_test_h3c_data3281.dat", "Netflow 9 H3C", false, 16,
          NONE, NONE, NONE, "IE 44 length 2: tshark stops at the first record" },
        /*
         * ipfixDump skips a 16-octet header-only message and reports 67 messages; tshark on the
         * file cut into messages counts 68. A message without sets is well formed for our
         * framing and decoder (it carries no records), so it counts: 68.
         */
        { "ipfixcol2/example_flows.ipfix", NULL, false, NONE, NONE, 68, NONE,
          "ipfixDump skips the empty message" },
        /*
         * Not in the manifest's notes, a deliberate difference of the collector: the exporter
         * 2001:db8:90::1 (ODID 33312) sends from port 61853, then from 65156 with a new
         * sequence-number stream. tshark scopes templates to the UDP 4-tuple, as RFC 7011 does
         * for a UDP Transport Session, so the two data sets for template 347 sent from 65156
         * (frames 11 and 21) are undecodable for it: 76 records, 6 missing sets. The
         * collector's template store is keyed by address + ODID without the port
         * (tmpl-store.h: "deliberately"), so those sets decode with template 347 from port
         * 61853: 1 + 8 more records (they fit its 144-octet records exactly: sets of 144 and
         * 1152 octets), 2 fewer missing sets. REPLAY_SESSION (no store) decodes tshark's
         * 76 and 6.
         */
        { "pmacct/112-IPFIXv10-CISCO-options-map-reassignment_traffic-00.pcap", NULL, true, 85, 4,
          NONE, NONE, "templates shared across source ports through the store, by design" },
};

/* ---- files documented as invalid on purpose: decode error counters are allowed -------- */

static const char *const DOCUMENTED_INVALID[] = {
        "logstash-codec-netflow/netflow9_test_invalid01.dat",
};

/* ---- known failures of our decoder ----------------------------------------------------- */

/*
 * Gaps in our decoder, not in the data: @expected is the correct number (after OVERRIDES),
 * @got what we decode today. The test asserts @got, so a fix shows up as a failure asking
 * for the entry to be removed.
 */
typedef struct KnownFailure {
        const char *path;
        const char *sequence;   /* NULL: the file played alone */
        const char *what;       /* a WHAT[] name */
        long expected, got;
        const char *reason;
} KnownFailure;

/*
 * None today. The v9 translator used to get 20 numbers of 8 files played alone and 11 of 6
 * sequences wrong: zero padding after the last flowset rejected the packet (Cisco ACI, Palo
 * Alto 8.1), and templates with vendor field types >= 32768 were dropped (Cisco ASA, Palo
 * Alto, nProbe); collector/netflow9.c now accepts the padding and translates the vendor
 * fields. The list ends with an entry whose path is NULL.
 */
static const KnownFailure KNOWN_FAILURES[] = {
        { .path = NULL },
};

/* ---- TSV tables --------------------------------------------------------------------- */

typedef struct Table {
        char *buf;
        char **header;
        size_t n_cols;
        char ***rows;
        size_t n_rows;
} Table;

static char *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (!f)
                return NULL;
        for (;;) {
                size_t n;
                if (cap - len < 65536) {
                        char *nb = realloc(buf, cap + 65536 + 1);
                        if (!nb) {
                                free(buf);
                                (void) fclose(f);
                                return NULL;
                        }
                        buf = nb;
                        cap += 65536;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                free(buf);
                (void) fclose(f);
                return NULL;
        }
        (void) fclose(f);
        buf[len] = '\0';
        *ret_len = len;
        return buf;
}

static size_t split(char *s, char sep, char ***ret) {
        size_t n = 1, i = 0;
        char **v;

        for (char *p = s; *p; p++)
                n += *p == sep;
        v = calloc(n + 1, sizeof(*v));
        assert_non_null(v);
        v[i++] = s;
        for (char *p = s; *p; p++)
                if (*p == sep) {
                        *p = '\0';
                        v[i++] = p + 1;
                }
        *ret = v;
        return n;
}

static void table_load(Table *t, const char *path) {
        char **lines;
        size_t len, n;

        memset(t, 0, sizeof(*t));
        t->buf = read_file(path, &len);
        if (!t->buf)
                fail_msg("cannot read %s: %s", path, strerror(errno));
        n = split(t->buf, '\n', &lines);
        while (n > 0 && lines[n - 1][0] == '\0')
                n--;
        assert_true(n >= 1);
        t->n_cols = split(lines[0], '\t', &t->header);
        t->rows = calloc(n, sizeof(*t->rows));
        assert_non_null(t->rows);
        for (size_t i = 1; i < n; i++) {
                size_t c = split(lines[i], '\t', &t->rows[t->n_rows]);
                if (c != t->n_cols)
                        fail_msg("%s line %zu: %zu columns, header has %zu", path, i + 1, c,
                                 t->n_cols);
                t->n_rows++;
        }
        free(lines);
}

static void table_done(Table *t) {
        for (size_t i = 0; i < t->n_rows; i++)
                free(t->rows[i]);
        free(t->rows);
        free(t->header);
        free(t->buf);
}

static size_t table_col(const Table *t, const char *name) {
        for (size_t i = 0; i < t->n_cols; i++)
                if (strcmp(t->header[i], name) == 0)
                        return i;
        fail_msg("column %s missing", name);
        return 0;
}

/* A count, or NONE for "-". */
static long parse_count(const char *s) {
        char *end;
        long v;

        if (strcmp(s, "-") == 0)
                return NONE;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0)
                fail_msg("bad count \"%s\"", s);
        return v;
}

typedef struct ManifestRow {
        const char *path, *format, *notes;
        long messages, template_records, data_records, undecodable, in_sequence, walker;
} ManifestRow;

typedef struct SequenceRow {
        const char *name;
        char **inputs;          /* points into a copy owned by the row */
        char *inputs_buf;
        size_t n_inputs;
        long *per_input;
        long undecodable;
} SequenceRow;

typedef struct Suite {
        char dir[PATH_MAX];
        Table manifest_tsv, sequences_tsv;
        ManifestRow *manifest;
        size_t n_manifest;
        SequenceRow *sequences;
        size_t n_sequences;
} Suite;

static const char *testdata_dir;

static const ManifestRow *manifest_find(const Suite *s, const char *path) {
        for (size_t i = 0; i < s->n_manifest; i++)
                if (strcmp(s->manifest[i].path, path) == 0)
                        return &s->manifest[i];
        return NULL;
}

static void suite_load(Suite *s) {
        char path[PATH_MAX + 32];
        Table *m = &s->manifest_tsv, *q = &s->sequences_tsv;

        (void) snprintf(path, sizeof(path), "%s/MANIFEST.tsv", s->dir);
        table_load(m, path);
        s->manifest = calloc(m->n_rows, sizeof(*s->manifest));
        assert_non_null(s->manifest);
        for (size_t i = 0; i < m->n_rows; i++) {
                char **r = m->rows[i];
                ManifestRow *row = &s->manifest[s->n_manifest++];
                row->path = r[table_col(m, "path")];
                row->format = r[table_col(m, "format")];
                row->notes = r[table_col(m, "notes")];
                row->messages = parse_count(r[table_col(m, "messages")]);
                row->template_records = parse_count(r[table_col(m, "template_records")]);
                row->data_records = parse_count(r[table_col(m, "data_records")]);
                row->undecodable = parse_count(r[table_col(m, "undecodable_data_sets")]);
                row->in_sequence = parse_count(r[table_col(m, "data_records_in_sequence")]);
                row->walker = parse_count(r[table_col(m, "walker_data_records")]);
        }

        (void) snprintf(path, sizeof(path), "%s/SEQUENCES.tsv", s->dir);
        table_load(q, path);
        s->sequences = calloc(q->n_rows, sizeof(*s->sequences));
        assert_non_null(s->sequences);
        for (size_t i = 0; i < q->n_rows; i++) {
                char **r = q->rows[i], **counts;
                SequenceRow *row = &s->sequences[s->n_sequences++];
                char *counts_buf;
                size_t n;

                row->name = r[table_col(q, "sequence")];
                row->inputs_buf = strdup(r[table_col(q, "inputs")]);
                counts_buf = strdup(r[table_col(q, "tshark_data_records_per_input")]);
                assert_non_null(row->inputs_buf);
                assert_non_null(counts_buf);
                row->n_inputs = split(row->inputs_buf, ' ', &row->inputs);
                n = split(counts_buf, ',', &counts);
                if (n != row->n_inputs)
                        fail_msg("sequence \"%s\": %zu inputs but %zu counts", row->name,
                                 row->n_inputs, n);
                row->per_input = calloc(n, sizeof(*row->per_input));
                assert_non_null(row->per_input);
                for (size_t j = 0; j < n; j++)
                        row->per_input[j] = parse_count(counts[j]);
                free(counts);
                free(counts_buf);
                row->undecodable =
                        parse_count(r[table_col(q, "tshark_undecodable_data_sets")]);
        }
}

static void suite_free(Suite *s) {
        for (size_t i = 0; i < s->n_sequences; i++) {
                free(s->sequences[i].inputs);
                free(s->sequences[i].inputs_buf);
                free(s->sequences[i].per_input);
        }
        free(s->sequences);
        free(s->manifest);
        table_done(&s->manifest_tsv);
        table_done(&s->sequences_tsv);
        free(s);
}

/* ---- replay through the collector's decoding path ------------------------------------- */

typedef struct Session {
        uint8_t addr[16];
        uint8_t family;
        uint16_t port;
        uint32_t odid;
        Decoder *dec;
} Session;

typedef struct Replay {
        CollectorCounters c;            /* the worker's counters, as worker.c keeps them */
        TmplStore *store;
        DecoderCtx *ctx;
        Session *sessions;
        size_t n_sessions;
        bool keep_sessions;             /* one session for a whole sequence, else per file */
        uint64_t sunk;                  /* flow records the reserve callback handed out */
        uint64_t produced;              /* sum of decoder_feed() results */
        uint64_t feed_errors;           /* decoder_feed() returned < 0 */
        uint64_t datagrams;
        FlowRecord slot;
        uint8_t nf9buf[NETFLOW9_MAX_OUTPUT];
} Replay;

/* What one file produced; the difference of the counters around it. */
typedef struct Counts {
        uint64_t datagrams, messages, flows, options, missing, templates;
        uint64_t err_decode, err_set, err_record, err_template, err_length, err_netflow9;
        uint64_t err_version, feed_errors, sunk;
        PcapSkips skips;
        int read_error;                 /* < 0: the file itself could not be read */
        uint64_t v[_W_MAX];             /* the compared numbers, derived from the above */
} Counts;

static FlowRecord *on_reserve(void *userdata) {
        Replay *rp = userdata;
        rp->sunk++;
        return &rp->slot;
}

/*
 * Two ways to replay, which must agree except where templates cross source ports:
 *  REPLAY_STORE:   the collector's configuration: a shared in-memory TmplStore, decoders
 *                  per file, so later files get their templates through the store.
 *  REPLAY_SESSION: no store; decoders live for the whole replay, so templates are scoped
 *                  to (address, port, ODID) exactly as RFC 7011 and tshark scope them.
 */
typedef enum ReplayMode { REPLAY_STORE, REPLAY_SESSION } ReplayMode;

static Replay *replay_new(ReplayMode mode) {
        DecoderLimits lim = { .max_templates = MAX_TEMPLATES,
                              .max_unknown_elements = MAX_UNKNOWN_ELEMENTS };
        Replay *rp = calloc(1, sizeof(*rp));

        assert_non_null(rp);
        if (mode == REPLAY_STORE)
                assert_int_equal(tmpl_store_new_memory(&rp->store, STORE_MAX_TEMPLATES), 0);
        rp->keep_sessions = mode == REPLAY_SESSION;
        assert_int_equal(decoder_ctx_new(&rp->ctx, &lim, rp->store, &rp->c, on_reserve, rp), 0);
        return rp;
}

static void replay_end_session(Replay *rp) {
        for (size_t i = 0; i < rp->n_sessions; i++)
                decoder_free(rp->sessions[i].dec);
        free(rp->sessions);
        rp->sessions = NULL;
        rp->n_sessions = 0;
}

static void replay_free(Replay *rp) {
        replay_end_session(rp);
        decoder_ctx_free(rp->ctx);
        tmpl_store_free(rp->store);
        free(rp);
}

static Decoder *replay_session(Replay *rp, const uint8_t addr[16], uint8_t family,
                               uint16_t port, uint32_t odid) {
        ExporterKey k = { .family = family, .odid = odid };
        Session *s;

        for (size_t i = 0; i < rp->n_sessions; i++) {
                s = &rp->sessions[i];
                if (s->family == family && s->port == port && s->odid == odid &&
                    memcmp(s->addr, addr, 16) == 0)
                        return s->dec;
        }
        s = realloc(rp->sessions, (rp->n_sessions + 1) * sizeof(*s));
        assert_non_null(s);
        rp->sessions = s;
        s = &rp->sessions[rp->n_sessions];
        memset(s, 0, sizeof(*s));
        memcpy(s->addr, addr, 16);
        s->family = family;
        s->port = port;
        s->odid = odid;
        memcpy(k.addr, addr, 16);
        assert_int_equal(decoder_new(rp->ctx, &k, &s->dec), 0);
        rp->n_sessions++;
        return s->dec;
}

/* worker.c udp_message() */
static void replay_message(Replay *rp, const uint8_t addr[16], uint8_t family, uint16_t port,
                           const uint8_t *msg, size_t len, uint64_t init_ms) {
        Decoder *d = replay_session(rp, addr, family, port, wire_read_u32(msg + 12));
        int r = decoder_feed(d, msg, len, init_ms);

        if (r < 0)
                rp->feed_errors++;
        else
                rp->produced += (uint64_t) r;
}

typedef struct ReplayOrigin {
        Replay *rp;
        const uint8_t *addr;
        uint8_t family;
        uint16_t port;
} ReplayOrigin;

static void on_replay_message(void *userdata, const uint8_t *msg, size_t len, uint64_t init_ms) {
        ReplayOrigin *o = userdata;
        replay_message(o->rp, o->addr, o->family, o->port, msg, len, init_ms);
}

/* The collector's own UDP dispatch (collector/datagram.c), as worker.c calls it. */
static void replay_datagram(Replay *rp, const uint8_t addr[16], uint8_t family, uint16_t port,
                            const uint8_t *p, size_t len) {
        ReplayOrigin o = { .rp = rp, .addr = addr, .family = family, .port = port };

        rp->datagrams++;
        rp->c.udp_datagrams++;
        (void) datagram_dispatch(p, len, IPFIX_MAX_MESSAGE, rp->nf9buf, &rp->c,
                                 on_replay_message, &o);
}

/* An IPFIX file: a stream of messages, framed as the collector frames TCP. */
static void replay_stream(Replay *rp, const uint8_t *p, size_t len) {
        uint8_t addr[16];

        flow_addr_set_v4(addr, FILE_EXPORTER);
        for (size_t off = 0; off < len;) {
                size_t mlen;
                int r = ipfix_frame(p + off, len - off, IPFIX_MAX_MESSAGE, &mlen);
                if (r <= 0) {
                        rp->c.err_length++;     /* bad framing or a truncated last message */
                        return;
                }
                replay_message(rp, addr, 4, 0, p + off, mlen, 0);
                off += mlen;
        }
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void replay_file(Replay *rp, const char *dir, const char *rel, Counts *ret) {
        CollectorCounters before = rp->c;
        uint64_t produced = rp->produced, sunk = rp->sunk, feed_errors = rp->feed_errors;
        uint64_t datagrams = rp->datagrams;
        char path[PATH_MAX + 32];
        uint8_t *buf;
        size_t len;

        memset(ret, 0, sizeof(*ret));
        (void) snprintf(path, sizeof(path), "%s/%s", dir, rel);
        buf = (uint8_t *) read_file(path, &len);
        if (!buf) {
                ret->read_error = -errno;
                return;
        }
        if (has_suffix(rel, ".dat")) {
                uint8_t addr[16];
                flow_addr_set_v4(addr, DAT_EXPORTER);
                replay_datagram(rp, addr, 4, DAT_EXPORTER_PORT, buf, len);
        } else if (has_suffix(rel, ".pcap")) {
                PcapReader r;
                PcapUdp u;
                int k;

                ret->read_error = pcap_reader_init(&r, buf, len);
                while (ret->read_error == 0 && (k = pcap_reader_next_udp(&r, &u)) != 0) {
                        uint8_t addr[16];
                        if (k < 0) {
                                ret->read_error = k;
                                break;
                        }
                        if (u.family == 4)
                                flow_addr_set_v4(addr, u.src);
                        else
                                memcpy(addr, u.src, 16);
                        replay_datagram(rp, addr, u.family, u.sport, u.payload, u.len);
                }
                ret->skips = r.skips;
        } else if (has_suffix(rel, ".ipfix")) {
                replay_stream(rp, buf, len);
        } else {
                ret->read_error = -EPROTONOSUPPORT;
        }
        if (!rp->keep_sessions)
                replay_end_session(rp);
        free(buf);

#define DELTA(f) (rp->c.f - before.f)
        ret->messages = DELTA(messages);
        ret->options = DELTA(options_records);
        ret->missing = DELTA(missing_template_sets);
        ret->templates = DELTA(templates_learned) + DELTA(templates_refreshed) +
                         DELTA(templates_withdrawn);
        ret->err_decode = DELTA(err_decode);
        ret->err_set = DELTA(err_set);
        ret->err_record = DELTA(err_record);
        ret->err_template = DELTA(err_template);
        ret->err_length = DELTA(err_length);
        ret->err_netflow9 = DELTA(err_netflow9);
        ret->err_version = DELTA(err_version);
#undef DELTA
        ret->flows = rp->produced - produced;
        ret->sunk = rp->sunk - sunk;
        ret->feed_errors = rp->feed_errors - feed_errors;
        ret->datagrams = rp->datagrams - datagrams;

        ret->v[W_RECORDS] = ret->flows + ret->options;
        ret->v[W_MISSING] = ret->missing;
        ret->v[W_MESSAGES] = ret->messages;
        ret->v[W_TEMPLATES] = ret->templates;
        /* Anything the collector would count as broken input, plus harness-level trouble:
         * an unreadable capture, and flows that decoder_feed() reported but the sink never saw
         * (or the reverse). decoder_feed() failures show up as err_length or err_set. */
        ret->v[W_ERRORS] = ret->err_decode + ret->err_set + ret->err_record +
                           ret->err_template + ret->err_length + ret->err_netflow9 +
                           ret->err_version + (ret->read_error < 0) +
                           (ret->sunk != ret->flows);
}


/* ---- expectations ---------------------------------------------------------------------- */

static bool same_sequence(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const Override *override_find(const char *path, const char *sequence, ReplayMode mode) {
        for (size_t i = 0; i < ELEMENTSOF(OVERRIDES); i++)
                if (strcmp(OVERRIDES[i].path, path) == 0 &&
                    same_sequence(OVERRIDES[i].sequence, sequence) &&
                    (!OVERRIDES[i].store_only || mode == REPLAY_STORE))
                        return &OVERRIDES[i];
        return NULL;
}

/* Records and missing sets depend on what was replayed before; the other numbers are the
 * file's own, so their known failures are listed once, for the file alone. */
static const KnownFailure *known_failure_find(const char *path, const char *sequence, What w) {
        if (w != W_RECORDS && w != W_MISSING)
                sequence = NULL;
        for (size_t i = 0; KNOWN_FAILURES[i].path; i++)
                if (strcmp(KNOWN_FAILURES[i].path, path) == 0 &&
                    same_sequence(KNOWN_FAILURES[i].sequence, sequence) &&
                    strcmp(KNOWN_FAILURES[i].what, WHAT[w]) == 0)
                        return &KNOWN_FAILURES[i];
        return NULL;
}

static bool documented_invalid(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(DOCUMENTED_INVALID); i++)
                if (strcmp(DOCUMENTED_INVALID[i], path) == 0)
                        return true;
        return false;
}

typedef struct Expect {
        long v[_W_MAX];                 /* NONE: not checked */
        bool overridden[_W_MAX];
        const Override *o;
} Expect;

/* The file's own numbers: the manifest's, with an override for the file alone. */
static void expect_alone(const ManifestRow *m, ReplayMode mode, Expect *e) {
        const Override *o = override_find(m->path, NULL, mode);

        memset(e, 0, sizeof(*e));
        e->o = o;
        e->v[W_RECORDS] = m->data_records;
        e->v[W_MISSING] = m->undecodable;
        e->v[W_MESSAGES] = m->messages;
        e->v[W_TEMPLATES] = m->template_records;
        e->v[W_ERRORS] = documented_invalid(m->path) ? NONE : 0;
        if (!o)
                return;
        if (o->records != NONE) {
                e->v[W_RECORDS] = o->records;
                e->overridden[W_RECORDS] = true;
        }
        if (o->missing != NONE) {
                e->v[W_MISSING] = o->missing;
                e->overridden[W_MISSING] = true;
        }
        if (o->messages != NONE) {
                e->v[W_MESSAGES] = o->messages;
                e->overridden[W_MESSAGES] = true;
        }
        if (o->templates != NONE) {
                e->v[W_TEMPLATES] = o->templates;
                e->overridden[W_TEMPLATES] = true;
        }
}

/* In a sequence: tshark's per-input records (or an override); missing sets are only known
 * for the whole sequence, and checked there. */
static void expect_in_sequence(const ManifestRow *m, const char *sequence, long records,
                               ReplayMode mode, Expect *e) {
        const Override *o = override_find(m->path, sequence, mode);

        expect_alone(m, mode, e);
        e->v[W_MISSING] = NONE;
        e->overridden[W_RECORDS] = false;
        e->v[W_RECORDS] = records;
        if (o && o->records != NONE) {
                e->v[W_RECORDS] = o->records;
                e->overridden[W_RECORDS] = true;
                e->o = o;
        }
}

typedef enum Verdict { V_OK, V_DECIDED, V_KNOWN, V_FIXED, V_FAIL } Verdict;

static const char *verdict_word(Verdict v) {
        static const char *const w[] = { "ok", "ok*", "KNOWN", "FIXED?", "FAIL" };
        return w[v];
}

/*
 * Compares one number. A known failure must still produce exactly its pinned value: when
 * the decoder starts producing the correct number the entry must go (V_FIXED fails too).
 */
static Verdict check_one(const char *path, const char *sequence, What w, long expected,
                         bool overridden, uint64_t got, char *why, size_t why_len) {
        const KnownFailure *k = known_failure_find(path, sequence, w);

        why[0] = '\0';
        if (expected == NONE)
                return V_OK;
        if (k) {
                if (k->expected != expected) {
                        (void) snprintf(why, why_len, "%s: KNOWN_FAILURES says correct is %ld, "
                                        "the checks say %ld", WHAT[w], k->expected, expected);
                        return V_FAIL;
                }
                if ((long) got == k->got)
                        return V_KNOWN;
                if ((long) got == expected) {
                        (void) snprintf(why, why_len, "%s: now correct (%ld), remove the "
                                        "KNOWN_FAILURES entry", WHAT[w], expected);
                        return V_FIXED;
                }
                (void) snprintf(why, why_len, "%s: known failure pinned at %ld, got %" PRIu64,
                                WHAT[w], k->got, got);
                return V_FAIL;
        }
        if ((long) got == expected)
                return overridden ? V_DECIDED : V_OK;
        (void) snprintf(why, why_len, "%s: expected %ld, got %" PRIu64, WHAT[w], expected, got);
        return V_FAIL;
}

static void fmt_pair(char *buf, size_t len, long e, uint64_t g) {
        if (e == NONE)
                (void) snprintf(buf, len, "-/%" PRIu64, g);
        else
                (void) snprintf(buf, len, "%ld/%" PRIu64, e, g);
}

static void print_header(const char *title) {
        printf("\n%s\n", title);
        printf("%-6s %-5s %11s %9s %9s %9s %5s  %s\n", "status", "mode", "records e/g",
               "missing", "messages", "templates", "errs", "file");
}

/*
 * Checks all numbers of one replayed file, prints its table row (and why lines), returns
 * the number of failed checks. @show_same: print the row even when nothing is notable
 * (the session-mode row is printed only when it differs from the store-mode row).
 */
static unsigned check_and_print(const char *path, const char *sequence, ReplayMode mode,
                                const Expect *e, const Counts *c) {
        char why[_W_MAX][192], col[_W_MAX][32];
        Verdict v = V_OK;
        unsigned failures = 0;

        for (int w = 0; w < _W_MAX; w++) {
                Verdict x = check_one(path, sequence, (What) w, e->v[w], e->overridden[w],
                                      c->v[w], why[w], sizeof(why[w]));
                if (x == V_FAIL || x == V_FIXED)
                        failures++;
                if (x > v)
                        v = x;
                fmt_pair(col[w], sizeof(col[w]), e->v[w], c->v[w]);
        }
        printf("%-6s %-5s %11s %9s %9s %9s %5" PRIu64 "  %s\n", verdict_word(v),
               mode == REPLAY_STORE ? "store" : "sess", col[W_RECORDS], col[W_MISSING],
               col[W_MESSAGES], col[W_TEMPLATES], c->v[W_ERRORS], path);
        for (int w = 0; w < _W_MAX; w++)
                if (why[w][0])
                        printf("       -> %s\n", why[w]);
        if (c->v[W_ERRORS])
                printf("       (errors: decode %" PRIu64 ", set %" PRIu64 ", record %" PRIu64
                       ", template %" PRIu64 ", length %" PRIu64 ", netflow9 %" PRIu64
                       ", version %" PRIu64 ", read %d, flows %" PRIu64 "/sunk %" PRIu64 ")\n",
                       c->err_decode, c->err_set, c->err_record, c->err_template,
                       c->err_length, c->err_netflow9, c->err_version, c->read_error,
                       c->flows, c->sunk);
        for (int w = 0; w < _W_MAX; w++) {
                const KnownFailure *k = known_failure_find(path, sequence, (What) w);
                if (k && e->v[w] != NONE)
                        printf("       (known failure, %s: %s)\n", WHAT[w], k->reason);
        }
        if (e->o && v == V_DECIDED)
                printf("       (decided: %s)\n", e->o->why);
        if (c->skips.not_ip + c->skips.not_udp + c->skips.fragments + c->skips.truncated +
            c->skips.malformed)
                printf("       (pcap frames skipped: not-ip %u, not-udp %u, fragments %u, "
                       "truncated %u, malformed %u)\n", c->skips.not_ip, c->skips.not_udp,
                       c->skips.fragments, c->skips.truncated, c->skips.malformed);
        return failures;
}

static bool counts_same(const Counts *a, const Counts *b) {
        return memcmp(a->v, b->v, sizeof(a->v)) == 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Every capture in the directories is in the manifest, and every manifest file exists. */
static void test_manifest_covers_testdata(void **state) {
        Suite *s = *state;
        unsigned failures = 0, files = 0;
        DIR *top = opendir(s->dir);

        assert_non_null(top);
        for (struct dirent *de; (de = readdir(top));) {
                char sub[PATH_MAX + 256];
                DIR *d;

                if (de->d_name[0] == '.' || strcmp(de->d_name, "tools") == 0)
                        continue;
                (void) snprintf(sub, sizeof(sub), "%s/%s", s->dir, de->d_name);
                d = opendir(sub);
                if (!d)
                        continue;       /* a plain file (README, TSVs) */
                for (struct dirent *fe; (fe = readdir(d));) {
                        char rel[512];
                        if (!has_suffix(fe->d_name, ".dat") && !has_suffix(fe->d_name, ".pcap") &&
                            !has_suffix(fe->d_name, ".ipfix"))
                                continue;
                        (void) snprintf(rel, sizeof(rel), "%s/%s", de->d_name, fe->d_name);
                        files++;
                        if (!manifest_find(s, rel)) {
                                printf("not in MANIFEST.tsv: %s\n", rel);
                                failures++;
                        }
                }
                (void) closedir(d);
        }
        (void) closedir(top);
        for (size_t i = 0; i < s->n_manifest; i++) {
                char path[PATH_MAX + 512];
                struct stat st;
                (void) snprintf(path, sizeof(path), "%s/%s", s->dir, s->manifest[i].path);
                if (stat(path, &st) < 0) {
                        printf("in MANIFEST.tsv but missing: %s\n", s->manifest[i].path);
                        failures++;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(OVERRIDES); i++)
                if (!manifest_find(s, OVERRIDES[i].path)) {
                        printf("OVERRIDES names a file not in MANIFEST.tsv: %s\n",
                               OVERRIDES[i].path);
                        failures++;
                }
        for (size_t i = 0; KNOWN_FAILURES[i].path; i++)
                if (strcmp(KNOWN_FAILURES[i].path, "(total)") != 0 &&
                    !manifest_find(s, KNOWN_FAILURES[i].path)) {
                        printf("KNOWN_FAILURES names a file not in MANIFEST.tsv: %s\n",
                               KNOWN_FAILURES[i].path);
                        failures++;
                }
        for (size_t i = 0; KNOWN_FAILURES[i].path; i++) {
                const KnownFailure *k = &KNOWN_FAILURES[i];
                bool what_ok = false, seq_ok = !k->sequence;
                for (int w = 0; w < _W_MAX; w++)
                        what_ok |= strcmp(k->what, WHAT[w]) == 0;
                for (size_t q = 0; q < s->n_sequences; q++)
                        seq_ok |= k->sequence && strcmp(k->sequence, s->sequences[q].name) == 0;
                if (!what_ok || !seq_ok) {
                        printf("KNOWN_FAILURES entry %zu: bad what \"%s\" or sequence \"%s\"\n",
                               i, k->what, k->sequence ? k->sequence : "");
                        failures++;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(OVERRIDES); i++) {
                bool seq_ok = !OVERRIDES[i].sequence;
                for (size_t q = 0; q < s->n_sequences; q++)
                        seq_ok |= OVERRIDES[i].sequence &&
                                  strcmp(OVERRIDES[i].sequence, s->sequences[q].name) == 0;
                if (!seq_ok) {
                        printf("OVERRIDES entry %zu: no sequence \"%s\"\n", i,
                               OVERRIDES[i].sequence);
                        failures++;
                }
        }
        printf("%u capture files, %zu manifest rows, %zu sequences\n", files, s->n_manifest,
               s->n_sequences);
        assert_int_equal(files, s->n_manifest);
        assert_int_equal(failures, 0);
}

/* Plays each file of @group alone: fresh store, context and decoders, in both modes. */
static void run_alone(Suite *s, const char *group) {
        unsigned failures = 0, n = 0, known = 0;
        size_t glen = strlen(group);
        char title[256];

        (void) snprintf(title, sizeof(title), "== %s/: each file alone ==", group);
        print_header(title);
        for (size_t i = 0; i < s->n_manifest; i++) {
                const ManifestRow *m = &s->manifest[i];
                Counts c[2];
                Expect e[2];

                if (strncmp(m->path, group, glen) != 0 || m->path[glen] != '/')
                        continue;
                n++;
                for (int mode = REPLAY_STORE; mode <= REPLAY_SESSION; mode++) {
                        Replay *rp = replay_new((ReplayMode) mode);
                        replay_file(rp, s->dir, m->path, &c[mode]);
                        replay_free(rp);
                        expect_alone(m, (ReplayMode) mode, &e[mode]);
                }
                failures += check_and_print(m->path, NULL, REPLAY_STORE, &e[0], &c[0]);
                /* Alone, the modes differ only when templates cross source ports. */
                if (!counts_same(&c[0], &c[1]) || memcmp(e[0].v, e[1].v, sizeof(e[0].v)))
                        failures += check_and_print(m->path, NULL, REPLAY_SESSION, &e[1], &c[1]);
                else {
                        char why[192];
                        for (int w = 0; w < _W_MAX; w++)
                                if (check_one(m->path, NULL, (What) w, e[1].v[w],
                                              e[1].overridden[w], c[1].v[w], why,
                                              sizeof(why)) >= V_FIXED)
                                        failures++;
                }
                for (int w = 0; w < _W_MAX; w++)
                        known += known_failure_find(m->path, NULL, (What) w) != NULL;
        }
        printf("%u files, %u checks failed, %u known failures\n", n, failures, known);
        assert_true(n > 0);
        assert_int_equal(failures, 0);
}

static void test_logstash_alone(void **state) {
        run_alone(*state, "logstash-codec-netflow");
}

static void test_akvorado_alone(void **state) {
        run_alone(*state, "akvorado");
}

static void test_pmacct_alone(void **state) {
        run_alone(*state, "pmacct");
}

static void test_ipfixcol2_alone(void **state) {
        run_alone(*state, "ipfixcol2");
}

/*
 * Replays each SEQUENCES.tsv row in both modes and checks every input's numbers (records
 * against tshark's per-input count), the missing sets of the whole sequence, and that each
 * manifest data_records_in_sequence is what we decode for that file after its companions.
 */
static void test_sequences(void **state) {
        Suite *s = *state;
        unsigned failures = 0;
        uint64_t **got[2];

        print_header("== SEQUENCES.tsv: inputs replayed in order as one exporter ==");
        for (int mode = 0; mode < 2; mode++) {
                got[mode] = calloc(s->n_sequences, sizeof(*got[mode]));
                assert_non_null(got[mode]);
        }
        for (size_t i = 0; i < s->n_sequences; i++) {
                const SequenceRow *q = &s->sequences[i];

                printf("-- %s\n", q->name);
                for (int mode = REPLAY_STORE; mode <= REPLAY_SESSION; mode++) {
                        Replay *rp = replay_new((ReplayMode) mode);
                        uint64_t missing = 0;
                        char why[192];
                        Verdict v;

                        got[mode][i] = calloc(q->n_inputs, sizeof(**got[mode]));
                        assert_non_null(got[mode][i]);
                        for (size_t j = 0; j < q->n_inputs; j++) {
                                const ManifestRow *m = manifest_find(s, q->inputs[j]);
                                Expect e;
                                Counts c;

                                if (!m)
                                        fail_msg("sequence \"%s\": %s not in MANIFEST.tsv",
                                                 q->name, q->inputs[j]);
                                replay_file(rp, s->dir, q->inputs[j], &c);
                                got[mode][i][j] = c.v[W_RECORDS];
                                missing += c.v[W_MISSING];
                                expect_in_sequence(m, q->name, q->per_input[j],
                                                   (ReplayMode) mode, &e);
                                failures += check_and_print(q->inputs[j], q->name,
                                                            (ReplayMode) mode, &e, &c);
                        }
                        replay_free(rp);
                        v = check_one("(total)", q->name, W_MISSING, q->undecodable, false,
                                      missing, why, sizeof(why));
                        if (v == V_FAIL || v == V_FIXED)
                                failures++;
                        printf("%-6s %-5s %11s %4ld/%-4" PRIu64 " %9s %9s %5s  (sequence total)\n",
                               verdict_word(v), mode == REPLAY_STORE ? "store" : "sess", "",
                               q->undecodable, missing, "", "", "");
                        if (why[0])
                                printf("       -> %s\n", why);
                }
        }

        /* MANIFEST.tsv data_records_in_sequence: the file's count after its companions. */
        for (size_t i = 0; i < s->n_manifest; i++) {
                const ManifestRow *m = &s->manifest[i];

                if (m->in_sequence == NONE)
                        continue;
                for (int mode = REPLAY_STORE; mode <= REPLAY_SESSION; mode++) {
                        bool seen = false, matched = false, known = false;

                        for (size_t q = 0; q < s->n_sequences; q++)
                                for (size_t j = 0; j < s->sequences[q].n_inputs; j++) {
                                        const SequenceRow *sq = &s->sequences[q];
                                        const Override *o;
                                        long e = m->in_sequence;

                                        if (strcmp(sq->inputs[j], m->path) != 0)
                                                continue;
                                        seen = true;
                                        o = override_find(m->path, sq->name, (ReplayMode) mode);
                                        if (o && o->records != NONE)
                                                e = o->records;
                                        matched |= (long) got[mode][q][j] == e;
                                        known |= known_failure_find(m->path, sq->name,
                                                                    W_RECORDS) != NULL;
                                }
                        if (!seen || (!matched && !known)) {
                                printf("FAIL   %-5s data_records_in_sequence %ld never decoded "
                                       "for %s%s\n", mode == REPLAY_STORE ? "store" : "sess",
                                       m->in_sequence, m->path, seen ? "" : " (in no sequence)");
                                failures++;
                        }
                }
        }
        for (int mode = 0; mode < 2; mode++) {
                for (size_t i = 0; i < s->n_sequences; i++)
                        free(got[mode][i]);
                free(got[mode]);
        }
        printf("%zu sequences, %u checks failed\n", s->n_sequences, failures);
        assert_int_equal(failures, 0);
}

static int group_setup(void **state) {
        Suite *s = calloc(1, sizeof(*s));

        assert_non_null(s);
        (void) snprintf(s->dir, sizeof(s->dir), "%s", testdata_dir);
        suite_load(s);
        *state = s;
        return 0;
}

static int group_teardown(void **state) {
        suite_free(*state);
        return 0;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest_covers_testdata),
                cmocka_unit_test(test_logstash_alone),
                cmocka_unit_test(test_akvorado_alone),
                cmocka_unit_test(test_pmacct_alone),
                cmocka_unit_test(test_ipfixcol2_alone),
                cmocka_unit_test(test_sequences),
        };
        struct stat st;

        if (argc != 2) {
                fprintf(stderr, "usage: %s TESTDATA_DIR (shared/testdata/ipfix)\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (stat(argv[1], &st) < 0 || !S_ISDIR(st.st_mode)) {
                printf("SKIP: capture directory %s not found (the captures live in "
                       "shared/testdata/ipfix beside the source tree)\n", argv[1]);
                return 77;
        }
        testdata_dir = argv[1];
        /* Missing templates are expected here (data files played alone): keep them quiet. */
        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests_name("captures", tests, group_setup, group_teardown);
}
