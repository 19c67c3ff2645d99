/* SPDX-License-Identifier: MIT */
/*
 * shmcap shared-memory layouts. Included by <shmcap.h>; do not include
 * directly.
 *
 * These structures live in regions that several processes map, perhaps at
 * different addresses. They are an ABI: fixed-width fields, no pointers,
 * explicit reserved space, a magic number and a version first, sizes and
 * offsets asserted below. Their fields are read and written only through
 * the shmcap functions, with atomic operations; they are declared here so
 * that applications can embed the objects in their own shared structures
 * (sizeof, alignment) and so that tools can decode them.
 *
 * Every object is 64 bytes (one cache line on x86-64 and arm64). A
 * semaphore or condition must be 4-byte aligned, a mutex 8-byte aligned (as
 * their C types are); 64-byte alignment avoids false sharing with
 * neighbours.
 * Integers are in the host's byte order: processes sharing memory run on
 * one host.
 *
 * Nothing read from these fields is trusted: a peer may have written any
 * bit pattern, and the functions then fail (-EBADMSG, -ETIMEDOUT ...), never
 * crash, spin without bound or wait past their timeout.
 */
#ifndef SHMCAP_ABI_H
#define SHMCAP_ABI_H

#include <stddef.h>
#include <stdint.h>

#define SHMCAP_SYNC_SIZE 64
#define SHMCAP_SYNC_VERSION 1
#define SHMCAP_SEM_MAGIC 0x4d455353u   /* "SSEM" little-endian */
#define SHMCAP_MUTEX_MAGIC 0x54554d53u /* "SMUT" */
#define SHMCAP_COND_MAGIC 0x444e4353u  /* "SCND" */

/*
 * Semaphore.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_SEM_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      4    value     the count, 0 .. SHMCAP_SEM_VALUE_MAX; futex word
 *   12     4    sleepers  processes asleep (or about to sleep) in the kernel
 *   16     48   reserved  0
 */
typedef struct shmcap_sem {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint32_t value;
	uint32_t sleepers;
	uint32_t reserved[12];
} shmcap_sem;

/*
 * Mutex, recovered when its holder dies.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_MUTEX_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      8    owner     0 when unlocked; else bits 0-29 the holder's
 *                         thread id, bit 30 reserved (0), bit 31 "someone
 *                         sleeps", bits 32-63 the low 32 bits of the
 *                         holder's start time (clock ticks since boot, 0 if
 *                         the holder could not read it), which tells a live
 *                         holder from a recycled thread id; the 32-bit half
 *                         holding bits 0-31 (bytes 8-11 on little-endian
 *                         hosts, 12-15 on big-endian) is the futex word
 *   16     4    state     0 consistent, 1 holder died and the state is not
 *                         yet marked consistent, 2 not recoverable
 *   20     44   reserved  0
 */
typedef struct shmcap_mutex {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint64_t owner;
	uint32_t state;
	uint32_t reserved[11];
} shmcap_mutex;

/*
 * Condition variable, used with a shmcap_mutex.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_COND_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      4    seq       incremented by every signal; futex word
 *   12     4    waiters   processes waiting
 *   16     48   reserved  0
 */
typedef struct shmcap_cond {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint32_t seq;
	uint32_t waiters;
	uint32_t reserved[12];
} shmcap_cond;

/*
 * Channels (shmcap_channel_create()): a region made of a 4096-byte control
 * part and the ring after it. Declared here for tools (shmcap stat, dump)
 * and bindings that decode a channel; only the shmcap_channel_* functions
 * read and write it. src/channel.c explains the protocol.
 *
 *   offset size field
 *   0      4    magic          SHMCAP_CHANNEL_MAGIC "SCHN"
 *   4      2    version        SHMCAP_CHANNEL_VERSION
 *   6      2    kind           SHMCAP_CHANNEL_SPSC, _MPSC or _BROADCAST
 *   8      4    flags          SHMCAP_CHANNEL_LOSSY (broadcast) or 0
 *   12     4    ctrl_size      SHMCAP_CHANNEL_CTRL_SIZE: where the ring
 *                              starts
 *   16     8    capacity       ring size in bytes, a power of two
 *   24     4    max_msg        largest payload
 *   28     4    nslots         participant slots in use (SPSC 2, else 116)
 *   32     4    full_fences    non-zero: some participant cannot make
 *                              asymmetric fences; publish with full ones
 *   36     92   reserved       0
 *   128    8    tail           bytes committed by the producer(s)
 *   136    4    cons_futex     futex word the consumer sleeps on
 *   140    4    cons_sleepers  consumers asleep or about to sleep
 *   144    8    wpos           lossy broadcast: end of the bytes the
 *                              producer is about to overwrite
 *   152    4    subs_open      broadcast: subscribers attached, open
 *   156    4    subs_seen      broadcast: 1 once one attached
 *   160    4    cons_armed     non-zero: the consumer armed its notifier
 *                              (epoll); broadcast: subscribers armed
 *   164    4    reserved0      0
 *   168    8    sent           messages committed (SPSC and broadcast
 *                              producers; 0 for MPSC)
 *   176    80   reserved       0
 *   256    8    head           bytes released by the consumer
 *   264    4    prod_futex     futex word the producer(s) sleep on
 *   268    4    prod_sleepers  producers asleep or about to sleep
 *   272    8    taken          messages taken by the consumer (SPSC and
 *                              MPSC; 0 for broadcast)
 *   280    8    lost           lossy broadcast: messages overwritten
 *                              before a subscriber read them, added by
 *                              each subscriber when it finds out
 *   288    96   reserved       0
 *   384    32   slot[0]        the consumer (broadcast: a subscriber)
 *   416    32   slot[1]        the producer (MPSC: the first producer)
 *   448    3648 slot[2..115]   further producers or subscribers
 *
 * A slot: u32 state (0 free, 1 open, 2 closed, 3 being claimed), i32 pid,
 * u64 start time (clock ticks since boot, /proc/PID/stat), u64 pend_pos,
 * u64 pend_size. MPSC producers announce their reservation in pend_pos and
 * pend_size; a broadcast subscriber keeps its head in pend_pos and its
 * epoll bell in pend_size; a broadcast producer leaves its message count in
 * its pend_pos when it closes.
 *
 * Ring records are 8-aligned: u32 length, u32 tag, the payload (broadcast:
 * a 16-byte header with a u64 message number after the tag, 16-aligned).
 * SPSC and broadcast tags: "DATA" 0x41544144, or "PADD" 0x44444150 for the
 * padding that fills the end of the ring. MPSC tags carry a state in the
 * high byte ('D' committed, 'Y' being written, 'S' to skip) and the
 * producer's slot in the low byte. Counters are free-running: the bytes
 * waiting are tail - head.
 */
