/* SPDX-License-Identifier: MIT */
/*
 * bench_channel: message channels between two processes -- shmcap's
 * channels against the usual ways to pass a message.
 *
 * Round-trip benches (64-byte messages; A sends one, B answers with it):
 *   chan_pingpong        busy-poll peers, back to back
 *   chan_pingpong_block  blocking peers, back to back
 *   chan_pingpong_idle   blocking peers, A sleeping 1 ms before every
 *                        round trip, so that the receivers go to sleep
 *   chan_idle_cpu        a blocking receiver whose message comes after
 *                        0.3 s: the CPU time it uses meanwhile
 * Throughput benches (a producer and its consumers, timed in the
 * consumers; see hb_throughput()):
 *   chan_tput            one-way 64-byte messages, messages/s
 *   chan_bulk_1m         1 MiB messages, GB/s; memcpy in one process is
 *                        the limit
 *   chan_fanout4         64-byte messages to 4 consumers that each get
 *                        every one, messages/s (the slowest consumer's)
 *
 * Peers. Every message is 64 bytes (or 1 MiB) copied in by the sender and
 * out by the receiver, with a sequence number that the receiver checks.
 *   spin         a 64-byte cache line per direction; the sender writes
 *                the payload, then the sequence number (release); the
 *                receiver spins with pause on it
 *   futex        the same lines, but every wait is FUTEX_WAIT and every
 *                send a FUTEX_WAKE: no spinning at all
 *   ring         a single-producer single-consumer ring in shared memory:
 *                256 slots of 64 bytes, free-running head and tail on
 *                their own cache lines, each side caching the other's
 *                index; busy-polling; indices published after every
 *                message
 *   ring_b32     the same ring publishing its indices every 32 messages
 *                (and before waiting), as the peers' reference figures
 *                do: the fastest a plain ring goes (throughput only)
 *   ring_bulk    the ring with four 1 MiB slots
 *   pipe         a pipe per direction (per consumer in chan_fanout4),
 *                64-byte write(2)/read(2)
 *   pipe_1m      a pipe with a 1 MiB buffer (F_SETPIPE_SZ), bulk only
 *   socketpair   a Unix SOCK_STREAM socketpair, 64-byte send/recv
 *   mq           two POSIX message queues (mq_send/mq_receive, 10
 *                messages of 64 bytes), unlinked as soon as both are open
 *   memcpy       one process copying 1 MiB between two buffers, bulk only
 *   iox_poll     Eclipse iceoryx 2.0.3 (C binding) publisher/subscriber,
 *                the receiver polling take with a pause between attempts
 *   iox_waitset  the same, the receiver sleeping in a WaitSet
 *
 * iceoryx is built in when CMake finds its package (Debian's
 * libiceoryx-binding-c-dev); the program then starts iox-roudi itself
 * with a generated configuration and stops it (SIGTERM, by its pid) at
 * the end. Every iceoryx process calls iox_runtime_init() after fork():
 * the round trips use HB_IMPL_OWN_PROCESS, so that the harness's own
 * process never starts a runtime that later responders would inherit.
 *
 * shmcap's rows (see "shmcap channels" below): shmcap, a single-producer
 * channel per direction, polled with timeout 0 in chan_pingpong and
 * waited on with SHMCAP_FOREVER elsewhere; shmcap_zc, the zero-copy calls
 * (reserve/commit, recv_ptr/release) in chan_tput; chan_bulk_1m's shmcap
 * is zero-copy too; chan_fanout4's shmcap is one broadcast channel
 * (SHMCAP_CHANNEL_BROADCAST, not lossy: the slowest of the 4 subscribers
 * holds the producer back, as with the pipes and iceoryx's blocking
 * queues), copying send and recv with SHMCAP_FOREVER.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#ifdef SHMCAP_BENCH_ICEORYX
/* Its headers declare "f()" for "f(void)" (C++ style). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>
#include <iceoryx_binding_c/wait_set.h>
#pragma GCC diagnostic pop
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define MSG_BYTES 64
#define BULK_BYTES ((size_t)1 << 20)
#define FANOUT 4

/* A 64-byte message: a sequence number and a payload. */
struct msg {
	uint64_t seq;
	unsigned char payload[MSG_BYTES - 8];
};

_Static_assert(sizeof(struct msg) == MSG_BYTES, "64-byte messages");

/*
 * The sequence numbers of this process: the next to send, the next
 * expected. Every implementation's setup() resets them (reset_seq()), in
 * the harness's process before it forks the run's processes, which
 * inherit them: the round-trip initiator is the harness's process itself,
 * and keeps counting from run to run otherwise.
 */
static uint64_t tx_seq, rx_seq;

static void make_msg(struct msg *m)
{
	m->seq = tx_seq++;
	m->payload[0] = (unsigned char)m->seq;
}

/* A message received in order, or -EBADMSG. */
static int check_msg(const struct msg *m)
{
	if (m->seq != rx_seq || m->payload[0] != (unsigned char)m->seq)
		return -EBADMSG;
	rx_seq++;
	return 0;
}

/* The initiator's check of an echo: its own last message back. */
static int check_echo(const struct msg *m)
{
	return m->seq + 1 == tx_seq ? 0 : -EBADMSG;
}

static int reset_seq(struct hb_ctx *ctx)
{
	(void)ctx;
	tx_seq = rx_seq = 0;
	return 0;
}

/* Bulk: a private source and destination buffer in every process. */
static unsigned char *bulk_src, *bulk_dst;

static int bulk_bufs(void)
{
	if (!bulk_src)
		bulk_src = aligned_alloc(4096, BULK_BYTES);
	if (!bulk_dst)
		bulk_dst = aligned_alloc(4096, BULK_BYTES);
	if (!bulk_src || !bulk_dst)
		return -ENOMEM;
	/* Touch them: page faults stay out of the timed part. */
	memset(bulk_src, 0x5a, BULK_BYTES);
	memset(bulk_dst, 0, BULK_BYTES);
	return 0;
}

static void bulk_stamp(uint64_t seq)
{
	memcpy(bulk_src, &seq, sizeof(seq));
}

static int bulk_check(void)
{
	uint64_t seq;

	memcpy(&seq, bulk_dst, sizeof(seq));
	if (seq != rx_seq)
		return -EBADMSG;
	rx_seq++;
	return 0;
}

/* ------------------------------------------------------------------------
 * Descriptors: whole reads and writes
 */

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * spin and futex: one 64-byte line per direction
 *
 * The sender copies the payload in and then stores the sequence number
 * (release); the receiver waits until the number changes (acquire, pairs
 * with that store) and copies the payload out. Round trips alternate
 * strictly, so a line is never written while it is read.
 */

struct line {
	_Alignas(64) uint32_t seq; /* the last message's number + 1 */
	uint32_t pad;
	unsigned char data[MSG_BYTES - 8];
};

struct lines {
	struct line ab; /* initiator -> responder */
	char gap[64];	/* no adjacent-line prefetch between them */
	struct line ba; /* responder -> initiator */
};

static uint32_t line_seen; /* the responder's last number seen */

static int line_setup(struct hb_ctx *ctx)
{
	line_seen = 0;
	return reset_seq(ctx);
}

