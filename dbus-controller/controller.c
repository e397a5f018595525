/* SPDX-License-Identifier: MIT */
/*
 * controller.c - the pod's coordinator: its dbus-daemon (started and restarted here unless
 * bus_address joins an existing bus), its client connection (EvBus, org.ipfixd.Controller),
 * the cached view of both components and the reload/drain operations.
 *
 * Invariants: every bus call is asynchronous with a timeout, and every pending call's slot is
 * held here so that a component leaving the bus (NameOwnerChanged), the connection dropping
 * or controller_free() cancels it; a poll of one kind is never issued twice at once. A
 * component's cache is cleared when it leaves the bus, so nothing stale is served as
 * current. At most one operation (reload or drain) runs; its @done is only ever called from
 * a defer source, after the operation is detached from the controller.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "controller.h"
#include "ev-bus.h"
#include "log.h"
#include "macro.h"
#include "pod.h"

#define DBUS_SERVICE "org.freedesktop.DBus"
#define DBUS_PATH "/org/freedesktop/DBus"
#define PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"
#define METRICS_TEXT_MAX (16u << 20)

typedef enum PollKind {
        POLL_PROPERTIES,
        POLL_EXPORTERS,
        POLL_TEMPLATES,
        POLL_PIPELINES,
        POLL_METRICS,
        _POLL_MAX,
} PollKind;

static const struct {
        const char *member;     /* NULL: org.freedesktop.DBus.Properties.GetAll */
        const char *key;        /* in the pod document's "refreshed" */
} poll_info[_POLL_MAX] = {
        [POLL_PROPERTIES] = { NULL, "properties" },
        [POLL_EXPORTERS] = { "ListExporters", "exporters" },
        [POLL_TEMPLATES] = { "ListTemplates", "templates" },
        [POLL_PIPELINES] = { "ListPipelines", "pipelines" },
        [POLL_METRICS] = { "GetMetrics", "metrics" },
};

static const struct {
        const char *name, *bus_name, *path, *interface;
} component_info[_CONTROLLER_COMPONENT_MAX] = {
        [CONTROLLER_COLLECTOR] = { "collector", BUS_COLLECTOR_NAME, BUS_COLLECTOR_PATH,
                                   BUS_COLLECTOR_INTERFACE },
        [CONTROLLER_MEDIATOR] = { "mediator", BUS_MEDIATOR_NAME, BUS_MEDIATOR_PATH,
                                  BUS_MEDIATOR_INTERFACE },
};

/* Field names of the struct arrays in bus-names.h, in signature order. */
static const char *const listener_fields[] = { "transport", "address", "port", "proxy_protocol",
                                               "connections", "records", NULL };
static const char *const exporter_fields[] = { "address", "odid", "transport", "records",
                                               "bytes", "last_seen_ms", "templates", NULL };
static const char *const template_fields[] = { "exporter", "odid", "template_id", "fields",
                                               "scope_fields", NULL };

typedef struct Component Component;

typedef struct Poll {
        Component *comp;
        PollKind kind;
        sd_bus_slot *slot;              /* the call in flight */
        json_t *value;                  /* last answer (METRICS: a JSON string), or NULL */
        uint64_t refreshed_ms;          /* wall clock of the last answer */
        uint64_t refreshed_usec;        /* monotonic, for freshness */
} Poll;

struct Component {
        Controller *c;
        ControllerComponent id;
        sd_bus_slot *owner_match;       /* NameOwnerChanged, arg0 = our name */
        sd_bus_slot *props_match;       /* PropertiesChanged of its object */
        sd_bus_slot *owner_call;        /* GetNameOwner */
        bool on_bus;
        char *owner;                    /* unique name while on the bus */
        Poll polls[_POLL_MAX];
        uint64_t n_polls, n_poll_errors;
};

typedef enum OpKind {
        OP_RELOAD,
        OP_DRAIN,
} OpKind;

typedef struct Operation Operation;

typedef struct OpCall {
        Operation *op;
        ControllerComponent comp;
        sd_bus_slot *slot;
} OpCall;

struct Operation {
        Controller *c;
        OpKind kind;
        ControllerDone done;
        void *userdata;
        sd_event_source *defer;         /* calls @done; enabled once finished */
        bool finished;
        int status;
        json_t *result;

        OpCall calls[_CONTROLLER_COMPONENT_MAX];
        bool target[_CONTROLLER_COMPONENT_MAX];
        char *text[_CONTROLLER_COMPONENT_MAX];          /* reload: NULL re-reads the file */
        json_t *error[_CONTROLLER_COMPONENT_MAX];       /* {"code","message"} per component */
        int error_status[_CONTROLLER_COMPONENT_MAX];
        json_t *changes[_CONTROLLER_COMPONENT_MAX];
        bool validating;
        unsigned pending;
        unsigned step;                                  /* drain: 2 per component */
};

struct Controller {
        sd_event *event;
        const ControllerConfig *cfg;
        char *pod_name;
        char *bus_address;

        /* the dbus-daemon we run (cfg->bus_address unset) */
        PodChild *bus_daemon;
        char *bus_config_path;
        sd_event_source *address_source;
        int address_fd;
        char address_buf[512];
        size_t address_len;
        char *daemon_address;           /* as printed (with its guid) */
        bool daemon_ready;

        EvBus *bus;
        sd_event_source *poll_timer;
        Component components[_CONTROLLER_COMPONENT_MAX];
        Operation *op;
        bool drained;
        bool stopping;
        char reason[192];

        uint64_t reloads, reload_failures, drains;
        ControllerMetricsFunc extra_metrics;
        void *extra_userdata;

        void (*stop_done)(void *userdata);
        void *stop_userdata;
        sd_event_source *stop_defer;
};

static const char *strna(const char *s) {
        return s ? s : "n/a";
}

static sd_bus *bus_get(Controller *c) {
        return c->bus ? ev_bus_get(c->bus) : NULL;
}

static bool bus_connected(Controller *c) {
        return c->bus && ev_bus_connected(c->bus);
}

