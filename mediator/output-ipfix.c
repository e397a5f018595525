/* SPDX-License-Identifier: MIT */
/*
 * output-ipfix.c - IPFIX export over TCP, UDP and to rotated files (see output-ipfix.h).
 *
 * The encoder drives libfixbuf 2.4.1 in buffer mode, which behaves as follows (measured):
 *  - fbExporterAllocBuffer(buf, size) makes every fBufEmit() memcpy the message to buf[0];
 *    size (a uint16_t) is the message size limit (the exporter's MTU).
 *  - fbExporterGetMsgLen() keeps returning the previous length after an fBufEmit() that had
 *    nothing to emit, so the encoder clears the version field first and tells a new message
 *    by it reappearing.
 *  - In manual mode (fBufSetAutomaticMode(FALSE)) fBufAppend() returns FB_ERROR_EOM when
 *    the record does not fit; the record was not added (a partly transcoded record is
 *    discarded), so emit and append again. Automatic mode would emit into the same buffer
 *    behind our back and lose the previous message.
 *  - Templates always travel in their own message: fbSessionExportTemplates() fails once
 *    with FB_ERROR_EOM on a fresh buffer ("must start new message for template export")
 *    and succeeds when called again; the next fBufAppend() fails once with FB_ERROR_EOM
 *    ("must start new message after template export").
 *  - The header's sequence number is the session's count of data records emitted before
 *    the message (RFC 7011); a template-only message carries the current count.
 * A new fBuf (and session) per TCP connection and per file restarts sequence numbers at 0.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <fixbuf/public.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "output-ipfix.h"
#include "rotate.h"

#define INTERNAL_TID 256u
#define N_TEMPLATES 4u
#define OUT_TARGET (256u * 1024u)       /* TCP: encode this much per fill */
#define TCP_SEND_ROUNDS 8               /* fills per wake-up before yielding to the loop */
#define TICK_USEC (1000u * 1000u)       /* file rotation check */
#define UDP_SNDBUF (4 * 1024 * 1024)
#define INITIAL_QUEUE 4096u

/* The internal record libfixbuf encodes from; field order and sizes match internal_spec. */
typedef struct IpfixRec {
        uint64_t start_ms, end_ms, octets, packets, flows;
        uint8_t src6[16], dst6[16], exp6[16];
        uint32_t src4, dst4, exp4;              /* host byte order */
        uint32_t in_if, out_if, src_as, dst_as, sampling, odid;
        uint16_t src_port, dst_port, tcp_flags, vlan;
        uint8_t proto, tos, direction, end_reason;
} IpfixRec;
_Static_assert(sizeof(IpfixRec) == 136, "IpfixRec must match internal_spec (no padding)");

#define SPEC(n, l) { (char *) (n), (l), 0 }
static fbInfoElementSpec_t internal_spec[] = {
        SPEC("flowStartMilliseconds", 8),       SPEC("flowEndMilliseconds", 8),
        SPEC("octetDeltaCount", 8),             SPEC("packetDeltaCount", 8),
        SPEC("deltaFlowCount", 8),              SPEC("sourceIPv6Address", 16),
        SPEC("destinationIPv6Address", 16),     SPEC("originalExporterIPv6Address", 16),
        SPEC("sourceIPv4Address", 4),           SPEC("destinationIPv4Address", 4),
        SPEC("originalExporterIPv4Address", 4), SPEC("ingressInterface", 4),
        SPEC("egressInterface", 4),             SPEC("bgpSourceAsNumber", 4),
        SPEC("bgpDestinationAsNumber", 4),      SPEC("samplingPacketInterval", 4),
        SPEC("originalObservationDomainId", 4), SPEC("sourceTransportPort", 2),
        SPEC("destinationTransportPort", 2),    SPEC("tcpControlBits", 2),
        SPEC("vlanId", 2),                      SPEC("protocolIdentifier", 1),
        SPEC("ipClassOfService", 1),            SPEC("flowDirection", 1),
        SPEC("flowEndReason", 1),               FB_IESPEC_NULL,
};

/* External templates: the wire order documented in output-ipfix.h. */
#define EXT_HEAD                                                                        \
        SPEC("flowStartMilliseconds", 8), SPEC("flowEndMilliseconds", 8),               \
        SPEC("octetDeltaCount", 8), SPEC("packetDeltaCount", 8), SPEC("deltaFlowCount", 8)
#define EXT_TAIL                                                                        \
        SPEC("ingressInterface", 4), SPEC("egressInterface", 4),                        \
        SPEC("bgpSourceAsNumber", 4), SPEC("bgpDestinationAsNumber", 4),                \
        SPEC("samplingPacketInterval", 4), SPEC("originalObservationDomainId", 4),      \
        SPEC("sourceTransportPort", 2), SPEC("destinationTransportPort", 2),            \
        SPEC("tcpControlBits", 2), SPEC("vlanId", 2), SPEC("protocolIdentifier", 1),    \
        SPEC("ipClassOfService", 1), SPEC("flowDirection", 1), SPEC("flowEndReason", 1), \
        FB_IESPEC_NULL
