/* SPDX-License-Identifier: MIT */
/*
 * Channels: message queues inside a region, with zero-copy send and
 * receive, blocking without polling, back-pressure and peer-death
 * detection.
 *
 * Overview
 * --------
 * A channel is a region made of a 4096-byte control part and a data ring
 * of exactly the configured capacity (a power of two) right after it. The
 * producer appends records at `tail`, the consumer takes them at `head`;
 * both are free-running 64-bit byte counters that never wrap in practice
 * (2^64 bytes) and are reduced modulo the capacity only to address the
 * ring. Their unsigned difference tail - head is the number of bytes in
 * use, whatever their absolute values, which is why they are compared by
 * difference and never by `<`.
 *
 * A record is an 8-byte header (u32 length, u32 tag) followed by the
 * payload, padded to a multiple of 8. A record never wraps around the end
 * of the ring: when the space left before the end is too small, the
 * producer first writes a padding record that fills it, so that the space
 * handed out for zero-copy writing, and the message read in place, are
 * always contiguous. For that to be possible whatever the position, a
 * record may take at most half the ring: 8 + max_msg (rounded up to 8)
 * <= capacity / 2.
 *
 * The control part's layout, byte by byte, is in include/shmcap/abi.h
 * (struct shmcap_channel_ctrl): a read-only header, the producer's line
 * (tail, the consumer's sleep state, the epoll arming, the producer's
 * message count), the consumer's line (head, the producers' sleep state,
 * the consumer's message count) and 116 participant slots.
 *
 * pend_pos and pend_size are used by MPSC producers: the reservation
 * they are making (UINT64_MAX: none), announced before it is claimed. A
 * broadcast subscriber (any slot but 1) keeps its head in pend_pos and
 * its bell in pend_size (0: none; else the even name of its socket, plus
 * 1 while armed); a broadcast producer leaves its message count in
 * pend_pos when it closes.
 *
 * Broadcast records have a 16-byte header (u32 length, u32 tag, u64
 * message number) and are 16-aligned; otherwise as SPSC records. See
 * docs/channels.md for the join protocol and the lossy mode's seqlock.
 *
 * Records (ring offsets, 8-aligned): u32 length, u32 tag, then the
 * payload. SPSC tags: CH_REC_DATA, or CH_REC_PAD whose length is the
 * number of bytes after its header up to the end of the ring. MPSC tags:
 * a state in the high byte (MP_BUSY being written, MP_DATA committed,
 * MP_SKIP to pass over: padding, the unused end of a reservation, a dead
 * producer's record), the producer's slot in the low byte, 0 between; an
 * all-zero header is a reservation whose header is not written yet (the
 * MPSC consumer zeroes what it consumed). See "Many producers" below.
 *
 * The producer's line (tail, and the consumer's sleep state, which the
 * producer reads at every commit) and the consumer's line (head, and the
 * producer's sleep state) are 128 bytes apart, so that neither side's
 * writes evict the other's line, including the adjacent-line prefetch of
 * x86. Each side keeps its own counter in its handle, never reads it back
 * from shared memory, and caches the other side's counter, reading it
 * again only when the cached value says the ring is empty (consumer) or
 * full (producer): on a busy channel each side touches the other's line
 * about once per batch of messages, not once per message.
 *
 * Readiness for epoll (SPSC, MPSC): the application passes a notifier
 * (an eventfd) next to the region; each handle keeps a derived copy
 * (shmcap_channel_set_notifier()). A non-blocking receive that finds the
 * ring empty arms: it stores cons_armed (seq_cst), fences and looks
 * again. Every producer commit, after its seq_cst publication, loads the
 * flag and, only if it is non-zero, clears it by compare-and-swap and
 * signals once (ring_bell()). The store-buffer pairing of the futex
 * sleepers again: either the consumer's second look sees the message or
 * the producer sees the flag. A receive that gets a message after
 * arming takes the arming back: it clears a flag nobody cleared, or
 * empties the eventfd that a producer signalled (cons_disarm()). So the
 * descriptor is readable only after the consumer drained and went idle,
 * and a busy channel makes no system call. The flag lives in the
 * producer's line, which producers write anyway, not in the consumer's;
 * any non-zero value is "armed". See docs/channels.md.
 *
 * Broadcast subscribers cannot share one notifier (the first to empty it
 * would hide the readiness from the others), and the producer cannot
 * hold a descriptor of each. So a subscriber's descriptor is its own
 * "bell": a datagram socket at an abstract address named by a random
 * 64-bit nonce it keeps in its slot. Arming sets the slot's low bit and
 * counts the subscriber in cons_armed; a producer that finds the count
 * non-zero after publishing looks for armed slots, clears each bit by
 * compare-and-swap and sends that bell one byte. Anyone may send to an
 * abstract address: a stranger can cause spurious readiness, no more.
 *
 * Implementation notes
 * --------------------
 * - Publication. The producer writes payload and header with plain
 *   stores and then publishes the new tail; the consumer's acquire load of
 *   tail pairs with that store, so everything before it is visible. The
 *   consumer publishes head after it has finished reading in place; the
 *   producer's acquire load of head pairs with it, so it never overwrites
 *   bytes still being read.
 * - Sleeping without lost wake-ups. This is sync.c's pairing: a sleeper
 *   reads its futex word, increments its sleeper count (seq_cst), reads
 *   the other side's counter again and sleeps only if nothing changed; a
 *   waker stores its counter and then reads the sleeper count, and only
 *   if it is non-zero bumps the futex word and calls FUTEX_WAKE. With a
 *   full fence on each side between its store and its load, one of the
 *   two sees the other's write (store-buffer pattern); the waker's fence
 *   is paid by the sleeper ("Asymmetric fences" below). So a side that
 *   is awake, spinning or busy costs its peer no system call. Waiting
 *   first spins with the policy of sync.c (shmcap__spin_while32():
 *   pause, then sched_yield, within the shmcap_spin_set() budget).
 * - Peer death. Each participant records its pid and start time in its
 *   slot. A waiting side checks at most once per millisecond, and after
 *   every sleep slice (1 ms doubling to 128 ms), whether the peer lives
 *   (shmcap__proc_alive(): kill(pid, 0) and /proc/PID/stat, as the robust
 *   mutex does). A producer that dies before publishing tail exposes
 *   nothing: a half-written message is never seen. The consumer returns
 *   what was committed, then -EPIPE.
 * - Hostile memory. The geometry (capacity, max_msg) is read once at open
 *   and checked against the region's size; afterwards only the local copy
 *   is used. Every value read from shared memory is checked before use:
 *   the peer's counter must move forward by at most the capacity and stay
 *   8-aligned (tail - head <= capacity for the consumer, head within
 *   [previous head, tail] for the producer); a record's tag must be known,
 *   its length at most max_msg, and it must lie inside the published bytes
 *   and before the end of the ring; a padding record must end exactly at
 *   the end of the ring, and two in a row are refused; the magic, version
 *   and kind are compared at every call. A violation gives -EBADMSG and
 *   the handle stays broken. The record header is copied out of shared
 *   memory once and only the copy is checked and used. Loops are bounded
 *   by the deadline: a peer that keeps bumping our futex word can make a
 *   call spin until its timeout, not crash it or read out of bounds.
 *
 * Concurrency: one channel handle is used by one thread at a time; the
 * producers and the consumer run concurrently in any processes. SPSC
 * calls are wait-free when they do not block, and block only for lack of
 * data or room, up to their timeout. MPSC reservations are lock-free (a
 * compare-and-swap on tail; lost races back off like sync.c's); the MPSC
 * consumer also waits for the record at head to be committed, or its
 * producer to be found dead.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "atomic.h"

/* The control part's layout is public: include/shmcap/abi.h. */
#define CH_MAGIC SHMCAP_CHANNEL_MAGIC
#define CH_VERSION SHMCAP_CHANNEL_VERSION
#define CH_CTRL_SIZE SHMCAP_CHANNEL_CTRL_SIZE
#define CH_NSLOTS_MAX SHMCAP_CHANNEL_SLOTS
#define CH_REC_HDR 8
#define BC_REC_HDR 16		/* broadcast records also carry a u64 number */
#define CH_REC_DATA 0x41544144u /* "DATA" */
#define CH_REC_PAD 0x44444150u	/* "PADD" */
#define CH_CAPACITY_MIN 64

/* The helpers of every send and receive: no call overhead on the path. */
#define HOT inline __attribute__((always_inline))

/* Participant slot states. */
#define SLOT_FREE 0
#define SLOT_OPEN 1
#define SLOT_CLOSED 2
#define SLOT_CLAIMING 3 /* being filled in by the opener */

#define SLOT_CONSUMER 0
#define SLOT_PRODUCER 1

/* How often a waiting side checks that its peer lives, at most. */
#define LIVE_CHECK_NS 1000000
#define SLICE_MIN_NS 1000000
/*
 * A sleeper wakes after 1, 2, 4 ... ms, at most every 128 ms, to see
 * whether its peer still lives: a killed peer cannot wake it, and an idle
 * waiter that woke every few milliseconds would cost ~2 % of a core.
 */
#define SLICE_MAX_NS 128000000

/*
 * Looks at the peer's counter before the timed spin of sync.c: about a
 * microsecond, the reply time of a peer that is awake on another core.
 */
#define QUICK_SPINS 256

/*
 * A non-blocking call that finds the channel not ready reads the clock
 * (to rate-limit the liveness check) only once in this many: a caller
 * that polls in a loop would otherwise spend most of its time there. A
 * closed peer is still seen at once (its slot state is read every time).
 */
#define POLLS_PER_CHECK 64

_Static_assert(SHMCAP_CHANNEL_PRODUCERS_MAX == CH_NSLOTS_MAX - 1, "slots");
_Static_assert(offsetof(struct shmcap_channel_ctrl, prod.cons_armed) == 160,
	       "armed");

