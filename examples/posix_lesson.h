/* SPDX-License-Identifier: MIT */
/*
 * posix_lesson.h: the layout that posix_writer and posix_reader share in
 * their named region. Both programs include it, so they cannot disagree.
 */
#ifndef POSIX_LESSON_H
#define POSIX_LESSON_H

#include <shmcap.h>

#define LESSON_NAME "posix_lesson" /* /dev/shm/shmcap.posix_lesson */

struct lesson {
	shmcap_sem clr2send; /* 1: the writer may fill the mailbox */
	shmcap_sem sent;     /* 1: a line, or the end, waits in it */
	uint32_t len;	     /* bytes of text in the mailbox */
	uint32_t eof;	     /* 1: the writer's input has ended */
	char text[4000];     /* a line, or a piece of a longer one */
};

#endif /* POSIX_LESSON_H */
