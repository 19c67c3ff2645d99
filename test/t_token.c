/* Description: token issuers and resolvers, in-process, forked and exec'd */
/* SPDX-License-Identifier: MIT */
/*
 * Tokens are resolved in this process (against an issuer thread), by
 * forked children (against an issuer thread or the dispatch model, with
 * the parent calling shmcap_issuer_dispatch()) and by shmcap-test-peer,
 * which gets the token through argv. Each part counts this process's
 * descriptors before and after: an issuer lives in this process, so a
 * descriptor it fails to close shows up here too.
 *
 * Usage: t_token [CYCLES] - CYCLES issue/resolve/revoke rounds for the
 * leak check (default 500).
 *
 * Nothing waits for time to pass: the only timeouts are the ones whose
 * expiry is the thing tested (-ETIMEDOUT), and those check the error code,
 * never the time taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MSEC ((int64_t)1000000)
/* Long enough never to expire in a passing run; the watchdog is shorter. */
#define RESOLVE_TIMEOUT (60 * SEC)
#define CHILD_TIMEOUT 60
#define TOK SHMCAP_TOKEN_MAX

/* The issuer's wire format from src/token.c, for hand-built requests. */
#define REQ_MAGIC 0x51524353u
#define REP_MAGIC 0x50524353u

struct req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t id;
	uint8_t key[16];
	uint64_t nonce;
};

struct rep {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	int32_t status;
	uint32_t type;
	uint32_t rights;
	uint32_t reserved2;
	uint64_t nonce;
};

_Static_assert(sizeof(struct req) == 40, "request as documented");
_Static_assert(sizeof(struct rep) == 32, "reply as documented");

static long page_size;
static const char *peer_path;

/* ------------------------------------------------------------------------
 * Helpers
 */

static ino_t inode_of(const shmcap_cap *cap)
{
	struct stat st;

	CHECK_EQ(fstat(shmcap_cap_fd(cap), &st), 0);
	return st.st_ino;
}

/* Resolve tok, which must succeed, and check rights and content. */
static void resolve_ok(const char *tok, unsigned int rights, const char *text)
{
	shmcap_cap *cap = NULL;
	int ret = shmcap_token_resolve(tok, RESOLVE_TIMEOUT, &cap);

	if (ret != 0)
		FAIL("resolving %s: %d (%s)", tok, ret, shmcap_err_name(ret));
	CHECK_EQ(shmcap_cap_rights(cap), rights);
	CHECK_EQ(t_accmode(cap),
		 rights & SHMCAP_RIGHT_WRITE ? O_RDWR : O_RDONLY);
	t_check_text_region(cap, text);
	shmcap_cap_close(cap);
}

/*
 * Resolving tok must fail with err and leave no descriptor behind. The
 * count may drop, never grow: an issuer thread of this process that has
 * just handed out a ONCE token's capability closes its own copy after the
 * reply is out, possibly after the resolver has returned. The next answer
 * from that thread comes only after that close, so callers check exact
 * counts after a resolution.
 */
static void resolve_err(const char *tok, int64_t timeout, int err)
{
	shmcap_cap *cap = NULL;
	int fds = t_count_fds(), ret;

	ret = shmcap_token_resolve(tok, timeout, &cap);
	if (ret != err)
		FAIL("resolving \"%s\" returned %d (%s), expected %d (%s)",
		     tok ? tok : "(null)", ret, shmcap_err_name(ret), err,
		     shmcap_err_name(err));
	CHECK_NULL(cap);
	CHECK(t_count_fds() <= fds);
}

