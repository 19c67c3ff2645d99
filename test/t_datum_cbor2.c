/* SPDX-License-Identifier: MIT */
/*
 * Description: datum frames against another CBOR codec, Python's cbor2:
 * values encoded here are decoded by cbor2 and compared with the
 * expected Python values (and their bytes with cbor2's canonical
 * encoding), and values that cbor2 encodes, in preferred and in
 * non-preferred form (floats of every width), are decoded here. Runs
 * /usr/bin/python3; skips only if it or cbor2 is missing
 * (scripts/deps.sh installs python3-cbor2).
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>

#include "helpers.h"
#include "util.h"

#define PYTHON "/usr/bin/python3"

/*
 * Reads the frames in argv[1] (written below, in this order), checks
 * them, then writes its own frames to argv[2].
 */
static const char script[] =
	"import math, struct, sys\n"
	"import cbor2\n"
	"from cbor2 import CBORTag\n"
	"VEC = 38633\n"
	"def same(a, b):\n"
	"    if isinstance(a, float) or isinstance(b, float):\n"
	"        if type(a) is not float or type(b) is not float: return False\n"
	"        if math.isnan(a): return math.isnan(b)\n"
	"        return struct.pack('>d', a) == struct.pack('>d', b)\n"
	"    if isinstance(a, CBORTag):\n"
	"        return isinstance(b, CBORTag) and a.tag == b.tag and same(a.value, b.value)\n"
	"    if isinstance(a, (list, tuple)):\n"
	"        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))\n"
	"    if isinstance(a, dict):\n"
	"        return isinstance(b, dict) and len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())\n"
	"    return type(a) is type(b) and a == b\n"
	"deep = 0\n"
	"for _ in range(200): deep = [deep]\n"
	"expect = [\n"
	"    ([1, 2, CBORTag(VEC, [3, 4]), CBORTag(39, 'ciao'), 'hello', b'cba'], True),\n"
	"    (-9223372036854775808, True),\n"
	"    (9223372036854775807, True),\n"
	"    ([0, -1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, -24, -25, -256, -257], True),\n"
	"    ([0.0, -0.0, 1.5, 65504.0, 100000.0, 0.1, 1e300, math.inf, -math.inf, 5e-324, 5.960464477539063e-08],\n"
	/* RFC 8949 Appendix A: 65504.0 is f97bff (cbor2 gives fa477fe000) */
	"     '8bf90000f98000f93e00f97bfffa47c35000fb3fb999999999999a'\n"
	"     'fb7e37e43c8800759cf97c00f9fc00fb0000000000000001f90001'),\n"
	"    (math.nan, True),\n"
	"    ({1: 'a', 'k': [None, True, False], b'x': 2.5}, False),\n"
	"    ('h\\u00e9llo \\u20ac \\U0001F600', True),\n"
	"    (deep, True),\n"
	"    ([[], {}, CBORTag(VEC, []), '', b''], True),\n"
	"]\n"
	"data = open(sys.argv[1], 'rb').read()\n"
	"pos = 0\n"
	"for i, (want, exact) in enumerate(expect):\n"
	"    n = struct.unpack_from('<I', data, pos)[0]\n"
	"    item = data[pos + 4:pos + 4 + n]\n"
	"    pos += 4 + n\n"
	"    got = cbor2.loads(item)\n"
	"    if not same(want, got):\n"
	"        sys.exit('frame %d: cbor2 read %r, expected %r' % (i, got, want))\n"
	"    if isinstance(exact, str) and item.hex() != exact:\n"
	"        sys.exit('frame %d: %s, expected %s' % (i, item.hex(), exact))\n"
	"    if exact is True and item != cbor2.dumps(want, canonical=True):\n"
	"        sys.exit('frame %d: %s, cbor2 canonical %s' % (i, item.hex(), cbor2.dumps(want, canonical=True).hex()))\n"
	"if pos != len(data): sys.exit('trailing data')\n"
	"out = [\n"
	"    cbor2.dumps([1, 2, CBORTag(VEC, [3, 4]), CBORTag(39, 'ciao'), 'hello', b'cba']),\n"
	"    cbor2.dumps([1.5, 100000.0, 0.1, -0.0, math.inf, -math.inf, math.nan]),\n"
	"    cbor2.dumps([1.5, 100000.0, 0.1, -0.0, math.inf, -math.inf, math.nan], canonical=True),\n"
	"    cbor2.dumps([5.960464477539063e-08, 65504.0, 3.4028234663852886e+38, 1.401298464324817e-45], canonical=True),\n"
	"    cbor2.dumps([0, -1, 24, 256, 65536, 4294967296, 9223372036854775807, -9223372036854775808]),\n"
	"    cbor2.dumps({'a': 1, 'b': [None, True, False]}),\n"
	"    cbor2.dumps('h\\u00e9llo \\u20ac'),\n"
	"    cbor2.dumps(2**64 - 1),\n"
	"    cbor2.dumps(-2**64),\n"
	"    cbor2.dumps(2**64),\n"
	"    cbor2.dumps(cbor2.undefined),\n"
	"    cbor2.dumps(CBORTag(1, 0)),\n"
	"    cbor2.dumps(cbor2.CBORSimpleValue(100)),\n"
	"    cbor2.dumps(deep),\n"
	"]\n"
	"import random\n"
	"random.seed(int(sys.argv[4]))\n"
	"fl = [0.0, -0.0, 1e16, 1.5e16, 1e15, 1e-4, 1e-5, 123.456, 2.0**-1074]\n"
	"while len(fl) < 3000:\n"
	"    v = struct.unpack('<d', random.getrandbits(64).to_bytes(8, 'little'))[0]\n"
	"    if not math.isfinite(v): continue\n"
	"    fl.append(v)\n"
	"    f32 = struct.unpack('<f', random.getrandbits(32).to_bytes(4, 'little'))[0]\n"
	"    if math.isfinite(f32): fl.append(f32)\n"
	"    f16 = struct.unpack('<e', random.getrandbits(16).to_bytes(2, 'little'))[0]\n"
	"    if math.isfinite(f16): fl.append(f16)\n"
	"    fl.append(round(v, 3) if abs(v) < 1e9 else v)\n"
	"out.append(cbor2.dumps(fl, canonical=True))\n"
	"with open(sys.argv[3], 'w') as f:\n"
	"    f.write('(' + ' '.join(repr(v) for v in fl) + ')')\n"
	"with open(sys.argv[2], 'wb') as f:\n"
	"    for item in out:\n"
	"        f.write(struct.pack('<I', len(item)) + item)\n";

