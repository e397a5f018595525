/* SPDX-License-Identifier: MIT */
/*
 * pipeline.c - parses a pipeline's JSON object and runs its stages. The hot path is
 * pipeline_process(): one pass over the batch with the compiled filter and the
 * de-duplication table, a copy into a local block for anonymization, then either the
 * aggregator (which emits later, through agg_emit()) or straight to the outputs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "anon.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "pipeline.h"

#define BLOCK_RECORDS 1024u

struct Pipeline {
        PipelineConfig *cfg;
        Dedup *dedup;
        Aggregator *agg;
        Output *outputs[PIPELINE_MAX_OUTPUTS];
        size_t n_outputs;
        void (*sink)(void *userdata, const FlowRecord *recs, size_t n);
        void *sink_userdata;
        PipelineStats stats;
};

PipelineConfig *pipeline_config_free(PipelineConfig *c) {
        if (!c)
                return NULL;
        free(c->name);
        flow_filter_free(c->filter);
        anon_free(c->anon);
        for (size_t i = 0; i < c->n_outputs; i++)
                output_config_free(c->outputs[i]);
        free(c->fingerprint);
        free(c);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PipelineConfig *, pipeline_config_free);

/* Prefixes @*err (a message relative to @member's value) with @member: "member: msg" for
 * a scalar's message, "member.key: msg" for an object's, kept when it already starts so. */
static int member_error(int r, const char *member, char **err) {
        char *inner = *err;
        size_t l = strlen(member);

        if (inner && strncmp(inner, member, l) == 0 && (inner[l] == '.' || inner[l] == ':'))
                return r;
        if (inner && strncmp(inner, "column ", 7) != 0 && strchr(inner, ':'))
                *err = config_errorf("%s.%s", member, inner);
        else
                *err = config_errorf("%s: %s", member, inner ? inner : strerror(-r));
        free(inner);
        return r;
}

static bool valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= PIPELINE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                        return false;
        }
        return true;
}

