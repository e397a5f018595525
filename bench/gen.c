/* SPDX-License-Identifier: MIT */
/*
 * gen.c - ipfixd-gen, an IPFIX (RFC 7011) traffic generator for tests and benchmarks.
 * This file only parses the command line and resolves addresses; message encoding lives
 * in gen-ipfix.c and the socket loop in gen-run.c. On success it prints exactly one JSON
 * summary line on stdout and exits 0; any error goes to stderr and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gen-ipfix.h"
#include "gen-run.h"
#include "macro.h"

#define GEN_DEFAULT_RECORDS 100000u
#define GEN_DEFAULT_SIZE_TCP 8192u
#define GEN_DEFAULT_SIZE_UDP 1400u
#define GEN_UDP_PAYLOAD_MAX 65507u      /* IPv4 UDP payload limit */
#define GEN_CONNECTIONS_MAX 65535u

typedef struct GenArgs {
        GenRunConfig run;
        const char *dest;
        const char *bind;
        uint64_t message_size;          /* 0 = protocol default */
        uint64_t template_id;           /* 0 = per address family */
} GenArgs;

static inline void freeaddrinfop(struct addrinfo **p) {
        if (*p)
                freeaddrinfo(*p);
}

static void help(FILE *f) {
        fprintf(f,
                "Usage: ipfixd-gen [OPTIONS] HOST:PORT\n"
                "Sends IPFIX (RFC 7011) flow records to HOST:PORT (HOST: IPv4, [IPv6] or a name)\n"
                "and prints {\"records\":N,\"octets\":X,\"packets\":Y,\"messages\":M} when done.\n"
                "\n"
                "  --proto tcp|udp           transport (default tcp)\n"
                "  --records N               data records in total (default %u)\n"
                "  --connections C           TCP connections or UDP sockets (default 1)\n"
                "  --rate R                  records per second in total, 0 = unpaced (default 0)\n"
                "  --template-mode MODE      first | every:K | none | only (default first)\n"
                "  --odid D                  observation domain id (default 1)\n"
                "  --ipv6                    use the IPv6 record template\n"
                "  --seed S                  PRNG seed for field values (default 1)\n"
                "  --time-spread S           flows start from S seconds ago to now, in the\n"
                "                            order sent (default 0: within the last minute)\n"
                "  --message-size BYTES      max IPFIX message size (default 8192 tcp, 1400 udp)\n"
                "  --bind ADDR               local source address\n"
                "  --template-id T           template id (default 256 IPv4, 257 IPv6)\n"
                "  --help                    show this help\n",
                GEN_DEFAULT_RECORDS);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_template_mode(const char *s, GenMessageConfig *m) {
        if (strcmp(s, "first") == 0)
                m->mode = GEN_TEMPLATE_FIRST;
        else if (strcmp(s, "none") == 0)
                m->mode = GEN_TEMPLATE_NONE;
        else if (strcmp(s, "only") == 0)
                m->mode = GEN_TEMPLATE_ONLY;
        else if (strncmp(s, "every:", 6) == 0) {
                if (parse_u64(s + 6, 1, UINT64_MAX, &m->every) < 0)
                        return -EINVAL;
                m->mode = GEN_TEMPLATE_EVERY;
        } else
                return -EINVAL;
        return 0;
}

static int parse_args(int argc, char **argv, GenArgs *a) {
        enum {
                ARG_PROTO = 0x100,
                ARG_RECORDS,
                ARG_CONNECTIONS,
                ARG_RATE,
                ARG_TEMPLATE_MODE,
                ARG_ODID,
                ARG_IPV6,
                ARG_SEED,
                ARG_MESSAGE_SIZE,
                ARG_BIND,
                ARG_TEMPLATE_ID,
                ARG_TIME_SPREAD,
                ARG_HELP,
        };
        static const struct option options[] = {
                { "proto", required_argument, NULL, ARG_PROTO },
                { "records", required_argument, NULL, ARG_RECORDS },
                { "connections", required_argument, NULL, ARG_CONNECTIONS },
                { "rate", required_argument, NULL, ARG_RATE },
                { "template-mode", required_argument, NULL, ARG_TEMPLATE_MODE },
                { "odid", required_argument, NULL, ARG_ODID },
                { "ipv6", no_argument, NULL, ARG_IPV6 },
                { "seed", required_argument, NULL, ARG_SEED },
                { "message-size", required_argument, NULL, ARG_MESSAGE_SIZE },
                { "bind", required_argument, NULL, ARG_BIND },
                { "template-id", required_argument, NULL, ARG_TEMPLATE_ID },
                { "time-spread", required_argument, NULL, ARG_TIME_SPREAD },
                { "help", no_argument, NULL, ARG_HELP },
                {}
        };
        uint64_t v;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case ARG_PROTO:
                        if (strcmp(optarg, "tcp") == 0)
                                a->run.proto = GEN_PROTO_TCP;
                        else if (strcmp(optarg, "udp") == 0)
                                a->run.proto = GEN_PROTO_UDP;
                        else
                                r = -EINVAL;
                        break;
                case ARG_RECORDS:
                        r = parse_u64(optarg, 0, UINT64_MAX, &a->run.records);
                        break;
                case ARG_CONNECTIONS:
                        r = parse_u64(optarg, 1, GEN_CONNECTIONS_MAX, &v);
                        a->run.connections = (unsigned) v;
                        break;
                case ARG_RATE:
                        errno = 0;
                        a->run.rate = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end != '\0' ||
                            !isfinite(a->run.rate) || a->run.rate < 0)
                                r = -EINVAL;
                        break;
                case ARG_TEMPLATE_MODE:
                        r = parse_template_mode(optarg, &a->run.msg);
                        break;
                case ARG_ODID:
                        r = parse_u64(optarg, 0, UINT32_MAX, &v);
                        a->run.msg.odid = (uint32_t) v;
                        break;
                case ARG_IPV6:
                        a->run.msg.ipv6 = true;
                        break;
                case ARG_SEED:
                        r = parse_u64(optarg, 0, UINT64_MAX, &a->run.seed);
                        break;
                case ARG_MESSAGE_SIZE:
                        r = parse_u64(optarg, 1, GEN_IPFIX_MESSAGE_MAX, &a->message_size);
                        break;
                case ARG_BIND:
                        a->bind = optarg;
                        break;
                case ARG_TEMPLATE_ID:
                        r = parse_u64(optarg, 256, 65535, &a->template_id);
                        break;
                case ARG_TIME_SPREAD:
                        r = parse_u64(optarg, 0, GEN_SPREAD_MS_MAX / 1000, &v);
                        a->run.msg.spread_ms = (uint32_t) (v * 1000);
                        break;
                case ARG_HELP:
                        help(stdout);
                        return 0;
                default:
                        help(stderr);
                        return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "ipfixd-gen: invalid value for --%s: '%s'\n",
                                options[c - ARG_PROTO].name, optarg);
                        return r;
                }
        }

        if (optind != argc - 1) {
                fprintf(stderr, "ipfixd-gen: expected exactly one HOST:PORT argument\n");
                help(stderr);
                return -EINVAL;
        }
        a->dest = argv[optind];
        return 1;
}