static int futex_wait(uint32_t *w, uint32_t val)
{
	if (syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

static int futex_wake(uint32_t *w)
{
	if (syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
		return -errno;
	return 0;
}

static void line_put(struct line *l, const struct msg *m, uint32_t seq)
{
	memcpy(l->data, m->payload, sizeof(l->data));
	/* Pairs with the acquire load in line_get(). */
	__atomic_store_n(&l->seq, seq, __ATOMIC_RELEASE);
}

static void line_get(struct line *l, struct msg *m, uint32_t seq)
{
	m->seq = seq - 1;
	memcpy(m->payload, l->data, sizeof(l->data));
}

/* Wait until l->seq != old, spinning or on the futex; its new value. */
static int line_wait(struct line *l, uint32_t old, int block, uint32_t *seq)
{
	uint32_t v;
	int err;

	/* Acquire: pairs with the release store in line_put(). */
	while ((v = __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE)) == old) {
		if (!block) {
			cpu_relax();
			continue;
		}
		err = futex_wait(&l->seq, old);
		if (err < 0)
			return err;
	}
	*seq = v;
	return 0;
}

static int line_ping(struct hb_ctx *ctx, int block)
{
	struct lines *s = ctx->shm;
	struct msg m;
	uint32_t want, got;
	int err;

	make_msg(&m);
	want = (uint32_t)tx_seq;
	line_put(&s->ab, &m, want);
	if (block) {
		err = futex_wake(&s->ab.seq);
		if (err < 0)
			return err;
	}
	err = line_wait(&s->ba, want - 1, block, &got);
	if (err < 0)
		return err;
	line_get(&s->ba, &m, got);
	return check_echo(&m);
}

static int line_pong(struct hb_ctx *ctx, int block)
{
	struct lines *s = ctx->shm;
	struct msg m;
	uint32_t got;
	int err;

	err = line_wait(&s->ab, line_seen, block, &got);
	if (err < 0)
		return err;
	line_seen = got;
	line_get(&s->ab, &m, got);
	line_put(&s->ba, &m, got);
	return block ? futex_wake(&s->ba.seq) : 0;
}

static int spin_ping(struct hb_ctx *ctx)
{
	return line_ping(ctx, 0);
}

static int spin_pong(struct hb_ctx *ctx)
{
	return line_pong(ctx, 0);
}

static int futex_ping(struct hb_ctx *ctx)
{
	return line_ping(ctx, 1);
}

static int futex_pong(struct hb_ctx *ctx)
{
	return line_pong(ctx, 1);
}

/* ------------------------------------------------------------------------
 * ring: a single-producer single-consumer ring in shared memory
 *
 * head (the producer's) and tail (the consumer's) count messages for ever;
 * head - tail (unsigned, so wrap-around does not matter) is the number
 * waiting, and slot i % nslots holds message i. Each side keeps a copy of
 * the other's index and reads the shared one only when its copy says the
 * ring is full (empty), so that in steady streaming the index lines move
 * between the cores rarely. An index is published with a release store
 * after the slot was written (read), and read with an acquire load before
 * the slot is read (reused). With batch > 1 a side publishes its index
 * only every batch messages, and always before it waits for the other.
 */

struct ring_idx {
	_Alignas(64) uint64_t head;  /* next slot the producer writes */
	_Alignas(128) uint64_t tail; /* next slot the consumer reads */
};

/* One process's end of a ring. */
struct ring {
	struct ring_idx *idx;
	unsigned char *slots;
	size_t size;	 /* bytes per slot */
	uint64_t mask;	 /* slots - 1, a power of two */
	uint64_t batch;	 /* publish the index every batch messages */
	uint64_t pos;	 /* producer: head; consumer: tail */
	uint64_t pub;	 /* the index as last published */
	uint64_t cached; /* the other side's index as last read */
};

static void ring_init(struct ring *r, struct ring_idx *idx, void *slots,
		      size_t size, uint64_t nslots, uint64_t batch)
{
	memset(r, 0, sizeof(*r));
	r->idx = idx;
	r->slots = slots;
	r->size = size;
	r->mask = nslots - 1;
	r->batch = batch;
}

static void ring_publish(struct ring *r, uint64_t *where)
{
	/* Pairs with the acquire loads in ring_send()/ring_recv(). */
	__atomic_store_n(where, r->pos, __ATOMIC_RELEASE);
	r->pub = r->pos;
}

/* Where the next message goes: waits (spinning) for a free slot. */
static void *ring_reserve(struct ring *r)
{
	if (r->pos - r->cached > r->mask) {
		if (r->pub != r->pos)
			ring_publish(r, &r->idx->head);
		while (r->pos - (r->cached = __atomic_load_n(
					 &r->idx->tail, __ATOMIC_ACQUIRE)) >
		       r->mask)
			cpu_relax();
	}
	return r->slots + (r->pos & r->mask) * r->size;
}

static void ring_commit(struct ring *r)
{
	r->pos++;
	if (r->pos - r->pub >= r->batch)
		ring_publish(r, &r->idx->head);
}

/* The next message: waits (spinning) until there is one. */
static const void *ring_peek(struct ring *r)
{
	if (r->pos == r->cached) {
		if (r->pub != r->pos)
			ring_publish(r, &r->idx->tail);
		while ((r->cached = __atomic_load_n(
				&r->idx->head, __ATOMIC_ACQUIRE)) == r->pos)
			cpu_relax();
	}
	return r->slots + (r->pos & r->mask) * r->size;
}

static void ring_release(struct ring *r)
{
	r->pos++;
	if (r->pos - r->pub >= r->batch)
		ring_publish(r, &r->idx->tail);
}

static void ring_send(struct ring *r, const void *m, size_t len)
{
	memcpy(ring_reserve(r), m, len);
	ring_commit(r);
}

static void ring_recv(struct ring *r, void *m, size_t len)
{
	memcpy(m, ring_peek(r), len);
	ring_release(r);
}

/* The end of a stream: publish what is left. */
static void ring_flush(struct ring *r, int producer)
{
	if (r->pub != r->pos)
		ring_publish(r, producer ? &r->idx->head : &r->idx->tail);
}

#define RING_SLOTS 256

/* The shared part: index lines, then the slots of one or two rings. */
struct ring_shm {
	struct ring_idx idx[2];
	_Alignas(64) unsigned char slots[2][RING_SLOTS][MSG_BYTES];
};

_Static_assert(sizeof(struct ring_shm) <= HB_SHM_SIZE, "rings fit");

/* This process's ends: tx and rx. */
static struct ring ring_tx, ring_rx;

/* Round trips: ring 0 initiator -> responder, ring 1 back. */
static int ring_pp_setup(struct hb_ctx *ctx)
{
	struct ring_shm *s = ctx->shm;

	reset_seq(ctx);
	/* Both processes start from these; each uses its own two ends. */
	ring_init(&ring_tx, &s->idx[0], s->slots[0], MSG_BYTES, RING_SLOTS, 1);
	ring_init(&ring_rx, &s->idx[1], s->slots[1], MSG_BYTES, RING_SLOTS, 1);
	return 0;
}

static int ring_ping(struct hb_ctx *ctx)
{
	struct msg m;

	(void)ctx;
	make_msg(&m);
	ring_send(&ring_tx, &m, sizeof(m));
	ring_recv(&ring_rx, &m, sizeof(m));
	return check_echo(&m);
}

static int ring_pong(struct hb_ctx *ctx)
{
	struct msg m;

	(void)ctx;
	/* The responder reads ring 0 (the initiator's tx) and writes 1. */
	ring_recv(&ring_tx, &m, sizeof(m));
	ring_send(&ring_rx, &m, sizeof(m));
	return 0;
}

/* Throughput: ring 0 only; producer's end ring_tx, consumer's ring_rx. */
static int ring_tput_setup_batch(struct hb_ctx *ctx, uint64_t batch)
{
	struct ring_shm *s = ctx->shm;

	reset_seq(ctx);
	ring_init(&ring_tx, &s->idx[0], s->slots[0], MSG_BYTES, RING_SLOTS,
		  batch);
	ring_init(&ring_rx, &s->idx[0], s->slots[0], MSG_BYTES, RING_SLOTS,
		  batch);
	return 0;
}

static int ring_tput_setup(struct hb_ctx *ctx)
{
	return ring_tput_setup_batch(ctx, 1);
}

static int ring_b32_setup(struct hb_ctx *ctx)
{
	return ring_tput_setup_batch(ctx, 32);
}

static int ring_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n; i++) {
		make_msg(&m);
		ring_send(&ring_tx, &m, sizeof(m));
	}
	ring_flush(&ring_tx, 1);
	return 0;
}