static int ishex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int isdec(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The form shmcap.h gives: "shmcap:1:UID:INSTANCE:ID:KEY", UID and ID
 * decimal, INSTANCE and KEY 32 (lowercase) hex digits, length len.
 */
static void check_token_format(const char *tok, int len)
{
	char uid[32];
	const char *p = tok;
	int i;

	if (len <= 0 || (size_t)len != strlen(tok) || len >= TOK)
		FAIL("token \"%s\": length %d", tok, len);
	snprintf(uid, sizeof(uid), "shmcap:1:%lu:", (unsigned long)geteuid());
	if (strncmp(p, uid, strlen(uid)) != 0)
		FAIL("token \"%s\" does not start with \"%s\"", tok, uid);
	p += strlen(uid);
	for (i = 0; i < 32; i++)
		if (!ishex(*p++))
			FAIL("token \"%s\": INSTANCE not 32 hex digits", tok);
	if (*p++ != ':' || !isdec(*p) || *p == '0')
		FAIL("token \"%s\": bad ID", tok);
	while (isdec(*p))
		p++;
	if (*p++ != ':')
		FAIL("token \"%s\": bad ID", tok);
	for (i = 0; i < 32; i++)
		if (!ishex(*p++))
			FAIL("token \"%s\": KEY not 32 hex digits", tok);
	if (*p != '\0')
		FAIL("token \"%s\": extra characters", tok);
}

/* Fields of a token: 0 "shmcap", 1 version, 2 uid, 3 instance, 4 id, 5 key */
enum { F_MAGIC, F_VERSION, F_UID, F_INSTANCE, F_ID, F_KEY, F_COUNT };

struct parts {
	char f[F_COUNT][48];
};

static void token_split(const char *tok, struct parts *pt)
{
	const char *p = tok, *colon;
	int i;

	for (i = 0; i < F_COUNT; i++) {
		size_t n;

		colon = strchr(p, ':');
		n = colon && i < F_COUNT - 1 ? (size_t)(colon - p) : strlen(p);
		CHECK(n < sizeof(pt->f[i]));
		memcpy(pt->f[i], p, n);
		pt->f[i][n] = '\0';
		p += n + (i < F_COUNT - 1 ? 1 : 0);
	}
}

/* tok with field i replaced by value, into out. */
static const char *token_with(const char *tok, int i, const char *value,
			      char *out, size_t size)
{
	struct parts pt;
	int n;

	token_split(tok, &pt);
	snprintf(pt.f[i], sizeof(pt.f[i]), "%s", value);
	n = snprintf(out, size, "%s:%s:%s:%s:%s:%s", pt.f[0], pt.f[1], pt.f[2],
		     pt.f[3], pt.f[4], pt.f[5]);
	CHECK(n >= 0 && (size_t)n < size);
	return out;
}

/* tok with one hex digit of field i (INSTANCE or KEY) at pos changed. */
static const char *token_flip(const char *tok, int i, int pos, char *out,
			      size_t size)
{
	struct parts pt;
	char *c;

	token_split(tok, &pt);
	c = &pt.f[i][pos];
	*c = *c == '0' ? '1' : '0';
	return token_with(tok, i, pt.f[i], out, size);
}

/*
 * Run "shmcap-test-peer resolve TOKEN [EXPECT]" and collect what it
 * prints into out. Returns its wait status.
 */
static int run_peer_resolve(const char *tok, const char *expect, char *out,
			    size_t size)
{
	size_t got = 0;
	int p[2], st;
	ssize_t r;
	pid_t pid;

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(T_EXIT_FAIL);
		execl(peer_path, peer_path, "resolve", tok, expect,
		      (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", peer_path, strerror(errno));
		_exit(T_EXIT_FAIL);
	}
	close(p[1]);
	for (;;) {
		CHECK(got < size - 1);
		r = read(p[0], out + got, size - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r >= 0);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	close(p[0]);
	st = t_wait_child(pid, CHILD_TIMEOUT);
	CHECK(st != -1);
	return st;
}

/* ------------------------------------------------------------------------
 * Issue and resolve with an issuer thread
 */

static void test_thread_basic(void)
{
	char tok[TOK], tok2[TOK], tok3[TOK];
	int fds = t_count_fds(), n;
	shmcap_issuer *iss, *iss2;
	shmcap_cap *cap, *got;
	struct parts a, b, c;
	shmcap_map *m;
	ino_t ino;
	int i;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	CHECK_OK(shmcap_issuer_fd(iss));
	cap = t_text_region("token content");
	ino = inode_of(cap);
	n = shmcap_token_issue(iss, cap, 0, tok, sizeof(tok));
	CHECK_OK(n);
	check_token_format(tok, n);
	/* The issuer keeps its own copy: the caller may close cap. */
	shmcap_cap_close(cap);

	/* A token may be resolved many times, each a new capability. */
	for (i = 0; i < 3; i++) {
		CHECK_OK(shmcap_token_resolve(tok, RESOLVE_TIMEOUT, &got));
		CHECK_EQ(shmcap_cap_type(got), SHMCAP_TYPE_REGION);
		CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHTS_REGION);
		CHECK_EQ(inode_of(got), ino);
		t_check_text_region(got, i ? "written through a resolved cap" :
					     "token content");
		CHECK_OK(shmcap_region_map(got, 0, 0, NULL, SHMCAP_MAP_WRITE,
					   &m));
		strcpy(shmcap_map_addr(m), "written through a resolved cap");
		shmcap_map_unmap(m);
		shmcap_cap_close(got);
	}
	/*
	 * Timeouts whose fraction of a second, less the microseconds spent
	 * before the send, rounds up to a whole second: once made the send
	 * timeout's tv_usec 1000000, which setsockopt refused (EDOM).
	 */
	for (i = 0; i < 40; i++) {
		CHECK_OK(shmcap_token_resolve(
			tok, 2000000000 + (int64_t)i * 500, &got));
		shmcap_cap_close(got);
	}
	/* SHMCAP_FOREVER works too. */
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "written through a resolved cap");
	CHECK_OK(shmcap_token_resolve(tok, SHMCAP_FOREVER, &got));
	shmcap_cap_close(got);

	/* Same issuer: same instance, new id and key; new issuer: new name. */
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss2));
	cap = t_text_region("second");
	check_token_format(tok2,
			   shmcap_token_issue(iss, cap, 0, tok2, sizeof(tok2)));
	check_token_format(tok3, shmcap_token_issue(iss2, cap, 0, tok3,
						    sizeof(tok3)));
	shmcap_cap_close(cap);
	token_split(tok, &a);
	token_split(tok2, &b);
	token_split(tok3, &c);
	CHECK_STR_EQ(a.f[F_INSTANCE], b.f[F_INSTANCE]);
	CHECK(strcmp(a.f[F_ID], b.f[F_ID]) != 0);
	CHECK(strcmp(a.f[F_KEY], b.f[F_KEY]) != 0);
	CHECK(strcmp(a.f[F_INSTANCE], c.f[F_INSTANCE]) != 0);
	resolve_ok(tok2, SHMCAP_RIGHTS_REGION, "second");
	resolve_ok(tok3, SHMCAP_RIGHTS_REGION, "second");

	shmcap_issuer_destroy(iss2);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: issue and resolve with an issuer thread; token format "
	       "\"%s\"\n",
	       tok);
}

static void test_read_only(void)
{
	int fds = t_count_fds();
	shmcap_issuer *iss;
	shmcap_cap *rw, *ro, *got;
	shmcap_map *m;
	char tok[TOK];

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	rw = t_text_region("read only by token");
	CHECK_OK(shmcap_cap_derive(rw, SHMCAP_RIGHT_READ, &ro));
	check_token_format(tok,
			   shmcap_token_issue(iss, ro, 0, tok, sizeof(tok)));
	shmcap_cap_close(ro);
	shmcap_cap_close(rw);
	CHECK_OK(shmcap_token_resolve(tok, RESOLVE_TIMEOUT, &got));
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHT_READ);
	CHECK_EQ(t_accmode(got), O_RDONLY);
	CHECK_ERR(shmcap_region_map(got, 0, 0, NULL, SHMCAP_MAP_WRITE, &m),
		  -EACCES);
	t_check_text_region(got, "read only by token");
	shmcap_cap_close(got);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: a READ capability's token resolves to READ only\n");
}

/* ------------------------------------------------------------------------
 * Revocation, forgery, malformed tokens
 */

