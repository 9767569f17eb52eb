/* ---- cowlab export: the reproducer's runtime -------------------------------------------------
 *
 * `cowlab export` writes one C file: the oracle helper's own C sources (all of oracle/ but agent.c
 * and main.c, which are the helper's command loop), then this runtime, then the scenario's
 * steps and the model's answers as data. The program is the oracle's agent and its driver in
 * one: this process holds the handles (io_uring rings, vmsplice pipes) and coordinates one
 * real process per scenario process over a socket each (scenario_proc.c), one step at a time
 * in the file's order; each step is replayed as src/oracle/replay.ts replays it, every
 * observation is paired with the model's as src/oracle/oracle.ts pairs them, and each pair is
 * one line: PASS (the kernel shows what the model says), FAIL (it does not) or SKIP (not
 * comparable here, with the reason).
 *
 * The agent's functions answer with say(); here say() keeps the line, and the replay reads it.
 * This file is a template: the generated part defines the scenario's tables (NAMES, REGIONS,
 * HANDLES, VALUES) where @@TABLES@@ stands, and the model's answers (VARIANTS), the steps
 * and main() after the runtime. */

#include <stdarg.h>
#include <sched.h>
#include <sys/utsname.h>

pid_t agent_pid;

/* ---- the generated part's types ---------------------------------------------------------- */

/* A model observation: its kind, what it is about, and the model's answer. */
struct mobs {
	const char *kind, *what, *actual;
};

/*
 * What the model holds after a step that takes a handle (src/oracle/types.ts ModelHandle, from
 * the model's second run, src/oracle/oracle.ts probeModel): the note after a handle this run
 * cannot take says it, and a device writes through it only where the model holds pages of it.
 */
struct mhandle {
	/* A device-exclusive grant, or a GUP handle (pin, gup, vmsplice). */
	int exclusive;
	/* The model's answer to the step ("ok", "EFAULT", "EBUSY", ...; NULL: it made none, its process is gone). */
	const char *answer;
	/* Pages the model holds through it (0: its call failed), of pages asked for. */
	int held, pages;
};

/* The model's observations of one step (its own record, then the swap/KSM extras). */
struct mstep {
	int n;
	const struct mobs *obs;
	/* The model keeps this many swap-cache pages no one maps or holds: frames_used not compared. */
	int hidden_swapcache;
	/* What the model holds after the step, when it takes a handle (NULL otherwise). */
	const struct mhandle *handle;
};

/* The model on one kind of machine: [0] a read fault maps the zero page, [1] it does not. */
struct variant {
	const char *profile;
	/* Why the scenario cannot make its point on such a kernel (NULL: it can). */
	const char *skip;
	/* Steps the model runs (it is n/a from this step on when less than the scenario's). */
	int count;
	const char *na;
	const struct mstep *steps;
};

struct vword {
	uint64_t word;
	const char *name;
};

struct stepdef {
	int line;
	const char *text;
	void (*run)(void);
};

/* @@TABLES@@ */

/* ---- answers of the agent's functions ---------------------------------------------------- */

static char ans[1024];
static char *tok[16];
static int ntok;

void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ans, sizeof ans, fmt, ap);
	va_end(ap);
	static char copy[1024];
	memcpy(copy, ans, sizeof copy);
	ntok = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, " ", &save); t && ntok < 15; t = strtok_r(NULL, " ", &save))
		tok[ntok++] = t;
	tok[ntok] = NULL;
}

