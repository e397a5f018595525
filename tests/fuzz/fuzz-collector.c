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

#include "datagram.h"
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

typedef struct FuzzUdp {
        DecoderCtx *ctx;
        Decoder **decs;
} FuzzUdp;

static const ExporterKey fuzz_key = { .addr = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 },
                                      .family = 4 };

static void on_udp_message(void *userdata, const uint8_t *msg, size_t len, uint64_t init_ms) {
        FuzzUdp *u = userdata;
        ExporterKey k = fuzz_key;
        Decoder **d;

        k.odid = wire_read_u32(msg + 12);
        d = &u->decs[k.odid % 4];
        if (!*d && decoder_new(u->ctx, &k, d) < 0)
                abort();
        (void) decoder_feed(*d, msg, len, init_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const ExporterKey key = { .addr = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 },
                                         .family = 4 };
        DecoderLimits lim = { .max_templates = 64, .max_unknown_elements = 64, .hold_ms = 60000,
                              .hold_max_bytes = 8192 };
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
                /* UDP datagrams: u16 length prefix, then the datagram, through the
                 * collector's own dispatch (v9 translation, framing). */
                FuzzUdp u = { .ctx = ctx, .decs = decs };
                while (size - off >= 2) {
                        size_t dlen = wire_read_u16(data + off);
                        off += 2;
                        if (dlen > size - off)
                                dlen = size - off;
                        (void) datagram_dispatch(data + off, dlen, IPFIX_MAX_MESSAGE, nf9, &c,
                                                 on_udp_message, &u);
                        off += dlen;
                }
        }
        /* Held data: retry (templates may have come on another ODID's session through the
         * store), then expire the rest. */
        for (size_t i = 0; i < 4; i++)
                if (decs[i] && decoder_has_held(decs[i])) {
                        (void) decoder_retry_held(decs[i]);
                        (void) decoder_refresh_template(decs[i], 256);
                        decoder_expire_held(decs[i], UINT64_MAX);
                }
        for (size_t i = 0; i < 4; i++)
                decoder_free(decs[i]);
        return 0;
}
