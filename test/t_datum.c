/* SPDX-License-Identifier: MIT */
/*
 * Description: datum frames (CBOR): round trips of every type and edge
 * value, exact encodings, the text form, writer errors (every truncation
 * of the buffer, bad UTF-8, incomplete containers, depth), reader errors
 * (every truncation, hand-made malformed and unsupported items, random
 * corruption, a million levels of nesting), a frame written by a child into
 * a shared region and read in place, a frame through a channel, and a
 * reader racing a process that keeps flipping the frame's bytes.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>

#include "helpers.h"
#include "util.h"

#define SEED_TEXT "(1 2 #(3 4) ciao \"hello\" #vu8(99 98 97))"

static shmcap_datum_writer *W;
static shmcap_datum_reader *R;

/* Errors a reader may give for hostile input. */
static int allowed_err(int e)
{
	return e == -EBADMSG || e == -ERANGE || e == -EOPNOTSUPP || e == -ELOOP;
}

/* (1 2 #(3 4) ciao "hello" #vu8(99 98 97)); every call's result must be
 * 0 or the writer's sticky error, which is returned. */
static int put_seed(shmcap_datum_writer *w)
{
	int rs[10], i, err = 0;

	rs[0] = shmcap_datum_begin_list(w, 6);
	rs[1] = shmcap_datum_put_int(w, 1);
	rs[2] = shmcap_datum_put_int(w, 2);
	rs[3] = shmcap_datum_begin_vector(w, 2);
	rs[4] = shmcap_datum_put_int(w, 3);
	rs[5] = shmcap_datum_put_int(w, 4);
	rs[6] = shmcap_datum_put_symbol(w, "ciao", 4);
	rs[7] = shmcap_datum_put_text(w, "hello", 5);
	rs[8] = shmcap_datum_put_bytes(w, "cba", 3);
	rs[9] = 0;
	for (i = 0; i < 10; i++) {
		if (rs[i] && !err)
			err = rs[i];
		if (rs[i] && rs[i] != err)
			FAIL("call %d gave %d after %d", i, rs[i], err);
	}
	return err;
}

/* Encode one value with fn into buf and return the frame's size. */
static size_t frame_of(unsigned char *buf, size_t size,
		       int (*fn)(shmcap_datum_writer *, const void *),
		       const void *arg)
{
	int n;

	CHECK_OK(shmcap_datum_writer_reset(W, buf, size));
	CHECK_OK(fn(W, arg));
	n = shmcap_datum_finish(W);
	CHECK(n > 4);
	return (size_t)n;
}

static int put_i64(shmcap_datum_writer *w, const void *a)
{
	return shmcap_datum_put_int(w, *(const int64_t *)a);
}

static int put_f64(shmcap_datum_writer *w, const void *a)
{
	return shmcap_datum_put_float(w, *(const double *)a);
}

/* Reset R to a raw CBOR item (the prefix is added here). */
static int read_raw(const void *item, size_t n)
{
	static unsigned char buf[64];

	CHECK(n + 4 <= sizeof(buf));
	buf[0] = (unsigned char)n;
	buf[1] = buf[2] = buf[3] = 0;
	memcpy(buf + 4, item, n);
	return shmcap_datum_reader_reset(R, buf, n + 4);
}

static void test_ints(void)
{
	static const struct {
		int64_t v;
		size_t len; /* of the CBOR item */
	} t[] = {
		{ 0, 1 },
		{ 1, 1 },
		{ 23, 1 },
		{ 24, 2 },
		{ 255, 2 },
		{ 256, 3 },
		{ 65535, 3 },
		{ 65536, 5 },
		{ 4294967295LL, 5 },
		{ 4294967296LL, 9 },
		{ INT64_MAX, 9 },
		{ -1, 1 },
		{ -24, 1 },
		{ -25, 2 },
		{ -256, 2 },
		{ -257, 3 },
		{ -65536, 3 },
		{ -65537, 5 },
		{ -4294967296LL, 5 },
		{ -4294967297LL, 9 },
		{ INT64_MIN, 9 },
	};
	unsigned char buf[32];
	size_t i, n;
	int64_t got;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = frame_of(buf, sizeof(buf), put_i64, &t[i].v);
		CHECK_EQ(n, 4 + t[i].len);
		CHECK_OK(shmcap_datum_reader_reset(R, buf, n));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &got));
		CHECK_EQ(got, t[i].v);
		CHECK_EQ(shmcap_datum_depth(R), 0);
		CHECK_ERR(shmcap_datum_get_float(R, &(double){ 0 }), -EINVAL);
		CHECK_EQ(shmcap_datum_next(R), 0);
		CHECK_EQ(shmcap_datum_next(R), 0);
	}

	/* Non-shortest forms are valid CBOR and read. */
	{
		static const unsigned char a[] = { 0x18, 0x05 };
		static const unsigned char b[] = { 0x19, 0x00, 0x05 };
		static const unsigned char c[] = {
			0x1b, 0, 0, 0, 0, 0, 0, 0, 5
		};
		static const unsigned char d[] = { 0x3b, 0x7f, 0xff, 0xff, 0xff,
						   0xff, 0xff, 0xff, 0xff };
		static const unsigned char e[] = { 0x1b, 0x80, 0, 0, 0,
						   0,	 0,    0, 0 };
		static const unsigned char f[] = { 0x3b, 0x80, 0, 0, 0,
						   0,	 0,    0, 0 };

		CHECK_OK(read_raw(a, sizeof(a)));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &got));
		CHECK_EQ(got, 5);
		CHECK_OK(read_raw(b, sizeof(b)));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &got));
		CHECK_EQ(got, 5);
		CHECK_OK(read_raw(c, sizeof(c)));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &got));
		CHECK_EQ(got, 5);
		CHECK_OK(read_raw(d, sizeof(d)));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &got));
		CHECK(got == INT64_MIN);
		CHECK_ERR(read_raw(e, sizeof(e)), -ERANGE);
		CHECK_ERR(shmcap_datum_next(R), -ERANGE);
		CHECK_ERR(read_raw(f, sizeof(f)), -ERANGE);
	}
}

