/* The agent's handles: io_uring rings holding pinned pages (the "device" reads and writes them
 * with fixed-buffer I/O against a memfd page) and pipes holding vmsplice references (read
 * without draining them). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct handle handles[MAXH];
static int memfd = -1;
static char page_buf[PAGE_BYTES] __attribute__((aligned(4096)));

/* The page the device's transfers go through. */
int handles_init(void)
{
	for (int i = 0; i < MAXH; i++)
		handles[i].fd = -1;
	memfd = memfd_create("cowlab-device", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, PAGE_BYTES) < 0)
		return -errno;
	return 0;
}

struct handle *handle_by_id(int id)
{
	for (int i = 0; i < MAXH; i++)
		if (handles[i].used && handles[i].id == id)
			return &handles[i];
	return NULL;
}

static struct handle *handle_slot(void)
{
	for (int i = 0; i < MAXH; i++)
		if (!handles[i].used)
			return &handles[i];
	return NULL;
}

void release(struct handle *h)
{
	if (h->kind == H_RING) {
		/* Unregistering unpins at once; closing alone would leave it to a worker. */
		ring_unregister_buffers(&h->ring);
		ring_close(&h->ring);
	} else if (h->fd >= 0) {
		close(h->fd);
		for (int i = 0; i < h->nmore; i++)
			close(h->more[i]);
	}
	memset(h, 0, sizeof *h);
	h->fd = -1;
}

void handles_reset(void)
{
	for (int i = 0; i < MAXH; i++)
		if (handles[i].used)
			release(&handles[i]);
}

void cmd_pin(struct sproc *p, int hid, uint64_t addr, uint64_t pages)
{
	struct handle *h = handle_slot();
	if (!h || handle_by_id(hid)) {
		say("err %d handle", EINVAL);
		return;
	}
	struct req q = { .op = OP_PIN, .addr = addr, .pages = pages };
	struct rep r;
	if (call(p, &q, -1, &r, NULL) < 0) {
		say("err %d dead", ECHILD);
		return;
	}
	if (r.status != ST_OK) {
		say("err %d", r.err);
		return;
	}
	/* Copy the ring's fd out of the process, then have it close its own. */
	int fd = -1, err = 0;
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (pidfd < 0 || (fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)r.index, 0)) < 0)
		err = errno;
	if (pidfd >= 0)
		close(pidfd);
	struct req cq = { .op = OP_CLOSE_FD, .flags = (uint32_t)r.index };
	struct rep cr;
	if (call(p, &cq, -1, &cr, NULL) < 0) {
		if (fd >= 0)
			close(fd);
		say("err %d dead", ECHILD);
		return;
	}
	memset(h, 0, sizeof *h);
	if (err == 0 && (err = -ring_attach(&h->ring, fd, r.extra)) != 0)
		fd = -1; /* ring_attach closed it */
	if (err) {
		if (fd >= 0)
			close(fd);
		say("err %d ring", err);
		return;
	}
	h->used = 1;
	h->id = hid;
	h->kind = H_RING;
	h->fd = -1;
	h->addr = addr;
	h->pages = pages;
	say("ok");
}

/* Pages one pipe can hold: fs/pipe-max-size (what F_SETPIPE_SZ allows without CAP_SYS_RESOURCE),
 * as a power of two. */
static uint64_t pipe_max_pages(void)
{
	char b[32];
	uint64_t max = 0, per = 16;
	if (read_str("/proc/sys/fs/pipe-max-size", b, sizeof b) == 0)
		max = strtoull(b, NULL, 10) / PAGE_BYTES;
	while (per * 2 <= max)
		per *= 2;
	return per;
}

