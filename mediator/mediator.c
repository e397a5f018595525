/* SPDX-License-Identifier: MIT */
/*
 * mediator.c - the mediator's event loop. Read this file top to bottom:
 *
 *   on_input()/input_pump()  PULL batches (bounded work per wake-up), validate them, feed
 *                            the store and every pipeline
 *   on_tick()                once per second: aggregation windows, de-duplication expiry,
 *                            partial output messages, rollup sealing
 *   check_outputs()          on the tick: output state changes, degraded/recovered
 *   mediator_reload()        validate, build, then swap pipelines between two batches
 *                            (SIGHUP and the bus's Reload() both end here)
 *   mediator_drain()         the bus's Drain(): pull until idle, flush, reply from a timer
 *   mediator_run()           signals; on SIGTERM drain the input, flush, close outputs
 *
 * The flow store and rollups are the only state shared with another thread (the query
 * service); both lock internally. The bus (mediator-bus.c) only reads this state and calls
 * the functions in mediator.h; losing it never touches the data path.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "flow-store.h"
#include "hash.h"
#include "log.h"
#include "macro.h"
#include "mediator-bus.h"
#include "mediator.h"
#include "query.h"
#include "rollup.h"

#define PUMP_MAX_MESSAGES 64            /* batches per wake-up before yielding to the loop */
#define DRAIN_MAX_MESSAGES 100000       /* batches read at shutdown at most */
#define TICK_USEC 1000000u
#define DRAIN_IDLE_USEC 200000u         /* Drain(): input idle this long means done */
#define DRAIN_CHECK_USEC 20000u

typedef enum DrainPhase {
        DRAIN_NONE,
        DRAIN_RUNNING,
        DRAIN_DONE,
} DrainPhase;

/* What the last tick saw of one output, to notice state changes. */
typedef struct OutputSnap {
        char *pipeline;
        const char *type;               /* static (output_type_to_string()) */
        char *target;
        char state[16];
        bool changed;                   /* differs from the tick before */
} OutputSnap;

struct Mediator {
        MediatorConfig cfg;
        char *config_path;
        char *config_text;              /* the text running now (NULL: none, hashes as "") */
        char config_version[17];
        char pod[256];

        sd_event *event;
        sd_event_source *input_src, *pump_src, *tick_src, *stats_src;
        sd_event_source *term_src, *int_src, *hup_src;
        void *zctx;
        void *input;
        void *scratch;                  /* 8-byte aligned copy of an unaligned batch */

        Pipeline **pipelines;
        size_t n_pipelines;

        FlowStore *store;
        Rollup *rollup;
        QueryService *query;

        MediatorCounters counters;
        uint64_t started_ms;

        MediatorBus *bus;
        MediatorState published_state;  /* what the bus was last told */
        bool ticked;                    /* the first tick looked at the outputs */
        bool outputs_down;
        OutputSnap *snap;
        size_t n_snap;

        DrainPhase drain;
        sd_event_source *drain_src;
        uint64_t drain_start_usec, last_input_usec;
        MediatorDrainDone drain_done;
        void *drain_userdata;
};

static const char *const state_table[_MEDIATOR_STATE_MAX] = {
        [MEDIATOR_STARTING] = "starting", [MEDIATOR_RUNNING] = "running",
        [MEDIATOR_DEGRADED] = "degraded", [MEDIATOR_DRAINING] = "draining",
        [MEDIATOR_DRAINED] = "drained",
};

const char *mediator_state_to_string(MediatorState s) {
        return s >= 0 && s < _MEDIATOR_STATE_MAX ? state_table[s] : NULL;
}

static void set_config_text(Mediator *m, const char *text) {
        char *copy = text ? strdup(text) : NULL;

        /* Out of memory keeps no text, but the version still describes @text. */
        free(m->config_text);
        m->config_text = copy;
        (void) snprintf(m->config_version, sizeof(m->config_version), "%016" PRIx64,
                        hash_fnv1a64(text));
}

MediatorState mediator_get_state(const Mediator *m) {
        assert(m);
        if (m->drain == DRAIN_RUNNING)
                return MEDIATOR_DRAINING;
        if (m->drain == DRAIN_DONE)
                return MEDIATOR_DRAINED;
        if (!m->ticked)
                return MEDIATOR_STARTING;
        return m->outputs_down ? MEDIATOR_DEGRADED : MEDIATOR_RUNNING;
}

bool mediator_is_ready(const Mediator *m) {
        MediatorState s = mediator_get_state(m);
        return s == MEDIATOR_RUNNING || s == MEDIATOR_DEGRADED;
}

void mediator_get_counters(const Mediator *m, MediatorCounters *ret) {
        assert(m);
        assert(ret);
        *ret = m->counters;
        ret->signals_dropped = mediator_bus_signals_dropped(m->bus);
}

uint64_t mediator_started_ms(const Mediator *m) {
        return m->started_ms;
}

const char *mediator_config_version(const Mediator *m) {
        return m->config_version;
}

/* Tells the bus (and the log) when State, and with it maybe Ready, changed. */
static void publish_state(Mediator *m) {
        MediatorState s = mediator_get_state(m);
        MediatorState old = m->published_state;

        if (s == old)
                return;
        m->published_state = s;
        log_info("State %s -> %s", mediator_state_to_string(old), mediator_state_to_string(s));
        mediator_bus_state_changed(m->bus);
}

static void store_sink(void *userdata, const FlowRecord *recs, size_t n) {
        Mediator *m = userdata;

        if (m->store)
                flow_store_append(m->store, recs, n);
        if (m->rollup)
                rollup_add(m->rollup, recs, n, now_realtime_ms());
}

static bool store_follows_input(const Mediator *m) {
        return strcmp(m->cfg.store_source, "input") == 0;
}

static void connect_sinks(Mediator *m) {
        for (size_t i = 0; i < m->n_pipelines; i++)
                pipeline_set_sink(m->pipelines[i],
                                  !store_follows_input(m) &&
                                                  strcmp(pipeline_name(m->pipelines[i]),
                                                         m->cfg.store_source) == 0
                                          ? store_sink
                                          : NULL,
                                  m);
}