/* What the frames of the script's "out" list must give, in order. */
static const struct {
	int err;
	const char *text;
} from_py[] = {
	{ 0, "(1 2 #(3 4) ciao \"hello\" #vu8(99 98 97))" },
	{ 0, "(1.5 100000.0 0.1 -0.0 +inf.0 -inf.0 +nan.0)" },
	{ 0, "(1.5 100000.0 0.1 -0.0 +inf.0 -inf.0 +nan.0)" },
	{ 0, "(5.960464477539063e-08 65504.0 3.4028234663852886e+38 "
	     "1.401298464324817e-45)" },
	{ 0, "(0 -1 24 256 65536 4294967296 9223372036854775807 "
	     "-9223372036854775808)" },
	{ 0, "#hash((\"a\" . 1) (\"b\" . (#nil #t #f)))" },
	{ 0, "\"h\xc3\xa9llo \xe2\x82\xac\"" },
	{ -ERANGE, NULL },
	{ -ERANGE, NULL },
	{ -EOPNOTSUPP, NULL }, /* a bignum: tag 2 */
	{ -EOPNOTSUPP, NULL }, /* undefined */
	{ -EOPNOTSUPP, NULL }, /* tag 1 */
	{ -EOPNOTSUPP, NULL }, /* simple value 100 */
	{ 0, NULL },	       /* 200 levels */
	{ 0, NULL },	       /* random floats: checked against argv[3] */
};

