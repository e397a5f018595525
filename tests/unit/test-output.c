/* SPDX-License-Identifier: MIT */
/*
 * test-output.c - the mediator's outputs: config parsing, the rotating file series, IPFIX
 * over TCP/UDP/files (checked with our own message parser and with libfixbuf's ipfixDump
 * when installed), JSON lines to files and to a stdout pipe, and ZeroMQ PUB. Sockets are
 * real, on 127.0.0.1, driven by an sd-event loop in the test.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "flow.h"
#include "log.h"
#include "output-ipfix.h"
#include "output.h"
#include "rotate.h"

#define IPFIXDUMP "/usr/bin/ipfixDump"

/* ---- helpers --------------------------------------------------------------------------- */

static void make_rec(FlowRecord *f, unsigned i) {
        uint8_t v4[4] = { 10, (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };

        memset(f, 0, sizeof(*f));
        f->start_ms = UINT64_C(1700000000000) + i;
        f->end_ms = f->start_ms + 10;
        f->octets = 1000u + i;
        f->packets = 1 + i % 10;
        f->family = (i & 1) ? 6 : 4;
        f->exporter_family = (i & 2) ? 6 : 4;
        if (f->family == 4) {
                flow_addr_set_v4(f->src_addr, v4);
                v4[0] = 192;
                flow_addr_set_v4(f->dst_addr, v4);
        } else {
                f->src_addr[0] = 0x20;
                f->src_addr[1] = 0x01;
                f->src_addr[2] = 0x0d;
                f->src_addr[3] = 0xb8;
                f->src_addr[14] = (uint8_t) (i >> 8);
                f->src_addr[15] = (uint8_t) i;
                memcpy(f->dst_addr, f->src_addr, 16);
                f->dst_addr[13] = 1;
        }
        if (f->exporter_family == 4) {
                uint8_t e4[4] = { 172, 16, 0, 1 };
                flow_addr_set_v4(f->exporter_addr, e4);
        } else {
                f->exporter_addr[0] = 0xfd;
                f->exporter_addr[15] = 1;
        }
        f->src_port = (uint16_t) (1024 + i);
        f->dst_port = 443;
        f->proto = 6;
        f->tcp_flags = 0x1b;
        f->tos = 8;
        f->ingress_if = 3;
        f->egress_if = 4;
        f->src_as = 64500;
        f->dst_as = 64501;
        f->vlan = 100;
        f->direction = (uint8_t) (i & 1);
        f->end_reason = 1;
        f->odid = 77;
        f->template_id = 300;
        f->flows = i % 3;
}

static FlowRecord *make_recs(unsigned n, unsigned first) {
        FlowRecord *r = calloc(n, sizeof(*r));
        assert_non_null(r);
        for (unsigned i = 0; i < n; i++)
                make_rec(&r[i], first + i);
        return r;
}

static uint64_t octets_of(unsigned first, unsigned n) {
        uint64_t s = 0;
        for (unsigned i = first; i < first + n; i++)
                s += 1000u + i;
        return s;
}

static OutputConfig *parse(const char *text) {
        json_t *j = json_loads(text, 0, NULL);
        OutputConfig *c = NULL;
        char *err = NULL;
        int r;

        assert_non_null(j);
        r = output_config_parse(j, &c, &err);
        if (r < 0)
                fail_msg("parse of %s failed: %s", text, err ? err : "?");
        json_decref(j);
        return c;
}

static Output *new_output(const char *text, sd_event *e, void *zctx, const char *pipeline) {
        OutputConfig *c = parse(text);
        Output *o = NULL;
        char *err = NULL;
        int r = output_new(&o, c, e, zctx, pipeline, &err);

        if (r < 0)
                fail_msg("output_new(%s) failed: %d %s", text, r, err ? err : "");
        free(err);
        output_config_free(c);
        return o;
}

static OutputStats stats(const Output *o) {
        OutputStats s;
        output_get_stats(o, &s);
        return s;
}

static char *make_tmpdir(void) {
        char tmpl[] = "/tmp/test-output-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        return strdup(d);
}

static void rm_rf(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char p[1024];
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                (void) snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                (void) unlink(p);
        }
        closedir(d);
        (void) rmdir(dir);
}

/* Names in @dir, sorted; hidden (temp) files included. Return: count. */
static size_t list_dir(const char *dir, char names[][256], size_t max) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)) && n < max) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                (void) snprintf(names[n++], 256, "%s", de->d_name);
        }
        closedir(d);
        qsort(names, n, 256, (int (*)(const void *, const void *)) strcmp);
        return n;
}

static size_t read_file(const char *path, uint8_t **ret) {
        FILE *f = fopen(path, "rb");
        long len;
        uint8_t *b;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        assert_true(len >= 0);
        rewind(f);
        b = malloc((size_t) len + 1);
        assert_non_null(b);
        assert_int_equal(fread(b, 1, (size_t) len, f), (size_t) len);
        fclose(f);
        b[len] = 0;
        *ret = b;
        return (size_t) len;
}

static uint16_t rd16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}
static uint32_t rd32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) {
        return (uint64_t) rd32(p) << 32 | rd32(p + 4);
}

/* Our own reading of the exported IPFIX: message and set framing, sequence numbers. */
typedef struct Parsed {
        uint64_t messages, records, octets, template_sets, template_records;
        uint32_t next_seq;
        uint32_t odid;
        bool seq_ok;
        bool first_is_template;
        size_t max_len;
} Parsed;

static size_t record_len(uint16_t tid) {
        switch (tid) {
        case 256: return 88;
        case 257: return 124;
        case 258: return 100;
        case 259: return 112;
        default: return 0;
        }
}