static void check_float_rt(double v, size_t want_len)
{
	unsigned char buf[32];
	size_t n = frame_of(buf, sizeof(buf), put_f64, &v);
	double got;

	if (n != 4 + want_len)
		FAIL("%a encoded in %zu bytes, not %zu", v, n - 4, want_len);
	CHECK_OK(shmcap_datum_reader_reset(R, buf, n));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
	CHECK_OK(shmcap_datum_get_float(R, &got));
	if (isnan(v)) {
		CHECK(isnan(got));
	} else if (memcmp(&got, &v, sizeof(v)) != 0) {
		FAIL("%a came back as %a", v, got);
	}
}

static void test_floats(void)
{
	static const struct {
		unsigned char item[9];
		size_t len;
		double v;
	} raw[] = {
		{ { 0xf9, 0x3c, 0x00 }, 3, 1.0 },
		{ { 0xf9, 0x00, 0x01 }, 3, 5.960464477539063e-08 },
		{ { 0xf9, 0x03, 0xff }, 3, 0.00006097555160522461 },
		{ { 0xf9, 0x7b, 0xff }, 3, 65504.0 },
		{ { 0xf9, 0xc4, 0x00 }, 3, -4.0 },
		{ { 0xfa, 0x47, 0xc3, 0x50, 0x00 }, 5, 100000.0 },
		{ { 0xfa, 0x3f, 0x80, 0x00, 0x00 }, 5, 1.0 }, /* not shortest */
		{ { 0xfa, 0x00, 0x00, 0x00, 0x01 }, 5, 1.401298464324817e-45 },
		{ { 0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a },
		  9,
		  1.1 },
		{ { 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 }, 9, 1.0 },
	};
	double got;
	size_t i;

	check_float_rt(0.0, 3);
	check_float_rt(-0.0, 3);
	check_float_rt(1.0, 3);
	check_float_rt(-2.5, 3);
	check_float_rt(65504.0, 3);
	check_float_rt(65505.0, 5);
	check_float_rt(5.960464477539063e-08, 3); /* smallest f16 subnormal */
	check_float_rt(3 * 5.960464477539063e-08, 3);
	check_float_rt(0.00006103515625, 3); /* smallest f16 normal */
	check_float_rt(100000.0, 5);
	check_float_rt(FLT_MAX, 5);
	check_float_rt(FLT_TRUE_MIN, 5);
	check_float_rt(FLT_MIN, 5);
	check_float_rt(0.1, 9);
	check_float_rt(1e300, 9);
	check_float_rt(DBL_MAX, 9);
	check_float_rt(DBL_MIN, 9);
	check_float_rt(DBL_TRUE_MIN, 9);
	check_float_rt(DBL_MIN / 4, 9); /* subnormal double */
	check_float_rt((double)INFINITY, 3);
	check_float_rt(-(double)INFINITY, 3);
	check_float_rt((double)NAN, 3);

	for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		CHECK_OK(read_raw(raw[i].item, raw[i].len));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
		CHECK_OK(shmcap_datum_get_float(R, &got));
		if (got != raw[i].v)
			FAIL("raw float %zu: %a, not %a", i, got, raw[i].v);
	}
	{
		static const unsigned char nan16[] = { 0xf9, 0x7e, 0x01 };
		static const unsigned char inf16[] = { 0xf9, 0xfc, 0x00 };
		static const unsigned char nz16[] = { 0xf9, 0x80, 0x00 };

		CHECK_OK(read_raw(nan16, 3));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
		CHECK_OK(shmcap_datum_get_float(R, &got));
		CHECK(isnan(got));
		CHECK_OK(read_raw(inf16, 3));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
		CHECK_OK(shmcap_datum_get_float(R, &got));
		CHECK(isinf(got) && got < 0);
		CHECK_OK(read_raw(nz16, 3));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
		CHECK_OK(shmcap_datum_get_float(R, &got));
		CHECK(got == 0 && signbit(got));
	}
}

