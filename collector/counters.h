/* SPDX-License-Identifier: MIT */
/*
 * counters.h - every counter the collector keeps, as one X-macro table so the struct, the
 * Prometheus names, the log summary and the D-Bus properties (one `t` property per counter,
 * named as here) derive from one list.
 * A worker thread owns its CollectorCounters and is the only writer; readers take a snapshot
 * published under the worker's lock (see worker.c). signals_dropped is the loop thread's
 * (collector-bus.c); workers leave it 0.
 */
#pragma once

#include <stdint.h>

/* X(name, help) - all are monotonically increasing counters. */
#define COLLECTOR_COUNTERS(X)                                                                  \
        X(bytes, "Octets of IPFIX/NetFlow messages received")                                  \
        X(messages, "IPFIX messages framed and accepted for decoding")                         \
        X(netflow9_messages, "NetFlow v9 packets translated to IPFIX")                         \
        X(records, "Data records decoded into flow records")                                   \
        X(options_records, "Options data records seen (not turned into flows)")              \
        X(udp_datagrams, "UDP datagrams received")                                             \
        X(tcp_accepted, "TCP connections accepted")                                            \
        X(tcp_closed, "TCP connections closed")                                                \
        X(tcp_rejected_limit, "TCP connections refused because max_connections was reached")  \
        X(tcp_proxy_accepted, "TCP connections whose PROXY protocol header was accepted")       \
        X(tcp_proxy_rejected, "TCP connections rejected: missing or invalid PROXY header")     \
        X(tcp_paused, "Times a TCP connection stopped reading because the output was full")   \
        X(err_version, "Messages with an unsupported version (stream closed for TCP)")         \
        X(err_length, "Messages with an invalid or oversized length field")                    \
        X(err_set, "Messages dropped for a malformed set header")                              \
        X(err_template, "Malformed template records")                                          \
        X(err_record, "Data sets whose records do not fit the template")                       \
        X(err_decode, "libfixbuf decode errors")                                               \
        X(err_netflow9, "Malformed NetFlow v9 packets")                                        \
        X(templates_learned, "Templates defined (new or changed)")                             \
        X(templates_refreshed, "Templates resent unchanged")                                   \
        X(templates_withdrawn, "Templates withdrawn")                                          \
        X(templates_from_store, "Templates taken from the shared store on a miss")            \
        X(store_put_failed, "Templates the shared store refused (store_max_templates reached)") \
        X(templates_rejected_limit, "Templates refused: max_templates per exporter reached")  \
        X(templates_rejected_unknown_ie, "Templates refused: unknown element limit reached")  \
        X(missing_template_sets, "Data sets dropped because their template is unknown")       \
        X(missing_template_bytes, "Octets of data sets dropped for an unknown template")      \
        X(held_sets, "Data sets held because their template was not known yet")               \
        X(held_decoded_sets, "Held data sets decoded after their template arrived")           \
        X(held_expired_sets, "Held data sets dropped: no template within hold_ms")           \
        X(held_expired_bytes, "Octets of held data sets that expired")                       \
        X(reserved_sets, "Sets with a reserved set id (4..255) skipped")                       \
        X(drop_backpressure_records, "UDP records dropped because the output queue was full") \
        X(drop_session_limit_messages, "UDP messages dropped: max_udp_sessions reached")      \
        X(drop_odid_limit_messages, "Messages dropped: max_odids per transport session reached") \
        X(drop_output_records, "Records dropped: the output queue refused a batch")            \
        X(drop_shutdown_batches, "Batches not handed over within shutdown_timeout_ms")        \
        X(tcp_truncated_close, "TCP connections closed in the middle of a message")            \
        X(template_changes_dropped, "Store change notifications dropped: a worker's inbox was full (held data is still retried)") \
        X(exporters_untracked, "Ended sessions whose totals were not kept (exporter table full)") \
        X(batches_sent, "Flow batches handed to ZeroMQ")                                       \
        X(records_sent, "Flow records handed to ZeroMQ")                                       \
        X(signals_dropped, "D-Bus signals not sent: event queue full or over the rate limit")

typedef struct CollectorCounters {
#define X_FIELD(name, help) uint64_t name;
        COLLECTOR_COUNTERS(X_FIELD)
#undef X_FIELD
} CollectorCounters;

static inline void collector_counters_add(CollectorCounters *dst, const CollectorCounters *src) {
#define X_ADD(name, help) dst->name += src->name;
        COLLECTOR_COUNTERS(X_ADD)
#undef X_ADD
}