/* Parses the complete messages at the start of @p. Return: bytes consumed. */
static size_t parse_ipfix(const uint8_t *p, size_t len, Parsed *ps) {
        size_t off = 0;

        while (len - off >= 16) {
                const uint8_t *m = p + off;
                uint16_t mlen = rd16(m + 2);
                uint32_t data = 0;

                assert_int_equal(rd16(m), 10);
                assert_true(mlen >= 16);
                if (mlen > len - off)
                        break;
                if (ps->messages == 0) {
                        ps->next_seq = rd32(m + 8);
                        ps->seq_ok = true;
                        ps->first_is_template = mlen > 20 && rd16(m + 16) == 2;
                }
                if (rd32(m + 8) != ps->next_seq)
                        ps->seq_ok = false;
                ps->odid = rd32(m + 12);
                ps->max_len = MAX(ps->max_len, (size_t) mlen);
                for (size_t s = 16; s < mlen;) {
                        uint16_t sid, slen;

                        assert_true(mlen - s >= 4);
                        sid = rd16(m + s);
                        slen = rd16(m + s + 2);
                        assert_true(slen >= 4 && slen <= mlen - s);
                        if (sid == 2) {
                                ps->template_sets++;
                                for (size_t t = s + 4; t + 4 <= s + slen;) {
                                        uint16_t tid = rd16(m + t), cnt = rd16(m + t + 2);
                                        assert_true(tid >= 256 && tid <= 259);
                                        ps->template_records++;
                                        t += 4 + 4u * cnt;
                                }
                        } else {
                                size_t rl = record_len(sid);
                                assert_true(rl > 0);
                                assert_int_equal((slen - 4) % rl, 0);
                                for (size_t r = s + 4; r < s + slen; r += rl) {
                                        ps->octets += rd64(m + r + 16);
                                        data++;
                                }
                        }
                        s += slen;
                }
                ps->records += data;
                ps->next_seq += data;
                ps->messages++;
                off += mlen;
        }
        return off;
}

/* Splits off the next '\n'-terminated line of *@p (NUL-terminating it), or NULL. */
static char *next_line(char **p) {
        char *line = *p, *nl;

        if (!line || !*line)
                return NULL;
        nl = strchr(line, '\n');
        if (nl) {
                *nl = '\0';
                *p = nl + 1;
        } else
                *p = line + strlen(line);
        return line;
}

static void run_loop(sd_event *e, unsigned ms) {
        uint64_t end = now_usec() + ms * 1000u;
        while (now_usec() < end)
                assert_true(sd_event_run(e, 5000) >= 0);
}

/* ---- configuration --------------------------------------------------------------------- */

static void test_config_valid(void **state) {
        static const char *const ok[] = {
                "{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:4739\",\"odid\":1,"
                "\"buffer_records\":1000000,\"reconnect_min_ms\":100,\"reconnect_max_ms\":30000}",
                "{\"type\":\"ipfix-udp\",\"target\":\"[::1]:4739\",\"odid\":1,"
                "\"template_resend_s\":30,\"max_message\":1400}",
                "{\"type\":\"ipfix-file\",\"path\":\"/dir/prefix\",\"rotate_s\":300,"
                "\"rotate_bytes\":104857600,\"odid\":1}",
                "{\"type\":\"json\",\"path\":\"-\"}",
                "{\"type\":\"json\",\"path\":\"/dir/prefix\",\"rotate_s\":60,"
                "\"rotate_bytes\":1048576}",
                "{\"type\":\"zmq-pub\",\"endpoint\":\"tcp://127.0.0.1:9401\",\"hwm\":1000}",
                "{\"type\":\"ipfix-tcp\",\"target\":\"10.1.2.3:1\"}",
                "{\"type\":\"json\",\"path\":\"relative\"}",
        };
        static const OutputType types[] = {
                OUTPUT_IPFIX_TCP, OUTPUT_IPFIX_UDP, OUTPUT_IPFIX_FILE, OUTPUT_JSON,
                OUTPUT_JSON,      OUTPUT_ZMQ_PUB,   OUTPUT_IPFIX_TCP,  OUTPUT_JSON,
        };
        OutputConfig *a, *b;

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                a = parse(ok[i]);
                assert_non_null(a);
                assert_int_equal(output_config_type(a), types[i]);
                b = parse(ok[i]);
                assert_true(output_config_equal(a, b));
                output_config_free(b);
                for (size_t j = 0; j < ELEMENTSOF(ok); j++) {
                        if (j == i)
                                continue;
                        b = parse(ok[j]);
                        assert_false(output_config_equal(a, b));
                        output_config_free(b);
                }
                output_config_free(a);
        }

        /* Defaults are explicit values: spelling one out changes nothing. */
        a = parse("{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:4739\"}");
        b = parse("{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:4739\",\"odid\":1,"
                  "\"reconnect_max_ms\":30000}");
        assert_true(output_config_equal(a, b));
        assert_string_equal(output_config_target(a), "127.0.0.1:4739");
        output_config_free(b);
        b = parse("{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:4739\",\"odid\":2}");
        assert_false(output_config_equal(a, b));
        output_config_free(b);
        output_config_free(a);
        assert_null(output_config_free(NULL));
        assert_string_equal(output_type_to_string(OUTPUT_ZMQ_PUB), "zmq-pub");
        assert_int_equal(output_type_from_string("json"), OUTPUT_JSON);
        assert_int_equal(output_type_from_string("xml"), -EINVAL);
}

