/* io_uring through raw system calls (no liburing): a ring whose registered buffers are the
 * pinned pages (IORING_REGISTER_BUFFERS pins with FOLL_WRITE | FOLL_LONGTERM), and one
 * fixed-buffer read or write at a time, as a device doing DMA would. The scenario process
 * sets the ring up and registers its own pages; the agent copies the fd with pidfd_getfd()
 * (io_uring fds cannot travel over SCM_RIGHTS) and maps and drives the rings. */
#include "oracle.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *ring_map(int fd, size_t len, off_t what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
	return p == MAP_FAILED ? NULL : p;
}

/* io_uring_setup(); the parameters (ring offsets) go to whoever maps the rings. */
int ring_setup(unsigned entries, void *params, size_t params_len)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	if (params_len < sizeof p)
		return -EINVAL;
	int fd = (int)syscall(__NR_io_uring_setup, entries, &p);
	if (fd < 0)
		return -errno;
	memcpy(params, &p, sizeof p);
	return fd;
}

/* Map the rings of an io_uring fd (which may come from another process). Takes the fd. */
int ring_attach(struct ring *r, int fd, const void *params)
{
	struct io_uring_params p;
	memcpy(&p, params, sizeof p);
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	r->sqe_len = p.sq_entries * sizeof(struct io_uring_sqe);
	int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
	if (single && r->cq_len > r->sq_len)
		r->sq_len = r->cq_len;
	if (single)
		r->cq_len = 0; /* one mapping for both rings, unmapped once */
	r->sq_map = ring_map(fd, r->sq_len, IORING_OFF_SQ_RING);
	r->cq_map = single ? r->sq_map : ring_map(fd, r->cq_len, IORING_OFF_CQ_RING);
	r->sqe_map = ring_map(fd, r->sqe_len, IORING_OFF_SQES);
	if (!r->sq_map || !r->cq_map || !r->sqe_map) {
		int err = errno;
		ring_close(r);
		return -err;
	}
	char *sq = r->sq_map, *cq = r->cq_map;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = cq + p.cq_off.cqes;
	r->sqes = r->sqe_map;
	return 0;
}

int ring_open(struct ring *r, unsigned entries)
{
	struct io_uring_params p;
	int fd = ring_setup(entries, &p, sizeof p);
	if (fd < 0) {
		memset(r, 0, sizeof *r);
		r->fd = -1;
		return fd;
	}
	return ring_attach(r, fd, &p);
}

int ring_register_buffers(int ring_fd, const struct iovec *iov, unsigned n)
{
	if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, iov, n) < 0)
		return -errno;
	return 0;
}

int ring_unregister_buffers(struct ring *r)
{
	if (syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* One IORING_OP_READ_FIXED (file -> pinned page) or IORING_OP_WRITE_FIXED (pinned page ->
 * file) at file offset 0; returns the completion's result (bytes, or -errno). */
int ring_rw_fixed(struct ring *r, int write_to_file, int fd, uint64_t addr, uint32_t len,
		  uint16_t buf_index)
{
	unsigned tail = *r->sq_tail;
	unsigned idx = tail & *r->sq_mask;
	struct io_uring_sqe *s = (struct io_uring_sqe *)r->sqes + idx;
	memset(s, 0, sizeof *s);
	s->opcode = write_to_file ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED;
	s->fd = fd;
	s->addr = addr;
	s->len = len;
	s->off = 0;
	s->buf_index = buf_index;
	s->user_data = 1;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	long n;
	do
		n = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	unsigned head = *r->cq_head;
	while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		do
			n = syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
	}
	const struct io_uring_cqe *c = (const struct io_uring_cqe *)r->cqes + (head & *r->cq_mask);
	int res = c->res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

void ring_close(struct ring *r)
{
	if (r->sqe_map)
		munmap(r->sqe_map, r->sqe_len);
	if (r->cq_map && r->cq_len)
		munmap(r->cq_map, r->cq_len);
	if (r->sq_map)
		munmap(r->sq_map, r->sq_len);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof *r);
	r->fd = -1;
}
