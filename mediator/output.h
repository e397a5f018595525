/* SPDX-License-Identifier: MIT */
/*
 * output.h - the mediator's outputs: where a pipeline's FlowRecords leave the process.
 *
 * An OutputConfig is parsed from one JSON object whose member "type" selects the kind:
 *
 *   {"type":"ipfix-tcp", "target":"127.0.0.1:4739", "odid":1, "buffer_records":131072,
 *    "reconnect_min_ms":100, "reconnect_max_ms":30000, "connect_timeout_ms":5000}
 *   {"type":"ipfix-udp", "target":"[::1]:4739", "odid":1, "template_resend_s":30,
 *    "max_message":1400}
 *   {"type":"ipfix-file", "path":"/dir/prefix", "rotate_s":300, "rotate_bytes":104857600,
 *    "odid":1}
 *   {"type":"json", "path":"-" (stdout) or "/dir/prefix", "rotate_s":300,
 *    "rotate_bytes":104857600}
 *   {"type":"zmq-pub", "endpoint":"tcp://127.0.0.1:9401", "hwm":1000, "batch_records":1024,
 *    "bind":true, "sender_id":0}
 *
 * Every number has bounds and a default (output.c, one table per type); unknown members are
 * errors. Targets are numeric "a.b.c.d:port" or "[v6]:port" (no DNS lookups: resolving
 * would block the loop; put a name in the config generator, not here).
 *
 * An Output runs on the mediator's sd-event loop and never blocks it: records it cannot take
 * (queue full, socket or pipe full, write error) are dropped and counted. Only
 * output_close() may block, for at most its timeout, at shutdown.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "flow.h"
#include "macro.h"

typedef enum OutputType {
        OUTPUT_IPFIX_TCP,
        OUTPUT_IPFIX_UDP,
        OUTPUT_IPFIX_FILE,
        OUTPUT_JSON,
        OUTPUT_ZMQ_PUB,
        _OUTPUT_TYPE_MAX,
        _OUTPUT_TYPE_INVALID = -EINVAL,
} OutputType;

/* "ipfix-tcp", ... or NULL for an invalid type. */
const char *output_type_to_string(OutputType t);
OutputType output_type_from_string(const char *s);

typedef struct OutputConfig OutputConfig;       /* opaque, parsed from one JSON object */

/**
 * output_config_parse() - parses and validates one output object.
 * @obj:    JSON object (borrowed)
 * @ret:    the new config, set on success (caller frees with output_config_free())
 * @reterr: on -EINVAL, a heap message starting with the member name, e.g.
 *          "target: expected host:port" or "hwm: must be 1..1000000, got 0" (caller frees)
 *
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int output_config_parse(json_t *obj, OutputConfig **ret, char **reterr);
OutputConfig *output_config_free(OutputConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OutputConfig *, output_config_free);

/* True when @a and @b describe the same output (a reload keeps such an output running). */
bool output_config_equal(const OutputConfig *a, const OutputConfig *b);
OutputType output_config_type(const OutputConfig *c);
/* Target text for humans: "127.0.0.1:4739", the path, or the endpoint. Borrowed. */
const char *output_config_target(const OutputConfig *c);

typedef struct Output Output;

/**
 * output_new() - starts an output (a TCP output starts connecting in the background; a
 * file output opens its first file at the first record).
 * @cfg:      copied
 * @e:        the loop the output's sources run on (required)
 * @zctx:     ZeroMQ context (required for zmq-pub, may be NULL otherwise)
 * @pipeline: the pipeline's name (copied; the first frame of zmq-pub messages)
 * @reterr:   on failure, a heap message for the operator (caller frees), or NULL
 *
 * Return: 0; -EINVAL (missing loop/context), -ENOENT/-EACCES/... (the file output's
 * directory), -EADDRINUSE (zmq bind), -ENOMEM, or another -errno.
 */
int output_new(Output **ret, const OutputConfig *cfg, sd_event *e, void *zctx,
               const char *pipeline, char **reterr);

/**
 * output_write() - hands @n records to the output. Never blocks: records the output cannot
 * take are dropped and counted in OutputStats.dropped. @recs is only read during the call.
 * Return: 0, or -ESHUTDOWN after output_close() (nothing is counted then), -ENOMEM.
 */
int output_write(Output *o, const FlowRecord *recs, size_t n);

/* Emits any partially filled message now (end of each input batch, and on a timer). */
void output_flush(Output *o);

/**
 * output_close() - shutdown: flushes, gives a TCP connection (or stdout pipe) up to
 * @timeout_ms to take what is buffered - this may block, and is only for use outside
 * normal loop operation - then closes sockets and closes/renames files. Idempotent.
 * Return: records dropped at close (also counted in dropped).
 */
int output_close(Output *o, uint64_t timeout_ms);

/* Frees @o; an output not closed yet is closed with a zero timeout first. NULL-safe. */
Output *output_free(Output *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Output *, output_free);

/* The config @o was created from (borrowed, lives as long as @o). */
const OutputConfig *output_get_config(const Output *o);

typedef struct OutputStats {
        const char *type;       /* "ipfix-tcp", ... */
        const char *target;     /* "127.0.0.1:4739", path or endpoint */
        const char *state;      /* "connected", "connecting", "backoff", "open", "idle", "error" */
        uint64_t records;       /* records delivered (written to the socket/file, sent) */
        uint64_t messages;      /* IPFIX messages, JSON chunks or ZeroMQ messages delivered */
        uint64_t bytes;         /* bytes delivered */
        uint64_t dropped;       /* records lost: queue full, send or write failed, closed */
        uint64_t errors;        /* failed connects, lost connections, failed writes */
        uint64_t reconnects;    /* TCP connections established after the first one */
        uint64_t files;         /* files completed (renamed into place) */
} OutputStats;

/* Fills @ret; the strings are borrowed from @o and valid until its next call. */
void output_get_stats(const Output *o, OutputStats *ret);

/* Parses a numeric "a.b.c.d:port" or "[v6]:port" (port 1..65535). Return: 0 or -EINVAL. */
int output_parse_target(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