/* A string copied into a buffer, cut to its size. */
static void sset(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static int ans_is(const char *w)
{
	return ntok > 0 && !strcmp(tok[0], w);
}

static const char *ans_rest(int from)
{
	/* the answer's words from `from` on, as one string */
	const char *p = ans;
	for (int i = 0; i < from && *p; i++) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return p;
}

static const char *errno_name(int e)
{
	static char buf[32];
	static const struct { int n; const char *s; } tab[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" }, { EINTR, "EINTR" }, { EIO, "EIO" },
		{ E2BIG, "E2BIG" }, { EBADF, "EBADF" }, { ECHILD, "ECHILD" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
		{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { EINVAL, "EINVAL" },
		{ ENFILE, "ENFILE" }, { EMFILE, "EMFILE" }, { ENOSPC, "ENOSPC" }, { ENOSYS, "ENOSYS" },
		{ EOPNOTSUPP, "ENOTSUP" }, { ETIMEDOUT, "ETIMEDOUT" },
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (tab[i].n == e)
			return tab[i].s;
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

static int ans_errno(void)
{
	return ntok > 1 ? atoi(tok[1]) : 0;
}

/* ---- what this machine offers (probe.c, as src/oracle/facilities.ts reads it) ------------ */

static struct {
	int root, uring, uring_err, pfns, zero_page, kpageflags, soft_dirty, ksm, uffd;
	uint64_t zero_pfn;
	char uring_why[200];
	char uffd_why[300];
	char swap_why[1200];
	int swap_on;
	char kernel[200];
} fac;

static long probe_num(const char *report, const char *key)
{
	char k[40];
	snprintf(k, sizeof k, " %s=", key);
	char buf[1024];
	snprintf(buf, sizeof buf, " %s", report);
	const char *p = strstr(buf, k);
	return p ? strtol(p + strlen(k), NULL, 10) : 0;
}

static int probe_has(const char *report, const char *key)
{
	char k[40];
	snprintf(k, sizeof k, " %s=", key);
	char buf[1024];
	snprintf(buf, sizeof buf, " %s", report);
	return strstr(buf, k) != NULL;
}

#define NO_PFNS "pagemap hides frame numbers from this user (reading them needs CAP_SYS_ADMIN: run as root)"
#define NO_KPAGEFLAGS "/proc/kpageflags is not readable here or does not show PG_anon_exclusive (bit 34) (needs root and Linux 6.x)"

static void probe_machine(void)
{
	char rep[768];
	probe_report(rep, sizeof rep);
	struct utsname u;
	if (uname(&u) == 0)
		sset(fac.kernel, sizeof fac.kernel, u.release);
	fac.root = geteuid() == 0;
	long uring = probe_num(rep, "uring");
	fac.uring = uring == 0;
	if (!fac.uring)
		snprintf(fac.uring_why, sizeof fac.uring_why, "io_uring buffer registration fails here (%s%s)", errno_name((int)-uring),
			 -uring == 38 ? ": no io_uring in this kernel" : -uring == 1 ? ": io_uring is disabled (kernel.io_uring_disabled) or not allowed" : "");
	fac.pfns = probe_num(rep, "pfns") == 1;
	fac.zero_page = probe_num(rep, "zeropage") != 0;
	/* From the read fault, else from the THP split probe (as facilities.ts: a kernel with no zero
	 * page on read faults still maps it where a THP split or KSM's use_zero_pages puts it). */
	fac.zero_pfn = (uint64_t)probe_num(rep, "zeropfn");
	if (fac.zero_pfn == 0)
		fac.zero_pfn = (uint64_t)probe_num(rep, "splitzeropfn");
	fac.kpageflags = probe_num(rep, "kpageflags") == 1 && probe_num(rep, "anonexcl") == 1;
	fac.soft_dirty = probe_num(rep, "softdirty") == 1;
	fac.ksm = !(probe_has(rep, "ksmrun") && probe_num(rep, "ksmrun") < 0);
	long uffd = probe_has(rep, "uffd") ? probe_num(rep, "uffd") : -1;
	fac.uffd = uffd == 0;
	if (!fac.uffd)
		snprintf(fac.uffd_why, sizeof fac.uffd_why, "userfaultfd write-protect is unavailable here (%s)",
			 probe_has(rep, "uffd") ? errno_name((int)-uffd) : "the helper did not probe userfaultfd");
	/* As `cowlab oracle --zero-page yes|no`: take this as the probe's answer (shows what the
	 * other kind of machine compares; expect disagreements). */
	const char *zp = getenv("COWLAB_ZERO_PAGE");
	int forced = zp && (!strcmp(zp, "yes") || !strcmp(zp, "no"));
	if (forced)
		fac.zero_page = !strcmp(zp, "yes");
	printf("# kernel %s; %s; zero page on read fault: %s%s; frame numbers: %s; kpageflags: %s; io_uring: %s\n", fac.kernel,
	       fac.root ? "root" : "not root", fac.zero_page ? "yes" : "no", forced ? " [forced by COWLAB_ZERO_PAGE, not probed]" : "", fac.pfns ? "yes" : "hidden",
	       fac.kpageflags ? "yes" : "no", fac.uring ? "yes" : fac.uring_why);
}

/* ---- /proc readers (src/oracle/procfs.ts) ------------------------------------------------- */

struct pme {
	int present, once, swapped, uffd_wp;
	uint64_t pfn;
};

static void pagemap_read(pid_t pid, uint64_t vpn, uint64_t n, struct pme *out)
{
	char path[64];
	uint64_t buf[512];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	for (uint64_t i = 0; i < n;) {
		uint64_t k = n - i < 512 ? n - i : 512;
		ssize_t got = fd < 0 ? -1 : pread(fd, buf, k * 8, (off_t)((vpn + i) * 8));
		for (uint64_t j = 0; j < k; j++) {
			uint64_t e = got >= 0 && (uint64_t)got >= (j + 1) * 8 ? buf[j] : 0;
			struct pme *o = &out[i + j];
			o->present = (int)(e >> 63 & 1);
			o->pfn = o->present ? e & ((1ULL << 55) - 1) : 0;
			o->once = (int)(e >> 56 & 1);
			o->swapped = (int)(e >> 62 & 1);
			o->uffd_wp = (int)(e >> 57 & 1); /* PM_UFFD_WP */
		}
		i += k;
	}
	if (fd >= 0)
		close(fd);
}

static struct pme pagemap_one(pid_t pid, uint64_t vpn)
{
	struct pme e;
	pagemap_read(pid, vpn, 1, &e);
	return e;
}

/* The kpageflags word of a frame; -1 when it cannot be read. */
static int kpageflags_of(uint64_t pfn, uint64_t *flags)
{
	static int fd = -1;
	if (fd < 0)
		fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	return pread(fd, flags, 8, (off_t)(pfn * 8)) == 8 ? 0 : -1;
}
#define KPF_ANON 12
#define KPF_KSM 21
#define KPF_ANON_EXCLUSIVE 34

/*
 * The value of the field NAME of /proc/PID/FILE (a line "NAME:" then blanks, then the value),
 * up to the end of its line, in out; -1 when the file (the process is gone) or the field (this
 * kernel does not have it) is missing.
 */
static int proc_field(pid_t pid, const char *file, const char *name, char *out, size_t len)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	if (read_str(path, buf, sizeof buf) < 0)
		return -1;
	size_t n = strlen(name);
	char *p = buf;
	while ((p = strstr(p, name)) && ((p != buf && p[-1] != '\n') || p[n] != ':'))
		p += n;
	if (!p)
		return -1;
	p += n + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t k = strcspn(p, "\n");
	if (k >= len)
		k = len - 1;
	memcpy(out, p, k);
	out[k] = 0;
	return 0;
}

/* ksm_mergeable of /proc/PID/ksm_stat: 1 yes, 0 no, -1 the kernel does not say. */
static int ksm_mergeable(pid_t pid)
{
	char v[16];
	if (proc_field(pid, "ksm_stat", "ksm_mergeable", v, sizeof v) < 0)
		return -1;
	return !strncmp(v, "yes", 3) ? 1 : !strncmp(v, "no", 2) ? 0 : -1;
}

static void ksm_run_now(char *out, size_t len)
{
	if (read_str("/sys/kernel/mm/ksm/run", out, len) < 0 || !out[0])
		snprintf(out, len, "none");
}

/* VmPTE of a process in kB; -1 when it is gone. */
static long vm_pte_kb(pid_t pid)
{
	char v[32];
	return proc_field(pid, "status", "VmPTE", v, sizeof v) < 0 ? -1 : strtol(v, NULL, 10);
}

/* ---- comparability (src/oracle/comparable.ts) -------------------------------------------- */

enum { A_FRAMES = 1, A_STATS = 2, A_MINFLT = 4, A_VALUES = 8, A_SHORTREFS = 16, A_ALL = 32 };
#define N_ASPECTS 6
static char lost[N_ASPECTS][700];

static int aspect_index(int a)
{
	int i = 0;
	while (a > 1) {
		a >>= 1;
		i++;
	}
	return i;
}

static void lose(int aspect, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lose(int aspect, const char *fmt, ...)
{
	char *slot = lost[aspect_index(aspect)];
	if (slot[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(slot, sizeof lost[0], fmt, ap);
	va_end(ap);
}

static const char *why_lost(int aspect)
{
	if (lost[aspect_index(A_ALL)][0])
		return lost[aspect_index(A_ALL)];
	const char *s = lost[aspect_index(aspect)];
	return s[0] ? s : NULL;
}

static const char *for_observation(const char *kind, const char *what, int short_ref)
{
	if (lost[aspect_index(A_ALL)][0])
		return lost[aspect_index(A_ALL)];
	if (!strcmp(kind, "frame") || !strcmp(kind, "mapped") || !strcmp(kind, "exclusive") || !strcmp(kind, "swap") || !strcmp(kind, "ksm"))
		return why_lost(A_FRAMES);
	if (!strcmp(kind, "stat")) {
		const char *w = why_lost(A_STATS);
		return w ? w : !strncmp(what, "minflt.", 7) ? why_lost(A_MINFLT) : NULL;
	}
	if (!strcmp(kind, "read"))
		return why_lost(A_VALUES);
	if (!strcmp(kind, "handle-read")) {
		const char *w = why_lost(A_VALUES);
		return w ? w : short_ref ? why_lost(A_SHORTREFS) : NULL;
	}
	return NULL;
}

/* ---- the replay's state (src/oracle/replay.ts) ------------------------------------------- */

#define RP_MAX 64
#define RP_MAXRANGES 256
#define MMAP_BASE_VPN (1ULL << 28)
#define PMD_PAGES 512

struct kregion {
	int set, shared;
	uint64_t vpn, n;
	int hugetlb; /* MAP_HUGETLB: not in rss, AnonPages or frames_used (as in the model) */
};

struct kproc {
	int id, name, mergeable, alive;
	pid_t pid;
	uint64_t members; /* bit i: NAMES[i] runs in it */
	struct kregion regions[RP_MAX];
	struct kregion ranges[RP_MAXRANGES];
	int nranges;
	uint64_t next_vpn;
	long helper_pt;
	int uffd_fork_event; /* `uffd fork-event on` was asked (chosen at the context's first registration) */
	int uffd_ctx;        /* its userfaultfd context exists (registered, or handed over by the fork event) */
};

struct khandle {
	int held, missing, missing_writable, id, pipe;
	int model_known; /* missing: the model's answer is known to this run (its device wrote, or may have) */
	uint64_t pages;
	uint64_t *pfns; /* the frames it holds (recorded when taken) */
	uint64_t npfns;
	char why[600];
};

static struct kproc kprocs[RP_MAX];
static int nkprocs;
static int name_proc[RP_MAX]; /* NAMES[i] -> kprocs index + 1 (0: none) */
static struct khandle khandles[RP_MAX];
static int next_id = 1, ksm_held, swap_held, any_shared;
static char run_error[800];

/* One observation of the kernel. */
struct kobs {
	char kind[16], what[256], actual[1024], skip[800];
	int has_actual, has_skip;
};
#define MAX_OBS 32
static struct kobs kobs[MAX_OBS];
static int nkobs;
static char note[1200], step_skip[1200];
static int have_step_skip, cur_line;
static sigjmp_buf step_jmp;

static int n_pass, n_fail, n_skip;

static void obs_add(const char *kind, const char *what, const char *actual, const char *skip)
{
	if (nkobs >= MAX_OBS)
		return;
	struct kobs *o = &kobs[nkobs++];
	sset(o->kind, sizeof o->kind, kind);
	sset(o->what, sizeof o->what, what);
	o->has_actual = actual != NULL;
	sset(o->actual, sizeof o->actual, actual ? actual : "");
	o->has_skip = skip != NULL;
	sset(o->skip, sizeof o->skip, skip ? skip : "");
}

static void observe(const char *kind, const char *what, const char *actual, int short_ref)
{
	obs_add(kind, what, actual, for_observation(kind, what, short_ref));
}

static void observe_skipped(const char *kind, const char *what, const char *why)
{
	obs_add(kind, what, NULL, why);
}

static void set_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(step_skip, sizeof step_skip, fmt, ap);
	va_end(ap);
	have_step_skip = 1;
}

/* The replay cannot go on (a process died, an operation that must work did not). */
static void rp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void rp_fail(const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(run_error, sizeof run_error, "line %d: %s", cur_line, msg);
	set_skip("the helper failed here: %s", msg);
	lose(A_ALL, "not replayed: the helper failed at line %d", cur_line);
	siglongjmp(step_jmp, 1);
}

/* An answer of the agent that says a scenario process died ends the replay. */
static void check_answer(const char *cmd)
{
	if (ans_is("err") && ntok > 2 && !strcmp(tok[2], "dead"))
		rp_fail("a scenario process died or hung (%s)", cmd);
}

static struct kproc *live(int name)
{
	if (name < 0 || !name_proc[name])
		return NULL;
	struct kproc *p = &kprocs[name_proc[name] - 1];
	return p->alive && (p->members >> name & 1) ? p : NULL;
}

static struct kregion *region_of(struct kproc *p, int region)
{
	struct kregion *r = &p->regions[region];
	if (!r->set)
		rp_fail("no region %s in the replay", REGIONS[region]);
	return r;
}

static uint64_t addr_of(struct kproc *p, int region, uint64_t i)
{
	return (region_of(p, region)->vpn + i) * PAGE_BYTES;
}

static struct sproc *sp(struct kproc *p)
{
	struct sproc *s = proc_by_id(p->id);
	if (!s)
		rp_fail("process %s is unknown to the agent", NAMES[p->name]);
	return s;
}

/* The frame a page maps (-1: not mapped) and whether it is mapped once. */
static int64_t page_at(int name, int region, uint64_t i, int *once)
{
	struct kproc *p = live(name);
	*once = 0;
	if (!p)
		return -1;
	struct pme e = pagemap_one(p->pid, region_of(p, region)->vpn + i);
	*once = e.present && e.once;
	return e.present ? (int64_t)e.pfn : -1;
}

static const char *value_name(uint64_t w, int uniform)
{
	static char buf[200];
	const char *name = NULL;
	for (int i = 0; i < N_VALUES; i++)
		if (VALUES[i].word == w)
			name = VALUES[i].name;
	char v[80];
	if (name)
		sset(v, sizeof v, name);
	else
		snprintf(v, sizeof v, "?0x%llx", (unsigned long long)w);
	snprintf(buf, sizeof buf, "%s%s", v, uniform ? "" : " (torn: the page holds more than one value)");
	return buf;
}

static void simple(struct kproc *p, uint32_t op, uint32_t flags, uint64_t addr, uint64_t pages, uint64_t word, const char *cmd)
{
	struct req q = { .op = op, .flags = flags, .addr = addr, .pages = pages, .word = word };
	cmd_simple(sp(p), &q);
	reap();
	check_answer(cmd);
}

/* ---- steps ------------------------------------------------------------------------------- */

/* The model's step being replayed (run_scenario sets it): its observations, and what it holds after it. */
static const struct mstep *cur_model;

/* What the model holds after the current step, when it took a handle (NULL: not known to this run). */
static const struct mhandle *model_handle(void)
{
	return cur_model ? cur_model->handle : NULL;
}

/*
 * What the model holds of a handle this run could not take (src/oracle/replay.ts modelHolds), in
 * what, and what of it may change frames and counters, returned.
 */
static const char *model_holds(char *what, size_t size, const char *handle, int line, const struct mhandle *m)
{
	if (!m) {
		snprintf(what, size, "this run could not take %s (line %d), which the model may hold", handle, line);
		return "what the model did for it";
	}
	if (!m->answer) {
		snprintf(what, size, "the model took no %s (line %d: its process is gone there) and this run could not take it", handle, line);
		return "what the two runs' processes did differently";
	}
	const char *kept = m->exclusive ? "its device-exclusive entries" : "its references and unsharing";
	if (m->held == m->pages) {
		snprintf(what, size, "the model holds %s (line %d), which this run could not take", handle, line);
		return kept;
	}
	const char *call = m->exclusive ? "device-exclusive request" : "GUP";
	if (m->held > 0) {
		snprintf(what, size, "the model holds %d of the %d pages of %s (line %d: its %s ended %s), which this run could not take", m->held, m->pages,
			 handle, line, call, m->answer);
		return kept;
	}
	if (m->exclusive) {
		snprintf(what, size, "the model's %s for %s (line %d) failed with %s: it holds none of its pages, and this run none either", call, handle, line,
			 m->answer);
		return "the faults and conversions it did before failing";
	}
	snprintf(what, size, "the model's %s for %s (line %d) failed with %s (no handle on either side)", call, handle, line, m->answer);
	return "the faults and unsharing it did before failing";
}

/* Frame sharing, counters and short-term references are not compared after a handle this run could not take; the note says what the model holds of it (m). */
static void lose_for_missing_handle(const char *handle, int line, const struct mhandle *m)
{
	char what[400];
	const char *did = model_holds(what, sizeof what, handle, line, m);
	lose(A_FRAMES, "%s: %s may change frame sharing and counters from here on", what, did);
	lose(A_STATS, "%s: %s may change frame sharing and counters from here on", what, did);
	lose(A_SHORTREFS, "%s: what short-term references see depends on which pages get copied", what);
}

/* A handle this run cannot take (why): its later steps are skipped; whether the model's device may write through it, and the note, come from the model's answer. */
static void mark_missing(int handle, int writable, const char *why)
{
	const struct mhandle *m = model_handle();
	struct khandle *h = &khandles[handle];
	h->missing = 1;
	/* A handle the model does not hold either gives its device nothing to write through. */
	h->missing_writable = writable && (!m || m->held > 0);
	h->model_known = m != NULL;
	sset(h->why, sizeof h->why, why);
	set_skip("%s", why);
}

/* An operation this run does not perform: skip it (reason), and stop comparing what it may change (mask), saying what the model did (said). */
static void not_replayed_as(const char *reason, const char *said, int mask)
{
	if (mask & A_ALL) {
		set_skip("%s", reason);
		lose(A_ALL, "not compared after line %d: %s", cur_line, reason);
		return;
	}
	set_skip("%s", reason);
	for (int a = 1; a < A_ALL; a <<= 1)
		if (mask & a)
			lose(a, "%s and this run could not: %s may differ from here on", said,
			     a == A_VALUES ? "values" : "frame sharing, counters and what short-term references see");
}

/* An operation this run does not perform (src/oracle/system-ops.ts gives reason, did, lose). */
static void not_replayed(const char *reason, const char *did, int mask)
{
	char said[300];
	snprintf(said, sizeof said, "the model %s at line %d", did, cur_line);
	not_replayed_as(reason, said, mask);
}

/*
 * A swapout, pageout (kind "swap") or ksm merge (kind "ksm") this run could not do: the note says
 * what the model did, from its own row after it among the step's model observations
 * (src/oracle/replay.ts modelDid), claiming no more; did: what it may have done, where no row is known.
 */
static void system_not_replayed(const char *reason, const char *kind, const char *did, int mask)
{
	const struct mobs *row = NULL;
	for (int i = 0; cur_model && i < cur_model->n; i++)
		if (!strcmp(cur_model->obs[i].kind, kind))
			row = &cur_model->obs[i];
	char said[700];
	if (!row)
		snprintf(said, sizeof said, "the model may have %s at line %d", did, cur_line);
	else if (!strcmp(kind, "ksm"))
		snprintf(said, sizeof said, "the model's ksm merge at line %d left %.500s mapping a KSM page", cur_line, strcmp(row->actual, "none") ? row->actual : "no page");
	else if (!strcmp(row->actual, "swapped"))
		snprintf(said, sizeof said, "the model swapped out every page of %.200s at line %d", row->what, cur_line);
	else
		snprintf(said, sizeof said, "the model swapped out %s of %.200s at line %d (%.400s)", strstr(row->actual, "swapped") ? "part" : "none", row->what,
			 cur_line, row->actual);
	not_replayed_as(reason, said, mask);
}

static void __attribute__((unused)) rp_not_replayed(const char *reason, const char *did, int mask)
{
	not_replayed(reason, did, mask);
}

/* MMAP_HUGETLB while rp_mmap_hugetlb maps (below). */
static uint32_t mmap_extra;

static void __attribute__((unused)) rp_mmap(int name, int region, uint64_t pages, int prot, int shared, int populate, int thp,
					     const char *thp_reason)
{
	struct kproc *p = name_proc[name] ? &kprocs[name_proc[name] - 1] : NULL;
	if (!p) {
		int id = next_id++;
		cmd_spawn(id);
		reap();
		if (!ans_is("ok"))
			rp_fail("cannot start process %s: %s", NAMES[name], errno_name(ans_errno()));
		if (nkprocs >= RP_MAX)
			rp_fail("more than %d processes in one run", RP_MAX);
		p = &kprocs[nkprocs++];
		memset(p, 0, sizeof *p);
		p->id = id;
		p->pid = (pid_t)atoi(tok[1]);
		p->name = name;
		p->alive = 1;
		p->members = 1ULL << name;
		p->next_vpn = MMAP_BASE_VPN;
		long pt = vm_pte_kb(p->pid);
		p->helper_pt = pt < 0 ? 0 : pt;
		name_proc[name] = nkprocs;
	} else if (!live(name)) {
		return;
	}
	if (thp) {
		not_replayed(thp_reason, "", A_ALL);
		return;
	}
	uint64_t start = p->next_vpn;
	if (pages >= PMD_PAGES)
		start = (start + PMD_PAGES - 1) / PMD_PAGES * PMD_PAGES;
	p->next_vpn = start + pages;
	/* No THP in the reproducer: MADV_NOHUGEPAGE whatever this machine's THP mode (not on hugetlb). */
	uint32_t flags = (uint32_t)prot | (shared ? MMAP_SHARED : 0) | (populate ? MMAP_POPULATE : 0) | (mmap_extra ? mmap_extra : MMAP_NOTHP);
	simple(p, OP_MMAP, flags, start * PAGE_BYTES, pages, 0, "mmap");
	if (!ans_is("ok"))
		rp_fail("mmap of %llu page(s) at 0x%llx failed: %s", (unsigned long long)pages, (unsigned long long)(start * PAGE_BYTES),
			errno_name(ans_errno()));
	struct kregion g = { 1, shared, start, pages, (mmap_extra & MMAP_HUGETLB) != 0 };
	p->regions[region] = g;
	if (p->nranges < RP_MAXRANGES)
		p->ranges[p->nranges++] = g;
	if (shared)
		any_shared = 1;
	snprintf(note, sizeof note, "mapped at 0x%llx%s%s", (unsigned long long)(start * PAGE_BYTES), ntok > 1 ? "; populating failed: " : "",
		 ntok > 1 ? errno_name(ans_errno()) : "");
}

/* The hugetlb pool set to HUGETLB_POOL free unreserved huge pages before the first step, as
 * src/oracle/hugetlb.ts sets it (put back by system_release_holds at the end); NULL when done
 * (or no step maps hugetlb pages), else why the scenario is skipped. */
/* Why the model's answers do not hold here: they are for KSM use_zero_pages=KSM_USE_ZERO_PAGES
 * (config.ksm_use_zero_pages) and this machine has the other value (NULL: they hold). */
static const char *ksm_zero_pages_differ(void)
{
	static char why[300];
	long live = sysfs_num("/sys/kernel/mm/ksm/use_zero_pages");
	if (KSM_USE_ZERO_PAGES < 0 || live < 0 || live == KSM_USE_ZERO_PAGES)
		return NULL;
	snprintf(why, sizeof why, "the model's answers are for KSM use_zero_pages=%ld (config.ksm_use_zero_pages), "
		 "this machine has %ld (/sys/kernel/mm/ksm/use_zero_pages, left as it is)", KSM_USE_ZERO_PAGES, live);
	return why;
}

static const char *hugetlb_pool(void)
{
	static char why[300];
	if (HUGETLB_POOL <= 0)
		return NULL;
	if (!fac.root) {
		snprintf(why, sizeof why, "could not reserve %ld huge page(s): setting /proc/sys/vm/nr_hugepages needs root", HUGETLB_POOL);
		return why;
	}
	cmd_hugetlb((uint64_t)HUGETLB_POOL);
	if (!ans_is("ok") || ntok < 2 || atol(tok[1]) != HUGETLB_POOL) {
		snprintf(why, sizeof why, "could not reserve %ld huge page(s): %.200s", HUGETLB_POOL, ans);
		hugetlb_restore();
		return why;
	}
	return NULL;
}

/* `mmap ... hugetlb`: MAP_HUGETLB from the pool hugetlb_pool() set. */
static void __attribute__((unused)) rp_mmap_hugetlb(int name, int region, uint64_t pages, int prot, int populate)
{
	mmap_extra = MMAP_HUGETLB;
	rp_mmap(name, region, pages, prot, 0, populate, 0, NULL);
	mmap_extra = 0;
}

/* A fault answered with SIGBUS (hugetlb: no huge page for it): the kernel would have killed the process. */
static void killed_by_sigbus(struct kproc *p)
{
	if (ntok < 3 || atoi(tok[2]) != SIGBUS)
		return;
	cmd_exit(sp(p));
	reap();
	p->alive = 0;
	snprintf(note, sizeof note, "SIGBUS: the process is killed (hugetlb: no huge page for the fault)");
}

static void __attribute__((unused)) rp_munmap(int name, int region, uint64_t lo, uint64_t hi)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	simple(p, OP_MUNMAP, 0, (region_of(p, region)->vpn + lo) * PAGE_BYTES, hi - lo + 1, 0, "munmap");
	sset(note, sizeof note, ans_is("ok") ? "done" : "munmap failed");
}

/* mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of pages lo..hi to the range the model picks (as rp_mmap
 * places a mapping); the range becomes region `to`. */
static void __attribute__((unused)) rp_mremap(int name, int region, uint64_t lo, uint64_t hi, int to, const char *what)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	struct kregion *r = region_of(p, region);
	uint64_t n = hi - lo + 1, start = p->next_vpn;
	if (n >= PMD_PAGES)
		start = (start + PMD_PAGES - 1) / PMD_PAGES * PMD_PAGES;
	p->next_vpn = start + n;
	simple(p, OP_MREMAP, 0, (r->vpn + lo) * PAGE_BYTES, n, start * PAGE_BYTES, "mremap");
	struct kregion g = { 1, r->shared, start, n, r->hugetlb };
	p->regions[to] = g;
	if (p->nranges < RP_MAXRANGES)
		p->ranges[p->nranges++] = g;
	observe("mremap", what, ans_is("ok") ? "ok" : errno_name(ans_errno()), 0);
	snprintf(note, sizeof note, ans_is("ok") ? "moved to 0x%llx" : "mremap failed", (unsigned long long)(start * PAGE_BYTES));
}

static void __attribute__((unused)) rp_mprotect(int name, int region, uint64_t lo, uint64_t hi, int prot)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	simple(p, OP_MPROTECT, (uint32_t)prot, (region_of(p, region)->vpn + lo) * PAGE_BYTES, hi - lo + 1, 0, "mprotect");
	sset(note, sizeof note, ans_is("ok") ? "done" : "mprotect failed");
}

/* Before the scenario's first MADV_MERGEABLE: the KSM lock; and where ksmd runs anyway, frames
 * and counters are not compared (it may merge at any moment). */
static void hold_ksm(void)
{
	if (ksm_held)
		return;
	ksm_held = 1;
	char run[64], why[400] = "";
	if (fac.root) {
		cmd_ksmhold();
		if (!ans_is("ok")) {
			snprintf(why, sizeof why, "the KSM lock could not be had (%.200s): another oracle's ksm merge may merge this scenario's pages at any moment", ans_rest(2));
			goto out;
		}
		sset(run, sizeof run, ntok > 1 ? tok[1] : "none");
	} else {
		ksm_run_now(run, sizeof run);
	}
	if (strcmp(run, "0") && strcmp(run, "none"))
		snprintf(why, sizeof why, "KSM runs on this machine (/sys/kernel/mm/ksm/run = %s): ksmd may merge this scenario's mergeable pages at any moment", run);
out:
	if (why[0]) {
		lose(A_FRAMES, "%s", why);
		lose(A_STATS, "%s", why);
		sset(note, sizeof note, why);
	}
}

static void __attribute__((unused)) rp_madvise(int name, int region, uint64_t lo, uint64_t hi, int advice, int mergeable)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	struct kregion *r = region_of(p, region);
	if (mergeable)
		hold_ksm();
	simple(p, OP_MADVISE, (uint32_t)advice, (r->vpn + lo) * PAGE_BYTES, hi - lo + 1, 0, "madvise");
	sset(note, sizeof note, ans_is("ok") ? "done" : "madvise failed");
	if (mergeable && (ans_is("ok") || ans_errno() == ENOMEM) && !p->mergeable) {
		int m = ksm_mergeable(p->pid);
		p->mergeable = m >= 0 ? m : !r->shared;
	}
}

static void __attribute__((unused)) rp_write(int name, int region, uint64_t lo, uint64_t hi, uint64_t word, const char *what)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	simple(p, OP_WRITE, 0, addr_of(p, region, lo), hi - lo + 1, word, "write");
	if (ans_is("fault")) {
		char w[256];
		snprintf(w, sizeof w, "%s %s[%llu]", NAMES[name], REGIONS[region], (unsigned long long)(lo + strtoull(tok[1], NULL, 10)));
		observe("write", w, "fault", 0);
		killed_by_sigbus(p);
	} else {
		observe("write", what, "ok", 0);
	}
}

static void __attribute__((unused)) rp_read(int name, int region, uint64_t i, const char *what)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	simple(p, OP_READ, 0, addr_of(p, region, i), 1, 0, "read");
	if (ans_is("fault")) {
		observe("read", what, "fault", 0);
		killed_by_sigbus(p);
	} else {
		observe("read", what, value_name(ntok > 1 ? strtoull(tok[1], NULL, 16) : 0, ntok > 2 ? atoi(tok[2]) : 1), 0);
	}
}