static void test_scalars(void)
{
	static unsigned char big[300];
	unsigned char buf[512];
	const char *s;
	const void *p;
	size_t len, i;
	int n;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(shmcap_datum_begin_list(W, 9));
	CHECK_OK(shmcap_datum_put_nil(W));
	CHECK_OK(shmcap_datum_put_bool(W, 1));
	CHECK_OK(shmcap_datum_put_bool(W, 0));
	CHECK_OK(shmcap_datum_put_text(W, "", 0));
	CHECK_OK(shmcap_datum_put_text(
		W, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
	CHECK_OK(shmcap_datum_put_bytes(W, NULL, 0));
	CHECK_OK(shmcap_datum_put_bytes(W, big, sizeof(big)));
	CHECK_OK(shmcap_datum_put_symbol(W, "a b", 3));
	/* U+10FFFF, U+FFFF, U+D7FF: the edges of what is valid */
	CHECK_OK(shmcap_datum_put_text(
		W, "\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf", 10));
	n = shmcap_datum_finish(W);
	CHECK(n > 0);
	CHECK_EQ(shmcap_datum_finish(W), n);
	CHECK_ERR(shmcap_datum_put_nil(W), -EINVAL);

	CHECK_OK(shmcap_datum_reader_reset(R, buf, sizeof(buf)));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
	CHECK_EQ(shmcap_datum_get_count(R), 9);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_NIL);
	CHECK_EQ(shmcap_datum_depth(R), 1);
	CHECK_ERR(shmcap_datum_get_bool(R), -EINVAL);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_BOOL);
	CHECK_EQ(shmcap_datum_get_bool(R), 1);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_BOOL);
	CHECK_EQ(shmcap_datum_get_bool(R), 0);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_TEXT);
	CHECK_OK(shmcap_datum_get_text(R, &s, &len));
	CHECK_EQ(len, 0);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_TEXT);
	CHECK_OK(shmcap_datum_get_text(R, &s, &len));
	CHECK_EQ(len, 15);
	CHECK(memcmp(s, "h\xc3\xa9llo", 6) == 0);
	/* A view into the frame, not a copy. */
	CHECK((const unsigned char *)s > buf &&
	      (const unsigned char *)s < buf + n);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_BYTES);
	CHECK_OK(shmcap_datum_get_bytes(R, &p, &len));
	CHECK_EQ(len, 0);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_BYTES);
	CHECK_ERR(shmcap_datum_get_text(R, &s, &len), -EINVAL);
	CHECK_OK(shmcap_datum_get_bytes(R, &p, &len));
	CHECK_EQ(len, sizeof(big));
	CHECK(memcmp(p, big, len) == 0);
	CHECK((const unsigned char *)p > buf &&
	      (const unsigned char *)p < buf + n);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_SYMBOL);
	CHECK_OK(shmcap_datum_get_text(R, &s, &len));
	CHECK(len == 3 && memcmp(s, "a b", 3) == 0);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_TEXT);
	CHECK_EQ(shmcap_datum_next(R), 0);
	CHECK_ERR(shmcap_datum_depth(R), -EINVAL);
	CHECK_ERR(shmcap_datum_get_count(R), -EINVAL);
}

static void test_seed_and_format(void)
{
	unsigned char buf[64];
	char out[128];
	const char *s;
	size_t len;
	int n, k;

	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(put_seed(W));
	n = shmcap_datum_finish(W);
	CHECK_EQ(n, 4 + 26);
	CHECK_EQ(shmcap_datum_format(buf, (size_t)n, out, sizeof(out)),
		 strlen(SEED_TEXT));
	CHECK_STR_EQ(out, SEED_TEXT);
	/* snprintf-like truncation */
	for (k = 0; k <= (int)strlen(SEED_TEXT) + 1; k++) {
		memset(out, 'x', sizeof(out));
		CHECK_EQ(shmcap_datum_format(buf, (size_t)n, out, (size_t)k),
			 strlen(SEED_TEXT));
		if (k > 0) {
			CHECK(strncmp(out, SEED_TEXT, (size_t)k - 1) == 0);
			CHECK_EQ(out[k - 1], '\0');
		}
		CHECK_EQ(out[k], 'x');
	}
	CHECK_EQ(shmcap_datum_format(buf, (size_t)n, NULL, 0),
		 strlen(SEED_TEXT));

	/* Walk with skip and depth. */
	CHECK_OK(shmcap_datum_reader_reset(R, buf, (size_t)n));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
	CHECK_EQ(shmcap_datum_get_count(R), 6);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
	CHECK_ERR(shmcap_datum_skip(R), -EINVAL);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_VECTOR);
	CHECK_EQ(shmcap_datum_get_count(R), 2);
	CHECK_EQ(shmcap_datum_depth(R), 1);
	CHECK_OK(shmcap_datum_skip(R));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_SYMBOL);
	CHECK_EQ(shmcap_datum_depth(R), 1);
	CHECK_OK(shmcap_datum_get_text(R, &s, &len));
	CHECK(len == 4 && memcmp(s, "ciao", 4) == 0);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_TEXT);
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_BYTES);
	CHECK_EQ(shmcap_datum_next(R), 0);
	/* skip of the top-level list */
	CHECK_OK(shmcap_datum_reader_reset(R, buf, (size_t)n));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
	CHECK_OK(shmcap_datum_skip(R));
	CHECK_EQ(shmcap_datum_next(R), 0);

	/* More of the notation. */
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(shmcap_datum_begin_map(W, 3));
	CHECK_OK(shmcap_datum_put_symbol(W, "k", 1));
	CHECK_OK(shmcap_datum_begin_list(W, 0));
	CHECK_OK(shmcap_datum_begin_vector(W, 1));
	CHECK_OK(shmcap_datum_put_float(W, 1.5));
	CHECK_OK(shmcap_datum_begin_map(W, 0));
	CHECK_OK(shmcap_datum_put_text(W, "a\"\\\n\t\x01", 6));
	CHECK_OK(shmcap_datum_begin_list(W, 3));
	CHECK_OK(shmcap_datum_put_nil(W));
	CHECK_OK(shmcap_datum_put_float(W, 1.0));
	CHECK_OK(shmcap_datum_put_symbol(W, "12", 2));
	n = shmcap_datum_finish(W);
	CHECK(n > 0);
	CHECK(shmcap_datum_format(buf, (size_t)n, out, sizeof(out)) > 0);
	CHECK_STR_EQ(out, "#hash((k . ()) (#(1.5) . #hash()) "
			  "(\"a\\\"\\\\\\n\\t\\x1;\" . (#nil 1.0 |12|)))");
	{
		static const double fv[] = { 0.1, -0.0, 1e300, 5e-324, 100.0 };
		static const char *const ft[] = { "0.1", "-0.0", "1e+300",
						  "5e-324", "100.0" };
		double nanv = (double)NAN, infv = (double)INFINITY;
		size_t i;

		for (i = 0; i < 5; i++) {
			n = (int)frame_of(buf, sizeof(buf), put_f64, &fv[i]);
			shmcap_datum_format(buf, (size_t)n, out, sizeof(out));
			CHECK_STR_EQ(out, ft[i]);
		}
		n = (int)frame_of(buf, sizeof(buf), put_f64, &nanv);
		shmcap_datum_format(buf, (size_t)n, out, sizeof(out));
		CHECK_STR_EQ(out, "+nan.0");
		infv = -infv;
		n = (int)frame_of(buf, sizeof(buf), put_f64, &infv);
		shmcap_datum_format(buf, (size_t)n, out, sizeof(out));
		CHECK_STR_EQ(out, "-inf.0");
	}
}

