/* SPDX-License-Identifier: MIT */
/*
 * shmcap - capability-based shared memory between processes on Linux.
 *
 * This is the only public header. Every function returns 0 (or a
 * non-negative count) on success and a negative errno value on failure;
 * none reads or sets the global errno as part of its contract.
 * shmcap_strerror() and shmcap_err_name() turn an error into text.
 *
 * Layers (see shmcap(7) and docs/):
 *   1. region   - shareable memory: anonymous (memfd) or named (POSIX shm)
 *   2. cap      - a descriptor with a type and rights; derive, close, token
 *   3. transfer - send capabilities with data over a Unix socket; tokens;
 *      names    - publish capabilities under a name, look them up
 *   4. actor    - identity, spawn with named capabilities, wait, signal,
 *                 privilege, map from another actor
 *   5. sync     - semaphores, robust mutexes, conditions in shared memory;
 *      notify   - notifiers (doorbells) with a pollable descriptor
 *   6. channel  - message queues in a region: zero-copy, blocking,
 *                 one or many producers, one consumer or many subscribers
 *   7. datum    - structured values (CBOR) in a region or message
 *
 * Handles are opaque pointers with getters, so bindings never mirror a C
 * struct. All descriptors the library creates are close-on-exec. No call
 * starts a thread unless asked to (SHMCAP_ISSUER_THREAD,
 * SHMCAP_NAME_THREAD, shmcap_map_grant()).
 */
#ifndef SHMCAP_H
#define SHMCAP_H

#include <errno.h> /* results are negated errno values: -EINVAL ... */
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h> /* struct iovec: channel batches */

#include <shmcap/abi.h>
#include <shmcap/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMCAP_BUILDING) && defined(__GNUC__)
#define SHMCAP_EXPORT __attribute__((visibility("default")))
#else
#define SHMCAP_EXPORT
#endif

/* ------------------------------------------------------------------------
 * Version and errors
 */

/* The library's SHMCAP_VERSION_HEX, which may differ from the header's. */
SHMCAP_EXPORT unsigned int shmcap_version(void);

/* The library's version as "MAJOR.MINOR.PATCH". */
SHMCAP_EXPORT const char *shmcap_version_string(void);

/*
 * A static English description of the error err (a negative errno value as
 * returned by any shmcap function; a positive value is taken as its
 * negation). 0 gives "success", unknown values "unknown error". Thread-safe.
 */
SHMCAP_EXPORT const char *shmcap_strerror(int err);

/*
 * The symbolic name of err ("EINVAL" for -EINVAL or EINVAL), "OK" for 0,
 * or "UNKNOWN". Thread-safe.
 */
SHMCAP_EXPORT const char *shmcap_err_name(int err);

/*
 * Timeouts are in nanoseconds; SHMCAP_FOREVER (or any negative value) waits
 * without limit and 0 does not wait at all.
 *
 * Thread safety: a capability or mapping may be used from several threads
 * at once, but must not be closed or unmapped while another thread uses it.
 * The issuer functions may be called from any thread concurrently.
 */
#define SHMCAP_FOREVER ((int64_t)-1)

/* ------------------------------------------------------------------------
 * Capabilities
 *
 * A capability names one kernel object (its type and descriptor) and
 * carries rights. It can only be obtained by creating an object, deriving
 * it from another capability, receiving it (shmcap_recv) or resolving a
 * token (shmcap_token_resolve). A derived capability never has more rights
 * than its source.
 *
 * Which rights the kernel enforces: a region capability without
 * SHMCAP_RIGHT_WRITE is backed by an O_RDONLY descriptor, so the kernel
 * itself refuses a writable mapping of it, an mprotect() to write, write(2)
 * and ftruncate(2), whatever the holder does with the raw descriptor.
 * Re-opening /proc/self/fd/N for writing is refused to other users by the
 * region's mode bits (0444 for anonymous regions); root, and a process of
 * the creator's own user that deliberately changes the mode, can do
 * anything to the creator anyway (ptrace), so rights are not a boundary
 * between processes of one user. See docs/capabilities.md.
 */

typedef struct shmcap_cap shmcap_cap;

/* Types of object a capability can name. */
#define SHMCAP_TYPE_REGION 1
#define SHMCAP_TYPE_NOTIFIER 2
#define SHMCAP_TYPE_ACTOR 3 /* a process, through a pidfd */

/* Rights. */
#define SHMCAP_RIGHT_READ 0x1u   /* map and read a region */
#define SHMCAP_RIGHT_WRITE 0x2u  /* map writable, grow, seal a region */
#define SHMCAP_RIGHT_SIGNAL 0x4u /* signal a notifier or actor (advisory) */
#define SHMCAP_RIGHT_WAIT 0x8u   /* wait on a notifier or actor (advisory) */
#define SHMCAP_RIGHTS_REGION (SHMCAP_RIGHT_READ | SHMCAP_RIGHT_WRITE)
#define SHMCAP_RIGHTS_NOTIFIER (SHMCAP_RIGHT_SIGNAL | SHMCAP_RIGHT_WAIT)
#define SHMCAP_RIGHTS_ACTOR (SHMCAP_RIGHT_SIGNAL | SHMCAP_RIGHT_WAIT)

/* The object type of cap (SHMCAP_TYPE_*), or -EINVAL if cap is NULL. */
SHMCAP_EXPORT int shmcap_cap_type(const shmcap_cap *cap);

/* The rights of cap (SHMCAP_RIGHT_* bits), or 0 if cap is NULL. */
SHMCAP_EXPORT unsigned int shmcap_cap_rights(const shmcap_cap *cap);

/*
 * The descriptor behind cap, still owned by cap (do not close it), for
 * poll/epoll or for passing to a program that does not use shmcap.
 * -EINVAL if cap is NULL.
 */
SHMCAP_EXPORT int shmcap_cap_fd(const shmcap_cap *cap);

/*
 * Derive a new, independent capability to the same object with the given
 * rights, which must be a non-empty subset of cap's rights. A region
 * capability always includes READ (WRITE alone cannot be mapped).
 *
 * Errors: -EINVAL (NULL argument, empty or unknown rights, WRITE without
 * READ for a region), -EPERM (rights not held by cap), -EACCES (a READ-only
 * descriptor is made by re-opening /proc/self/fd/N, which the file's mode
 * bits must allow: a named region this user may not read), -ENOENT (/proc
 * not mounted), -EMFILE/-ENFILE/-ENOMEM.
 */
SHMCAP_EXPORT int shmcap_cap_derive(const shmcap_cap *cap, unsigned int rights,
				    shmcap_cap **out);

/* Release cap and its descriptor. NULL is ignored. Mappings made from it
 * stay valid until unmapped. */
SHMCAP_EXPORT void shmcap_cap_close(shmcap_cap *cap);

/* ------------------------------------------------------------------------
 * Regions
 *
 * A region is a block of shareable memory, zero-filled when created and
 * sized in whole pages (sizes are rounded up to the page size).
 *
 * Anonymous regions (shmcap_region_create) are memfds: they have no name in
 * any filesystem and vanish when the last descriptor and mapping go,
 * however the processes end. They are sealed against shrinking, so no peer
 * can ever make another's accesses fault with SIGBUS, and, unless created
 * with SHMCAP_REGION_RESIZABLE, against growing too.
 *
 * Named regions (shmcap_region_create_named) are POSIX shared memory
 * objects called "/shmcap.NAME" (files /dev/shm/shmcap.NAME). They outlive
 * every process until shmcap_region_unlink(). The kernel cannot seal them:
 * anyone who may open them for writing may also shrink them, and a process
 * that maps a shrunk region gets SIGBUS when it touches the lost pages.
 * Their access is governed by their mode bits, not by capabilities: a
 * process that knows the name and passes the mode check can open them.
 * Mapping one therefore needs SHMCAP_MAP_UNSEALED, which says "I trust
 * every process that may write this region".
 */

/* Flags for shmcap_region_create(). */
#define SHMCAP_REGION_RESIZABLE 0x1u /* may grow later (never shrink) */

/*
 * Flags reported by shmcap_region_flags(). Named regions are always
 * UNSEALED and GROWABLE: anyone who may write one may also truncate it.
 */
#define SHMCAP_REGION_UNSEALED 0x10u /* not sealed against shrinking: a
					named region, or a foreign memfd;
					mapping needs SHMCAP_MAP_UNSEALED */
#define SHMCAP_REGION_GROWABLE 0x20u /* the size may still increase */

/* Largest region size accepted: 1 TiB. */
#define SHMCAP_REGION_SIZE_MAX ((uint64_t)1 << 40)

/* Longest name accepted by the named-region functions, in bytes. */
#define SHMCAP_NAME_MAX 200

/*
 * Create an anonymous region of size bytes (rounded up to whole pages) and
 * return a capability with READ and WRITE rights.
 *
 * Errors: -EINVAL (size 0, out NULL, unknown flags), -EFBIG (size above
 * SHMCAP_REGION_SIZE_MAX), -EMFILE/-ENFILE/-ENOMEM/-ENOSPC.
 */
SHMCAP_EXPORT int shmcap_region_create(uint64_t size, unsigned int flags,
				       shmcap_cap **out);

/*
 * Create a named region exclusively: fails with -EEXIST if the name is
 * taken. mode is applied exactly (0600, 0644, 0666 ...; the umask does not
 * filter it) once the region has its size, so no other process can open it
 * half made. Returns a READ and WRITE capability.
 *
 * A name is 1 to SHMCAP_NAME_MAX bytes of printable ASCII other than space
 * and '/'.
 * Errors: -EINVAL (bad name characters, size 0, mode outside 0777, out
 * NULL), -ENAMETOOLONG, -EFBIG, -EEXIST, -EACCES, -EMFILE, -ENOSPC.
 */
SHMCAP_EXPORT int shmcap_region_create_named(const char *name, uint64_t size,
					     unsigned int mode,
					     shmcap_cap **out);

