/* The agent's scenario processes: starting the first one, fork, exit, one request and its
 * reply at a time, and killing and reaping them all (the agent is their subreaper).
 *
 * No scenario process can escape a kill: every one of them is in the scenario's process group
 * from its first instruction. The group's leader is a keeper process that does nothing but wait
 * to be killed, so the group (and its id) exists until the agent reaps the keeper; the first
 * scenario process joins it with signals blocked in the agent from before fork() until it is in
 * the table and the group, and the processes they fork inherit the group. So one
 * kill(-group_pid, SIGKILL) reaches every scenario process, known to the table or not (a child
 * P forked whose hello has not arrived yet), from the main loop or from a signal handler. */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct sproc procs[MAXP];
volatile sig_atomic_t group_pid;

struct sproc *proc_by_id(int id)
{
	for (int i = 0; i < MAXP; i++)
		if (procs[i].used && procs[i].id == id)
			return &procs[i];
	return NULL;
}

static struct sproc *proc_slot(void)
{
	for (int i = 0; i < MAXP; i++)
		if (!procs[i].used)
			return &procs[i];
	return NULL;
}

/* A child is reaped: once the keeper is, its pid (the group's id) may be reused. */
static void reaped(pid_t w)
{
	if (w > 0 && w == group_pid)
		group_pid = 0;
}

void reap(void)
{
	pid_t w;
	while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
		reaped(w);
}

static void mark_dead(struct sproc *p)
{
	if (p->alive) {
		kill(p->pid, SIGKILL);
		close(p->sock);
	}
	p->alive = 0;
}

/* One request to a scenario process and its reply; -1 when the process is gone or hangs. */
int call(struct sproc *p, const struct req *q, int send_fd, struct rep *r, int *got_fd)
{
	memset(r, 0, sizeof *r);
	if (got_fd)
		*got_fd = -1;
	if (!p->alive)
		return -1;
	if (chan_send(p->sock, q, sizeof *q, send_fd) == 0 &&
	    chan_recv(p->sock, r, sizeof *r, got_fd, OP_TIMEOUT_MS) == (ssize_t)sizeof *r) {
		p->minflt = r->minflt;
		return 0;
	}
	mark_dead(p);
	return -1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* SIGKILLs every child listed in /proc/self/task/TID/children (CONFIG_PROC_CHILDREN); system
 * calls only. Returns how many it listed, -1 when the file cannot be read. */
static int kill_listed_children(void)
{
	char path[64] = "/proc/self/task/", buf[4096];
	int len = 16;
	char digits[16];
	int nd = 0;
	for (unsigned v = (unsigned)agent_pid; nd == 0 || v; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	while (nd)
		path[len++] = digits[--nd];
	memcpy(path + len, "/children", 10);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -1;
	int count = 0;
	long pid = 0;
	for (ssize_t i = 0; i <= n; i++) {
		if (i < n && buf[i] >= '0' && buf[i] <= '9') {
			pid = pid * 10 + (buf[i] - '0');
		} else if (pid > 0) {
			kill((pid_t)pid, SIGKILL);
			count++;
			pid = 0;
		}
	}
	return count;
}

/* Kills every scenario process and waits until none is left. The group takes them all; one by
 * one only without a group (a process the table still calls alive may have been reaped by its
 * parent already, and its pid reused). */
void procs_reset(void)
{
	pid_t group = group_pid;
	if (group > 0)
		kill(-group, SIGKILL);
	for (int i = 0; i < MAXP; i++) {
		if (procs[i].used && group > 0 && procs[i].alive) {
			close(procs[i].sock);
			procs[i].alive = 0;
		}
		if (procs[i].used)
			mark_dead(&procs[i]);
		procs[i].used = 0;
	}
	/* Every scenario process is our child or was reparented to us (we are a subreaper). */
	for (int tries = 0; tries < 20000; tries++) {
		pid_t w = waitpid(-1, NULL, WNOHANG);
		if (w < 0 && errno == ECHILD) {
			group_pid = 0;
			return;
		}
		reaped(w);
		if (w <= 0) {
			if (tries % 200 == 199) /* one outside the group (its keeper died)? */
				kill_listed_children();
			struct timespec ts = { 0, 500000 };
			nanosleep(&ts, NULL);
		}
	}
	fprintf(stderr, "cowlab-oracle: some scenario process did not go away\n");
}

/* From a signal handler (system calls only): kill every scenario process, known or not, and
 * reap them all, for at most EMERGENCY_WAIT_MS; never blocks longer. Sockets and handles are
 * closed too, so that a process that could not be killed still sees its agent go. */
#define EMERGENCY_WAIT_MS 5000
void procs_emergency(void)
{
	pid_t group = group_pid;
	if (group > 0)
		kill(-group, SIGKILL);
	for (int i = 0; i < MAXP; i++) {
		if (procs[i].used && procs[i].alive) {
			if (group <= 0)
				kill(procs[i].pid, SIGKILL);
			close(procs[i].sock);
			procs[i].alive = 0;
		}
	}
	for (int i = 0; i < MAXH; i++)
		if (handles[i].used && handles[i].fd >= 0)
			close(handles[i].fd);
	uint64_t t0 = mono_ms();
	for (unsigned round = 0; mono_ms() - t0 < EMERGENCY_WAIT_MS; round++) {
		pid_t w;
		while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (w < 0 && errno == ECHILD)
			return;
		/* Still some: processes reparented to us since (a dead parent's children). */
		if (round % 8 == 0)
			kill_listed_children();
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* In a new child of the agent: none of the agent's handlers, no ring, no descriptor of the
 * agent's but `keep` (moved to 3); then the signal mask the agent had before fork(). */
static void child_common(int keep, const sigset_t *old)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	system_signals_default();
	if (getppid() != agent_pid)
		_exit(1);
	for (int i = 0; i < MAXH; i++) /* no ring mapping may keep a ring alive in a child */
		if (handles[i].used && handles[i].kind == H_RING)
			ring_close(&handles[i].ring);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
	}
	int from = 3;
	if (keep >= 0) {
		if (keep != 3)
			dup2(keep, 3);
		from = 4;
	}
	if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) < 0)
		for (int fd = from; fd < 4096; fd++)
			close(fd);
	sigprocmask(SIG_SETMASK, old, NULL);
}

