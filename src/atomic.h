/* SPDX-License-Identifier: MIT */
/*
 * Atomic operations on shared-memory words, futex calls and the CPU's spin
 * hint, in one place.
 *
 * The shared layouts (include/shmcap/abi.h) are plain fixed-width integers,
 * because they are a public ABI that C++, bindings and tools read too; C11
 * _Atomic types cannot appear there. These wrappers apply the compiler's
 * __atomic builtins, which implement the C11 memory model on plain objects,
 * with an explicit order at every call site. Each caller's comment names the
 * operation its acquire or release pairs with.
 */
#ifndef SHMCAP_ATOMIC_H
#define SHMCAP_ATOMIC_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ORDER_RELAXED __ATOMIC_RELAXED
#define ORDER_ACQUIRE __ATOMIC_ACQUIRE
#define ORDER_RELEASE __ATOMIC_RELEASE
#define ORDER_SEQ_CST __ATOMIC_SEQ_CST
#define ORDER_ACQ_REL __ATOMIC_ACQ_REL

static inline uint32_t load32(const uint32_t *p, int order)
{
	return __atomic_load_n(p, order);
}

static inline uint64_t load64(const uint64_t *p, int order)
{
	return __atomic_load_n(p, order);
}

static inline void store32(uint32_t *p, uint32_t v, int order)
{
	__atomic_store_n(p, v, order);
}

static inline void store64(uint64_t *p, uint64_t v, int order)
{
	__atomic_store_n(p, v, order);
}

static inline uint32_t fetch_add32(uint32_t *p, uint32_t v, int order)
{
	return __atomic_fetch_add(p, v, order);
}

static inline uint64_t fetch_add64(uint64_t *p, uint64_t v, int order)
{
	return __atomic_fetch_add(p, v, order);
}

static inline uint32_t fetch_sub32(uint32_t *p, uint32_t v, int order)
{
	return __atomic_fetch_sub(p, v, order);
}

static inline uint64_t exchange64(uint64_t *p, uint64_t v, int order)
{
	return __atomic_exchange_n(p, v, order);
}

/* On failure *expected receives the current value (relaxed). */
static inline int cas32(uint32_t *p, uint32_t *expected, uint32_t desired,
			int order)
{
	return __atomic_compare_exchange_n(p, expected, desired, 0, order,
					   ORDER_RELAXED);
}

static inline int cas64(uint64_t *p, uint64_t *expected, uint64_t desired,
			int order)
{
	return __atomic_compare_exchange_n(p, expected, desired, 0, order,
					   ORDER_RELAXED);
}

/*
 * A memory fence of the given order. ThreadSanitizer does not model
 * fences (GCC refuses them under -fsanitize=thread): there a compiler
 * barrier stands in, which orders enough on the x86-64 hosts it runs on.
 */
#if defined(__SANITIZE_THREAD__)
#define SHMCAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMCAP_TSAN 1
#endif
#endif

static inline void fence(int order)
{
#ifdef SHMCAP_TSAN
	__atomic_signal_fence(order);
#else
	__atomic_thread_fence(order);
#endif
}

/* Tell the CPU we are spinning (saves power, frees the sibling thread). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Sleep while *word == val, until woken or until the CLOCK_MONOTONIC
 * deadline in nanoseconds (INT64_MAX: no deadline). The futex is shared
 * (no FUTEX_PRIVATE_FLAG): the kernel keys it by the page's backing file
 * and offset, so processes mapping the region at different addresses meet.
 * Returns 0 when woken (perhaps spuriously), -EAGAIN if *word != val,
 * -ETIMEDOUT, or -EINTR.
 */
static inline int futex_wait_until(uint32_t *word, uint32_t val,
				   int64_t deadline)
{
	struct timespec ts, *tp = NULL;

	if (deadline != INT64_MAX) {
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		tp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	if (syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, tp, NULL,
		    FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

/* Wake up to n sleepers on word. */
static inline void futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

#endif /* SHMCAP_ATOMIC_H */
