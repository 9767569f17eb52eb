/* The agent: reads one command a line on stdin, answers one line on stdout ("ok ...",
 * "fault ...", "err ERRNO [what]"), and drives the scenario processes. It keeps the handles
 * (io_uring rings, pipes), and on `reset`, `quit` or the end of its input it releases every
 * handle and kills and reaps every scenario process, so nothing outlives a scenario.
 * Commands: probe; spawn ID; mmap ID ADDR PAGES FLAGS; munmap ID ADDR PAGES; mremap ID ADDR PAGES NEWADDR;
 * mprotect ID ADDR PAGES PROT; madvise ID ADDR PAGES ADVICE; write ID ADDR PAGES WORD;
 * read ID ADDR; fork ID NEWID; exit ID; clearrefs ID VALUE; minflt ID; pin ID H ADDR PAGES;
 * uffdreg ID ADDR PAGES FORKEV; uffdwp ID ADDR PAGES WP; uffdfaults ID (agent_uffd.c);
 * thpscan ID ADDR PAGES (thp.c);
 * vmsplice ID H ADDR PAGES; hread H K; hwrite H K WORD; release H; census; reset; quit;
 * swapon PAGES DIR...; swapinfo; swapoff; swaphold; ksmhold; ksm PASSES TIMEOUT_MS (system.c:
 * hugetlb N (hugetlb.c); khpause (khugepaged.c);
 * what they change on the machine is put back on swapoff, quit, end of input, a lost driver,
 * SIGINT, SIGTERM and SIGHUP; a signal never leaves the agent blocked: agent_procs.c).
 * Numbers are decimal except WORD (hex). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t agent_pid;
static int agent_cpu = -1;

static void reset_all(void);

/* The driver is gone: undo everything, then go. */
static void agent_abort(void) __attribute__((noreturn));
static void agent_abort(void)
{
	reset_all();
	system_cleanup();
	_exit(1);
}

void say(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			agent_abort(); /* the driver is gone */
		off += (int)w;
	}
}

static int prot_code(const char *s)
{
	if (!strcmp(s, "rw"))
		return PROT_READ | PROT_WRITE;
	if (!strcmp(s, "ro"))
		return PROT_READ;
	if (!strcmp(s, "none"))
		return PROT_NONE;
	return -1;
}