static void test_revoke(void)
{
	char t1[TOK], t2[TOK], bad[TOK];
	shmcap_issuer *iss, *other;
	int fds = t_count_fds(), fds1;
	shmcap_cap *cap;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &other));
	cap = t_text_region("revocable");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, t1, sizeof(t1)));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, t2, sizeof(t2)));
	shmcap_cap_close(cap);
	resolve_ok(t1, SHMCAP_RIGHTS_REGION, "revocable");

	/* Not issued by this issuer, or not with this key: -ENOENT. */
	CHECK_ERR(shmcap_token_revoke(other, t1), -ENOENT);
	CHECK_ERR(shmcap_token_revoke(iss, token_flip(t1, F_KEY, 31, bad,
						      sizeof(bad))),
		  -ENOENT);
	CHECK_ERR(shmcap_token_revoke(iss, token_with(t1, F_ID, "987654321",
						      bad, sizeof(bad))),
		  -ENOENT);
	resolve_ok(t1, SHMCAP_RIGHTS_REGION, "revocable");

	/* Revoking frees the issuer's copy of the capability. */
	fds1 = t_count_fds();
	CHECK_EQ(shmcap_token_revoke(iss, t1), 0);
	CHECK_EQ(t_count_fds(), fds1 - 1);
	resolve_err(t1, RESOLVE_TIMEOUT, -EKEYREVOKED);
	CHECK_ERR(shmcap_token_revoke(iss, t1), -EKEYREVOKED);
	resolve_err(t1, RESOLVE_TIMEOUT, -EKEYREVOKED);
	/* The other token of the same capability is untouched. */
	resolve_ok(t2, SHMCAP_RIGHTS_REGION, "revocable");

	CHECK_ERR(shmcap_token_revoke(NULL, t2), -EINVAL);
	CHECK_ERR(shmcap_token_revoke(iss, NULL), -EINVAL);
	CHECK_ERR(shmcap_token_revoke(iss, ""), -EINVAL);
	CHECK_ERR(shmcap_token_revoke(iss, "shmcap:1:0:zz"), -EINVAL);
	resolve_ok(t2, SHMCAP_RIGHTS_REGION, "revocable");

	shmcap_issuer_destroy(other);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: revoke: EKEYREVOKED after, ENOENT for another issuer's "
	       "token\n");
}

