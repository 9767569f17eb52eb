/* cowlab oracle helper: replays scenario steps on the live Linux kernel.
 *
 * One binary, two roles. The agent (agent*.c) is started by the TypeScript driver and reads
 * one command a line on stdin, answering one line on stdout. It forks the scenario's first
 * process; every scenario process (scenario_proc.c) runs a small loop that executes one
 * request at a time from its own socket to the agent, so the order of operations is exactly
 * the file's.
 * Handles (io_uring rings holding pinned pages, pipes holding vmsplice references) live in
 * the agent, so they outlive the processes that took them, as in the model.
 */
#ifndef COWLAB_ORACLE_H
#define COWLAB_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PAGE_BYTES 4096UL
#define PAGE_WORDS (PAGE_BYTES / sizeof(uint64_t))

/* Scenario mappings are placed in [1 TiB, 8 TiB) (the model's layout), away from the helper. */
#define SCEN_LO (1UL << 40)
#define SCEN_HI (8UL << 40)

/* A pinned range is registered with io_uring as buffers of at most 1 GiB each. */
#define PIN_CHUNK_PAGES (1UL << 18)
#define PIN_MAX_CHUNKS 64

/* Requests from the agent to a scenario process. */
enum proc_op {
	OP_NOP = 1,   /* just answer (carries the fault count) */
	OP_MMAP,      /* addr, pages, flags = MMAP_* */
	OP_MUNMAP,    /* addr, pages */
	OP_MPROTECT,  /* addr, pages, flags = PROT_* */
	OP_MADVISE,   /* addr, pages, flags = MADV_* */
	OP_WRITE,     /* addr, pages, word */
	OP_READ,      /* addr */
	OP_FORK,      /* the child's socket comes with the request */
	OP_EXIT,
	OP_PIN,       /* addr, pages: a new io_uring with the range as its buffers */
	OP_CLOSE_FD,  /* flags = an fd the agent has copied (pidfd_getfd) */
	OP_VMSPLICE,  /* addr, pages; the pipe's read end goes back with the reply */
	OP_CLEAR_REFS, /* flags = the value written to /proc/self/clear_refs */
	OP_MREMAP,    /* addr, pages, word = the new address (MREMAP_MAYMOVE|MREMAP_FIXED) */
	OP_UFFD_NEW   /* a userfaultfd of this process goes back with the reply (the agent does its ioctls) */
};

#define MMAP_PROT_MASK 3u /* 0 none, 1 ro, 2 rw */
#define MMAP_SHARED 4u
#define MMAP_POPULATE 8u
#define MMAP_THP 16u     /* MADV_HUGEPAGE on the new mapping */
#define MMAP_NOTHP 32u   /* MADV_NOHUGEPAGE on the new mapping (neither: no advice) */
#define MMAP_HUGETLB 64u /* MAP_HUGETLB | MAP_HUGE_2MB, reserved (no MAP_NORESERVE) */

struct req {
	uint32_t op;
	uint32_t flags;
	uint64_t addr;
	uint64_t pages;
	uint64_t word;
};

enum { ST_OK = 0, ST_ERR = 1, ST_FAULT = 2 };

struct rep {
	int32_t status; /* ST_OK, ST_ERR (err = errno) or ST_FAULT (index = the faulting page) */
	int32_t err;
	uint64_t index;
	uint64_t word;    /* OP_READ: the first word of the page */
	uint32_t uniform; /* OP_READ: every word equals the first */
	int32_t pid;      /* OP_FORK: the child; the first message of a process: itself */
	uint64_t minflt;  /* faults taken inside scenario operations so far */
	unsigned char extra[160]; /* OP_PIN: the ring's struct io_uring_params */
};

/* chan.c: one message per call over a SOCK_SEQPACKET socket, with at most one fd. */
int chan_send(int sock, const void *msg, size_t len, int fd);
ssize_t chan_recv(int sock, void *msg, size_t len, int *fd, int timeout_ms);

/* steady.c: keep the helper's own memory from faulting inside measured operations. */
void steady_init(void);
void steady_retouch(void);

/* scenario_proc.c: a scenario process; never returns. */
void proc_main(int sock) __attribute__((noreturn));

/* page.c: a page filled with one 64-bit word. */
void page_fill(void *page, uint64_t word);
uint64_t page_word(const void *page, uint32_t *uniform);

/* uring.c: io_uring through raw system calls. */
struct ring {
	int fd;
	void *sq_map, *cq_map, *sqe_map;
	size_t sq_len, cq_len, sqe_len;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	void *cqes;
	void *sqes;
};
int ring_setup(unsigned entries, void *params, size_t params_len);
int ring_attach(struct ring *r, int fd, const void *params);
int ring_open(struct ring *r, unsigned entries);
int ring_register_buffers(int ring_fd, const struct iovec *iov, unsigned n);
int ring_unregister_buffers(struct ring *r);
int ring_rw_fixed(struct ring *r, int write_to_file, int fd, uint64_t addr, uint32_t len,
		  uint16_t buf_index);
void ring_close(struct ring *r);

/* uffd.c: a userfaultfd of the calling process (syscall, else /dev/userfaultfd); -errno on failure. */
int uffd_open(void);
/* UFFDIO_API with these features; 0 or -errno. */
int uffd_api(int fd, uint64_t features);

/* probe.c: what this kernel offers (PROBE_LEN bytes of words). */
#define PROBE_LEN 1536
void probe_report(char *out, size_t len);
/* thp.c: the THP words of the probe. */
void probe_thp(char *out, size_t len);

/* system.c */
int read_str(const char *path, char *out, size_t len);

/* agent.c */
int agent_main(void);

#endif