static int call_async(sd_bus *bus, sd_bus_slot **ret_slot, const char *dest, const char *path,
                      const char *iface, const char *member, uint64_t timeout_ms,
                      sd_bus_message_handler_t cb, void *userdata, const char *sig, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, dest, path, iface, member);
        if (r < 0)
                return r;
        if (sig) {
                va_start(ap, sig);
                r = sd_bus_message_appendv(m, sig, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call_async(bus, ret_slot, m, cb, userdata, timeout_ms * 1000);
}

/* ---- D-Bus values to JSON ---- */

static json_t *zip_fields(json_t *arr /* consumed */, const char *const *names) {
        size_t n_names = 0, i;
        json_t *out, *el;

        while (names[n_names])
                n_names++;
        if (!json_is_array(arr))
                return arr;
        out = json_array();
        if (!out) {
                json_decref(arr);
                return NULL;
        }
        json_array_foreach(arr, i, el) {
                json_t *o;

                if (!json_is_array(el) || json_array_size(el) != n_names) {
                        (void) json_array_append(out, el);
                        continue;
                }
                o = json_object();
                for (size_t j = 0; o && j < n_names; j++)
                        (void) json_object_set(o, names[j], json_array_get(el, j));
                (void) json_array_append_new(out, o);
        }
        json_decref(arr);
        return out;
}

/* Reads one complete value at the current position: basic types as JSON scalars, arrays and
 * structs as arrays, dicts as objects, variants as their content. */
static int read_value(sd_bus_message *m, unsigned depth, json_t **ret) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        const char *contents;
        char type;
        int r;

        if (depth > 32)
                return -EBADMSG;
        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;

        switch (type) {
        case SD_BUS_TYPE_BOOLEAN: {
                int b;
                r = sd_bus_message_read_basic(m, type, &b);
                v = json_boolean(b);
                break;
        }
#define READ_INT(T, ctype)                                              \
        case T: {                                                       \
                ctype x;                                                \
                r = sd_bus_message_read_basic(m, type, &x);             \
                v = json_integer((json_int_t) x);                       \
                break;                                                  \
        }
                READ_INT(SD_BUS_TYPE_BYTE, uint8_t)
                READ_INT(SD_BUS_TYPE_INT16, int16_t)
                READ_INT(SD_BUS_TYPE_UINT16, uint16_t)
                READ_INT(SD_BUS_TYPE_INT32, int32_t)
                READ_INT(SD_BUS_TYPE_UINT32, uint32_t)
                READ_INT(SD_BUS_TYPE_INT64, int64_t)
#undef READ_INT
        case SD_BUS_TYPE_UINT64: {
                uint64_t x;
                r = sd_bus_message_read_basic(m, type, &x);
                v = json_integer((json_int_t) MIN(x, (uint64_t) INT64_MAX));
                break;
        }
        case SD_BUS_TYPE_DOUBLE: {
                double x;
                r = sd_bus_message_read_basic(m, type, &x);
                v = json_real(x);
                break;
        }
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE: {
                const char *s;
                r = sd_bus_message_read_basic(m, type, &s);
                v = r >= 0 ? json_string(s) : NULL;
                break;
        }
        case SD_BUS_TYPE_UNIX_FD: {
                int fd;
                r = sd_bus_message_read_basic(m, type, &fd);
                v = json_null();
                break;
        }
        case SD_BUS_TYPE_VARIANT: {
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                r = read_value(m, depth + 1, &v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                break;
        }
        case SD_BUS_TYPE_ARRAY:
        case SD_BUS_TYPE_STRUCT: {
                bool dict = type == SD_BUS_TYPE_ARRAY && contents[0] == '{';
                char entry[256];

                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                v = dict ? json_object() : json_array();
                if (!v)
                        return -ENOMEM;
                if (dict) {
                        size_t l = strlen(contents);
                        if (l < 2 || l - 2 >= sizeof(entry))
                                return -EBADMSG;
                        memcpy(entry, contents + 1, l - 2);
                        entry[l - 2] = '\0';
                }
                for (;;) {
                        _cleanup_(json_decrefp) json_t *key = NULL, *el = NULL;

                        if (dict) {
                                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY,
                                                                   entry);
                                if (r <= 0)
                                        break;
                                r = read_value(m, depth + 1, &key);
                                if (r < 0)
                                        return r;
                        } else {
                                r = sd_bus_message_peek_type(m, NULL, NULL);
                                if (r <= 0)
                                        break;
                        }
                        r = read_value(m, depth + 1, &el);
                        if (r < 0)
                                return r;
                        if (dict) {
                                _cleanup_free_ char *k = json_is_string(key)
                                        ? strdup(json_string_value(key))
                                        : json_dumps(key, JSON_ENCODE_ANY | JSON_COMPACT);
                                if (!k)
                                        return -ENOMEM;
                                if (json_object_set(v, k, el) < 0)
                                        return -ENOMEM;
                                r = sd_bus_message_exit_container(m);
                                if (r < 0)
                                        return r;
                        } else if (json_array_append(v, el) < 0)
                                return -ENOMEM;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                break;
        }
        default:
                return -EBADMSG;
        }
        if (r < 0)
                return r;
        if (!v)
                return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}

/* a{sv} of the component interface: Ready/State/ConfigVersion/StartedMs/Listeners by name,
 * every other "t" property as a counter. */
static int parse_properties(sd_bus_message *m, json_t **ret) {
        _cleanup_(json_decrefp) json_t *o = json_object(), *counters = json_object();
        int r;

        if (!o || !counters)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                _cleanup_(json_decrefp) json_t *v = NULL;
                const char *name, *contents;
                json_t *target = o;
                const char *key;

                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &name);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0)
                        return r;
                r = read_value(m, 0, &v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;

                if (strcmp(name, "Ready") == 0)
                        key = "ready";
                else if (strcmp(name, "State") == 0)
                        key = "state";
                else if (strcmp(name, "ConfigVersion") == 0)
                        key = "config_version";
                else if (strcmp(name, "StartedMs") == 0)
                        key = "started_ms";
                else if (strcmp(name, "Listeners") == 0) {
                        key = "listeners";
                        v = zip_fields(TAKE_PTR(v), listener_fields);
                } else if (contents && strcmp(contents, "t") == 0) {
                        key = name;
                        target = counters;
                } else
                        continue;       /* not part of the contract */
                if (!v || json_object_set(target, key, v) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (json_object_set(o, "counters", counters) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int parse_reply(PollKind kind, sd_bus_message *m, json_t **ret) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        const char *s;
        int r;

        switch (kind) {
        case POLL_PROPERTIES:
                return parse_properties(m, ret);
        case POLL_EXPORTERS:
        case POLL_TEMPLATES:
                r = read_value(m, 0, &v);
                if (r < 0)
                        return r;
                if (!json_is_array(v))
                        return -EBADMSG;
                *ret = zip_fields(TAKE_PTR(v), kind == POLL_EXPORTERS ? exporter_fields
                                                                      : template_fields);
                return *ret ? 0 : -ENOMEM;
        case POLL_PIPELINES:
                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &s);
                if (r < 0)
                        return r;
                v = json_loads(s, 0, NULL);
                if (!json_is_array(v))
                        return -EBADMSG;
                *ret = TAKE_PTR(v);
                return 0;
        case POLL_METRICS:
                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &s);
                if (r < 0)
                        return r;
                if (strlen(s) > METRICS_TEXT_MAX)
                        return -EFBIG;
                *ret = json_string(s);
                return *ret ? 0 : -EBADMSG;
        default:
                return -EINVAL;
        }
}

/* ---- the cached view ---- */

static bool poll_applies(const Component *comp, PollKind k) {
        if (k == POLL_EXPORTERS || k == POLL_TEMPLATES)
                return comp->id == CONTROLLER_COLLECTOR;
        if (k == POLL_PIPELINES)
                return comp->id == CONTROLLER_MEDIATOR;
        return true;
}

static void poll_store(Poll *p, json_t *v /* consumed */) {
        json_decref(p->value);
        p->value = v;
        p->refreshed_ms = now_realtime_ms();
        p->refreshed_usec = now_usec();
}