static void test_forged(void)
{
	char tok[TOK], bad[TOK], uid[32];
	int fds = t_count_fds();
	shmcap_issuer *iss;
	shmcap_cap *cap;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("forgery target");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	shmcap_cap_close(cap);

	/* One hex digit of the key changed: -EACCES, token still good. */
	resolve_err(token_flip(tok, F_KEY, 0, bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -EACCES);
	resolve_err(token_flip(tok, F_KEY, 31, bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -EACCES);
	resolve_err(token_flip(tok, F_KEY, 17, bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -EACCES);
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "forgery target");

	/* Ids never issued: -ENOENT. */
	resolve_err(token_with(tok, F_ID, "987654321", bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -ENOENT);
	resolve_err(token_with(tok, F_ID, "18446744073709551615", bad,
			       sizeof(bad)),
		    RESOLVE_TIMEOUT, -ENOENT);

	/* Another instance: no issuer of that name. */
	resolve_err(token_flip(tok, F_INSTANCE, 5, bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -ESRCH);

	/*
	 * Another uid in the token: the issuer (not of that uid) answers,
	 * and the resolver must discard the answer, descriptor included.
	 */
	snprintf(uid, sizeof(uid), "%lu", (unsigned long)geteuid() + 1);
	resolve_err(token_with(tok, F_UID, uid, bad, sizeof(bad)), 300 * MSEC,
		    -ETIMEDOUT);

	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "forgery target");
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: forged key EACCES, unknown id ENOENT, unknown instance "
	       "ESRCH, wrong uid discarded\n");
}

static void test_malformed(void)
{
	char tok[TOK], b[40][256], *upper;
	int fds = t_count_fds(), n = 0, i;
	const char *bad[64];
	shmcap_issuer *iss;
	shmcap_cap *cap, *got = NULL;
	struct parts pt;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("malformed");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	shmcap_cap_close(cap);
	token_split(tok, &pt);

	bad[n++] = "";
	bad[n++] = "shmcap";
	bad[n++] = "shmcap:1:";
	bad[n++] = token_with(tok, F_VERSION, "2", b[0], sizeof(b[0]));
	bad[n++] = token_with(tok, F_VERSION, "01", b[1], sizeof(b[1]));
	bad[n++] = token_with(tok, F_MAGIC, "SHMCAP", b[2], sizeof(b[2]));
	bad[n++] = token_with(tok, F_MAGIC, "xshmcap", b[3], sizeof(b[3]));
	/* Uppercase hex in the instance and in the key. */
	snprintf(b[4], sizeof(b[4]), "%s", pt.f[F_INSTANCE]);
	for (upper = b[4]; *upper; upper++)
		if (*upper >= 'a' && *upper <= 'f')
			break;
	if (*upper)
		*upper = (char)(*upper - 'a' + 'A');
	else
		b[4][0] = 'A'; /* no letter at all: make one */
	bad[n++] = token_with(tok, F_INSTANCE, b[4], b[5], sizeof(b[5]));
	snprintf(b[6], sizeof(b[6]), "%s", pt.f[F_KEY]);
	for (upper = b[6]; *upper; upper++)
		if (*upper >= 'a' && *upper <= 'f')
			break;
	if (*upper)
		*upper = (char)(*upper - 'a' + 'A');
	else
		b[6][0] = 'F';
	bad[n++] = token_with(tok, F_KEY, b[6], b[7], sizeof(b[7]));
	/* Short and long key and instance, a non-hex digit. */
	snprintf(b[8], sizeof(b[8]), "%.31s", pt.f[F_KEY]);
	bad[n++] = token_with(tok, F_KEY, b[8], b[9], sizeof(b[9]));
	snprintf(b[10], sizeof(b[10]), "%s0", pt.f[F_KEY]);
	bad[n++] = token_with(tok, F_KEY, b[10], b[11], sizeof(b[11]));
	snprintf(b[12], sizeof(b[12]), "%.31s", pt.f[F_INSTANCE]);
	bad[n++] = token_with(tok, F_INSTANCE, b[12], b[13], sizeof(b[13]));
	snprintf(b[14], sizeof(b[14]), "%.31sg", pt.f[F_KEY]);
	bad[n++] = token_with(tok, F_KEY, b[14], b[15], sizeof(b[15]));
	bad[n++] = token_with(tok, F_KEY, "", b[16], sizeof(b[16]));
	/* Extra characters around it. */
	snprintf(b[17], sizeof(b[17]), "%s:", tok);
	bad[n++] = b[17];
	snprintf(b[18], sizeof(b[18]), "%sx", tok);
	bad[n++] = b[18];
	snprintf(b[19], sizeof(b[19]), "%s\n", tok);
	bad[n++] = b[19];
	snprintf(b[20], sizeof(b[20]), " %s", tok);
	bad[n++] = b[20];
	/* 200 characters; and exactly SHMCAP_TOKEN_MAX. */
	snprintf(b[21], sizeof(b[21]), "%s", tok);
	memset(b[21] + strlen(tok), '0', 200 - strlen(tok));
	b[21][200] = '\0';
	bad[n++] = b[21];
	snprintf(b[22], sizeof(b[22]), "%.*s", TOK, b[21]);
	bad[n++] = b[22];
	/* Decimal fields: leading zeros, zero id, signs, overflow, empty. */
	snprintf(b[23], sizeof(b[23]), "0%s", pt.f[F_ID]);
	bad[n++] = token_with(tok, F_ID, b[23], b[24], sizeof(b[24]));
	bad[n++] = token_with(tok, F_ID, "0", b[25], sizeof(b[25]));
	bad[n++] = token_with(tok, F_ID, "00", b[26], sizeof(b[26]));
	bad[n++] = token_with(tok, F_ID, "+1", b[27], sizeof(b[27]));
	bad[n++] = token_with(tok, F_ID, "18446744073709551616", b[28],
			      sizeof(b[28]));
	bad[n++] = token_with(tok, F_ID, "", b[29], sizeof(b[29]));
	snprintf(b[30], sizeof(b[30]), "0%s", pt.f[F_UID]);
	bad[n++] = token_with(tok, F_UID, b[30], b[31], sizeof(b[31]));
	bad[n++] = token_with(tok, F_UID, "-1", b[32], sizeof(b[32]));
	bad[n++] = token_with(tok, F_UID, "4294967296", b[33], sizeof(b[33]));
	bad[n++] = token_with(tok, F_UID, "", b[34], sizeof(b[34]));
	/* A field missing: no key at all. */
	snprintf(b[35], sizeof(b[35]), "%s:%s:%s:%s:%s", pt.f[0], pt.f[1],
		 pt.f[2], pt.f[3], pt.f[4]);
	bad[n++] = b[35];
	/* Another separator. */
	snprintf(b[36], sizeof(b[36]), "%s", tok);
	*strrchr(b[36], ':') = ';';
	bad[n++] = b[36];
	CHECK((size_t)n <= sizeof(bad) / sizeof(bad[0]));

	for (i = 0; i < n; i++) {
		resolve_err(bad[i], RESOLVE_TIMEOUT, -EINVAL);
		if (shmcap_token_revoke(iss, bad[i]) != -EINVAL)
			FAIL("revoking malformed \"%s\" did not give EINVAL",
			     bad[i]);
	}
	resolve_err(NULL, RESOLVE_TIMEOUT, -EINVAL);
	CHECK_ERR(shmcap_token_resolve(tok, RESOLVE_TIMEOUT, NULL), -EINVAL);
	/* None of that touched the good token. */
	CHECK_OK(shmcap_token_resolve(tok, RESOLVE_TIMEOUT, &got));
	shmcap_cap_close(got);

	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: %d malformed tokens refused with EINVAL\n", n + 1);
}

static void test_once(void)
{
	char once[TOK], both[TOK], bad[TOK];
	int fds = t_count_fds(), issued;
	shmcap_issuer *iss;
	shmcap_cap *cap;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("once only");
	CHECK_OK(shmcap_token_issue(iss, cap, SHMCAP_TOKEN_ONCE, once,
				    sizeof(once)));
	CHECK_OK(shmcap_token_issue(iss, cap,
				    SHMCAP_TOKEN_ONCE | SHMCAP_TOKEN_ANY_UID,
				    both, sizeof(both)));
	shmcap_cap_close(cap);
	issued = t_count_fds();

	/* A refused resolution does not spend it. */
	resolve_err(token_flip(once, F_KEY, 3, bad, sizeof(bad)),
		    RESOLVE_TIMEOUT, -EACCES);
	resolve_ok(once, SHMCAP_RIGHTS_REGION, "once only");
	resolve_err(once, RESOLVE_TIMEOUT, -EKEYREVOKED);
	CHECK_ERR(shmcap_token_revoke(iss, once), -EKEYREVOKED);

	resolve_ok(both, SHMCAP_RIGHTS_REGION, "once only");
	resolve_err(both, RESOLVE_TIMEOUT, -EKEYREVOKED);
	/* Answered after both copies went: they are closed, nothing else. */
	CHECK_EQ(t_count_fds(), issued - 2);

	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: SHMCAP_TOKEN_ONCE resolves once, then EKEYREVOKED\n");
}

/* ------------------------------------------------------------------------
 * Issuers that are gone, or never answer
 */

static void test_destroy(void)
{
	char tok[TOK], toks[50][TOK];
	int fds = t_count_fds(), i;
	shmcap_issuer *iss;
	shmcap_cap *cap;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("destroyed");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	for (i = 0; i < 50; i++)
		CHECK_OK(shmcap_token_issue(iss, cap,
					    i % 2 ? SHMCAP_TOKEN_ONCE : 0,
					    toks[i], sizeof(toks[i])));
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "destroyed");
	shmcap_cap_close(cap);
	/* Destroyed with 51 live tokens: every copy is closed. */
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	resolve_err(tok, RESOLVE_TIMEOUT, -ESRCH);
	resolve_err(toks[7], RESOLVE_TIMEOUT, -ESRCH);
	shmcap_issuer_destroy(NULL);

	/* An issuer without a thread, destroyed with live tokens. */
	CHECK_OK(shmcap_issuer_create(0, &iss));
	cap = t_text_region("destroyed");
	for (i = 0; i < 50; i++)
		CHECK_OK(shmcap_token_issue(iss, cap, 0, toks[i],
					    sizeof(toks[i])));
	shmcap_cap_close(cap);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	resolve_err(toks[0], RESOLVE_TIMEOUT, -ESRCH);
	printf("ok: destroying an issuer closes everything; its tokens give "
	       "ESRCH\n");
}

/* Read one line (the token) from fd into buf, without the newline. */
static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	for (;;) {
		CHECK(n < size - 1);
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK_EQ(r, 1);
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
}

/*
 * Fork a child that issues a token for a region holding text from an
 * issuer thread of its own, then waits to be killed; the token, read from
 * the child through a pipe, goes to tok. Returns the child's pid.
 */
static pid_t spawn_issuer(const char *text, char *tok, size_t size)
{
	int p[2];
	pid_t pid;

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		shmcap_issuer *iss;
		shmcap_cap *cap;
		char t[TOK + 1];
		int n;

		close(p[0]);
		CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
		cap = t_text_region(text);
		n = shmcap_token_issue(iss, cap, 0, t, TOK);
		CHECK_OK(n);
		t[n] = '\n';
		CHECK_EQ(write(p[1], t, (size_t)n + 1), n + 1);
		for (;;)
			pause();
	}
	close(p[1]);
	read_line(p[0], tok, size);
	close(p[0]);
	return pid;
}

/*
 * The issuer is another process, killed with SIGKILL: its tokens give
 * -ESRCH, here and in an exec'd peer.
 */