/*
 * Open an existing named region with the given rights (READ, or READ and
 * WRITE), subject to its mode bits.
 *
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT (no such name), -EACCES (mode
 * bits refuse), -EMFILE.
 */
SHMCAP_EXPORT int shmcap_region_open_named(const char *name,
					   unsigned int rights,
					   shmcap_cap **out);

/*
 * Remove a name. Processes that have it open or mapped keep their access;
 * the memory is freed when the last of them lets go.
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT, -EACCES.
 */
SHMCAP_EXPORT int shmcap_region_unlink(const char *name);

/*
 * The current size of the region in bytes, in *size. Another process may
 * grow a resizable region at any time; this returns the size now.
 * Errors: -EINVAL (not a region, NULL).
 */
SHMCAP_EXPORT int shmcap_region_size(const shmcap_cap *region, uint64_t *size);

/*
 * SHMCAP_REGION_UNSEALED and SHMCAP_REGION_GROWABLE bits describing the
 * region now, or -EINVAL (NULL, or not a region).
 */
SHMCAP_EXPORT int shmcap_region_flags(const shmcap_cap *region);

/*
 * Grow the region to new_size bytes (rounded up to whole pages); the new
 * part is zero-filled. Peers learn the new size from shmcap_region_size()
 * and map the new part with another shmcap_region_map(). Growing to the
 * current size or less does nothing and succeeds, growable or not; a region
 * never shrinks.
 * Errors: -EINVAL, -EACCES (no WRITE right), -EPERM (region is not
 * growable), -EFBIG, -ENOSPC.
 */
SHMCAP_EXPORT int shmcap_region_grow(shmcap_cap *region, uint64_t new_size);

/*
 * Fix the size of an anonymous region for ever: after this nobody can grow
 * it either. Sealing a region that is already fixed succeeds.
 * Errors: -EINVAL, -EACCES (no WRITE right), -EOPNOTSUPP (the region is
 * not sealed against shrinking: a named region), -EPERM (sealed by another
 * party against further seals).
 */
SHMCAP_EXPORT int shmcap_region_seal(shmcap_cap *region);

/* ------------------------------------------------------------------------
 * Mappings
 */

typedef struct shmcap_map shmcap_map;

/*
 * An offset from the start of a mapping. Shared memory holds offsets, never
 * pointers, because every process maps a region at its own address.
 */
typedef uint64_t shmcap_off;

/* Flags for shmcap_region_map(). */
#define SHMCAP_MAP_READ 0x1u     /* readable (always implied) */
#define SHMCAP_MAP_WRITE 0x2u    /* writable; needs SHMCAP_RIGHT_WRITE */
#define SHMCAP_MAP_FIXED 0x4u    /* exactly at addr, never replacing */
#define SHMCAP_MAP_UNSEALED 0x8u /* accept a region not sealed (named) */

/*
 * Map length bytes of the region starting at offset (a multiple of the
 * page size). length 0 maps from offset to the region's current end.
 *
 * Where: with addr NULL the kernel picks a free address; with addr set and
 * no SHMCAP_MAP_FIXED, addr is a hint that may not be honoured; with
 * SHMCAP_MAP_FIXED the mapping is placed exactly at addr (page aligned) or
 * the call fails with -EEXIST if anything is mapped there: an existing
 * mapping is never replaced. In a supervisor actor (see Privilege) addr
 * must be NULL or the address the group assigned to the region: the
 * mapping goes there (-EINVAL for any other address, -ENOSPC when the
 * group's range is full or the region outgrew the room assigned to it,
 * -EBADMSG when the group's registry is corrupt, -ETIMEDOUT when another
 * member has held the registry's lock for 10 s).
 *
 * Errors: -EINVAL (NULL, unknown flags, unaligned offset, FIXED with a
 * NULL or unaligned addr),
 * -EACCES (WRITE asked without the WRITE right, or no READ right), -EPERM
 * (region not sealed against shrinking and SHMCAP_MAP_UNSEALED not given),
 * -EOVERFLOW (offset + length wraps), -ERANGE (beyond the region's end),
 * -EEXIST (fixed address occupied), -ENOMEM.
 */
SHMCAP_EXPORT int shmcap_region_map(const shmcap_cap *region,
				    uint64_t offset, uint64_t length,
				    void *addr, unsigned int flags,
				    shmcap_map **out);

/* Unmap and free m. NULL is ignored. */
SHMCAP_EXPORT void shmcap_map_unmap(shmcap_map *m);

/* The mapping's start address, or NULL if m is NULL. */
SHMCAP_EXPORT void *shmcap_map_addr(const shmcap_map *m);

/* The mapping's length in bytes, or 0 if m is NULL. */
SHMCAP_EXPORT uint64_t shmcap_map_size(const shmcap_map *m);

/* The offset in the region at which the mapping starts, or 0. */
SHMCAP_EXPORT uint64_t shmcap_map_region_offset(const shmcap_map *m);

/*
 * Convert an offset within the mapping into a pointer, checking that the
 * len bytes at off lie wholly inside it. Use it on every offset read from
 * shared memory.
 * Errors: -EINVAL (NULL), -ERANGE (outside the mapping, or off + len
 * wraps).
 */
SHMCAP_EXPORT int shmcap_map_ptr(const shmcap_map *m, shmcap_off off,
				 uint64_t len, void **ptr);

/*
 * The offset of the len bytes at ptr within the mapping, for storing in
 * shared memory. Errors: -EINVAL (NULL), -ERANGE (not wholly inside).
 */
SHMCAP_EXPORT int shmcap_map_off(const shmcap_map *m, const void *ptr,
				 uint64_t len, shmcap_off *off);

/* ------------------------------------------------------------------------
 * Transfer
 *
 * A message carries up to SHMCAP_MSG_MAX_CAPS capabilities and up to
 * SHMCAP_MSG_MAX_DATA bytes of data over a Unix socket of type
 * SOCK_SEQPACKET or SOCK_DGRAM (a byte stream would split messages, so
 * SOCK_STREAM is refused). The receiver learns the sender's pid, uid and
 * gid as the kernel reports them (SCM_CREDENTIALS), which the sender
 * cannot forge without privilege; shmcap_recv() switches credential passing
 * on for the socket it reads when asked for them.
 *
 * Received capabilities are not trusted: each descriptor is checked to be
 * of the type the message claims (a region is a shmem file, a notifier an
 * eventfd), and a region's rights are at most what the descriptor's open
 * mode allows, whatever the sender claims.
 */

#define SHMCAP_MSG_MAX_CAPS 16
#define SHMCAP_MSG_MAX_DATA 65536

/* Flags for shmcap_send() and shmcap_recv(). */
#define SHMCAP_MSG_DONTWAIT 0x1u /* -EAGAIN instead of blocking */

/* Who sent a message, as the kernel saw it. Fixed layout. */
typedef struct shmcap_peer {
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
} shmcap_peer;

/*
 * A connected pair of SOCK_SEQPACKET Unix sockets, close-on-exec and set
 * up to report credentials, in fds[0] and fds[1]. Across fork(), each
 * process keeps one end and closes the other.
 * Errors: -EINVAL, -EMFILE, -ENFILE.
 */
SHMCAP_EXPORT int shmcap_socketpair(int fds[2]);

/*
 * Send len bytes of data and ncaps capabilities (which stay the caller's)
 * as one message on the connected socket sock. Returns 0. A message with
 * no data and no capabilities is allowed. Never raises SIGPIPE.
 *
 * Errors: -EINVAL (NULL with a non-zero count, unknown flags, NULL entry
 * in caps), -E2BIG (more than SHMCAP_MSG_MAX_CAPS), -EMSGSIZE (more than
 * SHMCAP_MSG_MAX_DATA), -EBADF, -EPROTOTYPE (SOCK_STREAM), -ENOTSOCK,
 * -EAGAIN, -EPIPE or -ECONNRESET (peer gone), -EINTR.
 */
SHMCAP_EXPORT int shmcap_send(int sock, shmcap_cap *const *caps, size_t ncaps,
			      const void *data, size_t len, unsigned int flags);

/*
 * Receive one message: up to size bytes of data into buf and up to
 * maxcaps capabilities into caps[0..*ncaps-1] (new, owned by the caller).
 * peer (optional) receives the sender's credentials (pid 0 and uid/gid
 * UINT32_MAX if the kernel gave none). Returns the number of data bytes.
 *
 * On any error no descriptor is left behind: whatever the message carried
 * is closed.
 * Errors: -EPIPE (end of stream: the peer closed its end and every message
 * was read), -EINVAL, -EMSGSIZE (data larger than size; the message is
 * consumed), -E2BIG (more capabilities than maxcaps, or more than
 * SHMCAP_MSG_MAX_CAPS sent), -EBADMSG (not a shmcap message, or a
 * descriptor that is not of the type claimed), -EACCES/-ENOENT/-EMFILE
 * (re-opening a region read-only failed: see shmcap_cap_derive()), -EBADF,
 * -EPROTOTYPE, -ENOTSOCK, -EAGAIN, -EINTR, -ECONNRESET.
 */
SHMCAP_EXPORT int shmcap_recv(int sock, shmcap_cap **caps, size_t maxcaps,
			      size_t *ncaps, void *buf, size_t size,
			      shmcap_peer *peer, unsigned int flags);

/* ------------------------------------------------------------------------
 * Tokens
 *
 * A token is a printable form of a capability, for argv, the environment
 * or a file. It does not contain the descriptor: resolving it asks the
 * issuing process (its issuer) for a copy, and the issuer checks the
 * token's 128-bit random key and the caller's uid first. The issuer answers
 * only while it lives and serves requests: in a background thread
 * (SHMCAP_ISSUER_THREAD) or when the owner calls shmcap_issuer_dispatch(),
 * e.g. when shmcap_issuer_fd() is readable in its event loop.
 *
 * Form: "shmcap:1:UID:INSTANCE:ID:KEY" (UID decimal, INSTANCE 32 hex
 * digits naming the issuer, ID decimal, KEY 32 hex digits), at most
 * SHMCAP_TOKEN_MAX bytes with the terminating NUL. See docs/tokens.md.
 */

