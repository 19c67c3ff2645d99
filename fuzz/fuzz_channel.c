/* SPDX-License-Identifier: MIT */
/*
 * fuzz_channel: libFuzzer target for channels whose shared state a peer
 * corrupts.
 *
 * One input is a script run against a real channel, with the producer and
 * the consumer as two handles in this process (every call non-blocking,
 * so nothing waits):
 *
 *   byte 0       kind (1 + b % 3) and, in bit 7, SHMCAP_CHANNEL_LOSSY for
 *                a broadcast channel
 *   then ops     one byte each, b % 8, followed by its operands:
 *     0 L        send a message of L % (max + 1) bytes
 *     1          receive a copy
 *     2 L        reserve L % (max + 1) bytes, fill them, commit
 *     3          receive in place and release
 *     4 O O V    write byte V at offset O (16 bits) of the region
 *     5 O O 8xV  write 8 bytes at the 8-aligned offset O of the region
 *     6 N L      send a batch of N % 4 + 1 messages of L % (max + 1) bytes
 *     7 N        receive a batch of N % 4 + 1 messages
 *
 * Checked: no call crashes, reads or writes outside the region, or leaks
 * (ASan, UBSan); a message received in place lies inside the ring and is
 * at most max bytes long, whatever was corrupted; and as long as nothing
 * was corrupted the channel behaves as a queue: every message comes out
 * once, whole and in order (lossy broadcast aside, which may drop), and a
 * receive finds nothing exactly when the queue is empty.
 *
 * Build: make fuzz (clang, -fsanitize=fuzzer,address,undefined), which
 * runs it for FUZZ_TIME seconds from the seeds in fuzz/corpus/channel.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <shmcap.h>

#define CAPACITY 1024
#define MAX_MSG 100
#define CTRL 4096
#define QUEUE_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop the run: a property the channel must keep was broken. */
#define BUG(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "fuzz_channel: " __VA_ARGS__);                 \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

/* The model of the queue while nothing is corrupted: lengths and seeds. */
struct model {
	uint32_t len[QUEUE_MAX];
	uint8_t seed[QUEUE_MAX];
	unsigned int first, n;
	uint8_t next_seed;
	int valid; /* still comparable with the channel */
};

#define MAPS_MAX 8

struct run {
	const uint8_t *in;
	size_t size, pos;
	shmcap_channel *prod, *cons;
	uint8_t *base; /* the whole region, mapped writable */
	uint64_t region_size;
	/* Where the region is mapped in this process: ours and the handles'. */
	uintptr_t map_lo[MAPS_MAX], map_hi[MAPS_MAX];
	int nmaps;
	struct model m;
	int lossy;
};

static unsigned int next(struct run *r)
{
	return r->pos < r->size ? r->in[r->pos++] : 0;
}

static void fill(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* A message was sent: it joins the model (which stops at QUEUE_MAX). */
static void sent(struct run *r, uint32_t len, uint8_t seed)
{
	struct model *m = &r->m;

	if (!m->valid)
		return;
	if (m->n == QUEUE_MAX) {
		m->valid = 0;
		return;
	}
	m->len[(m->first + m->n) % QUEUE_MAX] = len;
	m->seed[(m->first + m->n) % QUEUE_MAX] = seed;
	m->n++;
}

/* A receive returned ret (a length or an error) with the bytes at p. */
static void received(struct run *r, int ret, const uint8_t *p)
{
	struct model *m = &r->m;
	uint8_t want[MAX_MSG];

	if (ret >= 0 && (uint32_t)ret > MAX_MSG)
		BUG("received %d bytes, more than the maximum", ret);
	if (!m->valid || r->lossy)
		return;
	if (m->n == 0) {
		if (ret != -EAGAIN)
			BUG("empty queue, but receive gave %d", ret);
		return;
	}
	if (ret < 0)
		BUG("queue holds %u, but receive gave %d", m->n, ret);
	if ((uint32_t)ret != m->len[m->first])
		BUG("length %d, expected %u", ret, m->len[m->first]);
	fill(want, (uint32_t)ret, m->seed[m->first]);
	if (memcmp(p, want, (size_t)ret) != 0)
		BUG("message content differs");
	m->first = (m->first + 1) % QUEUE_MAX;
	m->n--;
}

/*
 * Find every mapping of the region in this process (/proc/self/maps,
 * matched by inode): the handles map it at addresses of their own.
 */
static void find_maps(struct run *r, const shmcap_cap *region)
{
	unsigned long lo, hi, ino;
	struct stat st;
	char line[512];
	FILE *f;

	if (fstat(shmcap_cap_fd(region), &st) < 0)
		BUG("fstat failed");
	f = fopen("/proc/self/maps", "r");
	if (!f)
		BUG("no /proc/self/maps");
	while (fgets(line, sizeof(line), f) && r->nmaps < MAPS_MAX) {
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) ==
			    3 &&
		    ino == (unsigned long)st.st_ino) {
			r->map_lo[r->nmaps] = lo;
			r->map_hi[r->nmaps] = hi;
			r->nmaps++;
		}
	}
	fclose(f);
}