static void test_stale(void)
{
	int fds = t_count_fds(), st;
	char tok[TOK + 1], out[512];
	pid_t pid;

	pid = spawn_issuer("from a doomed issuer", tok, sizeof(tok));
	check_token_format(tok, (int)strlen(tok));
	/* While the issuer lives, the token works. */
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "from a doomed issuer");

	CHECK_EQ(kill(pid, SIGKILL), 0);
	t_check_killed(pid, CHILD_TIMEOUT);
	resolve_err(tok, RESOLVE_TIMEOUT, -ESRCH);
	resolve_err(tok, 0, -ESRCH);
	if (peer_path) {
		st = run_peer_resolve(tok, "ESRCH", out, sizeof(out));
		CHECK_CHILD_OK(st);
		CHECK(strstr(out, "result ESRCH\n") != NULL);
	}
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: the issuer process killed with SIGKILL: ESRCH\n");
}

/* Without thread or dispatch nobody answers: -ETIMEDOUT, no leak. */
static void test_timeout(void)
{
	int fds = t_count_fds(), dfd, ret, p[2];
	char tok[TOK], once[TOK];
	struct pollfd pf;
	shmcap_issuer *iss;
	shmcap_cap *cap;
	pid_t pid;

	CHECK_OK(shmcap_issuer_create(0, &iss));
	cap = t_text_region("nobody answers");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	CHECK_OK(shmcap_token_issue(iss, cap, SHMCAP_TOKEN_ONCE, once,
				    sizeof(once)));
	shmcap_cap_close(cap);
	dfd = shmcap_issuer_fd(iss);
	CHECK_OK(dfd);

	resolve_err(tok, 200 * MSEC, -ETIMEDOUT);
	resolve_err(tok, 0, -ETIMEDOUT);
	resolve_err(once, 200 * MSEC, -ETIMEDOUT);
	/*
	 * The three requests wait in the issuer's queue. Answering them now
	 * reaches nobody, and the ONCE token, never received, is not spent.
	 */
	pf.fd = dfd;
	pf.events = POLLIN;
	CHECK_EQ(poll(&pf, 1, 0), 1);
	ret = shmcap_issuer_dispatch(iss, 0);
	CHECK_EQ(ret, 3);
	CHECK_EQ(poll(&pf, 1, 0), 0);
	CHECK_EQ(shmcap_issuer_dispatch(iss, 0), 0);
	CHECK_EQ(shmcap_issuer_dispatch(iss, 1 * MSEC), 0);

	/* The ONCE token still resolves, in a child, while we dispatch. */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(p[0]);
		resolve_ok(once, SHMCAP_RIGHTS_REGION, "nobody answers");
		_exit(T_EXIT_PASS);
	}
	close(p[1]);
	CHECK_EQ(poll(&pf, 1, -1), 1);
	CHECK_EQ(shmcap_issuer_dispatch(iss, 0), 1);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	close(p[0]);

	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: an issuer nobody dispatches: ETIMEDOUT; a ONCE token "
	       "not received is not spent\n");
}

/* ------------------------------------------------------------------------
 * The dispatch model
 */

static void test_dispatch(void)
{
	char ok[TOK], revoked[TOK], forged[TOK], ro[TOK];
	int fds = t_count_fds(), done[2], total = 0, ret, dfd;
	shmcap_issuer *iss, *threaded;
	struct pollfd pf[2];
	shmcap_cap *cap, *rocap;
	pid_t pid;

	CHECK_OK(shmcap_issuer_create(0, &iss));
	dfd = shmcap_issuer_fd(iss);
	CHECK_OK(dfd);
	cap = t_text_region("dispatched");
	CHECK_OK(shmcap_cap_derive(cap, SHMCAP_RIGHT_READ, &rocap));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, ok, sizeof(ok)));
	CHECK_OK(shmcap_token_issue(iss, rocap, 0, ro, sizeof(ro)));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, revoked, sizeof(revoked)));
	CHECK_OK(shmcap_token_revoke(iss, revoked));
	token_flip(ok, F_KEY, 9, forged, sizeof(forged));
	shmcap_cap_close(rocap);
	shmcap_cap_close(cap);

	/* Nothing waits yet. */
	pf[0].fd = dfd;
	pf[0].events = POLLIN;
	CHECK_EQ(poll(pf, 1, 0), 0);
	CHECK_EQ(shmcap_issuer_dispatch(iss, 0), 0);

	CHECK_EQ(pipe2(done, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(done[0]);
		resolve_ok(ok, SHMCAP_RIGHTS_REGION, "dispatched");
		resolve_ok(ro, SHMCAP_RIGHT_READ, "dispatched");
		resolve_err(revoked, RESOLVE_TIMEOUT, -EKEYREVOKED);
		resolve_err(forged, RESOLVE_TIMEOUT, -EACCES);
		resolve_ok(ok, SHMCAP_RIGHTS_REGION, "dispatched");
		_exit(T_EXIT_PASS);
	}
	close(done[1]);

	/* The first request makes the issuer's descriptor readable. */
	CHECK_EQ(poll(pf, 1, -1), 1);
	CHECK(pf[0].revents & POLLIN);
	/*
	 * At least that one is answered; the child may ask again before
	 * dispatch returns, so there may be more.
	 */
	ret = shmcap_issuer_dispatch(iss, 0);
	CHECK(ret >= 1);
	total = ret;
	/* Serve until the child is done (its end of the pipe closes). */
	pf[1].fd = done[0];
	pf[1].events = POLLIN;
	for (;;) {
		CHECK(poll(pf, 2, -1) > 0);
		if (pf[0].revents & POLLIN) {
			ret = shmcap_issuer_dispatch(iss, 0);
			CHECK(ret >= 1);
			total += ret;
		}
		if (pf[1].revents)
			break;
	}
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	close(done[0]);
	CHECK_EQ(total, 5);

	/* Dispatch belongs to issuers without a thread. */
	CHECK_ERR(shmcap_issuer_dispatch(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_issuer_fd(NULL), -EINVAL);
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &threaded));
	CHECK_ERR(shmcap_issuer_dispatch(threaded, 0), -EINVAL);
	shmcap_issuer_destroy(threaded);

	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: dispatch model: issuer fd readable, %d requests answered "
	       "by shmcap_issuer_dispatch\n",
	       total);
}

/* ------------------------------------------------------------------------
 * Users
 */