/* A map of 10^5 pairs (int -> list of int and text) and back. */
static void test_big_map(void)
{
	const int64_t npairs = 100000;
	size_t size = 64u << 20;
	unsigned char *buf = malloc(size);
	char key[32];
	const char *s;
	size_t len;
	int64_t i, v;
	int n;

	CHECK(buf);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, size));
	CHECK_OK(shmcap_datum_begin_map(W, (size_t)npairs));
	for (i = 0; i < npairs; i++) {
		snprintf(key, sizeof(key), "key%lld", (long long)i);
		CHECK_OK(shmcap_datum_put_text(W, key, strlen(key)));
		CHECK_OK(shmcap_datum_begin_list(W, 2));
		CHECK_OK(shmcap_datum_put_int(W, i * 1000003));
		CHECK_OK(shmcap_datum_put_float(W, (double)i / 3));
	}
	n = shmcap_datum_finish(W);
	CHECK(n > 0);
	CHECK_OK(shmcap_datum_reader_reset(R, buf, (size_t)n));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_MAP);
	CHECK_EQ(shmcap_datum_get_count(R), npairs);
	for (i = 0; i < npairs; i++) {
		double f;

		snprintf(key, sizeof(key), "key%lld", (long long)i);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_TEXT);
		CHECK_OK(shmcap_datum_get_text(R, &s, &len));
		CHECK(len == strlen(key) && memcmp(s, key, len) == 0);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &v));
		CHECK_EQ(v, i * 1000003);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_FLOAT);
		CHECK_OK(shmcap_datum_get_float(R, &f));
		CHECK(f == (double)i / 3);
		CHECK_EQ(shmcap_datum_depth(R), 2);
	}
	CHECK_EQ(shmcap_datum_next(R), 0);
	free(buf);
}

