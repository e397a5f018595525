/* SPDX-License-Identifier: MIT */
/*
 * datagram.c - version switch for UDP datagrams. No state, no allocation, no logging: the
 * caller logs from the return code.
 */
#include <errno.h>

#include "datagram.h"
#include "ipfix.h"
#include "netflow9.h"
#include "wire.h"

int datagram_dispatch(const uint8_t *p, size_t len, size_t max_msg, uint8_t *nf9buf,
                      CollectorCounters *c, DatagramMessageFn fn, void *userdata) {
        uint16_t version;

        if (len < 2) {
                c->err_length++;
                return -EBADMSG;
        }
        version = wire_read_u16(p);
        if (version == NETFLOW9_VERSION) {
                size_t ilen;
                uint64_t init_ms;
                unsigned dropped = 0;
                int r = netflow9_to_ipfix(p, len, nf9buf, NETFLOW9_MAX_OUTPUT, &ilen, &init_ms,
                                          &dropped);
                if (r < 0) {
                        c->err_netflow9++;
                        return -EBADMSG;
                }
                c->netflow9_messages++;
                c->err_template += dropped;
                fn(userdata, nf9buf, ilen, init_ms);
                return 0;
        }
        if (version != IPFIX_VERSION) {
                c->err_version++;
                return -EPROTO;
        }
        for (size_t off = 0; off < len;) {
                size_t mlen;
                if (ipfix_frame(p + off, len - off, max_msg, &mlen) <= 0) {
                        c->err_length++;
                        return -EBADMSG;
                }
                fn(userdata, p + off, mlen, 0);
                off += mlen;
        }
        return 0;
}