static int on_poll_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Poll *p = userdata;
        Component *comp = p->comp;
        const char *name = component_info[comp->id].name;
        const char *what = poll_info[p->kind].member ? poll_info[p->kind].member : "GetAll";
        json_t *v = NULL;
        char key[64];
        int r;

        p->slot = sd_bus_slot_unref(p->slot);
        (void) snprintf(key, sizeof(key), "poll-%s-%s", name, what);
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                comp->n_poll_errors++;
                log_ratelimited(LOG_WARNING, key, "%s.%s() failed, ignoring: %s component=%s",
                                component_info[comp->id].interface, what,
                                e && e->message ? e->message : "error", name);
                return 0;
        }
        r = parse_reply(p->kind, m, &v);
        if (r < 0) {
                comp->n_poll_errors++;
                errno = -r;
                log_ratelimited(LOG_WARNING, key, "Unexpected answer to %s(), ignoring: %m "
                                "component=%s", what, name);
                return 0;
        }
        poll_store(p, v);
        return 0;
}

static void poll_issue(Component *comp, PollKind k) {
        Controller *c = comp->c;
        Poll *p = &comp->polls[k];
        sd_bus *bus = bus_get(c);
        int r;

        if (!bus || !comp->on_bus || p->slot || !poll_applies(comp, k))
                return;
        comp->n_polls++;
        if (k == POLL_PROPERTIES)
                r = call_async(bus, &p->slot, component_info[comp->id].bus_name,
                               component_info[comp->id].path, PROPERTIES_INTERFACE, "GetAll",
                               (uint64_t) c->cfg->call_timeout_ms, on_poll_reply, p, "s",
                               component_info[comp->id].interface);
        else
                r = call_async(bus, &p->slot, component_info[comp->id].bus_name,
                               component_info[comp->id].path, component_info[comp->id].interface,
                               poll_info[k].member, (uint64_t) c->cfg->call_timeout_ms,
                               on_poll_reply, p, NULL);
        if (r < 0) {
                comp->n_poll_errors++;
                log_debug_errno(r, "Failed to call %s: %m", poll_info[k].key);
        }
}

static void component_poll(Component *comp) {
        for (PollKind k = 0; k < _POLL_MAX; k++)
                poll_issue(comp, k);
}

/* Right after a change (reload): answers to calls already in flight may predate it. */
static void component_refresh(Component *comp) {
        for (PollKind k = 0; k < _POLL_MAX; k++)
                comp->polls[k].slot = sd_bus_slot_unref(comp->polls[k].slot);
        component_poll(comp);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Controller *c = userdata;

        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                component_poll(&c->components[i]);
        (void) sd_event_source_set_time_relative(s, (uint64_t) c->cfg->poll_interval_ms * 1000);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void component_clear(Component *comp) {
        for (PollKind k = 0; k < _POLL_MAX; k++) {
                Poll *p = &comp->polls[k];
                p->slot = sd_bus_slot_unref(p->slot);
                json_decref(p->value);
                p->value = NULL;
                p->refreshed_ms = p->refreshed_usec = 0;
        }
}

static void component_vanished(Component *comp, bool log) {
        if (!comp->on_bus)
                return;
        if (log)
                log_warning("Component left the bus component=%s owner=%s",
                            component_info[comp->id].name, comp->owner ? comp->owner : "?");
        comp->on_bus = false;
        free(comp->owner);
        comp->owner = NULL;
        component_clear(comp);
}

static void component_appeared(Component *comp, const char *owner) {
        if (comp->on_bus && comp->owner && strcmp(comp->owner, owner) == 0)
                return;
        if (comp->on_bus)
                component_vanished(comp, true);
        comp->owner = strdup(owner);
        comp->on_bus = true;
        log_info("Component on the bus component=%s owner=%s", component_info[comp->id].name,
                 owner);
        component_poll(comp);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Component *comp = userdata;
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || strcmp(name, component_info[comp->id].bus_name) != 0)
                return 0;
        if (*new_owner)
                component_appeared(comp, new_owner);
        else
                component_vanished(comp, true);
        return 0;
}

static int on_name_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Component *comp = userdata;
        const char *owner;

        comp->owner_call = sd_bus_slot_unref(comp->owner_call);
        if (sd_bus_message_is_method_error(m, NULL)) {
                if (!sd_bus_message_is_method_error(m, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        log_warning("GetNameOwner(%s) failed, ignoring: %s",
                                    component_info[comp->id].bus_name,
                                    strna(sd_bus_message_get_error(m)->message));
                else
                        log_info("Component not on the bus yet component=%s",
                                 component_info[comp->id].name);
                return 0;
        }
        if (sd_bus_message_read(m, "s", &owner) >= 0)
                component_appeared(comp, owner);
        return 0;
}

/* The match is in place: ask who owns the name now; later changes arrive as signals. */
static int on_owner_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Component *comp = userdata;
        sd_bus *bus = bus_get(comp->c);
        int r;

        if (sd_bus_message_is_method_error(m, NULL))
                log_warning("Failed to watch %s, polling only: %s",
                            component_info[comp->id].bus_name,
                            strna(sd_bus_message_get_error(m)->message));
        if (!bus)
                return 0;
        comp->owner_call = sd_bus_slot_unref(comp->owner_call);
        r = call_async(bus, &comp->owner_call, DBUS_SERVICE, DBUS_PATH, DBUS_SERVICE,
                       "GetNameOwner", (uint64_t) comp->c->cfg->call_timeout_ms, on_name_owner,
                       comp, "s", component_info[comp->id].bus_name);
        if (r < 0)
                log_warning_errno(r, "Failed to ask for the owner of %s: %m",
                                  component_info[comp->id].bus_name);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Component *comp = userdata;
        Poll *p = &comp->polls[POLL_PROPERTIES];
        _cleanup_(json_decrefp) json_t *changed = NULL;
        const char *iface, *key;
        json_t *v;

        if (sd_bus_message_read(m, "s", &iface) < 0 ||
            strcmp(iface, component_info[comp->id].interface) != 0)
                return 0;
        if (parse_properties(m, &changed) < 0 || !p->value)
                return 0;
        /* Only what changed is in the signal: merge, keep the refresh time of the last GetAll. */
        json_object_foreach(changed, key, v) {
                if (strcmp(key, "counters") == 0)
                        (void) json_object_update(json_object_get(p->value, "counters"), v);
                else
                        (void) json_object_set(p->value, key, v);
        }
        return 0;
}

static void bus_drop_slots(Controller *c) {
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                Component *comp = &c->components[i];
                comp->owner_match = sd_bus_slot_unref(comp->owner_match);
                comp->props_match = sd_bus_slot_unref(comp->props_match);
                comp->owner_call = sd_bus_slot_unref(comp->owner_call);
                component_vanished(comp, false);
                component_clear(comp);
        }
}