static void test_uid(void)
{
	char deflt[TOK], any[TOK], anyro[TOK];
	int fds = t_count_fds();
	shmcap_cap *cap, *ro;
	shmcap_issuer *iss;
	pid_t pid;

	if (geteuid() != 0) {
		printf("skipped: uid checks need root to switch users\n");
		return;
	}
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("for any user");
	CHECK_OK(shmcap_cap_derive(cap, SHMCAP_RIGHT_READ, &ro));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, deflt, sizeof(deflt)));
	CHECK_OK(shmcap_token_issue(iss, cap, SHMCAP_TOKEN_ANY_UID, any,
				    sizeof(any)));
	CHECK_OK(shmcap_token_issue(iss, ro, SHMCAP_TOKEN_ANY_UID, anyro,
				    sizeof(anyro)));
	shmcap_cap_close(ro);
	shmcap_cap_close(cap);

	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			FAIL("dropping to uid 65534: %s", strerror(errno));
		CHECK_EQ(getuid(), 65534);
		resolve_err(deflt, RESOLVE_TIMEOUT, -EACCES);
		resolve_ok(any, SHMCAP_RIGHTS_REGION, "for any user");
		resolve_ok(anyro, SHMCAP_RIGHT_READ, "for any user");
		_exit(T_EXIT_PASS);
	}
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	/* Its own user may still use the default token. */
	resolve_ok(deflt, SHMCAP_RIGHTS_REGION, "for any user");
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: uid 65534 gets EACCES for a default token, the capability "
	       "for SHMCAP_TOKEN_ANY_UID\n");
}

/* ------------------------------------------------------------------------
 * Bad arguments, small buffers, many cycles
 */

static void test_bad_args(void)
{
	int fds = t_count_fds(), fds1, n;
	char tok[TOK], tok2[TOK];
	shmcap_issuer *iss = NULL;
	shmcap_cap *cap;

	CHECK_ERR(shmcap_issuer_create(0, NULL), -EINVAL);
	CHECK_ERR(shmcap_issuer_create(0x2, &iss), -EINVAL);
	CHECK_ERR(shmcap_issuer_create(0x80000000u, &iss), -EINVAL);
	CHECK_NULL(iss);
	CHECK_EQ(t_count_fds(), fds);

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("small buffers");
	fds1 = t_count_fds();
	CHECK_ERR(shmcap_token_issue(NULL, cap, 0, tok, sizeof(tok)), -EINVAL);
	CHECK_ERR(shmcap_token_issue(iss, NULL, 0, tok, sizeof(tok)), -EINVAL);
	CHECK_ERR(shmcap_token_issue(iss, cap, 0, NULL, sizeof(tok)), -EINVAL);
	CHECK_ERR(shmcap_token_issue(iss, cap, 0x4, tok, sizeof(tok)), -EINVAL);
	CHECK_ERR(shmcap_token_issue(iss, cap, ~0u, tok, sizeof(tok)), -EINVAL);

	/* Too small a buffer: -ENOSPC, and no token (no copy) is kept. */
	CHECK_ERR(shmcap_token_issue(iss, cap, 0, tok, 10), -ENOSPC);
	CHECK_ERR(shmcap_token_issue(iss, cap, 0, tok, 0), -ENOSPC);
	CHECK_ERR(shmcap_token_issue(iss, cap, 0, tok, 1), -ENOSPC);
	CHECK_EQ(t_count_fds(), fds1);
	n = shmcap_token_issue(iss, cap, 0, tok, sizeof(tok));
	CHECK_OK(n);
	check_token_format(tok, n);
	CHECK_EQ(t_count_fds(), fds1 + 1);
	/* One byte short (no room for the NUL), then exactly enough. */
	CHECK_ERR(shmcap_token_issue(iss, cap, 0, tok2, (size_t)n), -ENOSPC);
	CHECK_EQ(t_count_fds(), fds1 + 1);
	CHECK_EQ(shmcap_token_issue(iss, cap, 0, tok2, (size_t)n + 1), n);
	check_token_format(tok2, n);
	CHECK_EQ(t_count_fds(), fds1 + 2);
	resolve_ok(tok2, SHMCAP_RIGHTS_REGION, "small buffers");
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "small buffers");

	shmcap_cap_close(cap);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: bad arguments EINVAL; small buffers ENOSPC, no token "
	       "kept\n");
}

static void test_cycles(unsigned int cycles)
{
	int fds = t_count_fds();
	shmcap_issuer *iss;
	shmcap_cap *cap, *ro, *got;
	char tok[TOK];
	unsigned int i;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("cycles");
	CHECK_OK(shmcap_cap_derive(cap, SHMCAP_RIGHT_READ, &ro));
	for (i = 0; i < cycles; i++) {
		unsigned int flags = i % 3 == 2 ? SHMCAP_TOKEN_ONCE : 0;
		shmcap_cap *src = i % 2 ? ro : cap;

		CHECK_OK(shmcap_token_issue(iss, src, flags, tok, sizeof(tok)));
		CHECK_OK(shmcap_token_resolve(tok, RESOLVE_TIMEOUT, &got));
		CHECK_EQ(shmcap_cap_rights(got), shmcap_cap_rights(src));
		shmcap_cap_close(got);
		if (flags)
			CHECK_ERR(shmcap_token_revoke(iss, tok), -EKEYREVOKED);
		else
			CHECK_OK(shmcap_token_revoke(iss, tok));
		if (i % 50 == 0)
			resolve_err(tok, RESOLVE_TIMEOUT, -EKEYREVOKED);
	}
	shmcap_cap_close(ro);
	shmcap_cap_close(cap);
	shmcap_issuer_destroy(iss);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: %u issue/resolve/revoke cycles, no descriptor leaked\n",
	       cycles);
}

/* ------------------------------------------------------------------------
 * Hostile datagrams to the issuer
 */

/*
 * The issuer's abstract address, as src/token.c builds it from the
 * token's INSTANCE: "\0shmcap-issuer-" and 32 hex digits.
 */
static socklen_t issuer_addr(const char *tok, struct sockaddr_un *sa)
{
	struct parts pt;
	int n;

	token_split(tok, &pt);
	CHECK_EQ(strlen(pt.f[F_INSTANCE]), 32);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
		     "shmcap-issuer-%s", pt.f[F_INSTANCE]);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

static void send_dgram(int sock, const struct sockaddr_un *sa, socklen_t len,
		       const void *bytes, size_t n, const int *fds, size_t nfds)
{
	if (t_sendmsg_fds(sock, sa, len, bytes, n, fds, nfds) != (ssize_t)n)
		FAIL("sendmsg to the issuer: %s", strerror(errno));
}

