/* The agent's side: its scenario processes and its handles (agent.c, agent_procs.c, agent_handles.c). */
#ifndef COWLAB_AGENT_H
#define COWLAB_AGENT_H

#include "oracle.h"

#include <signal.h>

#define MAXP 64
#define MAXH 1024
/* How long one operation may take before its process is taken for hung (and killed). */
#define OP_TIMEOUT_MS 120000

/* A scenario process, known by the driver's id. */
struct sproc {
	int used, alive, id, sock;
	pid_t pid;
	uint64_t minflt;
};

enum { H_RING = 1, H_PIPE = 2 };

/* A vmsplice'd range longer than a pipe can hold (fs/pipe-max-size) goes into several pipes. */
#define PIPES_MAX 8

/* A handle: an io_uring whose buffers are the pinned pages, or pipes holding vmsplice'd pages
 * (fd, then more[], per_pipe pages each). */
struct handle {
	int used, id, kind, fd;
	struct ring ring;
	uint64_t addr, pages;
	int more[PIPES_MAX - 1];
	int nmore;
	uint64_t per_pipe;
};

extern struct sproc procs[MAXP];
extern struct handle handles[MAXH];
extern pid_t agent_pid;
/* Pins this process to one CPU (see agent_procs.c); the CPU, or -1. */
int pin_one_cpu(void);
/* The scenario's process group (its leader is a keeper that only waits to be killed), 0: none. */
extern volatile sig_atomic_t group_pid;

/* agent.c: one answer line on stdout. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* agent_procs.c */
struct sproc *proc_by_id(int id);
void reap(void);
int call(struct sproc *p, const struct req *q, int send_fd, struct rep *r, int *got_fd);
void procs_reset(void);
void procs_emergency(void);
void cmd_spawn(int id);
void cmd_fork(struct sproc *p, int newid);
void cmd_exit(struct sproc *p);
void cmd_simple(struct sproc *p, struct req *q);

/* agent_handles.c */
int handles_init(void);
struct handle *handle_by_id(int id);
void release(struct handle *h);
void handles_reset(void);
void cmd_pin(struct sproc *p, int hid, uint64_t addr, uint64_t pages);
void cmd_vmsplice(struct sproc *p, int hid, uint64_t addr, uint64_t pages);
void cmd_hread(struct handle *h, uint64_t k);
void cmd_hwrite(struct handle *h, uint64_t k, uint64_t word);

/* agent_uffd.c: userfaultfd write-protect and its monitor thread */
void cmd_uffd_register(struct sproc *p, uint64_t addr, uint64_t pages, int forkev);
void cmd_uffd_wp(struct sproc *p, uint64_t addr, uint64_t pages, int wp);
void cmd_uffd_faults(int id);
void uffd_forked(int parent, int child);
void uffd_reset(void);

/* thp.c: the page ranges a huge PMD maps */
void cmd_thpscan(struct sproc *p, uint64_t addr, uint64_t pages);
#define PMD_BYTES (512 * PAGE_BYTES)
/* A 2 MiB-aligned MADV_HUGEPAGE range, as cow.c makes one (twice the size mapped, then
 * aligned); *m is the mapping to munmap (2 * PMD_BYTES), NULL when none could be had. */
volatile char *thp_range(char **m);

/* khugepaged.c: khugepaged held asleep for the session and always put back */
void cmd_khpause(void);
void khugepaged_restore(void);
void khugepaged_reclaim(void);

/* system.c: the swap file and KSM, changed for the oracle and always put back */
void cmd_swapon(char **tok, int n);
void cmd_swapinfo(void);
void cmd_swapoff(void);
void cmd_ksm(uint64_t passes, uint64_t timeout_ms, int smart);
void cmd_ksmhold(void);
void cmd_swaphold(void);
void system_release_holds(void);
void system_cleanup(void);
void system_signals(void);
void system_signals_default(void);
void system_signals_block(sigset_t *old);
void system_signals_restore(const sigset_t *old);
int system_reclaim(int argc, char **argv);
/* A string into a file (system calls only: also from a signal handler); 0 or -errno. */
int write_str(const char *path, const char *s);
/* The path of the lock file named `what` (/run or /tmp), in a static buffer. */
const char *lock_path(const char *what);
/* CLOCK_MONOTONIC in ms; a sleep of ms, whatever signals come (system calls only). */
uint64_t now_ms(void);
void sleep_ms(long ms);
/* An flock (op: LOCK_SH or LOCK_EX) on the lock file at path, waiting at most timeout_ms: its
 * descriptor, or -errno (-ETIMEDOUT). System calls only: also from a signal handler. */
int lock_file(const char *path, int op, uint64_t timeout_ms);
/* Records of what is to be put back, kept in a lock file while it is changed, as one line
 * "PID WORD...\n" (fsync'ed), so that the next agent or `reclaim` can put back what an agent
 * killed with SIGKILL left changed. write_record writes this agent's PID and the n words over
 * the file (0, or -errno); read_record reads the PID into *pid and up to max words (each cut
 * to REC_WORD - 1 characters) and returns how many, or -1 when the file holds no record;
 * clear_record empties it (the values are back; system calls only). */
#define REC_WORD 24
#define REC_LEN 256
int write_record(int fd, const char *const *words, int n);
int read_record(int fd, int *pid, char words[][REC_WORD], int max);
void clear_record(int fd);

/* hugetlb.c: the 2 MiB hugetlb pool, set for a scenario and always put back */
void cmd_hugetlb(uint64_t want);
void hugetlb_restore(void);
void hugetlb_reclaim(void);

#endif