static void __attribute__((unused)) rp_fork(int name, int child, const char *what)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	int id = next_id++;
	cmd_fork(sp(p), id);
	reap();
	check_answer("fork");
	if (!ans_is("ok")) {
		observe("fork", what, errno_name(ans_errno()), 0);
		return;
	}
	if (nkprocs >= RP_MAX)
		rp_fail("more than %d processes in one run", RP_MAX);
	struct kproc *c = &kprocs[nkprocs++];
	*c = *p;
	c->id = id;
	c->pid = (pid_t)atoi(tok[1]);
	c->name = child;
	c->alive = 1;
	c->members = 1ULL << child;
	/* With the fork event the child's context came to the monitor (the agent) with the fork. */
	c->uffd_fork_event = c->uffd_ctx = p->uffd_ctx && p->uffd_fork_event;
	name_proc[child] = nkprocs;
	observe("fork", what, "ok", 0);
}

static void __attribute__((unused)) rp_exit(int name)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	p->members &= ~(1ULL << name);
	if (p->members) {
		snprintf(note, sizeof note, "a thread exits; the process goes on");
		return;
	}
	cmd_exit(sp(p));
	reap();
	p->alive = 0;
	snprintf(note, sizeof note, "exited");
}

static void __attribute__((unused)) rp_thread(int name, int thread)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	/* Steps run one at a time, so a thread's steps are its process's steps. */
	p->members |= 1ULL << thread;
	name_proc[thread] = (int)(p - kprocs) + 1;
}

