/* SPDX-License-Identifier: MIT */
/*
 * Datum: structured values in shared memory, encoded as CBOR.
 *
 * Format. A datum frame is a 4-byte little-endian length N followed by N
 * bytes that hold exactly one CBOR data item (RFC 8949). CBOR was chosen
 * because it is a standard with codecs in every language (Python's cbor2
 * reads our frames as they are), it is compact, it needs no schema, and
 * its strings are length-prefixed, so a reader can hand out views into
 * the frame instead of copies. Every item starts with an "initial byte":
 * the major type in the top three bits and an argument in the low five
 * (0..23 the value itself; 24, 25, 26, 27 say that a 1, 2, 4 or 8-byte
 * big-endian value follows; 28..30 are reserved; 31 means an indefinite
 * length, or "break"). Major types: 0 unsigned integer, 1 negative integer
 * (-1 - argument), 2 byte string, 3 text string, 4 array, 5 map, 6 tag,
 * 7 simple values and floats.
 *
 * Data model. nil is null (simple value 22), booleans are false/true (20,
 * 21), integers are majors 0 and 1 restricted to int64, floats are
 * float16/32/64 read as double, text is major 3, bytes major 2, a symbol is
 * tag 39 (IANA "identifier") on a text string, a list is an array, a
 * vector is tag SHMCAP_DATUM_TAG_VECTOR (38633, from the first-come
 * first-served range, not registered) on an array, and a map is a map
 * whose keys are any datum. Everything else that is valid CBOR
 * (indefinite lengths, undefined, other simple values, other tags, tags
 * 39 or 38633 on the wrong kind of item, a tag on a tag) is refused with
 * -EOPNOTSUPP; what is not valid CBOR at all with -EBADMSG.
 *
 * The writer always emits preferred serialization: the shortest argument,
 * and for floats the shortest of float16, float32 and float64 that holds
 * the value exactly (NaN as f97e00). The reader accepts any width, as RFC
 * 8949 requires of a generic decoder, so frames from other encoders are
 * read too.
 *
 * Validation without recursion. Nested arrays are the obvious way to
 * crash a recursive decoder: a frame of a million 0x81 bytes is a million
 * levels deep and costs a million stack frames. Neither the writer nor the
 * reader recurses: both keep an explicit stack holding, for every open
 * container, how many values it still expects (2 per map pair), bounded
 * by SHMCAP_DATUM_DEPTH_MAX, so the deepest frame costs the same 2 KiB in
 * the handle, and nesting deeper than the limit is -ELOOP. A value closes
 * every container whose count reaches 0 ("pop"). A container that
 * announces more values than bytes are left is refused at once (every
 * value takes at least one byte), which also keeps 64-bit counts away
 * from overflow; string lengths are compared with the bytes left, never
 * added to a position first, so a length of 2^64 - 1 cannot wrap around.
 *
 * The reader validates the whole frame in reset (the same decoding loop
 * as next(), run to the end, with UTF-8 checks on) and then rewinds. The
 * memory may be a region or a channel message that a hostile or buggy
 * peer keeps writing after validation, so next() trusts nothing that
 * validation saw: it reads each head byte once through a volatile
 * pointer into a local, checks the copy against the end of the frame (the
 * length prefix is read once, at reset) and uses only the copy. Each value
 * moves the position forward by at least one byte and each pop lowers the
 * depth, so next() ends whatever the bytes become; a count changed to 2^60
 * runs out of frame and gives -EBADMSG. Only UTF-8 is not checked again:
 * a view can change after next() returns anyway.
 *
 * No allocation per value: a writer and a reader are one malloc each,
 * reused by reset; shmcap_datum_format() uses a reader on its own stack.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBOR major types. */
#define MT_UINT 0
#define MT_NINT 1
#define MT_BYTES 2
#define MT_TEXT 3
#define MT_ARRAY 4
#define MT_MAP 5
#define MT_TAG 6
#define MT_SIMPLE 7

/* Simple values and float widths (major type 7). */
#define SV_FALSE 20
#define SV_TRUE 21
#define SV_NULL 22
#define AI_1 24
#define AI_F16 25
#define AI_F32 26
#define AI_F64 27
#define AI_INDEF 31

#define PREFIX 4
#define FRAME_MAX ((size_t)INT_MAX)

struct shmcap_datum_writer {
	unsigned char *buf;
	size_t cap;   /* usable bytes: min(size, INT_MAX) */
	size_t pos;   /* next byte to write; starts at PREFIX */
	int err;      /* sticky error, 0 if none */
	int depth;    /* open containers */
	int top_done; /* the top-level value has begun */
	uint64_t remain[SHMCAP_DATUM_DEPTH_MAX + 1];
};