#define FLOW4 SPEC("sourceIPv4Address", 4), SPEC("destinationIPv4Address", 4)
#define FLOW6 SPEC("sourceIPv6Address", 16), SPEC("destinationIPv6Address", 16)
#define EXP4 SPEC("originalExporterIPv4Address", 4)
#define EXP6 SPEC("originalExporterIPv6Address", 16)
static fbInfoElementSpec_t ext_v4_v4[] = { EXT_HEAD, FLOW4, EXP4, EXT_TAIL };
static fbInfoElementSpec_t ext_v6_v6[] = { EXT_HEAD, FLOW6, EXP6, EXT_TAIL };
static fbInfoElementSpec_t ext_v4_v6[] = { EXT_HEAD, FLOW4, EXP6, EXT_TAIL };
static fbInfoElementSpec_t ext_v6_v4[] = { EXT_HEAD, FLOW6, EXP4, EXT_TAIL };
/* Indexed by tid - OUTPUT_IPFIX_TID_BASE. */
static fbInfoElementSpec_t *const ext_specs[N_TEMPLATES] = {
        ext_v4_v4, ext_v6_v6, ext_v4_v6, ext_v6_v4,
};

typedef enum TcpState {
        TCP_BACKOFF,
        TCP_CONNECTING,
        TCP_CONNECTED,
        TCP_CLOSED,
} TcpState;

/* Where an encoded message ends in the TCP output buffer, and how many records it holds. */
typedef struct MsgMark {
        size_t end;
        uint32_t records;
} MsgMark;

typedef struct Encoder {
        fbInfoModel_t *model;
        fBuf_t *fbuf;                   /* owns the session and the buffer exporter */
        uint8_t *msg;                   /* the buffer exporter's target */
        uint16_t mtu;
        uint16_t ext_tid;               /* export template set on fbuf, 0 none */
        uint32_t msg_records;           /* records in the message being built */
        bool need_templates;
} Encoder;

struct OutputIpfix {
        OutputIpfixParams p;            /* strings point at target/path below */
        char *target;
        char *path;
        sd_event *event;
        Encoder enc;
        void (*on_message)(OutputIpfix *o, const uint8_t *msg, size_t len, uint32_t records);
        uint64_t records, messages, bytes, dropped, errors, reconnects;
        bool error_state;
        bool closed;
        int fd;

        /* TCP */
        TcpState st;
        sd_event_source *io, *timer;
        unsigned attempts;
        bool ever_connected;
        uint64_t rng;
        FlowRecord *q;                  /* ring of records not encoded yet */
        size_t q_cap, q_head, q_n;
        uint8_t *out;                   /* encoded messages not written yet */
        size_t out_len, out_off, out_cap;
        MsgMark *marks;
        size_t marks_n, marks_head, marks_cap;
        bool tcp_broken;                /* a message could not be buffered */

        /* UDP */
        sd_event_source *resend;

        /* file */
        RotatingFile *file;
        sd_event_source *tick;
        bool rotate_pending;            /* the file reached rotate_bytes */
        bool file_broken;               /* a write failed: restart with templates */
};

/* ---- encoder --------------------------------------------------------------------------- */

static int encoder_init(Encoder *enc, uint16_t mtu) {
        enc->mtu = mtu;
        enc->msg = malloc(mtu);
        if (!enc->msg)
                return -ENOMEM;
        enc->model = fbInfoModelAlloc();
        if (!enc->model)
                return -ENOMEM;
        return 0;
}

static void encoder_done(Encoder *enc) {
        if (enc->fbuf)
                fBufFree(enc->fbuf);
        enc->fbuf = NULL;
        if (enc->model)
                fbInfoModelFree(enc->model);
        enc->model = NULL;
        free(enc->msg);
        enc->msg = NULL;
}

static bool add_template(fbSession_t *s, fbInfoModel_t *model, bool internal, uint16_t tid,
                         fbInfoElementSpec_t *spec) {
        fbTemplate_t *t = fbTemplateAlloc(model);
        GError *err = NULL;

        if (!t)
                return false;
        if (!fbTemplateAppendSpecArray(t, spec, 0, &err) ||
            !fbSessionAddTemplate(s, internal, tid, t, &err)) {
                g_clear_error(&err);
                fbTemplateFreeUnused(t);
                return false;
        }
        return true;
}

/*
 * Starts a new session: sequence numbers at 0, templates before the next record. Records
 * appended to the old session's unfinished message are discarded and counted as dropped.
 */