static int ring_consume(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		ring_recv(&ring_rx, &m, sizeof(m));
		err = check_msg(&m);
	}
	ring_flush(&ring_rx, 0);
	return err;
}

/*
 * Bulk: four 1 MiB slots in a shared mapping of their own, made at the
 * first run and kept to the end (as iceoryx's segment is). A fresh
 * mapping per run made the rate bimodal from run to run (about 5 or 30
 * GB/s on the AMD guest), first blamed on where its pages landed; it
 * stays bimodal with the kept mapping: the cause is the path between
 * the two CPUs (see chan_bulk_1m below).
 */
#define BULK_SLOTS 4

static void *bulk_map;

static int ring_bulk_setup(struct hb_ctx *ctx)
{
	struct ring_shm *s = ctx->shm;
	void *p;

	reset_seq(ctx);
	if (!bulk_map) {
		p = mmap(NULL, BULK_SLOTS * BULK_BYTES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		bulk_map = p;
	}
	ring_init(&ring_tx, &s->idx[0], bulk_map, BULK_BYTES, BULK_SLOTS, 1);
	ring_init(&ring_rx, &s->idx[0], bulk_map, BULK_BYTES, BULK_SLOTS, 1);
	return 0;
}

static int bulk_proc_init(struct hb_ctx *ctx)
{
	(void)ctx;
	return bulk_bufs();
}

static int ring_bulk_produce(struct hb_ctx *ctx, long n)
{
	long i;

	(void)ctx;
	for (i = 0; i < n; i++) {
		bulk_stamp(tx_seq++);
		ring_send(&ring_tx, bulk_src, BULK_BYTES);
	}
	ring_flush(&ring_tx, 1);
	return 0;
}

static int ring_bulk_consume(struct hb_ctx *ctx, long n)
{
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		ring_recv(&ring_rx, bulk_dst, BULK_BYTES);
		err = bulk_check();
	}
	ring_flush(&ring_rx, 0);
	return err;
}

/* memcpy in one process: the limit of a transfer that copies. */
static int memcpy_consume(struct hb_ctx *ctx, long n)
{
	long i;

	(void)ctx;
	for (i = 0; i < n; i++) {
		bulk_stamp(tx_seq++);
		memcpy(bulk_dst, bulk_src, BULK_BYTES);
		/* The copy is used: the compiler must not drop it. */
		__asm__ __volatile__("" : : "r"(bulk_dst) : "memory");
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * pipe and socketpair: a descriptor pair per direction (or per consumer)
 *
 * fds[2 * i] is read, fds[2 * i + 1] written. Round trips: pair 0 is
 * initiator -> responder, pair 1 back; a socketpair is one pair of
 * sockets used both ways.
 */

static int fds[2 * FANOUT + 2] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };
static int nfds;

static void fds_close(struct hb_ctx *ctx)
{
	int i;

	(void)ctx;
	for (i = 0; i < nfds; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	nfds = 0;
}

static int pipes_open(int pairs, int size)
{
	int i;

	for (i = 0; i < pairs; i++) {
		if (pipe2(fds + 2 * i, O_CLOEXEC) < 0)
			goto fail;
		nfds += 2;
		if (size && fcntl(fds[2 * i], F_SETPIPE_SZ, size) < 0)
			goto fail;
	}
	return 0;
fail:
	i = -errno;
	fds_close(NULL);
	return i;
}

static int pipe_pp_setup(struct hb_ctx *ctx)
{
	reset_seq(ctx);
	return pipes_open(2, 0);
}

static int fd_ping(int rfd, int wfd)
{
	struct msg m;
	int err;

	make_msg(&m);
	err = write_full(wfd, &m, sizeof(m));
	if (err == 0)
		err = read_full(rfd, &m, sizeof(m));
	return err < 0 ? err : check_echo(&m);
}

static int fd_pong(int rfd, int wfd)
{
	struct msg m;
	int err;

	err = read_full(rfd, &m, sizeof(m));
	return err < 0 ? err : write_full(wfd, &m, sizeof(m));
}

static int pipe_ping(struct hb_ctx *ctx)
{
	(void)ctx;
	return fd_ping(fds[2], fds[1]);
}

static int pipe_pong(struct hb_ctx *ctx)
{
	(void)ctx;
	return fd_pong(fds[0], fds[3]);
}

static int sock_setup(struct hb_ctx *ctx)
{
	reset_seq(ctx);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	nfds = 2;
	return 0;
}

static int sock_ping(struct hb_ctx *ctx)
{
	(void)ctx;
	return fd_ping(fds[0], fds[0]);
}

static int sock_pong(struct hb_ctx *ctx)
{
	(void)ctx;
	return fd_pong(fds[1], fds[1]);
}

/* Throughput: one pair per consumer. */
static int pipe_tput_setup(struct hb_ctx *ctx)
{
	reset_seq(ctx);
	return pipes_open(1, 0);
}

static int pipe_fanout_setup(struct hb_ctx *ctx)
{
	reset_seq(ctx);
	return pipes_open(FANOUT, 0);
}

static int pipe_1m_setup(struct hb_ctx *ctx)
{
	reset_seq(ctx);
	return pipes_open(1, (int)BULK_BYTES);
}

static int fd_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int k, err = 0;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		make_msg(&m);
		for (k = 1; k < nfds && err == 0; k += 2)
			err = write_full(fds[k], &m, sizeof(m));
	}
	return err;
}

static int fd_consume(struct hb_ctx *ctx, long n)
{
	int fd = fds[2 * ctx->index];
	struct msg m;
	long i;
	int err = 0;

	for (i = 0; i < n && err == 0; i++) {
		err = read_full(fd, &m, sizeof(m));
		if (err == 0)
			err = check_msg(&m);
	}
	return err;
}

static int sock_tput_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		make_msg(&m);
		err = write_full(fds[0], &m, sizeof(m));
	}
	return err;
}

static int sock_tput_consume(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = read_full(fds[1], &m, sizeof(m));
		if (err == 0)
			err = check_msg(&m);
	}
	return err;
}

static int fd_bulk_produce(struct hb_ctx *ctx, long n)
{
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		bulk_stamp(tx_seq++);
		err = write_full(fds[1], bulk_src, BULK_BYTES);
	}
	return err;
}

static int fd_bulk_consume(struct hb_ctx *ctx, long n)
{
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = read_full(fds[0], bulk_dst, BULK_BYTES);
		if (err == 0)
			err = bulk_check();
	}
	return err;
}

/* ------------------------------------------------------------------------
 * mq: POSIX message queues, one per direction
 *
 * Opened in setup() (the descriptors survive fork()) and unlinked at once,
 * so that no queue outlives the program, however it ends.
 */

static mqd_t mqs[2] = { (mqd_t)-1, (mqd_t)-1 };

static void mq_teardown(struct hb_ctx *ctx)
{
	int i;

	(void)ctx;
	for (i = 0; i < 2; i++) {
		if (mqs[i] != (mqd_t)-1)
			mq_close(mqs[i]);
		mqs[i] = (mqd_t)-1;
	}
}

static int mq_setup(struct hb_ctx *ctx)
{
	struct mq_attr attr = { .mq_maxmsg = 10, .mq_msgsize = MSG_BYTES };
	char name[64];
	int i, err;

	reset_seq(ctx);
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "/shmcap-bench-%d-%d",
			 (int)getpid(), i);
		mqs[i] = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
				 0600, &attr);
		if (mqs[i] == (mqd_t)-1) {
			err = -errno;
			mq_teardown(ctx);
			return err;
		}
		mq_unlink(name);
	}
	return 0;
}