static void test_writer_errors(void)
{
	unsigned char buf[64], full[64];
	static const char *const bad[] = {
		"\xc0\x80",
		"\xc1\xbf",
		"\xe0\x80\x80",
		"\xe0\x9f\xbf",
		"\xed\xa0\x80",
		"\xed\xbf\xbf",
		"\xf0\x8f\xbf\xbf",
		"\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80",
		"\xff",
		"\x80",
		"\xe2\x82",
		"a\xc3",
		"\xf0\x9f\x98",
		"\xc3\x28",
	};
	size_t i;
	int n, k, d;

	CHECK_ERR(shmcap_datum_writer_new(NULL, 1,
					  &(shmcap_datum_writer *){ 0 }),
		  -EINVAL);
	CHECK_ERR(shmcap_datum_writer_new(buf, 1, NULL), -EINVAL);
	CHECK_ERR(shmcap_datum_put_nil(NULL), -EINVAL);
	CHECK_ERR(shmcap_datum_finish(NULL), -EINVAL);

	/* -ENOSPC at every truncation of the buffer. */
	CHECK_OK(shmcap_datum_writer_reset(W, full, sizeof(full)));
	CHECK_OK(put_seed(W));
	n = shmcap_datum_finish(W);
	CHECK_EQ(n, 30);
	for (k = 0; k < n; k++) {
		memset(buf, 0xee, sizeof(buf));
		CHECK_OK(shmcap_datum_writer_reset(W, buf, (size_t)k));
		CHECK_ERR(put_seed(W), -ENOSPC);
		CHECK_ERR(shmcap_datum_finish(W), -ENOSPC);
		CHECK_EQ(buf[k], 0xee); /* nothing written past the end */
	}
	CHECK_OK(shmcap_datum_writer_reset(W, buf, (size_t)n));
	CHECK_OK(put_seed(W));
	CHECK_EQ(shmcap_datum_finish(W), n);
	CHECK(memcmp(buf, full, (size_t)n) == 0);

	/* Incomplete containers, no value, two values. */
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_ERR(shmcap_datum_finish(W), -EINVAL);
	CHECK_OK(shmcap_datum_begin_list(W, 2));
	CHECK_OK(shmcap_datum_put_int(W, 1));
	CHECK_ERR(shmcap_datum_finish(W), -EINVAL);
	CHECK_OK(shmcap_datum_put_int(W, 2));
	CHECK_EQ(shmcap_datum_finish(W), 7);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(shmcap_datum_begin_map(W, 1));
	CHECK_OK(shmcap_datum_put_int(W, 1));
	CHECK_ERR(shmcap_datum_finish(W), -EINVAL);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(shmcap_datum_put_int(W, 1));
	CHECK_ERR(shmcap_datum_put_int(W, 2), -EINVAL);
	CHECK_ERR(shmcap_datum_finish(W), -EINVAL);
	/* A count that cannot fit. */
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_ERR(shmcap_datum_begin_list(W, SIZE_MAX), -ENOSPC);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_ERR(shmcap_datum_begin_map(W, SIZE_MAX / 2 + 1), -ENOSPC);
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_ERR(shmcap_datum_put_bytes(W, buf, SIZE_MAX), -ENOSPC);

	/* Invalid UTF-8, in text and in symbols; the error is sticky. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
		CHECK_ERR(shmcap_datum_put_text(W, bad[i], strlen(bad[i])),
			  -EILSEQ);
		CHECK_ERR(shmcap_datum_put_nil(W), -EILSEQ);
		CHECK_ERR(shmcap_datum_finish(W), -EILSEQ);
		CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
		CHECK_ERR(shmcap_datum_put_symbol(W, bad[i], strlen(bad[i])),
			  -EILSEQ);
	}
	CHECK_OK(shmcap_datum_writer_reset(W, buf, sizeof(buf)));
	CHECK_OK(shmcap_datum_put_text(W, "a\0b", 3)); /* NUL is fine */

	/* Depth: SHMCAP_DATUM_DEPTH_MAX levels of values, not one more. */
	{
		size_t size = 4 + SHMCAP_DATUM_DEPTH_MAX + 8;
		unsigned char *b = malloc(size);

		CHECK(b);
		CHECK_OK(shmcap_datum_writer_reset(W, b, size));
		for (d = 0; d < SHMCAP_DATUM_DEPTH_MAX; d++)
			CHECK_OK(shmcap_datum_begin_list(W, 1));
		CHECK_ERR(shmcap_datum_begin_list(W, 0), -ELOOP);
		CHECK_ERR(shmcap_datum_finish(W), -ELOOP);
		CHECK_OK(shmcap_datum_writer_reset(W, b, size));
		for (d = 0; d < SHMCAP_DATUM_DEPTH_MAX; d++)
			CHECK_OK(shmcap_datum_begin_list(W, 1));
		CHECK_OK(shmcap_datum_put_int(W, 7));
		n = shmcap_datum_finish(W);
		CHECK_EQ(n, 4 + SHMCAP_DATUM_DEPTH_MAX + 1);
		CHECK_OK(shmcap_datum_reader_reset(R, b, (size_t)n));
		for (d = 0; d < SHMCAP_DATUM_DEPTH_MAX; d++)
			CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_EQ(shmcap_datum_depth(R), SHMCAP_DATUM_DEPTH_MAX);
		CHECK_EQ(shmcap_datum_next(R), 0);
		free(b);
	}
}

/* Frames of every type, for truncation and corruption. */
static size_t rich_frame(unsigned char *buf, size_t size)
{
	int n;

	CHECK_OK(shmcap_datum_writer_reset(W, buf, size));
	CHECK_OK(shmcap_datum_begin_map(W, 4));
	CHECK_OK(shmcap_datum_put_symbol(W, "seed", 4));
	CHECK_OK(put_seed(W));
	CHECK_OK(shmcap_datum_put_int(W, INT64_MIN));
	CHECK_OK(shmcap_datum_begin_vector(W, 5));
	CHECK_OK(shmcap_datum_put_float(W, 0.1));
	CHECK_OK(shmcap_datum_put_float(W, 100000.0));
	CHECK_OK(shmcap_datum_put_float(W, -2.0));
	CHECK_OK(shmcap_datum_put_bool(W, 1));
	CHECK_OK(shmcap_datum_put_nil(W));
	CHECK_OK(shmcap_datum_put_text(W, "\xe2\x82\xac", 3));
	CHECK_OK(shmcap_datum_begin_map(W, 1));
	CHECK_OK(shmcap_datum_put_int(W, 300));
	CHECK_OK(shmcap_datum_put_bytes(W, "xyz", 3));
	CHECK_OK(shmcap_datum_begin_list(W, 0));
	CHECK_OK(shmcap_datum_put_int(W, 70000));
	n = shmcap_datum_finish(W);
	CHECK(n > 0);
	return (size_t)n;
}