typedef struct shmcap_issuer shmcap_issuer;

#define SHMCAP_TOKEN_MAX 128

/* Flags for shmcap_issuer_create(). */
#define SHMCAP_ISSUER_THREAD 0x1u /* serve requests from a thread */

/* Flags for shmcap_token_issue(). */
#define SHMCAP_TOKEN_ONCE 0x1u    /* revoked once a resolution succeeds */
#define SHMCAP_TOKEN_ANY_UID 0x2u /* any user may resolve it */

/*
 * Create an issuer: a datagram socket in the abstract Unix namespace under
 * a random name. With SHMCAP_ISSUER_THREAD a thread answers requests until
 * shmcap_issuer_destroy().
 * Errors: -EINVAL, -EMFILE, -ENOMEM, -EAGAIN (no thread).
 */
SHMCAP_EXPORT int shmcap_issuer_create(unsigned int flags,
				       shmcap_issuer **out);

/*
 * Revoke every token of iss, stop its thread, close its socket and free it.
 * NULL is ignored.
 */
SHMCAP_EXPORT void shmcap_issuer_destroy(shmcap_issuer *iss);

/* A descriptor that is readable when requests wait, or -EINVAL. */
SHMCAP_EXPORT int shmcap_issuer_fd(const shmcap_issuer *iss);

/*
 * Answer the requests waiting, waiting up to timeout_ns for the first.
 * Returns the number of datagrams handled: requests granted or refused,
 * and malformed ones dropped unanswered.
 * Errors: -EINVAL (NULL, or the issuer has its own thread), -EINTR.
 */
SHMCAP_EXPORT int shmcap_issuer_dispatch(shmcap_issuer *iss,
					 int64_t timeout_ns);

/*
 * Issue a token for cap into buf (at least SHMCAP_TOKEN_MAX bytes is
 * always enough). The issuer keeps its own copy of the capability until
 * the token is revoked, so the caller may close cap. By default only
 * processes whose uid equals the issuer's effective uid may resolve it.
 * Returns the token's length, not counting the terminating NUL.
 * Errors: -EINVAL, -ENOSPC (buf too small), -ENOMEM, -EMFILE.
 */
SHMCAP_EXPORT int shmcap_token_issue(shmcap_issuer *iss, const shmcap_cap *cap,
				     unsigned int flags, char *buf,
				     size_t size);

/*
 * Revoke a token issued by iss: later resolutions fail with -EKEYREVOKED.
 * Errors: -EINVAL (malformed), -ENOENT (not issued by iss), -EKEYREVOKED
 * (already revoked).
 */
SHMCAP_EXPORT int shmcap_token_revoke(shmcap_issuer *iss, const char *token);

/*
 * Resolve a token into a new capability, waiting up to timeout_ns for the
 * issuer to answer. Only a reply from the issuer's own address, sent by a
 * process of the uid written in the token and echoing this request's
 * random nonce, is accepted; anything else arriving is discarded.
 * Errors: -EINVAL (malformed), -ESRCH (the issuer is gone), -EACCES (wrong
 * key, or uid not allowed), -ENOENT (no such token), -EKEYREVOKED,
 * -ETIMEDOUT (the issuer did not answer), -EBADMSG (bad reply), -EMFILE.
 */
SHMCAP_EXPORT int shmcap_token_resolve(const char *token, int64_t timeout_ns,
				       shmcap_cap **out);

/* ------------------------------------------------------------------------
 * Names
 *
 * An actor publishes capabilities under a name; any actor on the host (in
 * the same network namespace) looks them up. A name is an abstract Unix
 * socket, "shmcap-name-NAME", that the publisher listens on: it needs no
 * file and no daemon, and the kernel removes it the moment the publisher
 * closes it, exits or is killed, so a name never outlives its publisher.
 * A second publisher of a live name gets -EEXIST.
 *
 * Requests are answered while the publisher serves them: in a background
 * thread (SHMCAP_NAME_THREAD) or when the owner calls shmcap_name_dispatch(),
 * e.g. when shmcap_name_fd() is readable in its event loop.
 *
 * Access rule, checked against the credentials the kernel reports for the
 * client (uid, gid and supplementary groups): uid 0 gets everything; the
 * publisher's effective uid and the uids added with shmcap_name_allow() get
 * the owner bits of mode; the publisher's effective gid and added gids get
 * the group bits; everyone else the other bits -- as shm_open()'s mode.
 * Read (4) lets a client look the name up and receive the capabilities with
 * READ and WAIT rights only; write (2) adds WRITE and SIGNAL. A client with
 * neither, or whose capabilities would be left without rights, gets
 * -EACCES. A region capability is never handed out without READ.
 *
 * Names: 1 to SHMCAP_PUBLISHED_NAME_MAX bytes of letters, digits and
 * "._-/"; names starting with "shmcap." are reserved.
 */

typedef struct shmcap_name shmcap_name;

#define SHMCAP_PUBLISHED_NAME_MAX 90 /* longest published name, in bytes */

/* Flags for shmcap_name_publish(). */
#define SHMCAP_NAME_THREAD 0x1u /* serve lookups from a thread */

/* Kinds for shmcap_name_allow(). */
#define SHMCAP_ALLOW_UID 1
#define SHMCAP_ALLOW_GID 2

/*
 * A request handler for shmcap_name_publish_fn(): called once per client
 * request, in the serving thread or in shmcap_name_dispatch(), with the
 * client's credentials and the request's bytes (req_len may be 0). It
 * fills caps[0..n) with new capabilities (the library sends and then
 * closes them) and up to *reply_len bytes of reply (on entry the room,
 * SHMCAP_MSG_MAX_DATA; on return the length used), and returns n
 * (0 to max_caps) or a negative errno that the client receives as its
 * result. The access rule has already been applied (the client is allowed
 * at least read), and the capabilities returned are limited by it. A
 * count above max_caps, a NULL among the first n entries or a reply
 * longer than the room gives the client -EIO (every capability filled in
 * is closed). A handler must not unpublish its own name.
 */
typedef int (*shmcap_name_fn)(void *arg, const shmcap_peer *client,
			      const void *req, size_t req_len,
			      shmcap_cap **caps, size_t max_caps, void *reply,
			      size_t *reply_len);

/*
 * Publish the ncaps capabilities in caps (copied: the caller may close its
 * own) under name, with the access rule mode (0600, 0644, 0666, ...).
 * ncaps may be 0: a client then learns only that the name lives.
 * Errors: -EINVAL (NULL, a malformed or reserved name, bad flags or mode
 * bits beyond 0777), -ENAMETOOLONG, -E2BIG (more than SHMCAP_MSG_MAX_CAPS),
 * -EEXIST (a live publisher holds the name), -EMFILE, -ENOMEM, -EAGAIN (no
 * thread).
 */
SHMCAP_EXPORT int shmcap_name_publish(const char *name,
				      shmcap_cap *const *caps, size_t ncaps,
				      unsigned int mode, unsigned int flags,
				      shmcap_name **out);

/*
 * Publish name with a handler that answers each request, for servers that
 * hand every client its own objects. Errors as shmcap_name_publish().
 */
SHMCAP_EXPORT int shmcap_name_publish_fn(const char *name, shmcap_name_fn fn,
					 void *arg, unsigned int mode,
					 unsigned int flags, shmcap_name **out);

/*
 * Let the user (SHMCAP_ALLOW_UID) or group (SHMCAP_ALLOW_GID) id use the
 * owner or group bits of the rule. Takes effect for the next request.
 * Errors: -EINVAL, -ENOSPC (more than 64 entries), -ENOMEM.
 */
SHMCAP_EXPORT int shmcap_name_allow(shmcap_name *n, int kind, uint32_t id);

/* A descriptor readable when lookups wait, or -EINVAL. */
SHMCAP_EXPORT int shmcap_name_fd(const shmcap_name *n);

/*
 * Answer the requests waiting, waiting up to timeout_ns for the first.
 * Returns how many requests were handled (answered, refused, or dropped).
 * A client that connects and sends nothing is dropped after a short grace
 * period (50 ms for all clients accepted together, at most 64 per round),
 * so it cannot stall the caller. One thread at a time may dispatch a name.
 * Errors: -EINVAL (NULL, or n has its own thread), -EINTR, -EMFILE.
 */
SHMCAP_EXPORT int shmcap_name_dispatch(shmcap_name *n, int64_t timeout_ns);

/*
 * Withdraw the name (it vanishes at once), stop its thread, close its
 * capabilities and free n. NULL is ignored. Not from n's own handler. A
 * child of fork() inherits the listening socket (the name lives while any
 * process holds it; exec closes it) but not the thread; unpublishing in
 * the child closes only the child's copies.
 */
SHMCAP_EXPORT void shmcap_name_unpublish(shmcap_name *n);

/*
 * Look name up: receive up to max_caps capabilities into caps (new, owned
 * by the caller), with rights limited by the name's access rule. Returns
 * how many. Waits up to timeout_ns for the answer; if the publisher dies
 * meanwhile the call returns -ESRCH at once, not at the timeout. A
 * request the publisher dropped unanswered (it came after the grace
 * period) is sent again on a new connection, three times at most.
 * Errors: -EINVAL (NULL, malformed name), -ENAMETOOLONG, -ENOENT (nobody
 * publishes name), -ESRCH (the publisher ended during the lookup), -EACCES
 * (the rule refuses this caller), -E2BIG (more capabilities than
 * max_caps; none is kept), -ETIMEDOUT, -EBADMSG (a malformed reply),
 * -ECONNRESET (dropped unanswered three times), -EIO (the publisher's
 * handler misbehaved), -EMFILE, or an error the publisher's handler
 * returned. A name starting with "shmcap." is not refused: nobody can
 * publish it, so it gives -ENOENT.
 */
SHMCAP_EXPORT int shmcap_name_lookup(const char *name, shmcap_cap **caps,
				     size_t max_caps, int64_t timeout_ns);