void cmd_vmsplice(struct sproc *p, int hid, uint64_t addr, uint64_t pages)
{
	struct handle *h = handle_slot();
	if (!h || handle_by_id(hid)) {
		say("err %d handle", EINVAL);
		return;
	}
	uint64_t per = pipe_max_pages();
	if ((pages + per - 1) / per > PIPES_MAX) {
		say("err %d too many pages for %d pipes", E2BIG, PIPES_MAX);
		return;
	}
	int fds[PIPES_MAX] = { -1 }, n = 0;
	for (uint64_t done = 0; done < pages; done += per) {
		struct req q = { .op = OP_VMSPLICE, .addr = addr + done * PAGE_BYTES, .pages = pages - done < per ? pages - done : per };
		struct rep r;
		int fd;
		int err = call(p, &q, -1, &r, &fd) < 0 ? -1 : r.status != ST_OK ? r.err : fd < 0 ? EBADF : 0;
		if (err != 0) {
			if (err > 0 && fd >= 0)
				close(fd);
			while (n > 0)
				close(fds[--n]);
			if (err < 0)
				say("err %d dead", ECHILD);
			else
				say("err %d", err);
			return;
		}
		fds[n++] = fd;
	}
	*h = (struct handle){ .used = 1, .id = hid, .kind = H_PIPE, .fd = fds[0], .addr = addr, .pages = pages, .nmore = n - 1, .per_pipe = per };
	for (int i = 1; i < n; i++)
		h->more[i - 1] = fds[i];
	h->ring.fd = -1;
	say("ok");
}

/* Page k of a pipe, read without draining it: tee the first k+1 pages of its pipe into a scratch pipe. */
static int pipe_peek(struct handle *h, uint64_t k)
{
	int t[2];
	uint64_t which = h->per_pipe ? k / h->per_pipe : 0;
	int src = which == 0 ? h->fd : h->more[which - 1];
	if (h->per_pipe)
		k %= h->per_pipe;
	size_t want = (size_t)(k + 1) * PAGE_BYTES, cap = 16 * PAGE_BYTES;
	while (cap < want)
		cap <<= 1;
	if (pipe2(t, O_CLOEXEC) < 0)
		return -errno;
	int rc = 0;
	if (fcntl(t[1], F_SETPIPE_SZ, (int)cap) < 0) {
		rc = -errno;
	} else {
		ssize_t n = tee(src, t[1], want, SPLICE_F_NONBLOCK);
		if (n != (ssize_t)want)
			rc = n < 0 ? -errno : -ENODATA;
		for (uint64_t i = 0; rc == 0 && i <= k; i++) {
			size_t got = 0;
			while (got < PAGE_BYTES) {
				ssize_t m = read(t[0], page_buf + got, PAGE_BYTES - got);
				if (m <= 0) {
					rc = m < 0 ? -errno : -ENODATA;
					break;
				}
				got += (size_t)m;
			}
		}
	}
	close(t[0]);
	close(t[1]);
	return rc;
}

void cmd_hread(struct handle *h, uint64_t k)
{
	int rc;
	if (k >= h->pages) {
		say("err %d index", EINVAL);
		return;
	}
	if (h->kind == H_PIPE) {
		rc = pipe_peek(h, k);
	} else {
		/* IORING_OP_WRITE_FIXED: the "device" copies the pinned page out to a file. */
		rc = ring_rw_fixed(&h->ring, 1, memfd, h->addr + k * PAGE_BYTES, PAGE_BYTES,
				   (uint16_t)(k / PIN_CHUNK_PAGES));
		if (rc == (int)PAGE_BYTES)
			rc = pread(memfd, page_buf, PAGE_BYTES, 0) == (ssize_t)PAGE_BYTES ? 0 : -EIO;
		else if (rc >= 0)
			rc = -EIO;
	}
	if (rc < 0) {
		say("err %d", -rc);
		return;
	}
	uint32_t uniform;
	uint64_t w = page_word(page_buf, &uniform);
	say("ok %llx %u", (unsigned long long)w, uniform);
}

void cmd_hwrite(struct handle *h, uint64_t k, uint64_t word)
{
	if (h->kind != H_RING || k >= h->pages) {
		say("err %d", h->kind != H_RING ? EBADF : EINVAL);
		return;
	}
	page_fill(page_buf, word);
	if (pwrite(memfd, page_buf, PAGE_BYTES, 0) != (ssize_t)PAGE_BYTES) {
		say("err %d memfd", errno);
		return;
	}
	/* IORING_OP_READ_FIXED: the "device" writes the file's page into the pinned page. */
	int rc = ring_rw_fixed(&h->ring, 0, memfd, h->addr + k * PAGE_BYTES, PAGE_BYTES,
			       (uint16_t)(k / PIN_CHUNK_PAGES));
	if (rc == (int)PAGE_BYTES)
		say("ok");
	else
		say("err %d", rc < 0 ? -rc : EIO);
}
