/* SPDX-License-Identifier: MIT */
/*
 * netflow9.h - NetFlow v9 (RFC 3954) to IPFIX message translation.
 *
 * libfixbuf 2.4.1's v9 translator is attached to an fbCollector_t and is not reachable in
 * buffer mode (fBufSetBuffer), which is the only mode the collector uses. This translator
 * rewrites the packet into one IPFIX message that the normal pre-scan and decoder handle:
 * header 20 -> 16 octets, flowset 0 -> set 2, flowset 1 -> set 3 (options template record
 * layout converted), data flowsets copied. sysUpTime-relative times are resolved by the
 * decoder from the init time returned here.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NETFLOW9_HEADER_SIZE 20u

/*
 * v9 field types 32768..65535 are vendor-specific (Cisco ASA NSEL 33000-40005, Palo Alto
 * App-ID/User-ID 56701/56702, nProbe 57590+), but v9 carries no enterprise number, so their
 * owner is unknown. Each becomes an IPFIX enterprise-specific field: element id = type & 0x7fff
 * with the enterprise bit set (the same two octets as the v9 type), followed by this PEN. It
 * is a pseudo-PEN, not an enterprise's: 2^32-1 is the top of the 32-bit PEN space, far above
 * anything IANA assigns (sequentially, from 1), so it names no real vendor's elements.
 * ipfixcol2/libfds use the same value and id mapping for v9 types >= 32768, so consumers
 * (and libfds' element definitions) recognize a translated v9 vendor field by the PEN and
 * recover the v9 type as id + 32768.
 */
#define NETFLOW9_VENDOR_PEN UINT32_C(4294967295)

/* Largest result netflow9_to_ipfix() produces: the IPFIX message length field's maximum
 * (== IPFIX_MAX_MESSAGE). An output buffer of this size is always large enough. */
#define NETFLOW9_MAX_OUTPUT 65535u

/**
 * netflow9_to_ipfix() - translates one v9 packet.
 * @in, @len:    the datagram
 * @out, @cap:   output buffer. cap >= NETFLOW9_MAX_OUTPUT always suffices. The result can
 *               be longer than the input: it is len - 4 (the shorter header) + 4 octets for
 *               every field of type >= 32768 (the PEN added, see NETFLOW9_VENDOR_PEN), minus
 *               what is dropped; a smaller @cap works when the result fits.
 * @ret_len:     IPFIX message length
 * @ret_init_ms: exporter system init time, ms since the epoch (unix_secs*1000 - sysUpTime)
 * @ret_dropped: may be NULL; the number of template records dropped as malformed: v9
 *               template records with field count 0 (v9 has no withdrawal, and copied they
 *               would become IPFIX template withdrawals)
 *
 * Zero octets after the last flowset (exporters pad datagrams with up to 1220 of them) end
 * the packet; anything else that does not parse as a flowset is an error. The ret_
 * parameters are set on success only.
 *
 * Return: 0; -EBADMSG for a truncated header, a flowset that overruns the packet, non-zero
 * trailing octets that are no flowset, or a malformed template record; -EMSGSIZE if the
 * result would exceed 65535 octets (the IPFIX length field); -ENOBUFS if it would exceed a
 * @cap smaller than NETFLOW9_MAX_OUTPUT.
 */
int netflow9_to_ipfix(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len,
                      uint64_t *ret_init_ms, unsigned *ret_dropped);
