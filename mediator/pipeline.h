/* SPDX-License-Identifier: MIT */
/*
 * pipeline.h - one named mediation pipeline: filter -> de-duplicate -> anonymize ->
 * aggregate -> outputs, in that fixed order, with its own counters.
 *
 * A PipelineConfig is the parsed and validated JSON object (filters compiled, key files
 * loaded, outputs parsed). A Pipeline is the running stages; outputs are attached
 * separately so that a reload can move an unchanged output (an open TCP connection, an open
 * file) from the old pipeline to the new one instead of reopening it.
 *
 * Everything runs on the mediator's event loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aggregate.h"
#include "dedup.h"
#include "flow-filter.h"
#include "flow.h"
#include "output.h"

#define PIPELINE_MAX_OUTPUTS 16
#define PIPELINE_NAME_MAX 64

typedef struct Anonymizer Anonymizer;

typedef struct PipelineConfig {
        char *name;
        FlowFilter *filter;             /* NULL: every record passes */
        bool dedup_enabled;
        DedupConfig dedup;
        Anonymizer *anon;               /* NULL: no anonymization */
        bool aggregate_enabled;
        AggConfig aggregate;
        OutputConfig *outputs[PIPELINE_MAX_OUTPUTS];
        size_t n_outputs;
        char *fingerprint;              /* canonical JSON text: equal text, equal pipeline */
} PipelineConfig;

/**
 * pipeline_config_parse() - validates one element of the `pipelines` array.
 * @reterr: on failure a heap message relative to the object ("filter: column 3: ...")
 * Return: 0, -EINVAL, -ENOMEM, or -errno from loading a key file.
 */
int pipeline_config_parse(json_t *obj, PipelineConfig **ret, char **reterr);
PipelineConfig *pipeline_config_free(PipelineConfig *c);

typedef struct PipelineStats {
        uint64_t in;                    /* records offered to the pipeline */
        uint64_t filtered;              /* rejected by the filter */
        uint64_t duplicates;            /* dropped by de-duplication */
        uint64_t passed;                /* after filter and de-duplication */
        uint64_t aggregated;            /* records merged by aggregation */
        uint64_t out;                   /* records handed to the outputs */
        uint64_t output_errors;         /* records an output refused or dropped */
        DedupStats dedup;
        AggStats agg;
} PipelineStats;

typedef struct Pipeline Pipeline;

/**
 * pipeline_new() - builds the stages of @cfg (consumed: the pipeline owns it, also on
 * failure). Outputs are attached afterwards with pipeline_attach_output().
 */
int pipeline_new(Pipeline **ret, PipelineConfig *cfg);
/* Frees the stages and closes (output_close() with @close_timeout_ms) attached outputs. */
Pipeline *pipeline_free(Pipeline *p, uint64_t close_timeout_ms);

const char *pipeline_name(const Pipeline *p);
const PipelineConfig *pipeline_config(const Pipeline *p);

/* Takes ownership of @o. Return: 0 or -E2BIG beyond PIPELINE_MAX_OUTPUTS. */
int pipeline_attach_output(Pipeline *p, Output *o);
/* Gives back the attached output whose config equals @cfg (ownership to the caller). */
Output *pipeline_detach_output(Pipeline *p, const OutputConfig *cfg);
size_t pipeline_n_outputs(const Pipeline *p);
/* Also hand every record the outputs get to @sink (the flow store, when it follows this
 * pipeline). */
void pipeline_set_sink(Pipeline *p, void (*sink)(void *userdata, const FlowRecord *recs,
                                                 size_t n), void *userdata);
Output *pipeline_output(const Pipeline *p, size_t i);

/* Runs @n records through the stages (records are copied before anonymization). */
void pipeline_process(Pipeline *p, const FlowRecord *recs, size_t n, uint64_t now_ms);
/* Once per second: aggregation windows, de-duplication expiry, partial output messages. */
void pipeline_tick(Pipeline *p, uint64_t now_ms);
/* Emits every aggregation entry now and flushes the outputs (reload, shutdown). */
void pipeline_flush(Pipeline *p);
/* Closes every output (output_close(), within @timeout_ms each); the outputs stay attached
 * so their final counters can still be read. Return: records dropped at close. */
uint64_t pipeline_close_outputs(Pipeline *p, uint64_t timeout_ms);

void pipeline_get_stats(const Pipeline *p, PipelineStats *ret);