static int mq_send_msg(mqd_t q, const struct msg *m)
{
	while (mq_send(q, (const char *)m, sizeof(*m), 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int mq_recv_msg(mqd_t q, struct msg *m)
{
	ssize_t n;

	while ((n = mq_receive(q, (char *)m, sizeof(*m), NULL)) < 0)
		if (errno != EINTR)
			return -errno;
	return n == (ssize_t)sizeof(*m) ? 0 : -EBADMSG;
}

static int mq_ping(struct hb_ctx *ctx)
{
	struct msg m;
	int err;

	(void)ctx;
	make_msg(&m);
	err = mq_send_msg(mqs[0], &m);
	if (err == 0)
		err = mq_recv_msg(mqs[1], &m);
	return err < 0 ? err : check_echo(&m);
}

static int mq_pong(struct hb_ctx *ctx)
{
	struct msg m;
	int err;

	(void)ctx;
	err = mq_recv_msg(mqs[0], &m);
	return err < 0 ? err : mq_send_msg(mqs[1], &m);
}

static int mq_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		make_msg(&m);
		err = mq_send_msg(mqs[0], &m);
	}
	return err;
}

static int mq_consume(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = mq_recv_msg(mqs[0], &m);
		if (err == 0)
			err = check_msg(&m);
	}
	return err;
}

/* ------------------------------------------------------------------------
 * iceoryx 2.0.3 through its C binding
 */

#ifdef SHMCAP_BENCH_ICEORYX

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000 };

	nanosleep(&ts, NULL);
}

#define IOX_SERVICE "shmcap-bench"
#define IOX_WAIT_NS ((int64_t)10 * 1000000000)

/* The daemon, started by main() when an iceoryx implementation runs. */
static pid_t roudi_pid = -1, main_pid;
static char roudi_conf[64], roudi_log[64];

/*
 * Its configuration: one segment with the mempools our messages need (a
 * chunk is the payload plus its header: 64 bytes need the 128-byte pool,
 * 1 MiB a pool a little over 1 MiB).
 */
static const char roudi_toml[] = "[general]\n"
				 "version = 1\n"
				 "\n"
				 "[[segment]]\n"
				 "\n"
				 "[[segment.mempool]]\n"
				 "size = 128\n"
				 "count = 10000\n"
				 "\n"
				 "[[segment.mempool]]\n"
				 "size = 1024\n"
				 "count = 1000\n"
				 "\n"
				 "[[segment.mempool]]\n"
				 "size = 1049600\n"
				 "count = 8\n";

static void roudi_stop(void)
{
	int status;

	/* exit() in a forked child runs this too: only main() owns it. */
	if (roudi_pid <= 0 || getpid() != main_pid)
		return;
	kill(roudi_pid, SIGTERM);
	while (waitpid(roudi_pid, &status, 0) < 0 && errno == EINTR)
		;
	roudi_pid = -1;
	unlink(roudi_conf);
	unlink(roudi_log);
}

/* Its output, which goes to a file: shown only when it failed. */
static void roudi_show_log(void)
{
	char buf[4096];
	FILE *f = fopen(roudi_log, "r");
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "bench_channel: iox-roudi said:\n");
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