static void test_config_errors(void **state) {
        static const struct {
                const char *json;
                const char *prefix;
        } bad[] = {
                { "[]", "output: must be a JSON object" },
                { "{}", "type: missing" },
                { "{\"type\":5}", "type: must be a string" },
                { "{\"type\":\"xml\"}", "type: unknown output type 'xml'" },
                { "{\"type\":\"ipfix-tcp\"}", "target: missing" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"localhost:4739\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"1.2.3.4\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"1.2.3.4:0\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"1.2.3.4:65536\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"1.2.3.4:47x\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"::1:4739\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]4739\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[1.2.3.4]:4739\"}", "target: expected" },
                { "{\"type\":\"ipfix-tcp\",\"target\":7}", "target: must be a string" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]:4739\",\"odid\":-1}",
                  "odid: must be 0..4294967295, got -1" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]:4739\",\"odid\":\"1\"}",
                  "odid: must be an integer" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]:4739\",\"buffer_records\":0}",
                  "buffer_records: must be 1.." },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]:4739\",\"reconnect_min_ms\":500,"
                  "\"reconnect_max_ms\":100}",
                  "reconnect_max_ms: must be >= reconnect_min_ms" },
                { "{\"type\":\"ipfix-tcp\",\"target\":\"[::1]:4739\",\"max_message\":1400}",
                  "max_message: unknown key" },
                { "{\"type\":\"ipfix-udp\",\"target\":\"1.2.3.4:1\",\"max_message\":100}",
                  "max_message: must be 512..65507" },
                { "{\"type\":\"ipfix-udp\",\"target\":\"1.2.3.4:1\",\"template_resend_s\":0}",
                  "template_resend_s: must be 1..3600" },
                { "{\"type\":\"ipfix-udp\",\"target\":\"1.2.3.4:1\",\"hwm\":1}",
                  "hwm: unknown key" },
                { "{\"type\":\"ipfix-file\"}", "path: missing" },
                { "{\"type\":\"ipfix-file\",\"path\":\"/tmp/\"}", "path: expected /dir/prefix" },
                { "{\"type\":\"ipfix-file\",\"path\":\"-\"}", "path: ipfix-file cannot" },
                { "{\"type\":\"ipfix-file\",\"path\":\"/tmp/x\",\"rotate_bytes\":10}",
                  "rotate_bytes: must be 65536.." },
                { "{\"type\":\"ipfix-file\",\"path\":\"/tmp/x\",\"target\":\"1.2.3.4:1\"}",
                  "target: unknown key" },
                { "{\"type\":\"json\"}", "path: missing" },
                { "{\"type\":\"json\",\"path\":5}", "path: must be a string" },
                { "{\"type\":\"json\",\"path\":\"-\",\"rotate_s\":10}",
                  "rotate_s: not valid with path \"-\"" },
                { "{\"type\":\"json\",\"path\":\"/tmp/x\",\"rotate_s\":0}",
                  "rotate_s: must be 1..604800" },
                { "{\"type\":\"json\",\"path\":\"/tmp/x\",\"odid\":1}", "odid: unknown key" },
                { "{\"type\":\"zmq-pub\"}", "endpoint: missing" },
                { "{\"type\":\"zmq-pub\",\"endpoint\":\"nope\"}", "endpoint: expected" },
                { "{\"type\":\"zmq-pub\",\"endpoint\":\"inproc://x\",\"hwm\":0}",
                  "hwm: must be 1..1000000" },
                { "{\"type\":\"zmq-pub\",\"endpoint\":\"inproc://x\",\"batch_records\":9000}",
                  "batch_records: must be 1..8192" },
                { "{\"type\":\"zmq-pub\",\"endpoint\":\"inproc://x\",\"bind\":\"yes\"}",
                  "bind: must be true or false" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
                OutputConfig *c = NULL;
                char *err = NULL;

                assert_non_null(j);
                assert_int_equal(output_config_parse(j, &c, &err), -EINVAL);
                assert_null(c);
                assert_non_null(err);
                if (strncmp(err, bad[i].prefix, strlen(bad[i].prefix)) != 0)
                        fail_msg("%s: got '%s', want '%s...'", bad[i].json, err, bad[i].prefix);
                free(err);
                json_decref(j);
        }
}