#define SHMCAP_CHANNEL_MAGIC 0x4e484353u /* "SCHN" little-endian */
#define SHMCAP_CHANNEL_VERSION 1
#define SHMCAP_CHANNEL_CTRL_SIZE 4096
#define SHMCAP_CHANNEL_SLOTS 116

struct shmcap_channel_header {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;
	uint32_t flags;
	uint32_t ctrl_size;
	uint64_t capacity;
	uint32_t max_msg;
	uint32_t nslots;
	uint32_t full_fences;
	uint32_t reserved[23];
};

struct shmcap_channel_prod {
	uint64_t tail;
	uint32_t cons_futex;
	uint32_t cons_sleepers;
	uint64_t wpos;
	uint32_t subs_open;
	uint32_t subs_seen;
	uint32_t cons_armed;
	uint32_t reserved0;
	uint64_t sent;
	uint32_t reserved[20];
};

struct shmcap_channel_cons {
	uint64_t head;
	uint32_t prod_futex;
	uint32_t prod_sleepers;
	uint64_t taken;
	uint64_t lost;
	uint32_t reserved[24];
};

struct shmcap_channel_slot {
	uint32_t state;
	int32_t pid;
	uint64_t start;
	uint64_t pend_pos;
	uint64_t pend_size;
};

struct shmcap_channel_ctrl {
	struct shmcap_channel_header hdr;
	struct shmcap_channel_prod prod;
	struct shmcap_channel_cons cons;
	struct shmcap_channel_slot slot[SHMCAP_CHANNEL_SLOTS];
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(shmcap_sem) == SHMCAP_SYNC_SIZE, "shmcap_sem size");
_Static_assert(offsetof(shmcap_sem, value) == 8, "shmcap_sem.value");
_Static_assert(offsetof(shmcap_sem, sleepers) == 12, "shmcap_sem.sleepers");
_Static_assert(sizeof(shmcap_mutex) == SHMCAP_SYNC_SIZE, "shmcap_mutex size");
_Static_assert(offsetof(shmcap_mutex, owner) == 8, "shmcap_mutex.owner");
_Static_assert(offsetof(shmcap_mutex, state) == 16, "shmcap_mutex.state");
_Static_assert(sizeof(shmcap_cond) == SHMCAP_SYNC_SIZE, "shmcap_cond size");
_Static_assert(offsetof(shmcap_cond, seq) == 8, "shmcap_cond.seq");
_Static_assert(offsetof(shmcap_cond, waiters) == 12, "shmcap_cond.waiters");
_Static_assert(sizeof(struct shmcap_channel_header) == 128, "channel hdr");
_Static_assert(sizeof(struct shmcap_channel_prod) == 128, "channel prod");
_Static_assert(sizeof(struct shmcap_channel_cons) == 128, "channel cons");
_Static_assert(sizeof(struct shmcap_channel_slot) == 32, "channel slot");
_Static_assert(sizeof(struct shmcap_channel_ctrl) == SHMCAP_CHANNEL_CTRL_SIZE,
	       "channel control part");
_Static_assert(offsetof(struct shmcap_channel_ctrl, prod.sent) == 168,
	       "channel sent");
_Static_assert(offsetof(struct shmcap_channel_ctrl, cons.taken) == 272,
	       "channel taken");
_Static_assert(offsetof(struct shmcap_channel_ctrl, cons.lost) == 280,
	       "channel lost");
_Static_assert(offsetof(struct shmcap_channel_ctrl, slot) == 384,
	       "channel slots");
#endif

#endif /* SHMCAP_ABI_H */