/* Whether a daemon answers on its socket (/tmp/roudi, a datagram one). */
static int roudi_listening(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX,
				  .sun_path = "/tmp/roudi" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int roudi_start(void)
{
	int64_t deadline;
	int fd, status, logfd;
	size_t len = sizeof(roudi_toml) - 1;

	main_pid = getpid();
	if (roudi_listening()) {
		fprintf(stderr, "bench_channel: an iox-roudi is already "
				"running (/tmp/roudi): not starting ours\n");
		return -EBUSY;
	}
	snprintf(roudi_conf, sizeof(roudi_conf),
		 "/tmp/shmcap-bench-roudi-XXXXXX");
	fd = mkstemp(roudi_conf);
	if (fd < 0)
		return -errno;
	if (write_full(fd, roudi_toml, len) < 0) {
		close(fd);
		unlink(roudi_conf);
		return -EIO;
	}
	close(fd);
	snprintf(roudi_log, sizeof(roudi_log),
		 "/tmp/shmcap-bench-roudi-XXXXXX");
	logfd = mkstemp(roudi_log);
	if (logfd < 0) {
		unlink(roudi_conf);
		return -errno;
	}
	fflush(NULL);
	roudi_pid = fork();
	if (roudi_pid < 0) {
		close(logfd);
		unlink(roudi_conf);
		unlink(roudi_log);
		return -errno;
	}
	if (roudi_pid == 0) {
		/* Ends with us, however we end (the watchdog's _exit()). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execlp("iox-roudi", "iox-roudi", "-c", roudi_conf, "-m", "off",
		       "-l", "warning", (char *)NULL);
		fprintf(stderr, "bench_channel: iox-roudi: %s\n",
			strerror(errno));
		_exit(127);
	}
	close(logfd);
	atexit(roudi_stop);
	deadline = now_ns() + IOX_WAIT_NS;
	while (!roudi_listening()) {
		if (waitpid(roudi_pid, &status, WNOHANG) == roudi_pid ||
		    now_ns() > deadline) {
			fprintf(stderr, "bench_channel: iox-roudi did not "
					"start\n");
			if (now_ns() > deadline)
				kill(roudi_pid, SIGKILL);
			waitpid(roudi_pid, &status, 0);
			roudi_show_log();
			roudi_pid = -1;
			unlink(roudi_conf);
			unlink(roudi_log);
			return -ECHILD;
		}
		sleep_ms(5);
	}
	return 0;
}

/* The run's topic: unique, so that no port of an earlier run matches. */
struct iox_shm {
	char instance[32];
};

/* This process's ports. */
static struct {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	int waitset; /* the receiver sleeps in ws rather than polling */
	uint32_t size;
} iox;

static int iox_setup(struct hb_ctx *ctx)
{
	static unsigned int runs;
	struct iox_shm *s = ctx->shm;

	reset_seq(ctx);
	if (roudi_pid <= 0)
		return -ENOTCONN;
	snprintf(s->instance, sizeof(s->instance), "p%d-r%u", (int)getpid(),
		 runs++);
	return 0;
}

static void iox_ws_nop(iox_sub_t sub)
{
	(void)sub;
}

/*
 * Start the runtime (once per process: every process is a fresh fork)
 * and make the ports: a publisher on pub_event and a subscriber on
 * sub_event, either may be NULL; the subscriber's queue holds queue
 * messages. lossless: a full queue holds the publisher back (throughput:
 * no message may be lost); otherwise iceoryx's defaults (round trips,
 * where a queue never fills: the blocking policy costs a little there).
 * Then wait until they are connected.
 */
static int iox_open(struct hb_ctx *ctx, const char *pub_event,
		    const char *sub_event, uint64_t queue, int waitset,
		    int lossless, uint32_t size)
{
	struct iox_shm *s = ctx->shm;
	iox_pub_options_t po;
	iox_sub_options_t so;
	char name[64];
	int64_t deadline;

	snprintf(name, sizeof(name), "shmcap-bench-%d", (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
	iox.pub = NULL;
	iox.sub = NULL;
	iox.ws = NULL;
	iox.waitset = waitset;
	iox.size = size;
	if (pub_event) {
		iox_pub_options_init(&po);
		po.historyCapacity = 0;
		if (lossless)
			po.subscriberTooSlowPolicy =
				ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
		iox.pub = iox_pub_init(&iox.pub_st, IOX_SERVICE, s->instance,
				       pub_event, &po);
	}
	if (sub_event) {
		iox_sub_options_init(&so);
		so.queueCapacity = queue;
		so.historyRequest = 0;
		if (lossless)
			so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
		iox.sub = iox_sub_init(&iox.sub_st, IOX_SERVICE, s->instance,
				       sub_event, &so);
		if (waitset) {
			iox.ws = iox_ws_init(&iox.ws_st);
			if (iox_ws_attach_subscriber_state(
				    iox.ws, iox.sub, SubscriberState_HAS_DATA,
				    0, iox_ws_nop) != WaitSetResult_SUCCESS)
				return -EIO;
		}
	}
	/* Connected both ways before the first message. */
	deadline = now_ns() + IOX_WAIT_NS;
	while ((iox.pub && !iox_pub_has_subscribers(iox.pub)) ||
	       (iox.sub && iox_sub_get_subscription_state(iox.sub) !=
				   SubscribeState_SUBSCRIBED)) {
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	return 0;
}

static void iox_close(struct hb_ctx *ctx)
{
	(void)ctx;
	if (iox.ws) {
		iox_ws_detach_subscriber_state(iox.ws, iox.sub,
					       SubscriberState_HAS_DATA);
		iox_ws_deinit(iox.ws);
	}
	if (iox.sub)
		iox_sub_deinit(iox.sub);
	if (iox.pub)
		iox_pub_deinit(iox.pub);
	iox.ws = NULL;
	iox.sub = NULL;
	iox.pub = NULL;
	/* The runtime deregisters in its destructor, at exit(). */
}

static int iox_pp_init(struct hb_ctx *ctx, int waitset)
{
	int init = ctx->role == HB_INITIATOR;

	return iox_open(ctx, init ? "ping" : "pong", init ? "pong" : "ping", 1,
			waitset, 0, MSG_BYTES);
}

static int iox_poll_pp_init(struct hb_ctx *ctx)
{
	return iox_pp_init(ctx, 0);
}

static int iox_ws_pp_init(struct hb_ctx *ctx)
{
	return iox_pp_init(ctx, 1);
}

static int iox_send(const void *data, size_t len)
{
	void *chunk;

	if (iox_pub_loan_chunk(iox.pub, &chunk, (uint32_t)len) !=
	    AllocationResult_SUCCESS)
		return -ENOBUFS;
	memcpy(chunk, data, len);
	iox_pub_publish_chunk(iox.pub, chunk);
	return 0;
}

/* The next chunk: polls with pause, or sleeps in the WaitSet. */
static int iox_take(const void **chunk)
{
	iox_notification_info_t info[1];
	enum iox_ChunkReceiveResult r;
	uint64_t missed;

	for (;;) {
		r = iox_sub_take_chunk(iox.sub, chunk);
		if (r == ChunkReceiveResult_SUCCESS)
			return 0;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
			return -EIO;
		if (iox.waitset)
			iox_ws_wait(iox.ws, info, 1, &missed);
		else
			cpu_relax();
	}
}

static int iox_recv(void *data, size_t len)
{
	const void *chunk;
	int err = iox_take(&chunk);

	if (err < 0)
		return err;
	memcpy(data, chunk, len);
	iox_sub_release_chunk(iox.sub, chunk);
	return 0;
}

static int iox_ping(struct hb_ctx *ctx)
{
	struct msg m;
	int err;

	(void)ctx;
	make_msg(&m);
	err = iox_send(&m, sizeof(m));
	if (err == 0)
		err = iox_recv(&m, sizeof(m));
	return err < 0 ? err : check_echo(&m);
}

static int iox_pong(struct hb_ctx *ctx)
{
	struct msg m;
	int err;

	(void)ctx;
	err = iox_recv(&m, sizeof(m));
	return err < 0 ? err : iox_send(&m, sizeof(m));
}

/* Throughput: one publisher, every consumer a subscriber. */
static int iox_tput_init(struct hb_ctx *ctx, int waitset, uint32_t size,
			 uint64_t queue)
{
	int err;

	if (ctx->role == HB_PRODUCER)
		err = iox_open(ctx, "data", NULL, 0, 0, 1, size);
	else
		err = iox_open(ctx, NULL, "data", queue, waitset, 1, size);
	if (err == 0 && size == BULK_BYTES)
		err = bulk_bufs();
	return err;
}

static int iox_poll_tput_init(struct hb_ctx *ctx)
{
	return iox_tput_init(ctx, 0, MSG_BYTES, 256);
}

static int iox_ws_tput_init(struct hb_ctx *ctx)
{
	return iox_tput_init(ctx, 1, MSG_BYTES, 256);
}

static int iox_ws_bulk_init(struct hb_ctx *ctx)
{
	return iox_tput_init(ctx, 1, BULK_BYTES, 4);
}

static int iox_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		make_msg(&m);
		err = iox_send(&m, sizeof(m));
	}
	return err;
}

static int iox_consume(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = iox_recv(&m, sizeof(m));
		if (err == 0)
			err = check_msg(&m);
	}
	return err;
}

static int iox_bulk_produce(struct hb_ctx *ctx, long n)
{
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		bulk_stamp(tx_seq++);
		err = iox_send(bulk_src, BULK_BYTES);
	}
	return err;
}

static int iox_bulk_consume(struct hb_ctx *ctx, long n)
{
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = iox_recv(bulk_dst, BULK_BYTES);
		if (err == 0)
			err = bulk_check();
	}
	return err;
}

#define IOX_ANY 1

#else /* !SHMCAP_BENCH_ICEORYX */

#define IOX_ANY 0

#endif /* SHMCAP_BENCH_ICEORYX */

/* ------------------------------------------------------------------------
 * shmcap channels
 *
 * A single-producer channel (shmcap_channel_create()) per direction, in a
 * region made in setup() for every run (a role is taken once in a
 * channel's life); each process attaches its ends with
 * shmcap_channel_open() in proc_init, after fork(), since the channel
 * records who holds a role. Busy-poll rows call with timeout 0 and pause
 * between attempts; blocking rows wait with SHMCAP_FOREVER (the library
 * spins briefly, then sleeps on a futex). The bulk row is zero-copy:
 * reserve, copy in, commit; receive in place, copy out, release -- the
 * same copies as the peers make.
 *
 * SHMCAP_BENCH_NO_CHANNEL (define it) leaves these rows out, e.g. while
 * the channel does not work.
 */

#ifndef SHMCAP_BENCH_NO_CHANNEL

#define SC_RING_BYTES 16384		  /* 64-byte rows: 227 messages */
#define SC_BULK_BYTES ((uint64_t)4 << 20) /* 1 MiB rows: 3 messages */
#define SC_FANOUT_BYTES 65536		  /* broadcast, 80-byte records: 819 */

static shmcap_cap *sc_region[2];
static shmcap_channel *sc_tx, *sc_rx;

static void sc_teardown(struct hb_ctx *ctx)
{
	int i;

	(void)ctx;
	for (i = 0; i < 2; i++) {
		shmcap_cap_close(sc_region[i]);
		sc_region[i] = NULL;
	}
}

static int sc_create(struct hb_ctx *ctx, int kind, int n, uint64_t bytes,
		     uint32_t max_msg)
{
	int i, err = 0;

	reset_seq(ctx);
	sc_tx = sc_rx = NULL;
	for (i = 0; i < n && err == 0; i++)
		err = shmcap_channel_create(kind, bytes, max_msg, 0,
					    &sc_region[i]);
	if (err < 0)
		sc_teardown(ctx);
	return err;
}

static int sc_pp_setup(struct hb_ctx *ctx)
{
	return sc_create(ctx, SHMCAP_CHANNEL_SPSC, 2, SC_RING_BYTES, MSG_BYTES);
}

static int sc_tput_setup(struct hb_ctx *ctx)
{
	return sc_create(ctx, SHMCAP_CHANNEL_SPSC, 1, SC_RING_BYTES, MSG_BYTES);
}

static int sc_bulk_setup(struct hb_ctx *ctx)
{
	return sc_create(ctx, SHMCAP_CHANNEL_SPSC, 1, SC_BULK_BYTES,
			 (uint32_t)BULK_BYTES);
}

/*
 * Fan-out: one broadcast channel, not lossy: the slowest subscriber holds
 * the producer back, as a full pipe does and as iceoryx's rows are set to
 * (QueueFullPolicy_BLOCK_PRODUCER). The producer and every consumer open
 * their ends in proc_init (sc_tput_init()): a subscriber joins at the
 * tail and gets only what is sent after it attached, and the harness
 * starts the producer only when every process is past proc_init, so all
 * FANOUT subscribers are attached before the first message.
 *
 * The ring is 64 KiB, the buffer each consumer has in the pipe row (a
 * pipe's default capacity); iceoryx's queues hold 256 messages, their
 * build's maximum. The 4 subscribers share one CPU and run in turns, so
 * the ring holds what the producer sends while a subscriber waits for
 * its turn: with 16 KiB (204 messages) the producer sleeps for room far
 * more often, and the row measured 1.2-1.5 M msgs/s in two sets of 3
 * runs, against 4.0-4.4 with 64 KiB in the two sets run right after.
 */
static int sc_fanout_setup(struct hb_ctx *ctx)
{
	return sc_create(ctx, SHMCAP_CHANNEL_BROADCAST, 1, SC_FANOUT_BYTES,
			 MSG_BYTES);
}

static void sc_fini(struct hb_ctx *ctx)
{
	(void)ctx;
	shmcap_channel_close(sc_tx);
	shmcap_channel_close(sc_rx);
	sc_tx = sc_rx = NULL;
}

/* Round trips: channel 0 initiator -> responder, channel 1 back. */
static int sc_pp_init(struct hb_ctx *ctx)
{
	int init = ctx->role == HB_INITIATOR, err;

	err = shmcap_channel_open(sc_region[init ? 0 : 1],
				  SHMCAP_CHANNEL_PRODUCER, 0, &sc_tx);
	if (err == 0)
		err = shmcap_channel_open(sc_region[init ? 1 : 0],
					  SHMCAP_CHANNEL_CONSUMER, 0, &sc_rx);
	if (err < 0)
		sc_fini(ctx);
	return err;
}

/* Throughput: channel 0, the producer's end or the consumer's. */
static int sc_tput_init(struct hb_ctx *ctx)
{
	int err;

	if (ctx->role == HB_PRODUCER)
		err = shmcap_channel_open(sc_region[0], SHMCAP_CHANNEL_PRODUCER,
					  0, &sc_tx);
	else
		err = shmcap_channel_open(sc_region[0], SHMCAP_CHANNEL_CONSUMER,
					  0, &sc_rx);
	return err;
}

static int sc_bulk_init(struct hb_ctx *ctx)
{
	int err = sc_tput_init(ctx);

	return err < 0 ? err : bulk_bufs();
}

/* Send, busy-polling for room (busy) or waiting as the library does. */
static int sc_send(const void *m, size_t len, int busy)
{
	int err;

	if (!busy)
		return shmcap_channel_send(sc_tx, m, len, SHMCAP_FOREVER);
	while ((err = shmcap_channel_send(sc_tx, m, len, 0)) == -EAGAIN)
		cpu_relax();
	return err;
}

static int sc_recv(struct msg *m, int busy)
{
	int n;

	if (!busy)
		n = shmcap_channel_recv(sc_rx, m, sizeof(*m), SHMCAP_FOREVER);
	else
		while ((n = shmcap_channel_recv(sc_rx, m, sizeof(*m), 0)) ==
		       -EAGAIN)
			cpu_relax();
	if (n < 0)
		return n;
	return n == (int)sizeof(*m) ? 0 : -EBADMSG;
}

static int sc_ping(int busy)
{
	struct msg m;
	int err;

	make_msg(&m);
	err = sc_send(&m, sizeof(m), busy);
	if (err == 0)
		err = sc_recv(&m, busy);
	return err < 0 ? err : check_echo(&m);
}

static int sc_pong(int busy)
{
	struct msg m;
	int err = sc_recv(&m, busy);

	return err < 0 ? err : sc_send(&m, sizeof(m), busy);
}

static int sc_busy_ping(struct hb_ctx *ctx)
{
	(void)ctx;
	return sc_ping(1);
}

static int sc_busy_pong(struct hb_ctx *ctx)
{
	(void)ctx;
	return sc_pong(1);
}

static int sc_block_ping(struct hb_ctx *ctx)
{
	(void)ctx;
	return sc_ping(0);
}

static int sc_block_pong(struct hb_ctx *ctx)
{
	(void)ctx;
	return sc_pong(0);
}

/* Throughput, copying: send and recv, waiting as the library does. */
static int sc_produce(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		make_msg(&m);
		err = sc_send(&m, sizeof(m), 0);
	}
	return err;
}

