/* A scenario process: executes the agent's requests one at a time on its own address space.
 * Minor faults are counted only inside the operations themselves (see steady.c). */
#include "oracle.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int chan = -1;
static uint64_t scen_minflt;
static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_armed;
static volatile uint64_t cur_page; /* survives siglongjmp */
static volatile sig_atomic_t fault_sig; /* SIGSEGV, or SIGBUS (hugetlb: no huge page for a fault) */

static void on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		fault_sig = sig;
		siglongjmp(fault_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Every fault, minor or major: a swap-in that reads the page back from the swap device is a
 * major fault in Linux (one found in the swap cache is minor), and the model counts both.
 * Nothing else a scenario does is major: its memory is anonymous or shmem, never a file's. */
static long minflt_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

static void fail(struct rep *r, int err)
{
	r->status = ST_ERR;
	r->err = err;
}

static void do_mmap(const struct req *q, struct rep *r)
{
	unsigned pbits = q->flags & MMAP_PROT_MASK;
	int prot = pbits == 2 ? PROT_READ | PROT_WRITE : pbits == 1 ? PROT_READ : PROT_NONE;
	int shared = (q->flags & MMAP_SHARED) != 0;
	size_t len = q->pages * PAGE_BYTES;
	long t0 = minflt_now();
	void *want = (void *)q->addr;
	int hugetlb = (q->flags & MMAP_HUGETLB) != 0;
	/* MAP_NORESERVE: no commit charge, so the overcommit heuristic never refuses a large
	 * mapping the model accepts; it changes nothing about faults or COW. Not for hugetlb: there
	 * it would skip the huge page reservation the model makes (HPAGE_RESV_OWNER). */
	void *p = mmap(want, len, prot,
		       MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE |
			       (hugetlb ? MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) : MAP_NORESERVE),
		       -1, 0);
	if (p == MAP_FAILED) {
		fail(r, errno);
		return;
	}
	if (p != want) { /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
		munmap(p, len);
		fail(r, EEXIST);
		return;
	}
	/* The THP advice the driver chose (the scenario's thp|nothp, or what makes this machine's
	 * THP mode act as the scenario's config.thp), set before populating; none on hugetlb. */
	if (!hugetlb && (q->flags & (MMAP_THP | MMAP_NOTHP)))
		madvise(p, len, (q->flags & MMAP_THP) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	/* MAP_POPULATE, after the THP advice: write faults for private writable, else read. */
	if ((q->flags & MMAP_POPULATE) && prot != PROT_NONE) {
		int adv = (!shared && pbits == 2) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
		if (madvise(p, len, adv) < 0)
			r->err = errno; /* reported, the mapping stays */
	}
	scen_minflt += (uint64_t)(minflt_now() - t0);
}

static void do_write(const struct req *q, struct rep *r)
{
	volatile long t0 = minflt_now();
	for (cur_page = 0; cur_page < q->pages; cur_page++) {
		if (sigsetjmp(fault_env, 1)) {
			r->status = ST_FAULT;
			r->index = cur_page;
			r->err = fault_sig;
			break;
		}
		fault_armed = 1;
		page_fill((void *)(q->addr + cur_page * PAGE_BYTES), q->word);
		fault_armed = 0;
	}
	scen_minflt += (uint64_t)(minflt_now() - t0);
}

static void do_read(const struct req *q, struct rep *r)
{
	volatile long t0 = minflt_now();
	if (sigsetjmp(fault_env, 1)) {
		r->status = ST_FAULT;
		r->index = 0;
		r->err = fault_sig;
	} else {
		fault_armed = 1;
		r->word = page_word((const void *)q->addr, &r->uniform);
		fault_armed = 0;
	}
	scen_minflt += (uint64_t)(minflt_now() - t0);
}

/* Returns 1 in the child, which has already announced itself on its new channel. */
static int do_fork(int child_sock, struct rep *r)
{
	if (child_sock < 0) {
		fail(r, EBADF);
		return 0;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(chan);
		chan = child_sock;
		scen_minflt = 0;
		steady_retouch();
		struct rep hello = { .status = ST_OK, .pid = getpid() };
		if (chan_send(chan, &hello, sizeof hello, -1) < 0)
			_exit(1);
		return 1;
	}
	int err = errno;
	close(child_sock);
	steady_retouch();
	if (pid < 0)
		fail(r, err);
	else
		r->pid = pid;
	return 0;
}

/* A ring of our own whose buffers are the range: the pin. The agent copies the ring's fd
 * and then has us close ours (OP_CLOSE_FD), so no child of ours ever inherits it. */
static void do_pin(const struct req *q, struct rep *r)
{
	static struct iovec iov[PIN_MAX_CHUNKS];
	unsigned n = 0;
	for (uint64_t done = 0; done < q->pages && n < PIN_MAX_CHUNKS; n++) {
		uint64_t k = q->pages - done < PIN_CHUNK_PAGES ? q->pages - done : PIN_CHUNK_PAGES;
		iov[n].iov_base = (void *)(q->addr + done * PAGE_BYTES);
		iov[n].iov_len = k * PAGE_BYTES;
		done += k;
	}
	if ((uint64_t)n * PIN_CHUNK_PAGES < q->pages) {
		fail(r, E2BIG);
		return;
	}
	int fd = ring_setup(4, r->extra, sizeof r->extra);
	if (fd < 0) {
		fail(r, -fd);
		return;
	}
	long t0 = minflt_now();
	int rc = ring_register_buffers(fd, iov, n);
	scen_minflt += (uint64_t)(minflt_now() - t0);
	if (rc < 0) {
		close(fd);
		fail(r, -rc);
		return;
	}
	r->index = (uint64_t)fd;
	/* A write GUP that reuses a page makes its PTE writable without flushing the TLB; a
	 * read-only entry still cached would make our next write fault spuriously (x86 fixes it
	 * up then, and Linux counts the fault). Write each page once now, outside the measured
	 * window: the PTEs are writable after the pin, so this copies nothing. */
	for (cur_page = 0; cur_page < q->pages; cur_page++) {
		if (sigsetjmp(fault_env, 1))
			continue;
		fault_armed = 1;
		volatile uint64_t *w = (volatile uint64_t *)(q->addr + cur_page * PAGE_BYTES);
		*w = *w;
		fault_armed = 0;
	}
}

/* vmsplice the range into a new pipe big enough to hold it; returns the read end or -1. */
static int do_vmsplice(const struct req *q, struct rep *r)
{
	int fds[2];
	size_t bytes = q->pages * PAGE_BYTES;
	size_t cap = 16 * PAGE_BYTES;
	while (cap < bytes)
		cap <<= 1;
	if (cap > (1UL << 30)) { /* F_SETPIPE_SZ takes an int */
		fail(r, E2BIG);
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fail(r, errno);
		return -1;
	}
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)cap) < 0) {
		fail(r, errno);
		goto out;
	}
	size_t done = 0;
	long t0 = minflt_now();
	while (done < bytes) {
		struct iovec iov = { .iov_base = (void *)(q->addr + done), .iov_len = bytes - done };
		ssize_t n = vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK);
		if (n <= 0) {
			fail(r, n < 0 ? errno : EFAULT);
			break;
		}
		done += (size_t)n;
	}
	scen_minflt += (uint64_t)(minflt_now() - t0);
	if (done == bytes) {
		close(fds[1]);
		return fds[0];
	}