int pipeline_config_parse(json_t *obj, PipelineConfig **ret, char **reterr) {
        _cleanup_(pipeline_config_freep) PipelineConfig *c = NULL;
        const char *key;
        json_t *v;
        int r;

        if (!json_is_object(obj)) {
                *reterr = config_errorf("must be an object");
                return -EINVAL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        json_object_foreach(obj, key, v) {
                if (strcmp(key, "name") == 0) {
                        if (!json_is_string(v) || !valid_name(json_string_value(v))) {
                                *reterr = config_errorf("name: must be 1..%d characters of "
                                                        "[A-Za-z0-9._-]", PIPELINE_NAME_MAX - 1);
                                return -EINVAL;
                        }
                        c->name = strdup(json_string_value(v));
                        if (!c->name)
                                return -ENOMEM;
                } else if (strcmp(key, "filter") == 0) {
                        if (!json_is_string(v)) {
                                *reterr = config_errorf("filter: must be a string");
                                return -EINVAL;
                        }
                        r = flow_filter_compile(json_string_value(v), &c->filter, reterr);
                        if (r < 0)
                                return member_error(r, "filter", reterr);
                        if (flow_filter_is_all(c->filter))
                                c->filter = flow_filter_free(c->filter);
                } else if (strcmp(key, "dedup") == 0) {
                        r = dedup_config_parse(v, &c->dedup, reterr);
                        if (r < 0)
                                return member_error(r, "dedup", reterr);
                        c->dedup_enabled = true;
                } else if (strcmp(key, "anonymize") == 0) {
                        r = anon_new(&c->anon, v, reterr);
                        if (r < 0)
                                return member_error(r, "anonymize", reterr);
                        if (anon_key_file_exposed(c->anon))
                                log_warning("anonymize.key_file %s is readable by other users "
                                            "(in Kubernetes: defaultMode 0400 on the Secret)",
                                            anon_key_file(c->anon));
                } else if (strcmp(key, "aggregate") == 0) {
                        r = agg_config_parse(v, &c->aggregate, reterr);
                        if (r < 0)
                                return member_error(r, "aggregate", reterr);
                        c->aggregate_enabled = true;
                } else if (strcmp(key, "outputs") == 0) {
                        if (!json_is_array(v) || json_array_size(v) > PIPELINE_MAX_OUTPUTS) {
                                *reterr = config_errorf("outputs: must be an array of at most "
                                                        "%d objects", PIPELINE_MAX_OUTPUTS);
                                return -EINVAL;
                        }
                        for (size_t i = 0; i < json_array_size(v); i++) {
                                r = output_config_parse(json_array_get(v, i),
                                                        &c->outputs[c->n_outputs], reterr);
                                if (r < 0) {
                                        char m[32];
                                        (void) snprintf(m, sizeof(m), "outputs[%zu]", i);
                                        return member_error(r, m, reterr);
                                }
                                c->n_outputs++;
                        }
                } else {
                        *reterr = config_errorf("%s: unknown key (name, filter, dedup, "
                                                "anonymize, aggregate, outputs)", key);
                        return -EINVAL;
                }
        }
        if (!c->name) {
                *reterr = config_errorf("name: missing");
                return -EINVAL;
        }
        c->fingerprint = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (!c->fingerprint)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

static void deliver(Pipeline *p, const FlowRecord *recs, size_t n) {
        if (n == 0)
                return;
        p->stats.out += n;
        for (size_t i = 0; i < p->n_outputs; i++)
                if (output_write(p->outputs[i], recs, n) < 0)
                        p->stats.output_errors += n;
        if (p->sink)
                p->sink(p->sink_userdata, recs, n);
}

static void agg_emit(void *userdata, const FlowRecord *recs, size_t n) {
        deliver(userdata, recs, n);
}

int pipeline_new(Pipeline **ret, PipelineConfig *cfg) {
        Pipeline *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p) {
                pipeline_config_free(cfg);
                return -ENOMEM;
        }
        p->cfg = cfg;
        if (cfg->dedup_enabled) {
                r = dedup_new(&p->dedup, &cfg->dedup);
                if (r < 0)
                        goto fail;
        }
        if (cfg->aggregate_enabled) {
                r = agg_new(&p->agg, &cfg->aggregate, agg_emit, p);
                if (r < 0)
                        goto fail;
        }
        *ret = p;
        return 0;
fail:
        pipeline_free(p, 0);
        return r;
}

Pipeline *pipeline_free(Pipeline *p, uint64_t close_timeout_ms) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_outputs; i++) {
                (void) output_close(p->outputs[i], close_timeout_ms);
                output_free(p->outputs[i]);
        }
        agg_free(p->agg);
        dedup_free(p->dedup);
        pipeline_config_free(p->cfg);
        free(p);
        return NULL;
}

const char *pipeline_name(const Pipeline *p) {
        return p->cfg->name;
}

const PipelineConfig *pipeline_config(const Pipeline *p) {
        return p->cfg;
}

void pipeline_set_sink(Pipeline *p, void (*sink)(void *userdata, const FlowRecord *recs,
                                                 size_t n), void *userdata) {
        p->sink = sink;
        p->sink_userdata = userdata;
}

int pipeline_attach_output(Pipeline *p, Output *o) {
        if (p->n_outputs >= PIPELINE_MAX_OUTPUTS)
                return -E2BIG;
        p->outputs[p->n_outputs++] = o;
        return 0;
}

Output *pipeline_detach_output(Pipeline *p, const OutputConfig *cfg) {
        for (size_t i = 0; i < p->n_outputs; i++) {
                Output *o = p->outputs[i];
                if (!output_config_equal(output_get_config(o), cfg))
                        continue;
                memmove(&p->outputs[i], &p->outputs[i + 1],
                        (p->n_outputs - i - 1) * sizeof(p->outputs[0]));
                p->n_outputs--;
                return o;
        }
        return NULL;
}