/*
 * Send a request of req_len bytes to name's handler and receive its
 * capabilities (count in *ncaps, which may be NULL only if max_caps is 0)
 * and up to reply_size bytes of reply. Returns the reply's length. A name
 * published with fixed capabilities ignores the request and replies with
 * no bytes. shmcap_name_lookup() on a handler's name sends no bytes and
 * ignores the reply's.
 * Errors: as shmcap_name_lookup(), and -EMSGSIZE (request above
 * SHMCAP_MSG_MAX_DATA, or reply larger than reply_size; nothing is kept).
 */
SHMCAP_EXPORT int shmcap_name_request(const char *name, const void *req,
				      size_t req_len, shmcap_cap **caps,
				      size_t max_caps, size_t *ncaps,
				      void *reply, size_t reply_size,
				      int64_t timeout_ns);

/*
 * The L4Re get_shared_buffer(ds, irq) pattern: look name up and expect a
 * region followed by a notifier, as a server publishes them to share a
 * buffer and a doorbell with each client that asks.
 * Errors: as shmcap_name_lookup(), and -EPROTO (the name does not hold
 * exactly a region then a notifier; nothing is kept).
 */
SHMCAP_EXPORT int shmcap_shared_buffer_get(const char *name,
					   int64_t timeout_ns,
					   shmcap_cap **region,
					   shmcap_cap **notifier);

/* ------------------------------------------------------------------------
 * Actors
 *
 * An actor is a process. Its local id is its pid (ChorusOS's aid); its id
 * is 128 bits unique across hosts, boots and pid reuse: the first 8 bytes
 * come from the kernel's random boot id (/proc/sys/kernel/random/boot_id),
 * the last 8 name the process within that boot -- the pidfs inode number
 * of its pid where the kernel has pidfs (6.9 and later, never reused
 * within a boot), else its start time in clock ticks times 2^22 plus its
 * pid. Any actor can compute the id of another from its pid, so ids are
 * not secrets. Text form: 32 lowercase hex digits. See docs/actors.md.
 *
 * An actor capability (SHMCAP_TYPE_ACTOR) holds a pidfd: it keeps naming
 * the same process even after the pid is reused, so signalling and
 * waiting through it are race-free. Its SIGNAL and WAIT rights are
 * advisory; the kernel applies its own rule to signals (same uid or
 * CAP_KILL).
 */

/* An actor's 128-bit id: a plain value, compared with memcmp. */
typedef struct shmcap_actor_id {
	uint8_t bytes[16];
} shmcap_actor_id;

#define SHMCAP_ACTOR_ID_TEXT 33 /* 32 hex digits and the NUL */

/*
 * The calling actor's local id (pid), and its id in *id unless id is
 * NULL. Errors: -ENOENT (/proc not mounted), -EMFILE, -EIO.
 */
SHMCAP_EXPORT int shmcap_self(shmcap_actor_id *id);

/*
 * An actor capability (SIGNAL and WAIT) for the calling actor.
 * Errors: -EINVAL, -EMFILE, -ENOSYS (kernel before 5.3), and those of
 * shmcap_self().
 */
SHMCAP_EXPORT int shmcap_actor_self(shmcap_cap **out);

/*
 * An actor capability for the process pid. With expect set, fails with
 * -ESRCH unless that process's id is *expect: the way to name an actor
 * from its text form without mistaking a process that reused its pid.
 * Errors: -EINVAL (pid < 1), -ESRCH (no such process, or another id),
 * -EMFILE, -ENOSYS (kernel without pidfd, before 5.3).
 */
SHMCAP_EXPORT int shmcap_actor_open(int32_t pid, const shmcap_actor_id *expect,
				    shmcap_cap **out);

/*
 * The actor's local id (pid, in the caller's pid namespace), or -EINVAL
 * if actor is not an actor cap, or -ESRCH if it is unknown: the
 * capability was received after the process had ended and been reaped,
 * or from a pid namespace the caller does not see.
 */
SHMCAP_EXPORT int shmcap_actor_pid(const shmcap_cap *actor);

/*
 * The actor's id. Errors: -EINVAL, -ESRCH (unknown: only on a kernel
 * without pidfs, for a capability received after the process had been
 * reaped).
 */
SHMCAP_EXPORT int shmcap_actor_id_of(const shmcap_cap *actor,
				     shmcap_actor_id *id);

/*
 * Write the text form of id into buf (SHMCAP_ACTOR_ID_TEXT bytes suffice).
 * Returns 32. Errors: -EINVAL, -ENOSPC.
 */
SHMCAP_EXPORT int shmcap_actor_id_format(const shmcap_actor_id *id, char *buf,
					 size_t size);

/* Parse the text form (exactly 32 hex digits). Errors: -EINVAL. */
SHMCAP_EXPORT int shmcap_actor_id_parse(const char *text, shmcap_actor_id *id);

/*
 * 1 while the actor runs, 0 once it has ended (a zombie has ended).
 * Errors: -EINVAL, -EACCES (no WAIT right).
 */
SHMCAP_EXPORT int shmcap_actor_alive(const shmcap_cap *actor);

/*
 * Send signal sig (0 tests that it could be sent) to the actor.
 * Errors: -EINVAL (also sig out of range), -EACCES (no SIGNAL right),
 * -EPERM (the kernel refuses: another user), -ESRCH (it has ended, even
 * if not yet reaped).
 */
SHMCAP_EXPORT int shmcap_actor_signal(const shmcap_cap *actor, int sig);

/*
 * Wait up to timeout_ns for the actor to end. For a child of the caller
 * the child is reaped and *status (if not NULL) receives its wait status
 * (WIFEXITED, WEXITSTATUS, WTERMSIG...); for any other actor *status is
 * set to -1, as only its parent may collect it (so is it for a child
 * that another thread or capability reaped first, or when SIGCHLD is
 * ignored and the kernel reaps children itself). A second wait on a
 * reaped child returns 0 with the status it had.
 * Errors: -EINVAL, -EACCES (no WAIT right), -ETIMEDOUT, -EINTR (a signal
 * handler ran).
 */
SHMCAP_EXPORT int shmcap_actor_wait(shmcap_cap *actor, int64_t timeout_ns,
				    int *status);

/* ------------------------------------------------------------------------
 * Spawning actors (ChorusOS afexecve, arun)
 *
 * shmcap_spawn() starts a program with named capabilities. The child finds
 * each by name with shmcap_env_cap(), as L4Re's env()->get_cap("shm"),
 * with no socket set-up. The i-th capability is descriptor 3 + i in the
 * child and the environment variable SHMCAP_CAPS lists them as
 * "PID;NAME:FD:TYPE:RIGHTS,NAME:FD:TYPE:RIGHTS..." (PID the child's pid in
 * 10 digits, the rest decimal), so a program that does not use shmcap
 * simply gets the descriptors. Standard input, output and error are
 * inherited; every other descriptor of the parent is closed in the child,
 * so nothing is inherited by accident. The child keeps the caller's
 * signal mask and ignored signals, as across execve(); no signal handler
 * of the caller ever runs in it.
 *
 * The child is created with clone(CLONE_PIDFD | CLONE_VM | CLONE_VFORK):
 * the parent gets a pidfd atomically (no window in which the pid could be
 * reused) and learns synchronously whether exec succeeded, so a missing
 * or non-executable program is an error in the parent.
 */

#define SHMCAP_SPAWN_MAX_CAPS 64

/* Flags for shmcap_spawn(). */
#define SHMCAP_SPAWN_PATH 0x1u       /* search PATH for a file without '/' */
#define SHMCAP_SPAWN_SUPERVISOR 0x2u /* start a supervisor actor */

/*
 * Start file with argv and envp (NULL: the caller's environment) and
 * caps[i] available under names[i] (the caller keeps its capabilities).
 * Returns the child's pid; *actor (if not NULL) receives an actor
 * capability for it with SIGNAL and WAIT rights. The caller should
 * eventually shmcap_actor_wait() for it.
 *
 * The child's environment is envp without any SHMCAP_CAPS and
 * SHMCAP_PRIVILEGE, plus its own SHMCAP_CAPS (listing no capability if
 * ncaps is 0). With SHMCAP_SPAWN_PATH a file without '/' is looked for in
 * the directories of the caller's PATH ("/bin:/usr/bin" if unset) as
 * execvp() does, but a file that is not a program is -ENOEXEC, never run
 * by /bin/sh.
 *
 * Errors: -EINVAL (NULL file or argv, bad flags, a NULL cap, a name that
 * is empty, too long (over 63 bytes), repeated, starting with "shmcap."
 * (reserved) or holds other than letters, digits and "._-/"), -E2BIG
 * (more than SHMCAP_SPAWN_MAX_CAPS, or argv and environment too large),
 * -ENOENT, -EACCES, -ENOEXEC, -ENOTDIR, -ELOOP, -ETXTBSY (as execve would
 * report them for file), -EPERM (SHMCAP_SPAWN_SUPERVISOR in secure mode
 * by a caller whose effective uid is not 0), -EAGAIN, -EMFILE, -ENOMEM,
 * -ENOSYS (kernel before 5.2).
 */
SHMCAP_EXPORT int shmcap_spawn(const char *file, char *const argv[],
			       char *const envp[], const char *const names[],
			       shmcap_cap *const caps[], size_t ncaps,
			       unsigned int flags, shmcap_cap **actor);

/*
 * The capability the spawning actor passed under name, as a new
 * capability (each call makes a new one). The descriptors listed in
 * SHMCAP_CAPS are made close-on-exec on the first call, so they are not
 * passed on to programs this actor executes. Each is checked to be what
 * the list claims (a region is a shmem file, a notifier an eventfd, an
 * actor a pidfd), and gets no more rights than its descriptor allows.
 *
 * The list is read and checked once, on the first successful call, and
 * kept: a child of fork() of this actor inherits it with the descriptors,
 * if the actor called shmcap_env_cap() before forking; otherwise the
 * child finds the list made for another process (-ENOENT), as does any
 * program started from it with fork and exec.
 * Errors: -EINVAL (NULL), -ENOENT (no capability of that name, no
 * SHMCAP_CAPS, or a list made for another process), -EBADMSG (SHMCAP_CAPS
 * malformed, or the descriptor is not what it claims), -EMFILE, -ENOMEM.
 */