static int advice_code(const char *s)
{
	static const struct { const char *name; int code; } tab[] = {
		{ "dontfork", MADV_DONTFORK }, { "dofork", MADV_DOFORK },
		{ "wipeonfork", MADV_WIPEONFORK }, { "keeponfork", MADV_KEEPONFORK },
		{ "dontneed", MADV_DONTNEED }, { "mergeable", MADV_MERGEABLE },
		{ "pageout", 21 /* MADV_PAGEOUT */ },
		{ "collapse", 25 /* MADV_COLLAPSE, 6.1+ */ },
		{ "hugepage", MADV_HUGEPAGE }, { "nohugepage", MADV_NOHUGEPAGE },
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (!strcmp(s, tab[i].name))
			return tab[i].code;
	return -1;
}

/* Releases every handle, then kills and reaps every scenario process. */
static void reset_all(void)
{
	handles_reset();
	procs_reset();
	uffd_reset();
	system_release_holds();
}

static void census(void)
{
	int np = 0, nh = 0;
	for (int i = 0; i < MAXP; i++)
		np += procs[i].used && procs[i].alive;
	for (int i = 0; i < MAXH; i++)
		nh += handles[i].used;
	say("ok procs=%d handles=%d", np, nh);
}

static unsigned long long num(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

static unsigned long long hex(const char *s)
{
	return s ? strtoull(s, NULL, 16) : 0;
}

static void dispatch(char *line)
{
	char *tok[8] = { 0 };
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " ", &save); t && n < 8; t = strtok_r(NULL, " ", &save))
		tok[n++] = t;
	if (n == 0) {
		say("err %d empty", EINVAL);
		return;
	}
	const char *c = tok[0];
	if (!strcmp(c, "probe")) {
		char buf[PROBE_LEN];
		probe_report(buf, sizeof buf);
		say("ok %s cpu=%d agent=%d", buf, agent_cpu, (int)agent_pid);
		return;
	}
	if (!strcmp(c, "spawn")) {
		cmd_spawn((int)num(tok[1]));
		return;
	}
	if (!strcmp(c, "census")) {
		census();
		return;
	}
	if (!strcmp(c, "swapon")) {
		cmd_swapon(tok, n);
		return;
	}
	if (!strcmp(c, "swapinfo")) {
		cmd_swapinfo();
		return;
	}
	if (!strcmp(c, "swapoff")) {
		cmd_swapoff();
		return;
	}
	if (!strcmp(c, "ksmhold")) {
		cmd_ksmhold();
		return;
	}
	if (!strcmp(c, "swaphold")) {
		cmd_swaphold();
		return;
	}
	if (!strcmp(c, "ksm")) {
		cmd_ksm(num(tok[1]), num(tok[2]), tok[3] ? (int)num(tok[3]) : 0);
		return;
	}
	if (!strcmp(c, "hugetlb")) {
		cmd_hugetlb(num(tok[1]));
		return;
	}
	if (!strcmp(c, "khpause")) {
		cmd_khpause();
		return;
	}
	if (!strcmp(c, "reset")) {
		reset_all();
		say("ok");
		return;
	}
	if (!strcmp(c, "hread") || !strcmp(c, "hwrite") || !strcmp(c, "release")) {
		struct handle *h = handle_by_id((int)num(tok[1]));
		if (!h)
			say("err %d no such handle", EBADF);
		else if (c[1] == 'r')
			cmd_hread(h, num(tok[2]));
		else if (c[1] == 'w')
			cmd_hwrite(h, num(tok[2]), hex(tok[3]));
		else {
			release(h);
			say("ok");
		}
		return;
	}
	struct sproc *p = proc_by_id((int)num(tok[1]));
	if (!p) {
		say("err %d no such process", ESRCH);
		return;
	}
	if (!strcmp(c, "minflt")) {
		say("ok %llu", (unsigned long long)p->minflt);
		return;
	}
	if (!strcmp(c, "thpscan")) {
		cmd_thpscan(p, num(tok[2]), num(tok[3]));
		return;
	}
	if (!strcmp(c, "uffdfaults")) {
		cmd_uffd_faults(p->id);
		return;
	}
	if (!p->alive) {
		say("err %d dead", ECHILD);
		return;
	}
	struct req q = { .addr = num(tok[2]), .pages = num(tok[3]) };
	if (!strcmp(c, "mmap")) {
		q.op = OP_MMAP;
		q.flags = (uint32_t)num(tok[4]);
	} else if (!strcmp(c, "munmap")) {
		q.op = OP_MUNMAP;
	} else if (!strcmp(c, "mremap")) {
		q.op = OP_MREMAP;
		q.word = num(tok[4]);
	} else if (!strcmp(c, "mprotect") || !strcmp(c, "madvise")) {
		int code = c[1] == 'p' ? prot_code(tok[4] ? tok[4] : "") : advice_code(tok[4] ? tok[4] : "");
		if (code < 0) {
			say("err %d bad argument", EINVAL);
			return;
		}
		q.op = c[1] == 'p' ? OP_MPROTECT : OP_MADVISE;
		q.flags = (uint32_t)code;
	} else if (!strcmp(c, "write")) {
		q.op = OP_WRITE;
		q.word = hex(tok[4]);
	} else if (!strcmp(c, "read")) {
		q.op = OP_READ;
		q.pages = 1;
	} else if (!strcmp(c, "clearrefs")) {
		q = (struct req){ .op = OP_CLEAR_REFS, .flags = (uint32_t)num(tok[2]) };
	} else if (!strcmp(c, "uffdreg") || !strcmp(c, "uffdwp")) {
		if (!tok[4]) {
			say("err %d bad argument", EINVAL);
			return;
		}
		if (c[4] == 'r')
			cmd_uffd_register(p, num(tok[2]), num(tok[3]), (int)num(tok[4]));
		else
			cmd_uffd_wp(p, num(tok[2]), num(tok[3]), (int)num(tok[4]));
		return;
	} else if (!strcmp(c, "nop")) {
		q = (struct req){ .op = OP_NOP };
	} else if (!strcmp(c, "fork")) {
		cmd_fork(p, (int)num(tok[2]));
		return;
	} else if (!strcmp(c, "exit")) {
		cmd_exit(p);
		return;
	} else if (!strcmp(c, "pin") || !strcmp(c, "vmsplice")) {
		int hid = (int)num(tok[2]);
		if (c[0] == 'p')
			cmd_pin(p, hid, num(tok[3]), num(tok[4]));
		else
			cmd_vmsplice(p, hid, num(tok[3]), num(tok[4]));
		return;
	} else {
		say("err %d unknown command", EINVAL);
		return;
	}
	cmd_simple(p, &q);
}

/* stdin and stdout arrive as read-write descriptors of FIFOs (so the driver's opens never
 * block); reopen them one-way so that our end of file is the driver's, and its ours. */
static void one_way(int fd, int flags)
{
	struct stat st;
	char path[64];
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int nfd = open(path, flags);
	if (nfd >= 0 && nfd != fd) {
		dup2(nfd, fd);
		close(nfd);
	}
}

int agent_main(void)
{
	static char buf[8192];
	size_t len = 0;
	agent_pid = getpid();
	one_way(0, O_RDONLY);
	one_way(1, O_WRONLY);
	signal(SIGPIPE, SIG_IGN);
	system_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	agent_cpu = pin_one_cpu();
	int rc = handles_init();
	if (rc < 0) {
		say("err %d memfd", -rc);
		return 1;
	}
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (!nl) {
			if (len == sizeof buf) { /* a line too long: drop it */
				say("err %d line too long", E2BIG);
				len = 0;
			}
			ssize_t n = read(0, buf + len, sizeof buf - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			continue;
		}
		*nl = 0;
		size_t used = (size_t)(nl - buf) + 1;
		if (!strcmp(buf, "quit")) {
			reset_all();
			system_cleanup();
			say("bye");
			return 0;
		}
		dispatch(buf);
		reap();
		memmove(buf, buf + used, len - used);
		len -= used;
	}
	reset_all();
	system_cleanup();
	return 0;
}