static void put_frames(int fd)
{
	static unsigned char buf[4096];
	static const int64_t ints[] = {
		0,     -1,	     23,	   24,	255, 256,  65535,
		65536, 4294967295LL, 4294967296LL, -24, -25, -256, -257
	};
	const double floats[] = { 0.0,
				  -0.0,
				  1.5,
				  65504.0,
				  100000.0,
				  0.1,
				  1e300,
				  (double)INFINITY,
				  -(double)INFINITY,
				  5e-324,
				  5.960464477539063e-08 };
	shmcap_datum_writer *w;
	size_t i;
	int n, f;

	CHECK_OK(shmcap_datum_writer_new(buf, sizeof(buf), &w));
	for (f = 0; f < 10; f++) {
		CHECK_OK(shmcap_datum_writer_reset(w, buf, sizeof(buf)));
		switch (f) {
		case 0:
			CHECK_OK(shmcap_datum_begin_list(w, 6));
			CHECK_OK(shmcap_datum_put_int(w, 1));
			CHECK_OK(shmcap_datum_put_int(w, 2));
			CHECK_OK(shmcap_datum_begin_vector(w, 2));
			CHECK_OK(shmcap_datum_put_int(w, 3));
			CHECK_OK(shmcap_datum_put_int(w, 4));
			CHECK_OK(shmcap_datum_put_symbol(w, "ciao", 4));
			CHECK_OK(shmcap_datum_put_text(w, "hello", 5));
			CHECK_OK(shmcap_datum_put_bytes(w, "cba", 3));
			break;
		case 1:
			CHECK_OK(shmcap_datum_put_int(w, INT64_MIN));
			break;
		case 2:
			CHECK_OK(shmcap_datum_put_int(w, INT64_MAX));
			break;
		case 3:
			CHECK_OK(shmcap_datum_begin_list(w, 14));
			for (i = 0; i < 14; i++)
				CHECK_OK(shmcap_datum_put_int(w, ints[i]));
			break;
		case 4:
			CHECK_OK(shmcap_datum_begin_list(w, 11));
			for (i = 0; i < 11; i++)
				CHECK_OK(shmcap_datum_put_float(w, floats[i]));
			break;
		case 5:
			CHECK_OK(shmcap_datum_put_float(w, (double)NAN));
			break;
		case 6:
			CHECK_OK(shmcap_datum_begin_map(w, 3));
			CHECK_OK(shmcap_datum_put_int(w, 1));
			CHECK_OK(shmcap_datum_put_text(w, "a", 1));
			CHECK_OK(shmcap_datum_put_text(w, "k", 1));
			CHECK_OK(shmcap_datum_begin_list(w, 3));
			CHECK_OK(shmcap_datum_put_nil(w));
			CHECK_OK(shmcap_datum_put_bool(w, 1));
			CHECK_OK(shmcap_datum_put_bool(w, 0));
			CHECK_OK(shmcap_datum_put_bytes(w, "x", 1));
			CHECK_OK(shmcap_datum_put_float(w, 2.5));
			break;
		case 7:
			CHECK_OK(shmcap_datum_put_text(
				w, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80",
				15));
			break;
		case 8:
			for (i = 0; i < 200; i++)
				CHECK_OK(shmcap_datum_begin_list(w, 1));
			CHECK_OK(shmcap_datum_put_int(w, 0));
			break;
		case 9:
			CHECK_OK(shmcap_datum_begin_list(w, 5));
			CHECK_OK(shmcap_datum_begin_list(w, 0));
			CHECK_OK(shmcap_datum_begin_map(w, 0));
			CHECK_OK(shmcap_datum_begin_vector(w, 0));
			CHECK_OK(shmcap_datum_put_text(w, "", 0));
			CHECK_OK(shmcap_datum_put_bytes(w, "", 0));
			break;
		}
		n = shmcap_datum_finish(w);
		CHECK(n > 0);
		CHECK_EQ(write(fd, buf, (size_t)n), n);
	}
	shmcap_datum_writer_free(w);
}