static int encoder_reset(OutputIpfix *o) {
        Encoder *enc = &o->enc;
        fbSession_t *s;
        GError *err = NULL;

        if (enc->fbuf) {
                o->dropped += enc->msg_records;
                fBufFree(enc->fbuf);
                enc->fbuf = NULL;
        }
        enc->msg_records = 0;
        enc->ext_tid = 0;

        s = fbSessionAlloc(enc->model);
        if (!s)
                return -ENOMEM;
        fbSessionSetDomain(s, o->p.odid);
        if (!add_template(s, enc->model, true, INTERNAL_TID, internal_spec))
                goto fail;
        for (unsigned i = 0; i < N_TEMPLATES; i++)
                if (!add_template(s, enc->model, false, (uint16_t) (OUTPUT_IPFIX_TID_BASE + i),
                                  ext_specs[i]))
                        goto fail;
        /* Cannot fail from here on (GLib aborts on OOM). */
        enc->fbuf = fBufAllocForExport(s, fbExporterAllocBuffer(enc->msg, enc->mtu));
        fBufSetAutomaticMode(enc->fbuf, FALSE);
        if (!fBufSetInternalTemplate(enc->fbuf, INTERNAL_TID, &err)) {
                g_clear_error(&err);
                fBufFree(enc->fbuf);
                enc->fbuf = NULL;
                return -EIO;
        }
        enc->need_templates = true;
        return 0;
fail:
        fbSessionFree(s);
        return -EIO;
}

/* Hands the message being built (if any) to the transport. */
static void encoder_emit(OutputIpfix *o) {
        Encoder *enc = &o->enc;
        GError *err = NULL;
        uint32_t recs;

        if (!enc->fbuf)
                return;
        enc->msg[0] = enc->msg[1] = 0;
        if (!fBufEmit(enc->fbuf, &err)) {
                g_clear_error(&err);    /* the buffer exporter cannot fail */
                return;
        }
        if (enc->msg[0] != 0 || enc->msg[1] != 10)
                return;                 /* nothing was pending */
        recs = enc->msg_records;
        enc->msg_records = 0;
        o->on_message(o, enc->msg, fbExporterGetMsgLen(fBufGetExporter(enc->fbuf)), recs);
}