static void process_batch(Mediator *m, const void *data, size_t len) {
        const FlowRecord *recs;
        FlowBatchHeader h;
        uint64_t now;
        int n;

        if (((uintptr_t) data & 7u) != 0 && len <= flow_batch_size(FLOW_BATCH_MAX_RECORDS)) {
                memcpy(m->scratch, data, len);
                data = m->scratch;
                m->counters.unaligned_batches++;
        }
        n = flow_batch_decode(data, len, &h, &recs);
        if (n < 0) {
                m->counters.bad_batches++;
                log_ratelimited(LOG_WARNING, "bad-batch",
                                "Dropped a malformed flow batch of %zu bytes: %s", len,
                                strerror(-n));
                return;
        }
        m->counters.batches++;
        m->counters.records += (uint64_t) n;
        now = now_realtime_ms();
        if (store_follows_input(m))
                store_sink(m, recs, (size_t) n);
        for (size_t i = 0; i < m->n_pipelines; i++)
                pipeline_process(m->pipelines[i], recs, (size_t) n, now);
}

/* Reads up to @max batches. Return: batches read, or -errno. */
static int input_read(Mediator *m, unsigned max) {
        zmq_msg_t msg;
        int n = 0;

        zmq_msg_init(&msg);
        for (unsigned i = 0; i < max; i++) {
                int rc = zmq_msg_recv(&msg, m->input, ZMQ_DONTWAIT);
                if (rc < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        zmq_msg_close(&msg);
                        return -errno;
                }
                process_batch(m, zmq_msg_data(&msg), zmq_msg_size(&msg));
                n++;
        }
        zmq_msg_close(&msg);
        if (n > 0)
                m->last_input_usec = now_usec();
        return n;
}

static bool input_readable(Mediator *m) {
        int events = 0;
        size_t sz = sizeof(events);

        if (zmq_getsockopt(m->input, ZMQ_EVENTS, &events, &sz) < 0)
                return false;
        return events & ZMQ_POLLIN;
}

/* ZMQ_FD is edge-triggered: keep pumping (through a defer source, so timers and signals
 * still run between rounds) until the socket says it has nothing more. */
static void input_pump(Mediator *m) {
        int r = input_read(m, PUMP_MAX_MESSAGES);
        if (r < 0)
                log_ratelimited(LOG_ERR, "input", "Input receive failed: %s", strerror(-r));
        (void) sd_event_source_set_enabled(m->pump_src,
                                           input_readable(m) ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        input_pump(userdata);
        return 0;
}

static int on_pump(sd_event_source *s, void *userdata) {
        input_pump(userdata);
        return 0;
}

/* The gauge ipfixd_mediator_output_up: an output is up while it can take records
 * (connected, or a file open or ready to open). */
static bool output_state_up(const char *state) {
        return state && strcmp(state, "connecting") != 0 && strcmp(state, "backoff") != 0 &&
               strcmp(state, "error") != 0;
}

static void snaps_free(OutputSnap *snap, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(snap[i].pipeline);
                free(snap[i].target);
        }
        free(snap);
}

static const OutputSnap *snap_find(const OutputSnap *snap, size_t n, const OutputSnap *k) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(snap[i].pipeline, k->pipeline) == 0 && snap[i].type == k->type &&
                    strcmp(snap[i].target, k->target) == 0)
                        return &snap[i];
        return NULL;
}

/* Once per tick: compares every output's state with the last tick's (OutputStateChanged
 * for each difference, "removed" for outputs a reload closed) and derives whether the
 * mediator is degraded. Polling rather than hooks in the outputs: a state that lasts less
 * than a tick (a reconnect that succeeds at once) is not news. Degraded/Recovered go out
 * first: under the signal rate limit they matter more than the per-output details. */
static void check_outputs(Mediator *m) {
        size_t n = 0, n_down = 0;
        OutputSnap *snap;
        char reason[512] = "";

        for (size_t i = 0; i < m->n_pipelines; i++)
                n += pipeline_n_outputs(m->pipelines[i]);
        snap = calloc(n + 1, sizeof(*snap));
        if (!snap)
                return;         /* try again next tick */
        n = 0;
        for (size_t i = 0; i < m->n_pipelines; i++)
                for (size_t j = 0; j < pipeline_n_outputs(m->pipelines[i]); j++) {
                        OutputSnap *e = &snap[n];
                        const OutputSnap *old;
                        OutputStats os;

                        output_get_stats(pipeline_output(m->pipelines[i], j), &os);
                        e->pipeline = strdup(pipeline_name(m->pipelines[i]));
                        e->target = strdup(os.target ? os.target : "");
                        if (!e->pipeline || !e->target) {
                                snaps_free(snap, n + 1);
                                return;
                        }
                        e->type = os.type;
                        (void) snprintf(e->state, sizeof(e->state), "%s",
                                        os.state ? os.state : "idle");
                        n++;
                        old = snap_find(m->snap, m->n_snap, e);
                        e->changed = !old || strcmp(old->state, e->state) != 0;
                        if (e->changed)
                                log_full(!old || output_state_up(old->state) !=
                                                         output_state_up(e->state)
                                                 ? LOG_INFO
                                                 : LOG_DEBUG,
                                         "Output %s %s: %s pipeline=%s", e->type, e->target,
                                         e->state, e->pipeline);
                        if (!output_state_up(e->state) && n_down++ == 0)
                                (void) snprintf(reason, sizeof(reason),
                                                "output %s %s of pipeline %s is %s", e->type,
                                                e->target, e->pipeline, e->state);
                }
        if (n_down > 1) {
                size_t l = strlen(reason);
                (void) snprintf(reason + l, sizeof(reason) - l, " (and %zu more)", n_down - 1);
        }
        if (n_down > 0 && !m->outputs_down) {
                log_warning("Degraded: %s", reason);
                mediator_bus_emit_degraded(m->bus, reason);
        } else if (n_down == 0 && m->outputs_down) {
                log_info("Recovered: every output is up");
                mediator_bus_emit_recovered(m->bus);
        }
        m->outputs_down = n_down > 0;
        m->ticked = true;

        for (size_t i = 0; i < n; i++)
                if (snap[i].changed)
                        mediator_bus_emit_output_state(m->bus, snap[i].pipeline, snap[i].type,
                                                       snap[i].target, snap[i].state);
        for (size_t i = 0; i < m->n_snap; i++)
                if (!snap_find(snap, n, &m->snap[i]))
                        mediator_bus_emit_output_state(m->bus, m->snap[i].pipeline,
                                                       m->snap[i].type, m->snap[i].target,
                                                       "removed");
        snaps_free(m->snap, m->n_snap);
        m->snap = snap;
        m->n_snap = n;
        publish_state(m);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Mediator *m = userdata;
        uint64_t now = now_realtime_ms();

        for (size_t i = 0; i < m->n_pipelines; i++)
                pipeline_tick(m->pipelines[i], now);
        if (m->rollup)
                rollup_tick(m->rollup, now);
        check_outputs(m);
        (void) sd_event_source_set_time_relative(s, TICK_USEC);
        return 0;
}