/* Splits HOST:PORT or [V6ADDR]:PORT; @ret_host is newly allocated, @ret_port borrowed. */
static int split_host_port(const char *s, char **ret_host, const char **ret_port) {
        const char *host, *host_end, *port;
        char *h;

        if (s[0] == '[') {
                host = s + 1;
                host_end = strchr(host, ']');
                if (!host_end || host_end[1] != ':')
                        return -EINVAL;
                port = host_end + 2;
        } else {
                host = s;
                host_end = strrchr(s, ':');
                if (!host_end || memchr(s, ':', (size_t) (host_end - s)))
                        return -EINVAL;         /* no port, or an IPv6 address without [] */
                port = host_end + 1;
        }
        if (host_end == host || *port == '\0')
                return -EINVAL;

        h = strndup(host, (size_t) (host_end - host));
        if (!h)
                return -ENOMEM;
        *ret_host = h;
        *ret_port = port;
        return 0;
}

static int resolve(const GenArgs *a, struct addrinfo **ret_dest, struct addrinfo **ret_bind) {
        _cleanup_(freeaddrinfop) struct addrinfo *dest = NULL, *local = NULL;
        _cleanup_free_ char *host = NULL, *bind_host = NULL;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = a->run.proto == GEN_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
                .ai_flags = AI_NUMERICSERV,
        };
        const char *port;
        uint64_t portnum;
        int r;

        if (split_host_port(a->dest, &host, &port) < 0 ||
            parse_u64(port, 1, 65535, &portnum) < 0) {
                fprintf(stderr, "ipfixd-gen: '%s' is not HOST:PORT or [V6ADDR]:PORT\n", a->dest);
                return -EINVAL;
        }
        r = getaddrinfo(host, port, &hints, &dest);
        if (r != 0) {
                fprintf(stderr, "ipfixd-gen: cannot resolve '%s': %s\n", host, gai_strerror(r));
                return -EADDRNOTAVAIL;
        }

        if (a->bind) {
                size_t n = strlen(a->bind);

                if (n >= 2 && a->bind[0] == '[' && a->bind[n - 1] == ']')
                        bind_host = strndup(a->bind + 1, n - 2);
                else
                        bind_host = strdup(a->bind);
                if (!bind_host)
                        return -ENOMEM;
                hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
                r = getaddrinfo(bind_host, "0", &hints, &local);
                if (r != 0) {
                        fprintf(stderr, "ipfixd-gen: cannot resolve --bind '%s': %s\n", a->bind,
                                gai_strerror(r));
                        return -EADDRNOTAVAIL;
                }
        }

        *ret_dest = TAKE_PTR(dest);
        *ret_bind = TAKE_PTR(local);
        return 0;
}