static void test_parse_target(void **state) {
        struct sockaddr_storage ss;
        socklen_t len;
        const struct sockaddr_in *in = (const struct sockaddr_in *) &ss;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &ss;

        assert_int_equal(output_parse_target("192.0.2.1:4739", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(len, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(in->sin_port), 4739);
        assert_int_equal(ntohl(in->sin_addr.s_addr), 0xc0000201u);
        assert_int_equal(output_parse_target("[2001:db8::1]:65535", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(len, sizeof(struct sockaddr_in6));
        assert_int_equal(ntohs(in6->sin6_port), 65535);
        assert_int_equal(in6->sin6_addr.s6_addr[0], 0x20);
        assert_int_equal(in6->sin6_addr.s6_addr[15], 1);
        assert_int_equal(output_parse_target("[::1]:", &ss, &len), -EINVAL);
        assert_int_equal(output_parse_target(":80", &ss, &len), -EINVAL);
        assert_int_equal(output_parse_target("1.2.3.4:-1", &ss, &len), -EINVAL);
        assert_int_equal(output_parse_target("1.2.3.4:+1", &ss, &len), -EINVAL);
        assert_int_equal(output_parse_target(NULL, &ss, &len), -EINVAL);
}

/* ---- rotating files -------------------------------------------------------------------- */

static uint64_t fake_now;
static uint64_t fake_clock(void *userdata) {
        return fake_now;
}

static void test_rotate_size(void **state) {
        char *dir = make_tmpdir(), path[512], names[16][256];
        RotatingFile *f;
        uint8_t chunk[40];
        RotateParams p = {
                .path = path, .suffix = "bin", .rotate_bytes = 100, .clock = fake_clock,
        };
        size_t n;

        fake_now = UINT64_C(1700000000000);     /* 2023-11-14T22:13:20Z */
        (void) snprintf(path, sizeof(path), "%s/flows", dir);
        assert_int_equal(rotate_file_new(&f, &p), 0);
        assert_false(rotate_file_is_open(f));
        assert_false(rotate_file_should_rotate(f, 1000));      /* nothing open */
        memset(chunk, 'a', sizeof(chunk));

        /* 10 writes of 40 bytes, rotating before a write would pass 100 bytes: 80-byte files. */
        for (unsigned i = 0; i < 10; i++) {
                if (rotate_file_should_rotate(f, sizeof(chunk)))
                        assert_int_equal(rotate_file_close(f), 0);
                chunk[0] = (uint8_t) ('0' + i);
                assert_int_equal(rotate_file_write(f, chunk, sizeof(chunk)), 0);
                assert_true(rotate_file_size(f) <= 100);
        }
        assert_int_equal(rotate_file_count(f), 4);
        assert_int_equal(rotate_file_size(f), 80);
        assert_non_null(rotate_file_temp_path(f));
        assert_string_equal(rotate_file_last_path(f) + strlen(dir) + 1,
                            "flows-20231114T221320Z-000003.bin");
        assert_int_equal(rotate_file_close(f), 0);
        assert_null(rotate_file_temp_path(f));
        assert_int_equal(rotate_file_count(f), 5);

        n = list_dir(dir, names, ELEMENTSOF(names));
        assert_int_equal(n, 5);
        for (size_t i = 0; i < n; i++) {
                char want[128], full[1024];
                uint8_t *data;

                (void) snprintf(want, sizeof(want), "flows-20231114T221320Z-%06zu.bin", i);
                assert_string_equal(names[i], want);
                (void) snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
                assert_int_equal(read_file(full, &data), 80);
                assert_int_equal(data[0], '0' + 2 * i);
                assert_int_equal(data[40], '0' + 2 * i + 1);
                free(data);
        }
        /* A single write larger than rotate_bytes still goes to one (fresh) file. */
        {
                uint8_t big[300] = { 0 };
                assert_int_equal(rotate_file_write(f, big, sizeof(big)), 0);
                assert_true(rotate_file_should_rotate(f, 1));
        }
        rotate_file_free(f);
        n = list_dir(dir, names, ELEMENTSOF(names));
        assert_int_equal(n, 6);
        assert_int_equal(names[0][0], 'f');     /* no dot (temp) file left */
        rm_rf(dir);
        free(dir);
}

static void test_rotate_time(void **state) {
        char *dir = make_tmpdir(), path[512], names[8][256];
        RotatingFile *f;
        RotateParams p = {
                .path = path, .suffix = "json", .rotate_ms = 300000, .clock = fake_clock,
        };

        fake_now = UINT64_C(1700000000000);
        (void) snprintf(path, sizeof(path), "%s/t", dir);
        assert_int_equal(rotate_file_new(&f, &p), 0);
        assert_int_equal(rotate_file_write(f, "x\n", 2), 0);
        fake_now += 299999;
        assert_false(rotate_file_should_rotate(f, 0));
        fake_now += 1;
        assert_true(rotate_file_should_rotate(f, 0));
        assert_int_equal(rotate_file_close(f), 0);
        assert_int_equal(rotate_file_write(f, "y\n", 2), 0);
        /* A clock stepping back never makes a file due. */
        fake_now -= 3600000;
        assert_false(rotate_file_should_rotate(f, 0));
        fake_now += 3600000 + 300000;
        assert_true(rotate_file_should_rotate(f, 0));
        assert_int_equal(rotate_file_close(f), 0);
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 2);
        assert_string_equal(names[0], "t-20231114T221320Z-000000.json");
        assert_string_equal(names[1], "t-20231114T221820Z-000001.json");
        rotate_file_free(f);
        rm_rf(dir);
        free(dir);
}

static void test_rotate_atomic(void **state) {
        char *dir = make_tmpdir(), path[512], names[8][256], pre[1100];
        RotatingFile *f, *g;
        RotateParams p = { .path = path, .suffix = "ipfix", .clock = fake_clock };
        const char *tmp;
        struct stat st;
        uint8_t *data;
        int fd;

        fake_now = UINT64_C(1700000000000);
        (void) snprintf(path, sizeof(path), "%s/a", dir);
        assert_int_equal(rotate_file_new(&f, &p), 0);
        assert_int_equal(rotate_file_write(f, "hello ", 6), 0);
        assert_int_equal(rotate_file_write(f, "world", 5), 0);

        /* While written, only the hidden temp file exists. */
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 1);
        assert_string_equal(names[0], ".a-20231114T221320Z-000000.ipfix.tmp");
        tmp = rotate_file_temp_path(f);
        assert_non_null(tmp);
        assert_int_equal(stat(tmp, &st), 0);
        assert_int_equal(st.st_size, 11);

        /* The final name is taken by someone else: never overwritten, the next seq is used. */
        (void) snprintf(pre, sizeof(pre), "%s/a-20231114T221320Z-000000.ipfix", dir);
        fd = open(pre, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(rotate_file_close(f), 0);
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 2);
        assert_string_equal(names[0], "a-20231114T221320Z-000000.ipfix");
        assert_string_equal(names[1], "a-20231114T221320Z-000001.ipfix");
        assert_int_equal(stat(pre, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(read_file(rotate_file_last_path(f), &data), 11);
        assert_memory_equal(data, "hello world", 11);
        free(data);

        /* An opened but empty file leaves nothing behind. */
        assert_int_equal(rotate_file_write(f, "", 0), 0);
        assert_true(rotate_file_is_open(f));
        assert_int_equal(rotate_file_close(f), 0);
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 2);
        assert_int_equal(rotate_file_count(f), 1);

        /* Two series with the same prefix in one second never share a temp name. */
        assert_int_equal(rotate_file_new(&g, &p), 0);
        assert_int_equal(rotate_file_write(f, "1", 1), 0);
        assert_int_equal(rotate_file_write(g, "2", 1), 0);
        assert_string_not_equal(rotate_file_temp_path(f), rotate_file_temp_path(g));
        rotate_file_free(g);            /* free renames too */
        rotate_file_free(f);
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 4);
        for (unsigned i = 0; i < 4; i++)
                assert_int_equal(names[i][0], 'a');

        /* Errors: no directory, no prefix. */
        (void) snprintf(path, sizeof(path), "%s/missing/a", dir);
        assert_int_equal(rotate_file_new(&f, &p), -ENOENT);
        (void) snprintf(path, sizeof(path), "%s/", dir);
        assert_int_equal(rotate_file_new(&f, &p), -EINVAL);
        rm_rf(dir);
        free(dir);
}

/* ---- IPFIX file ------------------------------------------------------------------------ */

/* Runs ipfixDump on @file; counts data records and sums octetDeltaCount. */
static void ipfixdump(const char *file, uint64_t *ret_records, uint64_t *ret_octets) {
        char cmd[1200], line[512];
        FILE *p;

        *ret_records = *ret_octets = 0;
        (void) snprintf(cmd, sizeof(cmd), IPFIXDUMP " --in '%s' --data 2>&1", file);
        p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(line, sizeof(line), p)) {
                const char *v;
                if (strncmp(line, "--- data record", 15) == 0)
                        (*ret_records)++;
                else if (strstr(line, "octetDeltaCount") && (v = strstr(line, " : ")))
                        *ret_octets += strtoull(v + 3, NULL, 10);
        }
        assert_int_equal(pclose(p), 0);
}

static void test_ipfix_file(void **state) {
        char *dir = make_tmpdir(), cfg[700], names[64][256];
        const unsigned n = 3000;
        FlowRecord *recs = make_recs(n, 0);
        uint64_t total_records = 0, total_octets = 0;
        sd_event *e = NULL;
        Output *o;
        OutputStats s;
        size_t nf;
        bool dump = access(IPFIXDUMP, X_OK) == 0;

        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"ipfix-file\",\"path\":\"%s/flows\",\"rotate_bytes\":65536,"
                        "\"odid\":42}", dir);
        o = new_output(cfg, e, NULL, "p");
        s = stats(o);
        assert_string_equal(s.type, "ipfix-file");
        assert_string_equal(s.state, "idle");
        /* In batches, as a pipeline would, with a flush after each. */
        for (unsigned i = 0; i < n; i += 500) {
                assert_int_equal(output_write(o, recs + i, 500), 0);
                output_flush(o);
                if (i == 0)
                        assert_string_equal(stats(o).state, "open");
        }
        assert_int_equal(output_close(o, 1000), 0);
        assert_int_equal(output_write(o, recs, 1), -ESHUTDOWN);
        s = stats(o);
        assert_int_equal(s.records, n);
        assert_int_equal(s.dropped, 0);
        assert_int_equal(s.errors, 0);
        assert_true(s.files >= 3);

        nf = list_dir(dir, names, ELEMENTSOF(names));
        assert_int_equal(nf, s.files);
        for (size_t i = 0; i < nf; i++) {
                char full[2400];
                uint8_t *data;
                size_t len;
                Parsed ps = { 0 };

                assert_int_equal(strncmp(names[i], "flows-", 6), 0);
                assert_non_null(strstr(names[i], ".ipfix"));
                assert_null(strstr(names[i], ".tmp"));
                (void) snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
                len = read_file(full, &data);
                /* Rotation happens once a file reached rotate_bytes: at most a message over. */
                assert_true(len < 65536 + OUTPUT_IPFIX_STREAM_MESSAGE);
                assert_int_equal(parse_ipfix(data, len, &ps), len);
                assert_true(ps.first_is_template);
                assert_int_equal(ps.template_records, 4);
                assert_true(ps.seq_ok);
                assert_int_equal(ps.odid, 42);
                total_records += ps.records;
                total_octets += ps.octets;
                free(data);
                if (dump) {
                        uint64_t dr, doct;
                        ipfixdump(full, &dr, &doct);
                        assert_int_equal(dr, ps.records);
                        assert_int_equal(doct, ps.octets);
                }
        }
        assert_int_equal(total_records, n);
        assert_int_equal(total_octets, octets_of(0, n));
        if (!dump)
                print_message("ipfixDump not installed, checked with our own parser only\n");
        output_free(o);
        sd_event_unref(e);
        free(recs);
        rm_rf(dir);
        free(dir);
}