/* Wait for one reply on sock; it must carry no descriptor. */
static void read_reply(int sock, struct rep *rp)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4) + 64];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	ssize_t r;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = rp;
	iov.iov_len = sizeof(*rp);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	CHECK_EQ(r, sizeof(*rp));
	CHECK_EQ(rp->magic, REP_MAGIC);
	CHECK_EQ(msg.msg_controllen, 0);
}

/* The sockets and descriptors a hostile sender uses. */
struct hostile {
	int unbound, named, p[2], devnull;
	int many[32];
};

/*
 * One datagram to the issuer; with a dispatch-model issuer, serve it at
 * once (an unserved issuer's queue holds few datagrams, and a full queue
 * would block this sender).
 */
static void hostile_one(shmcap_issuer *dispatched, int sock,
			const struct sockaddr_un *sa, socklen_t len,
			const void *bytes, size_t n, const int *fds,
			size_t nfds, int answered)
{
	int ret;

	send_dgram(sock, sa, len, bytes, n, fds, nfds);
	if (!dispatched)
		return;
	ret = shmcap_issuer_dispatch(dispatched, 0);
	if (answered)
		CHECK_EQ(ret, 1);
	else
		CHECK(ret == 0 || ret == 1);
}

/*
 * Garbage of every shape to the issuer's socket, descriptors attached or
 * not, then two well-formed requests that must be refused: an unknown
 * operation (nonce 2) and a guessed key (nonce 3).
 */
static void hostile_send(const char *tok, struct hostile *h,
			 shmcap_issuer *dispatched)
{
	unsigned char junk[1000];
	struct sockaddr_un sa, self;
	struct req rq;
	socklen_t len;
	int i;

	for (i = 0; i < (int)sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 13 + 5);
	len = issuer_addr(tok, &sa);
	h->unbound = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(h->unbound >= 0);
	h->named = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(h->named >= 0);
	memset(&self, 0, sizeof(self));
	self.sun_family = AF_UNIX;
	CHECK_EQ(bind(h->named, (struct sockaddr *)&self, sizeof(sa_family_t)),
		 0);
	CHECK_EQ(pipe2(h->p, O_CLOEXEC), 0);
	h->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(h->devnull >= 0);
	for (i = 0; i < 32; i++)
		h->many[i] = i % 2 ? h->p[0] : h->devnull;

	/* From a socket without a name (no answer possible)... */
	hostile_one(dispatched, h->unbound, &sa, len, junk, 0, NULL, 0, 0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, 10, NULL, 0, 0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, sizeof(rq), NULL, 0,
		    0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, sizeof(rq),
		    &h->p[0], 1, 0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, sizeof(junk),
		    h->many, 3, 0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, 5, h->many, 20, 0);
	hostile_one(dispatched, h->unbound, &sa, len, junk, 0, h->many, 32, 0);
	/* ...and from one with a name. */
	hostile_one(dispatched, h->named, &sa, len, junk, sizeof(rq),
		    &h->devnull, 1, 0);
	hostile_one(dispatched, h->named, &sa, len, junk, sizeof(junk), h->many,
		    32, 0);
	/* Request-shaped, but of another version: dropped, no answer. */
	memset(&rq, 0, sizeof(rq));
	rq.magic = REQ_MAGIC;
	rq.version = 2;
	rq.op = 1;
	rq.id = 1;
	rq.nonce = 1;
	hostile_one(dispatched, h->named, &sa, len, &rq, sizeof(rq), &h->p[1],
		    1, 0);
	/* Well formed, unknown operation: refused with EBADMSG. */
	rq.version = 1;
	rq.op = 9;
	rq.nonce = 2;
	hostile_one(dispatched, h->named, &sa, len, &rq, sizeof(rq), h->many, 2,
		    1);
	/* Well formed, guessed key: refused, no descriptor given. */
	rq.op = 1;
	rq.nonce = 3;
	hostile_one(dispatched, h->named, &sa, len, &rq, sizeof(rq), NULL, 0,
		    1);
}

/*
 * The issuer serves in order, so once the answer to nonce 3 is here every
 * datagram before it has been handled. Nonce 1 got no answer.
 */
static void hostile_replies(struct hostile *h)
{
	struct rep rp;

	read_reply(h->named, &rp);
	CHECK_EQ(rp.nonce, 2);
	CHECK_EQ(rp.status, -EBADMSG);
	read_reply(h->named, &rp);
	CHECK_EQ(rp.nonce, 3);
	CHECK_EQ(rp.status, -EACCES);
	CHECK_EQ(rp.rights, 0);
}

static void hostile_close(struct hostile *h)
{
	close(h->unbound);
	close(h->named);
	close(h->p[0]);
	close(h->p[1]);
	close(h->devnull);
}

static void test_hostile(void)
{
	int fds = t_count_fds(), fds1, done[2];
	shmcap_issuer *iss;
	struct hostile h;
	struct pollfd pf;
	shmcap_cap *cap;
	char tok[TOK];
	pid_t pid;

	/* Against an issuer thread. */
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("still serving");
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	fds1 = t_count_fds();
	hostile_send(tok, &h, NULL);
	hostile_replies(&h);
	hostile_close(&h);
	/* The issuer closed every descriptor it was sent, and serves. */
	CHECK_EQ(t_count_fds(), fds1);
	resolve_ok(tok, SHMCAP_RIGHTS_REGION, "still serving");
	shmcap_issuer_destroy(iss);

	/* Against the dispatch model. */
	CHECK_OK(shmcap_issuer_create(0, &iss));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	fds1 = t_count_fds();
	hostile_send(tok, &h, iss);
	hostile_replies(&h);
	hostile_close(&h);
	pf.fd = shmcap_issuer_fd(iss);
	pf.events = POLLIN;
	CHECK_EQ(poll(&pf, 1, 0), 0);
	CHECK_EQ(t_count_fds(), fds1);
	CHECK_EQ(pipe2(done, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(done[0]);
		resolve_ok(tok, SHMCAP_RIGHTS_REGION, "still serving");
		_exit(T_EXIT_PASS);
	}
	close(done[1]);
	CHECK_EQ(poll(&pf, 1, -1), 1);
	CHECK_EQ(shmcap_issuer_dispatch(iss, 0), 1);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	close(done[0]);
	shmcap_issuer_destroy(iss);

	shmcap_cap_close(cap);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: hostile datagrams to the issuer: no crash, no leak, "
	       "still serving\n");
}

/*
 * After an issuer dies anyone may bind its name. An impostor of another
 * uid that answers a stale token's request, even echoing the nonce and
 * attaching a region, must be ignored: the reply is not from the token's
 * uid, so the resolver waits on and times out, and leaks nothing.
 */