static int on_bus_connected(sd_bus *bus, void *userdata) {
        Controller *c = userdata;
        char match[512];
        int r;

        log_info("Connected to the pod bus address=%s", c->bus_address);
        bus_drop_slots(c);
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                Component *comp = &c->components[i];

                (void) snprintf(match, sizeof(match),
                                "type='signal',sender='" DBUS_SERVICE "',path='" DBUS_PATH
                                "',interface='" DBUS_SERVICE "',member='NameOwnerChanged',"
                                "arg0='%s'",
                                component_info[i].bus_name);
                r = sd_bus_add_match_async(bus, &comp->owner_match, match, on_name_owner_changed,
                                           on_owner_match_installed, comp);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch %s: %m",
                                               component_info[i].bus_name);
                (void) snprintf(match, sizeof(match),
                                "type='signal',sender='%s',path='%s',interface='"
                                PROPERTIES_INTERFACE "',member='PropertiesChanged',arg0='%s'",
                                component_info[i].bus_name, component_info[i].path,
                                component_info[i].interface);
                r = sd_bus_add_match_async(bus, &comp->props_match, match, on_properties_changed,
                                           NULL, comp);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch %s: %m",
                                               component_info[i].bus_name);
        }
        return 0;
}

static void op_abort(Operation *op, int status, const char *code, const char *message);

static void on_bus_disconnected(void *userdata) {
        Controller *c = userdata;

        log_warning("Lost the pod bus, reconnecting address=%s", c->bus_address);
        bus_drop_slots(c);
        if (c->op)
                op_abort(c->op, 503, "unavailable", "bus: connection lost");
}

static int bus_connect(Controller *c) {
        return ev_bus_new(&c->bus, c->event,
                          &(EvBusConfig) {
                                  .address = c->bus_address,
                                  .name = BUS_CONTROLLER_NAME,
                                  .retry_min_ms = 100,
                                  .retry_max_ms = 2000,
                                  .on_connected = on_bus_connected,
                                  .on_disconnected = on_bus_disconnected,
                                  .userdata = c,
                          });
}

/* ---- readiness, the pod document, metrics ---- */

static bool component_fresh(Controller *c, const Component *comp) {
        const Poll *p = &comp->polls[POLL_PROPERTIES];

        return p->value &&
               now_usec() - p->refreshed_usec < 3 * (uint64_t) c->cfg->poll_interval_ms * 1000;
}

static bool component_ready(const Component *comp) {
        const json_t *props = comp->polls[POLL_PROPERTIES].value;

        return comp->on_bus && props && json_is_true(json_object_get(props, "ready"));
}

bool controller_readiness(Controller *c, const char **ret_reason) {
        const char *reason = NULL;

        assert(c);
        if (c->stopping)
                reason = "controller: stopping";
        else if (c->op && c->op->kind == OP_DRAIN)
                reason = "pod: draining";
        else if (c->drained)
                reason = "pod: drained";
        else if (!bus_connected(c))
                reason = c->bus ? "bus: not connected" : "bus: starting";
        for (unsigned i = 0; !reason && i < _CONTROLLER_COMPONENT_MAX; i++) {
                const Component *comp = &c->components[i];
                const char *name = component_info[i].name;
                const json_t *state;

                if (!comp->on_bus)
                        (void) snprintf(c->reason, sizeof(c->reason), "%s: not on the bus", name);
                else if (!comp->polls[POLL_PROPERTIES].value)
                        (void) snprintf(c->reason, sizeof(c->reason), "%s: no status yet", name);
                else if (!component_fresh(c, comp))
                        (void) snprintf(c->reason, sizeof(c->reason), "%s: status is stale",
                                        name);
                else if (!component_ready(comp)) {
                        state = json_object_get(comp->polls[POLL_PROPERTIES].value, "state");
                        (void) snprintf(c->reason, sizeof(c->reason), "%s: %s", name,
                                        json_is_string(state) ? json_string_value(state)
                                                              : "not ready");
                } else
                        continue;
                reason = c->reason;
        }
        if (ret_reason)
                *ret_reason = reason;
        return !reason;
}

static json_t *copy_or_null(const json_t *v) {
        return v ? json_deep_copy(v) : json_null();
}

static json_t *component_json(Controller *c, const Component *comp) {
        const json_t *props = comp->polls[POLL_PROPERTIES].value;
        json_t *o, *refreshed;

        o = json_object();
        refreshed = json_object();
        if (!o || !refreshed) {
                json_decref(o);
                json_decref(refreshed);
                return NULL;
        }
        (void) json_object_set_new(o, "on_bus", json_boolean(comp->on_bus));
        (void) json_object_set_new(o, "owner",
                                   comp->owner ? json_string(comp->owner) : json_null());
        (void) json_object_set_new(o, "ready", json_boolean(component_ready(comp)));
        (void) json_object_set_new(o, "fresh", json_boolean(component_fresh(c, comp)));
        if (!comp->on_bus)
                (void) json_object_set_new(o, "state", json_string("absent"));
        else
                (void) json_object_set_new(o, "state",
                                           copy_or_null(json_object_get(props, "state")));
        (void) json_object_set_new(o, "config_version",
                                   copy_or_null(json_object_get(props, "config_version")));
        (void) json_object_set_new(o, "started_ms",
                                   copy_or_null(json_object_get(props, "started_ms")));
        (void) json_object_set_new(o, "counters",
                                   props && json_object_get(props, "counters")
                                           ? json_deep_copy(json_object_get(props, "counters"))
                                           : json_object());
        if (comp->id == CONTROLLER_COLLECTOR) {
                const json_t *l = json_object_get(props, "listeners");
                (void) json_object_set_new(o, "listeners", l ? json_deep_copy(l) : json_array());
        }
        for (PollKind k = POLL_EXPORTERS; k <= POLL_PIPELINES; k++) {
                const Poll *p = &comp->polls[k];
                if (poll_applies(comp, k))
                        (void) json_object_set_new(o, poll_info[k].key,
                                                   p->value ? json_deep_copy(p->value)
                                                            : json_array());
        }
        (void) json_object_set_new(o, "refreshed_ms",
                                   props ? json_integer((json_int_t) comp->polls[POLL_PROPERTIES]
                                                                .refreshed_ms)
                                         : json_null());
        for (PollKind k = 0; k < _POLL_MAX; k++) {
                const Poll *p = &comp->polls[k];
                if (poll_applies(comp, k))
                        (void) json_object_set_new(refreshed, poll_info[k].key,
                                                   p->value ? json_integer((json_int_t)
                                                                                   p->refreshed_ms)
                                                            : json_null());
        }
        (void) json_object_set_new(o, "refreshed", refreshed);
        (void) json_object_set_new(o, "polls", json_integer((json_int_t) comp->n_polls));
        (void) json_object_set_new(o, "poll_errors",
                                   json_integer((json_int_t) comp->n_poll_errors));
        return o;
}

