/* SPDX-License-Identifier: MIT */
/*
 * decoder.c - pre-scan + libfixbuf decode of one exporter session's messages.
 *
 * Invariants:
 *  - libfixbuf only ever sees messages this file rebuilt: a header plus data sets whose
 *    template is known, non-options and whose records were walked and fit. Template sets
 *    never reach it; templates enter its session through fbSessionAddTemplate() only, after
 *    validation (id >= 256, lengths, unknown-IE cap). This keeps it away from the 2.4.1
 *    crashes and hangs listed in ARCHITECTURE.md (withdrawn ids, withdraw-all, low ids).
 *  - Sets are applied in message order. When a template change touches an id that already
 *    has a data set waiting in the rebuilt message, that message is decoded first, so data
 *    sent before a redefinition decodes with the old layout.
 *  - The decoder's template table is the truth; libfixbuf's session mirrors its non-options
 *    entries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fixbuf/public.h>

#include "decoder.h"
#include "log.h"
#include "macro.h"
#include "wire.h"

#define INTERNAL_TID 0xFFFE
#define NTP_EPOCH_OFFSET 2208988800ull

/* The fixed internal record libfixbuf transcodes every data record into. Field order and
 * sizes must match internal_spec[] exactly (sorted by size: no implicit padding). */
typedef struct DecodedRec {
        uint64_t start_ms, end_ms, start_us, end_us, start_ns, end_ns;
        uint64_t octets, packets, octets_total, packets_total, sys_init_ms;
        uint8_t src6[16], dst6[16];
        uint32_t start_s, end_s, start_sysup, end_sysup, start_delta_us, end_delta_us;
        uint32_t src4, dst4;
        uint32_t in_if, out_if, src_as, dst_as, sampling, sampling_pkt;
        uint16_t src_port, dst_port, tcp_flags, vlan;
        uint8_t proto, tos, direction, end_reason;
        uint8_t pad[4];
} DecodedRec;
_Static_assert(sizeof(DecodedRec) == 192, "DecodedRec must match internal_spec");

static fbInfoElementSpec_t internal_spec[] = {
        { (char *) "flowStartMilliseconds", 8, 0 },
        { (char *) "flowEndMilliseconds", 8, 0 },
        { (char *) "flowStartMicroseconds", 8, 0 },
        { (char *) "flowEndMicroseconds", 8, 0 },
        { (char *) "flowStartNanoseconds", 8, 0 },
        { (char *) "flowEndNanoseconds", 8, 0 },
        { (char *) "octetDeltaCount", 8, 0 },
        { (char *) "packetDeltaCount", 8, 0 },
        { (char *) "octetTotalCount", 8, 0 },
        { (char *) "packetTotalCount", 8, 0 },
        { (char *) "systemInitTimeMilliseconds", 8, 0 },
        { (char *) "sourceIPv6Address", 16, 0 },
        { (char *) "destinationIPv6Address", 16, 0 },
        { (char *) "flowStartSeconds", 4, 0 },
        { (char *) "flowEndSeconds", 4, 0 },
        { (char *) "flowStartSysUpTime", 4, 0 },
        { (char *) "flowEndSysUpTime", 4, 0 },
        { (char *) "flowStartDeltaMicroseconds", 4, 0 },
        { (char *) "flowEndDeltaMicroseconds", 4, 0 },
        { (char *) "sourceIPv4Address", 4, 0 },
        { (char *) "destinationIPv4Address", 4, 0 },
        { (char *) "ingressInterface", 4, 0 },
        { (char *) "egressInterface", 4, 0 },
        { (char *) "bgpSourceAsNumber", 4, 0 },
        { (char *) "bgpDestinationAsNumber", 4, 0 },
        { (char *) "samplingInterval", 4, 0 },
        { (char *) "samplingPacketInterval", 4, 0 },
        { (char *) "sourceTransportPort", 2, 0 },
        { (char *) "destinationTransportPort", 2, 0 },
        { (char *) "tcpControlBits", 2, 0 },
        { (char *) "vlanId", 2, 0 },
        { (char *) "protocolIdentifier", 1, 0 },
        { (char *) "ipClassOfService", 1, 0 },
        { (char *) "flowDirection", 1, 0 },
        { (char *) "flowEndReason", 1, 0 },
        { (char *) "paddingOctets", 4, 0 },
        FB_IESPEC_NULL
};
#define N_INTERNAL_MAX 40
_Static_assert(ELEMENTSOF(internal_spec) - 1 <= N_INTERNAL_MAX, "raise N_INTERNAL_MAX");

/* Per-template hints computed once when a template is installed (IpfixTemplate.flags). */
enum {
        TF_V4 = 1u << 0,
        TF_V6 = 1u << 1,
        TF_MS = 1u << 2,
        TF_S = 1u << 3,
        TF_US = 1u << 4,
        TF_NS = 1u << 5,
        TF_DELTA = 1u << 6,
        TF_SYSUP = 1u << 7,
        TF_DIRECTION = 1u << 8,
        TF_OCTETS_DELTA = 1u << 9,
        TF_PACKETS_DELTA = 1u << 10,
        TF_INSTALLED = 1u << 31,        /* mirrored in the libfixbuf session */
};

/* IANA elements we map, with the wire lengths libfixbuf can transcode into our record. */
#define PADDING_OCTETS_IE 210