/* A handle this run cannot take (src/oracle/replay.ts missingHandle): skipped, with what it costs and what the model holds of it. */
static void __attribute__((unused)) rp_missing_handle(int name, int handle, const char *what, int writable, const char *why)
{
	if (!live(name))
		return;
	mark_missing(handle, writable, why);
	observe_skipped("gup", what, why);
	lose_for_missing_handle(HANDLES[handle], cur_line, model_handle());
}

/* Whether a page of [addr, addr + n pages) is one the userfaultfd monitor protected (PM_UFFD_WP, in a process with a userfaultfd context): src/oracle/replay.ts slowPinRefused. */
static int slow_pin_refused(struct kproc *p, uint64_t addr, uint64_t n)
{
	if (!p->uffd_ctx)
		return 0;
	struct pme *e = calloc(n, sizeof *e);
	if (!e)
		rp_fail("out of memory");
	pagemap_read(p->pid, addr / PAGE_BYTES, n, e);
	int wp = 0;
	for (uint64_t i = 0; i < n; i++)
		wp |= e[i].uffd_wp;
	free(e);
	return wp;
}

static int resource_error(int e)
{
	return e == ENOMEM || e == EPERM || e == EAGAIN || e == EMFILE || e == ENFILE || e == E2BIG;
}

/*
 * pin (io_uring buffer registration: FOLL_WRITE|FOLL_LONGTERM) or vmsplice into a pipe. slow_why:
 * a slow pin's (pin_user_pages) reason not to replay it over a page the monitor protected on this
 * kernel (src/ops/gup.ts SLOW_PIN_UFFD); NULL for the others.
 */