/* Emits the current message, then a message with all templates. */
static int encoder_templates(OutputIpfix *o) {
        Encoder *enc = &o->enc;
        GError *err = NULL;

        if (!enc->fbuf)
                return -EIO;
        encoder_emit(o);
        for (int attempt = 0;; attempt++) {
                if (fbSessionExportTemplates(fBufGetSession(enc->fbuf), &err))
                        break;
                if (attempt > 0 || !g_error_matches(err, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
                        g_clear_error(&err);
                        return -EIO;
                }
                g_clear_error(&err);
        }
        encoder_emit(o);
        enc->need_templates = false;
        return 0;
}

static uint32_t v4_of(const uint8_t a[16]) {
        return (uint32_t) a[12] << 24 | (uint32_t) a[13] << 16 | (uint32_t) a[14] << 8 | a[15];
}

static uint16_t to_ipfix(const FlowRecord *f, IpfixRec *r) {
        bool flow6 = f->family == 6, exp6 = f->exporter_family == 6;

        *r = (IpfixRec) {
                .start_ms = f->start_ms,
                .end_ms = f->end_ms,
                .octets = f->octets,
                .packets = f->packets,
                .flows = f->flows ? f->flows : 1,
                .in_if = f->ingress_if,
                .out_if = f->egress_if,
                .src_as = f->src_as,
                .dst_as = f->dst_as,
                .sampling = f->sampling,
                .odid = f->odid,
                .src_port = f->src_port,
                .dst_port = f->dst_port,
                .tcp_flags = f->tcp_flags,
                .vlan = f->vlan,
                .proto = f->proto,
                .tos = f->tos,
                .direction = f->direction,
                .end_reason = f->end_reason,
        };
        if (flow6) {
                memcpy(r->src6, f->src_addr, 16);
                memcpy(r->dst6, f->dst_addr, 16);
        } else {
                r->src4 = v4_of(f->src_addr);
                r->dst4 = v4_of(f->dst_addr);
        }
        if (exp6)
                memcpy(r->exp6, f->exporter_addr, 16);
        else
                r->exp4 = v4_of(f->exporter_addr);
        return (uint16_t) (OUTPUT_IPFIX_TID_BASE +
                           (flow6 == exp6 ? (flow6 ? 1u : 0u) : (flow6 ? 3u : 2u)));
}

/* Adds one record; complete messages go to the transport. Return: 0 or -EIO. */
static int encoder_append(OutputIpfix *o, const FlowRecord *f) {
        Encoder *enc = &o->enc;
        GError *err = NULL;
        IpfixRec rec;
        uint16_t tid;

        if (!enc->fbuf || (enc->need_templates && encoder_templates(o) < 0))
                return -EIO;
        tid = to_ipfix(f, &rec);
        if (tid != enc->ext_tid) {
                if (!fBufSetExportTemplate(enc->fbuf, tid, &err)) {
                        g_clear_error(&err);
                        return -EIO;
                }
                enc->ext_tid = tid;
        }
        for (int attempt = 0;; attempt++) {
                if (fBufAppend(enc->fbuf, (uint8_t *) &rec, sizeof(rec), &err)) {
                        enc->msg_records++;
                        return 0;
                }
                if (attempt > 0 || !g_error_matches(err, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
                        g_clear_error(&err);
                        return -EIO;
                }
                g_clear_error(&err);
                encoder_emit(o);
        }
}

/* ---- TCP ------------------------------------------------------------------------------- */

static void tcp_connect(OutputIpfix *o);

static uint64_t next_random(OutputIpfix *o) {
        /* xorshift64: jitter only, no need for quality */
        o->rng ^= o->rng << 13;
        o->rng ^= o->rng >> 7;
        o->rng ^= o->rng << 17;
        return o->rng;
}

static void tcp_on_message(OutputIpfix *o, const uint8_t *msg, size_t len, uint32_t records) {
        /* Both buffers are preallocated for a whole fill; growing them is a fallback. */
        if (o->out_len + len > o->out_cap) {
                size_t cap = MAX(o->out_cap * 2, o->out_len + len);
                uint8_t *n = realloc(o->out, cap);
                if (!n)
                        goto lost;
                o->out = n;
                o->out_cap = cap;
        }
        if (o->marks_n == o->marks_cap) {
                size_t cap = MAX(o->marks_cap * 2, 16u);
                MsgMark *n = realloc(o->marks, cap * sizeof(*n));
                if (!n)
                        goto lost;
                o->marks = n;
                o->marks_cap = cap;
        }
        memcpy(o->out + o->out_len, msg, len);
        o->out_len += len;
        o->marks[o->marks_n++] = (MsgMark) { .end = o->out_len, .records = records };
        return;
lost:
        /* A gap in the stream (maybe the templates): the session must start over. */
        o->dropped += records;
        o->tcp_broken = true;
}

static bool tcp_pending(const OutputIpfix *o) {
        return o->q_n > 0 || o->out_off < o->out_len;
}

/* Records in encoded messages not completely written. */
static uint64_t tcp_unsent_records(const OutputIpfix *o) {
        uint64_t n = 0;
        for (size_t i = o->marks_head; i < o->marks_n; i++)
                n += o->marks[i].records;
        return n;
}

static void tcp_update_events(OutputIpfix *o) {
        if (o->st != TCP_CONNECTED || !o->io)
                return;
        (void) sd_event_source_set_io_events(o->io,
                                             EPOLLIN | EPOLLRDHUP |
                                                     (tcp_pending(o) ? EPOLLOUT : 0));
}

static void tcp_schedule(OutputIpfix *o, uint64_t usec) {
        (void) sd_event_source_set_time_relative(o->timer, usec);
        (void) sd_event_source_set_enabled(o->timer, SD_EVENT_ONESHOT);
}

static void tcp_backoff(OutputIpfix *o) {
        uint64_t delay = o->p.reconnect_min_ms << MIN(o->attempts, 20u);

        delay = MIN(delay, o->p.reconnect_max_ms);
        /* Full jitter on the upper half: reconnect storms of many replicas spread out. */
        delay = delay / 2 + next_random(o) % (delay / 2 + 1);
        o->attempts++;
        o->st = TCP_BACKOFF;
        tcp_schedule(o, delay * 1000u);
}

/* Drops the connection; records already encoded for it are lost (counted). */
static void tcp_disconnect(OutputIpfix *o, int error, const char *what) {
        o->dropped += tcp_unsent_records(o);
        o->out_len = o->out_off = 0;
        o->marks_n = o->marks_head = 0;
        o->io = sd_event_source_disable_unref(o->io);
        o->fd = safe_close(o->fd);
        o->errors++;
        log_ratelimited(LOG_WARNING, "output-ipfix-tcp", "IPFIX output %s: %s: %s, retrying",
                        o->target, what, strerror(-error));
        tcp_backoff(o);
}

/* Writes encoded messages, encoding more from the queue as the socket takes them. */
static void tcp_send(OutputIpfix *o) {
        for (int round = 0; round < TCP_SEND_ROUNDS && o->st == TCP_CONNECTED; round++) {
                ssize_t k;

                if (o->out_off == o->out_len) {
                        o->out_len = o->out_off = 0;
                        o->marks_n = o->marks_head = 0;
                        if (o->q_n == 0)
                                break;
                        while (o->q_n > 0 && o->out_len < OUT_TARGET) {
                                if (encoder_append(o, &o->q[o->q_head]) < 0) {
                                        o->dropped++;
                                        o->errors++;
                                }
                                o->q_head = (o->q_head + 1) % o->q_cap;
                                o->q_n--;
                        }
                        encoder_emit(o);
                        if (o->tcp_broken) {
                                o->tcp_broken = false;
                                tcp_disconnect(o, -ENOMEM, "cannot buffer a message");
                                return;
                        }
                        if (o->out_len == 0)
                                continue;
                }
                k = send(o->fd, o->out + o->out_off, o->out_len - o->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        tcp_disconnect(o, -errno, "send failed");
                        return;
                }
                o->out_off += (size_t) k;
                o->bytes += (uint64_t) k;
                while (o->marks_head < o->marks_n && o->marks[o->marks_head].end <= o->out_off) {
                        o->records += o->marks[o->marks_head].records;
                        o->messages++;
                        o->marks_head++;
                }
                if (o->out_off < o->out_len)
                        break;          /* partial write: the rest waits for EPOLLOUT */
        }
        tcp_update_events(o);
}

static void tcp_connected(OutputIpfix *o) {
        int r;

        o->st = TCP_CONNECTED;
        (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
        o->attempts = 0;
        if (o->ever_connected)
                o->reconnects++;
        o->ever_connected = true;
        /* A new transport session: sequence numbers from 0, templates first. */
        r = encoder_reset(o);
        if (r < 0) {
                tcp_disconnect(o, r, "cannot set up the encoder");
                return;
        }
        log_debug("IPFIX output %s: connected", o->target);
        tcp_send(o);
        tcp_update_events(o);
}

static void tcp_fail_connect(OutputIpfix *o, int error) {
        o->io = sd_event_source_disable_unref(o->io);
        o->fd = safe_close(o->fd);
        o->errors++;
        log_ratelimited(LOG_WARNING, "output-ipfix-tcp", "IPFIX output %s: connect failed: %s",
                        o->target, strerror(-error));
        tcp_backoff(o);
}

static int tcp_check_connect(OutputIpfix *o) {
        int err = 0;
        socklen_t sl = sizeof(err);

        if (getsockopt(o->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                err = errno;
        if (err != 0) {
                tcp_fail_connect(o, -err);
                return -err;
        }
        tcp_connected(o);
        return 0;
}

static int on_tcp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OutputIpfix *o = userdata;

        if (o->st == TCP_CONNECTING) {
                (void) tcp_check_connect(o);
                return 0;
        }
        if (o->st != TCP_CONNECTED)
                return 0;
        /* A collector sends nothing; whatever arrives is discarded (a bounded amount per
         * wake-up), and end of stream means it closed the connection. */
        for (int i = 0; i < 16 && (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)); i++) {
                uint8_t buf[4096];
                ssize_t k = recv(o->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (k == 0) {
                        tcp_disconnect(o, -ECONNRESET, "collector closed the connection");
                        return 0;
                }
                if (k < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        tcp_disconnect(o, -errno, "connection failed");
                        return 0;
                }
        }
        if (revents & EPOLLOUT)
                tcp_send(o);
        tcp_update_events(o);
        return 0;
}

static int on_tcp_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        OutputIpfix *o = userdata;

        if (o->st == TCP_BACKOFF)
                tcp_connect(o);
        else if (o->st == TCP_CONNECTING)
                tcp_fail_connect(o, -ETIMEDOUT);
        return 0;
}

static void tcp_connect(OutputIpfix *o) {
        int fd, r;

        fd = socket(o->p.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                o->errors++;
                tcp_backoff(o);
                return;
        }
        o->fd = fd;
        r = sd_event_add_io(o->event, &o->io, fd, EPOLLOUT, on_tcp_io, o);
        if (r < 0) {
                tcp_fail_connect(o, r);
                return;
        }
        if (connect(fd, (const struct sockaddr *) &o->p.addr, o->p.addr_len) >= 0) {
                tcp_connected(o);
                return;
        }
        if (errno != EINPROGRESS) {
                tcp_fail_connect(o, -errno);
                return;
        }
        o->st = TCP_CONNECTING;
        tcp_schedule(o, o->p.connect_timeout_ms * 1000u);
}

/* Appends to the queue; what does not fit within buffer_records is dropped. */
static int tcp_enqueue(OutputIpfix *o, const FlowRecord *recs, size_t n) {
        size_t take = MIN(n, o->p.buffer_records - o->q_n), tail, first;

        if (o->q_n + take > o->q_cap) {
                size_t cap = MAX(o->q_cap * 2, (size_t) INITIAL_QUEUE);
                FlowRecord *q;

                while (cap < o->q_n + take)
                        cap *= 2;
                cap = MIN(cap, o->p.buffer_records);
                q = malloc(cap * sizeof(*q));
                if (!q) {
                        o->dropped += n;
                        return -ENOMEM;
                }
                first = MIN(o->q_n, o->q_cap - o->q_head);
                if (o->q_n > 0) {
                        memcpy(q, o->q + o->q_head, first * sizeof(*q));
                        memcpy(q + first, o->q, (o->q_n - first) * sizeof(*q));
                }
                free(o->q);
                o->q = q;
                o->q_cap = cap;
                o->q_head = 0;
        }
        if (take > 0) {
                tail = (o->q_head + o->q_n) % o->q_cap;
                first = MIN(take, o->q_cap - tail);
                memcpy(o->q + tail, recs, first * sizeof(*recs));
                if (take > first)
                        memcpy(o->q, recs + first, (take - first) * sizeof(*recs));
                o->q_n += take;
        }
        if (take < n) {
                o->dropped += n - take;
                log_ratelimited(LOG_WARNING, "output-ipfix-tcp-full",
                                "IPFIX output %s: queue full (%" PRIu64 " records), %zu dropped",
                                o->target, o->p.buffer_records, n - take);
        }
        tcp_update_events(o);
        return 0;
}

/* Blocking, for shutdown: sends what is queued before @deadline (CLOCK_MONOTONIC usec). */
static void tcp_drain(OutputIpfix *o, uint64_t deadline) {
        bool tried_connect = false;

        (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
        for (;;) {
                struct pollfd pfd;
                uint64_t now;
                int wait_ms;

                if (o->st == TCP_CONNECTED)
                        tcp_send(o);
                if (!tcp_pending(o))
                        break;
                now = now_usec();
                if (now >= deadline)
                        break;
                wait_ms = (int) MIN((deadline - now + 999u) / 1000u, 100u);
                if (o->st == TCP_BACKOFF) {
                        if (tried_connect)
                                break;
                        tried_connect = true;
                        tcp_connect(o);
                        continue;
                }
                pfd = (struct pollfd) { .fd = o->fd, .events = POLLOUT };
                if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
                        break;
                if (o->st == TCP_CONNECTING && pfd.revents != 0)
                        (void) tcp_check_connect(o);
        }
        (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
}

/*
 * Blocking, for shutdown: after SHUT_WR, waits until the collector acknowledged everything
 * (SIOCOUTQ counts bytes, and the FIN, not acknowledged yet) or @deadline passed. What the
 * kernel still holds then is sent after close() as far as the peer takes it; it is not
 * counted as dropped (its records are unknown).
 */
static void tcp_wait_acked(OutputIpfix *o, uint64_t deadline) {
        for (;;) {
                uint64_t now = now_usec();
                int unacked = 0;

                if (ioctl(o->fd, SIOCOUTQ, &unacked) < 0 || unacked == 0 || now >= deadline)
                        return;
                (void) poll(NULL, 0, (int) MIN((deadline - now + 999u) / 1000u, 10u));
        }
}

/* ---- UDP ------------------------------------------------------------------------------- */

static void udp_on_message(OutputIpfix *o, const uint8_t *msg, size_t len, uint32_t records) {
        ssize_t k = send(o->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (k < 0) {
                int r = -errno;
                o->dropped += records;
                o->errors++;
                o->error_state = true;
                log_ratelimited(LOG_WARNING, "output-ipfix-udp",
                                "IPFIX output %s: send failed: %s, %u records dropped",
                                o->target, strerror(-r), records);
                return;
        }
        o->error_state = false;
        o->records += records;
        o->messages++;
        o->bytes += len;
}

static int on_udp_resend(sd_event_source *s, uint64_t usec, void *userdata) {
        OutputIpfix *o = userdata;

        (void) encoder_templates(o);
        (void) sd_event_source_set_time_relative(s, o->p.template_resend_s * 1000000u);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- file ------------------------------------------------------------------------------ */

static void file_on_message(OutputIpfix *o, const uint8_t *msg, size_t len, uint32_t records) {
        int r = rotate_file_write(o->file, msg, len);

        if (r < 0) {
                o->dropped += records;
                o->errors++;
                o->error_state = true;
                o->file_broken = true;
                log_ratelimited(LOG_WARNING, "output-ipfix-file",
                                "IPFIX output %s: write failed: %s, %u records dropped",
                                o->path, strerror(-r), records);
                return;
        }
        o->error_state = false;
        o->records += records;
        o->messages++;
        o->bytes += len;
        if (rotate_file_should_rotate(o->file, 1))
                o->rotate_pending = true;
}

static void file_rotate(OutputIpfix *o) {
        int r;

        encoder_emit(o);
        r = rotate_file_close(o->file);
        if (r < 0) {
                o->errors++;
                log_ratelimited(LOG_WARNING, "output-ipfix-file",
                                "IPFIX output %s: closing the file failed: %s", o->path,
                                strerror(-r));
        }
        o->rotate_pending = false;
        o->file_broken = false;
        /* The next file starts with the templates and its own sequence numbers. */
        (void) encoder_reset(o);
}

static int on_file_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        OutputIpfix *o = userdata;

        if (o->rotate_pending || rotate_file_should_rotate(o->file, 1))
                file_rotate(o);
        (void) sd_event_source_set_time_relative(s, TICK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- public ---------------------------------------------------------------------------- */

int output_ipfix_new(OutputIpfix **ret, const OutputIpfixParams *p, sd_event *e,
                     char **reterr) {
        OutputIpfix *o;
        int r;

        assert(ret);
        assert(p);
        assert(reterr);
        if (!e)
                return -EINVAL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->p = *p;
        o->fd = -EBADF;
        o->st = TCP_CLOSED;
        o->event = sd_event_ref(e);
        o->rng = now_usec() ^ (uint64_t) (uintptr_t) o;
        o->rng |= 1;
        o->target = strdup(p->target ? p->target : "");
        o->path = strdup(p->path ? p->path : "");
        if (!o->target || !o->path) {
                r = -ENOMEM;
                goto fail;
        }
        o->p.target = o->target;
        o->p.path = o->path;

        switch (p->transport) {
        case IPFIX_TRANSPORT_TCP:
                if (p->buffer_records == 0 || p->reconnect_min_ms == 0) {
                        r = -EINVAL;
                        goto fail;
                }
                o->on_message = tcp_on_message;
                r = encoder_init(&o->enc, OUTPUT_IPFIX_STREAM_MESSAGE);
                if (r < 0)
                        goto fail;
                /* A fill stops past OUT_TARGET: at most a full message, the final partial
                 * one and the templates beyond it, each under 64 KiB. */
                o->out_cap = OUT_TARGET + 3u * 65536u;
                o->marks_cap = 64;
                o->out = malloc(o->out_cap);
                o->marks = calloc(o->marks_cap, sizeof(*o->marks));
                if (!o->out || !o->marks) {
                        r = -ENOMEM;
                        goto fail;
                }
                /* 1 ms accuracy: sd-event's default slack (250 ms) would swamp short
                 * reconnect delays. */
                r = sd_event_add_time_relative(e, &o->timer, CLOCK_MONOTONIC, 0, 1000,
                                               on_tcp_timer, o);
                if (r < 0)
                        goto fail;
                (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
                o->st = TCP_BACKOFF;
                tcp_connect(o);
                break;
        case IPFIX_TRANSPORT_UDP: {
                int sndbuf = UDP_SNDBUF;

                if (p->max_message < 512 || p->max_message > 65507 || p->template_resend_s == 0) {
                        r = -EINVAL;
                        goto fail;
                }
                o->on_message = udp_on_message;
                r = encoder_init(&o->enc, (uint16_t) p->max_message);
                if (r < 0)
                        goto fail;
                o->fd = socket(p->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (o->fd < 0) {
                        r = -errno;
                        goto fail;
                }
                (void) setsockopt(o->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
                if (connect(o->fd, (const struct sockaddr *) &p->addr, p->addr_len) < 0) {
                        r = -errno;
                        *reterr = config_errorf("target: cannot use %s: %s", o->target,
                                                strerror(-r));
                        goto fail;
                }
                r = encoder_reset(o);
                if (r < 0)
                        goto fail;
                r = sd_event_add_time_relative(e, &o->resend, CLOCK_MONOTONIC,
                                               p->template_resend_s * 1000000u, 0,
                                               on_udp_resend, o);
                if (r < 0)
                        goto fail;
                break;
        }
        case IPFIX_TRANSPORT_FILE: {
                RotateParams rp = {
                        .path = o->path,
                        .suffix = "ipfix",
                        .rotate_ms = p->rotate_s * 1000u,
                        .rotate_bytes = p->rotate_bytes,
                };

                o->on_message = file_on_message;
                r = encoder_init(&o->enc, OUTPUT_IPFIX_STREAM_MESSAGE);
                if (r < 0)
                        goto fail;
                r = rotate_file_new(&o->file, &rp);
                if (r < 0) {
                        *reterr = config_errorf("path: cannot use the directory of '%s': %s",
                                                o->path, strerror(-r));
                        goto fail;
                }
                r = encoder_reset(o);
                if (r < 0)
                        goto fail;
                r = sd_event_add_time_relative(e, &o->tick, CLOCK_MONOTONIC, TICK_USEC, 0,
                                               on_file_tick, o);
                if (r < 0)
                        goto fail;
                break;
        }
        default:
                r = -EINVAL;
                goto fail;
        }
        *ret = o;
        return 0;
fail:
        output_ipfix_free(o);
        return r;
}

int output_ipfix_write(OutputIpfix *o, const FlowRecord *recs, size_t n) {
        assert(o);
        if (o->closed)
                return -ESHUTDOWN;
        if (o->p.transport == IPFIX_TRANSPORT_TCP)
                return tcp_enqueue(o, recs, n);

        for (size_t i = 0; i < n; i++) {
                if (o->file) {
                        if (o->file_broken)
                                (void) encoder_reset(o);        /* templates again */
                        o->file_broken = false;
                        if (o->rotate_pending)
                                file_rotate(o);
                }
                if (encoder_append(o, &recs[i]) < 0) {
                        o->dropped++;
                        o->errors++;
                }
        }
        return 0;
}

void output_ipfix_flush(OutputIpfix *o) {
        assert(o);
        if (o->closed)
                return;
        if (o->p.transport == IPFIX_TRANSPORT_TCP) {
                if (o->st == TCP_CONNECTED)
                        tcp_send(o);
                return;
        }
        encoder_emit(o);
        if (o->file && o->rotate_pending)
                file_rotate(o);
}

uint64_t output_ipfix_close(OutputIpfix *o, uint64_t timeout_ms) {
        uint64_t before;

        assert(o);
        if (o->closed)
                return 0;
        before = o->dropped;
        switch (o->p.transport) {
        case IPFIX_TRANSPORT_TCP:
                if (o->st != TCP_CLOSED) {
                        uint64_t deadline = now_usec() + MIN(timeout_ms, UINT64_C(86400000)) * 1000u;

                        tcp_drain(o, deadline);
                        o->dropped += o->q_n + tcp_unsent_records(o);
                        o->q_n = 0;
                        o->out_len = o->out_off = 0;
                        o->marks_n = o->marks_head = 0;
                        if (o->st == TCP_CONNECTED && shutdown(o->fd, SHUT_WR) >= 0)
                                tcp_wait_acked(o, deadline);
                }
                break;
        case IPFIX_TRANSPORT_UDP:
                encoder_emit(o);
                break;
        case IPFIX_TRANSPORT_FILE: {
                int r;

                encoder_emit(o);
                r = rotate_file_close(o->file);
                if (r < 0) {
                        o->errors++;
                        log_warning("IPFIX output %s: closing the file failed: %s", o->path,
                                    strerror(-r));
                }
                break;
        }
        }
        o->io = sd_event_source_disable_unref(o->io);
        o->timer = sd_event_source_disable_unref(o->timer);
        o->resend = sd_event_source_disable_unref(o->resend);
        o->tick = sd_event_source_disable_unref(o->tick);
        o->fd = safe_close(o->fd);
        o->st = TCP_CLOSED;
        o->closed = true;
        return o->dropped - before;
}

OutputIpfix *output_ipfix_free(OutputIpfix *o) {
        if (!o)
                return NULL;
        sd_event_source_disable_unref(o->io);
        sd_event_source_disable_unref(o->timer);
        sd_event_source_disable_unref(o->resend);
        sd_event_source_disable_unref(o->tick);
        safe_close(o->fd);
        rotate_file_free(o->file);
        encoder_done(&o->enc);
        sd_event_unref(o->event);
        free(o->q);
        free(o->out);
        free(o->marks);
        free(o->target);
        free(o->path);
        free(o);
        return NULL;
}

void output_ipfix_get_stats(const OutputIpfix *o, OutputStats *ret) {
        static const char *const tcp_states[] = {
                [TCP_BACKOFF] = "backoff",
                [TCP_CONNECTING] = "connecting",
                [TCP_CONNECTED] = "connected",
                [TCP_CLOSED] = "idle",
        };

        ret->records = o->records;
        ret->messages = o->messages;
        ret->bytes = o->bytes;
        ret->dropped = o->dropped;
        ret->errors = o->errors;
        ret->reconnects = o->reconnects;
        ret->files = o->file ? rotate_file_count(o->file) : 0;
        switch (o->p.transport) {
        case IPFIX_TRANSPORT_TCP:
                ret->state = tcp_states[o->st];
                break;
        case IPFIX_TRANSPORT_UDP:
                ret->state = o->closed ? "idle" : o->error_state ? "error" : "open";
                break;
        case IPFIX_TRANSPORT_FILE:
                ret->state = o->error_state                 ? "error"
                             : rotate_file_is_open(o->file) ? "open"
                                                            : "idle";
                break;
        }
}
