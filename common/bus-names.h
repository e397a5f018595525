/* SPDX-License-Identifier: MIT */
/*
 * bus-names.h - names on the pod's private D-Bus and the contract of the two component
 * interfaces (the controller is their client). Both interfaces share this shape:
 *
 * Properties (read-only; PropertiesChanged is emitted for Ready and State only, when they
 * change):
 *   Ready          b   the data path runs and the component is not draining
 *   State          s   "starting", "running", "degraded" (collector: Redis away), "draining",
 *                      "drained"
 *   ConfigVersion  s   16 hex digits: FNV-1a 64 of the running configuration text
 *   StartedMs      t   wall clock at start, ms
 *   <counter>      t   one property per counter, named as in the metrics without the
 *                      ipfixd_<component>_ prefix and _total suffix (e.g. "records")
 * Methods:
 *   GetMetrics()           -> s   Prometheus text of every counter (as the metrics file)
 *   Validate(s config)     -> ()  parses and validates a configuration document without
 *                                 applying it; error org.ipfixd.Error.InvalidConfig whose
 *                                 message names the key
 *   Reload(s config)       -> s   "" re-reads the component's configuration file; otherwise
 *                                 applies @config (validated first, nothing changes on
 *                                 error: org.ipfixd.Error.InvalidConfig). Returns a JSON
 *                                 array of strings describing what changed.
 *   Drain()                -> ()  replies once drained (see each interface)
 * Collector only (org.ipfixd.Collector1):
 *   Listeners      a(ssqbtt)  transport, address, port, proxy_protocol, connections
 *                             accepted, records decoded (per listener)
 *   ListExporters()  -> a(sustttu)  address, odid, transport, records, bytes, last_seen_ms,
 *                                   templates
 *   ListTemplates()  -> a(suqqq)    exporter address, odid, template id, fields, scope fields
 *   Drain(): stop accepting and reading, decode what was read, hand every batch to the
 *   mediator (within shutdown_timeout_ms).
 *   Signals: ExporterConnected(s address, s transport), ExporterDisconnected(s address,
 *   s transport), TemplateLearned(s exporter, u odid, q template_id), TemplateWithdrawn(s,
 *   u, q), Degraded(s reason), Recovered()
 * Mediator only (org.ipfixd.Mediator1):
 *   ListPipelines()  -> s   JSON array: [{"name", "counters": {...}, "outputs": [{"type",
 *                           "target", "state", "counters": {...}}]}]
 *   Drain(): keeps pulling (the collector's last batches still arrive) until the input has
 *   been idle for 200 ms or shutdown_timeout_ms passed, flushes every aggregation and output.
 *   Signals: OutputStateChanged(s pipeline, s type, s target, s state), Reloaded(s changes),
 *   Degraded(s reason), Recovered()
 * Signals are rate limited (SIGNALS_PER_SECOND per component; the excess is counted in the
 * signals_dropped counter).
 */
#pragma once

#define BUS_ADDRESS_ENV "IPFIXD_BUS_ADDRESS"

#define BUS_COLLECTOR_NAME "org.ipfixd.Collector"
#define BUS_COLLECTOR_PATH "/org/ipfixd/Collector"
#define BUS_COLLECTOR_INTERFACE "org.ipfixd.Collector1"

#define BUS_MEDIATOR_NAME "org.ipfixd.Mediator"
#define BUS_MEDIATOR_PATH "/org/ipfixd/Mediator"
#define BUS_MEDIATOR_INTERFACE "org.ipfixd.Mediator1"

#define BUS_CONTROLLER_NAME "org.ipfixd.Controller"

#define BUS_ERROR_INVALID_CONFIG "org.ipfixd.Error.InvalidConfig"
#define BUS_ERROR_BUSY "org.ipfixd.Error.Busy"

#define BUS_SIGNALS_PER_SECOND 20
