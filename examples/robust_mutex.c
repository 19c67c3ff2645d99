/* SPDX-License-Identifier: MIT */
/*
 * robust_mutex: semaphores and a mutex that live in a shared region, and a
 * mutex whose holder is killed.
 *
 * Parent and child play ping-pong with two semaphores in an anonymous
 * region, then the child takes the mutex, starts an update of two fields
 * that must stay equal, tells the parent, and is killed with SIGKILL in
 * the middle of it. The parent's next lock does not deadlock: it returns
 * -EOWNERDEAD, the parent repairs the fields, marks the mutex consistent
 * and goes on.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECOND 1000000000LL
#define ROUNDS 100000

struct shared {
	shmcap_sem ping, pong, held;
	shmcap_mutex lock;
	uint64_t a, b; /* protected by lock: always equal when it is free */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "robust_mutex: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SECOND + ts.tv_nsec;
}

static void child(struct shared *s)
{
	int i;

	for (i = 0; i < ROUNDS; i++) {
		if (shmcap_sem_wait(&s->ping, 5 * SECOND) < 0)
			_exit(1);
		shmcap_sem_post(&s->pong);
	}
	/* Take the lock and die half-way through an update. */
	if (shmcap_mutex_lock(&s->lock, 5 * SECOND) < 0)
		_exit(1);
	s->a++;
	shmcap_sem_post(&s->held);
	for (;;)
		pause(); /* killed here, holding the lock, with a != b */
}

int main(void)
{
	struct shared *s;
	shmcap_cap *region;
	shmcap_map *map;
	int64_t t0, t1;
	int err, i;
	pid_t pid;

	err = shmcap_region_create(sizeof(*s), 0, &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &map);
	if (err < 0)
		return fail("map", err);
	s = shmcap_map_addr(map);
	shmcap_sem_init(&s->ping, 0);
	shmcap_sem_init(&s->pong, 0);
	shmcap_sem_init(&s->held, 0);
	shmcap_mutex_init(&s->lock);

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", -ECHILD);
	if (pid == 0)
		child(s);

	t0 = now_ns();
	for (i = 0; i < ROUNDS; i++) {
		shmcap_sem_post(&s->ping);
		err = shmcap_sem_wait(&s->pong, 5 * SECOND);
		if (err < 0)
			return fail("ping-pong", err);
	}
	t1 = now_ns();
	printf("parent: %d semaphore round trips with the child, %.2f us "
	       "each\n",
	       ROUNDS, (double)(t1 - t0) / ROUNDS / 1000);

	err = shmcap_sem_wait(&s->held, 5 * SECOND);
	if (err < 0)
		return fail("wait for the child", err);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("parent: killed the child while it held the mutex "
	       "(a=%llu, b=%llu)\n",
	       (unsigned long long)s->a, (unsigned long long)s->b);

	err = shmcap_mutex_lock(&s->lock, 5 * SECOND);
	printf("parent: shmcap_mutex_lock returned %s\n", shmcap_err_name(err));
	if (err != -EOWNERDEAD)
		return fail("lock", err);
	s->b = s->a; /* repair what the dead holder left half done */
	err = shmcap_mutex_consistent(&s->lock);
	if (err < 0)
		return fail("consistent", err);
	shmcap_mutex_unlock(&s->lock);
	printf("parent: repaired (a=%llu, b=%llu), marked consistent, "
	       "unlocked\n",
	       (unsigned long long)s->a, (unsigned long long)s->b);
	err = shmcap_mutex_lock(&s->lock, 5 * SECOND);
	printf("parent: next lock returned %s\n", shmcap_err_name(err));
	shmcap_mutex_unlock(&s->lock);

	shmcap_map_unmap(map);
	shmcap_cap_close(region);
	return err == 0 ? 0 : 1;
}