json_t *controller_pod_json(Controller *c) {
        _cleanup_(json_decrefp) json_t *o = NULL, *comps = NULL;
        const char *reason = NULL;
        bool ready;

        assert(c);
        ready = controller_readiness(c, &reason);
        o = json_object();
        comps = json_object();
        if (!o || !comps)
                return NULL;
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                json_t *v = component_json(c, &c->components[i]);
                if (!v || json_object_set_new(comps, component_info[i].name, v) < 0)
                        return NULL;
        }
        if (json_object_set_new(o, "pod", json_string(c->pod_name)) < 0 ||
            json_object_set_new(o, "ready", json_boolean(ready)) < 0 ||
            json_object_set_new(o, "reason", reason ? json_string(reason) : json_null()) < 0 ||
            json_object_set_new(o, "bus", json_string(c->bus_address)) < 0 ||
            json_object_set_new(o, "bus_connected", json_boolean(bus_connected(c))) < 0 ||
            json_object_set_new(o, "operation",
                                c->op ? json_string(c->op->kind == OP_RELOAD ? "reload" : "drain")
                                      : json_null()) < 0 ||
            json_object_set_new(o, "drained", json_boolean(c->drained)) < 0 ||
            json_object_set(o, "components", comps) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static void append_text(MetricsBuf *b, const char *s, size_t n) {
        if (b->failed || n == 0)
                return;
        if (b->cap - b->len < n + 2) {
                size_t ncap = MAX(b->cap * 2, b->len + n + 4096);
                char *d = realloc(b->data, ncap);
                if (!d) {
                        b->failed = true;
                        return;
                }
                b->data = d;
                b->cap = ncap;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        if (b->data[b->len - 1] != '\n')
                b->data[b->len++] = '\n';
        b->data[b->len] = '\0';
}

void controller_render_metrics(Controller *c, MetricsBuf *b) {
        static const struct {
                const char *name, *type, *help;
        } per_component[] = {
                { "ipfixd_controller_component_on_bus", "gauge",
                  "1 while the component owns its name on the pod bus" },
                { "ipfixd_controller_component_ready", "gauge",
                  "1 while the component reports Ready (last poll)" },
                { "ipfixd_controller_polls_total", "counter",
                  "status, list and metrics calls made to the component" },
                { "ipfixd_controller_poll_errors_total", "counter",
                  "of those, calls that failed or answered unexpectedly" },
        };
        char labels[64];

        assert(c);
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                const json_t *text = c->components[i].polls[POLL_METRICS].value;
                if (c->components[i].on_bus && json_is_string(text))
                        append_text(b, json_string_value(text), json_string_length(text));
        }

        metrics_header(b, "ipfixd_controller_up", "gauge", "1 while the controller runs");
        metrics_sample(b, "ipfixd_controller_up", NULL, 1);
        metrics_header(b, "ipfixd_controller_bus_connected", "gauge",
                       "1 while the controller is connected to the pod bus");
        metrics_sample(b, "ipfixd_controller_bus_connected", NULL, bus_connected(c));
        metrics_header(b, "ipfixd_controller_ready", "gauge", "1 while /readyz answers ready");
        metrics_sample(b, "ipfixd_controller_ready", NULL, controller_readiness(c, NULL));
        for (unsigned m = 0; m < ELEMENTSOF(per_component); m++) {
                metrics_header(b, per_component[m].name, per_component[m].type,
                               per_component[m].help);
                for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                        const Component *comp = &c->components[i];
                        uint64_t v = m == 0 ? comp->on_bus
                                   : m == 1 ? component_ready(comp)
                                   : m == 2 ? comp->n_polls
                                            : comp->n_poll_errors;
                        (void) snprintf(labels, sizeof(labels), "component=\"%s\"",
                                        component_info[i].name);
                        metrics_sample(b, per_component[m].name, labels, v);
                }
        }
        metrics_header(b, "ipfixd_controller_reloads_total", "counter",
                       "reloads that completed on every component asked");
        metrics_sample(b, "ipfixd_controller_reloads_total", NULL, c->reloads);
        metrics_header(b, "ipfixd_controller_reload_failures_total", "counter",
                       "reloads refused or failed");
        metrics_sample(b, "ipfixd_controller_reload_failures_total", NULL, c->reload_failures);
        metrics_header(b, "ipfixd_controller_drains_total", "counter", "drains started");
        metrics_sample(b, "ipfixd_controller_drains_total", NULL, c->drains);
        if (c->bus_daemon) {
                metrics_header(b, "ipfixd_controller_bus_daemon_restarts_total", "counter",
                               "restarts of the pod's dbus-daemon");
                metrics_sample(b, "ipfixd_controller_bus_daemon_restarts_total", NULL,
                               pod_child_restarts(c->bus_daemon));
        }
        if (c->extra_metrics)
                c->extra_metrics(c->extra_userdata, b);
}

void controller_set_extra_metrics(Controller *c, ControllerMetricsFunc f, void *userdata) {
        c->extra_metrics = f;
        c->extra_userdata = userdata;
}

const char *controller_pod_name(Controller *c) {
        return c->pod_name;
}

const char *controller_bus_address(Controller *c) {
        return c->bus_address;
}

/* ---- operations ---- */

static json_t *error_json(const char *code, const char *fmt, ...) _printf_(2, 3);
static json_t *error_json(const char *code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return NULL;
        return json_pack("{s:s, s:s}", "code", code, "message", msg);
}

/* An error reply of @comp as (status, {"code", "message"}). */
static int error_from_reply(ControllerComponent comp, sd_bus_message *m, json_t **ret) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *name = component_info[comp].name;
        const char *msg = e && e->message ? e->message : (e && e->name ? e->name : "error");
        const char *code;
        int status;

        if (sd_bus_error_has_name(e, BUS_ERROR_INVALID_CONFIG)) {
                status = 400;
                code = "invalid_config";
        } else if (sd_bus_error_has_name(e, BUS_ERROR_BUSY)) {
                status = 409;
                code = "busy";
        } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                   sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                   (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) &&
                    (strstr(msg, "disconnected") || strstr(msg, "terminated")))) {
                status = 503;
                code = "unavailable";
        } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                   sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT)) {
                status = 504;
                code = "timeout";
        } else {
                status = 502;
                code = "component_error";
        }
        *ret = error_json(code, "%s: %s", name, msg);
        return status;
}

static void op_cancel_calls(Operation *op) {
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                op->calls[i].slot = sd_bus_slot_unref(op->calls[i].slot);
        op->pending = 0;
}

static Operation *op_free(Operation *op) {
        if (!op)
                return NULL;
        op_cancel_calls(op);
        sd_event_source_unref(op->defer);
        json_decref(op->result);
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                free(op->text[i]);
                json_decref(op->error[i]);
                json_decref(op->changes[i]);
        }
        free(op);
        return NULL;
}

static int on_op_defer(sd_event_source *s, void *userdata) {
        Operation *op = userdata;
        Controller *c = op->c;

        if (c->op == op)
                c->op = NULL;   /* @done may start the next operation */
        op->done(op->userdata, op->status, op->result);
        op_free(op);
        return 0;
}