out:
	close(fds[0]);
	close(fds[1]);
	return -1;
}

static void do_clear_refs(const struct req *q, struct rep *r)
{
	char v[16];
	int len = 0;
	unsigned x = q->flags;
	do
		v[len++] = (char)('0' + x % 10);
	while ((x /= 10) && len < 15);
	for (int i = 0; i < len / 2; i++) {
		char t = v[i];
		v[i] = v[len - 1 - i];
		v[len - 1 - i] = t;
	}
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, (size_t)len) != len)
		fail(r, errno);
	if (fd >= 0)
		close(fd);
	steady_retouch();
}

void proc_main(int sock)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGCHLD, SIG_IGN); /* children of scenario processes reap themselves */
	chan = sock;
	steady_init();
	struct rep hello = { .status = ST_OK, .pid = getpid() };
	if (chan_send(chan, &hello, sizeof hello, -1) < 0)
		_exit(1);
	for (;;) {
		struct req q;
		int fd;
		ssize_t n = chan_recv(chan, &q, sizeof q, &fd, -1);
		if (n <= 0)
			_exit(0); /* the agent is gone */
		if ((size_t)n != sizeof q)
			_exit(3);
		struct rep r = { .status = ST_OK };
		int send_fd = -1;
		switch (q.op) {
		case OP_NOP:
			break;
		case OP_MMAP:
			do_mmap(&q, &r);
			break;
		case OP_MUNMAP:
			if (munmap((void *)q.addr, q.pages * PAGE_BYTES) < 0)
				fail(&r, errno);
			break;
		case OP_MREMAP:
			if (mremap((void *)q.addr, q.pages * PAGE_BYTES, q.pages * PAGE_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)q.word) == MAP_FAILED)
				fail(&r, errno);
			break;
		case OP_MPROTECT:
			if (mprotect((void *)q.addr, q.pages * PAGE_BYTES, (int)q.flags) < 0)
				fail(&r, errno);
			break;
		case OP_MADVISE: {
			long t0 = minflt_now();
			if (madvise((void *)q.addr, q.pages * PAGE_BYTES, (int)q.flags) < 0)
				fail(&r, errno);
			scen_minflt += (uint64_t)(minflt_now() - t0);
			break;
		}
		case OP_WRITE:
			do_write(&q, &r);
			break;
		case OP_READ:
			do_read(&q, &r);
			break;
		case OP_FORK:
			if (do_fork(fd, &r))
				continue; /* the child: its hello went out on its own channel */
			fd = -1;
			break;
		case OP_EXIT:
			_exit(0);
		case OP_PIN:
			do_pin(&q, &r);
			break;
		case OP_CLOSE_FD:
			if ((int)q.flags > 2 && (int)q.flags != chan)
				close((int)q.flags);
			break;
		case OP_VMSPLICE:
			send_fd = do_vmsplice(&q, &r);
			break;
		case OP_CLEAR_REFS:
			do_clear_refs(&q, &r);
			break;
		case OP_UFFD_NEW: {
			/* userfaultfd() binds to the caller's mm: made here, handed to the agent. */
			int u = uffd_open();
			if (u < 0)
				fail(&r, -u);
			else
				send_fd = u;
			break;
		}
		default:
			fail(&r, ENOSYS);
		}
		if (fd >= 0)
			close(fd);
		r.minflt = scen_minflt;
		int rc = chan_send(chan, &r, sizeof r, send_fd);
		if (send_fd >= 0)
			close(send_fd);
		if (rc < 0)
			_exit(0);
	}
}