SHMCAP_EXPORT int shmcap_env_cap(const char *name, shmcap_cap **out);

/* ------------------------------------------------------------------------
 * Privilege (ChorusOS user and supervisor actors)
 *
 * A user actor maps regions wherever it likes. Supervisor actors share
 * one address layout within their group: a region that any member maps
 * with shmcap_region_map() is placed at the address the group assigned to
 * it, in the reserved range [SHMCAP_SUPERVISOR_BASE, + _SIZE), so raw
 * pointers into it stay valid between members. If that address is taken
 * in a member, the map fails with -EEXIST; nothing is ever replaced.
 *
 * A supervisor spawned by a supervisor joins its parent's group and starts
 * with every region its parent had mapped for the group already mapped at
 * the group's addresses. A supervisor spawned by a user actor, or a user
 * actor that becomes a supervisor, founds a new group.
 *
 * Secure mode (on when the file /etc/shmcap/secure exists or the
 * environment holds SHMCAP_SECURE=1; passed on to every actor spawned):
 * only an effective uid 0 may start a supervisor actor or become one, and
 * a process whose effective uid is not 0 is never taken for a supervisor.
 * Outside secure mode the privilege is a convention between cooperating
 * programs, not a protection. See docs/privilege.md.
 */

#define SHMCAP_PRIV_USER 0
#define SHMCAP_PRIV_SUPERVISOR 1

#define SHMCAP_SUPERVISOR_BASE UINT64_C(0x7e8000000000)
#define SHMCAP_SUPERVISOR_SIZE UINT64_C(0x4000000000) /* 256 GiB */

/*
 * The privilege (SHMCAP_PRIV_*) of actor, or of the caller if actor is
 * NULL. For another actor it is read from the environment it was started
 * with (so one that called shmcap_privilege_set() is seen as it started).
 * Errors: -EINVAL, -ESRCH (ended), -EACCES (another user's process),
 * -EAGAIN (it has been inside execve() for 2 s), or the error that made
 * the caller's joining of its group fail at start.
 */
SHMCAP_EXPORT int shmcap_privilege(const shmcap_cap *actor);

/*
 * Make the caller a supervisor (founding a new group) or a user actor
 * (leaving its group; its mappings stay where they are).
 * Errors: -EINVAL, -EPERM (secure mode and effective uid not 0), -ENOMEM,
 * -EMFILE.
 */
SHMCAP_EXPORT int shmcap_privilege_set(int privilege);

/* 1 if secure mode is on for the caller, else 0. */
SHMCAP_EXPORT int shmcap_secure_mode(void);

/* ------------------------------------------------------------------------
 * Mapping from another actor (ChorusOS rgnMapFromActor)
 *
 * An actor grants access to one of its mappings with shmcap_map_grant();
 * another actor then names an address range in the granting actor's
 * address space and gets the region behind it mapped into its own, with
 * no more rights than the grant gives. Grants are served by a thread the
 * first grant starts (on the abstract socket "shmcap-actor-ID", ID being
 * the actor's id, so a process that reuses a dead actor's pid never
 * answers for it); the thread and the grants end with the actor. The
 * thread stays when every grant is withdrawn. A child of fork() serves
 * none of its parent's grants: its copies of granted mappings are not
 * granted. See docs/names.md.
 *
 * The unit of sharing is the region: what an allowed actor receives is a
 * descriptor for the whole region behind the granted range (with the
 * granted rights), which the library maps only in part but a hostile
 * actor could map whole. Grant mappings of regions you would share
 * entirely; a descriptor cannot be limited to a range.
 */

/* Flag for shmcap_map_from_actor(): place the mapping at the address it
 * has in the source actor (never replacing anything: -EEXIST). */
#define SHMCAP_MAP_SAME 0x10u

/*
 * Let other actors map m's range with at most rights (READ, or READ and
 * WRITE), subject to the access rule mode as for names (0600: this user
 * only). region is the capability m was mapped from; the grant keeps its
 * own copy with those rights. Granting again replaces the rights and rule.
 * Unmapping m revokes the grant.
 * Errors: -EINVAL (NULL, bad rights or mode, region is not the one m
 * maps), -EPERM (rights beyond region's), -EAGAIN (no thread), -EADDRINUSE
 * (another process has bound this actor's address: ids are not secret),
 * -ENOMEM, -EMFILE.
 */
SHMCAP_EXPORT int shmcap_map_grant(shmcap_map *m, const shmcap_cap *region,
				   unsigned int rights, unsigned int mode);

/* Withdraw m's grant. Errors: -EINVAL, -ENOENT (not granted). */
SHMCAP_EXPORT int shmcap_map_revoke(shmcap_map *m);

/*
 * Map length bytes found at src_addr in actor's address space (both page
 * aligned; length 0 means to the end of that granted mapping) into the
 * caller: anywhere (addr NULL), at addr (SHMCAP_MAP_FIXED), or at src_addr
 * (SHMCAP_MAP_SAME, addr NULL). flags also take SHMCAP_MAP_WRITE (asks for
 * the WRITE right) and SHMCAP_MAP_UNSEALED (the grant is of a named
 * region). The new mapping is the caller's own: it stays valid when the
 * grant is withdrawn or the actor ends. Only the process actor names
 * answers: the listener's pid is checked, and the actor's end while the
 * call waits is -ESRCH at once.
 * Errors: -EINVAL, -ESRCH (the actor ended, or has never granted
 * anything), -ENOENT (no granted mapping covers the range, which includes
 * every range once all grants are withdrawn), -EACCES (rule or rights
 * refuse), -EEXIST (the fixed or same address is occupied), -ETIMEDOUT,
 * -EBADMSG, -ECONNRESET (as for shmcap_name_lookup()), -ENOMEM, -EMFILE.
 */
SHMCAP_EXPORT int shmcap_map_from_actor(const shmcap_cap *actor,
					const void *src_addr, uint64_t length,
					void *addr, unsigned int flags,
					int64_t timeout_ns, shmcap_map **out);

/* ------------------------------------------------------------------------
 * Lifetime
 *
 * Everything an actor holds is released by the kernel when it ends,
 * however it ends (SIGKILL included): its descriptors and so its
 * capabilities, its mappings, its published names and grants (their
 * sockets close), its issuers and their tokens, and the mutexes it held
 * (the next locker recovers them, see shmcap_mutex_lock()). An anonymous
 * region disappears when the last descriptor and mapping of it anywhere go.
 * A group of supervisor actors is such a region and ends with its last
 * member; a supervisor keeps a descriptor of each region it mapped for
 * its group, to pass on to the supervisors it spawns, until it has
 * unmapped the region and then maps another or spawns.
 *
 * What is not tied to any actor -- ChorusOS calls such resources
 * "anonymous" -- must be released explicitly, as its seed programs do: a
 * named region lives until shmcap_region_unlink() (leftovers show as
 * /dev/shm/shmcap.*), and the state of an object inside a region (a
 * semaphore's count, a message) lives as long as the region. A child
 * actor is a process like any other: it outlives its spawner unless
 * waited for or signalled.
 */

/* ------------------------------------------------------------------------
 * Synchronisation in shared memory
 *
 * Semaphores (shmcap_sem), mutexes (shmcap_mutex) and condition variables
 * (shmcap_cond) are 64-byte records that live inside a region, at any
 * offset aligned as their C type (64 bytes avoids false sharing). Their
 * layout is in <shmcap/abi.h>. Processes may map the region at different
 * addresses. Any number of threads and processes may use one object at
 * once.
 *
 * Waiting spins for a short while before sleeping in the kernel, because
 * a peer that answers within microseconds is far cheaper to watch than to
 * be woken by (see shmcap_spin_set()); a post, unlock or signal makes a
 * system call only when a waiter is asleep.
 *
 * The memory is shared with peers that may be buggy or hostile: a record
 * that does not carry its magic number and version, or holds a value out of
 * range, gives -EBADMSG; no bit pattern makes a call crash, spin without
 * bound, or wait past its timeout (a wait with SHMCAP_FOREVER may of course
 * wait for ever, and so may the re-lock in shmcap_cond_wait()).
 */

/* Largest semaphore value. */
#define SHMCAP_SEM_VALUE_MAX 0x7fffffffu

/*
 * Set how long a waiter spins before sleeping, in nanoseconds, for this
 * process (0: sleep at once). The default is 50000 (50 us; 0 when only one
 * CPU is online), or the value of the environment variable SHMCAP_SPIN_NS
 * (a decimal number; anything else is ignored). Returns the previous value,
 * or -EINVAL if ns is negative. After its first microsecond a spinning
 * waiter yields the CPU between looks, so a peer that shares its core still
 * runs; the budget is what an idle waiter burns before it sleeps.
 */
SHMCAP_EXPORT int64_t shmcap_spin_set(int64_t ns);

/*
 * Initialise a semaphore with value (0 .. SHMCAP_SEM_VALUE_MAX). Only one
 * process does this, before any other uses it.
 * Errors: -EINVAL (NULL, misaligned, value too large).
 */
SHMCAP_EXPORT int shmcap_sem_init(shmcap_sem *sem, uint32_t value);

/*
 * P: take one unit, waiting up to timeout_ns for one to be posted.
 * Signals that interrupt the sleep are absorbed (the wait goes on).
 * Errors: -ETIMEDOUT, -EINVAL,
 * -EBADMSG (not an initialised semaphore, or corrupt).
 */
SHMCAP_EXPORT int shmcap_sem_wait(shmcap_sem *sem, int64_t timeout_ns);

/*
 * P without waiting: -EAGAIN if the value is 0 (or kept changing through a
 * thousand attempts); else as shmcap_sem_wait.
 */