/* Read every value and format; must end with 0 or an allowed error. */
static int drain(const unsigned char *buf, size_t size)
{
	char out[256];
	int ret, t;

	ret = shmcap_datum_reader_reset(R, buf, size);
	if (ret < 0) {
		if (!allowed_err(ret))
			FAIL("reset gave %d", ret);
		CHECK_ERR(shmcap_datum_next(R), ret);
		return ret;
	}
	while ((t = shmcap_datum_next(R)) > 0) {
		CHECK(t <= SHMCAP_DATUM_MAP);
		if (t == SHMCAP_DATUM_LIST && (t_rnd() & 1)) {
			ret = shmcap_datum_skip(R);
			if (ret < 0 && !allowed_err(ret))
				FAIL("skip gave %d", ret);
		}
	}
	if (t < 0 && !allowed_err(t))
		FAIL("next gave %d", t);
	ret = shmcap_datum_format(buf, size, out, sizeof(out));
	if (ret < 0 && !allowed_err(ret))
		FAIL("format gave %d", ret);
	return t;
}

static void test_reader_errors(void)
{
	static const struct {
		unsigned char item[12];
		size_t len;
		int err;
	} bad[] = {
		{ { 0x9f, 0x01, 0xff }, 3, -EOPNOTSUPP },
		{ { 0x5f, 0x41, 0x00, 0xff }, 4, -EOPNOTSUPP },
		{ { 0x7f, 0xff }, 2, -EOPNOTSUPP },
		{ { 0xbf, 0xff }, 2, -EOPNOTSUPP },
		{ { 0xf7 }, 1, -EOPNOTSUPP },	    /* undefined */
		{ { 0xf0 }, 1, -EOPNOTSUPP },	    /* simple(16) */
		{ { 0xf8, 0x20 }, 2, -EOPNOTSUPP }, /* simple(32) */
		{ { 0xf8, 0x10 }, 2, -EBADMSG },    /* two-byte simple < 32 */
		{ { 0xc1, 0x00 }, 2, -EOPNOTSUPP }, /* tag 1 */
		{ { 0xd8, 0x27, 0x01 }, 3, -EOPNOTSUPP }, /* tag 39 on int */
		{ { 0xd8, 0x27, 0xd8, 0x27, 0x60 }, 5, -EOPNOTSUPP },
		{ { 0xd9, 0x96, 0xe9, 0x60 },
		  4,
		  -EOPNOTSUPP }, /* vector, text */
		{ { 0xd8, 0x27, 0x41, 0x61 }, 4, -EOPNOTSUPP }, /* sym bytes */
		{ { 0xff }, 1, -EBADMSG },
		{ { 0x1c }, 1, -EBADMSG },
		{ { 0x3d }, 1, -EBADMSG },
		{ { 0xfe }, 1, -EBADMSG },
		{ { 0x1f }, 1, -EBADMSG },
		{ { 0xdf }, 1, -EBADMSG },
		{ { 0x01, 0x02 }, 2, -EBADMSG }, /* trailing bytes */
		{ { 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0x61 },
		  10,
		  -EBADMSG },
		{ { 0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 9, -EBADMSG },
		{ { 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0x01 },
		  10,
		  -EBADMSG },
		{ { 0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2 }, 11, -EBADMSG },
		{ { 0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1,
		    2 },
		  11,
		  -EBADMSG },
		{ { 0x62, 0xc0, 0x80 }, 3, -EBADMSG },	     /* overlong */
		{ { 0x63, 0xed, 0xa0, 0x80 }, 4, -EBADMSG }, /* surrogate */
		{ { 0x64, 0xf4, 0x90, 0x80, 0x80 }, 5, -EBADMSG },
		{ { 0xd8, 0x27, 0x61, 0xff }, 4, -EBADMSG }, /* symbol */
		{ { 0x82, 0x01 }, 2, -EBADMSG },
		{ { 0xa1, 0x01 }, 2, -EBADMSG },
		{ { 0x19, 0x01 }, 2, -EBADMSG },
	};
	unsigned char buf[512] = { 0 }, tmp[512];
	size_t i, n, k;
	int ret, j;

	CHECK_ERR(shmcap_datum_reader_reset(NULL, buf, 8), -EINVAL);
	CHECK_ERR(shmcap_datum_reader_reset(R, NULL, 8), -EINVAL);
	CHECK_ERR(shmcap_datum_next(NULL), -EINVAL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ret = read_raw(bad[i].item, bad[i].len);
		if (ret != bad[i].err)
			FAIL("bad item %zu: %d, not %d", i, ret, bad[i].err);
		CHECK_ERR(shmcap_datum_next(R), bad[i].err);
	}
	CHECK_ERR(read_raw("", 0), -EBADMSG); /* no value */
	/* Prefix and size. */
	n = rich_frame(buf, sizeof(buf));
	CHECK_OK(shmcap_datum_reader_reset(R, buf, n));
	CHECK_OK(shmcap_datum_reader_reset(R, buf, sizeof(buf)));
	for (k = 0; k < n; k++)
		CHECK_ERR(shmcap_datum_reader_reset(R, buf, k), -EBADMSG);
	memcpy(tmp, buf, n);
	tmp[3] = 0x80; /* beyond INT_MAX */
	CHECK_ERR(shmcap_datum_reader_reset(R, tmp, SIZE_MAX), -EBADMSG);
	CHECK_ERR(shmcap_datum_format(tmp, n, NULL, 0), -EBADMSG);
	{
		shmcap_datum_reader *r2 = (shmcap_datum_reader *)&i;

		CHECK_ERR(shmcap_datum_reader_new(tmp, n, &r2), -EBADMSG);
		CHECK(r2 == (shmcap_datum_reader *)&i);
		CHECK_OK(shmcap_datum_reader_new(NULL, 0, &r2));
		CHECK_ERR(shmcap_datum_next(r2), -EINVAL);
		CHECK_OK(shmcap_datum_reader_reset(r2, buf, n));
		CHECK_EQ(shmcap_datum_next(r2), SHMCAP_DATUM_MAP);
		shmcap_datum_reader_free(r2);
	}
	/* Every truncation of the content, with the prefix saying so. */
	for (k = 0; k < n - 4; k++) {
		memcpy(tmp, buf, n);
		tmp[0] = (unsigned char)k;
		CHECK_ERR(shmcap_datum_reader_reset(R, tmp, n), -EBADMSG);
		CHECK_ERR(shmcap_datum_next(R), -EBADMSG);
	}
	/* Random corruption: only the allowed errors, nothing else. */
	{
		unsigned long iters = t_scaled(200000);
		unsigned long ok = 0, err = 0, it;

		for (it = 0; it < iters; it++) {
			memcpy(tmp, buf, n);
			for (j = 1 + (int)(t_rnd() % 4); j > 0; j--) {
				k = t_rnd() % n;
				if (t_rnd() & 1)
					tmp[k] ^=
						(unsigned char)(1u << (t_rnd() %
								       8));
				else
					tmp[k] = (unsigned char)t_rnd();
			}
			if (drain(tmp, n) == 0)
				ok++;
			else
				err++;
		}
		printf("corruption: %lu still valid, %lu refused\n", ok, err);
	}
}

static void test_deep(void)
{
	size_t levels = 1000000, i;
	unsigned char *b = malloc(levels + 16);
	static const unsigned char heads[] = { 0x81, 0xa1, 0x00 };
	int h;

	CHECK(b);
	for (h = 0; h < 3; h++) {
		size_t n = 4;

		for (i = 0; i < levels; i++) {
			if (h == 2) { /* vectors: tag + array */
				b[n++] = 0xd9;
				b[n++] = 0x96;
				b[n++] = 0xe9;
				b[n++] = 0x81;
				if (n > levels)
					break;
				continue;
			}
			b[n++] = heads[h];
			if (h == 1)
				b[n++] = 0x00; /* key; the value nests */
			if (n > levels)
				break;
		}
		b[n++] = 0x00;
		b[0] = (unsigned char)(n - 4);
		b[1] = (unsigned char)((n - 4) >> 8);
		b[2] = (unsigned char)((n - 4) >> 16);
		b[3] = 0;
		CHECK_ERR(shmcap_datum_reader_reset(R, b, n), -ELOOP);
		CHECK_ERR(shmcap_datum_format(b, n, NULL, 0), -ELOOP);
	}
	free(b);
}

/* A child writes the seed datum into a shared region; the parent reads. */
static void test_fork_region(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	unsigned char *mem = t_region_new(4096, &region, &map);
	char out[128];
	const char *s;
	size_t len;
	pid_t pid;

	pid = t_fork_child(30);
	if (pid == 0) {
		shmcap_datum_writer *w;

		CHECK_OK(shmcap_datum_writer_new(mem + 100, 3996, &w));
		CHECK_OK(put_seed(w));
		CHECK_EQ(shmcap_datum_finish(w), 30);
		shmcap_datum_writer_free(w);
		t_child_pass();
	}
	t_reap_ok(pid, 30);
	CHECK_OK(shmcap_datum_reader_reset(R, mem + 100, 3996));
	CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
	CHECK_OK(shmcap_datum_skip(R));
	CHECK_OK(shmcap_datum_reader_reset(R, mem + 100, 3996));
	while (shmcap_datum_next(R) != SHMCAP_DATUM_TEXT)
		;
	CHECK_OK(shmcap_datum_get_text(R, &s, &len));
	CHECK((const unsigned char *)s > mem + 100 &&
	      (const unsigned char *)s < mem + 131);
	CHECK(len == 5 && memcmp(s, "hello", 5) == 0);
	CHECK(shmcap_datum_format(mem + 100, 3996, out, sizeof(out)) > 0);
	CHECK_STR_EQ(out, SEED_TEXT);
	t_region_free(region, map);
}

/* A producer child sends datum frames through a channel. */
static void test_channel(void)
{
	shmcap_cap *region;
	shmcap_channel *ch;
	const void *msg;
	char out[128];
	int64_t v;
	size_t len;
	pid_t pid;
	int i, n;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 512, 0,
				       &region));
	pid = t_fork_child(30);
	if (pid == 0) {
		shmcap_datum_writer *w;
		void *p;

		CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0,
					     &ch));
		CHECK_OK(shmcap_datum_writer_new(NULL, 0, &w));
		for (i = 0; i < 100; i++) {
			CHECK_OK(shmcap_channel_reserve(ch, 512, &p,
							SHMCAP_FOREVER));
			CHECK_OK(shmcap_datum_writer_reset(w, p, 512));
			CHECK_OK(shmcap_datum_begin_list(w, 2));
			CHECK_OK(shmcap_datum_put_int(w, i));
			CHECK_OK(put_seed(w));
			n = shmcap_datum_finish(w);
			CHECK(n > 0);
			CHECK_OK(shmcap_channel_commit(ch, (size_t)n));
		}
		shmcap_datum_writer_free(w);
		shmcap_channel_close(ch);
		shmcap_cap_close(region);
		t_child_pass();
	}
	CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_CONSUMER, 0, &ch));
	for (i = 0; i < 100; i++) {
		n = shmcap_channel_recv_ptr(ch, &msg, &len, 30 * 1000000000LL);
		CHECK(n > 0);
		CHECK_OK(shmcap_datum_reader_reset(R, msg, len));
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_INT);
		CHECK_OK(shmcap_datum_get_int(R, &v));
		CHECK_EQ(v, i);
		CHECK_EQ(shmcap_datum_next(R), SHMCAP_DATUM_LIST);
		CHECK_OK(shmcap_datum_skip(R));
		CHECK_EQ(shmcap_datum_next(R), 0);
		if (i == 99) {
			char want[128];

			snprintf(want, sizeof(want), "(99 %s)", SEED_TEXT);
			shmcap_datum_format(msg, len, out, sizeof(out));
			CHECK_STR_EQ(out, want);
		}
		CHECK_OK(shmcap_channel_release(ch));
	}
	CHECK_ERR(shmcap_channel_recv_ptr(ch, &msg, &len, 30 * 1000000000LL),
		  -EPIPE);
	t_reap_ok(pid, 30);
	shmcap_channel_close(ch);
	shmcap_cap_close(region);
}