static void __attribute__((unused)) rp_take(int name, int region, uint64_t lo, uint64_t hi, int handle, int pipe, const char *what, const char *slow_why)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	if (!pipe && !fac.uring) {
		rp_missing_handle(name, handle, what, 1, fac.uring_why);
		return;
	}
	uint64_t n = hi - lo + 1, addr = addr_of(p, region, lo);
	if (slow_why && slow_pin_refused(p, addr, n)) {
		rp_missing_handle(name, handle, what, 1, slow_why);
		return;
	}
	int id = next_id++;
	if (pipe)
		cmd_vmsplice(sp(p), id, addr, n);
	else
		cmd_pin(sp(p), id, addr, n);
	reap();
	check_answer(pipe ? "vmsplice" : "pin");
	if (!ans_is("ok")) {
		int e = ans_errno();
		if (resource_error(e)) {
			char why[400];
			snprintf(why, sizeof why, "%s failed with %s here (a resource limit of this machine or user, e.g. RLIMIT_MEMLOCK or pipe-max-size)",
				 pipe ? "the pipe for vmsplice" : "IORING_REGISTER_BUFFERS", errno_name(e));
			rp_missing_handle(name, handle, what, !pipe, why);
			return;
		}
		observe("gup", what, errno_name(e), 0);
		return;
	}
	struct khandle *h = &khandles[handle];
	h->held = 1;
	h->id = id;
	h->pipe = pipe;
	h->pages = n;
	h->npfns = 0;
	free(h->pfns);
	h->pfns = NULL;
	if (fac.pfns) {
		struct pme *e = calloc(n, sizeof *e);
		h->pfns = calloc(n, sizeof *h->pfns);
		if (!e || !h->pfns)
			rp_fail("out of memory");
		pagemap_read(p->pid, addr / PAGE_BYTES, n, e);
		for (uint64_t i = 0; i < n; i++)
			if (e[i].present && e[i].pfn != 0 && e[i].pfn != fac.zero_pfn)
				h->pfns[h->npfns++] = e[i].pfn;
		free(e);
	}
	observe("gup", what, "ok", 0);
}

static void __attribute__((unused)) rp_handle_read(int handle, uint64_t i, int reader, const char *what)
{
	if (reader >= 0 && !live(reader))
		return;
	struct khandle *h = &khandles[handle];
	if (h->missing) {
		char why[700];
		snprintf(why, sizeof why, "no %s in this run: %s", HANDLES[handle], h->why);
		set_skip("%s", why);
		observe_skipped("handle-read", what, why);
		return;
	}
	if (!h->held)
		return;
	struct handle *ah = handle_by_id(h->id);
	if (!ah)
		rp_fail("handle %s is unknown to the agent", HANDLES[handle]);
	cmd_hread(ah, i);
	if (!ans_is("ok"))
		rp_fail("reading %s[%llu] failed: %s", HANDLES[handle], (unsigned long long)i, errno_name(ans_errno()));
	observe("handle-read", what, value_name(ntok > 1 ? strtoull(tok[1], NULL, 16) : 0, ntok > 2 ? atoi(tok[2]) : 1), h->pipe);
}

static void __attribute__((unused)) rp_device_write(int handle, uint64_t i, uint64_t word, int line)
{
	struct khandle *h = &khandles[handle];
	if (h->missing) {
		set_skip("no %s in this run: %s", HANDLES[handle], h->why);
		if (h->missing_writable)
			lose(A_VALUES, "the model's device %s through %s (line %d), which this run could not take", h->model_known ? "wrote" : "may have written",
			     HANDLES[handle], line);
		return;
	}
	if (!h->held || h->pipe)
		return; /* a pipe gives the device no write access */
	struct handle *ah = handle_by_id(h->id);
	if (!ah)
		rp_fail("handle %s is unknown to the agent", HANDLES[handle]);
	cmd_hwrite(ah, i, word);
	if (!ans_is("ok"))
		rp_fail("IORING_OP_READ_FIXED into %s[%llu] failed: %s", HANDLES[handle], (unsigned long long)i, errno_name(ans_errno()));
}

static void __attribute__((unused)) rp_release(int handle)
{
	struct khandle *h = &khandles[handle];
	if (h->missing) {
		h->missing = 0;
		set_skip("no %s in this run (it could not be taken)", HANDLES[handle]);
		return;
	}
	if (!h->held)
		return;
	struct handle *ah = handle_by_id(h->id);
	if (ah)
		release(ah);
	h->held = 0;
}

/* A device-exclusive grant needs a driver: a handle this run cannot take (src/oracle/system-ops.ts says why), whatever the model holds of it. */
static void __attribute__((unused)) rp_device_exclusive(int handle, const char *reason)
{
	mark_missing(handle, 1, reason);
	lose_for_missing_handle(HANDLES[handle], cur_line, model_handle());
}

static void __attribute__((unused)) rp_clear_softdirty(int name, int line)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	simple(p, OP_CLEAR_REFS, 4, 0, 0, 0, "clearrefs");
	if (!fac.soft_dirty)
		lose(A_MINFLT, "clear_refs 4 at line %d write-protects nothing on this kernel (no CONFIG_MEM_SOFT_DIRTY), so the model counts write faults this kernel does not take", line);
}

/* ---- expectations (src/oracle/expectations.ts, stats.ts) --------------------------------- */