struct shmcap_channel {
	/* Hot fields first: what every send or receive touches. */
	uint8_t *ring;
	uint64_t cap; /* local copy: never re-read from the header */
	uint64_t mask;
	uint64_t pos;	/* own counter: tail (producer), head (consumer) */
	uint64_t other; /* last validated value of the peer's counter */
	uint64_t held;	/* consumer: bytes of the record held in place */
	uint64_t pad;	/* producer: padding before the reservation */
	uint64_t res;	/* producer: reserved payload bytes + 1, or 0 */
	uint64_t ident; /* expected first 8 bytes of the header */
	uint32_t max_msg;
	int role;
	int broken;
	int peer_dead;
	int kind;
	unsigned int nslots;
	uint32_t slot_idx;    /* our slot (many producers: 1 .. nslots - 1) */
	uint64_t dead[2];     /* many producers: slots found dead */
	int wake_n;	      /* sleepers to wake at publish() */
	uint64_t hdr;	      /* record header: 8, or 16 bytes (broadcast) */
	int lossy;	      /* broadcast that overwrites slow subscribers */
	int have_seq;	      /* subscriber: seq holds the next number */
	uint64_t seq;	      /* broadcast: next message number */
	uint64_t cur_seq;     /* subscriber: number of the message held */
	uint64_t rec_pos;     /* subscriber: where the held record starts */
	uint64_t missed;      /* lossy subscriber: messages lost, unread */
	uint64_t *peer_ctr;   /* the counter we read */
	uint64_t *own_ctr;    /* the counter we publish */
	uint32_t *wake_futex; /* the peer's futex word */
	uint32_t *wake_sleepers; /* the peer's sleeper count */
	uint32_t *my_futex;	 /* where we sleep */
	uint32_t *my_sleepers;
	struct shmcap_channel_slot *me, *peer;
	struct shmcap_channel_ctrl *ctrl;
	int64_t next_check;   /* next liveness check of the peer */
	int polls_left;	      /* non-blocking calls before the next check */
	shmcap_cap *notifier; /* our copy: SIGNAL (producer), WAIT (consumer) */
	int light;	      /* we can make asymmetric fences */
	uint64_t nmsgs;	      /* messages we committed or took */
	uint64_t *nmsgs_at;   /* where they are shown: sent, taken, or NULL */
	int bell_fd;	      /* broadcast: our bell socket, or -1 */
	uint64_t bell;	      /* subscriber: its bell's name (nonce) */
	int armed;	      /* consumer: cons_armed was set by us */
	shmcap_map *map;
};

/* The half of a 64-bit counter that holds its low 32 bits. */
static const uint32_t *low32(const uint64_t *ctr)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (const uint32_t *)ctr + 1;
#else
	return (const uint32_t *)ctr;
#endif
}

static uint64_t align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* Bytes a record of len payload bytes takes (8- or 16-aligned). */
static uint64_t rec_size(const shmcap_channel *ch, uint64_t len)
{
	return ch->hdr + ((len + ch->hdr - 1) & ~(ch->hdr - 1));
}

static uint64_t header_ident(uint16_t kind)
{
	struct shmcap_channel_header h = { .magic = CH_MAGIC,
					   .version = CH_VERSION,
					   .kind = kind };
	uint64_t v;

	memcpy(&v, &h, sizeof(v));
	return v;
}

static int broken(shmcap_channel *ch)
{
	ch->broken = 1;
	return -EBADMSG;
}

/*
 * The per-call check: a usable handle whose shared header still carries
 * the magic, version and kind seen at open. The header line is never
 * written after creation, so this load hits the cache.
 */
static int ch_check(shmcap_channel *ch, int role)
{
	if (!ch || ch->role != role)
		return -EINVAL;
	if (ch->broken)
		return -EBADMSG;
	if (load64((const uint64_t *)&ch->ctrl->hdr, ORDER_RELAXED) !=
	    ch->ident)
		return broken(ch);
	return 0;
}

static int mp_slot_gone(shmcap_channel *ch, uint32_t s, int probe);
static int probe_due(shmcap_channel *ch);
static int mp_all_gone(shmcap_channel *ch, int probe, uint32_t skip);

/* A broadcast producer: its peers are the subscribers. */
static int bc_producer(const shmcap_channel *ch)
{
	return ch->kind == SHMCAP_CHANNEL_BROADCAST &&
	       ch->role == SHMCAP_CHANNEL_PRODUCER;
}

/* Known to be gone without a look at /proc (cheap, every send). */
static inline int peer_closed(const shmcap_channel *ch)
{
	/* Written by subscribers only when they come and go: cached. */
	if (bc_producer(ch))
		return ch->peer_dead ||
		       (load32(&ch->ctrl->prod.subs_seen, ORDER_RELAXED) &&
			!load32(&ch->ctrl->prod.subs_open, ORDER_RELAXED));
	return ch->peer_dead ||
	       load32(&ch->peer->state, ORDER_SEQ_CST) == SLOT_CLOSED;
}

/*
 * Is the peer gone (closed, or dead)? 1 yes, 0 no (or not attached yet),
 * -EBADMSG for a slot state no honest peer writes. The liveness check
 * reads /proc, so it runs at most once per LIVE_CHECK_NS unless forced.
 */
static int peer_gone(shmcap_channel *ch, int force)
{
	int ret;
	uint32_t s;
	int64_t now;

	if (bc_producer(ch)) {
		/* Gone when every subscriber that attached is gone. */
		ret = mp_all_gone(ch, force || probe_due(ch), SLOT_PRODUCER);
		if (ret > 0)
			ch->peer_dead = 1;
		return ret;
	}
	/* Acquire: pairs with the release store of the state in open. */
	s = load32(&ch->peer->state, ORDER_SEQ_CST);

	switch (s) {
	case SLOT_FREE:
	case SLOT_CLAIMING:
		return 0;
	case SLOT_CLOSED:
		return 1;
	case SLOT_OPEN:
		break;
	default:
		return broken(ch);
	}
	if (ch->peer_dead)
		return 1;
	now = shmcap__now_ns();
	if (!force && now < ch->next_check)
		return 0;
	ch->next_check = now + LIVE_CHECK_NS;
	/* Death is final: remember it rather than look again. */
	ch->peer_dead = !shmcap__proc_alive(
		(int32_t)load32((uint32_t *)&ch->peer->pid, ORDER_RELAXED),
		load64(&ch->peer->start, ORDER_RELAXED));
	return ch->peer_dead;
}

/*
 * Broadcast producer: room is what the slowest live subscriber left
 * (none: the whole ring). A subscriber's head must not be past the tail.
 * The seq_cst loads pair with the subscribers' publish() and with their
 * join in bc_open().
 */
static int bc_refresh(shmcap_channel *ch)
{
	uint64_t most = 0, h, used;
	uint32_t s, st;

	for (s = 0; s < ch->nslots; s++) {
		if (s == SLOT_PRODUCER ||
		    (ch->dead[s / 64] & (uint64_t)1 << (s % 64)))
			continue;
		st = load32(&ch->ctrl->slot[s].state, ORDER_SEQ_CST);
		if (st > SLOT_CLAIMING)
			return broken(ch);
		if (st != SLOT_OPEN)
			continue;
		h = load64(&ch->ctrl->slot[s].pend_pos, ORDER_SEQ_CST);
		used = ch->pos - h;
		if ((h & 7) || used > (uint64_t)1 << 62)
			return broken(ch);
		if (used >= most) {
			most = used;
			ch->peer_ctr = &ch->ctrl->slot[s].pend_pos;
		}
	}
	ch->other = ch->pos - most;
	return 0;
}

/*
 * Read the peer's counter again and validate it. The consumer accepts a
 * tail that lies within [previous tail, head + capacity]; the producer a
 * head within [previous head, tail]. Both stay 8-aligned.
 */
static HOT int refresh(shmcap_channel *ch, int order)
{
	uint64_t v = load64(ch->peer_ctr, order), t, span;

	if (ch->kind == SHMCAP_CHANNEL_MPSC &&
	    ch->role == SHMCAP_CHANNEL_PRODUCER) {
		/*
		 * Other producers move the tail: read it after head (head
		 * never passes a tail read later), then check both. The
		 * tail may be more than a ring ahead of the head read
		 * before it (the consumer and producers moved on between
		 * the two loads): ready() then says "no room", and we look
		 * again.
		 */
		t = load64(&ch->ctrl->prod.tail, ORDER_ACQUIRE);
		if ((v & 7) || (t & 7) || v - ch->other > t - ch->other)
			return broken(ch);
		ch->other = v;
		ch->pos = t;
		return 0;
	}
	if (bc_producer(ch))
		return bc_refresh(ch);
	span = ch->role == SHMCAP_CHANNEL_CONSUMER ?
		       ch->pos + ch->cap - ch->other :
		       ch->pos - ch->other;
	if ((v & 7) || v - ch->other > span) {
		/* A lossy subscriber overtaken by a whole ring: resync. */
		if (ch->lossy && !(v & 7) &&
		    v - ch->other < (uint64_t)1 << 62) {
			ch->pos = ch->other = v;
			return 0;
		}
		return broken(ch);
	}
	ch->other = v;
	return 0;
}

/*
 * Asymmetric fences. A side that publishes its counter must then read
 * whether the peer sleeps, and the sleeper must, after registering, read
 * the counter again: each side needs a full fence between its store and
 * its load (the store-buffer pattern), and on x86 that fence drains the
 * store buffer, about as long as the rest of a send. Publication happens
 * at every message and sleeping rarely, so the fence is moved to the
 * sleeper: the publisher only keeps the compiler from reordering
 * (light_fence()), and the sleeper calls membarrier(GLOBAL_EXPEDITED)
 * (heavy_fence()), which makes every CPU that runs a registered process
 * execute a full fence. A publisher whose load ran before that fence on
 * its CPU had its store drained by it, and the sleeper's second look sees
 * it; one whose load ran after sees the sleeper count.
 *
 * Every process that opens a channel registers (once, and again after a
 * fork: the registration belongs to the address space). A process where
 * membarrier() is unavailable (an old kernel, a seccomp filter) sets
 * full_fences in the header before it takes its slot; from then on every
 * participant publishes with full fences. A peer that published with a
 * light fence just before could make that process's first sleep miss a
 * wake-up: the sleep slice (1 ms) bounds the delay.
 */
static int32_t mb_pid; /* the process that registered, or 0 */

static int mb_register(void)
{
	int32_t me = (int32_t)getpid();

	if ((int32_t)load32((uint32_t *)&mb_pid, ORDER_ACQUIRE) == me)
		return 1;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
		    0) != 0)
		return 0;
	store32((uint32_t *)&mb_pid, (uint32_t)me, ORDER_RELEASE);
	return 1;
}

static inline int light_fences(const shmcap_channel *ch)
{
	return ch->light && !load32(&ch->ctrl->hdr.full_fences, ORDER_RELAXED);
}

static inline void light_fence(void)
{
	__atomic_signal_fence(ORDER_SEQ_CST);
}