static void op_finish(Operation *op, int status, json_t *result /* consumed */) {
        json_t *old = op->result;       /* @result may be it, with a reference of its own */

        if (op->finished) {
                json_decref(result);
                return;
        }
        op_cancel_calls(op);
        op->finished = true;
        op->status = status;
        op->result = result ? result : json_object();
        json_decref(old);
        if (op->kind == OP_DRAIN)
                op->c->drained = true;
        (void) sd_event_source_set_enabled(op->defer, SD_EVENT_ONESHOT);
}

static void op_fail(Operation *op, int status, json_t *error /* consumed */) {
        json_t *o = json_object();

        if (o && error)
                (void) json_object_set_new(o, "error", error);
        else
                json_decref(error);
        op_finish(op, status, o);
}

static void op_abort(Operation *op, int status, const char *code, const char *message) {
        json_t *result;

        if (op->finished)
                return;
        result = op->result ? json_incref(op->result) : json_object();
        if (result)
                (void) json_object_set_new(result, "error", error_json(code, "%s", message));
        if (op->kind == OP_RELOAD)
                op->c->reload_failures++;
        op_finish(op, status, result);
}

static int op_new(Controller *c, OpKind kind, ControllerDone done, void *userdata,
                  Operation **ret) {
        Operation *op;
        int r;

        assert(done);
        if (c->op)
                return -EBUSY;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->c = c;
        op->kind = kind;
        op->done = done;
        op->userdata = userdata;
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                op->calls[i] = (OpCall) { .op = op, .comp = i };
        r = sd_event_add_defer(c->event, &op->defer, on_op_defer, op);
        if (r >= 0)
                r = sd_event_source_set_enabled(op->defer, SD_EVENT_OFF);
        if (r < 0) {
                op_free(op);
                return r;
        }
        c->op = op;
        *ret = op;
        return 0;
}

static int component_by_name(const char *name) {
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                if (strcmp(component_info[i].name, name) == 0)
                        return (int) i;
        return -ENOENT;
}

static void reload_issue(Operation *op);

static void reload_record_error(Operation *op, ControllerComponent i, int status, json_t *err) {
        json_decref(op->error[i]);
        op->error[i] = err;
        op->error_status[i] = status;
}

/* All calls of the current phase answered. */
static void reload_phase_done(Operation *op) {
        Controller *c = op->c;
        json_t *result;
        int status = 200;
        unsigned first = _CONTROLLER_COMPONENT_MAX;

        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                if (op->target[i] && op->error_status[i] && first == _CONTROLLER_COMPONENT_MAX)
                        first = i;

        if (op->validating) {
                if (first < _CONTROLLER_COMPONENT_MAX) {
                        c->reload_failures++;
                        op_fail(op, op->error_status[first], json_incref(op->error[first]));
                        return;
                }
                op->validating = false;
                reload_issue(op);
                return;
        }

        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                if (op->target[i])
                        component_refresh(&c->components[i]);
        result = json_object();
        for (unsigned i = 0; result && i < _CONTROLLER_COMPONENT_MAX; i++)
                if (op->target[i] && op->changes[i])
                        (void) json_object_set_new(result, component_info[i].name,
                                                   json_pack("{s:O}", "changes", op->changes[i]));
        if (first < _CONTROLLER_COMPONENT_MAX) {
                status = op->error_status[first];
                if (result)
                        (void) json_object_set(result, "error", op->error[first]);
                c->reload_failures++;
                log_warning("Reload failed: %s",
                            json_string_value(json_object_get(op->error[first], "message")));
        } else {
                c->reloads++;
                log_info("Reloaded%s%s", op->target[CONTROLLER_COLLECTOR] ? " collector" : "",
                         op->target[CONTROLLER_MEDIATOR] ? " mediator" : "");
        }
        op_finish(op, status, result);
}

static int on_reload_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OpCall *call = userdata;
        Operation *op = call->op;
        ControllerComponent i = call->comp;
        json_t *err = NULL;
        const char *s;
        int status;

        call->slot = sd_bus_slot_unref(call->slot);
        if (sd_bus_message_is_method_error(m, NULL)) {
                status = error_from_reply(i, m, &err);
                reload_record_error(op, i, status, err);
        } else if (!op->validating) {
                json_t *changes = NULL;
                if (sd_bus_message_read(m, "s", &s) >= 0) {
                        changes = json_loads(s, 0, NULL);
                        if (!json_is_array(changes)) {
                                json_decref(changes);
                                changes = json_pack("[s]", s);
                        }
                }
                json_decref(op->changes[i]);
                op->changes[i] = changes ? changes : json_array();
        }
        if (--op->pending == 0)
                reload_phase_done(op);
        return 0;
}

/* Issues Validate() (while validating) or Reload() to every target, in parallel. */
static void reload_issue(Operation *op) {
        Controller *c = op->c;
        sd_bus *bus = bus_get(c);

        op->pending = 0;
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                const char *text = op->text[i] ? op->text[i] : "";
                int r = -ENOTCONN;

                if (!op->target[i])
                        continue;
                if (bus)
                        r = call_async(bus, &op->calls[i].slot, component_info[i].bus_name,
                                       component_info[i].path, component_info[i].interface,
                                       op->validating ? "Validate" : "Reload",
                                       (uint64_t) c->cfg->call_timeout_ms, on_reload_reply,
                                       &op->calls[i], "s", text);
                if (r < 0) {
                        reload_record_error(op, i, 503,
                                            error_json("unavailable", "%s: cannot call: %s",
                                                       component_info[i].name, strerror(-r)));
                        continue;
                }
                op->pending++;
        }
        if (op->pending == 0)
                reload_phase_done(op);
}

int controller_reload(Controller *c, json_t *configs, ControllerDone done, void *userdata) {
        Operation *op;
        const char *key;
        json_t *v;
        int r;

        assert(c);
        r = op_new(c, OP_RELOAD, done, userdata, &op);
        if (r < 0)
                return r;

        if (c->stopping) {
                op_fail(op, 503, error_json("unavailable", "controller: stopping"));
                return 0;
        }
        if (configs && !json_is_null(configs)) {
                if (!json_is_object(configs) || json_object_size(configs) == 0) {
                        op_fail(op, 400, error_json("invalid_request", "the body must be an "
                                                    "object with \"collector\" and/or "
                                                    "\"mediator\""));
                        return 0;
                }
                json_object_foreach(configs, key, v) {
                        int i = component_by_name(key);
                        if (i < 0) {
                                op_fail(op, 400, error_json("invalid_request",
                                                            "unknown component '%s'", key));
                                return 0;
                        }
                        if (!json_is_object(v)) {
                                op_fail(op, 400, error_json("invalid_config", "%s: the "
                                                            "configuration must be a JSON "
                                                            "object", key));
                                return 0;
                        }
                        op->text[i] = json_dumps(v, JSON_COMPACT);
                        if (!op->text[i]) {
                                c->op = NULL;
                                op_free(op);
                                return -ENOMEM;
                        }
                        op->target[i] = true;
                }
                op->validating = true;
        } else
                for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++)
                        op->target[i] = true;

        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                if (!op->target[i])
                        continue;
                if (!bus_connected(c)) {
                        op_fail(op, 503, error_json("unavailable", "bus: not connected"));
                        return 0;
                }
                if (!c->components[i].on_bus) {
                        op_fail(op, 503, error_json("unavailable", "%s: not on the bus",
                                                    component_info[i].name));
                        return 0;
                }
        }
        log_info("Reload requested%s", op->validating ? " with new configuration" : "");
        reload_issue(op);
        return 0;
}