static int sc_consume(struct hb_ctx *ctx, long n)
{
	struct msg m;
	long i;
	int err = 0;

	(void)ctx;
	for (i = 0; i < n && err == 0; i++) {
		err = sc_recv(&m, 0);
		if (err == 0)
			err = check_msg(&m);
	}
	return err;
}

/* Throughput, zero-copy: reserve/commit and recv_ptr/release. */
static int sc_zc_produce_len(long n, size_t len, const void *src)
{
	struct msg m;
	void *p;
	long i;
	int err = 0;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && err == 0; i++) {
		if (src)
			bulk_stamp(tx_seq++);
		else
			make_msg(&m);
		err = shmcap_channel_reserve(sc_tx, len, &p, SHMCAP_FOREVER);
		if (err < 0)
			break;
		if (src)
			memcpy(p, src, len);
		else
			memcpy(p, &m, sizeof(m));
		err = shmcap_channel_commit(sc_tx, len);
	}
	return err;
}

static int sc_zc_consume_len(long n, size_t len, void *dst)
{
	const void *p;
	size_t got;
	struct msg m;
	long i;
	int err = 0;

	for (i = 0; i < n && err == 0; i++) {
		err = shmcap_channel_recv_ptr(sc_rx, &p, &got, SHMCAP_FOREVER);
		if (err < 0)
			break;
		if (got != len) {
			err = -EBADMSG;
			break;
		}
		if (dst)
			memcpy(dst, p, len);
		else
			memcpy(&m, p, sizeof(m));
		err = shmcap_channel_release(sc_rx);
		if (err == 0)
			err = dst ? bulk_check() : check_msg(&m);
	}
	return err;
}

static int sc_zc_produce(struct hb_ctx *ctx, long n)
{
	(void)ctx;
	return sc_zc_produce_len(n, MSG_BYTES, NULL);
}

static int sc_zc_consume(struct hb_ctx *ctx, long n)
{
	(void)ctx;
	return sc_zc_consume_len(n, MSG_BYTES, NULL);
}

static int sc_bulk_produce(struct hb_ctx *ctx, long n)
{
	(void)ctx;
	return sc_zc_produce_len(n, BULK_BYTES, bulk_src);
}

static int sc_bulk_consume(struct hb_ctx *ctx, long n)
{
	(void)ctx;
	return sc_zc_consume_len(n, BULK_BYTES, bulk_dst);
}

#else /* SHMCAP_BENCH_NO_CHANNEL */

#endif /* SHMCAP_BENCH_NO_CHANNEL */

/* ------------------------------------------------------------------------
 * The benches
 */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * chan_pingpong: busy-poll peers (left out when sharing one core). In
 * every table shmcap comes first: the table shows its ratios to every
 * peer.
 */
static const struct hb_impl busy_impls[] = {
#ifndef SHMCAP_BENCH_NO_CHANNEL
	{
		.name = "shmcap",
		.flags = HB_IMPL_BUSY,
		.setup = sc_pp_setup,
		.proc_init = sc_pp_init,
		.proc_fini = sc_fini,
		.ping = sc_busy_ping,
		.pong = sc_busy_pong,
		.teardown = sc_teardown,
	},
#endif
	{
		.name = "spin",
		.flags = HB_IMPL_BUSY,
		.setup = line_setup,
		.ping = spin_ping,
		.pong = spin_pong,
	},
	{
		.name = "ring",
		.flags = HB_IMPL_BUSY,
		.setup = ring_pp_setup,
		.ping = ring_ping,
		.pong = ring_pong,
	},
#ifdef SHMCAP_BENCH_ICEORYX
	{
		.name = "iox_poll",
		.flags = HB_IMPL_BUSY | HB_IMPL_OWN_PROCESS,
		.setup = iox_setup,
		.proc_init = iox_poll_pp_init,
		.proc_fini = iox_close,
		.ping = iox_ping,
		.pong = iox_pong,
	},
#endif
};