typedef struct MappedIe {
        uint16_t id;
        uint8_t min_len, max_len;
        uint32_t flag;
} MappedIe;

/* Element id of each internal_spec entry (checked against libfixbuf's model at start-up). */
static const uint16_t spec_ids[] = {
        152, 153, 154, 155, 156, 157, 1, 2, 85, 86, 160, 27, 28, 150, 151, 22, 21, 158,
        159, 8, 12, 10, 14, 16, 17, 34, 305, 7, 11, 6, 58, 4, 5, 61, 136, PADDING_OCTETS_IE,
};

static int spec_index(uint16_t id) {
        for (size_t k = 0; k < ELEMENTSOF(spec_ids); k++)
                if (spec_ids[k] == id)
                        return (int) k;
        return -1;
}

static const MappedIe mapped_ies[] = {
        { 1, 1, 8, TF_OCTETS_DELTA },   { 2, 1, 8, TF_PACKETS_DELTA }, { 4, 1, 1, 0 },
        { 5, 1, 1, 0 },                 { 6, 1, 2, 0 },                { 7, 1, 2, 0 },
        { 8, 4, 4, TF_V4 },             { 10, 1, 4, 0 },               { 11, 1, 2, 0 },
        { 12, 4, 4, TF_V4 },            { 14, 1, 4, 0 },               { 16, 1, 4, 0 },
        { 17, 1, 4, 0 },                { 21, 4, 4, TF_SYSUP },        { 22, 4, 4, TF_SYSUP },
        { 27, 16, 16, TF_V6 },          { 28, 16, 16, TF_V6 },         { 34, 1, 4, 0 },
        { 58, 1, 2, 0 },                { 61, 1, 1, TF_DIRECTION },    { 85, 1, 8, 0 },
        { 86, 1, 8, 0 },                { 136, 1, 1, 0 },              { 150, 4, 4, TF_S },
        { 151, 4, 4, TF_S },            { 152, 8, 8, TF_MS },          { 153, 8, 8, TF_MS },
        { 154, 8, 8, TF_US },           { 155, 8, 8, TF_US },          { 156, 8, 8, TF_NS },
        { 157, 8, 8, TF_NS },           { 158, 4, 4, TF_DELTA },       { 159, 4, 4, TF_DELTA },
        { 160, 8, 8, 0 },               { 305, 1, 4, 0 },
};

#define N_INTERNAL (ELEMENTSOF(internal_spec) - 1)

/*
 * Each installed template gets its own internal template holding only the mapped elements
 * it carries, in internal_spec order, so libfixbuf transcodes a dozen fields instead of
 * all of internal_spec (and zero-fills nothing). The plan says where each of them lands
 * in the compact record and where it belongs in DecodedRec.
 */
typedef struct Plan {
        uint8_t n;
        uint8_t size[N_INTERNAL_MAX];
        uint8_t src[N_INTERNAL_MAX];    /* offset in the compact record */
        uint8_t dst[N_INTERNAL_MAX];    /* offset in DecodedRec */
} Plan;

struct DecoderCtx {
        DecoderLimits limits;
        TmplStore *store;
        CollectorCounters *c;
        DecoderReserveFn reserve;
        void *userdata;
        fbInfoModel_t *model;
        uint32_t unknown_elements;
        uint32_t gen;                   /* generation of the message being rebuilt */
        uint32_t pending[65536];        /* == gen: a data set of that tid awaits decode */
        size_t scratch_len;
        uint8_t scratch[IPFIX_MAX_MESSAGE + 1];
};

/* A data set waiting for its template (copied; the message it came in is gone). */
typedef struct HeldSet HeldSet;
struct HeldSet {
        HeldSet *next;
        uint64_t deadline_usec;
        uint64_t export_ms, init_ms;
        uint16_t tid;
        uint16_t len;
        uint8_t set[];
};

struct Decoder {
        DecoderCtx *ctx;
        HeldSet *held, **held_tail;
        size_t held_bytes;
        ExporterKey key;
        fBuf_t *fbuf;                   /* owns the fbSession_t */
        fbSession_t *session;
        IpfixTemplate **tmpls;          /* sorted by id */
        Plan *plans;                    /* plans[i] belongs to tmpls[i] */
        uint32_t n_tmpls;
        IpfixTemplate *last;            /* lookup cache */
        const Plan *last_plan;
        uint64_t export_ms, init_ms;
        DecoderStats stats;
};

static const MappedIe *mapped_ie(const IpfixField *f) {
        if (f->pen != 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(mapped_ies); i++)
                if (mapped_ies[i].id == f->id)
                        return &mapped_ies[i];
        return NULL;
}

