/* SPDX-License-Identifier: MIT */
/*
 * flow.h - the canonical flow record and the versioned batch that carries records from the
 * collector to the mediator (one ZeroMQ message per batch).
 *
 * A FlowRecord is a fixed-size, fixed-layout struct. Its layout is also its wire layout
 * (little-endian hosts only, checked at build time), so a batch is a 32-byte header followed
 * by `count` records and encoding is a memcpy. Decoding never trusts the sender: magic,
 * version, record size, count and total length are all checked, and every record's
 * address families are validated before the batch is handed out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Addresses are 16 octets; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) with family 4. */
typedef struct FlowRecord {
        uint64_t start_ms;              /* flow start, ms since the Unix epoch */
        uint64_t end_ms;                /* flow end, ms since the Unix epoch */
        uint64_t octets;
        uint64_t packets;
        uint8_t src_addr[16];
        uint8_t dst_addr[16];
        uint8_t exporter_addr[16];      /* exporter's source address (or PROXY header's) */
        uint32_t ingress_if;
        uint32_t egress_if;
        uint32_t src_as;
        uint32_t dst_as;
        uint32_t odid;                  /* observation domain id */
        uint32_t sampling;              /* packet sampling interval, 0 when not reported */
        uint16_t src_port;
        uint16_t dst_port;
        uint16_t vlan;
        uint16_t template_id;
        uint16_t tcp_flags;
        uint8_t proto;
        uint8_t tos;
        uint8_t direction;              /* flowDirection: 0 ingress, 1 egress, 255 unknown */
        uint8_t end_reason;             /* flowEndReason, 0 when not reported */
        uint8_t family;                 /* 4 or 6 */
        uint8_t exporter_family;        /* 4 or 6 */
        uint8_t reserved[4];            /* zero; room for later fields */
        uint32_t flows;                 /* flows merged into this record by aggregation;
                                         * 0 from the collector, meaning 1 */
} FlowRecord;

#define FLOW_RECORD_SIZE 128u
_Static_assert(sizeof(FlowRecord) == FLOW_RECORD_SIZE, "FlowRecord wire layout changed");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the batch wire format is the little-endian in-memory layout of FlowRecord"
#endif

#define FLOW_DIRECTION_UNKNOWN 255

#define FLOW_BATCH_MAGIC 0x42585049u    /* "IPXB" in little-endian byte order */
#define FLOW_BATCH_VERSION 1u
#define FLOW_BATCH_HEADER_SIZE 32u
#define FLOW_BATCH_MAX_RECORDS 8192u

typedef struct FlowBatchHeader {
        uint32_t magic;
        uint16_t version;
        uint16_t record_size;
        uint32_t count;
        uint32_t collector_id;
        uint64_t seq;
        uint64_t reserved;
} FlowBatchHeader;
_Static_assert(sizeof(FlowBatchHeader) == FLOW_BATCH_HEADER_SIZE, "batch header layout changed");

/**
 * flow_batch_size() - bytes needed for a batch of @count records.
 */
static inline size_t flow_batch_size(uint32_t count) {
        return FLOW_BATCH_HEADER_SIZE + (size_t) count * FLOW_RECORD_SIZE;
}

/**
 * flow_batch_records() - the record array of a batch buffer being filled.
 * @buf: a buffer of at least flow_batch_size(capacity) bytes, 8-byte aligned.
 */
static inline FlowRecord *flow_batch_records(void *buf) {
        return (FlowRecord *) ((uint8_t *) buf + FLOW_BATCH_HEADER_SIZE);
}

/**
 * flow_batch_finish() - writes the header of a batch whose records are already in place.
 * @buf:          batch buffer
 * @count:        number of records written (<= FLOW_BATCH_MAX_RECORDS)
 * @collector_id: sender id
 * @seq:          per-sender sequence number
 *
 * Return: the total number of bytes to send.
 */
size_t flow_batch_finish(void *buf, uint32_t count, uint32_t collector_id, uint64_t seq);

/**
 * flow_batch_decode() - validates a received batch.
 * @buf:         message bytes, 8-byte aligned. ZeroMQ does not promise alignment (messages
 *               received over tcp:// often are not): copy such a message into an aligned
 *               buffer first, as ipfixd-tap does. Unaligned input returns -EINVAL.
 * @len:         message length
 * @ret_header:  header copy, set on success
 * @ret_records: pointer into @buf at the first record, set on success (borrowed from @buf)
 *
 * Return: the record count (>= 0) on success; -EBADMSG for a malformed batch (bad magic,
 * length mismatch, invalid family), -EPROTONOSUPPORT for an unknown version or record size,
 * -E2BIG when the count exceeds FLOW_BATCH_MAX_RECORDS, -EINVAL for unaligned @buf.
 */
int flow_batch_decode(const void *buf, size_t len, FlowBatchHeader *ret_header,
                      const FlowRecord **ret_records);

/* Address helpers. */
void flow_addr_set_v4(uint8_t dst[16], const uint8_t v4[4]);
bool flow_addr_is_v4mapped(const uint8_t a[16]);

/**
 * flow_addr_format() - writes @a as text (dotted quad for family 4, RFC 5952 for 6).
 * @buf must hold at least 46 bytes. Returns @buf.
 */
const char *flow_addr_format(const uint8_t a[16], uint8_t family, char *buf, size_t len);

/**
 * flow_record_to_json() - formats @r as one JSON object without a trailing newline.
 *
 * Return: number of bytes written (excluding NUL), or -ENOBUFS if @len is too small.
 */
int flow_record_to_json(const FlowRecord *r, char *buf, size_t len);