/*
 * A message reserved or received in place lies inside the ring of one of
 * the region's mappings and is at most MAX_MSG long, whatever happened.
 */
static void check_inside(struct run *r, const void *ptr, size_t len)
{
	uintptr_t p = (uintptr_t)ptr;
	int i;

	if (len > MAX_MSG)
		BUG("message in place of %zu bytes", len);
	for (i = 0; i < r->nmaps; i++)
		if (p >= r->map_lo[i] + CTRL &&
		    p + len <= r->map_lo[i] + CTRL + CAPACITY &&
		    p + len <= r->map_hi[i])
			return;
	BUG("message in place at %p, %zu bytes, outside every ring", ptr,
	    len);
}

static void op_send(struct run *r)
{
	uint8_t buf[MAX_MSG];
	uint32_t len = next(r) % (MAX_MSG + 1);
	uint8_t seed = r->m.next_seed++;
	int ret;

	fill(buf, len, seed);
	ret = shmcap_channel_send(r->prod, buf, len, 0);
	if (ret == 0)
		sent(r, len, seed);
	else if (r->m.valid && ret != -EAGAIN)
		BUG("send gave %d on a sound channel", ret);
}

static void op_reserve(struct run *r)
{
	uint32_t len = next(r) % (MAX_MSG + 1);
	uint8_t seed = r->m.next_seed++;
	void *p;
	int ret;

	ret = shmcap_channel_reserve(r->prod, len, &p, 0);
	if (ret < 0) {
		if (r->m.valid && ret != -EAGAIN)
			BUG("reserve gave %d on a sound channel", ret);
		return;
	}
	check_inside(r, p, len);
	fill(p, len, seed);
	ret = shmcap_channel_commit(r->prod, len);
	if (ret == 0)
		sent(r, len, seed);
	else if (r->m.valid)
		BUG("commit gave %d on a sound channel", ret);
}

static void op_recv(struct run *r)
{
	uint8_t buf[MAX_MSG];

	received(r, shmcap_channel_recv(r->cons, buf, sizeof(buf), 0), buf);
}

static void op_recv_ptr(struct run *r)
{
	const void *p = NULL;
	size_t len = 0;
	int ret;

	ret = shmcap_channel_recv_ptr(r->cons, &p, &len, 0);
	if (ret == -EOPNOTSUPP && r->lossy)
		return;
	if (ret >= 0) {
		check_inside(r, p, len);
		if ((size_t)ret != len)
			BUG("recv_ptr returned %d but set len %zu", ret, len);
	}
	received(r, ret, p);
	if (ret >= 0) {
		ret = shmcap_channel_release(r->cons);
		if (ret < 0 && r->m.valid)
			BUG("release gave %d on a sound channel", ret);
	}
}