struct shmcap_datum_reader {
	const unsigned char *p;
	size_t end; /* PREFIX + N, read once at reset */
	size_t pos;
	int err; /* sticky error of reset or next */
	int depth;
	int top_done;
	int validating; /* reset's pass: also check UTF-8 */
	/* The value next() returned last. */
	int type; /* 0: none */
	int cur_depth;
	union {
		int64_t i;
		double f;
		uint64_t count;
	} v;
	const unsigned char *str;
	size_t len;
	uint64_t remain[SHMCAP_DATUM_DEPTH_MAX + 1];
};

/* ------------------------------------------------------------------------
 * UTF-8
 */

/*
 * Whether s[0..len) is valid UTF-8 (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF. The second byte's range depends on
 * the first, which rules out all three with one comparison each.
 */
static int utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

/* ------------------------------------------------------------------------
 * Floats
 */

static uint64_t f64_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double f64_from_bits(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/*
 * The float16 that holds the float32 with bits u exactly, or -1. Half
 * floats have 5 exponent bits (bias 15) and 10 mantissa bits; values
 * from 2^-24 up to 2^-14 are subnormal, multiples of 2^-24.
 */
static int32_t f32_to_f16_exact(uint32_t u)
{
	uint32_t sign = (u >> 16) & 0x8000u;
	int exp = (int)((u >> 23) & 0xff);
	uint32_t mant = u & 0x7fffffu;
	uint32_t full;
	int shift;

	if (exp == 0)
		return mant == 0 ? (int32_t)sign : -1; /* zeros only */
	if (exp == 0xff)
		return mant == 0 ? (int32_t)(sign | 0x7c00u) : -1;
	exp -= 127;
	if (exp >= -14 && exp <= 15) {
		if (mant & 0x1fffu)
			return -1;
		return (int32_t)(sign | (uint32_t)(exp + 15) << 10 |
				 mant >> 13);
	}
	if (exp < -24 || exp > 15)
		return -1;
	/* Subnormal half: the value is full * 2^(exp - 23), in units of 2^-24. */
	full = mant | 0x800000u;
	shift = -1 - exp; /* 14 .. 23 */
	if (full & ((1u << shift) - 1))
		return -1;
	return (int32_t)(sign | full >> shift);
}

static double f16_to_double(uint16_t h)
{
	int exp = (h >> 10) & 0x1f;
	unsigned int mant = h & 0x3ffu;
	double v;

	if (exp == 0)
		v = (double)mant / 16777216.0; /* mant * 2^-24, exact */
	else if (exp == 31)
		v = mant ? (double)NAN : (double)INFINITY;
	else /* (1024 + mant) * 2^(exp - 25) */
		v = (double)(1024 + mant) *
		    f64_from_bits((uint64_t)(exp - 25 + 1023) << 52);
	return (h & 0x8000u) ? -v : v;
}

/* ------------------------------------------------------------------------
 * Writer
 */

static int wr_fail(shmcap_datum_writer *w, int err)
{
	w->err = err;
	return err;
}

/* Room for n more bytes, or the sticky -ENOSPC. */
static int wr_room(shmcap_datum_writer *w, size_t n)
{
	if (w->pos > w->cap || w->cap - w->pos < n)
		return wr_fail(w, -ENOSPC);
	return 0;
}

/*
 * Whether a value may be appended now: not after the top-level value is
 * complete. Called before anything is written.
 */
static int wr_slot(shmcap_datum_writer *w)
{
	if (w->err)
		return w->err;
	if (w->depth == 0 && w->top_done)
		return wr_fail(w, -EINVAL);
	return 0;
}

/* The value just written fills its slot; close what is complete. */
static void wr_done(shmcap_datum_writer *w)
{
	if (w->depth == 0)
		w->top_done = 1;
	else
		w->remain[w->depth]--;
	while (w->depth > 0 && w->remain[w->depth] == 0)
		w->depth--;
}

/* Write a head: major type mt with argument arg, shortest form. */
static int wr_head(shmcap_datum_writer *w, int mt, uint64_t arg)
{
	unsigned char h[9];
	size_t n, i;

	h[0] = (unsigned char)(mt << 5);
	if (arg < 24) {
		h[0] |= (unsigned char)arg;
		n = 0;
	} else if (arg <= 0xff) {
		h[0] |= AI_1;
		n = 1;
	} else if (arg <= 0xffff) {
		h[0] |= AI_1 + 1;
		n = 2;
	} else if (arg <= 0xffffffffu) {
		h[0] |= AI_1 + 2;
		n = 4;
	} else {
		h[0] |= AI_1 + 3;
		n = 8;
	}
	for (i = 0; i < n; i++)
		h[1 + i] = (unsigned char)(arg >> (8 * (n - 1 - i)));
	if (wr_room(w, n + 1))
		return w->err;
	memcpy(w->buf + w->pos, h, n + 1);
	w->pos += n + 1;
	return 0;
}

static int wr_string(shmcap_datum_writer *w, int mt, uint64_t tag,
		     const void *p, size_t len)
{
	int ret;

	if ((ret = wr_slot(w)))
		return ret;
	if (!p && len)
		return wr_fail(w, -EINVAL);
	if (mt == MT_TEXT && !utf8_valid(p, len))
		return wr_fail(w, -EILSEQ);
	if (tag && (ret = wr_head(w, MT_TAG, tag)))
		return ret;
	if ((ret = wr_head(w, mt, len)) || (ret = wr_room(w, len)))
		return ret;
	if (len)
		memcpy(w->buf + w->pos, p, len);
	w->pos += len;
	wr_done(w);
	return 0;
}

static int wr_container(shmcap_datum_writer *w, int mt, uint64_t tag, size_t n,
			int per)
{
	int ret;

	if ((ret = wr_slot(w)))
		return ret;
	if (w->depth + 1 > SHMCAP_DATUM_DEPTH_MAX)
		return wr_fail(w, -ELOOP);
	if (tag && (ret = wr_head(w, MT_TAG, tag)))
		return ret;
	if ((ret = wr_head(w, mt, n)))
		return ret;
	/* Each value takes a byte at least: refuse what cannot fit. */
	if (n > (w->cap - w->pos) / (size_t)per)
		return wr_fail(w, -ENOSPC);
	if (n == 0) {
		wr_done(w);
		return 0;
	}
	if (w->depth == 0)
		w->top_done = 1;
	else
		w->remain[w->depth]--;
	w->depth++;
	w->remain[w->depth] = (uint64_t)n * (uint64_t)per;
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_writer_reset(shmcap_datum_writer *w, void *buf,
					    size_t size)
{
	if (!w)
		return -EINVAL;
	w->buf = buf;
	w->cap = size < FRAME_MAX ? size : FRAME_MAX;
	w->pos = PREFIX;
	w->err = 0;
	w->depth = 0;
	w->top_done = 0;
	if (!buf && size)
		return wr_fail(w, -EINVAL);
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_writer_new(void *buf, size_t size,
					  shmcap_datum_writer **w)
{
	shmcap_datum_writer *nw;

	if (!w || (!buf && size))
		return -EINVAL;
	nw = malloc(sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	shmcap_datum_writer_reset(nw, buf, size);
	*w = nw;
	return 0;
}

SHMCAP_EXPORT void shmcap_datum_writer_free(shmcap_datum_writer *w)
{
	free(w);
}

static int wr_simple(shmcap_datum_writer *w, unsigned int sv)
{
	int ret;

	if (!w)
		return -EINVAL;
	if ((ret = wr_slot(w)) || (ret = wr_head(w, MT_SIMPLE, sv)))
		return ret;
	wr_done(w);
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_put_nil(shmcap_datum_writer *w)
{
	return wr_simple(w, SV_NULL);
}

SHMCAP_EXPORT int shmcap_datum_put_bool(shmcap_datum_writer *w, int v)
{
	return wr_simple(w, v ? SV_TRUE : SV_FALSE);
}

SHMCAP_EXPORT int shmcap_datum_put_int(shmcap_datum_writer *w, int64_t v)
{
	int ret;

	if (!w)
		return -EINVAL;
	if ((ret = wr_slot(w)))
		return ret;
	/* -1 - v for negative v is ~v, computed without overflow. */
	if (v >= 0)
		ret = wr_head(w, MT_UINT, (uint64_t)v);
	else
		ret = wr_head(w, MT_NINT, ~(uint64_t)v);
	if (ret)
		return ret;
	wr_done(w);
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_put_float(shmcap_datum_writer *w, double v)
{
	unsigned char h[9];
	size_t n, i;
	uint64_t bits;
	int ret;

	if (!w)
		return -EINVAL;
	if ((ret = wr_slot(w)))
		return ret;
	if (isnan(v)) {
		h[0] = MT_SIMPLE << 5 | AI_F16;
		bits = 0x7e00;
		n = 2;
	} else if (v >= -FLT_MAX && v <= FLT_MAX && (double)(float)v == v) {
		uint32_t b32 = f32_bits((float)v);
		int32_t b16 = f32_to_f16_exact(b32);

		if (b16 >= 0) {
			h[0] = MT_SIMPLE << 5 | AI_F16;
			bits = (uint64_t)b16;
			n = 2;
		} else {
			h[0] = MT_SIMPLE << 5 | AI_F32;
			bits = b32;
			n = 4;
		}
	} else if (isinf(v)) {
		h[0] = MT_SIMPLE << 5 | AI_F16;
		bits = v > 0 ? 0x7c00 : 0xfc00;
		n = 2;
	} else {
		h[0] = MT_SIMPLE << 5 | AI_F64;
		bits = f64_bits(v);
		n = 8;
	}
	for (i = 0; i < n; i++)
		h[1 + i] = (unsigned char)(bits >> (8 * (n - 1 - i)));
	if (wr_room(w, n + 1))
		return w->err;
	memcpy(w->buf + w->pos, h, n + 1);
	w->pos += n + 1;
	wr_done(w);
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_put_text(shmcap_datum_writer *w, const char *s,
					size_t len)
{
	if (!w)
		return -EINVAL;
	return wr_string(w, MT_TEXT, 0, s, len);
}

SHMCAP_EXPORT int shmcap_datum_put_bytes(shmcap_datum_writer *w, const void *p,
					 size_t len)
{
	if (!w)
		return -EINVAL;
	return wr_string(w, MT_BYTES, 0, p, len);
}

SHMCAP_EXPORT int shmcap_datum_put_symbol(shmcap_datum_writer *w, const char *s,
					  size_t len)
{
	if (!w)
		return -EINVAL;
	return wr_string(w, MT_TEXT, SHMCAP_DATUM_TAG_SYMBOL, s, len);
}

SHMCAP_EXPORT int shmcap_datum_begin_list(shmcap_datum_writer *w, size_t n)
{
	if (!w)
		return -EINVAL;
	return wr_container(w, MT_ARRAY, 0, n, 1);
}

SHMCAP_EXPORT int shmcap_datum_begin_vector(shmcap_datum_writer *w, size_t n)
{
	if (!w)
		return -EINVAL;
	return wr_container(w, MT_ARRAY, SHMCAP_DATUM_TAG_VECTOR, n, 1);
}

SHMCAP_EXPORT int shmcap_datum_begin_map(shmcap_datum_writer *w, size_t npairs)
{
	if (!w)
		return -EINVAL;
	return wr_container(w, MT_MAP, 0, npairs, 2);
}

SHMCAP_EXPORT int shmcap_datum_finish(shmcap_datum_writer *w)
{
	size_t n;

	if (!w)
		return -EINVAL;
	if (w->err)
		return w->err;
	if (w->cap < PREFIX)
		return wr_fail(w, -ENOSPC);
	if (!w->top_done || w->depth > 0)
		return -EINVAL; /* not sticky: the frame may still be completed */
	n = w->pos - PREFIX;
	w->buf[0] = (unsigned char)n;
	w->buf[1] = (unsigned char)(n >> 8);
	w->buf[2] = (unsigned char)(n >> 16);
	w->buf[3] = (unsigned char)(n >> 24);
	return (int)w->pos;
}

/* ------------------------------------------------------------------------
 * Reader
 */

static int rd_fail(shmcap_datum_reader *r, int err)
{
	r->err = err;
	r->type = 0;
	return err;
}

/*
 * Read the head at r->pos: the initial byte into *ib and its argument into
 * *arg, each byte read once through a volatile pointer (the frame may be
 * changing). Advances r->pos past the head. 0, or -EBADMSG (truncated,
 * reserved additional information 28..30); additional information 31 is
 * left to the caller (*arg is then 0).
 */
static int rd_head(shmcap_datum_reader *r, unsigned int *ib, uint64_t *arg)
{
	const volatile unsigned char *p = r->p;
	unsigned int b, ai;
	uint64_t a = 0;
	size_t n, i;

	if (r->pos >= r->end)
		return -EBADMSG;
	b = p[r->pos];
	ai = b & 31;
	if (ai < 24 || ai == AI_INDEF) {
		a = ai < 24 ? ai : 0;
		n = 0;
	} else if (ai <= 27) {
		n = (size_t)1 << (ai - 24);
	} else {
		return -EBADMSG;
	}
	if (r->end - r->pos - 1 < n)
		return -EBADMSG;
	for (i = 0; i < n; i++)
		a = a << 8 | p[r->pos + 1 + i];
	r->pos += 1 + n;
	*ib = b;
	*arg = a;
	return 0;
}

/* Close every container whose values have all been read. */
static void rd_pop(shmcap_datum_reader *r)
{
	while (r->depth > 0 && r->remain[r->depth] == 0)
		r->depth--;
}

/* Major type 7: the type, or a negative errno; sets r->v. */
static int rd_simple(shmcap_datum_reader *r, unsigned int ai, uint64_t arg)
{
	switch (ai) {
	case SV_FALSE:
	case SV_TRUE:
		r->v.i = ai == SV_TRUE;
		return SHMCAP_DATUM_BOOL;
	case SV_NULL:
		return SHMCAP_DATUM_NIL;
	case AI_1:
		/* Simple values below 32 must use the one-byte form. */
		return arg < 32 ? -EBADMSG : -EOPNOTSUPP;
	case AI_F16:
		r->v.f = f16_to_double((uint16_t)arg);
		return SHMCAP_DATUM_FLOAT;
	case AI_F32:
		r->v.f = (double)f32_from_bits((uint32_t)arg);
		return SHMCAP_DATUM_FLOAT;
	case AI_F64:
		r->v.f = f64_from_bits(arg);
		return SHMCAP_DATUM_FLOAT;
	case AI_INDEF:
		return -EBADMSG; /* a "break" outside an indefinite item */
	default:
		return -EOPNOTSUPP; /* undefined, unassigned simple values */
	}
}

/* One value, with every bound checked against the copy of its head. */
static int rd_value(shmcap_datum_reader *r)
{
	unsigned int ib, mt, ai;
	uint64_t arg, tag = 0;
	int ret, type, per = 1;

	if ((ret = rd_head(r, &ib, &arg)))
		return ret;
	mt = ib >> 5;
	ai = ib & 31;
	if (mt == MT_TAG) {
		if (ai == AI_INDEF)
			return -EBADMSG;
		tag = arg;
		if (tag != SHMCAP_DATUM_TAG_SYMBOL &&
		    tag != SHMCAP_DATUM_TAG_VECTOR)
			return -EOPNOTSUPP;
		if ((ret = rd_head(r, &ib, &arg)))
			return ret;
		mt = ib >> 5;
		ai = ib & 31;
		if (tag == SHMCAP_DATUM_TAG_SYMBOL && mt != MT_TEXT)
			return mt == MT_TAG && ai == AI_INDEF ? -EBADMSG :
								-EOPNOTSUPP;
		if (tag == SHMCAP_DATUM_TAG_VECTOR && mt != MT_ARRAY)
			return mt == MT_TAG && ai == AI_INDEF ? -EBADMSG :
								-EOPNOTSUPP;
	}
	if (ai == AI_INDEF) {
		if (mt >= MT_BYTES && mt <= MT_MAP)
			return -EOPNOTSUPP;
		if (mt != MT_SIMPLE)
			return -EBADMSG;
	}

	switch (mt) {
	case MT_UINT:
	case MT_NINT:
		if (arg > (uint64_t)INT64_MAX)
			return -ERANGE;
		r->v.i = mt == MT_UINT ? (int64_t)arg : -1 - (int64_t)arg;
		type = SHMCAP_DATUM_INT;
		break;
	case MT_BYTES:
	case MT_TEXT:
		if (arg > r->end - r->pos)
			return -EBADMSG;
		r->str = r->p + r->pos;
		r->len = (size_t)arg;
		r->pos += (size_t)arg;
		if (mt == MT_BYTES) {
			type = SHMCAP_DATUM_BYTES;
		} else {
			if (r->validating && !utf8_valid(r->str, r->len))
				return -EBADMSG;
			type = tag ? SHMCAP_DATUM_SYMBOL : SHMCAP_DATUM_TEXT;
		}
		break;
	case MT_MAP:
		per = 2;
		/* fall through */
	case MT_ARRAY:
		if (r->depth + 1 > SHMCAP_DATUM_DEPTH_MAX)
			return -ELOOP;
		if (arg > (r->end - r->pos) / (unsigned int)per)
			return -EBADMSG;
		r->v.count = arg;
		type = mt == MT_MAP ? SHMCAP_DATUM_MAP :
		       tag	    ? SHMCAP_DATUM_VECTOR :
				      SHMCAP_DATUM_LIST;
		break;
	default:
		if ((ret = rd_simple(r, ai, arg)) < 0)
			return ret;
		type = ret;
		break;
	}

	r->cur_depth = r->depth;
	if (r->depth == 0)
		r->top_done = 1;
	else
		r->remain[r->depth]--;
	if ((type == SHMCAP_DATUM_LIST || type == SHMCAP_DATUM_VECTOR ||
	     type == SHMCAP_DATUM_MAP) &&
	    r->v.count > 0) {
		r->depth++;
		r->remain[r->depth] = r->v.count * (uint64_t)per;
	}
	return type;
}

SHMCAP_EXPORT int shmcap_datum_next(shmcap_datum_reader *r)
{
	int type;

	if (!r)
		return -EINVAL;
	if (r->err)
		return r->err;
	rd_pop(r);
	if (r->depth == 0 && r->top_done) {
		r->type = 0;
		if (r->pos != r->end)
			return rd_fail(r, -EBADMSG);
		return 0;
	}
	type = rd_value(r);
	if (type < 0)
		return rd_fail(r, type);
	r->type = type;
	return type;
}

static void rd_rewind(shmcap_datum_reader *r)
{
	r->pos = PREFIX;
	r->err = 0;
	r->depth = 0;
	r->top_done = 0;
	r->type = 0;
}

SHMCAP_EXPORT int shmcap_datum_reader_reset(shmcap_datum_reader *r,
					    const void *frame, size_t size)
{
	const volatile unsigned char *f = frame;
	uint32_t n;
	int ret;

	if (!r)
		return -EINVAL;
	r->p = frame;
	r->end = PREFIX;
	rd_rewind(r);
	if (!frame)
		return rd_fail(r, -EINVAL);
	if (size < PREFIX)
		return rd_fail(r, -EBADMSG);
	n = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 |
	    (uint32_t)f[3] << 24;
	if (n > FRAME_MAX - PREFIX || n > size - PREFIX)
		return rd_fail(r, -EBADMSG);
	r->end = PREFIX + (size_t)n;

	r->validating = 1;
	while ((ret = shmcap_datum_next(r)) > 0)
		;
	r->validating = 0;
	if (ret < 0)
		return ret; /* sticky in r->err */
	rd_rewind(r);
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_reader_new(const void *frame, size_t size,
					  shmcap_datum_reader **r)
{
	shmcap_datum_reader *nr;
	int ret;

	if (!r)
		return -EINVAL;
	nr = malloc(sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	memset(nr, 0, sizeof(*nr));
	if (!frame && !size) {
		rd_fail(nr, -EINVAL); /* no frame yet */
	} else if ((ret = shmcap_datum_reader_reset(nr, frame, size))) {
		free(nr);
		return ret;
	}
	*r = nr;
	return 0;
}

SHMCAP_EXPORT void shmcap_datum_reader_free(shmcap_datum_reader *r)
{
	free(r);
}

SHMCAP_EXPORT int shmcap_datum_get_bool(shmcap_datum_reader *r)
{
	if (!r || r->type != SHMCAP_DATUM_BOOL)
		return -EINVAL;
	return (int)r->v.i;
}

SHMCAP_EXPORT int shmcap_datum_get_int(shmcap_datum_reader *r, int64_t *v)
{
	if (!r || !v || r->type != SHMCAP_DATUM_INT)
		return -EINVAL;
	*v = r->v.i;
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_get_float(shmcap_datum_reader *r, double *v)
{
	if (!r || !v || r->type != SHMCAP_DATUM_FLOAT)
		return -EINVAL;
	*v = r->v.f;
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_get_text(shmcap_datum_reader *r, const char **s,
					size_t *len)
{
	if (!r || !s || !len ||
	    (r->type != SHMCAP_DATUM_TEXT && r->type != SHMCAP_DATUM_SYMBOL))
		return -EINVAL;
	*s = (const char *)r->str;
	*len = r->len;
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_get_bytes(shmcap_datum_reader *r, const void **p,
					 size_t *len)
{
	if (!r || !p || !len || r->type != SHMCAP_DATUM_BYTES)
		return -EINVAL;
	*p = r->str;
	*len = r->len;
	return 0;
}

static int is_container(int type)
{
	return type == SHMCAP_DATUM_LIST || type == SHMCAP_DATUM_VECTOR ||
	       type == SHMCAP_DATUM_MAP;
}

SHMCAP_EXPORT int64_t shmcap_datum_get_count(shmcap_datum_reader *r)
{
	if (!r || !is_container(r->type))
		return -EINVAL;
	return (int64_t)r->v.count; /* at most the frame's size */
}

SHMCAP_EXPORT int shmcap_datum_skip(shmcap_datum_reader *r)
{
	int target, ret;

	if (!r || !is_container(r->type))
		return -EINVAL;
	target = r->cur_depth;
	for (;;) {
		rd_pop(r);
		if (r->depth <= target)
			break;
		ret = shmcap_datum_next(r);
		if (ret < 0)
			return ret;
		if (ret == 0) /* cannot happen while depth > 0 */
			return rd_fail(r, -EBADMSG);
	}
	r->type = 0;
	return 0;
}

SHMCAP_EXPORT int shmcap_datum_depth(shmcap_datum_reader *r)
{
	if (!r || !r->type)
		return -EINVAL;
	return r->cur_depth;
}

/* ------------------------------------------------------------------------
 * Text form
 */

struct out {
	char *buf;
	size_t size;
	size_t len; /* of the whole text, even past size */
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->len < o->size) {
		size_t room = o->size - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_c(struct out *o, char c)
{
	out_put(o, &c, 1);
}

/*
 * Whether the p decimal digits dig (d.ddd) times 10^x read back as v.
 */
static int float_digits_exact(const char *dig, int p, int x, double v)
{
	char tmp[48];

	snprintf(tmp, sizeof(tmp), "%c.%.*se%d", dig[0], p - 1, dig + 1, x);
	return strtod(tmp, NULL) == v;
}

/*
 * Add delta (+1 or -1) to the last of the p digits of dig, with carry;
 * *x is the decimal exponent. 0, or -1 where the result would not have p
 * significant digits (1000 - 1).
 */
static int float_digits_step(char *dig, int p, int *x, int delta)
{
	int i;

	for (i = p - 1; i >= 0; i--) {
		if (delta > 0 && dig[i] == '9') {
			dig[i] = '0';
		} else if (delta < 0 && dig[i] == '0') {
			dig[i] = '9';
		} else {
			dig[i] = (char)(dig[i] + delta);
			return i == 0 && dig[0] == '0' ? -1 : 0;
		}
	}
	if (delta < 0)
		return -1;
	dig[0] = '1'; /* 999 + 1: 1000, one decade up */
	(*x)++;
	return 0;
}

/*
 * A finite float in the fewest significant digits that read back as the
 * same double (what Python's repr and Scheme's number->string give),
 * always with a '.' or an exponent. printf's %.*e rounds the exact binary
 * value to p digits, which is the closest p-digit decimal; when that one
 * does not read back, a neighbour may (just above a power of two the
 * doubles below are twice as dense), so both neighbours are tried too.
 */
static void out_float(struct out *o, double d)
{
	char tmp[48], dig[24], step[24];
	const char *e;
	int p, x = 0, n = 0, i, k, delta, found = 0;

	if (isnan(d)) {
		out_str(o, "+nan.0");
		return;
	}
	if (isinf(d)) {
		out_str(o, d > 0 ? "+inf.0" : "-inf.0");
		return;
	}
	if (signbit(d)) {
		out_c(o, '-');
		d = -d;
	}
	for (p = 1; p <= 17 && !found; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
		n = 0;
		for (e = tmp; *e && *e != 'e'; e++)
			if (*e >= '0' && *e <= '9')
				dig[n++] = *e;
		dig[n] = '\0';
		x = *e ? atoi(e + 1) : 0;
		if (float_digits_exact(dig, n, x, d)) {
			found = 1;
			break;
		}
		for (delta = -1; delta <= 1 && !found; delta += 2) {
			k = x;
			memcpy(step, dig, (size_t)n + 1);
			if (float_digits_step(step, n, &k, delta) == 0 &&
			    float_digits_exact(step, n, k, d)) {
				memcpy(dig, step, (size_t)n + 1);
				x = k;
				found = 1;
			}
		}
	}
	while (n > 1 && dig[n - 1] == '0')
		n--;
	if (x < -4 || x >= 16) { /* as Python's repr */
		out_c(o, dig[0]);
		if (n > 1) {
			out_c(o, '.');
			out_put(o, dig + 1, (size_t)n - 1);
		}
		snprintf(tmp, sizeof(tmp), "e%c%02d", x < 0 ? '-' : '+',
			 x < 0 ? -x : x);
		out_str(o, tmp);
	} else if (x >= 0) {
		for (i = 0; i <= x; i++)
			out_c(o, i < n ? dig[i] : '0');
		out_c(o, '.');
		if (n > x + 1)
			out_put(o, dig + x + 1, (size_t)(n - x - 1));
		else
			out_c(o, '0');
	} else {
		out_str(o, "0.");
		for (i = 0; i < -x - 1; i++)
			out_c(o, '0');
		out_put(o, dig, (size_t)n);
	}
}

/* Characters that end a bare symbol in Scheme's reader. */
static int sym_delim(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("()[]{}\"';`,|#\\", c);
}

static int sym_needs_bars(const unsigned char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (sym_delim(s[i]))
			return 1;
	/* What reads as a number: a digit first, or a sign or dot then one. */
	if (s[0] >= '0' && s[0] <= '9')
		return 1;
	if ((s[0] == '+' || s[0] == '-' || s[0] == '.') && n > 1 &&
	    ((s[1] >= '0' && s[1] <= '9') || s[1] == '.' || s[1] == 'i' ||
	     s[1] == 'n'))
		return 1;
	return n == 1 && s[0] == '.';
}

/* Text between quote characters q, with escapes. */
static void out_escaped(struct out *o, const unsigned char *s, size_t n, char q)
{
	char tmp[8];
	size_t i;

	out_c(o, q);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == (unsigned char)q || c == '\\') {
			out_c(o, '\\');
			out_c(o, (char)c);
		} else if (c == '\n') {
			out_str(o, "\\n");
		} else if (c == '\t') {
			out_str(o, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%X;", c);
			out_str(o, tmp);
		} else {
			out_c(o, (char)c);
		}
	}
	out_c(o, q);
}

/* Per open container of the text form: its type and values seen. */
struct fmt_level {
	int type;
	uint64_t index;
};

/* A value at depth d is complete: a map's value closes its pair. */
static void fmt_value_end(struct out *o, const struct fmt_level *lv, int d)
{
	if (d > 0 && lv[d].type == SHMCAP_DATUM_MAP && lv[d].index % 2 == 0)
		out_c(o, ')');
}

SHMCAP_EXPORT int shmcap_datum_format(const void *frame, size_t size, char *out,
				      size_t outsize)
{
	struct fmt_level lv[SHMCAP_DATUM_DEPTH_MAX + 1];
	shmcap_datum_reader r;
	struct out o = { out, outsize, 0 };
	char tmp[32];
	int type, open = 0, d;
	size_t i;

	if (!out && outsize)
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	type = shmcap_datum_reader_reset(&r, frame, size);
	if (type < 0)
		return type;
	if (outsize)
		o.size = outsize - 1; /* room for the NUL */
	while ((type = shmcap_datum_next(&r)) > 0) {
		d = r.cur_depth;
		while (open > d) {
			out_c(&o, ')');
			open--;
			fmt_value_end(&o, lv, open);
		}
		if (d > 0) {
			if (lv[d].type == SHMCAP_DATUM_MAP) {
				if (lv[d].index % 2 == 0)
					out_str(&o, lv[d].index ? " (" : "(");
				else
					out_str(&o, " . ");
			} else if (lv[d].index) {
				out_c(&o, ' ');
			}
			lv[d].index++;
		}
		switch (type) {
		case SHMCAP_DATUM_NIL:
			out_str(&o, "#nil");
			break;
		case SHMCAP_DATUM_BOOL:
			out_str(&o, r.v.i ? "#t" : "#f");
			break;
		case SHMCAP_DATUM_INT:
			snprintf(tmp, sizeof(tmp), "%lld", (long long)r.v.i);
			out_str(&o, tmp);
			break;
		case SHMCAP_DATUM_FLOAT:
			out_float(&o, r.v.f);
			break;
		case SHMCAP_DATUM_TEXT:
			out_escaped(&o, r.str, r.len, '"');
			break;
		case SHMCAP_DATUM_SYMBOL:
			if (sym_needs_bars(r.str, r.len))
				out_escaped(&o, r.str, r.len, '|');
			else
				out_put(&o, (const char *)r.str, r.len);
			break;
		case SHMCAP_DATUM_BYTES:
			out_str(&o, "#vu8(");
			for (i = 0; i < r.len; i++) {
				snprintf(tmp, sizeof(tmp), i ? " %u" : "%u",
					 (unsigned int)r.str[i]);
				out_str(&o, tmp);
			}
			out_c(&o, ')');
			break;
		default: /* containers */
			out_str(&o, type == SHMCAP_DATUM_LIST	? "(" :
				    type == SHMCAP_DATUM_VECTOR ? "#(" :
								  "#hash(");
			if (r.v.count == 0) {
				out_c(&o, ')');
				break;
			}
			open = d + 1;
			lv[open].type = type;
			lv[open].index = 0;
			continue; /* the value ends with its last element */
		}
		fmt_value_end(&o, lv, d);
	}
	if (type < 0)
		return type;
	while (open > 0) {
		out_c(&o, ')');
		open--;
		fmt_value_end(&o, lv, open);
	}
	if (outsize)
		out[o.len < o.size ? o.len : o.size] = '\0';
	if (o.len > INT_MAX)
		return -EOVERFLOW;
	return (int)o.len;
}
