/* SPDX-License-Identifier: MIT */
/*
 * Version and error text. Both error functions read one table, built from
 * the X-macro below, so a name never lacks its description.
 */
#include "internal.h"

#define SHMCAP_STR2(x) #x
#define SHMCAP_STR(x) SHMCAP_STR2(x)

/* X(errno name, description as shmcap uses it) */
#define SHMCAP_ERRNO_MAP(X)                                                   \
	X(EPERM, "operation not permitted")                                  \
	X(ENOENT, "no such object")                                          \
	X(ESRCH, "no such process (the actor or peer is gone)")              \
	X(EINTR, "interrupted by a signal")                                  \
	X(EIO, "input/output error")                                         \
	X(E2BIG, "too many capabilities, or arguments too long")             \
	X(ENOEXEC, "not an executable format")                               \
	X(EBADF, "bad file descriptor")                                      \
	X(ECHILD, "no child process")                                        \
	X(EAGAIN, "resource temporarily unavailable")                        \
	X(ENOMEM, "not enough memory")                                       \
	X(EACCES, "permission denied")                                       \
	X(EFAULT, "bad address")                                             \
	X(EBUSY, "resource busy")                                            \
	X(EDEADLK, "deadlock: the caller holds it already")                  \
	X(EEXIST, "already exists")                                          \
	X(ENODEV, "no such device")                                          \
	X(ENOTDIR, "not a directory")                                        \
	X(EINVAL, "invalid argument")                                        \
	X(ENFILE, "too many open files in system")                           \
	X(EMFILE, "too many open files")                                     \
	X(EFBIG, "size too large")                                           \
	X(ETXTBSY, "text file busy (open for writing)")                      \
	X(ENOSPC, "no space left")                                           \
	X(ERANGE, "out of range")                                            \
	X(ENAMETOOLONG, "name too long")                                     \
	X(ENOSYS, "function not implemented")                                \
	X(ELOOP, "too many levels of symbolic links")                        \
	X(EOVERFLOW, "value too large (arithmetic overflow)")                \
	X(EBADMSG, "bad message")                                            \
	X(EPROTO, "protocol error")                                          \
	X(EMSGSIZE, "message too long")                                      \
	X(EPROTOTYPE, "wrong socket type")                                   \
	X(ENOTSOCK, "not a socket")                                          \
	X(EOPNOTSUPP, "operation not supported")                             \
	X(ECONNREFUSED, "connection refused")                                \
	X(ECONNRESET, "connection reset by peer")                            \
	X(ENOTCONN, "not connected")                                         \
	X(EPIPE, "broken pipe (no peer left)")                               \
	X(ETIMEDOUT, "timed out")                                            \
	X(ECANCELED, "operation canceled")                                   \
	X(EOWNERDEAD, "previous owner died")                                 \
	X(ENOTRECOVERABLE, "state not recoverable")                          \
	X(EKEYREVOKED, "token revoked")                                      \
	X(ETOOMANYREFS, "too many references")                               \
	X(ENODATA, "no data available")                                      \
	X(ESTALE, "stale handle")

struct shmcap_errinfo {
	int code;
	const char *name;
	const char *text;
};

#define SHMCAP_ERRINFO(e, t) { e, #e, t },
static const struct shmcap_errinfo shmcap_errors[] = {
	SHMCAP_ERRNO_MAP(SHMCAP_ERRINFO)
};
#undef SHMCAP_ERRINFO

static const struct shmcap_errinfo *shmcap_errinfo_find(int err)
{
	size_t i;

	if (err < 0)
		err = -err;
	for (i = 0; i < sizeof(shmcap_errors) / sizeof(shmcap_errors[0]); i++)
		if (shmcap_errors[i].code == err)
			return &shmcap_errors[i];
	return NULL;
}

SHMCAP_EXPORT const char *shmcap_strerror(int err)
{
	const struct shmcap_errinfo *e;

	if (err == 0)
		return "success";
	e = shmcap_errinfo_find(err);
	return e ? e->text : "unknown error";
}

SHMCAP_EXPORT const char *shmcap_err_name(int err)
{
	const struct shmcap_errinfo *e;

	if (err == 0)
		return "OK";
	e = shmcap_errinfo_find(err);
	return e ? e->name : "UNKNOWN";
}

SHMCAP_EXPORT unsigned int shmcap_version(void)
{
	return SHMCAP_VERSION_HEX;
}

SHMCAP_EXPORT const char *shmcap_version_string(void)
{
	return SHMCAP_STR(SHMCAP_VERSION_MAJOR) "." SHMCAP_STR(
		SHMCAP_VERSION_MINOR) "." SHMCAP_STR(SHMCAP_VERSION_PATCH);
}