static void write_stats(Mediator *m) {
        log_info("stats: batches=%" PRIu64 " records=%" PRIu64 " bad_batches=%" PRIu64
                 " pipelines=%zu", m->counters.batches, m->counters.records,
                 m->counters.bad_batches, m->n_pipelines);
        for (size_t i = 0; i < m->n_pipelines; i++) {
                PipelineStats ps;
                pipeline_get_stats(m->pipelines[i], &ps);
                log_info("stats: pipeline %s in=%" PRIu64 " passed=%" PRIu64 " filtered=%" PRIu64
                         " duplicates=%" PRIu64 " out=%" PRIu64 " output_errors=%" PRIu64,
                         pipeline_name(m->pipelines[i]), ps.in, ps.passed, ps.filtered,
                         ps.duplicates, ps.out, ps.output_errors);
        }
        if (m->cfg.metrics_file) {
                MetricsBuf b = { 0 };
                int r;
                mediator_render_metrics(m, &b);
                r = metrics_write_file(m->cfg.metrics_file, &b);
                if (r < 0)
                        log_warning_errno(r, "Failed to write %s: %m, ignoring",
                                          m->cfg.metrics_file);
                metrics_buf_done(&b);
        }
}

static int on_stats_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Mediator *m = userdata;
        write_stats(m);
        (void) sd_event_source_set_time_relative(
                s, (uint64_t) MAX(m->cfg.stats_interval_s, 1) * 1000000u);
        (void) sd_event_source_set_enabled(s, m->cfg.stats_interval_s > 0 ? SD_EVENT_ON
                                                                          : SD_EVENT_OFF);
        return 0;
}

/* Opens (or, from @old, reuses) every output of @p's configuration. On failure nothing
 * is taken from @old. */
static int open_outputs(Mediator *m, Pipeline *p, Pipeline **old, size_t n_old, char **reterr) {
        const PipelineConfig *pc = pipeline_config(p);
        int r;

        for (size_t i = 0; i < pc->n_outputs; i++) {
                Output *o = NULL;
                bool reused = false;

                /* old[j] is NULL where build_pipelines() took an unchanged pipeline. */
                for (size_t j = 0; j < n_old && !o; j++)
                        if (old[j] && strcmp(pipeline_name(old[j]), pc->name) == 0)
                                o = pipeline_detach_output(old[j], pc->outputs[i]);
                reused = o != NULL;
                if (!o) {
                        char *inner = NULL;
                        r = output_new(&o, pc->outputs[i], m->event, m->zctx, pc->name, &inner);
                        if (r < 0) {
                                *reterr = config_errorf("pipelines (%s).outputs[%zu]: %s",
                                                        pc->name, i, inner ? inner : strerror(-r));
                                free(inner);
                                return r;
                        }
                }
                r = pipeline_attach_output(p, o);
                if (r < 0) {
                        output_free(o);
                        return r;
                }
                (void) reused;
        }
        return 0;
}

/* Builds pipelines for @cfg, taking unchanged pipelines whole from @old (set to NULL
 * there) and unchanged outputs of changed ones. On failure, whatever was taken from @old
 * goes back: callers then keep running the old set. */
