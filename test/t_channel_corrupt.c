/* SPDX-License-Identifier: MIT */
/*
 * Description: channels whose shared header, counters, records or slots a
 * peer corrupted: -EBADMSG on both sides, never a crash, an out-of-bounds
 * access (run it under ASan) or a wait past the timeout; random
 * corruption between the operations of a real producer and consumer.
 */
#include "channel_util.h"
#include "helpers.h"
#include "util.h"

/* The layout of src/channel.c. */
#define CTRL 4096
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_CAPACITY 16
#define OFF_MAXMSG 24
#define OFF_TAIL 128
#define OFF_CFUTEX 136
#define OFF_CSLEEPERS 140
#define OFF_HEAD 256
#define OFF_SLOT0 384 /* consumer */
#define OFF_SLOT1 416 /* producer */

struct chan {
	shmcap_cap *r;
	shmcap_map *m;
	uint8_t *base;
	shmcap_channel *p, *c;
	uint8_t *pring, *cring; /* the ring in p's and c's mappings */
};

static void chan_new(struct chan *ch, uint64_t cap, uint32_t max, int open)
{
	const void *q;
	void *vp;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, cap, max, 0,
				       &ch->r));
	ch->base = t_channel_map(ch->r, &ch->m);
	ch->p = ch->c = NULL;
	if (open) {
		CHECK_OK(shmcap_channel_open(ch->r, SHMCAP_CHANNEL_PRODUCER, 0,
					     &ch->p));
		CHECK_OK(shmcap_channel_open(ch->r, SHMCAP_CHANNEL_CONSUMER, 0,
					     &ch->c));
		/*
		 * Each handle maps the region at its own address: find its
		 * ring through an empty message (record header: 8 bytes).
		 */
		CHECK_OK(shmcap_channel_reserve(ch->p, 0, &vp, 0));
		ch->pring = (uint8_t *)vp - 8;
		CHECK_OK(shmcap_channel_commit(ch->p, 0));
		CHECK_EQ(shmcap_channel_recv_ptr(ch->c, &q, NULL, 0), 0);
		ch->cring = (uint8_t *)q - 8;
		CHECK_OK(shmcap_channel_release(ch->c));
	}
}

static void chan_free(struct chan *ch)
{
	shmcap_channel_close(ch->p);
	shmcap_channel_close(ch->c);
	shmcap_map_unmap(ch->m);
	shmcap_cap_close(ch->r);
}

static uint64_t *u64at(struct chan *ch, size_t off)
{
	return (uint64_t *)(ch->base + off);
}

static uint32_t *u32at(struct chan *ch, size_t off)
{
	return (uint32_t *)(ch->base + off);
}

/* Both handles are broken: every call gives -EBADMSG. */
static void check_broken(struct chan *ch, int prod, int cons)
{
	uint8_t buf[100] = { 0 };

	/* The largest message: if the ring is nearly full, it needs room. */
	if (prod)
		CHECK_ERR(shmcap_channel_send(ch->p, buf, 100, 0), -EBADMSG);
	if (cons)
		CHECK_ERR(shmcap_channel_recv(ch->c, buf, sizeof(buf), 0),
			  -EBADMSG);
}

