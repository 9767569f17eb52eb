/* userfaultfd write-protect for the scenario processes. Each process's userfaultfd is made in
 * that process (userfaultfd() binds to the caller's mm) and handed to the agent, which does every
 * ioctl on it (they act on the context's mm, whoever calls them). A monitor thread, started at
 * the first registration, answers each write-protect fault by un-protecting the page
 * (UFFDIO_WRITEPROTECT without MODE_WP, which also wakes the faulting thread) and counts the
 * faults per process; with UFFD_FEATURE_EVENT_FORK a fork blocks until the monitor read the
 * event, which carries the child's userfaultfd: it is kept for the child (uffd_forked). */
#include "agent.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif

#define MAXU MAXP

struct ufd {
	int used, fd, owner; /* owner: the driver's process id */
	int forkev;
	uint64_t faults;
	int child_fd; /* from a fork event, until uffd_forked takes it (-1: none) */
};

static struct ufd ufds[MAXU];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int monitor_started;
/* Passes of the monitor's loop finished (under lock): uffd_forked waits for one. */
static unsigned long monitor_passes;

static struct ufd *by_owner(int id)
{
	for (int i = 0; i < MAXU; i++)
		if (ufds[i].used && ufds[i].owner == id)
			return &ufds[i];
	return NULL;
}

static struct ufd *add(int fd, int owner, int forkev)
{
	for (int i = 0; i < MAXU; i++) {
		if (!ufds[i].used) {
			ufds[i] = (struct ufd){ .used = 1, .fd = fd, .owner = owner, .forkev = forkev, .child_fd = -1 };
			return &ufds[i];
		}
	}
	return NULL;
}