int decoder_ctx_new(DecoderCtx **ret, const DecoderLimits *limits, TmplStore *store,
                    CollectorCounters *counters, DecoderReserveFn reserve, void *userdata) {
        DecoderCtx *ctx;


        if (!ret || !limits || !counters || !reserve)
                return -EINVAL;
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->limits = *limits;
        ctx->store = store;
        ctx->c = counters;
        ctx->reserve = reserve;
        ctx->userdata = userdata;
        ctx->gen = 1;
        ctx->model = fbInfoModelAlloc();
        if (!ctx->model) {
                free(ctx);
                return -ENOMEM;
        }
        _Static_assert(ELEMENTSOF(spec_ids) == ELEMENTSOF(internal_spec) - 1, "spec_ids");
        for (size_t k = 0; k < ELEMENTSOF(spec_ids); k++) {
                const fbInfoElement_t *ie = fbInfoModelGetElementByName(ctx->model,
                                                                        internal_spec[k].name);
                if (!ie || ie->num != spec_ids[k] || ie->ent != 0) {
                        fbInfoModelFree(ctx->model);
                        free(ctx);
                        return -EIO;    /* internal_spec and spec_ids disagree */
                }
        }
        *ret = ctx;
        return 0;
}

DecoderCtx *decoder_ctx_free(DecoderCtx *ctx) {
        if (!ctx)
                return NULL;
        fbInfoModelFree(ctx->model);
        free(ctx);
        return NULL;
}

int decoder_new(DecoderCtx *ctx, const ExporterKey *key, Decoder **ret) {
        fbTemplate_t *itmpl;
        GError *err = NULL;
        Decoder *d;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->ctx = ctx;
        d->key = *key;
        d->held_tail = &d->held;
        d->session = fbSessionAlloc(ctx->model);
        itmpl = fbTemplateAlloc(ctx->model);
        if (!d->session || !itmpl)
                goto fail_tmpl;
        if (!fbTemplateAppendSpecArray(itmpl, internal_spec, 0, &err))
                goto fail_tmpl;
        if (!fbSessionAddTemplate(d->session, TRUE, INTERNAL_TID, itmpl, &err))
                goto fail_tmpl;
        itmpl = NULL;   /* owned by the session now */
        fbSessionSetDomain(d->session, key->odid);
        d->fbuf = fBufAllocForCollection(d->session, NULL);
        if (!d->fbuf)
                goto fail_session;
        fBufSetAutomaticMode(d->fbuf, FALSE);
        if (!fBufSetInternalTemplate(d->fbuf, INTERNAL_TID, &err)) {
                fBufFree(d->fbuf);      /* frees the session too */
                goto fail;
        }
        *ret = d;
        return 0;

fail_tmpl:
        if (itmpl)
                fbTemplateFreeUnused(itmpl);
fail_session:
        if (d->session)
                fbSessionFree(d->session);
fail:
        g_clear_error(&err);
        free(d);
        return -EIO;
}

Decoder *decoder_free(Decoder *d) {
        if (!d)
                return NULL;
        while (d->held) {
                HeldSet *h = d->held;
                d->held = h->next;
                /* Still unresolved when the session ends: it expires now. */
                d->ctx->c->held_expired_sets++;
                free(h);
        }
        fBufFree(d->fbuf);
        for (uint32_t i = 0; i < d->n_tmpls; i++)
                free(d->tmpls[i]);
        free(d->tmpls);
        free(d->plans);
        free(d);
        return NULL;
}

const DecoderStats *decoder_get_stats(const Decoder *d) {
        return &d->stats;
}

const ExporterKey *decoder_get_key(const Decoder *d) {
        return &d->key;
}

/* Binary search; returns the index of @tid or the insertion point as -(idx + 1). */
static long tmpl_index(const Decoder *d, uint16_t tid) {
        long lo = 0, hi = (long) d->n_tmpls - 1;
        while (lo <= hi) {
                long mid = (lo + hi) / 2;
                uint16_t id = d->tmpls[mid]->id;
                if (id == tid)
                        return mid;
                if (id < tid)
                        lo = mid + 1;
                else
                        hi = mid - 1;
        }
        return -(lo + 1);
}

static IpfixTemplate *tmpl_lookup(Decoder *d, uint16_t tid) {
        long i;
        if (d->last && d->last->id == tid)
                return d->last;
        i = tmpl_index(d, tid);
        if (i < 0)
                return NULL;
        d->last = d->tmpls[i];
        d->last_plan = &d->plans[i];
        return d->last;
}

/* Mirrors @t into libfixbuf's session. Fields we map but libfixbuf could not transcode at
 * their wire length are renamed to paddingOctets of the same length, which keeps the record
 * layout and makes libfixbuf skip them. */