/* Drain: step 2i drains component i, step 2i+1 reads its final counters. */
static void drain_next(Operation *op);

static json_t *drain_entry(Operation *op, ControllerComponent i) {
        json_t *e = json_object_get(op->result, component_info[i].name);

        if (!e) {
                e = json_object();
                if (json_object_set_new(op->result, component_info[i].name, e) < 0)
                        return NULL;
        }
        return e;
}

static void drain_record_error(Operation *op, ControllerComponent i, int status, json_t *err) {
        json_t *e = drain_entry(op, i);

        if (!op->status)
                op->status = status;
        if (!json_object_get(op->result, "error") && err)
                (void) json_object_set(op->result, "error", err);
        if (e) {
                (void) json_object_set_new(e, "drained", json_false());
                (void) json_object_set_new(e, "error", err ? err : json_null());
        } else
                json_decref(err);
}

static int on_drain_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OpCall *call = userdata;
        Operation *op = call->op;
        ControllerComponent i = call->comp;
        json_t *err = NULL;
        int status;

        call->slot = sd_bus_slot_unref(call->slot);
        if (sd_bus_message_is_method_error(m, NULL)) {
                status = error_from_reply(i, m, &err);
                log_warning("Drain failed: %s",
                            json_string_value(json_object_get(err, "message")));
                drain_record_error(op, i, status, err);
        } else {
                log_info("Drained %s", component_info[i].name);
                (void) json_object_set_new(drain_entry(op, i), "drained", json_true());
        }
        op->step++;
        drain_next(op);
        return 0;
}

static int on_drain_counters(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OpCall *call = userdata;
        Operation *op = call->op;
        ControllerComponent i = call->comp;
        Component *comp = &op->c->components[i];
        json_t *props = NULL, *e = drain_entry(op, i);

        call->slot = sd_bus_slot_unref(call->slot);
        if (!sd_bus_message_is_method_error(m, NULL) && parse_properties(m, &props) >= 0) {
                if (e) {
                        (void) json_object_set(e, "records",
                                               json_object_get(json_object_get(props, "counters"),
                                                               "records"));
                        (void) json_object_set(e, "state", json_object_get(props, "state"));
                }
                poll_store(&comp->polls[POLL_PROPERTIES], props);
        }
        if (e && !json_object_get(e, "records"))
                (void) json_object_set_new(e, "records", json_null());
        op->step++;
        drain_next(op);
        return 0;
}

static void drain_next(Operation *op) {
        Controller *c = op->c;

        while (!op->finished && op->step < 2 * _CONTROLLER_COMPONENT_MAX) {
                ControllerComponent i = op->step / 2;
                Component *comp = &c->components[i];
                sd_bus *bus = bus_get(c);
                int r = -ENOTCONN;

                if (op->step % 2 == 0) {
                        if (!comp->on_bus || !bus) {
                                drain_record_error(op, i, 503,
                                                   error_json("unavailable", "%s: not on the bus",
                                                              component_info[i].name));
                                op->step += 2;
                                continue;
                        }
                        log_info("Draining %s (up to %" PRId64 " ms)", component_info[i].name,
                                 c->cfg->drain_timeout_ms);
                        r = call_async(bus, &op->calls[i].slot, component_info[i].bus_name,
                                       component_info[i].path, component_info[i].interface,
                                       "Drain", (uint64_t) c->cfg->drain_timeout_ms,
                                       on_drain_reply, &op->calls[i], NULL);
                        if (r < 0) {
                                drain_record_error(op, i, 503,
                                                   error_json("unavailable", "%s: cannot call: %s",
                                                              component_info[i].name,
                                                              strerror(-r)));
                                op->step++;
                                continue;
                        }
                        return;
                }
                if (bus && comp->on_bus)
                        r = call_async(bus, &op->calls[i].slot, component_info[i].bus_name,
                                       component_info[i].path, PROPERTIES_INTERFACE, "GetAll",
                                       (uint64_t) c->cfg->call_timeout_ms, on_drain_counters,
                                       &op->calls[i], "s", component_info[i].interface);
                if (r >= 0)
                        return;
                (void) json_object_set_new(drain_entry(op, i), "records", json_null());
                op->step++;
        }
        if (!op->finished)
                op_finish(op, op->status ? op->status : 200, json_incref(op->result));
}

int controller_drain(Controller *c, ControllerDone done, void *userdata) {
        Operation *op;
        int r;

        assert(c);
        r = op_new(c, OP_DRAIN, done, userdata, &op);
        if (r < 0)
                return r;
        op->result = json_object();
        if (!op->result) {
                c->op = NULL;
                op_free(op);
                return -ENOMEM;
        }
        c->drains++;
        if (c->stopping) {
                op_fail(op, 503, error_json("unavailable", "controller: stopping"));
                return 0;
        }
        log_info("Drain requested: collector, then mediator");
        drain_next(op);
        return 0;
}

/* ---- the pod's dbus-daemon ---- */

static char *address_escape(const char *s) {
        char *out = malloc(strlen(s) * 3 + 1), *o = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (isalnum(ch) || strchr("-_/.\\*", ch))
                        *o++ = (char) ch;
                else
                        o += snprintf(o, 4, "%%%02x", ch);
        }
        *o = '\0';
        return out;
}

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        char *slash;

        if (!p)
                return -ENOMEM;
        slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = '\0';
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int write_bus_config(Controller *c) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len, off = 0;
        int n;

        /* The escaped address contains no XML metacharacters ('%' escapes them). */
        n = asprintf(&text,
                     "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                     "1.0//EN\"\n"
                     " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                     "<!-- written by ipfixd-controller: the pod's private bus -->\n"
                     "<busconfig>\n"
                     "  <type>custom</type>\n"
                     "  <listen>%s</listen>\n"
                     "  <auth>EXTERNAL</auth>\n"
                     "  <policy context=\"default\">\n"
                     "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                     "    <allow eavesdrop=\"true\"/>\n"
                     "    <allow own=\"*\"/>\n"
                     "  </policy>\n"
                     "</busconfig>\n",
                     c->bus_address);
        if (n < 0)
                return -ENOMEM;
        len = (size_t) n;
        fd = open(c->bus_config_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t k = write(fd, text + off, len - off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) k;
        }
        return 0;
}

static void address_close(Controller *c) {
        c->address_source = sd_event_source_disable_unref(c->address_source);
        c->address_fd = safe_close(c->address_fd);
        c->address_len = 0;
}