SHMCAP_EXPORT int shmcap_sem_trywait(shmcap_sem *sem);

/*
 * V: add one unit and wake one waiter if any sleeps. Async-signal-safe
 * (atomic operations and a futex wake only): a signal handler may post to
 * wake a thread that waits.
 * Errors: -EOVERFLOW (already SHMCAP_SEM_VALUE_MAX), -EINVAL, -EBADMSG,
 * -EBUSY (the value kept changing under us for 100 ms: a peer scribbling
 * on it).
 */
SHMCAP_EXPORT int shmcap_sem_post(shmcap_sem *sem);

/* The current value (a snapshot), or -EINVAL/-EBADMSG. */
SHMCAP_EXPORT int shmcap_sem_value(const shmcap_sem *sem);

/*
 * Initialise a mutex, unlocked. Only one process does this, before any
 * other uses it. Errors: -EINVAL.
 */
SHMCAP_EXPORT int shmcap_mutex_init(shmcap_mutex *mutex);

/*
 * Lock, waiting up to timeout_ns. The holder is the calling thread.
 *
 * If the holder died (a thread or process that ended, even by SIGKILL,
 * while holding it), the lock is taken over and -EOWNERDEAD is returned:
 * the caller holds the mutex, must repair the data it protects and call
 * shmcap_mutex_consistent(), then unlock. If it unlocks without doing so,
 * the mutex becomes unusable and every later lock gives -ENOTRECOVERABLE.
 * A waiter notices a dead holder within about 8 ms (usually 1-2 ms), by
 * reading /proc/TID/stat (docs/sync.md). All processes that share a mutex
 * must be in one pid namespace (thread ids identify holders).
 *
 * Errors: -EOWNERDEAD (locked, see above), -ETIMEDOUT, -EDEADLK (the
 * caller holds it already), -ENOTRECOVERABLE, -EINVAL, -EBADMSG. A peer
 * that keeps rewriting the lock word can only delay the call, up to its
 * timeout, and not spin it at full speed (it backs off).
 */
SHMCAP_EXPORT int shmcap_mutex_lock(shmcap_mutex *mutex, int64_t timeout_ns);

/*
 * Lock if free: -EBUSY if held (trylock does not check whether the holder
 * lives; shmcap_mutex_lock does), -EDEADLK if held by the caller; else as
 * shmcap_mutex_lock.
 */
SHMCAP_EXPORT int shmcap_mutex_trylock(shmcap_mutex *mutex);

/*
 * Unlock; wakes one waiter if any sleeps. Errors: -EPERM (the caller does
 * not hold it), -EINVAL, -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_mutex_unlock(shmcap_mutex *mutex);

/*
 * Mark the state protected by a mutex consistent again after
 * -EOWNERDEAD. Errors: -EINVAL (the caller does not hold it, or it is not
 * in the owner-died state), -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_mutex_consistent(shmcap_mutex *mutex);

/* Initialise a condition variable. Errors: -EINVAL. */
SHMCAP_EXPORT int shmcap_cond_init(shmcap_cond *cond);

/*
 * Unlock mutex (held by the caller), wait up to timeout_ns for a signal or
 * broadcast, then lock mutex again before returning. timeout_ns bounds the
 * wait for a signal; the re-lock waits as long as the mutex is held by a
 * live holder, as with pthread_cond_timedwait(). Wake-ups may be spurious
 * (a signal handler's interruption is one): wait in a loop that tests the
 * condition.
 *
 * Returns 0 or -ETIMEDOUT with the mutex held, or -EOWNERDEAD with the
 * mutex held and its previous holder dead (see shmcap_mutex_lock()).
 * Errors with the mutex NOT held: -ENOTRECOVERABLE, -EBADMSG and
 * -EDEADLK (a peer wrote the caller's own id into the lock) from the
 * re-lock. Errors before waiting, the mutex left as it was:
 * -EPERM (not held by the caller), -EINVAL, -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_cond_wait(shmcap_cond *cond, shmcap_mutex *mutex,
				   int64_t timeout_ns);

/* Wake one waiter. Errors: -EINVAL, -EBADMSG. */
SHMCAP_EXPORT int shmcap_cond_signal(shmcap_cond *cond);

/* Wake every waiter. Errors: -EINVAL, -EBADMSG. */
SHMCAP_EXPORT int shmcap_cond_broadcast(shmcap_cond *cond);

/* ------------------------------------------------------------------------
 * Notifiers
 *
 * A notifier is a doorbell (an eventfd): signals add up until a waiter
 * takes them all. Its descriptor (shmcap_cap_fd) is readable while signals
 * are pending, for poll/epoll. It is a capability like a region: derive,
 * send, token.
 *
 * SIGNAL and WAIT rights are advisory: the library refuses what a
 * capability lacks, but the kernel cannot, as an eventfd has no read-only
 * or write-only form. Anyone holding the descriptor can do both with
 * read(2)/write(2).
 */

/*
 * Create a notifier with SIGNAL and WAIT rights.
 * Errors: -EINVAL, -EMFILE, -ENFILE, -ENOMEM.
 */
SHMCAP_EXPORT int shmcap_notifier_create(shmcap_cap **out);

/*
 * Signal. Does not block (a hostile holder that clears the descriptor's
 * O_NONBLOCK and fills the counter within the same microsecond can make it
 * wait for a waiter; see src/notify.c).
 * Errors: -EINVAL (not a notifier), -EACCES (no SIGNAL right), -EBADF.
 */
SHMCAP_EXPORT int shmcap_notifier_signal(shmcap_cap *notifier);

/*
 * Wait up to timeout_ns for signals and take them all. Returns how many
 * arrived since the last wait (at least 1; capped at INT_MAX; 1 per wait
 * for a foreign eventfd made with EFD_SEMAPHORE).
 * Errors: -ETIMEDOUT, -EINVAL, -EACCES (no WAIT right), -EBADMSG (a short
 * read), -EBADF, -ENOMEM.
 */
SHMCAP_EXPORT int shmcap_notifier_wait(shmcap_cap *notifier,
				       int64_t timeout_ns);

/* ------------------------------------------------------------------------
 * Channels
 *
 * A channel is a message queue inside a region: a 4096-byte control part
 * followed by a data ring of exactly the configured capacity (layout and
 * algorithms: src/channel.c and docs/channels.md). Messages have any size
 * from 0 to the maximum set at creation and arrive whole, in order, once.
 * The region may be mapped at a different address in every process.
 *
 * Kinds: SHMCAP_CHANNEL_SPSC, one producer and one consumer;
 * SHMCAP_CHANNEL_MPSC, up to SHMCAP_CHANNEL_PRODUCERS_MAX producers (each
 * its own handle, in any processes) and one consumer: each producer's
 * messages arrive in its order; messages of different producers are
 * interleaved in the order of their reservations;
 * SHMCAP_CHANNEL_BROADCAST, one producer and up to
 * SHMCAP_CHANNEL_SUBSCRIBERS_MAX subscribers (each opens the role
 * SHMCAP_CHANNEL_CONSUMER), every subscriber receiving every message sent
 * after it attached. By default the slowest subscriber holds the
 * producer back; with SHMCAP_CHANNEL_LOSSY the producer never waits and
 * overwrites what a slow subscriber has not read, the subscriber skips
 * to the newest messages and shmcap_channel_missed() says exactly how many
 * it lost (lossy subscribers use the copying receive only:
 * shmcap_channel_recv_ptr() gives -EOPNOTSUPP). A broadcast producer
 * gets -EPIPE once every subscriber that attached is gone (a lossy
 * producer never does); with no subscriber it sends into the void.
 *
 * Zero-copy: the producer reserves space in the ring, writes the message
 * there and commits it; the consumer reads it in place and releases it.
 * The copying calls do the same with one memcpy.
 *
 * Waiting: timeout_ns 0 never waits (-EAGAIN when there is no message or
 * no room), SHMCAP_FOREVER waits without limit, anything else up to that
 * many nanoseconds (-ETIMEDOUT). A waiting side spins briefly (see
 * shmcap_spin_set()), then sleeps on a futex; a send or release makes a
 * system call only when the peer sleeps. A full ring holds the producer
 * back (back-pressure).
 *
 * Each role (each producer or subscriber slot) is taken by one open in
 * the channel's life. When the producer has closed its handle or died
 * (even by SIGKILL, even in the middle of a message, which is then never
 * seen), the consumer receives what was committed and then gets -EPIPE;
 * with many producers,
 * once some producer attached and every producer that did has closed or
 * died (a message left uncommitted by a dead producer is skipped, and
 * does not hold back the others'). When the consumer has closed its
 * handle, a producer gets -EPIPE; when it died, a producer learns it once
 * the ring is full (death is found through the pid and start time each
 * side records, so all must be in one pid namespace).
 *
 * The control part and the ring are shared with a peer that may be buggy
 * or hostile: any corruption of the header, counters or records gives
 * -EBADMSG, on both sides once noticed, and the handle stays unusable; no
 * bit pattern makes a call crash, read or write outside the region, or
 * wait past its timeout.
 *
 * Concurrency: a handle belongs to the process that opened it and is used
 * by one thread at a time (lock it yourself to share it between threads);
 * the producer's and the consumer's handles are used concurrently.
 */

typedef struct shmcap_channel shmcap_channel;

/* Channel kinds. */
#define SHMCAP_CHANNEL_SPSC 1 /* one producer, one consumer */
#define SHMCAP_CHANNEL_MPSC 2 /* many producers, one consumer */
#define SHMCAP_CHANNEL_BROADCAST 3 /* one producer, many subscribers */

/* Flag for shmcap_channel_create() (broadcast only). */
#define SHMCAP_CHANNEL_LOSSY 0x1u /* overwrite what slow subscribers miss */

/* Most subscribers of a SHMCAP_CHANNEL_BROADCAST channel. */
#define SHMCAP_CHANNEL_SUBSCRIBERS_MAX 115