static int fb_install(Decoder *d, IpfixTemplate *t, Plan *plan) {
        DecoderCtx *ctx = d->ctx;
        fbTemplate_t *ft, *it;
        GError *err = NULL;
        bool present[N_INTERNAL_MAX] = { false };
        unsigned src = 0, dst = 0;

        ft = fbTemplateAlloc(ctx->model);
        if (!ft)
                return -ENOMEM;
        for (unsigned i = 0; i < t->field_count; i++) {
                const IpfixField *f = &t->fields[i];
                const MappedIe *m = mapped_ie(f);
                fbInfoElement_t ie;

                if (f->len == 0)
                        continue;       /* occupies no octets; libfixbuf need not know it */
                memset(&ie, 0, sizeof(ie));
                ie.ent = f->pen;
                ie.num = f->id;
                ie.len = f->len;
                if (m) {
                        if (f->len >= m->min_len && f->len <= m->max_len) {
                                t->flags |= m->flag;
                                present[spec_index(m->id)] = true;
                        } else {
                                ie.ent = 0;
                                ie.num = PADDING_OCTETS_IE;
                        }
                } else if (!fbInfoModelGetElementByID(ctx->model, f->id, f->pen)) {
                        if (ctx->unknown_elements >= ctx->limits.max_unknown_elements) {
                                fbTemplateFreeUnused(ft);
                                return -ENOBUFS;
                        }
                        ctx->unknown_elements++;        /* libfixbuf adds it to the model */
                }
                if (!fbTemplateAppend(ft, &ie, &err)) {
                        g_clear_error(&err);
                        fbTemplateFreeUnused(ft);
                        return -EBADMSG;
                }
        }
        /* The compact internal template, under the same id in the internal namespace. */
        it = fbTemplateAlloc(ctx->model);
        if (!it) {
                fbTemplateFreeUnused(ft);
                return -ENOMEM;
        }
        plan->n = 0;
        for (unsigned k = 0; k < N_INTERNAL; k++) {
                unsigned size = internal_spec[k].len_override;
                if (present[k]) {
                        if (!fbTemplateAppendSpec(it, &internal_spec[k], 0, &err)) {
                                g_clear_error(&err);
                                fbTemplateFreeUnused(it);
                                fbTemplateFreeUnused(ft);
                                return -EIO;
                        }
                        plan->size[plan->n] = (uint8_t) size;
                        plan->src[plan->n] = (uint8_t) src;
                        plan->dst[plan->n] = (uint8_t) dst;
                        plan->n++;
                        src += size;
                }
                dst += size;
        }
        if (plan->n == 0) {
                /* Nothing we map: still decode (the record counts), into one padding field. */
                fbInfoElementSpec_t pad = { (char *) "paddingOctets", 1, 0 };
                if (!fbTemplateAppendSpec(it, &pad, 0, &err))
                        g_clear_error(&err);
        }
        if (!fbSessionAddTemplate(d->session, FALSE, t->id, ft, &err)) {
                g_clear_error(&err);
                fbTemplateFreeUnused(ft);
                fbTemplateFreeUnused(it);
                return -EIO;
        }
        /* Replacing an internal template frees the old one, which the buffer may point to:
         * park the buffer on the permanent full template first. */
        (void) fBufSetInternalTemplate(d->fbuf, INTERNAL_TID, &err);
        g_clear_error(&err);
        if (!fbSessionAddTemplate(d->session, TRUE, t->id, it, &err)) {
                g_clear_error(&err);
                fbTemplateFreeUnused(it);
                (void) fbSessionRemoveTemplate(d->session, FALSE, t->id, &err);
                g_clear_error(&err);
                return -EIO;
        }
        t->flags |= TF_INSTALLED;
        return 0;
}

static void fb_uninstall(Decoder *d, IpfixTemplate *t) {
        GError *err = NULL;
        if (!(t->flags & TF_INSTALLED))
                return;
        if (!fbSessionRemoveTemplate(d->session, FALSE, t->id, &err))
                g_clear_error(&err);
        (void) fBufSetInternalTemplate(d->fbuf, INTERNAL_TID, &err);
        g_clear_error(&err);
        if (!fbSessionRemoveTemplate(d->session, TRUE, t->id, &err))
                g_clear_error(&err);
        t->flags &= ~(uint32_t) TF_INSTALLED;
}

static void tmpl_remove_at(Decoder *d, long i) {
        IpfixTemplate *t = d->tmpls[i];
        fb_uninstall(d, t);
        d->last = NULL;
        d->last_plan = NULL;
        free(t);
        memmove(&d->tmpls[i], &d->tmpls[i + 1], (d->n_tmpls - (size_t) i - 1) * sizeof(*d->tmpls));
        memmove(&d->plans[i], &d->plans[i + 1], (d->n_tmpls - (size_t) i - 1) * sizeof(*d->plans));
        d->n_tmpls--;
        d->stats.templates = d->n_tmpls;
}

/* Takes ownership of @t (consumed) on success and on failure. */
static int tmpl_install(Decoder *d, IpfixTemplate *t) {
        long i = tmpl_index(d, t->id);
        Plan plan = { 0 };
        int r;

        t->flags = 0;
        if (i < 0 && d->n_tmpls >= d->ctx->limits.max_templates) {
                d->ctx->c->templates_rejected_limit++;
                free(t);
                return -ENOBUFS;
        }
        if (t->scope_count == 0) {
                r = fb_install(d, t, &plan);
                if (r < 0) {
                        if (r == -ENOBUFS)
                                d->ctx->c->templates_rejected_unknown_ie++;
                        else
                                d->ctx->c->err_template++;
                        free(t);
                        if (i >= 0)     /* a failed redefinition must not leave the old layout */
                                tmpl_remove_at(d, i);
                        return r;
                }
        }
        if (i >= 0) {
                IpfixTemplate *old = d->tmpls[i];
                if ((old->flags & TF_INSTALLED) && !(t->flags & TF_INSTALLED))
                        fb_uninstall(d, old);   /* redefined as an options template */
                d->last = NULL;
                d->last_plan = NULL;
                free(old);
                d->tmpls[i] = t;
                d->plans[i] = plan;
                return 0;
        }
        i = -i - 1;
        if ((d->n_tmpls & (d->n_tmpls - 1)) == 0 || d->n_tmpls < 8) {
                size_t cap = d->n_tmpls < 8 ? 8 : (size_t) d->n_tmpls * 2;
                IpfixTemplate **n = realloc(d->tmpls, cap * sizeof(*n));
                Plan *np = n ? realloc(d->plans, cap * sizeof(*np)) : NULL;
                if (n)
                        d->tmpls = n;
                if (!np) {
                        fb_uninstall(d, t);
                        free(t);
                        return -ENOMEM;
                }
                d->plans = np;
        }
        memmove(&d->tmpls[i + 1], &d->tmpls[i], (d->n_tmpls - (size_t) i) * sizeof(*d->tmpls));
        memmove(&d->plans[i + 1], &d->plans[i], (d->n_tmpls - (size_t) i) * sizeof(*d->plans));
        d->last = NULL;
        d->last_plan = NULL;
        d->tmpls[i] = t;
        d->plans[i] = plan;
        d->n_tmpls++;
        d->stats.templates = d->n_tmpls;
        return 0;
}