static void __attribute__((unused)) rp_expect_frame(int a, int ar, uint64_t ai, int b, int br, uint64_t bi, const char *what)
{
	if (!fac.pfns) {
		observe_skipped("frame", what, NO_PFNS);
		return;
	}
	int once;
	int64_t x = page_at(a, ar, ai, &once);
	int64_t y = page_at(b, br, bi, &once);
	observe("frame", what, x >= 0 && x == y ? "same-frame" : "other-frame", 0);
}

/* `P uffd register|protect|unprotect SEL` (action 0, 1, 2) and `P uffd fork-event on|off` (3):
 * the agent does the ioctls on P's userfaultfd; its monitor thread answers the faults. */
static void __attribute__((unused)) rp_uffd(int name, int region, uint64_t lo, uint64_t hi, int action, int on, const char *what)
{
	if (!fac.uffd) {
		set_skip("%s", fac.uffd_why);
		lose(A_ALL, "not compared after line %d: %s", cur_line, fac.uffd_why);
		return;
	}
	struct kproc *p = live(name);
	if (!p)
		return;
	if (action == 3) {
		if (p->uffd_ctx && p->uffd_fork_event != on) {
			set_skip("UFFD_FEATURE_EVENT_FORK is chosen once, at UFFDIO_API (line %d changes it after %s's first registration)", cur_line, NAMES[name]);
			lose(A_ALL, "not compared after line %d: %s", cur_line, step_skip);
			return;
		}
		p->uffd_fork_event = on;
		snprintf(note, sizeof note, "the fork event is %s at UFFDIO_API", on ? "asked" : "not asked");
		return;
	}
	if (action == 0)
		cmd_uffd_register(sp(p), addr_of(p, region, lo), hi - lo + 1, p->uffd_fork_event);
	else
		cmd_uffd_wp(sp(p), addr_of(p, region, lo), hi - lo + 1, action == 1);
	reap();
	check_answer("uffd");
	if (action == 0 && ans_is("ok"))
		p->uffd_ctx = 1;
	snprintf(note, sizeof note, "%s", ans_is("ok") ? "done" : "failed");
	observe("uffd", what, ans_is("ok") ? "ok" : errno_name(ans_errno()), 0);
}

/* `expect P PAGE uffd-wp|not-uffd-wp`: pagemap's PM_UFFD_WP (bit 57, shown without privilege). */
static void __attribute__((unused)) rp_expect_uffd_wp(int name, int region, uint64_t i, const char *what)
{
	struct kproc *p = live(name);
	int wp = p && pagemap_one(p->pid, region_of(p, region)->vpn + i).uffd_wp;
	observe("uffd-wp", what, wp ? "uffd-wp" : "not-uffd-wp", 0);
}

static void __attribute__((unused)) rp_expect_mapped(int a, int ar, uint64_t ai, const char *what)
{
	/* Bit 56 is shown without privilege too; the zero page is never "mapped once". */
	int once;
	int64_t x = page_at(a, ar, ai, &once);
	observe("mapped", what, x < 0 ? "not mapped" : once ? "mapped-once" : "mapped-shared", 0);
}

static void __attribute__((unused)) rp_expect_exclusive(int a, int ar, uint64_t ai, const char *what)
{
	if (!fac.pfns) {
		observe_skipped("exclusive", what, NO_PFNS);
		return;
	}
	if (!fac.kpageflags) {
		observe_skipped("exclusive", what, NO_KPAGEFLAGS);
		return;
	}
	int once;
	int64_t x = page_at(a, ar, ai, &once);
	int excl = 0;
	if (x > 0 && (uint64_t)x != fac.zero_pfn) {
		uint64_t fl;
		if (kpageflags_of((uint64_t)x, &fl) < 0) {
			observe_skipped("exclusive", what, NO_KPAGEFLAGS);
			return;
		}
		excl = (fl >> KPF_ANON & 1) && (fl >> KPF_ANON_EXCLUSIVE & 1);
	}
	observe("exclusive", what, excl ? "anon-exclusive" : "not-anon-exclusive", 0);
}

/* The frames a process maps in every range it ever had (zero page not counted), appended to
 * *out (grown as needed); returns how many it added. */