/* One message of one userfaultfd, read and answered. */
static void answer(int i, const struct uffd_msg *m)
{
	if (m->event == UFFD_EVENT_PAGEFAULT && (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
		struct uffdio_writeprotect w = {
			.range = { .start = m->arg.pagefault.address & ~(PAGE_BYTES - 1), .len = PAGE_BYTES }, .mode = 0,
		};
		pthread_mutex_lock(&lock);
		int fd = ufds[i].fd;
		ufds[i].faults++;
		pthread_mutex_unlock(&lock);
		while (ioctl(fd, UFFDIO_WRITEPROTECT, &w) < 0 && errno == EAGAIN)
			usleep(100);
	} else if (m->event == UFFD_EVENT_FORK) {
		pthread_mutex_lock(&lock);
		if (ufds[i].child_fd >= 0)
			close(ufds[i].child_fd);
		ufds[i].child_fd = (int)m->arg.fork.ufd;
		pthread_mutex_unlock(&lock);
	}
}

static void *monitor(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pf[MAXU];
		int at[MAXU], n = 0;
		pthread_mutex_lock(&lock);
		for (int i = 0; i < MAXU; i++) {
			if (ufds[i].used) {
				pf[n] = (struct pollfd){ .fd = ufds[i].fd, .events = POLLIN };
				at[n++] = i;
			}
		}
		pthread_mutex_unlock(&lock);
		if (poll(pf, (nfds_t)n, 2) > 0) {
			for (int k = 0; k < n; k++) {
				if (!(pf[k].revents & POLLIN))
					continue;
				struct uffd_msg m;
				while (read(pf[k].fd, &m, sizeof m) == (ssize_t)sizeof m)
					answer(at[k], &m);
			}
		}
		pthread_mutex_lock(&lock);
		monitor_passes++;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static int start_monitor(void)
{
	if (monitor_started)
		return 0;
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	/* The monitor takes no signal: the agent's handlers run on its main thread. */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&t, NULL, monitor, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	pthread_detach(t);
	monitor_started = 1;
	return 0;
}

/* uffdreg ID ADDR PAGES FORKEV: UFFDIO_REGISTER_MODE_WP on the range; the process's userfaultfd
 * is made (and its API handshake done, with the fork event if asked) at its first registration. */
void cmd_uffd_register(struct sproc *p, uint64_t addr, uint64_t pages, int forkev)
{
	int rc = start_monitor();
	if (rc < 0) {
		say("err %d monitor thread", -rc);
		return;
	}
	pthread_mutex_lock(&lock);
	struct ufd *u = by_owner(p->id);
	pthread_mutex_unlock(&lock);
	if (!u) {
		struct req q = { .op = OP_UFFD_NEW };
		struct rep r;
		int fd = -1;
		if (call(p, &q, -1, &r, &fd) < 0) {
			say("err %d dead", ECHILD);
			return;
		}
		if (r.status != ST_OK || fd < 0) {
			say("err %d userfaultfd", r.err ? r.err : EBADF);
			return;
		}
		uint64_t features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM | (forkev ? UFFD_FEATURE_EVENT_FORK : 0);
		rc = uffd_api(fd, features);
		if (rc < 0) {
			close(fd);
			say("err %d UFFDIO_API", -rc);
			return;
		}
		pthread_mutex_lock(&lock);
		u = add(fd, p->id, forkev);
		pthread_mutex_unlock(&lock);
		if (!u) {
			close(fd);
			say("err %d too many userfaultfds", EMFILE);
			return;
		}
	} else if (u->forkev != forkev) {
		say("err %d the fork event is chosen at UFFDIO_API", EINVAL);
		return;
	}
	struct uffdio_register reg = { .range = { .start = addr, .len = pages * PAGE_BYTES }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0) {
		say("err %d", errno);
		return;
	}
	say("ok");
}

/* uffdwp ID ADDR PAGES WP: UFFDIO_WRITEPROTECT, protecting (WP=1) or not. */
void cmd_uffd_wp(struct sproc *p, uint64_t addr, uint64_t pages, int wp)
{
	pthread_mutex_lock(&lock);
	struct ufd *u = by_owner(p->id);
	int fd = u ? u->fd : -1;
	pthread_mutex_unlock(&lock);
	if (fd < 0) {
		say("err %d", ENOENT);
		return;
	}
	struct uffdio_writeprotect w = {
		.range = { .start = addr, .len = pages * PAGE_BYTES }, .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	int rc;
	while ((rc = ioctl(fd, UFFDIO_WRITEPROTECT, &w)) < 0 && errno == EAGAIN)
		usleep(100);
	if (rc < 0)
		say("err %d", errno);
	else
		say("ok");
}

/* uffdfaults ID: the write-protect faults the monitor answered for this process. */
void cmd_uffd_faults(int id)
{
	pthread_mutex_lock(&lock);
	struct ufd *u = by_owner(id);
	unsigned long long n = u ? (unsigned long long)u->faults : 0;
	pthread_mutex_unlock(&lock);
	say("ok %llu", n);
}

/* After a fork: the child's userfaultfd from the fork event, if the parent's context asked for it. */
void uffd_forked(int parent, int child)
{
	pthread_mutex_lock(&lock);
	struct ufd *u = by_owner(parent);
	/* The fork returned once the monitor had read its event, which may be before the monitor
	 * kept the child's userfaultfd (answer): the pass of its loop that read it is over once the
	 * count of passes moves. Without that fd the child's own fork, with the fork event asked,
	 * would wait for ever for a reader. (No event when no range is registered: one pass, 2 ms.) */
	if (u && u->forkev && u->child_fd < 0 && monitor_started) {
		unsigned long seen = monitor_passes;
		for (int i = 0; i < 4000 && monitor_passes == seen; i++) {
			pthread_mutex_unlock(&lock);
			usleep(250);
			pthread_mutex_lock(&lock);
		}
	}
	if (u && u->child_fd >= 0) {
		int fd = u->child_fd, forkev = u->forkev;
		u->child_fd = -1;
		if (!add(fd, child, forkev))
			close(fd);
	}
	pthread_mutex_unlock(&lock);
}

/* Every userfaultfd closed (the scenario is over). */
void uffd_reset(void)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAXU; i++) {
		if (!ufds[i].used)
			continue;
		close(ufds[i].fd);
		if (ufds[i].child_fd >= 0)
			close(ufds[i].child_fd);
		ufds[i].used = 0;
	}
	pthread_mutex_unlock(&lock);
}