static int on_address_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Controller *c = userdata;
        char *nl;
        ssize_t k;
        int r;

        k = read(fd, c->address_buf + c->address_len, sizeof(c->address_buf) - 1 - c->address_len);
        if (k < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                log_warning_errno(-errno, "Failed to read the dbus-daemon's address: %m");
                address_close(c);
                return 0;
        }
        if (k == 0) {           /* it exited or closed the pipe: the exit is logged apart */
                address_close(c);
                return 0;
        }
        c->address_len += (size_t) k;
        c->address_buf[c->address_len] = '\0';
        nl = strchr(c->address_buf, '\n');
        if (!nl) {
                if (c->address_len == sizeof(c->address_buf) - 1) {
                        log_warning("The dbus-daemon printed an overlong address, ignoring");
                        address_close(c);
                }
                return 0;
        }
        *nl = '\0';
        free(c->daemon_address);
        c->daemon_address = strdup(c->address_buf);
        c->daemon_ready = true;
        log_info("Bus daemon ready address=%s", c->address_buf);
        address_close(c);

        /* First start: connect now (the EvBus reconnects by itself after a restart; it uses
         * the guid-less address, which stays valid across them). */
        if (!c->bus && !c->stopping) {
                r = bus_connect(c);
                if (r < 0)
                        log_error_errno(r, "Failed to set up the bus connection: %m");
        }
        return 0;
}

static int on_bus_daemon_prepare(void *userdata, int *ret_fd) {
        Controller *c = userdata;
        int fds[2], r;

        address_close(c);
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        c->address_fd = fds[0];
        r = sd_event_add_io(c->event, &c->address_source, c->address_fd, EPOLLIN,
                            on_address_readable, c);
        if (r < 0) {
                address_close(c);
                (void) close(fds[1]);
                return r;
        }
        /* A stale socket from an earlier daemon would make the new one fail to listen. */
        (void) unlink(c->cfg->bus_socket);
        *ret_fd = fds[1];
        return 0;
}

static void on_bus_daemon_exited(void *userdata, const siginfo_t *si) {
        Controller *c = userdata;

        c->daemon_ready = false;
}

static int bus_daemon_start(Controller *c) {
        _cleanup_free_ char *binary = NULL, *arg_config = NULL, *escaped = NULL;
        int r;

        escaped = address_escape(c->cfg->bus_socket);
        if (!escaped || asprintf(&c->bus_address, "unix:path=%s", escaped) < 0 ||
            asprintf(&c->bus_config_path, "%s.conf", c->cfg->bus_socket) < 0)
                return -ENOMEM;
        r = mkdir_parents(c->cfg->bus_socket);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s: %m",
                                       c->cfg->bus_socket);
        r = write_bus_config(c);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", c->bus_config_path);
        r = pod_find_executable("dbus-daemon", &binary);
        if (r < 0)
                return log_error_errno(r, "Failed to find dbus-daemon in $PATH: %m");
        if (asprintf(&arg_config, "--config-file=%s", c->bus_config_path) < 0)
                return -ENOMEM;

        r = pod_child_new(&c->bus_daemon, c->event,
                          &(PodChildConfig) {
                                  .name = "dbus-daemon",
                                  .argv = (char *const[]) { binary, arg_config,
                                                            (char *) "--nofork",
                                                            (char *) "--nopidfile",
                                                            (char *) "--print-address=3",
                                                            NULL },
                                  .restart_min_ms = (uint64_t) c->cfg->restart_min_ms,
                                  .restart_max_ms = (uint64_t) c->cfg->restart_max_ms,
                                  .stop_timeout_ms = (uint64_t) c->cfg->stop_timeout_ms,
                                  .on_prepare = on_bus_daemon_prepare,
                                  .on_exited = on_bus_daemon_exited,
                                  .userdata = c,
                          });
        if (r < 0)
                return r;
        r = pod_child_start(c->bus_daemon);
        if (r < 0)
                return log_error_errno(r, "Failed to start %s: %m", binary);
        return 0;
}

/* ---- lifecycle ---- */

int controller_new(Controller **ret, const ControllerConfig *cfg, sd_event *e) {
        Controller *c;
        char host[256];
        int r;

        assert(ret && cfg && e);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->cfg = cfg;
        c->address_fd = -EBADF;
        for (unsigned i = 0; i < _CONTROLLER_COMPONENT_MAX; i++) {
                c->components[i].c = c;
                c->components[i].id = i;
                for (PollKind k = 0; k < _POLL_MAX; k++)
                        c->components[i].polls[k] = (Poll) { .comp = &c->components[i], .kind = k };
        }
        if (cfg->pod_name)
                c->pod_name = strdup(cfg->pod_name);
        else if (gethostname(host, sizeof(host) - 1) == 0) {
                host[sizeof(host) - 1] = '\0';
                c->pod_name = strdup(host);
        } else
                c->pod_name = strdup("unknown");
        if (!c->pod_name) {
                r = -ENOMEM;
                goto fail;
        }

        if (cfg->bus_address) {
                c->bus_address = strdup(cfg->bus_address);
                if (!c->bus_address) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = bus_connect(c);
        } else
                r = bus_daemon_start(c);
        if (r < 0)
                goto fail;

        r = sd_event_add_time_relative(e, &c->poll_timer, CLOCK_MONOTONIC,
                                       (uint64_t) cfg->poll_interval_ms * 1000, 10 * 1000,
                                       on_poll_timer, c);
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        controller_free(c);
        return r;
}

Controller *controller_free(Controller *c) {
        if (!c)
                return NULL;
        if (c->op) {
                /* Its owner frees its request record in @done: call it one last time. */
                Operation *op = c->op;
                c->op = NULL;
                if (!op->finished)
                        op_abort(op, 503, "unavailable", "controller: shutting down");
                op->done(op->userdata, op->status, op->result);
                op_free(op);
        }
        bus_drop_slots(c);
        ev_bus_free(c->bus);
        sd_event_source_disable_unref(c->poll_timer);
        sd_event_source_disable_unref(c->stop_defer);
        address_close(c);
        pod_child_free(c->bus_daemon);
        if (c->bus_config_path)
                (void) unlink(c->bus_config_path);
        sd_event_unref(c->event);
        free(c->bus_config_path);
        free(c->daemon_address);
        free(c->bus_address);
        free(c->pod_name);
        free(c);
        return NULL;
}

static void controller_stop_finished(void *userdata) {
        Controller *c = userdata;

        if (c->stop_done)
                c->stop_done(c->stop_userdata);
}

static int on_stop_defer(sd_event_source *s, void *userdata) {
        controller_stop_finished(userdata);
        return 0;
}

int controller_stop(Controller *c, void (*done)(void *userdata), void *userdata) {
        assert(c);
        if (c->stopping)
                return -EALREADY;
        c->stopping = true;
        c->stop_done = done;
        c->stop_userdata = userdata;
        (void) sd_event_source_set_enabled(c->poll_timer, SD_EVENT_OFF);
        if (c->op)
                op_abort(c->op, 503, "unavailable", "controller: stopping");
        bus_drop_slots(c);
        c->bus = ev_bus_free(c->bus);
        address_close(c);
        if (c->bus_daemon)
                return pod_child_stop(c->bus_daemon, controller_stop_finished, c);
        return sd_event_add_defer(c->event, &c->stop_defer, on_stop_defer, c);
}
