/* SPDX-License-Identifier: MIT */
/*
 * output-ipfix.h - IPFIX export of FlowRecords over TCP, UDP, or to rotated files.
 *
 * libfixbuf only encodes (buffer exporter, manual mode); this module owns the sockets and
 * files. Four templates (flow IPv4/IPv6 x original exporter IPv4/IPv6), with the mediator's
 * own observation domain id, carry the record and, per RFC 6183, the original exporter's
 * address and ODID:
 *
 *   256  flow IPv4, exporter IPv4     257  flow IPv6, exporter IPv6
 *   258  flow IPv4, exporter IPv6     259  flow IPv6, exporter IPv4
 *
 * Fields, in this order: flowStartMilliseconds(152) flowEndMilliseconds(153)
 * octetDeltaCount(1) packetDeltaCount(2) deltaFlowCount(3) source/destination address
 * (8/12 or 27/28) originalExporterIPv4Address(403) or originalExporterIPv6Address(404)
 * ingressInterface(10) egressInterface(14) bgpSourceAsNumber(16) bgpDestinationAsNumber(17)
 * samplingPacketInterval(305) originalObservationDomainId(405) sourceTransportPort(7)
 * destinationTransportPort(11) tcpControlBits(6) vlanId(58) protocolIdentifier(4)
 * ipClassOfService(5) flowDirection(61) flowEndReason(136), all at their full IANA length
 * (88 bytes for IPv4/IPv4, 124 for IPv6/IPv6). deltaFlowCount is the record's flows (0
 * read as 1); flowDirection 255 means unknown; flowEndReason and samplingPacketInterval 0
 * mean "not reported".
 *
 * Transports:
 *  - TCP: records wait in a bounded queue (buffer_records, grown on demand) and are encoded
 *    only when the socket can take them, so every connection starts with the template set
 *    and sequence numbers at 0, and a lost connection loses only the records already
 *    encoded (counted). Reconnects use exponential backoff with jitter.
 *  - UDP: a connected socket; every datagram is one message of at most max_message bytes;
 *    templates at start and every template_resend_s; a failed send drops (and counts) the
 *    message's records.
 *  - File: a RotatingFile ("<prefix>-<UTC>-<seq>.ipfix"); each file starts with the
 *    templates and its own sequence numbers; rotation by age (checked every second) or once
 *    a file reached rotate_bytes (it may exceed it by less than one 64 KiB message).
 */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include <systemd/sd-event.h>

#include "flow.h"
#include "output.h"

typedef enum IpfixTransport {
        IPFIX_TRANSPORT_TCP,
        IPFIX_TRANSPORT_UDP,
        IPFIX_TRANSPORT_FILE,
} IpfixTransport;

#define OUTPUT_IPFIX_TID_BASE 256u
#define OUTPUT_IPFIX_STREAM_MESSAGE 65000u     /* message size for TCP and files */

typedef struct OutputIpfixParams {
        IpfixTransport transport;
        const char *target;                     /* TCP/UDP: text, for stats */
        struct sockaddr_storage addr;           /* TCP/UDP: parsed target */
        socklen_t addr_len;
        const char *path;                       /* file: "/dir/prefix" */
        uint32_t odid;
        uint64_t buffer_records;                /* TCP queue capacity */
        uint64_t reconnect_min_ms, reconnect_max_ms, connect_timeout_ms;
        uint64_t template_resend_s;             /* UDP */
        uint32_t max_message;                   /* UDP */
        uint64_t rotate_s, rotate_bytes;        /* file */
} OutputIpfixParams;

typedef struct OutputIpfix OutputIpfix;

/**
 * output_ipfix_new() - see output_new(). @p is copied (strings too).
 * Return: 0, -EINVAL, -ENOMEM, -EIO (libfixbuf), or -errno from socket()/the directory.
 */
int output_ipfix_new(OutputIpfix **ret, const OutputIpfixParams *p, sd_event *e, char **reterr);
OutputIpfix *output_ipfix_free(OutputIpfix *o);
int output_ipfix_write(OutputIpfix *o, const FlowRecord *recs, size_t n);
void output_ipfix_flush(OutputIpfix *o);
/* Return: records dropped at close. */
uint64_t output_ipfix_close(OutputIpfix *o, uint64_t timeout_ms);
void output_ipfix_get_stats(const OutputIpfix *o, OutputStats *ret);
