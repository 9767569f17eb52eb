/* The agent's scenario processes: starting the first one, fork, exit, one request and its
 * reply at a time, and killing and reaping them all (the agent is their subreaper). */
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
#include <time.h>
#include <unistd.h>

struct sproc procs[MAXP];

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

void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
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

/* Kills every scenario process and waits until none is left. */
void procs_reset(void)
{
	for (int i = 0; i < MAXP; i++) {
		if (procs[i].used)
			mark_dead(&procs[i]);
		procs[i].used = 0;
	}
	/* Every scenario process is our child or was reparented to us (we are a subreaper). */
	for (int tries = 0; tries < 20000; tries++) {
		pid_t w = waitpid(-1, NULL, WNOHANG);
		if (w < 0 && errno == ECHILD)
			return;
		if (w <= 0) {
			struct timespec ts = { 0, 500000 };
			nanosleep(&ts, NULL);
		}
	}
	fprintf(stderr, "cowlab-oracle: some scenario process did not go away\n");
}

static void child_setup(int sock) __attribute__((noreturn));
static void child_setup(int sock)
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
	if (sock != 3)
		dup2(sock, 3);
	if (syscall(SYS_close_range, 4U, ~0U, 0) < 0)
		for (int fd = 4; fd < 4096; fd++)
			close(fd);
	proc_main(3);
}

void cmd_spawn(int id)
{
	int sv[2];
	struct sproc *p = proc_slot();
	if (!p || proc_by_id(id)) {
		say("err %d spawn", EINVAL);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		say("err %d socketpair", errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		child_setup(sv[1]);
	}
	close(sv[1]);
	if (pid < 0) {
		say("err %d fork", errno);
		close(sv[0]);
		return;
	}
	struct rep hello;
	if (chan_recv(sv[0], &hello, sizeof hello, NULL, OP_TIMEOUT_MS) != (ssize_t)sizeof hello) {
		kill(pid, SIGKILL);
		close(sv[0]);
		reap();
		say("err %d dead spawn", ECHILD);
		return;
	}
	*p = (struct sproc){ .used = 1, .alive = 1, .id = id, .sock = sv[0], .pid = pid };
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
		say("fault %llu", (unsigned long long)r.index);
	else if (r.status != ST_OK)
		say("err %d", r.err);
	else if (q->op == OP_READ)
		say("ok %llx %u", (unsigned long long)r.word, r.uniform);
	else if (r.err)
		say("ok %d", r.err); /* done, with a side error (populate) */
	else
		say("ok");
}