/* A reader while another process keeps flipping the frame's bytes. */
static void test_flipper(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	unsigned char *mem = t_region_new(4096, &region, &map);
	volatile unsigned char *vm = mem;
	unsigned long iters = t_scaled(20000), it;
	unsigned long ok = 0;
	size_t n;
	pid_t pid;

	n = rich_frame(mem, 4096);
	pid = t_fork_child(60);
	if (pid == 0) {
		uint64_t x = t_rng_seed();

		for (;;) {
			/* xorshift; the prefix stays so frames stay long */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			vm[4 + x % (n - 4)] ^= (unsigned char)(x >> 32 | 1);
		}
	}
	for (it = 0; it < iters; it++)
		if (drain(mem, 4096) == 0)
			ok++;
	printf("flipper: %lu of %lu frames read whole\n", ok, iters);
	kill(pid, SIGKILL);
	t_check_killed(pid, 30);
	t_region_free(region, map);
}

/*
 * A writer killed with SIGKILL at a random moment while it encodes frames
 * over and over in a shared region: what it left reads as a whole datum
 * or gives an allowed error, never a crash.
 */
static void test_writer_killed(void)
{
	unsigned long rounds = t_scaled(20), k, whole = 0;
	shmcap_cap *region;
	shmcap_map *map;
	unsigned char *mem;
	pid_t pid;

	for (k = 0; k < rounds; k++) {
		mem = t_region_new(4096, &region, &map);
		pid = t_fork_child(30);
		if (pid == 0) {
			for (;;) {
				(void)rich_frame(mem, 4096);
				CHECK_OK(shmcap_datum_writer_reset(W, mem,
								   4096));
				CHECK_OK(shmcap_datum_begin_list(W, 40));
				for (int i = 0; i < 40; i++)
					CHECK_OK(shmcap_datum_put_text(
						W, "interrupted", 11));
				CHECK(shmcap_datum_finish(W) > 0);
			}
		}
		t_sleep_ns((int64_t)(t_rnd() % 2000000));
		CHECK(kill(pid, SIGKILL) == 0);
		t_check_killed(pid, 30);
		if (drain(mem, 4096) == 0)
			whole++;
		t_region_free(region, map);
	}
	printf("writer killed: %lu of %lu frames left whole\n", whole, rounds);
}

