/* SPDX-License-Identifier: MIT */
/*
 * fuzz_datum: libFuzzer target for the datum reader.
 *
 * The input, with a length prefix of its own size put in front, is read as
 * a datum frame (so the fuzzer reaches the CBOR at once), and also as it
 * is, prefix included (so the prefix's checks are fuzzed too).
 *
 * Checked: no input crashes, reads outside the frame or leaks (ASan,
 * UBSan); errors are only those the contract names; and a frame that
 * validates is re-encoded with the writer, value by value, and the copy
 * must validate and print exactly as the original (the writer's preferred
 * encoding may be shorter, never different in meaning).
 *
 * Build: make fuzz, or cmake -DSHMCAP_FUZZ=ON
 * -DSHMCAP_SANITIZE=address,undefined
 * with CC=clang; seeds in fuzz/corpus/datum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmcap.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int allowed(int e)
{
	return e == -EBADMSG || e == -ERANGE || e == -EOPNOTSUPP || e == -ELOOP;
}

/* Re-encode the frame r was reset to into w; 0 or the first error. */
static int copy(shmcap_datum_reader *r, shmcap_datum_writer *w)
{
	const char *s;
	const void *p;
	size_t len;
	int64_t i;
	double f;
	int t, ret = 0;

	while ((t = shmcap_datum_next(r)) > 0) {
		switch (t) {
		case SHMCAP_DATUM_NIL:
			ret = shmcap_datum_put_nil(w);
			break;
		case SHMCAP_DATUM_BOOL:
			ret = shmcap_datum_put_bool(w,
						    shmcap_datum_get_bool(r));
			break;
		case SHMCAP_DATUM_INT:
			if (shmcap_datum_get_int(r, &i))
				abort();
			ret = shmcap_datum_put_int(w, i);
			break;
		case SHMCAP_DATUM_FLOAT:
			if (shmcap_datum_get_float(r, &f))
				abort();
			ret = shmcap_datum_put_float(w, f);
			break;
		case SHMCAP_DATUM_TEXT:
		case SHMCAP_DATUM_SYMBOL:
			if (shmcap_datum_get_text(r, &s, &len))
				abort();
			ret = t == SHMCAP_DATUM_TEXT ?
				      shmcap_datum_put_text(w, s, len) :
				      shmcap_datum_put_symbol(w, s, len);
			break;
		case SHMCAP_DATUM_BYTES:
			if (shmcap_datum_get_bytes(r, &p, &len))
				abort();
			ret = shmcap_datum_put_bytes(w, p, len);
			break;
		case SHMCAP_DATUM_LIST:
			ret = shmcap_datum_begin_list(
				w, (size_t)shmcap_datum_get_count(r));
			break;
		case SHMCAP_DATUM_VECTOR:
			ret = shmcap_datum_begin_vector(
				w, (size_t)shmcap_datum_get_count(r));
			break;
		case SHMCAP_DATUM_MAP:
			ret = shmcap_datum_begin_map(
				w, (size_t)shmcap_datum_get_count(r));
			break;
		default:
			abort();
		}
		if (ret)
			return ret;
	}
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text1[4096], text2[4096];
	shmcap_datum_reader *r;
	shmcap_datum_writer *w;
	uint8_t *frame, *out;
	size_t osize;
	int ret, n, l1, l2;

	if (size > (1u << 20))
		return 0;
	/* As it is. */
	ret = shmcap_datum_format(data, size, text1, sizeof(text1));
	if (ret < 0 && !allowed(ret))
		abort();

	frame = malloc(size + 4);
	if (!frame)
		return 0;
	frame[0] = (uint8_t)size;
	frame[1] = (uint8_t)(size >> 8);
	frame[2] = (uint8_t)(size >> 16);
	frame[3] = (uint8_t)(size >> 24);
	memcpy(frame + 4, data, size);
	ret = shmcap_datum_reader_new(frame, size + 4, &r);
	if (ret < 0) {
		if (!allowed(ret))
			abort();
		free(frame);
		return 0;
	}
	/* The preferred encoding is never longer than any other. */
	osize = size + 4;
	out = malloc(osize);
	if (!out || shmcap_datum_writer_new(out, osize, &w))
		abort();
	ret = copy(r, w);
	if (ret != 0)
		abort();
	n = shmcap_datum_finish(w);
	if (n < 0 || (size_t)n > osize)
		abort();
	l1 = shmcap_datum_format(frame, size + 4, text1, sizeof(text1));
	l2 = shmcap_datum_format(out, (size_t)n, text2, sizeof(text2));
	if (l1 < 0 || l1 != l2 || strcmp(text1, text2) != 0)
		abort();

	/* Skip every container at the top level's first level. */
	if (shmcap_datum_reader_reset(r, frame, size + 4))
		abort();
	while ((ret = shmcap_datum_next(r)) > 0)
		if (shmcap_datum_depth(r) == 1 &&
		    shmcap_datum_get_count(r) >= 0 && shmcap_datum_skip(r))
			abort();
	if (ret != 0)
		abort();

	shmcap_datum_writer_free(w);
	shmcap_datum_reader_free(r);
	free(out);
	free(frame);
	return 0;
}