/* Read a whole file into buf (size bytes); its length. */
static size_t slurp(const char *path, void *buf, size_t size)
{
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	got = read(fd, buf, size);
	CHECK(got > 0 && (size_t)got < size);
	close(fd);
	return (size_t)got;
}

static void check_frames(const char *path, const char *floats_path)
{
	static unsigned char data[1 << 18];
	static char out[1 << 18], floats[1 << 18];
	shmcap_datum_reader *r;
	size_t pos = 0, len, i;
	uint32_t n;
	int ret;

	len = slurp(path, data, sizeof(data));
	floats[slurp(floats_path, floats, sizeof(floats) - 1)] = '\0';
	CHECK_OK(shmcap_datum_reader_new(NULL, 0, &r));
	for (i = 0; i < sizeof(from_py) / sizeof(from_py[0]); i++) {
		CHECK(len - pos >= 4);
		memcpy(&n, data + pos, 4);
		CHECK(n <= len - pos - 4);
		ret = shmcap_datum_reader_reset(r, data + pos, 4 + (size_t)n);
		if (ret != from_py[i].err)
			FAIL("cbor2 frame %zu: %d, not %d", i, ret,
			     from_py[i].err);
		if (ret == 0) {
			ret = shmcap_datum_format(data + pos, 4 + (size_t)n,
						  out, sizeof(out));
			CHECK(ret > 0 && (size_t)ret < sizeof(out));
			if (from_py[i].text)
				CHECK_STR_EQ(out, from_py[i].text);
			if (i == sizeof(from_py) / sizeof(from_py[0]) - 1 &&
			    strcmp(out, floats) != 0) {
				size_t k = 0;

				while (out[k] == floats[k])
					k++;
				FAIL("floats differ from Python's repr at %zu: "
				     "%.40s, Python %.40s",
				     k, out + k, floats + k);
			}
		}
		pos += 4 + (size_t)n;
	}
	CHECK_EQ(pos, len);
	shmcap_datum_reader_free(r);
}

static char dir[] = "/tmp/shmcap-cbor2.XXXXXX";
static char c2py[64], py2c[64], fltx[64];

/* The temporary files go whatever the verdict (CHECK exits). */
static void cleanup(void)
{
	unlink(c2py);
	unlink(py2c);
	unlink(fltx);
	rmdir(dir);
}

int main(void)
{
	char seed[32];
	pid_t pid;
	int fd, st;

	if (access(PYTHON, X_OK) != 0)
		SKIP("%s is missing", PYTHON);
	st = system(PYTHON " -c 'import cbor2' 2>/dev/null");
	if (st != 0)
		SKIP("python3-cbor2 is missing (scripts/deps.sh installs it)");

	CHECK(mkdtemp(dir));
	snprintf(c2py, sizeof(c2py), "%s/c2py", dir);
	snprintf(py2c, sizeof(py2c), "%s/py2c", dir);
	snprintf(fltx, sizeof(fltx), "%s/floats", dir);
	atexit(cleanup);
	snprintf(seed, sizeof(seed), "%llu",
		 (unsigned long long)(t_rng_seed_env() % 1000000007u));
	fd = open(c2py, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	put_frames(fd);
	close(fd);

	pid = t_fork_child(60);
	if (pid == 0) {
		execl(PYTHON, PYTHON, "-c", script, c2py, py2c, fltx, seed,
		      (char *)NULL);
		_exit(127);
	}
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("the cbor2 side failed: status 0x%x", st);
	check_frames(py2c, fltx);
	return T_EXIT_PASS;
}