static uint64_t ntp_to_ms(uint64_t v) {
        uint64_t secs = v >> 32, frac = v & 0xffffffffu;
        if (secs < NTP_EPOCH_OFFSET)
                return 0;
        return (secs - NTP_EPOCH_OFFSET) * 1000u + ((frac * 1000u) >> 32);
}

/*
 * flowStart/EndSysUpTime (v9 FIRST/LAST_SWITCHED) count the exporter's uptime in 32-bit
 * milliseconds, which wrap every 49.7 days: past a wrap, init + value lands 2^32 ms early.
 * The value is placed relative to the export time in modulo-2^32 arithmetic instead: up to
 * 2^31 ms before it, or slightly after it (the export time has 1 s resolution). Without a
 * wrap this equals init + value. It needs the uptime at export time as a 32-bit quantity,
 * which v9 always gives (its init time comes from the header's sysUpTime); an init time 2^32
 * ms or more before the export time (or after it) gives none, and init + value is kept.
 * Returns 0 (no usable time) for a result before the epoch.
 */
static uint64_t sysup_to_ms(uint64_t export_ms, uint64_t init, uint32_t v) {
        uint32_t up;
        int64_t d;

        if (init > export_ms || export_ms - init > UINT32_MAX)
                return init + v;
        up = (uint32_t) (export_ms - init);
        d = (int64_t) (uint32_t) (up - v);
        if (d > INT64_C(1) << 31)
                d -= INT64_C(1) << 32;  /* after the export time */
        if (d > (int64_t) export_ms)
                return 0;
        return (uint64_t) ((int64_t) export_ms - d);
}

static void map_record(const Decoder *d, const IpfixTemplate *t, const DecodedRec *in,
                       FlowRecord *out) {
        uint32_t fl = t->flags;
        uint64_t start = 0, end = 0;

        memset(out, 0, sizeof(*out));
        if ((fl & TF_V6) && !((fl & TF_V4) && (in->src4 || in->dst4))) {
                out->family = 6;
                memcpy(out->src_addr, in->src6, 16);
                memcpy(out->dst_addr, in->dst6, 16);
        } else {
                uint32_t s = htonl(in->src4), ds = htonl(in->dst4);
                out->family = 4;
                flow_addr_set_v4(out->src_addr, (const uint8_t *) &s);
                flow_addr_set_v4(out->dst_addr, (const uint8_t *) &ds);
        }

        if (fl & TF_MS) {
                start = in->start_ms;
                end = in->end_ms;
        } else if (fl & TF_S) {
                start = (uint64_t) in->start_s * 1000u;
                end = (uint64_t) in->end_s * 1000u;
        } else if (fl & TF_US) {
                start = ntp_to_ms(in->start_us);
                end = ntp_to_ms(in->end_us);
        } else if (fl & TF_NS) {
                start = ntp_to_ms(in->start_ns);
                end = ntp_to_ms(in->end_ns);
        } else if (fl & TF_DELTA) {
                start = d->export_ms - in->start_delta_us / 1000u;
                end = d->export_ms - in->end_delta_us / 1000u;
        } else if (fl & TF_SYSUP) {
                uint64_t init = in->sys_init_ms ? in->sys_init_ms : d->init_ms;
                if (init) {
                        start = sysup_to_ms(d->export_ms, init, in->start_sysup);
                        end = sysup_to_ms(d->export_ms, init, in->end_sysup);
                }
        }
        if (start == 0)
                start = end;
        if (end == 0)
                end = start;
        if (start == 0)
                start = end = d->export_ms;     /* no usable time: the export time */
        out->start_ms = start;
        out->end_ms = end;

        out->octets = (fl & TF_OCTETS_DELTA) ? in->octets : in->octets_total;
        out->packets = (fl & TF_PACKETS_DELTA) ? in->packets : in->packets_total;
        out->ingress_if = in->in_if;
        out->egress_if = in->out_if;
        out->src_as = in->src_as;
        out->dst_as = in->dst_as;
        out->sampling = in->sampling ? in->sampling : in->sampling_pkt;
        out->src_port = in->src_port;
        out->dst_port = in->dst_port;
        out->vlan = in->vlan;
        out->tcp_flags = in->tcp_flags;
        out->proto = in->proto;
        out->tos = in->tos;
        out->direction = (fl & TF_DIRECTION) ? in->direction : FLOW_DIRECTION_UNKNOWN;
        out->end_reason = in->end_reason;
        out->template_id = t->id;
        out->odid = d->key.odid;
        out->exporter_family = d->key.family;
        memcpy(out->exporter_addr, d->key.addr, 16);
}