/* Most producers of a SHMCAP_CHANNEL_MPSC channel. */
#define SHMCAP_CHANNEL_PRODUCERS_MAX 115

/* Roles for shmcap_channel_open(). */
#define SHMCAP_CHANNEL_PRODUCER 1
#define SHMCAP_CHANNEL_CONSUMER 2

/* Limits: ring capacity (a power of two, at least 64) and message size. */
#define SHMCAP_CHANNEL_CAPACITY_MAX ((uint64_t)1 << 36)
#define SHMCAP_CHANNEL_MSG_MAX (1u << 30)

/*
 * Create a channel of kind with a ring of capacity bytes (a power of two
 * from 64 to SHMCAP_CHANNEL_CAPACITY_MAX) for messages of up to max_msg
 * bytes, where 8 + max_msg rounded up to a multiple of 8 (broadcast: 16,
 * and 16) must not exceed capacity / 2 (a message never wraps around the
 * ring's end). Returns in
 * *region a new anonymous region (READ and WRITE) of 4096 + capacity
 * bytes, rounded up to pages, holding the empty channel; pass it to the
 * participants, who attach with shmcap_channel_open(). flags: 0, or
 * SHMCAP_CHANNEL_LOSSY for a broadcast channel.
 *
 * Errors: -EINVAL (region NULL, flags, unknown kind, bad capacity or
 * max_msg), and those of shmcap_region_create() and shmcap_region_map().
 */
SHMCAP_EXPORT int shmcap_channel_create(int kind, uint64_t capacity,
					uint32_t max_msg, unsigned int flags,
					shmcap_cap **region);

/*
 * Attach to the channel in region as its producer or consumer (role
 * SHMCAP_CHANNEL_PRODUCER or SHMCAP_CHANNEL_CONSUMER). The region is
 * mapped, its header validated, and the role recorded with the caller's
 * pid and start time. Either side may open first: a producer may send
 * before the consumer attaches, a consumer waits for a producer. flags
 * must be 0.
 *
 * Errors: -EINVAL (NULL, not a region, role, flags), -EACCES (the
 * capability lacks WRITE), -EBUSY (the role was already taken, by a live,
 * closed or dead participant; for many producers: all producer slots
 * were), -EBADMSG (not a channel, or corrupt),
 * -ENOMEM, and those of shmcap_region_map().
 */
SHMCAP_EXPORT int shmcap_channel_open(const shmcap_cap *region, int role,
				      unsigned int flags,
				      shmcap_channel **out);

/*
 * Detach and free ch; NULL is ignored. A reservation not committed is
 * dropped; a message held with shmcap_channel_recv_ptr() is not released.
 * The peer is woken: a consumer drains and then gets -EPIPE; a producer
 * gets -EPIPE. The role cannot be taken again.
 */
SHMCAP_EXPORT void shmcap_channel_close(shmcap_channel *ch);

/* The ring's capacity in bytes, and the largest message; 0 if ch is NULL. */
SHMCAP_EXPORT uint64_t shmcap_channel_capacity(const shmcap_channel *ch);
SHMCAP_EXPORT uint32_t shmcap_channel_max_msg(const shmcap_channel *ch);

/*
 * Producer: reserve room for a message of up to len bytes and return in
 * *ptr where to write it (8-byte aligned, contiguous, inside the ring),
 * waiting up to timeout_ns for room. Nothing is visible to the consumer
 * until shmcap_channel_commit(). One reservation at a time.
 *
 * Errors: -EAGAIN (timeout 0 and no room), -ETIMEDOUT, -EPIPE (the
 * consumer closed, or died), -EMSGSIZE (len > max_msg), -EINVAL (NULL,
 * not the producer, a reservation already pending), -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_channel_reserve(shmcap_channel *ch, size_t len,
					 void **ptr, int64_t timeout_ns);

/*
 * Producer: publish the reserved message with its final length len (at
 * most the reserved length) and wake the consumer if it sleeps. Never
 * blocks. Errors: -EINVAL (no reservation, len too large), -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_channel_commit(shmcap_channel *ch, size_t len);

/*
 * Producer: send a copy of the len bytes at data, waiting up to
 * timeout_ns for room. Errors as shmcap_channel_reserve().
 */
SHMCAP_EXPORT int shmcap_channel_send(shmcap_channel *ch, const void *data,
				      size_t len, int64_t timeout_ns);

/*
 * Producer: send up to n messages (msgs[i].iov_base, msgs[i].iov_len)
 * with one publication and at most one wake-up. Waits up to timeout_ns for
 * room for the first; the others are sent while they fit. Returns how many
 * were sent (at least 1), or an error as shmcap_channel_send() if none was
 * (-EINVAL also if one beyond the first is longer than max_msg). With many
 * producers each message is committed on its own (others may come
 * between them).
 */
SHMCAP_EXPORT int shmcap_channel_send_batch(shmcap_channel *ch,
					    const struct iovec *msgs,
					    size_t n, int64_t timeout_ns);

/*
 * Consumer: wait up to timeout_ns for the next message and return its
 * length, with *ptr pointing to it in the ring (and *len, if not NULL,
 * set to the length too). The message stays in place, and the producer
 * does not reuse its room, until shmcap_channel_release(). Read it, do
 * not write it; it may be read while the producer writes other messages.
 * A hostile producer may change the bytes while they are read: copy what
 * must not change before validating it.
 *
 * Errors: -EAGAIN (timeout 0 and no message), -ETIMEDOUT, -EPIPE (no
 * message, and the producer closed or died), -EINVAL (NULL, not the
 * consumer, a message still held), -EBADMSG (corrupt channel).
 */
SHMCAP_EXPORT int shmcap_channel_recv_ptr(shmcap_channel *ch, const void **ptr,
					  size_t *len, int64_t timeout_ns);

/*
 * Consumer: give the room of the message returned by
 * shmcap_channel_recv_ptr() back to the producer, waking it if it sleeps.
 * Never blocks. Errors: -EINVAL (no message held), -EBADMSG.
 */
SHMCAP_EXPORT int shmcap_channel_release(shmcap_channel *ch);

/*
 * Consumer: wait up to timeout_ns for the next message, copy it to buf
 * (size bytes) and release it; returns its length. A message longer than
 * size stays in the channel and the call fails with -EMSGSIZE. Otherwise
 * errors as shmcap_channel_recv_ptr().
 */
SHMCAP_EXPORT int shmcap_channel_recv(shmcap_channel *ch, void *buf,
				      size_t size, int64_t timeout_ns);

/*
 * Consumer: receive up to n messages into msgs[i].iov_base (room
 * msgs[i].iov_len, which is set to each message's length) with one
 * release. Waits up to timeout_ns for the first; then takes those already
 * there. Returns how many were received (at least 1), or an error as
 * shmcap_channel_recv() if none was. It stops early at a message too long
 * for its buffer, which stays in the channel.
 */
SHMCAP_EXPORT int shmcap_channel_recv_batch(shmcap_channel *ch,
					    struct iovec *msgs, size_t n,
					    int64_t timeout_ns);

/*
 * Subscriber of a lossy broadcast channel: how many messages were
 * overwritten before this subscriber could read them, since the last
 * call (exact; the count restarts at 0). 0 for other consumers.
 * Errors: -EINVAL (NULL, not a consumer's handle).
 */
SHMCAP_EXPORT int64_t shmcap_channel_missed(shmcap_channel *ch);

/*
 * Readiness for poll/epoll. SPSC and MPSC channels: an eventfd cannot
 * live in shared memory, so the application creates a notifier
 * (shmcap_notifier_create()) and gives it, next to the channel's region,
 * to every participant, who attaches it to its handle: producers need
 * SHMCAP_RIGHT_SIGNAL, the consumer SHMCAP_RIGHT_WAIT. The handle keeps
 * its own derived copy (the caller may close its capability); calling
 * again replaces it.
 *
 * The consumer polls shmcap_channel_fd() and receives with timeout 0
 * until -EAGAIN. A non-blocking receive that finds the channel empty
 * arms the notifier (a flag in the control part); the next commit of
 * any producer that has the notifier set clears the flag and signals
 * once. So the descriptor becomes readable when a message arrives after
 * the consumer drained the channel, a busy channel costs no system call,
 * and one arming gives at most one signal; a receive after an answered
 * arming empties the eventfd again. A producer's close also signals. A
 * killed producer does not: poll with a timeout to learn of its death
 * (or of an MPSC message it left unfinished) through a receive. Readiness
 * may be spurious (then the receive gives -EAGAIN and re-arms); a
 * hostile peer can clear the flag and withhold wake-ups, nothing worse.
 * Blocking receives keep using the futex and may be mixed in.
 *
 * Broadcast channels take no notifier (subscribers cannot share one: the
 * first to empty it would hide the readiness from the others). Instead a
 * subscriber's shmcap_channel_fd() is its own descriptor, made at the
 * first call: a datagram socket at an abstract address named by a random
 * number kept in its slot, to which a producer that finds it armed sends
 * one byte. The same rules hold (armed by a receive that finds nothing,
 * at most one ring per arming, readable only after the subscriber went
 * idle, the producer's close rings). Anyone on the host may send to the
 * socket: that gives spurious readiness, which the next receive empties.
 *
 * set_notifier errors: -EINVAL (NULL, not a notifier), -EACCES (the right
 * the role needs is missing), -EOPNOTSUPP (broadcast), and those of
 * shmcap_cap_derive().
 * fd: the descriptor to poll (owned by ch: do not close it); errors
 * -EINVAL (NULL, not the consumer), -ENOENT (SPSC, MPSC: no notifier
 * set), -EBADMSG (broken handle); a broadcast subscriber's first call also
 * those of socket(2) and bind(2).
 */
SHMCAP_EXPORT int shmcap_channel_set_notifier(shmcap_channel *ch,
					      shmcap_cap *notifier);
SHMCAP_EXPORT int shmcap_channel_fd(shmcap_channel *ch);