size_t pipeline_n_outputs(const Pipeline *p) {
        return p->n_outputs;
}

Output *pipeline_output(const Pipeline *p, size_t i) {
        return i < p->n_outputs ? p->outputs[i] : NULL;
}

/* Without anonymization or aggregation the records are not changed: runs of consecutive
 * passing records go to the outputs straight from the batch, without a copy. */
static void process_passthrough(Pipeline *p, const FlowRecord *recs, size_t n, uint64_t now_ms) {
        size_t run = 0;         /* first record of the current run of passing records */

        for (size_t i = 0; i < n; i++) {
                const FlowRecord *r = &recs[i];
                bool drop = false;

                if (p->cfg->filter && !flow_filter_match(p->cfg->filter, r)) {
                        p->stats.filtered++;
                        drop = true;
                } else if (p->dedup && dedup_is_duplicate(p->dedup, r, now_ms)) {
                        p->stats.duplicates++;
                        drop = true;
                }
                if (drop) {
                        deliver(p, &recs[run], i - run);
                        run = i + 1;
                } else
                        p->stats.passed++;
        }
        deliver(p, &recs[run], n - run);
}

void pipeline_process(Pipeline *p, const FlowRecord *recs, size_t n, uint64_t now_ms) {
        FlowRecord block[BLOCK_RECORDS];
        size_t k = 0;

        p->stats.in += n;
        if (!p->cfg->anon && !p->agg) {
                process_passthrough(p, recs, n, now_ms);
                goto flush;
        }
        for (size_t i = 0; i < n; i++) {
                const FlowRecord *r = &recs[i];

                if (p->cfg->filter && !flow_filter_match(p->cfg->filter, r)) {
                        p->stats.filtered++;
                        continue;
                }
                if (p->dedup && dedup_is_duplicate(p->dedup, r, now_ms)) {
                        p->stats.duplicates++;
                        continue;
                }
                p->stats.passed++;
                block[k] = *r;
                if (p->cfg->anon)
                        anon_apply(p->cfg->anon, &block[k]);
                if (p->agg) {
                        p->stats.aggregated++;
                        agg_add(p->agg, &block[k], now_ms);
                        continue;
                }
                if (++k == BLOCK_RECORDS) {
                        deliver(p, block, k);
                        k = 0;
                }
        }
        deliver(p, block, k);
flush:
        for (size_t i = 0; i < p->n_outputs; i++)
                output_flush(p->outputs[i]);
}

void pipeline_tick(Pipeline *p, uint64_t now_ms) {
        if (p->agg)
                agg_tick(p->agg, now_ms);
        if (p->dedup)
                dedup_expire(p->dedup, now_ms);
        for (size_t i = 0; i < p->n_outputs; i++)
                output_flush(p->outputs[i]);
}

void pipeline_flush(Pipeline *p) {
        if (p->agg)
                agg_flush(p->agg);
        for (size_t i = 0; i < p->n_outputs; i++)
                output_flush(p->outputs[i]);
}

uint64_t pipeline_close_outputs(Pipeline *p, uint64_t timeout_ms) {
        uint64_t dropped = 0;

        for (size_t i = 0; i < p->n_outputs; i++) {
                int r = output_close(p->outputs[i], timeout_ms);
                if (r > 0)
                        dropped += (uint64_t) r;
        }
        return dropped;
}

void pipeline_get_stats(const Pipeline *p, PipelineStats *ret) {
        *ret = p->stats;
        if (p->dedup)
                dedup_get_stats(p->dedup, &ret->dedup);
        if (p->agg)
                agg_get_stats(p->agg, &ret->agg);
        for (size_t i = 0; i < p->n_outputs; i++) {
                OutputStats os;
                output_get_stats(p->outputs[i], &os);
                ret->output_errors += os.dropped + os.errors;
        }
}