static int build_pipelines(Mediator *m, MediatorConfig *cfg, Pipeline **old, size_t n_old,
                           Pipeline ***ret, char **reterr) {
        Pipeline **ps;
        int r = 0;

        ps = calloc(cfg->n_pipelines + 1, sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        for (size_t i = 0; i < cfg->n_pipelines; i++) {
                PipelineConfig *pc = cfg->pipelines[i];

                for (size_t j = 0; j < n_old; j++)
                        if (old[j] && strcmp(pipeline_config(old[j])->fingerprint,
                                             pc->fingerprint) == 0) {
                                ps[i] = TAKE_PTR(old[j]);
                                break;
                        }
                if (ps[i])
                        continue;
                cfg->pipelines[i] = NULL;       /* pipeline_new() consumes it */
                r = pipeline_new(&ps[i], pc);
                if (r < 0) {
                        *reterr = config_errorf("pipelines (%s): %s", pc->name, strerror(-r));
                        break;
                }
                r = open_outputs(m, ps[i], old, n_old, reterr);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                /* Give back what came from @old: whole pipelines, then reused outputs. */
                for (size_t i = 0; i < cfg->n_pipelines; i++) {
                        bool built = !cfg->pipelines[i];   /* consumed by pipeline_new() */
                        if (!ps[i])
                                continue;
                        if (!built) {
                                for (size_t j = 0; j < n_old; j++)
                                        if (!old[j]) {
                                                old[j] = ps[i];
                                                ps[i] = NULL;
                                                break;
                                        }
                                continue;
                        }
                        for (size_t j = 0; j < n_old; j++) {
                                if (!old[j] || strcmp(pipeline_name(old[j]),
                                                      pipeline_name(ps[i])) != 0)
                                        continue;
                                while (pipeline_n_outputs(ps[i]) > 0) {
                                        Output *o = pipeline_output(ps[i], 0);
                                        const OutputConfig *oc = output_get_config(o);
                                        bool was_old = false;
                                        for (size_t k = 0; k < pipeline_config(old[j])->n_outputs; k++)
                                                if (output_config_equal(
                                                            pipeline_config(old[j])->outputs[k], oc))
                                                        was_old = true;
                                        o = pipeline_detach_output(ps[i], oc);
                                        if (was_old && pipeline_attach_output(old[j], o) >= 0)
                                                continue;
                                        (void) output_close(o, 0);
                                        output_free(o);
                                }
                        }
                        pipeline_free(ps[i], 0);
                        ps[i] = NULL;
                }
                free(ps);
                return r;
        }
        *ret = ps;
        return 0;
}

static void free_pipelines(Pipeline **ps, size_t n, uint64_t timeout_ms) {
        for (size_t i = 0; i < n; i++)
                if (ps[i]) {
                        pipeline_flush(ps[i]);
                        pipeline_free(ps[i], timeout_ms);
                }
        free(ps);
}

static json_t *describe_changes(const MediatorConfig *a, const MediatorConfig *b) {
        json_t *changes = json_array();

        if (!changes)
                return NULL;
        for (size_t i = 0; i < mediator_config_n_keys; i++) {
                const ConfigKey *k = &mediator_config_keys[i];
                char msg[256];
                if (!config_key_changed(k, a, b))
                        continue;
                (void) snprintf(msg, sizeof(msg), "%s: %s", k->name,
                                k->reloadable ? "changed"
                                              : "changed in the file; takes effect after a restart");
                json_array_append_new(changes, json_string(msg));
        }
        for (size_t i = 0; i < b->n_pipelines; i++) {
                const PipelineConfig *o = mediator_config_pipeline(a, b->pipelines[i]->name);
                char msg[128];
                if (o && strcmp(o->fingerprint, b->pipelines[i]->fingerprint) == 0)
                        continue;
                (void) snprintf(msg, sizeof(msg), "pipeline %s: %s", b->pipelines[i]->name,
                                o ? "changed" : "added");
                json_array_append_new(changes, json_string(msg));
        }
        for (size_t i = 0; i < a->n_pipelines; i++)
                if (!mediator_config_pipeline(b, a->pipelines[i]->name)) {
                        char msg[128];
                        (void) snprintf(msg, sizeof(msg), "pipeline %s: removed",
                                        a->pipelines[i]->name);
                        json_array_append_new(changes, json_string(msg));
                }
        return changes;
}

/* Pipeline configs of the running set, for describe_changes() (borrowed pointers). */
static void running_config_view(const Mediator *m, MediatorConfig *view, PipelineConfig **buf) {
        *view = m->cfg;
        for (size_t i = 0; i < m->n_pipelines; i++)
                buf[i] = (PipelineConfig *) pipeline_config(m->pipelines[i]);
        view->pipelines = buf;
        view->n_pipelines = m->n_pipelines;
}

/* What a reload refuses although the document itself is valid. */
static int check_reloadable(const Mediator *m, const MediatorConfig *n, char **reterr) {
        if (strcmp(m->cfg.store_source, n->store_source) != 0) {
                *reterr = config_errorf("store_source: cannot change on reload (restart)");
                return -EINVAL;
        }
        return 0;
}

int mediator_validate(Mediator *m, const char *json, char **reterr) {
        MediatorConfig n;
        int r;

        assert(m);
        r = mediator_config_parse(json, true, &n, reterr);
        if (r >= 0)
                r = check_reloadable(m, &n, reterr);
        mediator_config_done(&n);
        return r;
}

static int reload_refused(Mediator *m, int r, char *const *reterr) {
        m->counters.reload_failures++;
        log_error("Reload refused: %s; keeping the running configuration",
                  *reterr ? *reterr : strerror(-r));
        return r;
}

int mediator_reload(Mediator *m, const char *json, char **retchanges, char **reterr) {
        PipelineConfig *view_buf[MEDIATOR_MAX_PIPELINES + 1];
        _cleanup_free_ char *changes_text = NULL;
        MediatorConfig n, view;
        Pipeline **ps = NULL;
        json_t *changes;
        int r;

        assert(m);
        if (m->drain == DRAIN_RUNNING) {
                *reterr = config_errorf("a drain is running; reload once it is done");
                return reload_refused(m, -EBUSY, reterr);
        }
        r = mediator_config_parse(json, true, &n, reterr);
        if (r >= 0)
                r = check_reloadable(m, &n, reterr);
        if (r < 0) {
                mediator_config_done(&n);
                return reload_refused(m, r, reterr);
        }
        running_config_view(m, &view, view_buf);
        changes = describe_changes(&view, &n);

        r = build_pipelines(m, &n, m->pipelines, m->n_pipelines, &ps, reterr);
        if (r < 0) {
                json_decref(changes);
                mediator_config_done(&n);
                return reload_refused(m, r, reterr);
        }
        /* Commit: what is left of the old set is flushed into its outputs and closed at once:
         * waiting for a removed TCP output to deliver its queue would stall the loop, so
         * what it still holds is dropped, counted and logged. */
        for (size_t i = 0; i < m->n_pipelines; i++) {
                uint64_t dropped;
                if (!m->pipelines[i])
                        continue;
                pipeline_flush(m->pipelines[i]);
                dropped = pipeline_close_outputs(m->pipelines[i], 0);
                if (dropped > 0)
                        log_warning("Reload: pipeline %s: %" PRIu64 " queued records of removed "
                                    "outputs dropped", pipeline_name(m->pipelines[i]), dropped);
        }
        free_pipelines(m->pipelines, m->n_pipelines, 0);
        m->pipelines = ps;
        m->n_pipelines = n.n_pipelines;

        /* Reloadable scalar keys. */
        free(m->cfg.log_level);
        m->cfg.log_level = TAKE_PTR(n.log_level);
        log_set_max_level(log_level_from_string(m->cfg.log_level));
        m->cfg.stats_interval_s = n.stats_interval_s;
        m->cfg.query_max_limit = n.query_max_limit;
        m->cfg.query_max_scan = n.query_max_scan;
        m->cfg.query_timeout_ms = n.query_timeout_ms;
        if (m->query)
                query_service_set_limits(m->query, &(QueryLimits) {
                        .max_limit = (size_t) m->cfg.query_max_limit,
                        .max_scan = (uint64_t) m->cfg.query_max_scan,
                        .timeout_ms = (uint64_t) m->cfg.query_timeout_ms,
                });
        /* The pipeline configs now live in their pipelines. */
        for (size_t i = 0; i < m->cfg.n_pipelines; i++)
                pipeline_config_free(m->cfg.pipelines[i]);
        free(m->cfg.pipelines);
        for (size_t i = 0; i < n.n_pipelines; i++)
                if (n.pipelines[i])     /* unchanged: the running pipeline kept its own */
                        n.pipelines[i] = pipeline_config_free(n.pipelines[i]);
        m->cfg.pipelines = NULL;
        m->cfg.n_pipelines = 0;
        connect_sinks(m);
        m->counters.reloads++;
        mediator_config_done(&n);
        set_config_text(m, json);
        changes_text = changes ? json_dumps(changes, JSON_COMPACT) : NULL;
        json_decref(changes);
        log_info("Reloaded (config version %s): %s", m->config_version,
                 changes_text ? changes_text : "[]");
        mediator_bus_emit_reloaded(m->bus, changes_text ? changes_text : "[]");
        if (retchanges)
                *retchanges = TAKE_PTR(changes_text);
        return 0;
}

int mediator_reload_file(Mediator *m, char **retchanges, char **reterr) {
        _cleanup_free_ char *text = NULL;
        int r;

        assert(m);
        if (!m->config_path) {
                *reterr = config_errorf("no configuration file to re-read (started without "
                                        "--config)");
                return -ENOENT;
        }
        r = config_read_file(m->config_path, &text);
        if (r < 0) {
                *reterr = config_errorf("cannot read %s: %s", m->config_path, strerror(-r));
                return reload_refused(m, r, reterr);
        }
        return mediator_reload(m, text, retchanges, reterr);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Mediator *m = userdata;
        _cleanup_free_ char *err = NULL;
        int r;

        if (!m->config_path) {
                log_notice("SIGHUP: no configuration file to reload, ignoring");
                return 0;
        }
        r = mediator_reload_file(m, NULL, &err);       /* logs either way */
        (void) r;
        return 0;
}

/* Drain: DRAIN_RUNNING -> (input idle or timeout) flush -> DRAIN_DONE, then @done. */
static void drain_complete(Mediator *m, int r) {
        MediatorDrainDone done = m->drain_done;

        m->drain = r < 0 ? DRAIN_NONE : DRAIN_DONE;
        m->drain_done = NULL;
        m->drain_src = sd_event_source_disable_unref(m->drain_src);
        publish_state(m);
        if (done)
                done(m->drain_userdata, r);
}

static void drain_flush(Mediator *m) {
        for (size_t i = 0; i < m->n_pipelines; i++)
                pipeline_flush(m->pipelines[i]);
}

static int on_drain_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Mediator *m = userdata;
        uint64_t now, idle_since;

        input_pump(m);          /* the last batches may still be arriving */
        now = now_usec();
        idle_since = MAX(m->last_input_usec, m->drain_start_usec);
        if (now - idle_since < DRAIN_IDLE_USEC &&
            now - m->drain_start_usec < (uint64_t) m->cfg.shutdown_timeout_ms * 1000u) {
                (void) sd_event_source_set_time_relative(s, DRAIN_CHECK_USEC);
                return 0;
        }
        if (now - idle_since < DRAIN_IDLE_USEC)
                log_warning("Drain: the input was still busy after shutdown_timeout_ms=%" PRIi64
                            ", flushing anyway", m->cfg.shutdown_timeout_ms);
        drain_flush(m);
        log_info("Drained: %" PRIu64 " records received, every pipeline flushed",
                 m->counters.records);
        drain_complete(m, 0);
        return 0;
}

