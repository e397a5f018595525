/* SPDX-License-Identifier: MIT */
/*
 * decoder.h - turns complete IPFIX messages from one transport session and one observation
 * domain into canonical flow records.
 *
 * Data sets whose template is not known yet are held (bounded bytes and time per decoder)
 * and decoded when the template arrives, here or through the store; what expires is counted.
 *
 * A Decoder pre-scans every message's sets itself (RFC 7011 3.3): it validates set and
 * template records, keeps the session's templates, handles withdrawal and redefinition,
 * fetches templates it lacks from the TmplStore, counts and strips what libfixbuf must not
 * see (unknown-template, options and withdrawn-template data sets, template sets), and
 * only then hands a rebuilt, validated message to libfixbuf in buffer mode for transcoding
 * into a fixed internal record, which it maps to a FlowRecord.
 *
 * A DecoderCtx belongs to one worker thread: it owns that thread's libfixbuf information
 * model and scratch buffers. Decoders belong to their connection (TCP) or UDP session
 * table entry; none of them may be used from another thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "flow.h"
#include "tmpl-store.h"

typedef struct DecoderCtx DecoderCtx;
typedef struct Decoder Decoder;

typedef struct DecoderLimits {
        uint32_t max_templates;         /* per decoder (exporter session + ODID) */
        uint32_t max_unknown_elements;  /* unknown (enterprise) IEs added to a worker's model */
        uint32_t hold_ms;               /* keep data sets without a template this long; 0 = off */
        uint32_t hold_max_bytes;        /* per decoder */
} DecoderLimits;

/*
 * Returns the record slot to fill for the next decoded flow, or NULL when the output cannot
 * take it (the sink counts that drop). The slot is committed by returning it.
 */
typedef FlowRecord *(*DecoderReserveFn)(void *userdata);

typedef struct DecoderStats {
        uint64_t messages;
        uint64_t records;
        uint64_t bytes;
        uint64_t errors;
        uint64_t missing_template_sets;
        uint64_t last_seen_ms;
        uint32_t templates;
} DecoderStats;

/**
 * decoder_ctx_new() - per-thread decoding context.
 * @store:    template store (borrowed, must outlive the context; may be NULL)
 * @counters: where totals are counted (borrowed)
 * Return: 0, -ENOMEM, or -EIO when libfixbuf rejects the internal template.
 */
int decoder_ctx_new(DecoderCtx **ret, const DecoderLimits *limits, TmplStore *store,
                    CollectorCounters *counters, DecoderReserveFn reserve, void *userdata);
DecoderCtx *decoder_ctx_free(DecoderCtx *ctx);

/**
 * decoder_new() - a decoder for exporter @key (its ODID included) on one transport session.
 * Return: 0 or -ENOMEM / -EIO.
 */
int decoder_new(DecoderCtx *ctx, const ExporterKey *key, Decoder **ret);
Decoder *decoder_free(Decoder *d);

/**
 * decoder_feed() - decodes one complete IPFIX message.
 * @msg, @len: exactly one message (header length == @len, version 10)
 * @init_ms:   exporter's system init time in ms (for sysUpTime-relative timestamps), or 0
 *
 * Return: number of flow records produced (>= 0), or -EBADMSG when the message was
 * malformed and dropped whole (counted). Records that the sink refused are counted by it.
 */
int decoder_feed(Decoder *d, const uint8_t *msg, size_t len, uint64_t init_ms);

/**
 * decoder_retry_held() - decodes held data sets whose template is now known (locally or
 * through the store). Called after a template arrives or the store reports a change.
 * Return: records produced.
 */
int decoder_retry_held(Decoder *d);

/* Drops held data sets older than hold_ms (counted as held_expired_sets/bytes). */
void decoder_expire_held(Decoder *d, uint64_t now_usec);
bool decoder_has_held(const Decoder *d);

/**
 * decoder_refresh_template() - re-reads template @tid from the store after another session
 * or replica changed it: a newer definition replaces the session's, a withdrawal removes it,
 * and held data sets are retried. Return: records produced by the retry, or -errno.
 */
int decoder_refresh_template(Decoder *d, uint16_t tid);

/* decoder_refresh_template() for every template of the session (after a withdraw-all
 * elsewhere), then a retry of held data. Return: records produced. */
int decoder_refresh_all(Decoder *d);

const DecoderStats *decoder_get_stats(const Decoder *d);
const ExporterKey *decoder_get_key(const Decoder *d);