static void test_impostor(void)
{
	int ready[2], res[2], fds = t_count_fds();
	struct sockaddr_un sa;
	char tok[TOK + 1], c;
	socklen_t len;
	pid_t pid;

	if (geteuid() != 0) {
		printf("skipped: impostor issuer needs root to switch users\n");
		return;
	}
	/* A stale token: its issuer process is killed. */
	pid = spawn_issuer("the real one", tok, sizeof(tok));
	CHECK_EQ(kill(pid, SIGKILL), 0);
	t_check_killed(pid, CHILD_TIMEOUT);
	resolve_err(tok, RESOLVE_TIMEOUT, -ESRCH);

	/* The impostor, uid 65534, takes the dead issuer's name. */
	len = issuer_addr(tok, &sa);
	CHECK_EQ(pipe2(ready, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(res, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct sockaddr_un from;
		socklen_t fromlen = sizeof(from);
		struct msghdr msg;
		struct cmsghdr *cm;
		struct iovec iov;
		struct req rq;
		struct rep rp;
		int s, memfd;

		close(ready[0]);
		close(res[0]);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			FAIL("dropping to uid 65534: %s", strerror(errno));
		s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		CHECK(s >= 0);
		if (bind(s, (struct sockaddr *)&sa, len) < 0)
			FAIL("impostor bind: %s", strerror(errno));
		memfd = memfd_create("t-token-impostor", MFD_CLOEXEC);
		CHECK(memfd >= 0);
		CHECK_EQ(ftruncate(memfd, page_size), 0);
		CHECK_EQ(write(ready[1], "r", 1), 1);
		CHECK_EQ(recvfrom(s, &rq, sizeof(rq), 0,
				  (struct sockaddr *)&from, &fromlen),
			 sizeof(rq));
		CHECK_EQ(rq.magic, REQ_MAGIC);
		memset(&rp, 0, sizeof(rp));
		rp.magic = REP_MAGIC;
		rp.version = 1;
		rp.status = 0;
		rp.type = SHMCAP_TYPE_REGION;
		rp.rights = SHMCAP_RIGHTS_REGION;
		rp.nonce = rq.nonce;
		memset(&msg, 0, sizeof(msg));
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_name = &from;
		msg.msg_namelen = fromlen;
		iov.iov_base = &rp;
		iov.iov_len = sizeof(rp);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
		c = sendmsg(s, &msg, MSG_NOSIGNAL) == sizeof(rp) ? 'y' : 'n';
		CHECK_EQ(write(res[1], &c, 1), 1);
		_exit(T_EXIT_PASS);
	}
	close(ready[1]);
	close(res[1]);
	CHECK_EQ(read(ready[0], &c, 1), 1);
	resolve_err(tok, 500 * MSEC, -ETIMEDOUT);
	CHECK_EQ(read(res[0], &c, 1), 1);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	close(ready[0]);
	close(res[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: an impostor of another uid on a dead issuer's name is "
	       "ignored (its reply %s)\n",
	       c == 'y' ? "was delivered and discarded" :
			  "came too late to matter");
}

/* ------------------------------------------------------------------------
 * A token through argv to an exec'd peer
 */

static void test_exec_peer(void)
{
	char tok[TOK], ro[TOK], rev[TOK], bad[TOK], out[1024];
	int fds = t_count_fds(), st;
	shmcap_cap *cap, *rocap;
	shmcap_issuer *iss;

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	cap = t_text_region("passed through argv");
	CHECK_OK(shmcap_cap_derive(cap, SHMCAP_RIGHT_READ, &rocap));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, tok, sizeof(tok)));
	CHECK_OK(shmcap_token_issue(iss, rocap, 0, ro, sizeof(ro)));
	CHECK_OK(shmcap_token_issue(iss, cap, 0, rev, sizeof(rev)));
	CHECK_OK(shmcap_token_revoke(iss, rev));
	shmcap_cap_close(rocap);
	shmcap_cap_close(cap);

	st = run_peer_resolve(tok, "OK", out, sizeof(out));
	CHECK_CHILD_OK(st);
	CHECK_STR_EQ(out, "result OK\nrights 3\ncontent passed through argv\n");
	st = run_peer_resolve(ro, "OK", out, sizeof(out));
	CHECK_CHILD_OK(st);
	CHECK_STR_EQ(out, "result OK\nrights 1\ncontent passed through argv\n");
	st = run_peer_resolve(rev, "EKEYREVOKED", out, sizeof(out));
	CHECK_CHILD_OK(st);
	CHECK_STR_EQ(out, "result EKEYREVOKED\n");
	st = run_peer_resolve(token_flip(tok, F_KEY, 30, bad, sizeof(bad)),
			      "EACCES", out, sizeof(out));
	CHECK_CHILD_OK(st);
	st = run_peer_resolve(token_with(tok, F_ID, "4242424242", bad,
					 sizeof(bad)),
			      "ENOENT", out, sizeof(out));
	CHECK_CHILD_OK(st);
	st = run_peer_resolve("shmcap:1:0:nonsense", "EINVAL", out,
			      sizeof(out));
	CHECK_CHILD_OK(st);
	/* The peer's verdict is its own: a wrong expectation fails it. */
	printf("(the peer's next complaint is expected)\n");
	st = run_peer_resolve(rev, "OK", out, sizeof(out));
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == T_EXIT_FAIL);

	shmcap_issuer_destroy(iss);
	st = run_peer_resolve(tok, "ESRCH", out, sizeof(out));
	CHECK_CHILD_OK(st);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: tokens through argv to an exec'd peer\n");
}

int main(int argc, char **argv)
{
	unsigned int cycles = 500;
	int fds;

	if (argc > 1) {
		char *end;
		unsigned long v = strtoul(argv[1], &end, 10);

		if (*end || v == 0 || v > 1000000)
			FAIL("usage: %s [CYCLES]", argv[0]);
		cycles = (unsigned int)v;
	}
	t_watchdog(110);
	page_size = sysconf(_SC_PAGESIZE);
	CHECK(page_size > 0);
	peer_path = t_peer_path();
	fds = t_count_fds();
	CHECK(fds > 0);

	test_thread_basic();
	test_read_only();
	test_revoke();
	test_forged();
	test_malformed();
	test_once();
	test_destroy();
	test_stale();
	test_timeout();
	test_dispatch();
	test_uid();
	test_impostor();
	test_bad_args();
	test_cycles(cycles);
	test_hostile();
	if (peer_path)
		test_exec_peer();
	else
		printf("skipped: exec'd peer parts (no shmcap-test-peer)\n");

	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