/* The scenario's process group: its keeper, started when the scenario's first process is. */
static int group_ensure(void)
{
	if (group_pid > 0)
		return 0;
	sigset_t old;
	system_signals_block(&old);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		child_common(-1, &old);
		for (;;)
			pause();
	}
	int err = errno;
	if (pid > 0) {
		setpgid(pid, pid); /* here too: the group exists whichever of us runs first */
		group_pid = pid;
	}
	system_signals_restore(&old);
	return pid < 0 ? -err : 0;
}

void cmd_spawn(int id)
{
	int sv[2];
	struct sproc *p = proc_slot();
	if (!p || proc_by_id(id)) {
		say("err %d spawn", EINVAL);
		return;
	}
	int rc = group_ensure();
	if (rc < 0) {
		say("err %d fork", -rc);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		say("err %d socketpair", errno);
		return;
	}
	/* From fork() until the child is in the table and in the group, no handler may run: it
	 * would not know of the child, which would wait on its socket to us forever. */
	sigset_t old;
	system_signals_block(&old);
	pid_t group = group_pid;
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, group);
		close(sv[0]);
		child_common(sv[1], &old);
		proc_main(3);
	}
	int err = errno;
	if (pid > 0) {
		setpgid(pid, group);
		*p = (struct sproc){ .used = 1, .alive = 1, .id = id, .sock = sv[0], .pid = pid };
	}
	system_signals_restore(&old);
	close(sv[1]);
	if (pid < 0) {
		say("err %d fork", err);
		close(sv[0]);
		return;
	}
	struct rep hello;
	if (chan_recv(sv[0], &hello, sizeof hello, NULL, OP_TIMEOUT_MS) != (ssize_t)sizeof hello) {
		mark_dead(p);
		p->used = 0;
		reap();
		say("err %d dead spawn", ECHILD);
		return;
	}
	say("ok %d", (int)pid);
}

void cmd_fork(struct sproc *p, int newid)
{
	int sv[2];
	struct sproc *c = proc_slot();
	if (!c || proc_by_id(newid)) {
		say("err %d fork", EINVAL);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		say("err %d socketpair", errno);
		return;
	}
	struct req q = { .op = OP_FORK };
	struct rep r, hello;
	int rc = call(p, &q, sv[1], &r, NULL);
	close(sv[1]);
	if (rc < 0 || r.status != ST_OK) {
		close(sv[0]);
		say(rc < 0 ? "err %d dead" : "err %d", rc < 0 ? ECHILD : r.err);
		return;
	}
	if (chan_recv(sv[0], &hello, sizeof hello, NULL, OP_TIMEOUT_MS) != (ssize_t)sizeof hello) {
		kill(r.pid, SIGKILL);
		close(sv[0]);
		say("err %d dead child", ECHILD);
		return;
	}
	*c = (struct sproc){ .used = 1, .alive = 1, .id = newid, .sock = sv[0], .pid = hello.pid };
	uffd_forked(p->id, newid);
	say("ok %d", (int)hello.pid);
}

void cmd_exit(struct sproc *p)
{
	struct req q = { .op = OP_EXIT };
	char dummy[sizeof(struct rep)];
	if (p->alive && chan_send(p->sock, &q, sizeof q, -1) == 0) {
		/* Its socket closes in do_exit after the address space is gone. */
		ssize_t n = chan_recv(p->sock, dummy, sizeof dummy, NULL, OP_TIMEOUT_MS);
		if (n != 0)
			kill(p->pid, SIGKILL);
		close(p->sock);
	}
	p->alive = 0;
	reap();
	say("ok");
}

/* The plain request/reply operations. */
void cmd_simple(struct sproc *p, struct req *q)
{
	struct rep r;
	if (call(p, q, -1, &r, NULL) < 0) {
		say("err %d dead", ECHILD);
		return;
	}
	if (r.status == ST_FAULT)
		say("fault %llu %d", (unsigned long long)r.index, r.err); /* the page, the signal */
	else if (r.status != ST_OK)
		say("err %d", r.err);
	else if (q->op == OP_READ)
		say("ok %llx %u", (unsigned long long)r.word, r.uniform);
	else if (r.err)
		say("ok %d", r.err); /* done, with a side error (populate) */
	else
		say("ok");
}

/* One CPU for every scenario process (COWLAB_ORACLE_CPU picks it, a negative value none; else
 * one chosen by the agent's pid among the allowed ones): the per-CPU LRU batches that hold page
 * references are then always drained where the reuse check looks. Returns the CPU, or -1. */
int pin_one_cpu(void)
{
	const char *env = getenv("COWLAB_ORACLE_CPU");
	cpu_set_t set;
	if (env && atoi(env) < 0)
		return -1;
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return -1;
	int count = CPU_COUNT(&set), want = env ? atoi(env) : (int)(agent_pid % (count ? count : 1));
	for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (seen++ == want || (env && cpu == want)) {
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			return sched_setaffinity(0, sizeof set, &set) == 0 ? cpu : -1;
		}
	}
	return -1;
}