/* ------------------------------------------------------------------------
 * Datum
 *
 * Structured values in a region or a channel message: integers (int64),
 * floats (double), booleans, nil, text (UTF-8), byte strings, symbols,
 * lists, vectors and maps, nested to any depth up to
 * SHMCAP_DATUM_DEPTH_MAX. A "datum frame" is a 4-byte little-endian
 * length N followed by exactly N bytes holding one CBOR data item (RFC
 * 8949) with definite lengths; see docs/datum.md and src/datum.c.
 *
 * The writer encodes into caller memory (a mapping, a channel
 * reservation, any buffer), always in preferred (shortest) form. The
 * reader decodes in place: text, symbols and bytes come back as views into
 * the frame, nothing is copied or allocated per value. Writers and readers
 * are allocated once and reset for each frame; a handle is used by one
 * thread at a time.
 *
 * Types (shmcap_datum_next()) and their CBOR form:
 *   NIL     null (simple value 22)    BOOL    false / true
 *   INT     major type 0 or 1, int64 range only
 *   FLOAT   float16, float32 or float64, read as double; the writer emits
 *           the shortest width that holds the value exactly (NaN: f97e00)
 *   TEXT    text string, valid UTF-8  BYTES   byte string
 *   SYMBOL  tag SHMCAP_DATUM_TAG_SYMBOL (39, "identifier") on a text string
 *   LIST    array                     MAP     map; keys are any datum
 *   VECTOR  tag SHMCAP_DATUM_TAG_VECTOR on an array (not IANA-registered)
 * Depth: a top-level value has depth 0, the elements of a container at
 * depth d have depth d + 1; no value may be deeper than
 * SHMCAP_DATUM_DEPTH_MAX (a container at that depth is refused, even
 * empty). Frames are at most INT_MAX bytes.
 */

typedef struct shmcap_datum_writer shmcap_datum_writer;
typedef struct shmcap_datum_reader shmcap_datum_reader;

#define SHMCAP_DATUM_NIL 1
#define SHMCAP_DATUM_BOOL 2
#define SHMCAP_DATUM_INT 3
#define SHMCAP_DATUM_FLOAT 4
#define SHMCAP_DATUM_TEXT 5
#define SHMCAP_DATUM_BYTES 6
#define SHMCAP_DATUM_SYMBOL 7
#define SHMCAP_DATUM_LIST 8
#define SHMCAP_DATUM_VECTOR 9
#define SHMCAP_DATUM_MAP 10

#define SHMCAP_DATUM_TAG_SYMBOL 39
#define SHMCAP_DATUM_TAG_VECTOR 38633
#define SHMCAP_DATUM_DEPTH_MAX 256

/*
 * Writer. new allocates a writer for buf (size bytes; NULL and 0 give a
 * writer to reset later); reset starts a new frame in another buffer,
 * clearing any error. The frame's first value goes at buf + 4. The writer
 * only writes buf, never reads it back, so buf may be shared memory.
 *
 * The put and begin calls append one value; begin_list and begin_vector
 * announce n elements, begin_map npairs pairs (2 * npairs values: key,
 * value, key, value ...), which must follow. Errors are sticky: after a
 * failure every call returns it, and shmcap_datum_finish() too.
 *
 * Errors: -EINVAL (NULL, buf NULL with size > 0, a second top-level value,
 * a put after finish), -ENOSPC (the value does not fit in the buffer, or
 * in INT_MAX bytes; a container announcing more values than bytes are
 * left), -EILSEQ (text or symbol not valid UTF-8), -ELOOP (a container
 * deeper than SHMCAP_DATUM_DEPTH_MAX), -ENOMEM (new).
 */
SHMCAP_EXPORT int shmcap_datum_writer_new(void *buf, size_t size,
					  shmcap_datum_writer **w);
SHMCAP_EXPORT int shmcap_datum_writer_reset(shmcap_datum_writer *w, void *buf,
					    size_t size);
SHMCAP_EXPORT void shmcap_datum_writer_free(shmcap_datum_writer *w);
SHMCAP_EXPORT int shmcap_datum_put_nil(shmcap_datum_writer *w);
SHMCAP_EXPORT int shmcap_datum_put_bool(shmcap_datum_writer *w, int v);
SHMCAP_EXPORT int shmcap_datum_put_int(shmcap_datum_writer *w, int64_t v);
SHMCAP_EXPORT int shmcap_datum_put_float(shmcap_datum_writer *w, double v);
SHMCAP_EXPORT int shmcap_datum_put_text(shmcap_datum_writer *w, const char *s,
					size_t len);
SHMCAP_EXPORT int shmcap_datum_put_bytes(shmcap_datum_writer *w, const void *p,
					 size_t len);
SHMCAP_EXPORT int shmcap_datum_put_symbol(shmcap_datum_writer *w,
					  const char *s, size_t len);
SHMCAP_EXPORT int shmcap_datum_begin_list(shmcap_datum_writer *w, size_t n);
SHMCAP_EXPORT int shmcap_datum_begin_vector(shmcap_datum_writer *w, size_t n);
SHMCAP_EXPORT int shmcap_datum_begin_map(shmcap_datum_writer *w,
					 size_t npairs);

/*
 * End the frame: write the length prefix and return the frame's total
 * size (4 + N), or the first error: -ENOSPC (size < 4 included),
 * -EILSEQ, -ELOOP, -EINVAL; or -EINVAL, not sticky, when there is no value
 * yet or a container is not complete (the frame may still be completed).
 * May be called again (same result); further puts give -EINVAL.
 */
SHMCAP_EXPORT int shmcap_datum_finish(shmcap_datum_writer *w);

/*
 * Reader. new allocates a reader and, unless frame is NULL and size 0,
 * resets it to frame; reset points it at a frame of up to size bytes (the
 * frame's length prefix tells its real size) and validates the whole
 * frame first, without recursion, so hostile input never overflows the
 * stack. On error new frees what it allocated; a reader whose reset failed
 * gives that error from next() until the next successful reset.
 *
 * Errors: -EINVAL (NULL arguments), -EBADMSG (truncated, malformed,
 * invalid UTF-8, length prefix beyond size, bytes after the value, no
 * value), -ERANGE (an integer outside int64), -EOPNOTSUPP (valid CBOR
 * outside the data model: indefinite lengths, undefined, other simple
 * values, other tags, tags 39 or SHMCAP_DATUM_TAG_VECTOR on the wrong
 * type), -ELOOP (deeper than SHMCAP_DATUM_DEPTH_MAX), -ENOMEM (new).
 */
SHMCAP_EXPORT int shmcap_datum_reader_new(const void *frame, size_t size,
					  shmcap_datum_reader **r);
SHMCAP_EXPORT int shmcap_datum_reader_reset(shmcap_datum_reader *r,
					    const void *frame, size_t size);
SHMCAP_EXPORT void shmcap_datum_reader_free(shmcap_datum_reader *r);

/*
 * The next value in pre-order (a container first, then its elements):
 * its type (> 0), 0 after the last value, or a negative errno (sticky).
 * The frame may be shared with a writer that keeps changing it after
 * validation: next() reads each header once and re-checks every length
 * and bound it uses, never reads outside the frame and always ends; it may
 * then fail with the errors of reset. UTF-8 is checked only by reset: a
 * text view may change under the reader, so copy what must not change.
 */
SHMCAP_EXPORT int shmcap_datum_next(shmcap_datum_reader *r);

/*
 * Getters for the value next() returned last; -EINVAL if it has another
 * type, or there is none. get_text serves TEXT and SYMBOL: a view into the
 * frame, not NUL-terminated. get_count: elements of a LIST or VECTOR,
 * pairs of a MAP.
 */
SHMCAP_EXPORT int shmcap_datum_get_bool(shmcap_datum_reader *r); /* 0, 1 */
SHMCAP_EXPORT int shmcap_datum_get_int(shmcap_datum_reader *r, int64_t *v);
SHMCAP_EXPORT int shmcap_datum_get_float(shmcap_datum_reader *r, double *v);
SHMCAP_EXPORT int shmcap_datum_get_text(shmcap_datum_reader *r,
					const char **s, size_t *len);
SHMCAP_EXPORT int shmcap_datum_get_bytes(shmcap_datum_reader *r,
					 const void **p, size_t *len);
SHMCAP_EXPORT int64_t shmcap_datum_get_count(shmcap_datum_reader *r);

/*
 * After next() returned a container: pass over all of its contents, so
 * that the following next() returns the value after it. Then no value is
 * current. Errors: -EINVAL (the current value is not a container), those
 * of next().
 */
SHMCAP_EXPORT int shmcap_datum_skip(shmcap_datum_reader *r);

/* Depth of the current value (0: top level); -EINVAL if there is none. */
SHMCAP_EXPORT int shmcap_datum_depth(shmcap_datum_reader *r);

/*
 * The frame's value as text, snprintf-like: writes at most outsize bytes
 * (NUL-terminated when outsize > 0) and returns the length of the whole
 * text, without the NUL, or a negative errno: those of reset, -EOVERFLOW
 * (longer than INT_MAX). Notation (Scheme): integers in decimal; floats
 * in the fewest digits that read back exactly, spelled as Python's repr
 * but always with '.' or an exponent (1.5, 1.0, 1e+16, 5e-324, +inf.0,
 * -inf.0, +nan.0); #t #f; #nil;
 * "text" with \" \\ \n \t and \xHH; for other control characters;
 * symbols bare, or as |a b| when they need quoting; bytes #vu8(99 98 97);
 * lists (1 2 3); vectors #(3 4); maps #hash((k . v) ...). Thus the list
 * of 1, 2, a vector of 3 and 4, the symbol ciao, the text hello and the
 * bytes "cba" prints as (1 2 #(3 4) ciao "hello" #vu8(99 98 97)).
 */
SHMCAP_EXPORT int shmcap_datum_format(const void *frame, size_t size,
				      char *out, size_t outsize);

#ifdef __cplusplus
}
#endif

#endif /* SHMCAP_H */