/* The sleeper's half: after its seq_cst increment, before its look. */
static void heavy_fence(const shmcap_channel *ch)
{
	if (ch->light)
		syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

/* ------------------------------------------------------------------------
 * Broadcast bells (see "Broadcast subscribers" in the overview)
 */

static socklen_t bell_addr(uint64_t name, struct sockaddr_un *a)
{
	char address[32];
	socklen_t len = 0;

	snprintf(address, sizeof(address), "shmcap-bell-%016llx",
		 (unsigned long long)name);
	/* A fixed-size name that always fits. */
	(void)shmcap__abstract_addr(address, a, &len);
	return len;
}

/* A bell socket: a datagram socket that never blocks. */
static int bell_socket(void)
{
	return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

/* Subscriber: make our bell and name it in our slot. */
static int bc_bell_open(shmcap_channel *ch)
{
	struct sockaddr_un a;
	socklen_t alen;
	uint64_t name;
	int fd, tries, ret;

	fd = bell_socket();
	if (fd < 0)
		return shmcap__neg_errno();
	for (tries = 0; tries < 8; tries++) {
		ret = shmcap__random(&name, sizeof(name));
		if (ret < 0)
			goto fail;
		name &= ~(uint64_t)1;
		if (name == 0)
			continue;
		alen = bell_addr(name, &a);
		if (bind(fd, (struct sockaddr *)&a, alen) == 0) {
			ch->bell = name;
			ch->bell_fd = fd;
			/* Release: producers read it before they send. */
			store64(&ch->me->pend_size, name, ORDER_RELEASE);
			return 0;
		}
		ret = shmcap__neg_errno();
		if (ret != -EADDRINUSE)
			goto fail;
	}
	ret = -EADDRINUSE;
fail:
	close(fd);
	return ret;
}

/* Take one away from the count of armed subscribers (not below 0). */
static void bc_armed_dec(shmcap_channel *ch)
{
	uint32_t *n = &ch->ctrl->prod.cons_armed;
	uint32_t v = load32(n, ORDER_RELAXED);
	int tries;

	/* Bounded: a peer that keeps rewriting the count cannot hold us. */
	for (tries = 0; v != 0 && tries < 16; tries++) {
		if (cas32(n, &v, v - 1, ORDER_RELAXED))
			return;
	}
}

/* Producer: send the bell named name one byte (best effort). */
static void bc_ring(shmcap_channel *ch, uint64_t name)
{
	struct sockaddr_un a;
	socklen_t alen = bell_addr(name, &a);

	if (ch->bell_fd < 0) {
		ch->bell_fd = bell_socket();
		if (ch->bell_fd < 0)
			return;
	}
	/*
	 * A full queue (-EAGAIN) means the bell is readable already; a bell
	 * closed meanwhile (-ECONNREFUSED) needs no ringing.
	 */
	(void)sendto(ch->bell_fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
		     (struct sockaddr *)&a, alen);
}

/*
 * Producer, after publishing (light or full fence): ring the bell of
 * every armed subscriber. The count pairs with the subscriber's increment
 * in cons_arm() (the store-buffer pattern again); only the side whose
 * compare-and-swap clears a slot's armed bit takes it off the count, so
 * one arming gives at most one ring. A busy channel costs one load.
 */
static void bc_ring_bells(shmcap_channel *ch)
{
	uint64_t v;
	uint32_t s;

	if (load32(&ch->ctrl->prod.cons_armed, ORDER_RELAXED) == 0)
		return;
	for (s = 0; s < ch->nslots; s++) {
		if (s == SLOT_PRODUCER)
			continue;
		v = load64(&ch->ctrl->slot[s].pend_size, ORDER_ACQUIRE);
		if (!(v & 1) || !cas64(&ch->ctrl->slot[s].pend_size, &v,
				       v & ~(uint64_t)1, ORDER_SEQ_CST))
			continue;
		bc_armed_dec(ch);
		bc_ring(ch, v & ~(uint64_t)1);
	}
}

/* Subscriber: empty our bell (bounded: strangers may keep sending). */
static void bc_bell_drain(shmcap_channel *ch)
{
	char b[16];
	int i;

	for (i = 0; i < 64; i++) {
		if (recv(ch->bell_fd, b, sizeof(b), MSG_DONTWAIT) < 0 &&
		    errno != EINTR)
			return;
	}
}

/*
 * Subscriber: take our arming back. 1 if it was still pending (we
 * cleared it), 0 if a producer took it (and rang, or is about to).
 */
static int bc_disarm(shmcap_channel *ch)
{
	uint64_t v = load64(&ch->me->pend_size, ORDER_RELAXED);

	if (v == (ch->bell | 1) &&
	    cas64(&ch->me->pend_size, &v, ch->bell, ORDER_RELAXED)) {
		bc_armed_dec(ch);
		return 1;
	}
	return 0;
}

/*
 * Producer, after publishing (and its light or full fence): ring the
 * consumer's notifier if it armed it. The load pairs with the consumer's
 * seq_cst store of the flag and its fences in cons_arm(), which then
 * looks at tail again: one of the two sees the other's write. Any
 * non-zero value is "armed"; only the producer that clears it rings, so
 * one arming gives at most one signal. A busy channel (flag clear) costs
 * one load of a line we write anyway.
 */
static void ring_bell(shmcap_channel *ch)
{
	uint32_t *armed = &ch->ctrl->prod.cons_armed;
	/* After publish()'s fence, light or full: see cons_arm(). */
	uint32_t v = load32(armed, ORDER_SEQ_CST);
	int tries;

	/* Bounded: a peer that keeps rewriting the flag cannot hold us. */
	for (tries = 0; v != 0 && tries < 16; tries++) {
		if (cas32(armed, &v, 0, ORDER_SEQ_CST)) {
			shmcap_notifier_signal(ch->notifier);
			return;
		}
	}
}

/* Wake the peer if it sleeps or is about to: see "Sleeping" above. */
static HOT void publish(shmcap_channel *ch)
{
	uint32_t sleepers;

	/* For tools (shmcap stat): our own line, no ordering needed. */
	if (ch->nmsgs_at)
		store64(ch->nmsgs_at, ch->nmsgs, ORDER_RELAXED);
	if (light_fences(ch)) {
		/* The sleeper's heavy_fence() stands for our fence. */
		store64(ch->own_ctr, ch->pos, ORDER_RELEASE);
		light_fence();
		sleepers = load32(ch->wake_sleepers, ORDER_RELAXED);
	} else {
		/* Seq_cst: pairs with the peer's increment of its sleepers. */
		store64(ch->own_ctr, ch->pos, ORDER_SEQ_CST);
		sleepers = load32(ch->wake_sleepers, ORDER_SEQ_CST);
	}
	if (sleepers != 0) {
		fetch_add32(ch->wake_futex, 1, ORDER_SEQ_CST);
		futex_wake(ch->wake_futex, ch->wake_n);
	}
	if (ch->notifier && ch->role == SHMCAP_CHANNEL_PRODUCER)
		ring_bell(ch);
	else if (bc_producer(ch))
		bc_ring_bells(ch);
}

/* Has the condition the caller waits for come true? (data or room) */
static int ready(const shmcap_channel *ch, uint64_t need)
{
	uint64_t used = ch->pos - ch->other;

	if (ch->role == SHMCAP_CHANNEL_CONSUMER)
		return used != 0;
	return used <= ch->cap && ch->cap - used >= need;
}

/*
 * Lossy subscriber: n messages were overwritten before we read them.
 * Counted in the handle (shmcap_channel_missed()) and, for tools, in the
 * channel's total (rare: only when messages are lost).
 */
static void bc_lost(shmcap_channel *ch, uint64_t n)
{
	if (n == 0)
		return;
	ch->missed += n;
	fetch_add64(&ch->ctrl->cons.lost, n, ORDER_RELAXED);
}

/*
 * Consumer, watching the tail: read the first two cache lines of where
 * the next record will be. Otherwise they are a second miss, one more
 * transfer between the cores after the tail's; loaded in the same loop,
 * the two transfers overlap (busy-poll round trips: 2.9x a raw spin word
 * before, 2.0-2.4x after). The values are not used: the record is read
 * and checked only after the tail says it is there. Many producers'
 * consumers watch the record itself (mp_next()).
 */
static inline void touch_next(const shmcap_channel *ch)
{
	if (ch->role != SHMCAP_CHANNEL_CONSUMER ||
	    ch->kind == SHMCAP_CHANNEL_MPSC)
		return;
	(void)load64((const uint64_t *)(ch->ring + (ch->pos & ch->mask)),
		     ORDER_RELAXED);
	(void)load64((const uint64_t *)(ch->ring + ((ch->pos + 64) & ch->mask)),
		     ORDER_RELAXED);
}

/*
 * Wait until the peer's counter makes the channel ready (data for the
 * consumer; need bytes of room for the producer), the peer goes away
 * (-EPIPE; for the consumer only once it has drained everything), or the
 * deadline passes (-ETIMEDOUT; -EAGAIN when the caller does not wait).
 */
static int wait_slow(shmcap_channel *ch, uint64_t need, int64_t timeout_ns)
{
	int64_t deadline, slice_ns = SLICE_MIN_NS, now, until;
	uint32_t f;
	int ret, gone;

	/*
	 * A peer that is awake answers within a cache-line round trip: watch
	 * its counter a few hundred times before paying for clock reads and
	 * the liveness check. (The ring was just found not ready.)
	 */
	if (timeout_ns != 0 && shmcap__spin_budget() != 0) {
		const uint32_t *w = low32(ch->peer_ctr);
		int i;

		for (i = 0; i < QUICK_SPINS; i++) {
			touch_next(ch);
			/* Acquire: pairs with the store in publish(). */
			if (load32(w, ORDER_ACQUIRE) != (uint32_t)ch->other)
				break;
			cpu_relax();
		}
	}
	deadline = timeout_ns ? shmcap__deadline(timeout_ns) : 0;
	for (;;) {
		ret = refresh(ch, ORDER_ACQUIRE);
		if (ret < 0)
			return ret;
		if (ready(ch, need))
			return 0;
		gone = peer_gone(ch, 0);
		if (gone < 0)
			return gone;
		if (gone) {
			/* The peer's last commit precedes its close. */
			ret = refresh(ch, ORDER_SEQ_CST);
			if (ret < 0)
				return ret;
			if (ready(ch, need))
				return 0;
			if (ch->lossy && ch->have_seq) {
				/*
				 * A closed lossy producer left its message
				 * count in its slot: count what we lost at
				 * the end too.
				 */
				uint64_t total = load64(&ch->peer->pend_pos,
							ORDER_ACQUIRE);

				if (total != UINT64_MAX &&
				    total - ch->seq < (uint64_t)1 << 62) {
					bc_lost(ch, total - ch->seq);
					ch->seq = total;
				}
			}
			return -EPIPE;
		}
		if (timeout_ns == 0)
			return -EAGAIN;
		if (shmcap__spin_while32(low32(ch->peer_ctr),
					 (uint32_t)ch->other, deadline))
			continue;

		f = load32(ch->my_futex, ORDER_ACQUIRE);
		/* Seq_cst: pairs with the store and load in publish(). */
		fetch_add32(ch->my_sleepers, 1, ORDER_SEQ_CST);
		heavy_fence(ch);
		ret = refresh(ch, ORDER_SEQ_CST);
		if (ret == 0 && !ready(ch, need) && !peer_closed(ch)) {
			now = shmcap__now_ns();
			until = deadline - now < slice_ns ? deadline :
							    now + slice_ns;
			ret = futex_wait_until(ch->my_futex, f, until);
			if (ret == -ETIMEDOUT && until != deadline) {
				/* A slice ended: does the peer live? */
				if (slice_ns < SLICE_MAX_NS)
					slice_ns *= 2;
				ch->next_check = 0;
				ret = 0;
			}
		}
		fetch_sub32(ch->my_sleepers, 1, ORDER_RELAXED);
		if (ret == -EBADMSG)
			return ret;
		if (ret != 0 && ret != -EAGAIN && ret != -EINTR &&
		    ret != -ETIMEDOUT)
			return ret; /* the futex itself failed: do not loop */
		if (shmcap__now_ns() >= deadline) {
			ret = refresh(ch, ORDER_ACQUIRE);
			if (ret < 0)
				return ret;
			return ready(ch, need) ? 0 : -ETIMEDOUT;
		}
	}
}

/*
 * As wait_slow(), with a fast path for polling: a caller that calls with
 * timeout 0 in a loop may come back every few nanoseconds, and the clock
 * read that rate-limits the liveness check would be most of its cost. So
 * a non-blocking call takes one look at the peer's counter and at its
 * slot state (a closed peer is still seen at once), and goes through
 * wait_slow() only once in POLLS_PER_CHECK calls.
 */
static inline int wait_ready(shmcap_channel *ch, uint64_t need,
			     int64_t timeout_ns)
{
	int ret;

	if (timeout_ns == 0 && ch->polls_left > 0) {
		touch_next(ch);
		ret = refresh(ch, ORDER_ACQUIRE);
		if (ret < 0 || ready(ch, need))
			return ret;
		if (!peer_closed(ch)) {
			ch->polls_left--;
			return -EAGAIN;
		}
	}
	ch->polls_left = POLLS_PER_CHECK;
	return wait_slow(ch, need, timeout_ns);
}

/* ------------------------------------------------------------------------
 * Many producers (SHMCAP_CHANNEL_MPSC)
 *
 * Producers reserve by compare-and-swap on the shared tail, after
 * announcing the reservation (position and size) in their slot. They then
 * write a BUSY header carrying their slot index, the payload, and finally
 * the DATA header (seq_cst: the waker half of the sleep pairing). The
 * consumer takes records in order and zeroes the bytes it consumed before
 * publishing head, so a header not yet written reads as 0. A record at
 * head that stays BUSY or 0 is resolved by asking whether its owner lives:
 * the slot index in a BUSY header, or for a 0 header the slot whose
 * announced reservation covers head. A dead owner's record is turned into
 * a SKIP record and passed over; it is never exposed.
 */

#define MP_BUSY 0x59u /* high byte of the tag; low byte the slot */
#define MP_DATA 0x44u
#define MP_SKIP 0x53u
#define MP_TAG(st, slot) ((uint32_t)(st) << 24 | (slot))
#define MP_SKIPS_MAX 4096 /* skip records passed over in one look */

static uint64_t rec_hdr(uint32_t len, uint32_t tag)
{
	uint32_t h[2] = { len, tag };
	uint64_t v;

	memcpy(&v, h, sizeof(v));
	return v;
}

static void rec_split(uint64_t v, uint32_t *len, uint32_t *tag)
{
	uint32_t h[2];

	memcpy(h, &v, sizeof(v));
	*len = h[0];
	*tag = h[1];
}

static uint64_t *rec_at(const shmcap_channel *ch, uint64_t off)
{
	return (uint64_t *)(ch->ring + off);
}

/* Is producer slot s gone (closed or dead)? Dead is remembered. */
static int mp_slot_gone(shmcap_channel *ch, uint32_t s, int probe)
{
	struct shmcap_channel_slot *sl = &ch->ctrl->slot[s];
	uint32_t st;

	if (ch->dead[s / 64] & (uint64_t)1 << (s % 64))
		return 1;
	st = load32(&sl->state, ORDER_ACQUIRE);
	if (st == SLOT_CLOSED)
		return 1;
	if (st != SLOT_OPEN || !probe)
		return 0;
	if (shmcap__proc_alive((int32_t)load32((uint32_t *)&sl->pid,
					       ORDER_RELAXED),
			       load64(&sl->start, ORDER_RELAXED)))
		return 0;
	ch->dead[s / 64] |= (uint64_t)1 << (s % 64);
	return 1;
}

/* Should this wait probe the liveness of peers now (once per ms)? */
static int probe_due(shmcap_channel *ch)
{
	int64_t now = shmcap__now_ns();

	if (now < ch->next_check)
		return 0;
	ch->next_check = now + LIVE_CHECK_NS;
	return 1;
}

/*
 * End of stream for the consumer: some producer attached, and every one
 * that did has closed or died. -EBADMSG for a corrupt slot state.
 */
static int mp_all_gone(shmcap_channel *ch, int probe, uint32_t skip)
{
	uint32_t s, st;
	int seen = 0, live = 0;

	for (s = 0; s < ch->nslots; s++) {
		if (s == skip)
			continue;
		st = load32(&ch->ctrl->slot[s].state, ORDER_SEQ_CST);
		if (st == SLOT_FREE)
			continue;
		if (st > SLOT_CLAIMING)
			return broken(ch);
		seen = 1;
		if (st == SLOT_CLAIMING || !mp_slot_gone(ch, s, probe)) {
			/*
			 * When probing, look at every slot all the same:
			 * a broadcast producer must learn of each dead
			 * subscriber (bc_refresh() then leaves it out),
			 * not only of the first live one.
			 */
			if (!probe)
				return 0;
			live = 1;
		}
	}
	return live ? 0 : seen;
}

/*
 * Producer: reserve room for len bytes. On success ch->pos is where the
 * reservation starts (padding first, if any) and ch->pad, ch->res are set.
 */
static int mp_reserve(shmcap_channel *ch, uint64_t len, int64_t timeout_ns)
{
	uint64_t size = CH_REC_HDR + align8(len), t, to_end, pad, total;
	int64_t deadline = shmcap__deadline(timeout_ns), left;
	unsigned int tries = 0;
	int ret;

	for (;;) {
		t = load64(&ch->ctrl->prod.tail, ORDER_RELAXED);
		/* Our copy of head may be old: read both again. */
		if ((t & 7) || t - ch->other > ch->cap) {
			ret = refresh(ch, ORDER_ACQUIRE);
			if (ret < 0)
				return ret;
			t = ch->pos;
		}
		ch->pos = t;
		to_end = ch->cap - (t & ch->mask);
		pad = size > to_end ? to_end : 0;
		total = pad + size;
		if (!ready(ch, total)) {
			left = timeout_ns;
			if (timeout_ns > 0) {
				left = deadline - shmcap__now_ns();
				if (left <= 0)
					return -ETIMEDOUT;
			}
			ret = wait_ready(ch, total, left);
			if (ret < 0)
				return ret;
			continue;
		}
		if (ch->peer_dead ||
		    load32(&ch->peer->state, ORDER_RELAXED) == SLOT_CLOSED)
			return -EPIPE;
		/* Announce, then claim: the CAS publishes the announcement. */
		store64(&ch->me->pend_size, total, ORDER_RELAXED);
		store64(&ch->me->pend_pos, t, ORDER_RELEASE);
		if (cas64(&ch->ctrl->prod.tail, &t, t + total, ORDER_SEQ_CST))
			break;
		store64(&ch->me->pend_pos, UINT64_MAX, ORDER_RELAXED);
		if (shmcap__lost_race(&tries, deadline) < 0)
			return timeout_ns ? -ETIMEDOUT : -EAGAIN;
	}
	if (pad) {
		/* Release: pairs with the consumer's acquire header load. */
		store64(rec_at(ch, t & ch->mask),
			rec_hdr((uint32_t)(pad - CH_REC_HDR),
				MP_TAG(MP_SKIP, ch->slot_idx)),
			ORDER_RELEASE);
	}
	store64(rec_at(ch, (t + pad) & ch->mask),
		rec_hdr((uint32_t)len, MP_TAG(MP_BUSY, ch->slot_idx)),
		ORDER_RELEASE);
	ch->pad = pad;
	ch->res = len + 1;
	return 0;
}

/*
 * Producer: finish the reservation as a message of len bytes (tag DATA),
 * or drop it (tag SKIP), and wake the consumer if it sleeps.
 */
static void mp_commit(shmcap_channel *ch, uint64_t len, uint32_t st)
{
	uint64_t off = (ch->pos + ch->pad) & ch->mask;
	uint64_t rsize = CH_REC_HDR + align8(ch->res - 1);
	uint64_t fsize = CH_REC_HDR + align8(len);

	if (st == MP_SKIP) {
		len = rsize - CH_REC_HDR;
	} else if (fsize < rsize) {
		/* The unused tail of the reservation becomes a skip. */
		store64(rec_at(ch, off + fsize),
			rec_hdr((uint32_t)(rsize - fsize - CH_REC_HDR),
				MP_TAG(MP_SKIP, ch->slot_idx)),
			ORDER_RELEASE);
	}
	/*
	 * Release, then a light or a full fence before the sleeper count:
	 * pairs with the consumer's increment of its sleepers (publish()).
	 */
	store64(rec_at(ch, off),
		rec_hdr((uint32_t)len, MP_TAG(st, ch->slot_idx)),
		ORDER_RELEASE);
	store64(&ch->me->pend_pos, UINT64_MAX, ORDER_RELEASE);
	ch->pad = 0;
	ch->res = 0;
	if (light_fences(ch))
		light_fence();
	else
		fence(ORDER_SEQ_CST);
	if (load32(ch->wake_sleepers, ORDER_RELAXED) != 0) {
		fetch_add32(ch->wake_futex, 1, ORDER_SEQ_CST);
		futex_wake(ch->wake_futex, 1);
	}
	if (ch->notifier)
		ring_bell(ch);
}

/* Consumer: give n consumed bytes at head back, zeroed, and publish. */
static void mp_take(shmcap_channel *ch, uint64_t n)
{
	/* A consumed record never crosses the ring's end. */
	memset(ch->ring + (ch->pos & ch->mask), 0, n);
	ch->pos += n;
}

/* Publish head; every sleeping producer is woken, as any may now fit. */
static void mp_publish(shmcap_channel *ch)
{
	publish(ch);
}

/*
 * Consumer: the record at head. 0 with a message; -EAGAIN if nothing was
 * reserved; 1 if the record at head is not committed yet (*hdr receives
 * its header); 2 after MP_SKIPS_MAX skip records (look again). Skip
 * records are passed over (and given back).
 */
static int mp_peek(shmcap_channel *ch, const void **p, uint64_t *len,
		   uint64_t *hdr)
{
	uint64_t avail, off, size, h;
	uint32_t rlen, tag, slot;
	int skipped = 0;

	for (;;) {
		avail = ch->other - ch->pos;
		if (avail == 0)
			break;
		if (avail < CH_REC_HDR)
			return broken(ch);
		off = ch->pos & ch->mask;
		/* Acquire: pairs with the producer's header stores. */
		h = load64(rec_at(ch, off), ORDER_ACQUIRE);
		*hdr = h;
		if (h == 0) {
			if (skipped)
				mp_publish(ch);
			return 1;
		}
		rec_split(h, &rlen, &tag);
		slot = tag & 0xff;
		if ((tag & 0x00ffff00) || slot >= ch->nslots)
			return broken(ch);
		switch (tag >> 24) {
		case MP_BUSY:
			if (slot == 0 || rlen > ch->max_msg)
				return broken(ch);
			if (skipped)
				mp_publish(ch);
			return 1;
		case MP_SKIP:
			size = (uint64_t)rlen + CH_REC_HDR;
			if ((rlen & 7) || size > avail || size > ch->cap - off)
				return broken(ch);
			mp_take(ch, size);
			/*
			 * Bound the work of one call: a hostile producer
			 * could fill a huge ring with 8-byte skips.
			 */
			if (++skipped == MP_SKIPS_MAX) {
				mp_publish(ch);
				return 2;
			}
			continue;
		case MP_DATA:
			size = CH_REC_HDR + align8(rlen);
			if (slot == 0 || rlen > ch->max_msg || size > avail ||
			    size > ch->cap - off)
				return broken(ch);
			*p = ch->ring + off + CH_REC_HDR;
			*len = rlen;
			ch->held = size;
			return 0;
		default:
			return broken(ch);
		}
	}
	if (skipped)
		mp_publish(ch);
	return -EAGAIN;
}

/*
 * Write skip records over n bytes at head (they may cross the end), if the
 * header at head still reads expect: a producer found closed may have
 * committed its message just before (1 then: look again), whereas a dead
 * one cannot write any more. 0 when done.
 */
static int mp_skip_span(shmcap_channel *ch, uint64_t n, uint64_t expect)
{
	uint64_t off = ch->pos & ch->mask, to_end = ch->cap - off, first;

	if ((n & 7) || n < CH_REC_HDR || n > ch->other - ch->pos)
		return broken(ch);
	if (n > to_end && n - to_end < CH_REC_HDR)
		return broken(ch);
	first = n > to_end ? to_end : n;
	/* Acquire on failure is not needed: we only look again. */
	if (!cas64(rec_at(ch, off), &expect,
		   rec_hdr((uint32_t)(first - CH_REC_HDR), MP_TAG(MP_SKIP, 0)),
		   ORDER_ACQ_REL))
		return 1;
	if (n > to_end)
		store64(rec_at(ch, 0),
			rec_hdr((uint32_t)(n - to_end - CH_REC_HDR),
				MP_TAG(MP_SKIP, 0)),
			ORDER_RELAXED);
	return 0;
}

/*
 * The record at head is not committed. If its producer is gone, turn it
 * into skip records: 1 then; 0 to keep waiting; -EBADMSG.
 */
static int mp_resolve(shmcap_channel *ch, uint64_t h, int probe)
{
	uint32_t rlen, tag, s, st;
	uint64_t pp, ps, again;

	if (h != 0) {
		rec_split(h, &rlen, &tag);
		if (!mp_slot_gone(ch, tag & 0xff, probe))
			return 0;
		return mp_skip_span(ch, CH_REC_HDR + align8(rlen), h) < 0 ?
			       -EBADMSG :
			       1;
	}
	/* Header not written: whose announced reservation covers head? */
	for (s = 1; s < ch->nslots; s++) {
		st = load32(&ch->ctrl->slot[s].state, ORDER_ACQUIRE);
		if (st != SLOT_OPEN && st != SLOT_CLOSED)
			continue;
		/* Acquire: pairs with the release store of pend_pos. */
		pp = load64(&ch->ctrl->slot[s].pend_pos, ORDER_ACQUIRE);
		ps = load64(&ch->ctrl->slot[s].pend_size, ORDER_RELAXED);
		if (pp == UINT64_MAX || ch->pos - pp >= ps)
			continue;
		if (!mp_slot_gone(ch, s, probe))
			return 0;
		return mp_skip_span(ch, pp + ps - ch->pos, 0) < 0 ? -EBADMSG :
								    1;
	}
	/*
	 * Nobody announced it. Its owner may have committed it and moved on
	 * since our look (its announcement is withdrawn only after the
	 * header store): look again before calling it corrupt.
	 */
	again = load64(rec_at(ch, ch->pos & ch->mask), ORDER_ACQUIRE);
	return again != 0 ? 1 : broken(ch);
}

/* Consumer: the next message, waiting up to timeout_ns. */
static int mp_next(shmcap_channel *ch, const void **p, uint64_t *len,
		   int64_t timeout_ns)
{
	int64_t deadline, slice_ns = SLICE_MIN_NS, now, until;
	uint64_t h = 0;
	uint32_t f;
	const uint32_t *word;
	uint32_t val;
	int ret, probe = 0;

	if (ch->held)
		return -EINVAL;
	deadline = timeout_ns ? shmcap__deadline(timeout_ns) : 0;
	for (;;) {
		ret = mp_peek(ch, p, len, &h);
		if (ret <= 0 && ret != -EAGAIN)
			return ret;
		if (ret == 2) {
			if (shmcap__now_ns() >= deadline)
				return timeout_ns ? -ETIMEDOUT : -EAGAIN;
			continue;
		}
		if (ret == -EAGAIN) {
			ret = refresh(ch, ORDER_ACQUIRE);
			if (ret < 0)
				return ret;
			if (ch->other != ch->pos)
				continue;
			ret = mp_all_gone(ch, probe || probe_due(ch),
					  SLOT_CONSUMER);
			probe = 0;
			if (ret < 0)
				return ret;
			if (ret) {
				ret = refresh(ch, ORDER_SEQ_CST);
				if (ret < 0)
					return ret;
				if (ch->other != ch->pos)
					continue;
				return -EPIPE;
			}
			word = low32(ch->peer_ctr);
			val = (uint32_t)ch->other;
		} else {
			ret = mp_resolve(ch, h, probe || probe_due(ch));
			probe = 0;
			if (ret < 0)
				return ret;
			if (ret)
				continue;
			/* The tag word: it changes at commit. */
			word = (const uint32_t *)(ch->ring +
						  (ch->pos & ch->mask)) +
			       1;
			val = load32(word, ORDER_ACQUIRE);
			if (h == 0)
				val = 0;
		}
		if (timeout_ns == 0)
			return -EAGAIN;
		if (shmcap__spin_while32(word, val, deadline))
			continue;
		f = load32(ch->my_futex, ORDER_ACQUIRE);
		/* Seq_cst: pairs with mp_commit()'s header store and load. */
		fetch_add32(ch->my_sleepers, 1, ORDER_SEQ_CST);
		heavy_fence(ch);
		ret = 0;
		/*
		 * Only the watched word: while the record at head waits for
		 * its producer, other producers may move the tail without
		 * waking us, and must not keep us from sleeping.
		 */
		if (load32(word, ORDER_SEQ_CST) == val) {
			now = shmcap__now_ns();
			until = deadline - now < slice_ns ? deadline :
							    now + slice_ns;
			ret = futex_wait_until(ch->my_futex, f, until);
			if (ret == -ETIMEDOUT && until != deadline) {
				if (slice_ns < SLICE_MAX_NS)
					slice_ns *= 2;
				probe = 1;
				ret = 0;
			}
		}
		fetch_sub32(ch->my_sleepers, 1, ORDER_RELAXED);
		if (ret != 0 && ret != -EAGAIN && ret != -EINTR &&
		    ret != -ETIMEDOUT)
			return ret;
		if (shmcap__now_ns() >= deadline) {
			ret = refresh(ch, ORDER_ACQUIRE);
			if (ret < 0)
				return ret;
			ret = mp_peek(ch, p, len, &h);
			if (ret <= 0 && ret != -EAGAIN)
				return ret;
			return -ETIMEDOUT;
		}
	}
}

/* ------------------------------------------------------------------------
 * Creation, open, close
 */

static int geometry_ok(uint64_t capacity, uint64_t max_msg, uint64_t hdr)
{
	if (capacity < CH_CAPACITY_MIN ||
	    capacity > SHMCAP_CHANNEL_CAPACITY_MAX ||
	    (capacity & (capacity - 1)))
		return 0;
	if (max_msg > SHMCAP_CHANNEL_MSG_MAX ||
	    hdr + ((max_msg + hdr - 1) & ~(hdr - 1)) > capacity / 2)
		return 0;
	return 1;
}

SHMCAP_EXPORT int shmcap_channel_create(int kind, uint64_t capacity,
					uint32_t max_msg, unsigned int flags,
					shmcap_cap **region)
{
	struct shmcap_channel_ctrl *c;
	shmcap_cap *cap = NULL;
	shmcap_map *map = NULL;
	int ret;

	if (!region)
		return -EINVAL;
	*region = NULL;
	if (kind != SHMCAP_CHANNEL_SPSC && kind != SHMCAP_CHANNEL_MPSC &&
	    kind != SHMCAP_CHANNEL_BROADCAST)
		return -EINVAL;
	if (flags &
	    ~(kind == SHMCAP_CHANNEL_BROADCAST ? SHMCAP_CHANNEL_LOSSY : 0u))
		return -EINVAL;
	if (!geometry_ok(capacity, max_msg,
			 kind == SHMCAP_CHANNEL_BROADCAST ? BC_REC_HDR :
							    CH_REC_HDR))
		return -EINVAL;
	ret = shmcap_region_create(CH_CTRL_SIZE + capacity, 0, &cap);
	if (ret < 0)
		return ret;
	ret = shmcap_region_map(cap, 0, CH_CTRL_SIZE, NULL, SHMCAP_MAP_WRITE,
				&map);
	if (ret < 0)
		goto fail;
	/* Nobody else sees the region yet: plain stores, magic last. */
	c = shmcap_map_addr(map);
	c->hdr.version = CH_VERSION;
	c->hdr.kind = (uint16_t)kind;
	c->hdr.ctrl_size = CH_CTRL_SIZE;
	c->hdr.capacity = capacity;
	c->hdr.max_msg = max_msg;
	c->hdr.nslots = kind == SHMCAP_CHANNEL_SPSC ? 2 : CH_NSLOTS_MAX;
	c->hdr.flags = flags;
	store32(&c->hdr.magic, CH_MAGIC, ORDER_RELEASE);
	shmcap_map_unmap(map);
	*region = cap;
	return 0;
fail:
	shmcap_cap_close(cap);
	return ret;
}

/* Take slot s for the calling process: -EBUSY if the role was taken. */
static int slot_claim(struct shmcap_channel_slot *s, uint64_t pend)
{
	uint32_t st = SLOT_FREE;
	int32_t pid = getpid();

	if (!cas32(&s->state, &st, SLOT_CLAIMING, ORDER_ACQUIRE))
		return st <= SLOT_CLAIMING ? -EBUSY : -EBADMSG;
	store32((uint32_t *)&s->pid, (uint32_t)pid, ORDER_RELAXED);
	store64(&s->start, shmcap__proc_start(pid), ORDER_RELAXED);
	store64(&s->pend_pos, pend, ORDER_RELAXED);
	/* Release: pairs with the acquire load of the state in peer_gone. */
	store32(&s->state, SLOT_OPEN, ORDER_SEQ_CST);
	return 0;
}

/*
 * Broadcast roles: the producer in slot 1, subscribers in any other. A
 * subscriber publishes its head in its slot's pend_pos; it joins at the
 * tail. It announces a head (the tail read before claiming) with the
 * slot, then reads the tail again and moves its head there: a producer
 * that missed the slot's state in its last look wrote only bytes before
 * that second tail (seq_cst store-load pairing with bc_refresh()), so
 * nothing from the new head on was overwritten. -EBUSY, or another error
 * after the slot was taken (then the caller marks it closed).
 */
static int bc_open(shmcap_channel *ch)
{
	struct shmcap_channel_ctrl *c = ch->ctrl;
	uint64_t t;
	uint32_t s;
	int ret = -EBUSY;

	if (ch->role == SHMCAP_CHANNEL_PRODUCER) {
		ch->peer_ctr = &c->slot[0].pend_pos;
		ch->me = &c->slot[SLOT_PRODUCER];
		ret = slot_claim(ch->me, UINT64_MAX);
		if (ret < 0)
			return ret;
		ch->pos = load64(&c->prod.tail, ORDER_ACQUIRE);
		if (ch->pos & 7)
			return -EBADMSG;
		return refresh(ch, ORDER_SEQ_CST);
	}
	t = load64(&c->prod.tail, ORDER_ACQUIRE);
	for (s = 0; s < ch->nslots; s++) {
		if (s == SLOT_PRODUCER)
			continue;
		ret = slot_claim(&c->slot[s], t);
		if (ret != -EBUSY)
			break;
	}
	if (ret < 0)
		return ret;
	ch->slot_idx = s;
	ch->me = &c->slot[s];
	ch->own_ctr = &ch->me->pend_pos;
	fetch_add32(&c->prod.subs_open, 1, ORDER_RELAXED);
	store32(&c->prod.subs_seen, 1, ORDER_RELAXED);
	t = load64(&c->prod.tail, ORDER_SEQ_CST);
	if (t & 7)
		return -EBADMSG;
	store64(ch->own_ctr, t, ORDER_SEQ_CST);
	ch->pos = ch->other = t;
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_open(const shmcap_cap *region, int role,
				      unsigned int flags, shmcap_channel **out)
{
	struct shmcap_channel_header h;
	shmcap_channel *ch;
	uint64_t size;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!region || flags ||
	    (role != SHMCAP_CHANNEL_PRODUCER &&
	     role != SHMCAP_CHANNEL_CONSUMER))
		return -EINVAL;
	if (shmcap_cap_type(region) != SHMCAP_TYPE_REGION)
		return -EINVAL;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->bell_fd = -1;
	ret = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &ch->map);
	if (ret < 0)
		goto fail;
	size = shmcap_map_size(ch->map);
	ret = -EBADMSG;
	if (size < CH_CTRL_SIZE)
		goto fail;
	ch->ctrl = shmcap_map_addr(ch->map);
	/* Acquire: pairs with the release store of magic in create. */
	if (load32(&ch->ctrl->hdr.magic, ORDER_ACQUIRE) != CH_MAGIC)
		goto fail;
	/* One copy of the geometry; the shared header is never read again. */
	memcpy(&h, &ch->ctrl->hdr, sizeof(h));
	ch->hdr = h.kind == SHMCAP_CHANNEL_BROADCAST ? BC_REC_HDR : CH_REC_HDR;
	if (h.version != CH_VERSION || h.ctrl_size != CH_CTRL_SIZE ||
	    (h.flags &
	     ~(h.kind == SHMCAP_CHANNEL_BROADCAST ? SHMCAP_CHANNEL_LOSSY :
						    0u)) ||
	    !geometry_ok(h.capacity, h.max_msg, ch->hdr) ||
	    h.capacity > size - CH_CTRL_SIZE)
		goto fail;
	if (!(h.kind == SHMCAP_CHANNEL_SPSC && h.nslots == 2) &&
	    !(h.kind == SHMCAP_CHANNEL_MPSC && h.nslots == CH_NSLOTS_MAX) &&
	    !(h.kind == SHMCAP_CHANNEL_BROADCAST && h.nslots == CH_NSLOTS_MAX))
		goto fail;
	ch->kind = h.kind;
	ch->nslots = h.nslots;
	ch->lossy = !!(h.flags & SHMCAP_CHANNEL_LOSSY);
	ch->wake_n = (h.kind == SHMCAP_CHANNEL_MPSC &&
		      role == SHMCAP_CHANNEL_CONSUMER) ||
				     (h.kind == SHMCAP_CHANNEL_BROADCAST &&
				      role == SHMCAP_CHANNEL_PRODUCER) ?
			     INT_MAX :
			     1;
	ch->ident = header_ident(h.kind);
	ch->cap = h.capacity;
	ch->mask = h.capacity - 1;
	ch->max_msg = h.max_msg;
	ch->ring = (uint8_t *)ch->ctrl + CH_CTRL_SIZE;
	ch->role = role;
	/* Message counts for tools: SPSC and broadcast producers, and
	 * SPSC and MPSC consumers, each alone in writing its count. */
	if (role == SHMCAP_CHANNEL_PRODUCER && h.kind != SHMCAP_CHANNEL_MPSC)
		ch->nmsgs_at = &ch->ctrl->prod.sent;
	else if (role == SHMCAP_CHANNEL_CONSUMER &&
		 h.kind != SHMCAP_CHANNEL_BROADCAST)
		ch->nmsgs_at = &ch->ctrl->cons.taken;
	if (ch->nmsgs_at)
		ch->nmsgs = load64(ch->nmsgs_at, ORDER_RELAXED);
	/* Before our slot opens: see "Asymmetric fences". */
	ch->light = mb_register();
	if (!ch->light)
		store32(&ch->ctrl->hdr.full_fences, 1, ORDER_SEQ_CST);
	if (role == SHMCAP_CHANNEL_PRODUCER) {
		ch->me = &ch->ctrl->slot[SLOT_PRODUCER];
		ch->peer = &ch->ctrl->slot[SLOT_CONSUMER];
		ch->own_ctr = &ch->ctrl->prod.tail;
		ch->peer_ctr = &ch->ctrl->cons.head;
		ch->my_futex = &ch->ctrl->cons.prod_futex;
		ch->my_sleepers = &ch->ctrl->cons.prod_sleepers;
		ch->wake_futex = &ch->ctrl->prod.cons_futex;
		ch->wake_sleepers = &ch->ctrl->prod.cons_sleepers;
	} else {
		ch->me = &ch->ctrl->slot[SLOT_CONSUMER];
		ch->peer = &ch->ctrl->slot[SLOT_PRODUCER];
		ch->own_ctr = &ch->ctrl->cons.head;
		ch->peer_ctr = &ch->ctrl->prod.tail;
		ch->my_futex = &ch->ctrl->prod.cons_futex;
		ch->my_sleepers = &ch->ctrl->prod.cons_sleepers;
		ch->wake_futex = &ch->ctrl->cons.prod_futex;
		ch->wake_sleepers = &ch->ctrl->cons.prod_sleepers;
	}
	if (ch->kind == SHMCAP_CHANNEL_BROADCAST) {
		ret = bc_open(ch);
		if (ret == 0) {
			*out = ch;
			return 0;
		}
		if (ret == -EBUSY)
			goto fail;
		goto bad;
	}
	if (ch->kind == SHMCAP_CHANNEL_MPSC &&
	    role == SHMCAP_CHANNEL_PRODUCER) {
		/* The first free slot; -EBUSY when all are taken. */
		for (ch->slot_idx = 1; ch->slot_idx < ch->nslots;
		     ch->slot_idx++) {
			ch->me = &ch->ctrl->slot[ch->slot_idx];
			ret = slot_claim(ch->me, UINT64_MAX);
			if (ret != -EBUSY)
				break;
		}
	} else {
		ret = slot_claim(ch->me, UINT64_MAX);
	}
	if (ret < 0)
		goto fail;

	/*
	 * Our own counter is ours alone from now on: read it once. The
	 * peer's must be consistent with it.
	 */
	if (ch->kind == SHMCAP_CHANNEL_MPSC &&
	    role == SHMCAP_CHANNEL_PRODUCER) {
		/* The shared tail moves: refresh() reads and checks both. */
		ch->other = load64(ch->peer_ctr, ORDER_ACQUIRE) & ~(uint64_t)7;
		if (refresh(ch, ORDER_ACQUIRE) < 0)
			goto bad;
		*out = ch;
		return 0;
	}
	ch->pos = load64(ch->own_ctr, ORDER_ACQUIRE);
	ch->other = load64(ch->peer_ctr, ORDER_ACQUIRE);
	if ((ch->pos & 7) || (ch->other & 7))
		goto bad;
	if (role == SHMCAP_CHANNEL_PRODUCER ? ch->pos - ch->other > ch->cap :
					      ch->other - ch->pos > ch->cap)
		goto bad;
	*out = ch;
	return 0;
bad:
	store32(&ch->me->state, SLOT_CLOSED, ORDER_SEQ_CST);
	ret = -EBADMSG;
fail:
	shmcap_map_unmap(ch->map);
	free(ch);
	return ret;
}

SHMCAP_EXPORT void shmcap_channel_close(shmcap_channel *ch)
{
	if (!ch)
		return;
	if (ch->kind == SHMCAP_CHANNEL_MPSC && ch->res && !ch->broken)
		mp_commit(ch, 0, MP_SKIP); /* a dropped reservation */
	if (ch->kind == SHMCAP_CHANNEL_BROADCAST &&
	    ch->role == SHMCAP_CHANNEL_CONSUMER) {
		/* Off the count of armed subscribers, if still on it. */
		if (ch->armed && !ch->broken)
			bc_disarm(ch);
		fetch_sub32(&ch->ctrl->prod.subs_open, 1, ORDER_RELAXED);
	}
	/* Release: pairs with the lossy subscriber's load at -EPIPE. */
	if (bc_producer(ch))
		store64(&ch->me->pend_pos, ch->seq, ORDER_RELEASE);
	/*
	 * Seq_cst: the peer reads the state after registering as a sleeper,
	 * and a commit published before this store stays visible to it.
	 * The futex bump makes a peer about to sleep return at once.
	 */
	store32(&ch->me->state, SLOT_CLOSED, ORDER_SEQ_CST);
	fetch_add32(ch->wake_futex, 1, ORDER_SEQ_CST);
	futex_wake(ch->wake_futex, INT_MAX);
	/* An idle epoll consumer learns of the end of the stream too. */
	if (ch->notifier && ch->role == SHMCAP_CHANNEL_PRODUCER)
		ring_bell(ch);
	else if (bc_producer(ch) && !ch->broken)
		bc_ring_bells(ch);
	if (ch->bell_fd >= 0)
		close(ch->bell_fd);
	shmcap_cap_close(ch->notifier);
	shmcap_map_unmap(ch->map);
	free(ch);
}

SHMCAP_EXPORT uint64_t shmcap_channel_capacity(const shmcap_channel *ch)
{
	return ch ? ch->cap : 0;
}

SHMCAP_EXPORT uint32_t shmcap_channel_max_msg(const shmcap_channel *ch)
{
	return ch ? ch->max_msg : 0;
}

/* ------------------------------------------------------------------------
 * Producer
 */

/*
 * Find room for a record of len payload bytes, waiting if need be. On
 * success ch->pad and ch->res describe the reservation.
 */
static HOT int prod_reserve(shmcap_channel *ch, uint64_t len,
			    int64_t timeout_ns)
{
	uint64_t size = rec_size(ch, len);
	uint64_t to_end = ch->cap - (ch->pos & ch->mask);
	uint64_t pad = size > to_end ? to_end : 0;
	int ret;

	if (ch->lossy) {
		/*
		 * Never wait: announce the bytes about to be overwritten,
		 * so that a subscriber reading them can tell (the release
		 * fence orders this store before the record's stores; the
		 * subscriber's acquire fence pairs with it).
		 */
		store64(&ch->ctrl->prod.wpos, ch->pos + pad + size,
			ORDER_RELAXED);
		fence(ORDER_RELEASE);
	} else if (!ready(ch, pad + size)) {
		/* Room is re-read only when the cache says full. */
		ret = wait_ready(ch, pad + size, timeout_ns);
		if (ret < 0)
			return ret;
	} else if (peer_closed(ch)) {
		return -EPIPE;
	}
	ch->pad = pad;
	ch->res = len + 1;
	return 0;
}

/* Write the headers of the reserved record, holding len bytes. */
static inline void prod_write(shmcap_channel *ch, uint64_t len)
{
	uint64_t off = ch->pos & ch->mask;

	if (ch->pad) {
		store32((uint32_t *)(ch->ring + off),
			(uint32_t)(ch->pad - ch->hdr), ORDER_RELAXED);
		store32((uint32_t *)(ch->ring + off + 4), CH_REC_PAD,
			ORDER_RELAXED);
		ch->pos += ch->pad;
		off = 0;
	}
	store32((uint32_t *)(ch->ring + off), (uint32_t)len, ORDER_RELAXED);
	store32((uint32_t *)(ch->ring + off + 4), CH_REC_DATA, ORDER_RELAXED);
	if (ch->hdr == BC_REC_HDR)
		store64((uint64_t *)(ch->ring + off + 8), ch->seq++,
			ORDER_RELAXED);
	ch->pos += rec_size(ch, len);
	ch->nmsgs++;
	ch->pad = 0;
	ch->res = 0;
}

static void *prod_space(const shmcap_channel *ch)
{
	return ch->ring + ((ch->pos + ch->pad) & ch->mask) + ch->hdr;
}

SHMCAP_EXPORT int shmcap_channel_reserve(shmcap_channel *ch, size_t len,
					 void **ptr, int64_t timeout_ns)
{
	int ret = ch_check(ch, SHMCAP_CHANNEL_PRODUCER);

	if (ret < 0)
		return ret;
	if (!ptr || ch->res)
		return -EINVAL;
	if (len > ch->max_msg)
		return -EMSGSIZE;
	ret = ch->kind == SHMCAP_CHANNEL_MPSC ?
		      mp_reserve(ch, len, timeout_ns) :
		      prod_reserve(ch, len, timeout_ns);
	if (ret < 0)
		return ret;
	*ptr = prod_space(ch);
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_commit(shmcap_channel *ch, size_t len)
{
	int ret = ch_check(ch, SHMCAP_CHANNEL_PRODUCER);

	if (ret < 0)
		return ret;
	if (!ch->res || len >= ch->res)
		return -EINVAL;
	if (ch->kind == SHMCAP_CHANNEL_MPSC) {
		mp_commit(ch, len, MP_DATA);
		return 0;
	}
	prod_write(ch, len);
	publish(ch);
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_send(shmcap_channel *ch, const void *data,
				      size_t len, int64_t timeout_ns)
{
	int ret = ch_check(ch, SHMCAP_CHANNEL_PRODUCER);

	if (ret < 0)
		return ret;
	if ((!data && len) || ch->res)
		return -EINVAL;
	if (len > ch->max_msg)
		return -EMSGSIZE;
	if (ch->kind == SHMCAP_CHANNEL_MPSC) {
		ret = mp_reserve(ch, len, timeout_ns);
		if (ret < 0)
			return ret;
		if (len)
			memcpy(prod_space(ch), data, len);
		mp_commit(ch, len, MP_DATA);
		return 0;
	}
	ret = prod_reserve(ch, len, timeout_ns);
	if (ret < 0)
		return ret;
	if (len) /* data may be NULL for an empty message */
		memcpy(prod_space(ch), data, len);
	prod_write(ch, len);
	publish(ch);
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_send_batch(shmcap_channel *ch,
					    const struct iovec *msgs, size_t n,
					    int64_t timeout_ns)
{
	size_t i;
	int ret = ch_check(ch, SHMCAP_CHANNEL_PRODUCER);

	if (ret < 0)
		return ret;
	if (!msgs || n == 0 || ch->res)
		return -EINVAL;
	if (n > INT_MAX)
		n = INT_MAX;
	for (i = 0; i < n; i++) {
		if (msgs[i].iov_len > ch->max_msg)
			return i ? -EINVAL : -EMSGSIZE;
		if (!msgs[i].iov_base && msgs[i].iov_len)
			return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		/* Wait for the first message only; then send what fits. */
		if (ch->kind == SHMCAP_CHANNEL_MPSC)
			ret = mp_reserve(ch, msgs[i].iov_len,
					 i ? 0 : timeout_ns);
		else
			ret = prod_reserve(ch, msgs[i].iov_len,
					   i ? 0 : timeout_ns);
		if (ret < 0)
			break;
		if (msgs[i].iov_len)
			memcpy(prod_space(ch), msgs[i].iov_base,
			       msgs[i].iov_len);
		/* Many producers commit each one: others interleave. */
		if (ch->kind == SHMCAP_CHANNEL_MPSC)
			mp_commit(ch, msgs[i].iov_len, MP_DATA);
		else
			prod_write(ch, msgs[i].iov_len);
	}
	if (i == 0)
		return ret;
	if (ch->kind != SHMCAP_CHANNEL_MPSC)
		publish(ch);
	return (int)i;
}

/* ------------------------------------------------------------------------
 * Consumer
 */

/*
 * Lossy broadcast: has the producer begun to overwrite the record that
 * starts at at? The acquire fence pairs with the release fence after the
 * producer's store of wpos in prod_reserve(): if any byte we read was
 * overwritten, this load sees the wpos announced before.
 */
static int bc_lapped(const shmcap_channel *ch, uint64_t at)
{
	fence(ORDER_ACQUIRE);
	return load64(&ch->ctrl->prod.wpos, ORDER_RELAXED) - at > ch->cap;
}

/* Lossy broadcast: overtaken; go on from the producer's tail. */
static int bc_resync(shmcap_channel *ch)
{
	uint64_t t = load64(&ch->ctrl->prod.tail, ORDER_ACQUIRE);

	ch->held = 0;
	if (t & 7)
		return broken(ch);
	ch->pos = ch->other = t;
	return -EAGAIN;
}

/*
 * A record that does not pass the checks: corrupt (-EBADMSG), unless a
 * lossy subscriber was overtaken while reading it (-EAGAIN, resynced).
 */
static int peek_bad(shmcap_channel *ch, uint64_t at)
{
	if (ch->lossy && bc_lapped(ch, at))
		return bc_resync(ch);
	return broken(ch);
}

/*
 * Look at the record at head, skipping one padding record. On success
 * *p and *len describe the message in place and ch->held its bytes
 * (padding included). -EAGAIN if nothing is published.
 */
static HOT int cons_peek(shmcap_channel *ch, const void **p, uint64_t *len)
{
	uint64_t at = ch->pos, avail, off, size;
	uint32_t rlen, tag;
	int pads = 0;

	for (;;) {
		avail = ch->other - at;
		/*
		 * A padding record is published with the record after it:
		 * alone, it is corrupt (and -EAGAIN would make the caller
		 * wait for data it already has, for ever).
		 */
		if (avail == 0)
			return pads ? peek_bad(ch, at) : -EAGAIN;
		if (avail < ch->hdr)
			return peek_bad(ch, at);
		off = at & ch->mask;
		/* The header is copied once; only the copy is checked. */
		rlen = load32((const uint32_t *)(ch->ring + off),
			      ORDER_RELAXED);
		tag = load32((const uint32_t *)(ch->ring + off + 4),
			     ORDER_RELAXED);
		if (tag == CH_REC_PAD && !pads) {
			if ((uint64_t)rlen + ch->hdr != ch->cap - off ||
			    ch->cap - off > avail)
				return peek_bad(ch, at);
			at += ch->cap - off;
			pads = 1;
			continue;
		}
		if (tag != CH_REC_DATA || rlen > ch->max_msg)
			return peek_bad(ch, at);
		size = rec_size(ch, rlen);
		if (size > avail || size > ch->cap - off)
			return peek_bad(ch, at);
		if (ch->hdr == BC_REC_HDR) {
			ch->cur_seq =
				load64((const uint64_t *)(ch->ring + off + 8),
				       ORDER_RELAXED);
			ch->rec_pos = at;
		}
		*p = ch->ring + off + ch->hdr;
		*len = rlen;
		ch->held = at + size - ch->pos;
		return 0;
	}
}

/* Get the next message in place, waiting for one if need be. */
static inline int cons_wait_next(shmcap_channel *ch, const void **p,
				 uint64_t *len, int64_t timeout_ns)
{
	int ret;

	if (ch->kind == SHMCAP_CHANNEL_MPSC)
		return mp_next(ch, p, len, timeout_ns);
	if (ch->held)
		return -EINVAL;
	for (;;) {
		ret = cons_peek(ch, p, len);
		if (ret != -EAGAIN)
			return ret;
		/* Only an empty cache makes us read the producer's line. */
		ret = wait_ready(ch, 0, timeout_ns);
		if (ret < 0)
			return ret;
	}
}

/*
 * Take back an arming that a producer answered: it cleared the flag and
 * rang (or is about to), so empty the eventfd's counter; epoll then stops
 * reporting the descriptor readable until the next arming is answered.
 * A producer still between its clearing and its signal leaves one
 * spurious readiness behind, which the next receive (-EAGAIN) re-arms.
 */
static void cons_disarm(shmcap_channel *ch)
{
	uint32_t *armed = &ch->ctrl->prod.cons_armed;
	uint32_t v = load32(armed, ORDER_RELAXED);

	ch->armed = 0;
	if (ch->kind == SHMCAP_CHANNEL_BROADCAST) {
		if (!bc_disarm(ch))
			bc_bell_drain(ch);
		return;
	}
	/* Still set: nobody rang; clear it so producers stay quiet. */
	if (v != 0 && cas32(armed, &v, 0, ORDER_RELAXED))
		return;
	shmcap_notifier_wait(ch->notifier, 0);
}

/*
 * The channel was found empty by a non-blocking receive: ask the
 * producers to ring the notifier at their next commit. 1 if the caller
 * must look at the ring once more, 0 if an arming is still pending (no
 * commit since: nothing to look for). The seq_cst store, and the fences
 * before the caller's second look, pair with the producer's publication
 * and load of the flag in ring_bell() or bc_ring_bells().
 */
static int cons_arm(shmcap_channel *ch)
{
	uint32_t *armed = &ch->ctrl->prod.cons_armed;

	if (ch->kind == SHMCAP_CHANNEL_BROADCAST) {
		/*
		 * Armed before and nothing found: the readiness was
		 * spurious (anyone may send to the bell), or a producer
		 * rang just now. Empty the bell, then look at the ring
		 * again (a ring emptied here follows its publication);
		 * arm afresh if a producer took the arming.
		 */
		if (ch->armed) {
			bc_bell_drain(ch);
			if (load64(&ch->me->pend_size, ORDER_SEQ_CST) ==
			    (ch->bell | 1))
				return 1;
			ch->armed = 0;
		}
		/* Our bit in our slot, and one more on the count. */
		store64(&ch->me->pend_size, ch->bell | 1, ORDER_SEQ_CST);
		fetch_add32(armed, 1, ORDER_SEQ_CST);
	} else {
		if (ch->armed) {
			if (load32(armed, ORDER_SEQ_CST) != 0)
				return 0;
			cons_disarm(ch);
		}
		store32(armed, 1, ORDER_SEQ_CST);
	}
	ch->armed = 1;
	fence(ORDER_SEQ_CST);
	heavy_fence(ch);
	return 1;
}

/*
 * As cons_wait_next(), plus the notifier: a non-blocking receive that
 * finds nothing arms it; a receive that gets a message after an arming
 * takes the arming back.
 */
static HOT int cons_next(shmcap_channel *ch, const void **p, uint64_t *len,
			 int64_t timeout_ns)
{
	int ret = cons_wait_next(ch, p, len, timeout_ns);

	if (ret == -EAGAIN && timeout_ns == 0 &&
	    (ch->notifier || ch->bell_fd >= 0) && cons_arm(ch))
		ret = cons_wait_next(ch, p, len, 0);
	if (ret == 0 && ch->armed)
		cons_disarm(ch);
	return ret;
}

static inline void cons_take(shmcap_channel *ch)
{
	if (ch->kind == SHMCAP_CHANNEL_MPSC) {
		mp_take(ch, ch->held);
	} else {
		ch->pos += ch->held;
		if (ch->hdr == BC_REC_HDR) {
			/* Lossy: numbers skipped were overwritten unread. */
			if (ch->have_seq && ch->lossy)
				bc_lost(ch, ch->cur_seq - ch->seq);
			ch->seq = ch->cur_seq + 1;
			ch->have_seq = 1;
		}
	}
	ch->nmsgs++;
	ch->held = 0;
}

/* The next message already there, without waiting: as cons_peek(). */
static int cons_peek_any(shmcap_channel *ch, const void **p, uint64_t *len)
{
	uint64_t h;
	int ret;

	if (ch->kind != SHMCAP_CHANNEL_MPSC)
		return cons_peek(ch, p, len);
	ret = mp_peek(ch, p, len, &h);
	return ret > 0 ? -EAGAIN : ret;
}

SHMCAP_EXPORT int shmcap_channel_recv_ptr(shmcap_channel *ch, const void **ptr,
					  size_t *len, int64_t timeout_ns)
{
	uint64_t l;
	int ret = ch_check(ch, SHMCAP_CHANNEL_CONSUMER);

	if (ret < 0)
		return ret;
	if (!ptr)
		return -EINVAL;
	if (ch->lossy)
		return -EOPNOTSUPP; /* bytes could change while read */
	ret = cons_next(ch, ptr, &l, timeout_ns);
	if (ret < 0)
		return ret;
	if (len)
		*len = l;
	return (int)l;
}

SHMCAP_EXPORT int shmcap_channel_release(shmcap_channel *ch)
{
	int ret = ch_check(ch, SHMCAP_CHANNEL_CONSUMER);

	if (ret < 0)
		return ret;
	if (!ch->held)
		return -EINVAL;
	cons_take(ch);
	publish(ch);
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_recv(shmcap_channel *ch, void *buf,
				      size_t size, int64_t timeout_ns)
{
	int64_t deadline = 0, left = timeout_ns;
	const void *p;
	uint64_t l;
	int ret = ch_check(ch, SHMCAP_CHANNEL_CONSUMER);

	if (ret < 0)
		return ret;
	if (!buf && size)
		return -EINVAL;
	if (ch->lossy && timeout_ns > 0)
		deadline = shmcap__deadline(timeout_ns);
	for (;;) {
		ret = cons_next(ch, &p, &l, left);
		if (ret < 0)
			return ret;
		if (l > size) {
			ch->held =
				0; /* left in the channel for a larger buffer */
			return -EMSGSIZE;
		}
		if (l) /* buf may be NULL for an empty message */
			memcpy(buf, p, l);
		/* Lossy: keep the copy only if nothing overwrote it. */
		if (!ch->lossy || !bc_lapped(ch, ch->rec_pos))
			break;
		ret = bc_resync(ch);
		if (ret != -EAGAIN)
			return ret;
		if (timeout_ns > 0) {
			left = deadline - shmcap__now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
		}
	}
	cons_take(ch);
	publish(ch);
	return (int)l;
}

SHMCAP_EXPORT int shmcap_channel_recv_batch(shmcap_channel *ch,
					    struct iovec *msgs, size_t n,
					    int64_t timeout_ns)
{
	const void *p;
	uint64_t l;
	size_t i;
	int ret = ch_check(ch, SHMCAP_CHANNEL_CONSUMER);

	if (ret < 0)
		return ret;
	if (!msgs || n == 0 || ch->held)
		return -EINVAL;
	if (n > INT_MAX)
		n = INT_MAX;
	for (i = 0; i < n; i++) {
		if (!msgs[i].iov_base && msgs[i].iov_len)
			return -EINVAL;
	}
	if (ch->lossy) {
		/* Each copy is checked on its own (shmcap_channel_recv). */
		for (i = 0; i < n; i++) {
			ret = shmcap_channel_recv(ch, msgs[i].iov_base,
						  msgs[i].iov_len,
						  i ? 0 : timeout_ns);
			if (ret < 0)
				break;
			msgs[i].iov_len = (size_t)ret;
		}
		return i ? (int)i : ret;
	}
	for (i = 0; i < n; i++) {
		if (i == 0) {
			ret = cons_next(ch, &p, &l, timeout_ns);
		} else {
			ret = cons_peek_any(ch, &p, &l);
			if (ret == -EAGAIN) {
				/* Look once more at the producer's line. */
				ret = refresh(ch, ORDER_ACQUIRE);
				if (ret == 0)
					ret = cons_peek_any(ch, &p, &l);
			}
		}
		if (ret < 0)
			break;
		if (l > msgs[i].iov_len) {
			ch->held = 0;
			ret = -EMSGSIZE;
			break;
		}
		if (l)
			memcpy(msgs[i].iov_base, p, l);
		msgs[i].iov_len = l;
		cons_take(ch);
	}
	if (i == 0)
		return ret;
	publish(ch);
	return (int)i;
}

/* ------------------------------------------------------------------------
 * Notifier (epoll)
 */

SHMCAP_EXPORT int shmcap_channel_set_notifier(shmcap_channel *ch,
					      shmcap_cap *notifier)
{
	unsigned int need;
	shmcap_cap *copy;
	int ret;

	if (!ch || !notifier ||
	    shmcap_cap_type(notifier) != SHMCAP_TYPE_NOTIFIER)
		return -EINVAL;
	if (ch->kind == SHMCAP_CHANNEL_BROADCAST)
		return -EOPNOTSUPP;
	need = ch->role == SHMCAP_CHANNEL_PRODUCER ? SHMCAP_RIGHT_SIGNAL :
						     SHMCAP_RIGHT_WAIT;
	if (!(shmcap_cap_rights(notifier) & need))
		return -EACCES;
	ret = shmcap_cap_derive(notifier, need, &copy);
	if (ret < 0)
		return ret;
	/*
	 * A replaced notifier: forget our arming (a producer may ring the
	 * old one once); the next empty receive arms again.
	 */
	shmcap_cap_close(ch->notifier);
	ch->notifier = copy;
	ch->armed = 0;
	return 0;
}

SHMCAP_EXPORT int shmcap_channel_fd(shmcap_channel *ch)
{
	int ret;

	if (!ch || ch->role != SHMCAP_CHANNEL_CONSUMER)
		return -EINVAL;
	if (ch->kind == SHMCAP_CHANNEL_BROADCAST) {
		/* A subscriber's own bell, made at the first call. */
		if (ch->bell_fd < 0) {
			if (ch->broken)
				return -EBADMSG;
			ret = bc_bell_open(ch);
			if (ret < 0)
				return ret;
		}
		return ch->bell_fd;
	}
	if (!ch->notifier)
		return -ENOENT;
	return shmcap_cap_fd(ch->notifier);
}

SHMCAP_EXPORT int64_t shmcap_channel_missed(shmcap_channel *ch)
{
	int64_t n;

	if (!ch || ch->role != SHMCAP_CHANNEL_CONSUMER)
		return -EINVAL;
	n = ch->missed > INT64_MAX ? INT64_MAX : (int64_t)ch->missed;
	ch->missed = 0;
	return n;
}