int mediator_drain(Mediator *m, MediatorDrainDone done, void *userdata) {
        int r;

        assert(m);
        if (m->drain == DRAIN_RUNNING)
                return -EBUSY;
        r = sd_event_add_time_relative(m->event, &m->drain_src, CLOCK_MONOTONIC,
                                       DRAIN_CHECK_USEC, 0, on_drain_check, m);
        if (r >= 0)     /* re-armed by on_drain_check() until done */
                r = sd_event_source_set_enabled(m->drain_src, SD_EVENT_ON);
        if (r < 0) {
                m->drain_src = sd_event_source_disable_unref(m->drain_src);
                return r;
        }
        m->drain = DRAIN_RUNNING;
        m->drain_start_usec = now_usec();
        m->drain_done = done;
        m->drain_userdata = userdata;
        log_info("Draining: pulling until the input is idle for %u ms (at most %" PRIi64 " ms)",
                 DRAIN_IDLE_USEC / 1000u, m->cfg.shutdown_timeout_ms);
        publish_state(m);
        return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Mediator *m = userdata;
        log_info("Received %s, draining", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return sd_event_exit(m->event, 0);
}

static int open_input(Mediator *m) {
        int64_t maxmsg = (int64_t) flow_batch_size(FLOW_BATCH_MAX_RECORDS);
        int hwm = (int) m->cfg.input_hwm, fd, r;
        size_t sz = sizeof(fd);

        m->input = zmq_socket(m->zctx, ZMQ_PULL);
        if (!m->input)
                return log_error_errno(-errno, "zmq_socket(PULL) failed: %m");
        (void) zmq_setsockopt(m->input, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        /* No valid batch is larger: a bigger message makes ZeroMQ drop that peer. */
        (void) zmq_setsockopt(m->input, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        if (zmq_bind(m->input, m->cfg.input) < 0)
                return log_error_errno(-errno, "Cannot bind the input %s: %m", m->cfg.input);
        if (zmq_getsockopt(m->input, ZMQ_FD, &fd, &sz) < 0)
                return log_error_errno(-errno, "ZMQ_FD failed: %m");
        r = sd_event_add_io(m->event, &m->input_src, fd, EPOLLIN, on_input, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the input: %m");
        r = sd_event_add_defer(m->event, &m->pump_src, on_pump, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the input pump: %m");
        (void) sd_event_source_set_enabled(m->pump_src, SD_EVENT_OFF);
        return 0;
}

static int open_store(Mediator *m) {
        int r;

        if (m->cfg.store_max_flows > 0) {
                FlowStoreConfig sc = {
                        .max_flows = (uint64_t) m->cfg.store_max_flows,
                        .max_memory_bytes = (uint64_t) m->cfg.store_max_memory_mb << 20,
                };
                r = flow_store_new(&m->store, &sc);
                if (r < 0)
                        return log_error_errno(r, "Failed to allocate the flow store: %m");
        }
        r = rollup_new(&m->rollup, &(RollupConfig) {
                .horizon_min = (uint32_t) m->cfg.rollup_horizon_min,
                .top_k = (uint32_t) m->cfg.rollup_top_k,
                .live_max_keys = (uint32_t) m->cfg.rollup_live_max_keys,
                .seal_after_s = 120,
                .max_exporters = 10000,
        });
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rollups: %m");
        if (m->cfg.query_listen && *m->cfg.query_listen) {
                QueryContext qc = {
                        .pod = m->pod,
                        .store = m->store,
                        .rollup = m->rollup,
                        .limits = {
                                .max_limit = (size_t) m->cfg.query_max_limit,
                                .max_scan = (uint64_t) m->cfg.query_max_scan,
                                .timeout_ms = (uint64_t) m->cfg.query_timeout_ms,
                        },
                };
                r = query_service_new(&m->query, m->zctx, m->cfg.query_listen, &qc);
                if (r < 0)
                        return log_error_errno(r, "Cannot start the query service on %s: %m",
                                               m->cfg.query_listen);
        }
        return 0;
}

int mediator_new(Mediator **ret, MediatorConfig *cfg, const char *config_path,
                 const char *config_text) {
        _cleanup_free_ char *err = NULL;
        Mediator *m;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(-ENOMEM, "Out of memory");
        m->cfg = *cfg;
        memset(cfg, 0, sizeof(*cfg));
        m->started_ms = now_realtime_ms();
        log_set_max_level(log_level_from_string(m->cfg.log_level));
        if (m->cfg.pod_name)
                (void) snprintf(m->pod, sizeof(m->pod), "%s", m->cfg.pod_name);
        else if (gethostname(m->pod, sizeof(m->pod) - 1) < 0)
                (void) snprintf(m->pod, sizeof(m->pod), "mediator");
        m->published_state = MEDIATOR_STARTING;
        set_config_text(m, config_text);
        if (config_path && !(m->config_path = strdup(config_path))) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto fail;
        }
        /* Threads (ZeroMQ's, the query service) inherit this mask: signals come to the loop. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        m->scratch = aligned_alloc(8, flow_batch_size(FLOW_BATCH_MAX_RECORDS));
        m->zctx = zmq_ctx_new();
        if (!m->scratch || !m->zctx) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto fail;
        }
        r = sd_event_new(&m->event);
        if (r < 0) {
                log_error_errno(r, "sd_event_new failed: %m");
                goto fail;
        }
        r = open_store(m);
        if (r < 0)
                goto fail;
        r = build_pipelines(m, &m->cfg, NULL, 0, &m->pipelines, &err);
        if (r < 0) {
                log_error("Cannot start the pipelines: %s", err ? err : strerror(-r));
                goto fail;
        }
        m->n_pipelines = m->cfg.n_pipelines;
        free(m->cfg.pipelines);         /* the configs now live in their pipelines */
        m->cfg.pipelines = NULL;
        m->cfg.n_pipelines = 0;
        connect_sinks(m);
        r = open_input(m);
        if (r < 0)
                goto fail;

        r = sd_event_add_time_relative(m->event, &m->tick_src, CLOCK_MONOTONIC, TICK_USEC, 0,
                                       on_tick, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->tick_src, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_time_relative(
                        m->event, &m->stats_src, CLOCK_MONOTONIC,
                        (uint64_t) MAX(m->cfg.stats_interval_s, 1) * 1000000u, 0,
                        on_stats_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->stats_src, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->term_src, SIGTERM, on_term, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->int_src, SIGINT, on_term, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->hup_src, SIGHUP, on_sighup, m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto fail;
        }
        /* Last: the object on the bus publishes a mediator that is complete. */
        r = mediator_bus_new(&m->bus, m, m->event, m->cfg.bus_address);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the bus connection: %m");
                goto fail;
        }
        {
                FlowStoreStats st = { 0 };
                if (m->store)
                        flow_store_get_stats(m->store, &st);
                log_info("Mediator %s: input %s, %zu pipeline(s), query service %s, flow store "
                         "%" PRIu64 " flows (%" PRIu64 " MiB), bus %s, config version %s",
                         m->pod, m->cfg.input, m->n_pipelines,
                         m->query ? m->cfg.query_listen : "off", st.capacity,
                         st.memory_bytes >> 20, mediator_bus_enabled(m->bus) ? "on" : "off",
                         m->config_version);
        }
        *ret = m;
        return 0;
fail:
        mediator_free(m);
        return r;
}

int mediator_run(Mediator *m) {
        int r, n, total = 0;

        r = sd_event_loop(m->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

        /* Drain: what the input already holds is processed, then everything is flushed. */
        while ((n = input_read(m, PUMP_MAX_MESSAGES)) > 0 && total < DRAIN_MAX_MESSAGES)
                total += n;
        for (size_t i = 0; i < m->n_pipelines; i++) {
                uint64_t dropped;
                pipeline_flush(m->pipelines[i]);
                dropped = pipeline_close_outputs(m->pipelines[i],
                                                 (uint64_t) m->cfg.shutdown_timeout_ms);
                if (dropped > 0)
                        log_warning("Pipeline %s: %" PRIu64 " records could not be delivered "
                                    "within shutdown_timeout_ms", pipeline_name(m->pipelines[i]),
                                    dropped);
        }
        if (m->drain == DRAIN_RUNNING)
                drain_complete(m, 0);   /* flushed and closed above: drained after all */
        write_stats(m);         /* final counters, files completed at close included */
        free_pipelines(m->pipelines, m->n_pipelines, 0);
        m->pipelines = NULL;
        m->n_pipelines = 0;
        log_info("Stopped after draining %d batch(es): %" PRIu64 " records received",
                 total, m->counters.records);
        return r < 0 ? r : 0;
}

Mediator *mediator_free(Mediator *m) {
        int linger = 0;

        if (!m)
                return NULL;
        if (m->drain == DRAIN_RUNNING)
                drain_complete(m, -ECANCELED);
        m->bus = mediator_bus_free(m->bus);
        free_pipelines(m->pipelines, m->n_pipelines, 0);
        query_service_free(m->query);
        sd_event_source_unref(m->input_src);
        sd_event_source_unref(m->pump_src);
        sd_event_source_unref(m->tick_src);
        sd_event_source_unref(m->stats_src);
        sd_event_source_unref(m->term_src);
        sd_event_source_unref(m->int_src);
        sd_event_source_unref(m->hup_src);
        sd_event_source_unref(m->drain_src);
        if (m->input) {
                (void) zmq_setsockopt(m->input, ZMQ_LINGER, &linger, sizeof(linger));
                zmq_close(m->input);
        }
        if (m->zctx)
                zmq_ctx_term(m->zctx);
        sd_event_unref(m->event);
        flow_store_free(m->store);
        rollup_free(m->rollup);
        free(m->scratch);
        free(m->config_path);
        free(m->config_text);
        snaps_free(m->snap, m->n_snap);
        mediator_config_done(&m->cfg);
        free(m);
        return NULL;
}


static void render_counter(MetricsBuf *b, const char *name, const char *help, const char *labels,
                           uint64_t v, bool header) {
        if (header)
                metrics_header(b, name, "counter", help);
        metrics_sample(b, name, labels, v);
}

static void render_gauge(MetricsBuf *b, const char *name, const char *help, uint64_t v) {
        metrics_header(b, name, "gauge", help);
        metrics_sample(b, name, NULL, v);
}

static void render_store_metrics(Mediator *m, MetricsBuf *b) {
        if (m->store) {
                FlowStoreStats st;
                flow_store_get_stats(m->store, &st);
                render_gauge(b, "ipfixd_mediator_store_records", "Flows held by the flow store",
                             st.records);
                render_gauge(b, "ipfixd_mediator_store_capacity", "Flows the flow store can hold",
                             st.capacity);
                render_gauge(b, "ipfixd_mediator_store_memory_bytes",
                             "Memory of the flow store, indexes included", st.memory_bytes);
                render_counter(b, "ipfixd_mediator_store_overwritten_total",
                               "Flows dropped from the store to make room (oldest first)", NULL,
                               st.overwritten, true);
        }
        if (m->rollup) {
                RollupStats rs;
                rollup_get_stats(m->rollup, &rs);
                render_gauge(b, "ipfixd_mediator_rollup_minutes", "Minutes of rollups held",
                             (uint64_t) rs.minutes_open + rs.minutes_sealed);
                render_gauge(b, "ipfixd_mediator_rollup_memory_bytes",
                             "Estimated memory of the rollups", rs.memory_bytes);
                render_counter(b, "ipfixd_mediator_rollup_stale_total",
                               "Records older than the rollup horizon, not rolled up", NULL,
                               rs.stale, true);
                render_counter(b, "ipfixd_mediator_rollup_future_total",
                               "Records ending too far ahead, rolled up into the current minute",
                               NULL, rs.future, true);
                render_counter(b, "ipfixd_mediator_rollup_overflow_total",
                               "Key updates counted only in `other`: a minute's key table was full",
                               NULL, rs.overflow + rs.late_other + rs.nomem, true);
                render_counter(b, "ipfixd_mediator_rollup_exporters_dropped_total",
                               "Records of exporters beyond the exporter table's cap", NULL,
                               rs.exporters_dropped, true);
        }
        if (m->query) {
                QueryStats qs;
                query_service_get_stats(m->query, &qs);
                metrics_header(b, "ipfixd_mediator_query_requests_total", "counter",
                               "Query requests answered, by operation");
                for (int i = 0; i < _QUERY_OP_MAX; i++) {
                        char label[64];
                        (void) snprintf(label, sizeof(label), "op=\"%s\"",
                                        query_op_to_string((QueryOp) i));
                        metrics_sample(b, "ipfixd_mediator_query_requests_total", label,
                                       qs.requests[i]);
                }
                render_counter(b, "ipfixd_mediator_query_errors_total",
                               "Requests answered with an error (malformed, invalid)", NULL,
                               qs.bad_requests, true);
                render_counter(b, "ipfixd_mediator_query_truncated_total",
                               "Answers cut short by the scan or time budget", NULL,
                               qs.truncated, true);
                render_counter(b, "ipfixd_mediator_query_latency_us_total",
                               "Time spent answering requests (microseconds)", NULL,
                               qs.latency_us_total, true);
        }
}

void mediator_render_metrics(Mediator *m, MetricsBuf *b) {
        static const struct {
                const char *name, *help;
                size_t off;
        } mc[] = {
                { "ipfixd_mediator_batches_total", "Flow batches received from collectors",
                  offsetof(MediatorCounters, batches) },
                { "ipfixd_mediator_records_total", "Flow records received from collectors",
                  offsetof(MediatorCounters, records) },
                { "ipfixd_mediator_bad_batches_total", "Malformed flow batches dropped",
                  offsetof(MediatorCounters, bad_batches) },
                { "ipfixd_mediator_unaligned_batches_total",
                  "Batches copied to an aligned buffer before decoding",
                  offsetof(MediatorCounters, unaligned_batches) },
                { "ipfixd_mediator_reloads_total", "Configuration reloads applied",
                  offsetof(MediatorCounters, reloads) },
                { "ipfixd_mediator_reload_failures_total",
                  "Configuration reloads refused (invalid, or an output failed to open)",
                  offsetof(MediatorCounters, reload_failures) },
                { "ipfixd_mediator_signals_dropped_total",
                  "D-Bus signals not sent: over the rate limit",
                  offsetof(MediatorCounters, signals_dropped) },
        };
        static const struct {
                const char *name, *help;
                size_t off;
        } pc[] = {
                { "ipfixd_mediator_pipeline_in_total", "Records offered to the pipeline",
                  offsetof(PipelineStats, in) },
                { "ipfixd_mediator_pipeline_filtered_total", "Records the filter rejected",
                  offsetof(PipelineStats, filtered) },
                { "ipfixd_mediator_pipeline_duplicates_total",
                  "Records dropped as duplicates of another exporter's report",
                  offsetof(PipelineStats, duplicates) },
                { "ipfixd_mediator_pipeline_passed_total",
                  "Records past the filter and de-duplication", offsetof(PipelineStats, passed) },
                { "ipfixd_mediator_pipeline_aggregated_total",
                  "Records merged into aggregates", offsetof(PipelineStats, aggregated) },
                { "ipfixd_mediator_pipeline_out_total", "Records handed to the outputs",
                  offsetof(PipelineStats, out) },
                { "ipfixd_mediator_pipeline_output_errors_total",
                  "Records an output refused, dropped or failed to write",
                  offsetof(PipelineStats, output_errors) },
                { "ipfixd_mediator_pipeline_agg_evicted_early_total",
                  "Aggregates emitted before their window ended: max_keys reached",
                  offsetof(PipelineStats, agg.evicted_early) },
                { "ipfixd_mediator_pipeline_agg_late_total",
                  "Records for an aggregation window already emitted",
                  offsetof(PipelineStats, agg.late) },
                { "ipfixd_mediator_pipeline_dedup_evicted_total",
                  "De-duplication entries evicted early: max_entries reached",
                  offsetof(PipelineStats, dedup.evicted) },
        };
        static const struct {
                const char *name, *help;
                size_t off;
        } oc[] = {
                { "ipfixd_mediator_output_records_total", "Records the output wrote or sent",
                  offsetof(OutputStats, records) },
                { "ipfixd_mediator_output_messages_total", "Messages (or lines) written",
                  offsetof(OutputStats, messages) },
                { "ipfixd_mediator_output_bytes_total", "Octets written or sent",
                  offsetof(OutputStats, bytes) },
                { "ipfixd_mediator_output_dropped_total",
                  "Records dropped: buffer full, peer gone, subscriber too slow",
                  offsetof(OutputStats, dropped) },
                { "ipfixd_mediator_output_errors_total", "Write or send errors",
                  offsetof(OutputStats, errors) },
                { "ipfixd_mediator_output_reconnects_total", "Connections re-established after one was lost",
                  offsetof(OutputStats, reconnects) },
                { "ipfixd_mediator_output_files_total", "Files completed (renamed into place)",
                  offsetof(OutputStats, files) },
        };

        MediatorCounters counters;

        mediator_get_counters(m, &counters);
        for (size_t i = 0; i < ELEMENTSOF(mc); i++)
                render_counter(b, mc[i].name, mc[i].help, NULL,
                               *(const uint64_t *) ((const uint8_t *) &counters + mc[i].off),
                               true);
        for (size_t k = 0; k < ELEMENTSOF(pc); k++)
                for (size_t i = 0; i < m->n_pipelines; i++) {
                        char label[128], esc[96];
                        PipelineStats ps;
                        pipeline_get_stats(m->pipelines[i], &ps);
                        (void) metrics_escape_label(pipeline_name(m->pipelines[i]), esc,
                                                    sizeof(esc));
                        (void) snprintf(label, sizeof(label), "pipeline=\"%s\"", esc);
                        render_counter(b, pc[k].name, pc[k].help, label,
                                       *(const uint64_t *) ((const uint8_t *) &ps + pc[k].off),
                                       i == 0);
                }
        for (size_t k = 0; k < ELEMENTSOF(oc); k++) {
                bool first = true;
                for (size_t i = 0; i < m->n_pipelines; i++)
                        for (size_t j = 0; j < pipeline_n_outputs(m->pipelines[i]); j++) {
                                char label[512], p[96], t[256];
                                OutputStats os;
                                output_get_stats(pipeline_output(m->pipelines[i], j), &os);
                                (void) metrics_escape_label(pipeline_name(m->pipelines[i]), p,
                                                            sizeof(p));
                                (void) metrics_escape_label(os.target ? os.target : "", t,
                                                            sizeof(t));
                                (void) snprintf(label, sizeof(label),
                                                "pipeline=\"%s\",type=\"%s\",target=\"%s\"", p,
                                                os.type, t);
                                render_counter(b, oc[k].name, oc[k].help, label,
                                               *(const uint64_t *) ((const uint8_t *) &os +
                                                                    oc[k].off),
                                               first);
                                first = false;
                        }
        }
        /* 1 while the output can take records (connected, or a file open or ready to
         * open), 0 while connecting, backing off or failed. */
        metrics_header(b, "ipfixd_mediator_output_up", "gauge",
                       "1 while the output is connected or writable, 0 while connecting, "
                       "backing off or failed");
        for (size_t i = 0; i < m->n_pipelines; i++)
                for (size_t j = 0; j < pipeline_n_outputs(m->pipelines[i]); j++) {
                        char label[512], p[96], t[256];
                        OutputStats os;
                        output_get_stats(pipeline_output(m->pipelines[i], j), &os);
                        (void) metrics_escape_label(pipeline_name(m->pipelines[i]), p, sizeof(p));
                        (void) metrics_escape_label(os.target ? os.target : "", t, sizeof(t));
                        (void) snprintf(label, sizeof(label),
                                        "pipeline=\"%s\",type=\"%s\",target=\"%s\"", p, os.type, t);
                        metrics_sample(b, "ipfixd_mediator_output_up", label,
                                       output_state_up(os.state));
                }
        render_gauge(b, "ipfixd_mediator_ready",
                     "1 while the data path runs and the mediator is not draining",
                     mediator_is_ready(m));
        if (mediator_bus_enabled(m->bus))
                render_gauge(b, "ipfixd_mediator_bus_connected",
                             "1 while connected to the pod's D-Bus",
                             mediator_bus_connected(m->bus));
        render_store_metrics(m, b);
}

static json_t *pipeline_to_json(const Pipeline *p) {
        json_t *outputs = json_array(), *obj;
        PipelineStats ps;

        if (!outputs)
                return NULL;
        for (size_t j = 0; j < pipeline_n_outputs(p); j++) {
                OutputStats os;
                json_t *o;

                output_get_stats(pipeline_output(p, j), &os);
                o = json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
                              "type", os.type, "target", os.target ? os.target : "",
                              "state", os.state ? os.state : "idle", "counters",
                              "records", (json_int_t) os.records,
                              "messages", (json_int_t) os.messages,
                              "bytes", (json_int_t) os.bytes,
                              "dropped", (json_int_t) os.dropped,
                              "errors", (json_int_t) os.errors,
                              "reconnects", (json_int_t) os.reconnects,
                              "files", (json_int_t) os.files);
                if (!o || json_array_append_new(outputs, o) < 0) {
                        json_decref(outputs);
                        return NULL;
                }
        }
        pipeline_get_stats(p, &ps);
        obj = json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
                        "name", pipeline_name(p), "counters",
                        "in", (json_int_t) ps.in,
                        "filtered", (json_int_t) ps.filtered,
                        "duplicates", (json_int_t) ps.duplicates,
                        "passed", (json_int_t) ps.passed,
                        "aggregated", (json_int_t) ps.aggregated,
                        "out", (json_int_t) ps.out,
                        "output_errors", (json_int_t) ps.output_errors,
                        "outputs", outputs);     /* "o" steals, also on failure */
        return obj;
}

char *mediator_list_pipelines(Mediator *m) {
        json_t *arr = json_array();
        char *text;

        assert(m);
        if (!arr)
                return NULL;
        for (size_t i = 0; i < m->n_pipelines; i++) {
                json_t *p = pipeline_to_json(m->pipelines[i]);
                if (!p || json_array_append_new(arr, p) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        return text;
}
