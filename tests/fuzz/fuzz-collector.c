/* SPDX-License-Identifier: MIT */
/*
 * fuzz-collector.c - libFuzzer target over the collector's input path: the first byte picks
 * the transport; the rest is a TCP byte stream (framed with ipfix_frame, as the worker does)
 * or a sequence of UDP datagrams (2-byte length prefix each; NetFlow v9 translated first).
 * Everything goes through the real pre-scan and libfixbuf decode with an in-memory store.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

#include "decoder.h"
#include "ipfix.h"
#include "log.h"
#include "netflow9.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FlowRecord sink;

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud) {
}

static FlowRecord *reserve(void *ud) {
        return &sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const ExporterKey key = { .addr = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 },
                                         .family = 4 };
        DecoderLimits lim = { .max_templates = 64, .max_unknown_elements = 64 };
        static uint8_t nf9[NETFLOW9_MAX_OUTPUT];
        /* The context (libfixbuf's information model is costly to build) lives across
         * inputs and is renewed every 256 so the unknown-element cap does not saturate.
         * Templates can reach a later input through the store; a crash that needs that
         * is still a crash, and the replay test runs each corpus file alone. */
        static CollectorCounters c;
        static DecoderCtx *ctx;
        static TmplStore *store;
        static unsigned runs;
        Decoder *decs[4] = { 0 };
        size_t off = 1;

        if (size < 1)
                return 0;
        log_set_max_level(LOG_EMERG);
        g_log_set_default_handler(quiet, NULL);
        if (runs++ % 256 == 0) {
                ctx = decoder_ctx_free(ctx);
                tmpl_store_free(store);
                store = NULL;
        }
        if (!store && tmpl_store_new_memory(&store, 256) < 0)
                abort();
        if (!ctx && decoder_ctx_new(&ctx, &lim, store, &c, reserve, NULL) < 0)
                abort();

        if ((data[0] & 1) == 0) {
                /* TCP stream: frames until the stream breaks, as a connection would. */
                while (off < size) {
                        size_t mlen;
                        uint32_t odid;
                        Decoder **d;
                        if (ipfix_frame(data + off, size - off, IPFIX_MAX_MESSAGE, &mlen) <= 0)
                                break;
                        odid = wire_read_u32(data + off + 12);
                        d = &decs[odid % 4];
                        if (!*d) {
                                ExporterKey k = key;
                                k.odid = odid;
                                if (decoder_new(ctx, &k, d) < 0)
                                        abort();
                        }
                        (void) decoder_feed(*d, data + off, mlen, 0);
                        off += mlen;
                }
        } else {
                /* UDP datagrams: u16 length prefix, then the datagram. */
                while (size - off >= 2) {
                        size_t dlen = wire_read_u16(data + off), mlen, ilen;
                        const uint8_t *dg = data + off + 2;
                        uint64_t init_ms = 0;
                        unsigned dropped;
                        ExporterKey k = key;
                        off += 2;
                        if (dlen > size - off)
                                dlen = size - off;
                        off += dlen;
                        if (dlen >= 2 && wire_read_u16(dg) == NETFLOW9_VERSION) {
                                if (netflow9_to_ipfix(dg, dlen, nf9, sizeof(nf9), &ilen, &init_ms,
                                                      &dropped) < 0)
                                        continue;
                                dg = nf9;
                                dlen = ilen;
                        }
                        if (ipfix_frame(dg, dlen, IPFIX_MAX_MESSAGE, &mlen) <= 0)
                                continue;
                        k.odid = wire_read_u32(dg + 12);
                        if (!decs[k.odid % 4] && decoder_new(ctx, &k, &decs[k.odid % 4]) < 0)
                                abort();
                        (void) decoder_feed(decs[k.odid % 4], dg, mlen, init_ms);
                }
        }
        for (size_t i = 0; i < 4; i++)
                decoder_free(decs[i]);
        return 0;
}