static void test_ipfix_file_time(void **state) {
        char *dir = make_tmpdir(), cfg[700], names[8][256];
        FlowRecord *recs = make_recs(20, 0);
        sd_event *e = NULL;
        Output *o;
        OutputStats s;
        uint64_t end;

        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"ipfix-file\",\"path\":\"%s/t\",\"rotate_s\":1}", dir);
        o = new_output(cfg, e, NULL, "p");
        assert_int_equal(output_write(o, recs, 10), 0);
        output_flush(o);
        assert_string_equal(stats(o).state, "open");
        /* The once-a-second check closes the file when it is a second old. */
        end = now_usec() + 3000000;
        while (stats(o).files == 0 && now_usec() < end)
                assert_true(sd_event_run(e, 100000) >= 0);
        s = stats(o);
        assert_int_equal(s.files, 1);
        assert_string_equal(s.state, "idle");
        /* An idle period opens no file; the next records start one, with templates. */
        assert_int_equal(output_write(o, recs + 10, 10), 0);
        assert_int_equal(output_close(o, 0), 0);
        s = stats(o);
        assert_int_equal(s.files, 2);
        assert_int_equal(s.records, 20);
        assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 2);
        for (size_t i = 0; i < 2; i++) {
                char full[2400];
                uint8_t *data;
                size_t len;
                Parsed ps = { 0 };

                (void) snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
                len = read_file(full, &data);
                assert_int_equal(parse_ipfix(data, len, &ps), len);
                assert_true(ps.first_is_template);
                assert_true(ps.seq_ok);
                assert_int_equal(ps.records, 10);
                assert_int_equal(ps.next_seq, 10);      /* each file's sequence starts at 0 */
                assert_int_equal(ps.octets, octets_of(10 * (unsigned) i, 10));
                if (access(IPFIXDUMP, X_OK) == 0) {
                        uint64_t dr, doct;
                        ipfixdump(full, &dr, &doct);
                        assert_int_equal(dr, 10);
                        assert_int_equal(doct, ps.octets);
                }
                free(data);
        }
        output_free(o);
        sd_event_unref(e);
        free(recs);
        rm_rf(dir);
        free(dir);
}

/* ---- IPFIX over TCP -------------------------------------------------------------------- */

static int listen_tcp(uint16_t port, uint16_t *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        socklen_t al = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 8), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &al), 0);
        if (ret_port)
                *ret_port = ntohs(a.sin_port);
        return fd;
}

typedef struct Peer {
        int lfd, cfd;
        uint8_t buf[1 << 20];
        size_t len;
        Parsed ps;
} Peer;

/* Accepts if needed and reads what arrived (non-blocking). */
static void peer_poll(Peer *p) {
        if (p->cfd < 0) {
                p->cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (p->cfd < 0) {
                        assert_true(errno == EAGAIN);
                        return;
                }
        }
        for (;;) {
                ssize_t k = recv(p->cfd, p->buf + p->len, sizeof(p->buf) - p->len, 0);
                size_t used;
                if (k <= 0)
                        break;
                p->len += (size_t) k;
                used = parse_ipfix(p->buf, p->len, &p->ps);
                memmove(p->buf, p->buf + used, p->len - used);
                p->len -= used;
        }
}

static void run_until_records(sd_event *e, Peer *p, uint64_t want, unsigned timeout_ms) {
        uint64_t end = now_usec() + timeout_ms * 1000u;

        while (p->ps.records < want && now_usec() < end) {
                assert_true(sd_event_run(e, 5000) >= 0);
                peer_poll(p);
        }
}

static void test_ipfix_tcp(void **state) {
        uint16_t port;
        char cfg[256];
        const unsigned n = 20000;
        FlowRecord *recs = make_recs(n, 0);
        sd_event *e = NULL;
        Peer *p = calloc(1, sizeof(*p));
        Output *o;
        OutputStats s;
        int fl;

        assert_non_null(p);
        p->cfd = -1;
        p->lfd = listen_tcp(0, &port);
        fl = fcntl(p->lfd, F_GETFL);
        assert_int_equal(fcntl(p->lfd, F_SETFL, fl | O_NONBLOCK), 0);
        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:%u\",\"odid\":9}", port);
        o = new_output(cfg, e, NULL, "p");
        for (unsigned i = 0; i < n; i += 1000) {
                assert_int_equal(output_write(o, recs + i, 1000), 0);
                output_flush(o);
                assert_true(sd_event_run(e, 0) >= 0);
                peer_poll(p);
        }
        run_until_records(e, p, n, 5000);
        s = stats(o);
        assert_string_equal(s.state, "connected");
        assert_string_equal(s.type, "ipfix-tcp");
        assert_int_equal(p->ps.records, n);
        assert_int_equal(p->ps.octets, octets_of(0, n));
        assert_true(p->ps.first_is_template);
        assert_true(p->ps.seq_ok);
        assert_int_equal(p->ps.next_seq, n);
        assert_int_equal(p->ps.odid, 9);
        assert_true(p->ps.max_len <= 65535);
        assert_true(p->ps.messages > 20);       /* 88..124-byte records, <= 65000-byte messages */
        assert_int_equal(s.records, n);
        assert_int_equal(s.messages, p->ps.messages);
        assert_int_equal(s.dropped, 0);
        assert_int_equal(s.errors, 0);
        assert_int_equal(s.reconnects, 0);

        /* Shutdown sends what is still queued. */
        assert_int_equal(output_write(o, recs, 100), 0);
        assert_int_equal(output_close(o, 2000), 0);
        peer_poll(p);
        assert_int_equal(p->ps.records, n + 100);
        assert_true(p->ps.seq_ok);
        output_free(o);
        close(p->cfd);
        close(p->lfd);
        free(p);
        sd_event_unref(e);
        free(recs);
}