static void test_header(void)
{
	struct chan ch;
	shmcap_channel *x;
	uint32_t v;

	/* Before open: every geometry field is checked. */
	chan_new(&ch, 4096, 100, 0);
	t_store64(u64at(&ch, OFF_CAPACITY), 1 << 20); /* beyond the region */
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	t_store64(u64at(&ch, OFF_CAPACITY), 4000); /* not a power of two */
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	t_store64(u64at(&ch, OFF_CAPACITY), 4096);
	t_store32(u32at(&ch, OFF_MAXMSG), 3000); /* over half the ring */
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	t_store32(u32at(&ch, OFF_MAXMSG), 100);
	v = t_load32(u32at(&ch, OFF_VERSION));
	t_store32(u32at(&ch, OFF_VERSION), v + 1);
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	t_store32(u32at(&ch, OFF_VERSION), v);
	/* A slot in a state no honest peer writes. */
	t_store32(u32at(&ch, OFF_SLOT0), 77);
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	t_store32(u32at(&ch, OFF_SLOT0), 0);
	/* Counters out of step at open. */
	t_store64(u64at(&ch, OFF_TAIL), 8192);
	CHECK_ERR(shmcap_channel_open(ch.r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBADMSG);
	chan_free(&ch);

	/* After open: the geometry is the local copy; magic is rechecked. */
	chan_new(&ch, 4096, 100, 1);
	t_store64(u64at(&ch, OFF_CAPACITY), 1 << 30);
	t_store32(u32at(&ch, OFF_MAXMSG), 1 << 29);
	CHECK_OK(shmcap_channel_send(ch.p, "abc", 3, 0));
	CHECK_EQ(shmcap_channel_recv(ch.c, NULL, 0, 0), -EMSGSIZE);
	t_store32(u32at(&ch, OFF_MAGIC), 0x12345678);
	check_broken(&ch, 1, 1);
	t_store32(u32at(&ch, OFF_MAGIC), 0x4e484353); /* restored: too late */
	check_broken(&ch, 1, 1);
	chan_free(&ch);
}

static void test_counters(void)
{
	struct chan ch;
	uint8_t buf[128] = { 0 };
	uint64_t t;
	int i;

	/* Tail beyond head + capacity. */
	chan_new(&ch, 4096, 100, 1);
	t_store64(u64at(&ch, OFF_TAIL), 4096 + 8);
	check_broken(&ch, 0, 1);
	chan_free(&ch);

	/* Tail not 8-aligned. */
	chan_new(&ch, 4096, 100, 1);
	t_store64(u64at(&ch, OFF_TAIL), 12);
	check_broken(&ch, 0, 1);
	chan_free(&ch);

	/* Tail moved back below what was seen. */
	chan_new(&ch, 4096, 100, 1);
	for (i = 0; i < 3; i++)
		CHECK_OK(shmcap_channel_send(ch.p, buf, 16, 0));
	CHECK_EQ(shmcap_channel_recv(ch.c, buf, sizeof(buf), 0), 16);
	CHECK_EQ(shmcap_channel_recv(ch.c, buf, sizeof(buf), 0), 16);
	CHECK_EQ(shmcap_channel_recv(ch.c, buf, sizeof(buf), 0), 16);
	t_store64(u64at(&ch, OFF_TAIL), 24);
	check_broken(&ch, 0, 1);
	chan_free(&ch);

	/* Tail far ahead (wrapped around 2^64). */
	chan_new(&ch, 4096, 100, 1);
	t_store64(u64at(&ch, OFF_TAIL), UINT64_MAX - 7);
	check_broken(&ch, 0, 1);
	chan_free(&ch);

	/* Head beyond tail, seen when the producer needs room. */
	chan_new(&ch, 4096, 100, 1);
	while (shmcap_channel_send(ch.p, buf, 100, 0) == 0)
		;
	t = t_load64(u64at(&ch, OFF_TAIL));
	t_store64(u64at(&ch, OFF_HEAD), t + 8);
	check_broken(&ch, 1, 0);
	chan_free(&ch);

	/* Head moved backwards. */
	chan_new(&ch, 4096, 100, 1);
	while (shmcap_channel_send(ch.p, buf, 100, 0) == 0)
		;
	for (i = 0; i < 4; i++)
		CHECK_EQ(shmcap_channel_recv(ch.c, buf, sizeof(buf), 0), 100);
	CHECK_OK(shmcap_channel_send(ch.p, buf, 100, 0));
	CHECK_OK(shmcap_channel_send(ch.p, buf, 100, 0));
	t_store64(u64at(&ch, OFF_HEAD), 0);
	while (shmcap_channel_send(ch.p, buf, 100, 0) == 0)
		;
	check_broken(&ch, 1, 0);
	chan_free(&ch);
}

/*
 * A 16-byte message whose record length and tag (each unless negative)
 * were then overwritten: the consumer's handle is broken.
 */
static void check_bad_record(int64_t len, int64_t tag)
{
	struct chan ch;
	uint8_t buf[16] = { 0 };

	chan_new(&ch, 4096, 100, 1);
	CHECK_OK(shmcap_channel_send(ch.p, buf, sizeof(buf), 0));
	if (len >= 0)
		t_store32(u32at(&ch, CTRL + 8), (uint32_t)len);
	if (tag >= 0)
		t_store32(u32at(&ch, CTRL + 12), (uint32_t)tag);
	check_broken(&ch, 0, 1);
	chan_free(&ch);
}

static void test_records(void)
{
	struct chan ch;
	uint8_t buf[128] = { 0 };
	int i;

	/* Length above max_msg. */
	check_bad_record(101, -1);
	/* Length within max_msg but past the published bytes. */
	check_bad_record(17, -1);
	/* Unknown tag. */
	check_bad_record(-1, 0);
	/* A padding record that does not end at the ring's end. */
	check_bad_record(8, 0x44444150);

	/* Two padding records in a row (the second at the ring's start). */
	chan_new(&ch, 256, 100, 1);
	for (i = 0; i < 2; i++) {
		CHECK_OK(shmcap_channel_send(ch.p, buf, 100, 0));
		CHECK_EQ(shmcap_channel_recv(ch.c, buf, sizeof(buf), 0), 100);
	}
	/* At 232: a 112-byte record goes after a 24-byte padding. */
	CHECK_OK(shmcap_channel_send(ch.p, buf, 100, 0));
	t_store32(u32at(&ch, CTRL + 0), 248);
	t_store32(u32at(&ch, CTRL + 4), 0x44444150);
	check_broken(&ch, 0, 1);
	chan_free(&ch);

	/* A consumer slot in a state no honest peer writes. */
	chan_new(&ch, 256, 100, 1);
	t_store32(u32at(&ch, OFF_SLOT0), 99);
	while (shmcap_channel_send(ch.p, buf, 100, 0) == 0)
		;
	check_broken(&ch, 1, 0);
	chan_free(&ch);
}

/*
 * A peer that keeps bumping our futex word and sleeper count cannot keep
 * a timed wait from ending.
 */
static void test_futex_hammer(void)
{
	struct chan ch;
	uint8_t buf[16];
	pid_t pid;

	chan_new(&ch, 4096, 100, 1);
	pid = t_fork_child(30);
	if (pid == 0) {
		for (;;) {
			__atomic_fetch_add(u32at(&ch, OFF_CFUTEX), 1,
					   __ATOMIC_SEQ_CST);
			__atomic_fetch_add(u32at(&ch, OFF_CSLEEPERS), 1,
					   __ATOMIC_SEQ_CST);
		}
	}
	CHECK_ERR(shmcap_channel_recv(ch.c, buf, sizeof(buf), 100000000),
		  -ETIMEDOUT);
	kill(pid, SIGKILL);
	t_check_killed(pid, 10);
	chan_free(&ch);
}

/*
 * Random corruption between operations: every result is one the contract
 * allows, a message returned lies inside the ring, and once -EBADMSG is
 * returned the handle keeps returning it.
 */
static void test_fuzz(unsigned int rounds)
{
	static const size_t hot[] = { 0,   4,	6,   8,	  12,  16,  24,	 28,
				      128, 132, 136, 140, 256, 260, 264, 268,
				      384, 388, 392, 416, 420, 424 };
	unsigned int i, op;

	for (i = 0; i < rounds; i++) {
		struct chan ch;
		uint8_t buf[200] = { 0 };
		int pbad = 0, cbad = 0, ret;
		uint64_t cap = 256u << (t_rnd() % 4);

		chan_new(&ch, cap, 100, 1);
		for (op = 0; op < 200; op++) {
			const void *q;
			size_t l, off;
			void *vp;

			/* One corruption in four operations. */
			if (t_rnd() % 4 == 0) {
				uint64_t v = t_rnd();

				if (t_rnd() % 2)
					off = hot[t_rnd() % (sizeof(hot) /
							     sizeof(hot[0]))];
				else
					off = CTRL + (t_rnd() % cap & ~3ull);
				switch (t_rnd() % 4) {
				case 0:
					v &= 0xff;
					break;
				case 1:
					v = t_load32(u32at(&ch, off)) +
					    (v % 17) - 8;
					break;
				case 2:
					v = t_load32(u32at(&ch, off)) ^
					    (1u << (v % 32));
					break;
				default:
					break;
				}
				t_store32(u32at(&ch, off), (uint32_t)v);
			}
			switch (t_rnd() % 4) {
			case 0:
				ret = shmcap_channel_send(ch.p, buf,
							  t_rnd() % 101, 0);
				if (pbad)
					CHECK_ERR(ret, -EBADMSG);
				CHECK(ret == 0 || ret == -EAGAIN ||
				      ret == -EBADMSG || ret == -EPIPE);
				pbad |= ret == -EBADMSG;
				break;
			case 1:
				ret = shmcap_channel_reserve(ch.p, 100, &vp, 0);
				if (pbad)
					CHECK_ERR(ret, -EBADMSG);
				CHECK(ret == 0 || ret == -EAGAIN ||
				      ret == -EBADMSG || ret == -EPIPE);
				pbad |= ret == -EBADMSG;
				if (ret == 0) {
					CHECK((uint8_t *)vp >= ch.pring);
					CHECK((uint8_t *)vp + 100 <=
					      ch.pring + cap);
					memset(vp, 0x5a, 100);
					ret = shmcap_channel_commit(ch.p, 50);
					CHECK(ret == 0 || ret == -EBADMSG);
					pbad |= ret == -EBADMSG;
				}
				break;
			case 2:
				ret = shmcap_channel_recv(ch.c, buf,
							  sizeof(buf), 0);
				if (cbad)
					CHECK_ERR(ret, -EBADMSG);
				CHECK((ret >= 0 && ret <= 100) ||
				      ret == -EAGAIN || ret == -EBADMSG ||
				      ret == -EPIPE);
				cbad |= ret == -EBADMSG;
				break;
			default:
				ret = shmcap_channel_recv_ptr(
					ch.c, &q, &l,
					t_rnd() % 50 ? 0 : 100000);
				t_check_corrupt_recv(ret, &cbad);
				if (ret >= 0) {
					CHECK((const uint8_t *)q >= ch.cring);
					CHECK((const uint8_t *)q + l <=
					      ch.cring + cap);
					/* Touch every byte (ASan). */
					memcpy(buf, q, l);
					ret = shmcap_channel_release(ch.c);
					CHECK(ret == 0 || ret == -EBADMSG);
					cbad |= ret == -EBADMSG;
				}
				break;
			}
		}
		chan_free(&ch);
	}
}

int main(void)
{
	int fds = t_channel_test_start();

	test_header();
	test_counters();
	test_records();
	test_futex_hammer();
	test_fuzz((unsigned int)t_scaled(2000));
	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