static void bench(void)
{
	unsigned char buf[64];
	unsigned long iters = t_scaled(1000000), i;
	int64_t t0, t1;
	int n = 0, t;

	t0 = t_now_ns();
	for (i = 0; i < iters; i++) {
		shmcap_datum_writer_reset(W, buf, sizeof(buf));
		put_seed(W);
		n = shmcap_datum_finish(W);
		shmcap_datum_reader_reset(R, buf, (size_t)n);
		while ((t = shmcap_datum_next(R)) > 0)
			;
		CHECK_EQ(t, 0);
	}
	t1 = t_now_ns();
	printf("speed: encode+validate+decode of the seed datum (%d bytes): "
	       "%.0f per second\n",
	       n, (double)iters * 1e9 / (double)(t1 - t0 + 1));
}

int main(void)
{
	t_rng_seed_env();
	CHECK_OK(shmcap_datum_writer_new(NULL, 0, &W));
	CHECK_OK(shmcap_datum_reader_new(NULL, 0, &R));
	test_ints();
	test_floats();
	test_scalars();
	test_seed_and_format();
	test_big_map();
	test_writer_errors();
	test_reader_errors();
	test_deep();
	test_fork_region();
	test_writer_killed();
	test_channel();
	test_flipper();
	bench();
	shmcap_datum_writer_free(W);
	shmcap_datum_reader_free(R);
	return T_EXIT_PASS;
}