static uint64_t frames_of(struct kproc *p, uint64_t **out, uint64_t *len, uint64_t *cap)
{
	uint64_t added = 0;
	for (int g = 0; g < p->nranges; g++) {
		if (p->ranges[g].hugetlb)
			continue;
		uint64_t cnt = p->ranges[g].n;
		struct pme *e = malloc(cnt * sizeof *e);
		if (!e)
			rp_fail("out of memory");
		pagemap_read(p->pid, p->ranges[g].vpn, cnt, e);
		for (uint64_t i = 0; i < cnt; i++) {
			if (!e[i].present || e[i].pfn == 0 || e[i].pfn == fac.zero_pfn)
				continue;
			if (*len == *cap) {
				*cap = *cap ? *cap * 2 : 4096;
				uint64_t *n = realloc(*out, *cap * sizeof **out);
				if (!n)
					rp_fail("out of memory");
				*out = n;
			}
			(*out)[(*len)++] = e[i].pfn;
			added++;
		}
		free(e);
	}
	return added;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts and drops duplicates; returns the count left. */
static uint64_t distinct(uint64_t *v, uint64_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, u64_cmp);
	uint64_t k = 1;
	for (uint64_t i = 1; i < n; i++)
		if (v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

#define MAXF (1 << 16)

static void __attribute__((unused)) rp_expect_stat(const char *stat, int proc)
{
	char v[64];
	if (!strncmp(stat, "minflt.", 7) && proc >= 0) {
		unsigned long long m = 0;
		if (name_proc[proc]) {
			struct sproc *s = proc_by_id(kprocs[name_proc[proc] - 1].id);
			m = s ? (unsigned long long)s->minflt : 0;
		}
		snprintf(v, sizeof v, "%llu", m);
		observe("stat", stat, v, 0);
		return;
	}
	if (!strncmp(stat, "uffd_faults.", 12) && proc >= 0) {
		unsigned long long m = 0;
		if (name_proc[proc]) {
			cmd_uffd_faults(kprocs[name_proc[proc] - 1].id);
			m = ans_is("ok") && ntok > 1 ? strtoull(tok[1], NULL, 10) : 0;
		}
		snprintf(v, sizeof v, "%llu", m);
		observe("stat", stat, v, 0);
		return;
	}
	if (!strncmp(stat, "rss.", 4) && proc >= 0) {
		if (!fac.pfns) {
			observe_skipped("stat", stat, NO_PFNS);
			return;
		}
		struct kproc *p = live(proc);
		uint64_t *buf = NULL, len = 0, cap = 0;
		if (p)
			frames_of(p, &buf, &len, &cap);
		free(buf);
		snprintf(v, sizeof v, "%llu", (unsigned long long)len);
		observe("stat", stat, v, 0);
		return;
	}
	if (!strcmp(stat, "PageTables_kB")) {
		long kb = 0;
		for (int i = 0; i < nkprocs; i++) {
			if (!kprocs[i].alive)
				continue;
			long now = vm_pte_kb(kprocs[i].pid);
			if (now < 0) {
				char why[100];
				snprintf(why, sizeof why, "cannot read VmPTE of process %d", (int)kprocs[i].pid);
				observe_skipped("stat", stat, why);
				return;
			}
			kb += now - kprocs[i].helper_pt + 4;
		}
		snprintf(v, sizeof v, "%ld", kb);
		observe("stat", stat, v, 0);
		return;
	}
	if (!strcmp(stat, "AnonPages_kB") || !strcmp(stat, "frames_used")) {
		int anon = stat[0] == 'A';
		if (!fac.pfns) {
			observe_skipped("stat", stat, NO_PFNS);
			return;
		}
		if (anon && !fac.kpageflags) {
			observe_skipped("stat", stat, NO_KPAGEFLAGS);
			return;
		}
		if (!anon && any_shared) {
			observe_skipped("stat", stat, "with shared mappings, pages of the shmem object that no process maps are invisible to pagemap");
			return;
		}
		uint64_t *buf = NULL, len = 0, cap = 0;
		for (int i = 0; i < nkprocs; i++)
			if (kprocs[i].alive)
				frames_of(&kprocs[i], &buf, &len, &cap);
		if (!anon)
			for (int h = 0; h < RP_MAX; h++)
				if (khandles[h].held)
					for (uint64_t j = 0; j < khandles[h].npfns; j++) {
						if (len == cap) {
							cap = cap ? cap * 2 : 4096;
							uint64_t *n = realloc(buf, cap * sizeof *buf);
							if (!n)
								rp_fail("out of memory");
							buf = n;
						}
						buf[len++] = khandles[h].pfns[j];
					}
		uint64_t ns = distinct(buf, len);
		if (anon) {
			uint64_t k = 0;
			for (uint64_t j = 0; j < ns; j++) {
				uint64_t fl;
				if (kpageflags_of(buf[j], &fl) == 0 && (fl >> KPF_ANON & 1))
					k++;
			}
			ns = k;
		}
		free(buf);
		snprintf(v, sizeof v, "%llu", (unsigned long long)(anon ? ns * 4 : ns));
		observe("stat", stat, v, 0);
		return;
	}
	if (!strcmp(stat, "pt_copies")) {
		observe("stat", stat, "0", 0);
		return;
	}
	if (!strcmp(stat, "HugePages_Free") || !strcmp(stat, "HugePages_Rsvd")) {
		/* The pool was set for this scenario (hugetlb_pool): meminfo's counters are its own. */
		char buf[8192], key[40];
		long val = -1;
		int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
		if (fd >= 0)
			close(fd);
		snprintf(key, sizeof key, "\n%s:", stat);
		if (n > 0) {
			buf[n] = 0;
			char *at = strstr(buf, key);
			if (at)
				val = strtol(at + strlen(key), NULL, 10);
		}
		if (val < 0) {
			char why[100];
			snprintf(why, sizeof why, "cannot read %s in /proc/meminfo", stat);
			observe_skipped("stat", stat, why);
			return;
		}
		snprintf(v, sizeof v, "%ld", val);
		observe("stat", stat, v, 0);
		return;
	}
	if (!strcmp(stat, "cow_copies")) {
		observe_skipped("stat", stat, "the kernel keeps no per-scenario count of COW copies (/proc/vmstat counters are system-wide)");
		return;
	}
	char why[200];
	snprintf(why, sizeof why, "%s is not measured on the live kernel", stat);
	observe_skipped("stat", stat, why);
}

/* ---- swap and KSM (src/oracle/system.ts, oracle/system.c) -------------------------------- */

#define SWAP_PAGES 16384
#define KSM_PASSES 3
#define KSM_TIMEOUT_MS 10000
#define PAGEOUT_RETRIES 4

/* Sets the swap file up when first needed; NULL when swap is ready, else why not. */
static const char *swap_ready(void)
{
	if (fac.swap_on)
		return NULL;
	if (fac.swap_why[0])
		return fac.swap_why;
	if (!fac.root) {
		snprintf(fac.swap_why, sizeof fac.swap_why, "swapout needs swap, and setting up a swap file needs root (swapon: CAP_SYS_ADMIN)");
		return fac.swap_why;
	}
	char *t[8];
	char pages[16];
	int n = 0;
	snprintf(pages, sizeof pages, "%d", SWAP_PAGES);
	t[n++] = "swapon";
	t[n++] = pages;
	static char tmp[512];
	const char *env = getenv("TMPDIR");
	sset(tmp, sizeof tmp, env && env[0] ? env : "/tmp");
	size_t tl = strlen(tmp);
	while (tl > 1 && tmp[tl - 1] == '/')
		tmp[--tl] = 0;
	const char *cand[3] = { getenv("COWLAB_SWAP_DIR"), tmp, "/var/tmp" };
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (!cand[i] || !cand[i][0] || strpbrk(cand[i], " \t\n") || stat(cand[i], &st) < 0)
			continue;
		int dup = 0;
		for (int j = 2; j < n; j++)
			dup |= !strcmp(t[j], cand[i]);
		if (!dup)
			t[n++] = (char *)cand[i];
	}
	if (n == 2) {
		snprintf(fac.swap_why, sizeof fac.swap_why, "swapout needs swap, and there is no directory for a swap file (set COWLAB_SWAP_DIR)");
		return fac.swap_why;
	}
	cmd_swapon(t, n);
	if (ans_is("ok")) {
		fac.swap_on = 1;
		return NULL;
	}
	snprintf(fac.swap_why, sizeof fac.swap_why, "swapout needs swap, and no swap file could be set up here: %.1000s", ans_rest(2));
	return fac.swap_why;
}

static void __attribute__((unused)) rp_swapout(int name, int region, uint64_t lo, uint64_t hi, const char *what, const char *reason,
					       const char *did, int mask)
{
	struct kproc *p = live(name);
	if (!p)
		return;
	(void)reason;
	const char *why = swap_ready();
	if (why) {
		system_not_replayed(why, "swap", did, mask);
		return;
	}
	uint64_t start = region_of(p, region)->vpn + lo, n = hi - lo + 1;
	cmd_swapinfo();
	if (ans_is("ok") && ntok > 2) {
		long long fr = atoll(tok[1]) - atoll(tok[2]);
		if (fr < (long long)n) {
			char w[300];
			snprintf(w, sizeof w, "the oracle's swap file has room for %lld more page(s), and this swapout may need %llu", fr, (unsigned long long)n);
			system_not_replayed(w, "swap", did, mask);
			return;
		}
	}
	if (!swap_held) {
		cmd_swaphold();
		if (!ans_is("ok")) {
			char w[600];
			snprintf(w, sizeof w, "another cowlab oracle kept the swap lock: %.400s", ans_rest(2));
			system_not_replayed(w, "swap", did, mask);
			return;
		}
		swap_held = 1;
	}
	simple(p, OP_MADVISE, 21 /* MADV_PAGEOUT */, start * PAGE_BYTES, n, 0, "madvise");
	if (ans_is("err") && ans_errno() != ENOMEM)
		rp_fail("MADV_PAGEOUT failed: %s", errno_name(ans_errno()));
	struct pme *e = calloc(n, sizeof *e);
	if (!e)
		rp_fail("out of memory");
	for (int round = 0; round < PAGEOUT_RETRIES; round++) {
		pagemap_read(p->pid, start, n, e);
		int left = 0;
		for (uint64_t i = 0; i < n; i++)
			left += e[i].present && e[i].once;
		if (!left)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
		for (uint64_t i = 0; i < n; i++)
			if (e[i].present && e[i].once)
				simple(p, OP_MADVISE, 21, (start + i) * PAGE_BYTES, 1, 0, "madvise");
	}
	pagemap_read(p->pid, start, n, e);
	/* As both sides write it (src/oracle/names.ts pageStates). */
	char out[1024] = "";
	size_t used = 0;
	int all_same = 1;
#define STATE(x) ((x).swapped ? "swapped" : (x).present ? "present" : "not mapped")
	for (uint64_t i = 1; i < n; i++)
		all_same &= !strcmp(STATE(e[i]), STATE(e[0]));
	if (all_same) {
		sset(out, sizeof out, STATE(e[0]));
	} else {
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;
			while (j + 1 < n && !strcmp(STATE(e[j + 1]), STATE(e[i])))
				j++;
			if (i == j)
				used += (size_t)snprintf(out + used, used < sizeof out ? sizeof out - used : 0, "%s%s[%llu] %s", used ? ", " : "", REGIONS[region],
							 (unsigned long long)(lo + i), STATE(e[i]));
			else
				used += (size_t)snprintf(out + used, used < sizeof out ? sizeof out - used : 0, "%s%s[%llu..%llu] %s", used ? ", " : "",
							 REGIONS[region], (unsigned long long)(lo + i), (unsigned long long)(lo + j), STATE(e[i]));
			i = j + 1;
		}
	}
#undef STATE
	free(e);
	observe("swap", what, out, 0);
}

struct kpage {
	int name, region;
	uint64_t index;
};

static int kpage_cmp(const void *a, const void *b)
{
	const struct kpage *x = a, *y = b;
	char kx[300], ky[300];
	snprintf(kx, sizeof kx, "%s %s", NAMES[x->name], REGIONS[x->region]);
	snprintf(ky, sizeof ky, "%s %s", NAMES[y->name], REGIONS[y->region]);
	int c = strcmp(kx, ky);
	return c ? c : x->index < y->index ? -1 : x->index > y->index;
}

static struct kpage kpages[MAXF];