/* chan_pingpong_block and chan_pingpong_idle: blocking peers. */
static const struct hb_impl block_impls[] = {
#ifndef SHMCAP_BENCH_NO_CHANNEL
	{
		.name = "shmcap",
		.setup = sc_pp_setup,
		.proc_init = sc_pp_init,
		.proc_fini = sc_fini,
		.ping = sc_block_ping,
		.pong = sc_block_pong,
		.teardown = sc_teardown,
	},
#endif
	{
		.name = "futex",
		.setup = line_setup,
		.ping = futex_ping,
		.pong = futex_pong,
	},
	{
		.name = "pipe",
		.setup = pipe_pp_setup,
		.ping = pipe_ping,
		.pong = pipe_pong,
		.teardown = fds_close,
	},
	{
		.name = "socketpair",
		.setup = sock_setup,
		.ping = sock_ping,
		.pong = sock_pong,
		.teardown = fds_close,
	},
	{
		.name = "mq",
		.setup = mq_setup,
		.ping = mq_ping,
		.pong = mq_pong,
		.teardown = mq_teardown,
	},
#ifdef SHMCAP_BENCH_ICEORYX
	{
		.name = "iox_waitset",
		.flags = HB_IMPL_OWN_PROCESS,
		.setup = iox_setup,
		.proc_init = iox_ws_pp_init,
		.proc_fini = iox_close,
		.ping = iox_ping,
		.pong = iox_pong,
	},
#endif
};

/*
 * chan_idle_cpu: the blocking peers but iceoryx (hb_idle_cpu() runs the
 * initiator in the harness's own process, where iceoryx's runtime must
 * not start).
 */
#define NIDLE (COUNT(block_impls) - IOX_ANY)

/* chan_tput: one-way 64-byte messages. */
static const struct hb_impl tput_impls[] = {
#ifndef SHMCAP_BENCH_NO_CHANNEL
	{
		.name = "shmcap",
		.setup = sc_tput_setup,
		.proc_init = sc_tput_init,
		.proc_fini = sc_fini,
		.produce = sc_produce,
		.consume = sc_consume,
		.teardown = sc_teardown,
		.msgs = 5000000,
	},
	{
		.name = "shmcap_zc",
		.setup = sc_tput_setup,
		.proc_init = sc_tput_init,
		.proc_fini = sc_fini,
		.produce = sc_zc_produce,
		.consume = sc_zc_consume,
		.teardown = sc_teardown,
		.msgs = 5000000,
	},
#endif
	{
		.name = "ring",
		.flags = HB_IMPL_BUSY,
		.setup = ring_tput_setup,
		.produce = ring_produce,
		.consume = ring_consume,
		.msgs = 5000000,
	},
	{
		.name = "ring_b32",
		.flags = HB_IMPL_BUSY,
		.setup = ring_b32_setup,
		.produce = ring_produce,
		.consume = ring_consume,
		.msgs = 10000000,
	},
	{
		.name = "pipe",
		.setup = pipe_tput_setup,
		.produce = fd_produce,
		.consume = fd_consume,
		.teardown = fds_close,
		.msgs = 500000,
	},
	{
		.name = "socketpair",
		.setup = sock_setup,
		.produce = sock_tput_produce,
		.consume = sock_tput_consume,
		.teardown = fds_close,
		.msgs = 300000,
	},
	{
		.name = "mq",
		.setup = mq_setup,
		.produce = mq_produce,
		.consume = mq_consume,
		.teardown = mq_teardown,
		.msgs = 300000,
	},
#ifdef SHMCAP_BENCH_ICEORYX
	{
		.name = "iox_poll",
		.flags = HB_IMPL_BUSY,
		.setup = iox_setup,
		.proc_init = iox_poll_tput_init,
		.proc_fini = iox_close,
		.produce = iox_produce,
		.consume = iox_consume,
		.msgs = 300000,
	},
	{
		.name = "iox_waitset",
		.setup = iox_setup,
		.proc_init = iox_ws_tput_init,
		.proc_fini = iox_close,
		.produce = iox_produce,
		.consume = iox_consume,
		.msgs = 300000,
	},
#endif
};

/*
 * chan_bulk_1m: 1 MiB messages.
 *
 * memcpy is one copy on one CPU, from and to buffers in its own cache:
 * the limit. Every other row makes two copies (into shared memory on the
 * producer's CPU, out of it on the consumer's) in parallel, and the
 * consumer's copy reads 1 MiB that sits in the other CPU's cache: its
 * rate is that of the path between the two CPUs, which memcpy never uses.
 * On the 2-vCPU AMD guest that path changes as the host moves the vCPUs
 * (it did so every fraction of a second to every few seconds): in 100 ms
 * windows, a cache-line round trip between the CPUs took 112-117 ns or
 * 450-570 ns, and a plain two-process pipeline of 1 MiB copies (no
 * library) made 29.6-30.5 GB/s in the former windows and 4-7 in the
 * latter, while memcpy alone stayed at 31-36. So a transfer's ratio to
 * memcpy swings from run to run (0.22-1.14 for shmcap, 0.22-1.06 for
 * ring_bulk, in 10 interleaved runs), whatever the transport, and
 * pairing the runs (hb_tput_ratio()) cannot cancel it, as memcpy does
 * not feel it. ring_bulk makes the same copies between the same CPUs
 * with the least machinery (spinning, 1 MiB-aligned slots), so the
 * ratio to it is what shmcap itself costs: it has a target of its own
 * next to memcpy's. Medians in four sets of 8-10 runs: 0.91-1.12x
 * ring_bulk (and the same with a 2 ms spin budget: sleeping costs
 * nothing here), 0.66-0.90x memcpy.
 * A profile (perf, cpu-clock) shows 78% of shmcap's time in memcpy and
 * 5% waiting, nothing in the channel that grows with the message.
 */
static const struct hb_impl bulk_impls[] = {
#ifndef SHMCAP_BENCH_NO_CHANNEL
	{
		.name = "shmcap",
		.setup = sc_bulk_setup,
		.proc_init = sc_bulk_init,
		.proc_fini = sc_fini,
		.produce = sc_bulk_produce,
		.consume = sc_bulk_consume,
		.teardown = sc_teardown,
		.msgs = 5000,
	},
#endif
	{
		.name = "memcpy",
		.proc_init = bulk_proc_init,
		.consume = memcpy_consume,
		.msgs = 10000,
	},
	{
		.name = "ring_bulk",
		.flags = HB_IMPL_BUSY,
		.setup = ring_bulk_setup,
		.proc_init = bulk_proc_init,
		.produce = ring_bulk_produce,
		.consume = ring_bulk_consume,
		.msgs = 5000,
	},
	{
		.name = "pipe",
		.setup = pipe_tput_setup,
		.proc_init = bulk_proc_init,
		.produce = fd_bulk_produce,
		.consume = fd_bulk_consume,
		.teardown = fds_close,
		.msgs = 300,
	},
	{
		.name = "pipe_1m",
		.setup = pipe_1m_setup,
		.proc_init = bulk_proc_init,
		.produce = fd_bulk_produce,
		.consume = fd_bulk_consume,
		.teardown = fds_close,
		.msgs = 1000,
	},
#ifdef SHMCAP_BENCH_ICEORYX
	{
		.name = "iox_waitset",
		.setup = iox_setup,
		.proc_init = iox_ws_bulk_init,
		.proc_fini = iox_close,
		.produce = iox_bulk_produce,
		.consume = iox_bulk_consume,
		.msgs = 4000,
	},
#endif
};

