/* SPDX-License-Identifier: MIT */
/*
 * flow.c - batch codec and formatting for the canonical flow record. The codec owns no
 * memory: the caller owns batch buffers; decode returns pointers into the caller's buffer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "flow.h"

size_t flow_batch_finish(void *buf, uint32_t count, uint32_t collector_id, uint64_t seq) {
        FlowBatchHeader h = {
                .magic = FLOW_BATCH_MAGIC,
                .version = FLOW_BATCH_VERSION,
                .record_size = FLOW_RECORD_SIZE,
                .count = count,
                .collector_id = collector_id,
                .seq = seq,
        };
        memcpy(buf, &h, sizeof(h));
        return flow_batch_size(count);
}

int flow_batch_decode(const void *buf, size_t len, FlowBatchHeader *ret_header,
                      const FlowRecord **ret_records) {
        FlowBatchHeader h;
        const FlowRecord *recs;

        if (!buf || len < FLOW_BATCH_HEADER_SIZE)
                return -EBADMSG;
        memcpy(&h, buf, sizeof(h));
        if (h.magic != FLOW_BATCH_MAGIC)
                return -EBADMSG;
        if (h.version != FLOW_BATCH_VERSION || h.record_size != FLOW_RECORD_SIZE)
                return -EPROTONOSUPPORT;
        if (h.count > FLOW_BATCH_MAX_RECORDS)
                return -E2BIG;
        if (len != flow_batch_size(h.count))
                return -EBADMSG;
        if (((uintptr_t) buf & 7) != 0)
                return -EINVAL;         /* caller must copy unaligned messages first */

        recs = (const FlowRecord *) ((const uint8_t *) buf + FLOW_BATCH_HEADER_SIZE);
        for (uint32_t i = 0; i < h.count; i++) {
                if ((recs[i].family != 4 && recs[i].family != 6) ||
                    (recs[i].exporter_family != 4 && recs[i].exporter_family != 6))
                        return -EBADMSG;
        }

        if (ret_header)
                *ret_header = h;
        if (ret_records)
                *ret_records = recs;
        return (int) h.count;
}

void flow_addr_set_v4(uint8_t dst[16], const uint8_t v4[4]) {
        memset(dst, 0, 10);
        dst[10] = 0xff;
        dst[11] = 0xff;
        memcpy(dst + 12, v4, 4);
}

bool flow_addr_is_v4mapped(const uint8_t a[16]) {
        static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        return memcmp(a, prefix, sizeof(prefix)) == 0;
}

const char *flow_addr_format(const uint8_t a[16], uint8_t family, char *buf, size_t len) {
        if (family == 4) {
                if (!inet_ntop(AF_INET, a + 12, buf, (socklen_t) len))
                        (void) snprintf(buf, len, "?");
        } else if (!inet_ntop(AF_INET6, a, buf, (socklen_t) len))
                (void) snprintf(buf, len, "?");
        return buf;
}

int flow_record_to_json(const FlowRecord *r, char *buf, size_t len) {
        char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], exp[INET6_ADDRSTRLEN];
        int n;

        n = snprintf(buf, len,
                     "{\"start_ms\":%" PRIu64 ",\"end_ms\":%" PRIu64 ",\"src_addr\":\"%s\","
                     "\"dst_addr\":\"%s\",\"src_port\":%u,\"dst_port\":%u,\"proto\":%u,"
                     "\"tcp_flags\":%u,\"tos\":%u,\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 ","
                     "\"ingress_if\":%u,\"egress_if\":%u,\"src_as\":%u,\"dst_as\":%u,"
                     "\"vlan\":%u,\"direction\":%u,\"end_reason\":%u,\"sampling\":%u,"
                     "\"exporter\":\"%s\",\"odid\":%u,\"template_id\":%u,\"flows\":%u}",
                     r->start_ms, r->end_ms,
                     flow_addr_format(r->src_addr, r->family, src, sizeof(src)),
                     flow_addr_format(r->dst_addr, r->family, dst, sizeof(dst)),
                     r->src_port, r->dst_port, r->proto, r->tcp_flags, r->tos,
                     r->octets, r->packets, r->ingress_if, r->egress_if, r->src_as,
                     r->dst_as, r->vlan, r->direction, r->end_reason, r->sampling,
                     flow_addr_format(r->exporter_addr, r->exporter_family, exp, sizeof(exp)),
                     r->odid, r->template_id, r->flows ? r->flows : 1u);
        if (n < 0 || (size_t) n >= len)
                return -ENOBUFS;
        return n;
}