static void __attribute__((unused)) rp_ksm_merge(const char *reason, const char *did, int mask)
{
	int any = 0;
	for (int i = 0; i < nkprocs; i++) {
		if (!kprocs[i].alive)
			continue;
		int m = ksm_mergeable(kprocs[i].pid);
		any |= m >= 0 ? m : kprocs[i].mergeable;
	}
	(void)reason;
	if (any) {
		hold_ksm();
		const char *why = NULL;
		if (!fac.ksm)
			why = "ksm merge needs KSM, and this kernel has none (/sys/kernel/mm/ksm is missing: CONFIG_KSM is not set)";
		else if (!fac.root)
			why = "ksm merge needs KSM switched on for a moment, which needs root (/sys/kernel/mm/ksm/run)";
		char w[800];
		if (!why) {
			cmd_ksm(KSM_PASSES, KSM_TIMEOUT_MS, KSM_SMART_SCAN);
			if (!ans_is("ok")) {
				snprintf(w, sizeof w, "ksm merge could not be replayed: %.600s", ans_rest(2));
				why = w;
			}
		}
		if (why) {
			system_not_replayed(why, "ksm", did, mask);
			return;
		}
	}
	if (!fac.pfns) {
		observe_skipped("ksm", "KSM pages", NO_PFNS);
		return;
	}
	if (!fac.kpageflags) {
		observe_skipped("ksm", "KSM pages", NO_KPAGEFLAGS);
		return;
	}
	int np = 0;
	for (int i = 0; i < nkprocs; i++) {
		struct kproc *p = &kprocs[i];
		if (!p->alive)
			continue;
		for (int r = 0; r < RP_MAX; r++) {
			if (!p->regions[r].set)
				continue;
			uint64_t n = p->regions[r].n;
			struct pme *e = calloc(n, sizeof *e);
			if (!e)
				continue;
			pagemap_read(p->pid, p->regions[r].vpn, n, e);
			for (uint64_t k = 0; k < n; k++) {
				uint64_t fl;
				if (!e[k].present || e[k].pfn == 0 || e[k].pfn == fac.zero_pfn)
					continue;
				if (kpageflags_of(e[k].pfn, &fl) == 0 && (fl >> KPF_KSM & 1) && np < MAXF)
					kpages[np++] = (struct kpage){ p->name, r, k };
			}
			free(e);
		}
	}
	/* As both sides write it (src/oracle/names.ts pageList). */
	qsort(kpages, (size_t)np, sizeof kpages[0], kpage_cmp);
	static char out[8192];
	size_t used = 0;
	out[0] = 0;
	for (int i = 0; i < np;) {
		int j = i;
		while (j + 1 < np && kpages[j + 1].name == kpages[i].name && kpages[j + 1].region == kpages[i].region)
			j++;
		for (int k = i; k <= j;) {
			uint64_t a = kpages[k].index, b = a;
			int m = k + 1;
			while (m <= j && kpages[m].index <= b + 1) {
				if (kpages[m].index > b)
					b = kpages[m].index;
				m++;
			}
			if (a == b)
				used += (size_t)snprintf(out + used, used < sizeof out ? sizeof out - used : 0, "%s%s %s[%llu]", used ? ", " : "",
							 NAMES[kpages[i].name], REGIONS[kpages[i].region], (unsigned long long)a);
			else
				used += (size_t)snprintf(out + used, used < sizeof out ? sizeof out - used : 0, "%s%s %s[%llu..%llu]", used ? ", " : "",
							 NAMES[kpages[i].name], REGIONS[kpages[i].region], (unsigned long long)a, (unsigned long long)b);
			k = m;
		}
		i = j + 1;
	}
	observe("ksm", "KSM pages", np ? out : "none", 0);
}

/* ---- pairing and verdicts (src/oracle/oracle.ts) ----------------------------------------- */

static void verdict(int line, const char *kind, const char *what, const char *model, const char *kernel, const char *skip)
{
	if (skip) {
		n_skip++;
		printf("SKIP line %d [%s] %s: %s\n", line, kind, what, skip);
	} else if (model && kernel && !strcmp(model, kernel)) {
		n_pass++;
		printf("PASS line %d [%s] %s: %s\n", line, kind, what, kernel);
	} else {
		n_fail++;
		printf("FAIL line %d [%s] %s: expected %s, the kernel shows %s\n", line, kind, what, model ? model : "(no such observation)",
		       kernel ? kernel : "(no such observation)");
	}
}

static void pair_step(int line, const struct mstep *m)
{
	int n = m->n > nkobs ? m->n : nkobs;
	for (int i = 0; i < n; i++) {
		const struct mobs *mo = i < m->n ? &m->obs[i] : NULL;
		const struct kobs *ko = i < nkobs ? &kobs[i] : NULL;
		const char *skip = NULL;
		const char *kind = mo ? mo->kind : ko->kind, *what = mo ? mo->what : ko->what;
		if (mo && ko) {
			skip = ko->has_skip ? ko->skip : !ko->has_actual ? "not observed on the kernel" : NULL;
			if (!skip && !(strcmp(mo->kind, ko->kind) == 0 && strcmp(mo->what, ko->what) == 0)) {
				/* a different observation: a disagreement */
				n_fail++;
				printf("FAIL line %d [%s] %s: expected %s, the kernel observed %s: %s\n", line, kind, what, mo->actual, ko->what, ko->actual);
				continue;
			}
		} else if (mo) {
			skip = have_step_skip ? step_skip : NULL;
		} else {
			skip = ko->has_skip ? ko->skip : NULL;
		}
		if (!skip && m->hidden_swapcache > 0 && !strcmp(kind, "stat") && !strcmp(what, "frames_used")) {
			static char why[300];
			snprintf(why, sizeof why, "the model keeps %d page(s) in the swap cache that nothing maps or holds; pagemap cannot see such pages",
				 m->hidden_swapcache);
			skip = why;
		}
		verdict(line, kind, what, mo ? mo->actual : NULL, ko && ko->has_actual ? ko->actual : NULL, skip);
	}
}

/* ---- the run ----------------------------------------------------------------------------- */

static int run_scenario(const struct variant *variants, const struct stepdef *steps, int nsteps)
{
	agent_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	system_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	(void)pin_one_cpu();
	for (int i = 0; i < RP_MAX; i++)
		name_proc[i] = 0;
	printf("# %s (%s)\n", SCENARIO, SCENARIO_FILE);
	if (handles_init() < 0) {
		printf("SKIP scenario: cannot create the memfd the device's transfers go through\n");
		return 2;
	}
	probe_machine();
	const struct variant *v = &variants[fac.zero_page ? 0 : 1];
	printf("# the model: %s\n", v->profile);
	if (v->skip) {
		printf("SKIP scenario: %s\n", v->skip);
		printf("SUMMARY: 0 PASS, 0 FAIL, 0 SKIP (the scenario was skipped)\n");
		return 2;
	}
	const char *ksm_why = ksm_zero_pages_differ();
	if (ksm_why) {
		printf("SKIP scenario: %s\n", ksm_why);
		printf("SUMMARY: 0 PASS, 0 FAIL, 0 SKIP (the scenario was skipped)\n");
		return 2;
	}
	const char *pool_why = hugetlb_pool();
	if (pool_why) {
		printf("SKIP scenario: %s\n", pool_why);
		printf("SUMMARY: 0 PASS, 0 FAIL, 0 SKIP (the scenario was skipped)\n");
		return 2;
	}
	for (int i = 0; i < v->count && i < nsteps; i++) {
		const struct stepdef *s = &steps[i];
		cur_line = s->line;
		nkobs = 0;
		note[0] = 0;
		have_step_skip = 0;
		cur_model = &v->steps[i];
		printf("# line %d: %s\n", s->line, s->text);
		if (run_error[0]) {
			set_skip("not replayed: the helper failed at %s", run_error);
		} else if (why_lost(A_ALL)) {
			set_skip("%s", why_lost(A_ALL));
		} else if (sigsetjmp(step_jmp, 1) == 0) {
			s->run();
		}
		if (have_step_skip)
			printf("#   skipped: %s\n", step_skip);
		else if (note[0])
			printf("#   %s\n", note);
		pair_step(s->line, &v->steps[i]);
	}
	if (v->count < nsteps)
		printf("# not run from line %d on: %s\n", steps[v->count].line, v->na ? v->na : "the model is n/a here");
	/* A clean slate: every handle released, every process killed and reaped, the machine put back. */
	handles_reset();
	procs_reset();
	int np = 0, nh = 0;
	for (int i = 0; i < MAXP; i++)
		np += procs[i].used && procs[i].alive;
	for (int i = 0; i < MAXH; i++)
		nh += handles[i].used;
	if ((np || nh) && !run_error[0])
		snprintf(run_error, sizeof run_error, "something is still held after the scenario: procs=%d handles=%d", np, nh);
	system_release_holds();
	if (fac.swap_on)
		cmd_swapoff();
	system_cleanup();
	if (run_error[0])
		printf("ERROR %s\n", run_error);
	printf("SUMMARY: %d PASS, %d FAIL, %d SKIP\n", n_pass, n_fail, n_skip);
	if (n_fail)
		return 1;
	/* Could not run: the replay failed, nothing was compared, or checks needed root. */
	if (run_error[0] || n_pass == 0 || (!fac.root && n_skip))
		return 2;
	return 0;
}