/* chan_fanout4: 4 consumers, blocking peers. */
static const struct hb_impl fanout_impls[] = {
#ifndef SHMCAP_BENCH_NO_CHANNEL
	{
		/*
		 * One SHMCAP_CHANNEL_BROADCAST channel, 4 subscribers; a
		 * copying send and recv, waiting with SHMCAP_FOREVER.
		 */
		.name = "shmcap",
		.setup = sc_fanout_setup,
		.proc_init = sc_tput_init,
		.proc_fini = sc_fini,
		.produce = sc_produce,
		.consume = sc_consume,
		.teardown = sc_teardown,
		.msgs = 1000000,
	},
#endif
	{
		.name = "pipe",
		.setup = pipe_fanout_setup,
		.produce = fd_produce,
		.consume = fd_consume,
		.teardown = fds_close,
		.msgs = 200000,
	},
#ifdef SHMCAP_BENCH_ICEORYX
	{
		.name = "iox_waitset",
		.setup = iox_setup,
		.proc_init = iox_ws_tput_init,
		.proc_fini = iox_close,
		.produce = iox_produce,
		.consume = iox_consume,
		.msgs = 200000,
	},
#endif
};

static const char *const benches[] = {
	"chan_pingpong",      "chan_pingpong_block",
	"chan_pingpong_idle", "chan_idle_cpu",
	"chan_tput",	      "chan_bulk_1m",
	"chan_fanout4",	      NULL,
};

/* Whether an iceoryx implementation will run, so that roudi is needed. */
static int want_iceoryx(void)
{
	return IOX_ANY &&
	       (hb_want_impl("iox_poll") || hb_want_impl("iox_waitset"));
}

int main(int argc, char **argv)
{
	static struct hb_bench pp_busy = {
		.name = "chan_pingpong",
		.subject = "shmcap",
		.impls = busy_impls,
		.nimpls = COUNT(busy_impls),
		.samples = 200000,
		.warmup = 20000,
	};
	static struct hb_bench pp_block = {
		.name = "chan_pingpong_block",
		.subject = "shmcap",
		.impls = block_impls,
		.nimpls = COUNT(block_impls),
		.samples = 200000,
		.warmup = 2000,
	};
	static struct hb_bench pp_idle = {
		.name = "chan_pingpong_idle",
		.subject = "shmcap",
		.impls = block_impls,
		.nimpls = COUNT(block_impls),
		.samples = 500,
		.warmup = 20,
		.gap_ns = 1000000,
	};
	static struct hb_bench tput = {
		.name = "chan_tput",
		.subject = "shmcap",
		.impls = tput_impls,
		.nimpls = COUNT(tput_impls),
		.samples = 300000,
		.msg_bytes = MSG_BYTES,
	};
	static struct hb_bench bulk = {
		.name = "chan_bulk_1m",
		.subject = "shmcap",
		.impls = bulk_impls,
		.nimpls = COUNT(bulk_impls),
		.samples = 1000,
		.msg_bytes = BULK_BYTES,
		.gb = 1,
	};
	static struct hb_bench fanout = {
		.name = "chan_fanout4",
		.subject = "shmcap",
		.impls = fanout_impls,
		.nimpls = COUNT(fanout_impls),
		.samples = 200000,
		.msg_bytes = MSG_BYTES,
		.consumers = FANOUT,
	};
	const struct hb_result *r, *spin;
	int status;

	hb_init(argc, argv, "bench_channel", benches);
#ifdef SHMCAP_BENCH_ICEORYX
	/*
	 * Another daemon (someone else's benchmark) would serve our
	 * processes with its own configuration: leave the iceoryx rows out
	 * then, and say so; any other failure to start fails them.
	 */
	if (want_iceoryx() && roudi_start() == -EBUSY) {
		printf("# bench_channel: iceoryx rows left out: another "
		       "iox-roudi is running\n");
		/* They come last in every table. */
		pp_busy.nimpls -= 1;
		pp_block.nimpls -= 1;
		pp_idle.nimpls -= 1;
		tput.nimpls -= 2;
		bulk.nimpls -= 1;
		fanout.nimpls -= 1;
	}
#else
	(void)want_iceoryx;
	printf("# bench_channel: built without iceoryx (CMake did not find "
	       "iceoryx_binding_c): no iox_* rows\n");
#endif

	hb_pingpong(&pp_busy);
	hb_pingpong(&pp_block);
	hb_pingpong(&pp_idle);
	/* iceoryx last in block_impls: the others are its first NIDLE. */
	hb_idle_cpu("chan_idle_cpu", block_impls, NIDLE, 300000000);
	hb_throughput(&tput);
	hb_throughput(&bulk);
	hb_throughput(&fanout);

	/*
	 * Targets of the channel issue, as ratios in this run:
	 * busy-poll <= 1.5x spin and >= 8x faster than iceoryx polling;
	 * blocking <= 3x spin (from chan_pingpong) and >= 20x faster than
	 * iceoryx WaitSet and futex; with idle gaps no slower than futex;
	 * 64 B throughput >= 0.8x the ring and >= 25x iceoryx; 1 MiB
	 * >= 0.8x memcpy (and, as memcpy crosses no CPUs, >= 0.8x the
	 * raw ring, which does: see chan_bulk_1m); fan-out to 4 at least
	 * iceoryx WaitSet's rate.
	 */
	printf("\n");
	hb_target("chan_pingpong", "shmcap / spin <= 1.5",
		  hb_ratio("chan_pingpong", "shmcap", "spin"), 1.5);
	hb_target("chan_pingpong", "shmcap / iox_poll <= 0.125",
		  hb_ratio("chan_pingpong", "shmcap", "iox_poll"), 0.125);
	hb_target("chan_pingpong_block", "shmcap / iox_waitset <= 0.05",
		  hb_ratio("chan_pingpong_block", "shmcap", "iox_waitset"),
		  0.05);
	r = hb_result("chan_pingpong_block", "shmcap");
	spin = hb_result("chan_pingpong", "spin");
	hb_target("chan_pingpong_block", "shmcap / spin (chan_pingpong) <= 3",
		  r && spin && !r->error[0] && !spin->error[0] ?
			  r->median_ns / spin->median_ns :
			  NAN,
		  3);
	hb_target("chan_pingpong_block", "shmcap / futex <= 0.05",
		  hb_ratio("chan_pingpong_block", "shmcap", "futex"), 0.05);
	hb_target("chan_pingpong_idle", "shmcap / futex <= 1",
		  hb_ratio("chan_pingpong_idle", "shmcap", "futex"), 1);
	r = hb_result("chan_idle_cpu", "shmcap");
	hb_target("chan_idle_cpu", "shmcap cpu % < 1",
		  r && !r->error[0] ? r->cpu_percent : NAN, 1);
	hb_target("chan_tput", "ring / shmcap <= 1.25",
		  hb_tput_ratio("chan_tput", "ring", "shmcap"), 1.25);
	hb_target("chan_tput", "iox_poll / shmcap <= 0.04",
		  hb_tput_ratio("chan_tput", "iox_poll", "shmcap"), 0.04);
	hb_target("chan_bulk_1m", "memcpy / shmcap <= 1.25",
		  hb_tput_ratio("chan_bulk_1m", "memcpy", "shmcap"), 1.25);
	hb_target("chan_bulk_1m", "ring_bulk / shmcap <= 1.25",
		  hb_tput_ratio("chan_bulk_1m", "ring_bulk", "shmcap"), 1.25);
	hb_target("chan_fanout4", "iox_waitset / shmcap <= 1",
		  hb_tput_ratio("chan_fanout4", "iox_waitset", "shmcap"), 1);

	status = hb_finish();
#ifdef SHMCAP_BENCH_ICEORYX
	roudi_stop();
#endif
	return status;
}