static void test_ipfix_tcp_reconnect(void **state) {
        uint16_t port;
        char cfg[256];
        FlowRecord *recs = make_recs(150, 0);
        sd_event *e = NULL;
        Peer *p = calloc(1, sizeof(*p));
        Output *o;
        OutputStats s;
        int fd, fl;

        assert_non_null(p);
        /* A port with nobody listening (yet). */
        fd = listen_tcp(0, &port);
        close(fd);
        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:%u\",\"buffer_records\":100,"
                        "\"reconnect_min_ms\":10,\"reconnect_max_ms\":40}", port);
        o = new_output(cfg, e, NULL, "p");
        run_loop(e, 100);
        s = stats(o);
        assert_true(strcmp(s.state, "backoff") == 0 || strcmp(s.state, "connecting") == 0);
        assert_true(s.errors >= 2);             /* refused, retried with backoff */

        /* The queue takes 100, the rest is dropped and counted. */
        assert_int_equal(output_write(o, recs, 150), 0);
        s = stats(o);
        assert_int_equal(s.dropped, 50);
        assert_int_equal(s.records, 0);

        /* The collector comes up: the queued records go out on the new connection. */
        p->cfd = -1;
        p->lfd = listen_tcp(port, NULL);
        fl = fcntl(p->lfd, F_GETFL);
        assert_int_equal(fcntl(p->lfd, F_SETFL, fl | O_NONBLOCK), 0);
        run_until_records(e, p, 100, 3000);
        s = stats(o);
        assert_string_equal(s.state, "connected");
        assert_int_equal(p->ps.records, 100);
        assert_int_equal(p->ps.octets, octets_of(0, 100));
        assert_true(p->ps.first_is_template);
        assert_true(p->ps.seq_ok);
        assert_int_equal(s.records, 100);
        assert_int_equal(s.reconnects, 0);      /* the first connection is no reconnect */

        /* The collector drops the connection: a new session with templates and seq 0. */
        close(p->cfd);
        p->cfd = -1;
        memset(&p->ps, 0, sizeof(p->ps));
        p->len = 0;
        run_loop(e, 50);
        assert_int_equal(output_write(o, recs + 100, 50), 0);
        output_flush(o);
        run_until_records(e, p, 50, 3000);
        s = stats(o);
        assert_string_equal(s.state, "connected");
        assert_int_equal(s.reconnects, 1);
        assert_int_equal(p->ps.records, 50);
        assert_int_equal(p->ps.octets, octets_of(100, 50));
        assert_true(p->ps.first_is_template);
        assert_true(p->ps.seq_ok);
        assert_int_equal(p->ps.next_seq, 50);   /* the new session started at 0 */
        assert_int_equal(s.records, 150);
        assert_int_equal(s.dropped, 50);

        /* Collector gone at shutdown: close gives up after its timeout, counting the loss. */
        close(p->cfd);
        close(p->lfd);
        run_loop(e, 50);
        assert_int_equal(output_write(o, recs, 30), 0);
        assert_int_equal(output_close(o, 100), 30);
        s = stats(o);
        assert_int_equal(s.dropped, 80);
        output_free(o);
        free(p);
        sd_event_unref(e);
        free(recs);
}

/* ---- IPFIX over UDP -------------------------------------------------------------------- */

static void test_ipfix_udp(void **state) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t al = sizeof(a);
        char cfg[256];
        const unsigned n = 1000;
        FlowRecord *recs = make_recs(n, 0);
        sd_event *e = NULL;
        Parsed ps = { 0 };
        uint64_t templates_before;
        Output *o;
        OutputStats s;
        uint8_t dg[65536];
        int fd;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &al), 0);
        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"ipfix-udp\",\"target\":\"127.0.0.1:%u\",\"max_message\":512,"
                        "\"template_resend_s\":1,\"odid\":3}", ntohs(a.sin_port));
        o = new_output(cfg, e, NULL, "p");
        s = stats(o);
        assert_string_equal(s.state, "open");
        for (unsigned i = 0; i < n; i += 100) {
                ssize_t k;
                assert_int_equal(output_write(o, recs + i, 100), 0);
                output_flush(o);
                while ((k = recv(fd, dg, sizeof(dg), 0)) > 0) {
                        assert_true(k <= 512);
                        assert_int_equal(parse_ipfix(dg, (size_t) k, &ps), (size_t) k);
                }
        }
        assert_true(ps.first_is_template);
        assert_int_equal(ps.template_sets, 1);
        assert_int_equal(ps.records, n);
        assert_int_equal(ps.octets, octets_of(0, n));
        assert_true(ps.seq_ok);
        assert_int_equal(ps.odid, 3);
        s = stats(o);
        assert_int_equal(s.records, n);
        assert_int_equal(s.messages, ps.messages);
        assert_int_equal(s.dropped, 0);

        /* Templates are sent again every template_resend_s. */
        templates_before = ps.template_sets;
        for (uint64_t end = now_usec() + 3000000;
             ps.template_sets == templates_before && now_usec() < end;) {
                ssize_t k;
                assert_true(sd_event_run(e, 10000) >= 0);
                while ((k = recv(fd, dg, sizeof(dg), 0)) > 0)
                        assert_int_equal(parse_ipfix(dg, (size_t) k, &ps), (size_t) k);
        }
        assert_int_equal(ps.template_sets, templates_before + 1);
        assert_true(ps.seq_ok);

        /* Nobody listening: sends fail (ECONNREFUSED) and the records are counted, never
         * blocking. */
        close(fd);
        for (unsigned i = 0; i < 5; i++) {
                assert_int_equal(output_write(o, recs, 10), 0);
                output_flush(o);
        }
        s = stats(o);
        assert_true(s.dropped > 0);
        assert_true(s.errors > 0);
        assert_int_equal(s.records + s.dropped, n + 50);
        assert_int_equal(output_close(o, 0), 0);
        output_free(o);
        sd_event_unref(e);
        free(recs);
}

/* ---- JSON lines ------------------------------------------------------------------------ */