static int check_args(GenArgs *a) {
        GenMessageConfig *m = &a->run.msg;
        int r;

        if (a->message_size == 0)
                a->message_size = a->run.proto == GEN_PROTO_UDP ? GEN_DEFAULT_SIZE_UDP
                                                                : GEN_DEFAULT_SIZE_TCP;
        if (a->template_id == 0)
                a->template_id = m->ipv6 ? GEN_TEMPLATE_ID_V6 : GEN_TEMPLATE_ID_V4;
        m->max_size = (size_t) a->message_size;
        m->template_id = (uint16_t) a->template_id;

        if (a->run.proto == GEN_PROTO_UDP && m->max_size > GEN_UDP_PAYLOAD_MAX) {
                fprintf(stderr, "ipfixd-gen: --message-size must be at most %u for UDP\n",
                        GEN_UDP_PAYLOAD_MAX);
                return -EMSGSIZE;
        }
        r = gen_message_config_check(m);
        if (r == -EMSGSIZE)
                fprintf(stderr,
                        "ipfixd-gen: --message-size %zu cannot hold a template set and a "
                        "%zu-octet record (minimum %zu)\n",
                        m->max_size, gen_record_size(m->ipv6),
                        (size_t) (GEN_IPFIX_HEADER_SIZE + GEN_TEMPLATE_SET_SIZE +
                                  GEN_IPFIX_SET_HEADER_SIZE + gen_record_size(m->ipv6)));
        else if (r < 0)
                fprintf(stderr, "ipfixd-gen: invalid message configuration\n");
        return r;
}

int main(int argc, char **argv) {
        _cleanup_(freeaddrinfop) struct addrinfo *dest = NULL, *local = NULL;
        GenArgs a = {
                .run = {
                        .proto = GEN_PROTO_TCP,
                        .connections = 1,
                        .records = GEN_DEFAULT_RECORDS,
                        .seed = 1,
                        .msg = {
                                .odid = 1,
                                .mode = GEN_TEMPLATE_FIRST,
                        },
                },
        };
        GenStats stats = {};
        int r;

        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (check_args(&a) < 0)
                return EXIT_FAILURE;
        if (resolve(&a, &dest, &local) < 0)
                return EXIT_FAILURE;

        a.run.dest_name = a.dest;
        a.run.dest = dest;
        a.run.bind = local;
        if (gen_run(&a.run, &stats) < 0)
                return EXIT_FAILURE;

        printf("{\"records\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64
               ",\"messages\":%" PRIu64 "}\n",
               stats.records, stats.octets, stats.packets, stats.messages);
        if (fflush(stdout) != 0)
                return EXIT_FAILURE;
        return EXIT_SUCCESS;
}