static void op_send_batch(struct run *r)
{
	uint8_t bufs[4][MAX_MSG];
	struct iovec v[4];
	uint8_t seed[4];
	unsigned int n = next(r) % 4 + 1, i;
	uint32_t len = next(r) % (MAX_MSG + 1);
	int ret;

	for (i = 0; i < n; i++) {
		seed[i] = r->m.next_seed++;
		fill(bufs[i], len, seed[i]);
		v[i].iov_base = bufs[i];
		v[i].iov_len = len;
	}
	ret = shmcap_channel_send_batch(r->prod, v, n, 0);
	if (ret > (int)n)
		BUG("send_batch sent %d of %u", ret, n);
	for (i = 0; ret > 0 && i < (unsigned int)ret; i++)
		sent(r, len, seed[i]);
	if (ret < 0 && r->m.valid && ret != -EAGAIN)
		BUG("send_batch gave %d on a sound channel", ret);
}

static void op_recv_batch(struct run *r)
{
	uint8_t bufs[4][MAX_MSG];
	struct iovec v[4];
	unsigned int n = next(r) % 4 + 1, i;
	int ret;

	for (i = 0; i < n; i++) {
		v[i].iov_base = bufs[i];
		v[i].iov_len = MAX_MSG;
	}
	ret = shmcap_channel_recv_batch(r->cons, v, n, 0);
	if (ret > (int)n)
		BUG("recv_batch received %d of %u", ret, n);
	if (ret <= 0) {
		received(r, ret, NULL);
		return;
	}
	for (i = 0; i < (unsigned int)ret; i++) {
		if (v[i].iov_len > MAX_MSG)
			BUG("recv_batch length %zu", v[i].iov_len);
		received(r, (int)v[i].iov_len, bufs[i]);
	}
}

static void op_poke(struct run *r, int wide)
{
	uint64_t off = (uint64_t)next(r) | (uint64_t)next(r) << 8;
	uint8_t v[8];
	int i;

	for (i = 0; i < (wide ? 8 : 1); i++)
		v[i] = (uint8_t)next(r);
	off %= r->region_size;
	if (wide) {
		off &= ~(uint64_t)7;
		if (off + 8 > r->region_size)
			return;
	}
	memcpy(r->base + off, v, wide ? 8 : 1);
	/* Any change may break the queue's promises: stop comparing. */
	r->m.valid = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { .in = data, .size = size };
	shmcap_cap *region = NULL;
	shmcap_map *map = NULL;
	unsigned int b;
	int kind, ret;

	if (size < 1)
		return 0;
	b = next(&r);
	kind = 1 + (int)(b % 3);
	r.lossy = kind == SHMCAP_CHANNEL_BROADCAST && (b & 0x80);
	if (shmcap_channel_create(kind, CAPACITY, MAX_MSG,
				  r.lossy ? SHMCAP_CHANNEL_LOSSY : 0,
				  &region) < 0)
		BUG("create failed");
	if (shmcap_region_size(region, &r.region_size) < 0 ||
	    shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &map) < 0)
		BUG("map failed");
	r.base = shmcap_map_addr(map);
	if (shmcap_channel_open(region, SHMCAP_CHANNEL_CONSUMER, 0, &r.cons) <
		    0 ||
	    shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0, &r.prod) <
		    0)
		BUG("open failed");
	find_maps(&r, region);
	r.m.valid = 1;

	while (r.pos < r.size) {
		switch (next(&r) % 8) {
		case 0:
			op_send(&r);
			break;
		case 1:
			op_recv(&r);
			break;
		case 2:
			op_reserve(&r);
			break;
		case 3:
			op_recv_ptr(&r);
			break;
		case 4:
			op_poke(&r, 0);
			break;
		case 5:
			op_poke(&r, 1);
			break;
		case 6:
			op_send_batch(&r);
			break;
		default:
			op_recv_batch(&r);
			break;
		}
	}
	/* Closing after any corruption must be safe too. */
	shmcap_channel_close(r.prod);
	ret = shmcap_channel_recv(r.cons, NULL, 0, 0);
	(void)ret;
	shmcap_channel_close(r.cons);
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
	return 0;
}