/* Checks one line against the record it came from. */
static void check_json_line(const char *line, const FlowRecord *f) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        char src[64];

        if (!j)
                fail_msg("bad JSON line '%s': %s", line, jerr.text);
        assert_int_equal(json_integer_value(json_object_get(j, "octets")), f->octets);
        assert_int_equal(json_integer_value(json_object_get(j, "start_ms")), f->start_ms);
        assert_int_equal(json_integer_value(json_object_get(j, "src_port")), f->src_port);
        assert_string_equal(json_string_value(json_object_get(j, "src_addr")),
                            flow_addr_format(f->src_addr, f->family, src, sizeof(src)));
        json_decref(j);
}

static void test_json_file(void **state) {
        char *dir = make_tmpdir(), cfg[700], names[64][256];
        const unsigned n = 2000;
        FlowRecord *recs = make_recs(n, 0);
        sd_event *e = NULL;
        Output *o;
        OutputStats s;
        size_t nf;
        unsigned line_no = 0;

        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(cfg, sizeof(cfg),
                        "{\"type\":\"json\",\"path\":\"%s/j\",\"rotate_bytes\":65536}", dir);
        o = new_output(cfg, e, NULL, "p");
        for (unsigned i = 0; i < n; i += 250)
                assert_int_equal(output_write(o, recs + i, 250), 0);
        assert_int_equal(output_close(o, 0), 0);
        s = stats(o);
        assert_int_equal(s.records, n);
        assert_int_equal(s.dropped, 0);
        nf = list_dir(dir, names, ELEMENTSOF(names));
        assert_int_equal(nf, s.files);
        assert_true(nf >= 5);
        for (size_t i = 0; i < nf; i++) {
                char full[2400];
                uint8_t *data;
                size_t len;
                char *line, *cur;

                (void) snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
                assert_non_null(strstr(names[i], ".json"));
                len = read_file(full, &data);
                assert_true(len <= 65536);              /* never beyond rotate_bytes */
                if (i + 1 < nf)
                        assert_true(len > 60000);       /* full but for the last line */
                assert_int_equal(data[len - 1], '\n');  /* whole lines only */
                cur = (char *) data;
                while ((line = next_line(&cur)))
                        check_json_line(line, &recs[line_no++]);
                free(data);
        }
        assert_int_equal(line_no, n);
        output_free(o);
        sd_event_unref(e);
        free(recs);
        rm_rf(dir);
        free(dir);
}

static int saved_stdout = -1;

static int restore_stdout(void **state) {
        if (saved_stdout >= 0) {
                (void) dup2(saved_stdout, STDOUT_FILENO);
                close(saved_stdout);
                saved_stdout = -1;
        }
        return 0;
}

/* Reads the pipe until it is empty, appending to @acc. */
static void drain_pipe(int fd, char **acc, size_t *len, size_t *cap) {
        for (;;) {
                ssize_t k;
                if (*cap - *len < 65536) {
                        *cap = *cap * 2 + 65536;
                        *acc = realloc(*acc, *cap);
                        assert_non_null(*acc);
                }
                k = read(fd, *acc + *len, *cap - *len - 1);
                if (k <= 0)
                        break;
                *len += (size_t) k;
        }
        (*acc)[*len] = '\0';
}

