/* SPDX-License-Identifier: MIT */
/*
 * ipfix.h - RFC 7011 wire constants, message framing, template records and the template
 * serialization codec shared by the collector (decode, store) and later the Redis store and
 * the API (listing templates).
 *
 * Everything here parses untrusted bytes: every function checks lengths before reading,
 * returns -EBADMSG (malformed) or -ENOBUFS/-E2BIG (a limit was hit) and never asserts on
 * packet contents.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPFIX_VERSION 10
#define NETFLOW9_VERSION 9
#define IPFIX_HEADER_SIZE 16u
#define IPFIX_SET_HEADER_SIZE 4u
#define IPFIX_MAX_MESSAGE 65535u
#define IPFIX_SET_TEMPLATE 2
#define IPFIX_SET_OPTIONS_TEMPLATE 3
#define IPFIX_SET_MIN_DATA 256
#define IPFIX_VARLEN 65535
#define IPFIX_ENTERPRISE_BIT 0x8000u
/* A template cannot have more fields than fit in one set of a maximum-size message. */
#define IPFIX_MAX_FIELDS 4096u

typedef struct IpfixHeader {
        uint16_t version;
        uint16_t length;
        uint32_t export_time;
        uint32_t sequence;
        uint32_t odid;
} IpfixHeader;

/**
 * ipfix_header_parse() - reads the 16-octet message header.
 * Return: 0, or -EBADMSG if @len < 16.
 */
int ipfix_header_parse(const uint8_t *p, size_t len, IpfixHeader *ret);

/* Writes a 16-octet message header (length 16, sequence 0; the caller sets the length). */
void ipfix_write_header(uint8_t *p, uint32_t export_time, uint32_t odid);

/**
 * ipfix_frame() - finds the first complete IPFIX message at the start of a stream buffer.
 * @p, @len:    bytes received so far on a stream (TCP) transport
 * @max_msg:    largest message accepted (<= 65535)
 * @ret_msglen: length of the complete message, set when 1 is returned
 *
 * Return: 1 when a complete message starts at @p, 0 when more bytes are needed,
 * -EPROTO when the version is not 10, -EBADMSG when the length field is below 16,
 * -EMSGSIZE when it exceeds @max_msg. An error means the stream cannot be resynchronized.
 */
int ipfix_frame(const uint8_t *p, size_t len, size_t max_msg, size_t *ret_msglen);

typedef struct IpfixField {
        uint32_t pen;           /* private enterprise number, 0 for IANA elements */
        uint16_t id;            /* element id without the enterprise bit */
        uint16_t len;           /* octets, or IPFIX_VARLEN */
} IpfixField;

typedef struct IpfixTemplate {
        uint16_t id;
        uint16_t scope_count;   /* > 0 for options templates */
        uint16_t field_count;
        uint16_t min_record_len;        /* fixed part; a variable field counts as 1 octet */
        bool varlen;                    /* has at least one variable-length field */
        uint32_t flags;                 /* decoder's per-template hints, 0 from the codec */
        IpfixField fields[];
} IpfixTemplate;

/**
 * ipfix_template_parse() - parses one template record (set id 2) or options template
 * record (set id 3) at @p.
 * @ret:      newly allocated template, caller frees with free(); NULL for a withdrawal
 * @ret_used: octets consumed
 *
 * Return: 0 on a definition, 1 on a withdrawal (field count 0; @ret is NULL), -EBADMSG when
 * truncated or invalid (template id < 256, scope count 0 or > field count, a record length
 * of 0), -E2BIG when the field count exceeds IPFIX_MAX_FIELDS.
 */
int ipfix_template_parse(const uint8_t *p, size_t len, bool options, IpfixTemplate **ret,
                         size_t *ret_used);

/* Allocates a template with room for @field_count fields (fields zeroed). */
IpfixTemplate *ipfix_template_new(uint16_t id, uint16_t scope_count, uint16_t field_count);
IpfixTemplate *ipfix_template_dup(const IpfixTemplate *t);
/* Recomputes min_record_len and varlen from the fields. */
void ipfix_template_finish(IpfixTemplate *t);
/* Same id, scope count and fields. */
bool ipfix_template_equal(const IpfixTemplate *a, const IpfixTemplate *b);

/**
 * ipfix_template_record_len() - length of the data record at @p described by @t.
 * Return: octets (> 0), or -EBADMSG when the record (or a varlen prefix) is truncated.
 */
int ipfix_template_record_len(const IpfixTemplate *t, const uint8_t *p, size_t len);

/**
 * ipfix_template_count_records() - number of records in a data set body of @len octets.
 * Trailing octets shorter than the minimum record length are padding (RFC 7011 3.3.1).
 * Return: count (>= 0), or -EBADMSG.
 */
int ipfix_template_count_records(const IpfixTemplate *t, const uint8_t *p, size_t len);

/*
 * Serialized template (the value stored in Redis, ARCHITECTURE.md): big-endian
 *   u16 scope_count, u16 field_count, then per field u32 pen, u16 id, u16 len.
 * The template id is the key, not part of the value.
 */
size_t ipfix_template_serialized_size(const IpfixTemplate *t);
int ipfix_template_serialize(const IpfixTemplate *t, uint8_t *buf, size_t len);
/* Return: 0, -EBADMSG for a malformed value, -E2BIG for too many fields. */
int ipfix_template_deserialize(uint16_t id, const uint8_t *buf, size_t len,
                               IpfixTemplate **ret);