/* Fixed-size copies the compiler inlines (a variable-size memcpy is a libc call per field). */
static inline void copy_field(uint8_t *dst, const uint8_t *src, unsigned size) {
        switch (size) {
        case 1:
                *dst = *src;
                break;
        case 2:
                memcpy(dst, src, 2);
                break;
        case 4:
                memcpy(dst, src, 4);
                break;
        case 8:
                memcpy(dst, src, 8);
                break;
        default:
                memcpy(dst, src, 16);
                break;
        }
}

/* Decodes the rebuilt message in ctx->scratch (if it holds any data set) and starts a new
 * one with the same header. Returns records produced. */
static int flush_scratch(Decoder *d) {
        DecoderCtx *ctx = d->ctx;
        GError *err = NULL;
        int n = 0;

        if (ctx->scratch_len <= IPFIX_HEADER_SIZE)
                return 0;
        wire_write_u16(ctx->scratch + 2, (uint16_t) ctx->scratch_len);
        fBufSetBuffer(d->fbuf, ctx->scratch, ctx->scratch_len);
        if (!fBufNextMessage(d->fbuf, &err)) {
                ctx->c->err_decode++;
                d->stats.errors++;
                g_clear_error(&err);
                goto done;
        }
        for (int cur = -1;;) {
                uint8_t compact[sizeof(DecodedRec)];
                DecodedRec rec;
                size_t rlen = sizeof(compact);
                const IpfixTemplate *t;
                const Plan *plan;
                FlowRecord *out;
                uint16_t tid = 0;

                /* Peek at the next record's template and decode it into that template's
                 * compact internal layout. */
                if (!fBufNextCollectionTemplate(d->fbuf, &tid, &err)) {
                        if (!g_error_matches(err, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
                                ctx->c->err_decode++;
                                d->stats.errors++;
                        }
                        g_clear_error(&err);
                        break;
                }
                t = tmpl_lookup(d, tid);
                if (!t || !(t->flags & TF_INSTALLED)) {
                        ctx->c->err_decode++;   /* only installed ids were copied */
                        d->stats.errors++;
                        break;
                }
                plan = d->last_plan;
                if (cur != tid) {
                        if (!fBufSetInternalTemplate(d->fbuf, tid, &err)) {
                                g_clear_error(&err);
                                ctx->c->err_decode++;
                                d->stats.errors++;
                                break;
                        }
                        cur = tid;
                }
                if (!fBufNext(d->fbuf, compact, &rlen, &err)) {
                        if (!g_error_matches(err, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
                                ctx->c->err_decode++;
                                d->stats.errors++;
                        }
                        g_clear_error(&err);
                        break;
                }
                n++;
                out = ctx->reserve(ctx->userdata);
                if (!out)
                        continue;
                memset(&rec, 0, sizeof(rec));
                for (unsigned k = 0; k < plan->n; k++)
                        copy_field((uint8_t *) &rec + plan->dst[k], compact + plan->src[k],
                                   plan->size[k]);
                map_record(d, t, &rec, out);
        }
        (void) fBufSetInternalTemplate(d->fbuf, INTERNAL_TID, &err);
        g_clear_error(&err);
done:
        ctx->scratch_len = IPFIX_HEADER_SIZE;
        ctx->gen++;
        if (ctx->gen == 0) {
                memset(ctx->pending, 0, sizeof(ctx->pending));
                ctx->gen = 1;
        }
        return n;
}

static void store_put(Decoder *d, const IpfixTemplate *t) {
        if (d->ctx->store && t && d->ctx->store->ops->put(d->ctx->store, &d->key, t) < 0)
                d->ctx->c->store_put_failed++;  /* store full (or out of memory) */
}

static int withdraw(Decoder *d, uint16_t tid, int *produced) {
        DecoderCtx *ctx = d->ctx;
        long i = tmpl_index(d, tid);

        if (ctx->pending[tid] == ctx->gen)
                *produced += flush_scratch(d);
        if (i >= 0) {
                tmpl_remove_at(d, i);
                ctx->c->templates_withdrawn++;
        }
        if (ctx->store)
                (void) ctx->store->ops->withdraw(ctx->store, &d->key, tid);
        return 0;
}

/* "All templates" (or all options templates) withdrawn. The session drops those of that
 * kind; the shared store drops every template of the exporter, because it cannot tell
 * kinds apart and an exporter withdraws everything when it restarts: other sessions then
 * lose theirs through decoder_refresh_all() and re-learn from the next template set. */
static void withdraw_all(Decoder *d, bool options, int *produced) {
        *produced += flush_scratch(d);
        for (long i = (long) d->n_tmpls - 1; i >= 0; i--)
                if ((d->tmpls[i]->scope_count > 0) == options) {
                        tmpl_remove_at(d, i);
                        d->ctx->c->templates_withdrawn++;
                }
        if (d->ctx->store)
                (void) d->ctx->store->ops->withdraw(d->ctx->store, &d->key, 0);
}

static void template_set(Decoder *d, const uint8_t *p, size_t len, bool options, int *produced) {
        DecoderCtx *ctx = d->ctx;
        size_t off = 0;

        while (len - off >= 4) {
                uint16_t id = wire_read_u16(p + off), count = wire_read_u16(p + off + 2);
                IpfixTemplate *t = NULL;
                size_t used = 0;
                int r;

                if (count == 0 && id == (options ? IPFIX_SET_OPTIONS_TEMPLATE : IPFIX_SET_TEMPLATE)) {
                        withdraw_all(d, options, produced);
                        off += 4;
                        continue;
                }
                if (id == 0 && count == 0)
                        break;          /* padding */
                r = ipfix_template_parse(p + off, len - off, options, &t, &used);
                if (r < 0) {
                        char k[80];
                        ctx->c->err_template++;
                        d->stats.errors++;
                        log_ratelimited(LOG_WARNING, "bad-template",
                                        "Malformed template record, skipping rest of set: %s "
                                        "exporter=%s template_id=%u",
                                        strerror(-r), exporter_key_format(&d->key, k, sizeof(k)),
                                        id);
                        return;         /* the rest of the set cannot be located */
                }
                off += used;
                if (r == 1) {
                        (void) withdraw(d, id, produced);
                        continue;
                }

                {
                        IpfixTemplate *old = tmpl_lookup(d, id);
                        if (old && ipfix_template_equal(old, t)) {
                                ctx->c->templates_refreshed++;
                                free(t);
                                continue;
                        }
                }
                if (ctx->pending[id] == ctx->gen)
                        *produced += flush_scratch(d);
                if (tmpl_install(d, t) == 0) {  /* consumes t */
                        ctx->c->templates_learned++;
                        /* Only what this session accepted is shared. */
                        store_put(d, tmpl_lookup(d, id));
                } else
                        d->stats.errors++;
        }
}

static IpfixTemplate *template_for_data(Decoder *d, uint16_t tid) {
        DecoderCtx *ctx = d->ctx;
        IpfixTemplate *t = tmpl_lookup(d, tid);

        if (t || !ctx->store)
                return t;
        if (ctx->store->ops->lookup(ctx->store, &d->key, tid, &t) < 0)
                return NULL;
        if (tmpl_install(d, t) < 0)
                return NULL;
        ctx->c->templates_from_store++;
        return tmpl_lookup(d, tid);
}

static void data_set(Decoder *d, uint16_t tid, const uint8_t *set, size_t set_len) {
        DecoderCtx *ctx = d->ctx;
        const IpfixTemplate *t = template_for_data(d, tid);
        int n;

        if (!t && ctx->limits.hold_ms > 0 &&
            d->held_bytes + set_len <= ctx->limits.hold_max_bytes) {
                HeldSet *h = malloc(sizeof(*h) + set_len);
                if (h) {
                        h->next = NULL;
                        h->deadline_usec = now_usec() + (uint64_t) ctx->limits.hold_ms * 1000u;
                        h->export_ms = d->export_ms;
                        h->init_ms = d->init_ms;
                        h->tid = tid;
                        h->len = (uint16_t) set_len;
                        memcpy(h->set, set, set_len);
                        *d->held_tail = h;
                        d->held_tail = &h->next;
                        d->held_bytes += set_len;
                        ctx->c->held_sets++;
                        return;
                }
        }
        if (!t) {
                char k[80];
                ctx->c->missing_template_sets++;
                ctx->c->missing_template_bytes += set_len;
                d->stats.missing_template_sets++;
                log_ratelimited(LOG_NOTICE, "missing-template",
                                "Data set for unknown template dropped exporter=%s "
                                "template_id=%u bytes=%zu",
                                exporter_key_format(&d->key, k, sizeof(k)), tid, set_len);
                return;
        }
        n = ipfix_template_count_records(t, set + 4, set_len - 4);
        if (n < 0) {
                ctx->c->err_record++;
                d->stats.errors++;
                return;
        }
        if (t->scope_count > 0) {
                ctx->c->options_records += (uint64_t) n;
                return;
        }
        if (n == 0)
                return;
        memcpy(ctx->scratch + ctx->scratch_len, set, set_len);
        ctx->scratch_len += set_len;
        ctx->pending[tid] = ctx->gen;
}

int decoder_feed(Decoder *d, const uint8_t *msg, size_t len, uint64_t init_ms) {
        DecoderCtx *ctx = d->ctx;
        uint64_t learned_before = ctx->c->templates_learned + ctx->c->templates_from_store;
        IpfixHeader h;
        size_t off;
        int produced = 0;

        if (ipfix_header_parse(msg, len, &h) < 0 || h.version != IPFIX_VERSION || h.length != len) {
                ctx->c->err_length++;
                d->stats.errors++;
                return -EBADMSG;
        }
        /* Pass 1: set headers must tile the message exactly, or nothing of it is used. */
        for (off = IPFIX_HEADER_SIZE; off < len;) {
                uint16_t sl;
                if (len - off < IPFIX_SET_HEADER_SIZE)
                        goto bad_set;
                sl = wire_read_u16(msg + off + 2);
                if (sl < IPFIX_SET_HEADER_SIZE || sl > len - off)
                        goto bad_set;
                off += sl;
        }

        d->export_ms = (uint64_t) h.export_time * 1000u;
        d->init_ms = init_ms;
        d->stats.messages++;
        d->stats.bytes += len;
        ctx->c->messages++;

        /* Pass 2: apply sets in order into a rebuilt message. */
        memcpy(ctx->scratch, msg, IPFIX_HEADER_SIZE);
        /* libfixbuf keys its templates by the header's domain: pin it to this decoder's. */
        wire_write_u32(ctx->scratch + 12, d->key.odid);
        ctx->scratch_len = IPFIX_HEADER_SIZE;
        for (off = IPFIX_HEADER_SIZE; off < len;) {
                uint16_t sid = wire_read_u16(msg + off), sl = wire_read_u16(msg + off + 2);
                const uint8_t *set = msg + off;

                off += sl;
                if (sid == IPFIX_SET_TEMPLATE || sid == IPFIX_SET_OPTIONS_TEMPLATE)
                        template_set(d, set + 4, sl - 4u, sid == IPFIX_SET_OPTIONS_TEMPLATE,
                                     &produced);
                else if (sid >= IPFIX_SET_MIN_DATA)
                        data_set(d, sid, set, sl);
                else
                        ctx->c->reserved_sets++;
        }
        produced += flush_scratch(d);

        d->stats.records += (uint64_t) produced;
        d->stats.last_seen_ms = now_realtime_ms();
        ctx->c->records += (uint64_t) produced;
        if (d->held && ctx->c->templates_learned + ctx->c->templates_from_store != learned_before)
                produced += decoder_retry_held(d);
        return produced;

bad_set:
        ctx->c->err_set++;
        d->stats.errors++;
        log_ratelimited(LOG_WARNING, "bad-set", "Malformed set header, message dropped");
        return -EBADMSG;
}

int decoder_retry_held(Decoder *d) {
        DecoderCtx *ctx = d->ctx;
        HeldSet **p = &d->held;
        uint64_t export_ms = d->export_ms, init_ms = d->init_ms;
        int produced = 0;

        while (*p) {
                HeldSet *h = *p;
                if (!template_for_data(d, h->tid)) {
                        p = &h->next;
                        continue;
                }
                /* Decode it as a message of its own with the times it arrived with. */
                *p = h->next;
                if (d->held_tail == &h->next)
                        d->held_tail = p;
                d->held_bytes -= h->len;
                d->export_ms = h->export_ms;
                d->init_ms = h->init_ms;
                ipfix_write_header(ctx->scratch, (uint32_t) (h->export_ms / 1000u), d->key.odid);
                ctx->scratch_len = IPFIX_HEADER_SIZE;
                data_set(d, h->tid, h->set, h->len);
                produced += flush_scratch(d);
                ctx->c->held_decoded_sets++;
                free(h);
        }
        d->export_ms = export_ms;
        d->init_ms = init_ms;
        d->stats.records += (uint64_t) produced;
        ctx->c->records += (uint64_t) produced;
        return produced;
}

void decoder_expire_held(Decoder *d, uint64_t now) {
        HeldSet **p = &d->held;

        while (*p) {
                HeldSet *h = *p;
                if (h->deadline_usec > now) {
                        p = &h->next;
                        continue;
                }
                *p = h->next;
                if (d->held_tail == &h->next)
                        d->held_tail = p;
                d->held_bytes -= h->len;
                d->ctx->c->held_expired_sets++;
                d->ctx->c->held_expired_bytes += h->len;
                d->stats.missing_template_sets++;
                free(h);
        }
}

bool decoder_has_held(const Decoder *d) {
        return d->held != NULL;
}

int decoder_refresh_template(Decoder *d, uint16_t tid) {
        DecoderCtx *ctx = d->ctx;
        IpfixTemplate *fresh = NULL, *cur = tmpl_lookup(d, tid);
        int r;

        if (!ctx->store)
                return 0;
        r = ctx->store->ops->lookup(ctx->store, &d->key, tid, &fresh);
        if (r == -ENOENT) {
                if (cur) {              /* withdrawn elsewhere */
                        tmpl_remove_at(d, tmpl_index(d, tid));
                        ctx->c->templates_withdrawn++;
                }
                return 0;
        }
        if (r < 0)
                return r;
        if (cur && ipfix_template_equal(cur, fresh)) {
                free(fresh);
                return 0;
        }
        r = tmpl_install(d, fresh);     /* newest definition wins */
        if (r < 0)
                return r;
        ctx->c->templates_from_store++;
        return d->held ? decoder_retry_held(d) : 0;
}

int decoder_refresh_all(Decoder *d) {
        uint16_t ids[64];
        int produced = 0;

        /* In chunks: refreshing may remove entries from the table being walked. */
        for (uint32_t start = 0;;) {
                uint32_t n = 0;
                for (uint32_t i = start; i < d->n_tmpls && n < ELEMENTSOF(ids); i++)
                        ids[n++] = d->tmpls[i]->id;
                if (n == 0)
                        break;
                for (uint32_t i = 0; i < n; i++) {
                        int r = decoder_refresh_template(d, ids[i]);
                        if (r > 0)
                                produced += r;
                }
                /* continue after the last id handled (the table is sorted by id) */
                long next = tmpl_index(d, ids[n - 1]);
                start = next >= 0 ? (uint32_t) next + 1 : (uint32_t) (-next - 1);
        }
        if (d->held)
                produced += decoder_retry_held(d);
        return produced;
}