static void test_json_stdout(void **state) {
        const unsigned n = 5000;
        FlowRecord *recs = make_recs(n, 0);
        sd_event *e = NULL;
        int pfd[2];
        Output *o;
        OutputStats s;
        char *acc = NULL, *line, *cur;
        size_t len = 0, cap = 0;
        unsigned lines = 0;
        uint64_t t0;

        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        assert_int_equal(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
        fflush(stdout);
        saved_stdout = dup(STDOUT_FILENO);
        assert_true(saved_stdout >= 0);
        assert_int_equal(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
        close(pfd[1]);
        /* Our stdout (the write end) was blocking; the output must not change that. */
        assert_int_equal(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0);

        assert_int_equal(sd_event_new(&e), 0);
        o = new_output("{\"type\":\"json\",\"path\":\"-\"}", e, NULL, "p");
        assert_int_equal(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0);

        /* 5000 lines of ~450 bytes overflow a 64 KiB pipe nobody reads: never blocks. */
        t0 = now_usec();
        for (unsigned i = 0; i < n; i += 100)
                assert_int_equal(output_write(o, recs + i, 100), 0);
        assert_true(now_usec() - t0 < 2000000);
        s = stats(o);
        assert_string_equal(s.state, "open");
        assert_true(s.dropped > 0);
        assert_true(s.records > 0);
        assert_true(s.records + s.dropped < n); /* a partial chunk is still pending */

        /* The reader catches up: the loop finishes the pending tail. */
        for (unsigned i = 0; i < 100; i++) {
                drain_pipe(pfd[0], &acc, &len, &cap);
                assert_true(sd_event_run(e, 10000) >= 0);
                output_flush(o);
                s = stats(o);
                if (s.records + s.dropped == n)
                        break;
        }
        drain_pipe(pfd[0], &acc, &len, &cap);
        s = stats(o);
        assert_int_equal(s.records + s.dropped, n);
        assert_int_equal(s.bytes, len);

        /* Every line that arrived is whole and parses; they arrive in order. */
        assert_true(len > 0 && acc[len - 1] == '\n');
        cur = acc;
        while ((line = next_line(&cur))) {
                json_t *j = json_loads(line, 0, NULL);
                assert_non_null(j);
                json_decref(j);
                lines++;
        }
        assert_int_equal(lines, s.records);
        {
                /* The first lines are the first records. */
                char first[1024];
                assert_true(flow_record_to_json(&recs[0], first, sizeof(first)) > 0);
                assert_int_equal(strncmp(first, acc, strlen(first)), 0);
        }

        /* More after the reader caught up goes straight out. */
        assert_int_equal(output_write(o, recs, 10), 0);
        len = 0;
        drain_pipe(pfd[0], &acc, &len, &cap);
        assert_int_equal(stats(o).records, lines + 10);
        assert_int_equal(output_close(o, 100), 0);
        output_free(o);
        restore_stdout(NULL);
        close(pfd[0]);
        free(acc);
        sd_event_unref(e);
        free(recs);
}

/* ---- ZeroMQ PUB ------------------------------------------------------------------------ */

static int recv_frames(void *sub, char *name, size_t name_cap, void **ret_batch, size_t *ret_len) {
        zmq_msg_t m;
        int k, more;
        size_t sz = sizeof(more);

        k = zmq_recv(sub, name, name_cap - 1, ZMQ_DONTWAIT);
        if (k < 0)
                return -errno;
        name[MIN((size_t) k, name_cap - 1)] = '\0';
        assert_int_equal(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz), 0);
        assert_int_equal(more, 1);
        assert_int_equal(zmq_msg_init(&m), 0);
        assert_true(zmq_msg_recv(&m, sub, 0) >= 0);
        *ret_len = zmq_msg_size(&m);
        /* ZeroMQ does not promise alignment: copy into an aligned buffer to decode. */
        *ret_batch = malloc(*ret_len);
        assert_non_null(*ret_batch);
        memcpy(*ret_batch, zmq_msg_data(&m), *ret_len);
        zmq_msg_close(&m);
        return 0;
}

static void test_zmq_pub(void **state) {
        void *zctx = zmq_ctx_new();
        void *sub;
        sd_event *e = NULL;
        const unsigned n = 2500;
        FlowRecord *recs = make_recs(n, 0);
        Output *o;
        OutputStats s;
        char name[64];
        uint64_t got = 0, octets = 0, batches = 0;
        int rcvhwm = 1;

        assert_non_null(zctx);
        assert_int_equal(sd_event_new(&e), 0);
        o = new_output("{\"type\":\"zmq-pub\",\"endpoint\":\"inproc://test-output\","
                       "\"batch_records\":1000,\"hwm\":4}", e, zctx, "pipe-a");
        sub = zmq_socket(zctx, ZMQ_SUB);
        assert_non_null(sub);
        assert_int_equal(zmq_setsockopt(sub, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)), 0);
        assert_int_equal(zmq_connect(sub, "inproc://test-output"), 0);
        assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "pipe-a", 6), 0);

        /* The subscription reaches the publisher when it next looks at its socket. */
        for (unsigned i = 0; i < 200; i++) {
                void *batch;
                size_t blen;

                output_flush(o);
                assert_int_equal(output_write(o, recs, 1), 0);
                output_flush(o);
                if (recv_frames(sub, name, sizeof(name), &batch, &blen) == 0) {
                        free(batch);
                        break;
                }
                usleep(5000);
        }
        s = stats(o);
        got = 0;

        /* 2500 records in batches of 1000: two full batches and a flushed partial one. */
        {
                uint64_t before = s.records;
                void *batch;
                size_t blen;

                assert_int_equal(output_write(o, recs, n), 0);
                output_flush(o);
                s = stats(o);
                assert_int_equal(s.records - before + s.dropped, n);
                while (recv_frames(sub, name, sizeof(name), &batch, &blen) == 0) {
                        FlowBatchHeader h;
                        const FlowRecord *r;
                        int k = flow_batch_decode(batch, blen, &h, &r);

                        assert_string_equal(name, "pipe-a");
                        assert_true(k > 0);
                        for (int i = 0; i < k; i++)
                                octets += r[i].octets;
                        got += (uint64_t) k;
                        batches++;
                        free(batch);
                }
                /* Whatever the subscriber's queue could not take was counted, not lost. */
                assert_int_equal(got, s.records - before);
                assert_true(batches >= 1);
                if (s.dropped == 0)
                        assert_int_equal(octets, octets_of(0, n));
        }

        /* A subscriber that does not read: the high-water mark makes sends fail, counted. */
        {
                uint64_t rec_before = s.records, drop_before = s.dropped;
                for (unsigned i = 0; i < 50; i++) {
                        assert_int_equal(output_write(o, recs, 1000), 0);
                        output_flush(o);
                }
                s = stats(o);
                assert_true(s.dropped > drop_before);
                assert_int_equal(s.records - rec_before + s.dropped - drop_before, 50000u);
                /* inproc: hwm 4 + rcvhwm 1 messages, a few more in flight */
                if (s.records - rec_before > 10000)
                        fail_msg("%" PRIu64 " records sent to a stuck subscriber",
                                 s.records - rec_before);
        }
        assert_string_equal(s.state, "open");
        assert_string_equal(s.type, "zmq-pub");
        assert_string_equal(s.target, "inproc://test-output");
        assert_int_equal(output_close(o, 0), 0);
        output_free(o);
        zmq_close(sub);
        zmq_ctx_term(zctx);
        sd_event_unref(e);
        free(recs);
}

static void test_output_new_errors(void **state) {
        OutputConfig *c;
        Output *o = NULL;
        sd_event *e = NULL;
        char *err = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        c = parse("{\"type\":\"ipfix-file\",\"path\":\"/nonexistent-dir-for-test/x\"}");
        assert_int_equal(output_new(&o, c, e, NULL, "p", &err), -ENOENT);
        assert_null(o);
        assert_non_null(err);
        assert_int_equal(strncmp(err, "path: ", 6), 0);
        free(err);
        err = NULL;
        assert_int_equal(output_new(&o, c, NULL, NULL, "p", &err), -EINVAL);
        free(err);
        output_config_free(c);

        c = parse("{\"type\":\"zmq-pub\",\"endpoint\":\"inproc://x\"}");
        assert_int_equal(output_new(&o, c, e, NULL, "p", NULL), -EINVAL);
        output_config_free(c);

        /* An output freed without close still completes its file. */
        {
                char *dir = make_tmpdir(), cfg[600], names[4][256];
                FlowRecord *recs = make_recs(10, 0);

                (void) snprintf(cfg, sizeof(cfg), "{\"type\":\"json\",\"path\":\"%s/x\"}", dir);
                o = new_output(cfg, e, NULL, "p");
                assert_string_equal(output_config_target(output_get_config(o)) +
                                            strlen(dir), "/x");
                assert_int_equal(output_write(o, recs, 10), 0);
                output_free(o);
                assert_int_equal(list_dir(dir, names, ELEMENTSOF(names)), 1);
                assert_int_equal(names[0][0], 'x');
                free(recs);
                rm_rf(dir);
                free(dir);
        }
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_valid),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_parse_target),
                cmocka_unit_test(test_rotate_size),
                cmocka_unit_test(test_rotate_time),
                cmocka_unit_test(test_rotate_atomic),
                cmocka_unit_test(test_ipfix_file),
                cmocka_unit_test(test_ipfix_file_time),
                cmocka_unit_test(test_ipfix_tcp),
                cmocka_unit_test(test_ipfix_tcp_reconnect),
                cmocka_unit_test(test_ipfix_udp),
                cmocka_unit_test(test_json_file),
                cmocka_unit_test_teardown(test_json_stdout, restore_stdout),
                cmocka_unit_test(test_zmq_pub),
                cmocka_unit_test(test_output_new_errors),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
