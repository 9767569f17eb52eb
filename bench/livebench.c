/* cowlab bench: the live kernel's side of the bench rows (`npm run bench`).
 * usage:
 *   livebench fork MIB REPS          fork() of MIB MiB of 4 KiB pages (MADV_NOHUGEPAGE), with
 *                                    the time to populate them
 *   livebench thp-fork MIB REPS      fork() of MIB MiB of PMD-mapped THPs (MADV_HUGEPAGE)
 *   livebench hugetlb-fork MIB REPS  fork() of MIB MiB of MAP_HUGETLB 2 MiB pages, reserved in
 *                                    /proc/sys/vm/nr_hugepages for the run and given back
 *   livebench faults 4k|thp MIB REPS write faults after fork: the COW fault (the child alive)
 *                                    and the reuse fault (the child gone, refcount 1); for thp
 *                                    one write per 2 MiB (the PMD-level paths)
 * Before each fork the parent writes one byte per page (per 2 MiB for huge pages), so every
 * fork finds writable, exclusive memory; the child exits at once.
 * Prints one JSON line; fork times are best of REPS (and the median), fault times the best
 * average over REPS runs, in nanoseconds. A row that cannot be measured here prints
 * {"skip":"why"} and exits 0 (THP not enabled, not THP-backed, no huge pages to reserve). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define HPAGE (2ul << 20)
#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void skip(const char *why) {
	printf("{\"skip\":\"%s\"}\n", why);
	exit(0);
}

static void fail(const char *what) {
	printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
	exit(1);
}

static uint64_t populate_ns; /* the first write of every page of the last mapping made */

/* A private anonymous mapping of len bytes at a 2 MiB boundary. */
static char *map_aligned(size_t len) {
	char *raw = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) fail("mmap");
	char *p = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	if (p > raw) munmap(raw, (size_t)(p - raw));
	munmap(p + len, (size_t)(raw + HPAGE - p));
	return p;
}

/* AnonHugePages (kB) of the mapping that contains p, from /proc/self/smaps. */
static long anon_huge_kb(const void *p) {
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f) return -1;
	char line[512];
	int inside = 0;
	long kb = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
	}
	fclose(f);
	return kb;
}

/* The THP mode from sysfs: 0 never, 1 madvise or always; -1 no THP in this kernel. */
static int thp_enabled(void) {
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f) return -1;
	char buf[128] = "";
	if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
	fclose(f);
	return strstr(buf, "[never]") ? 0 : 1;
}

/* len bytes of THP-backed memory, written once; skips when the kernel does not back it whole. */
static char *map_thp(size_t len) {
	int mode = thp_enabled();
	if (mode < 0) skip("no transparent huge pages in this kernel");
	if (mode == 0) skip("transparent_hugepage/enabled is never");
	char *p = map_aligned(len);
	if (madvise(p, len, MADV_HUGEPAGE) != 0) fail("madvise(MADV_HUGEPAGE)");
	uint64_t t0 = now_ns();
	for (size_t o = 0; o < len; o += 4096) p[o] = 1;
	populate_ns = now_ns() - t0;
	long kb = anon_huge_kb(p);
	if (kb < 0) skip("no AnonHugePages in /proc/self/smaps");
	if ((size_t)kb * 1024 < len) {
		static char why[160];
		snprintf(why, sizeof why, "only %ld of %zu kB THP-backed after MADV_HUGEPAGE (fragmented memory?)", kb, len >> 10);
		skip(why);
	}
	return p;
}

static char *map_4k(size_t len) {
	char *p = map_aligned(len);
	madvise(p, len, MADV_NOHUGEPAGE);
	uint64_t t0 = now_ns();
	for (size_t o = 0; o < len; o += 4096) p[o] = 1;
	populate_ns = now_ns() - t0;
	return p;
}

/* fork() timed in the parent; the child exits at once. Before each fork the parent writes one
 * byte per `stride`. */
static void time_forks(char *p, size_t len, size_t stride, int reps, const char *kind, long huge_kb) {
	uint64_t *t = calloc((size_t)reps, sizeof *t);
	for (int r = 0; r < reps; r++) {
		for (size_t o = 0; o < len; o += stride) p[o] = (char)r;
		uint64_t a = now_ns();
		pid_t pid = fork();
		if (pid == 0) _exit(0);
		uint64_t b = now_ns();
		if (pid < 0) fail("fork");
		waitpid(pid, NULL, 0);
		t[r] = b - a;
	}
	qsort(t, (size_t)reps, sizeof *t, cmp_u64);
	printf("{\"kind\":\"%s\",\"mib\":%zu,\"hugeKb\":%ld,\"populateNs\":%llu,\"forkMinNs\":%llu,\"forkMedianNs\":%llu,\"reps\":%d}\n",
	       kind, len >> 20, huge_kb, (unsigned long long)populate_ns, (unsigned long long)t[0], (unsigned long long)t[reps / 2], reps);
	free(t);
}

/* Write faults after fork, one write per `stride`: the reuse fault (the child exited before:
 * refcount 1) and the COW fault (the child alive, blocked on a pipe). Returns ns per fault. */
static void fault_run(char *p, size_t len, size_t stride, uint64_t *reuse, uint64_t *cow) {
	size_t n = len / stride;
	pid_t pid = fork();
	if (pid < 0) fail("fork");
	if (pid == 0) _exit(0);
	waitpid(pid, NULL, 0);
	uint64_t a = now_ns();
	for (size_t o = 0; o < len; o += stride) p[o] = 2;
	*reuse = (now_ns() - a) / n;
	int fd[2];
	if (pipe(fd) != 0) fail("pipe");
	pid = fork();
	if (pid < 0) fail("fork");
	if (pid == 0) {
		char c;
		close(fd[1]);
		while (read(fd[0], &c, 1) < 0 && errno == EINTR) {}
		_exit(0);
	}
	close(fd[0]);
	a = now_ns();
	for (size_t o = 0; o < len; o += stride) p[o] = 3;
	*cow = (now_ns() - a) / n;
	close(fd[1]);
	waitpid(pid, NULL, 0);
}

static void faults(int thp, size_t len, int reps) {
	size_t stride = thp ? HPAGE : 4096;
	uint64_t best_reuse = UINT64_MAX, best_cow = UINT64_MAX;
	long huge_after_cow = 0;
	for (int r = 0; r < reps; r++) {
		char *p = thp ? map_thp(len) : map_4k(len);
		uint64_t reuse, cow;
		fault_run(p, len, stride, &reuse, &cow);
		if (thp) huge_after_cow = anon_huge_kb(p);
		if (reuse < best_reuse) best_reuse = reuse;
		if (cow < best_cow) best_cow = cow;
		munmap(p, len);
	}
	printf("{\"kind\":\"faults-%s\",\"mib\":%zu,\"faults\":%zu,\"reuseNs\":%llu,\"cowNs\":%llu,\"hugeKbAfterCow\":%ld,\"reps\":%d}\n",
	       thp ? "thp" : "4k", len >> 20, len / stride, (unsigned long long)best_reuse, (unsigned long long)best_cow, huge_after_cow, reps);
}

/* ---- hugetlb: the pool is grown by what the run needs and shrunk back by as much -------- */

static long added; /* huge pages this run added to nr_hugepages */

/* Async-signal-safe read and write of nr_hugepages. */
static long read_nr(void) {
	char buf[32];
	int fd = open(NR_HUGEPAGES, O_RDONLY);
	if (fd < 0) return -1;
	ssize_t k = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (k <= 0) return -1;
	long v = 0;
	for (ssize_t i = 0; i < k && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
	return v;
}

static int write_nr(long v) {
	char buf[32];
	int i = (int)sizeof buf;
	buf[--i] = '\n';
	do buf[--i] = (char)('0' + v % 10); while ((v /= 10) > 0);
	int fd = open(NR_HUGEPAGES, O_WRONLY);
	if (fd < 0) return -1;
	ssize_t k = write(fd, buf + i, sizeof buf - (size_t)i);
	close(fd);
	return k > 0 ? 0 : -1;
}

static void give_back(void) {
	if (added <= 0) return;
	long now = read_nr();
	if (now >= 0) write_nr(now > added ? now - added : 0);
	added = 0;
}

static void on_signal(int sig) {
	give_back();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void hugetlb_fork(size_t len, int reps) {
	long need = (long)(len / HPAGE);
	long old = read_nr();
	if (old < 0) skip("no /proc/sys/vm/nr_hugepages (hugetlb not configured)");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	atexit(give_back);
	if (write_nr(old + need) != 0) skip("cannot write /proc/sys/vm/nr_hugepages (not root?)");
	long got = read_nr();
	added = got > old ? got - old : 0;
	if (got < old + need) {
		static char why[160];
		snprintf(why, sizeof why, "could reserve only %ld of %ld huge pages", got - old, need);
		give_back();
		skip(why);
	}
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED) {
		give_back();
		skip("mmap(MAP_HUGETLB) failed: the reserved pages were taken");
	}
	uint64_t t0 = now_ns();
	for (size_t o = 0; o < len; o += 4096) p[o] = 1;
	populate_ns = now_ns() - t0;
	time_forks(p, len, HPAGE, reps, "hugetlb-fork", -1);
	munmap(p, len);
	give_back();
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	int faults_mode = strcmp(mode, "faults") == 0;
	if (argc != (faults_mode ? 5 : 4)) {
		fprintf(stderr, "usage: %s fork|thp-fork|hugetlb-fork MIB REPS | faults 4k|thp MIB REPS\n", argv[0]);
		return 2;
	}
	size_t mib = strtoull(argv[faults_mode ? 3 : 2], NULL, 10);
	int reps = atoi(argv[faults_mode ? 4 : 3]);
	if (reps < 1 || reps > 1000) reps = 5;
	if (mib < 2 || mib % 2) {
		fprintf(stderr, "MIB must be a positive multiple of 2\n");
		return 2;
	}
	size_t len = mib << 20;
	if (strcmp(mode, "fork") == 0) {
		char *p = map_4k(len);
		time_forks(p, len, 4096, reps, "fork", 0);
	} else if (strcmp(mode, "thp-fork") == 0) {
		char *p = map_thp(len);
		time_forks(p, len, HPAGE, reps, "thp-fork", anon_huge_kb(p));
	} else if (strcmp(mode, "hugetlb-fork") == 0) {
		hugetlb_fork(len, reps);
	} else if (faults_mode && (strcmp(argv[2], "4k") == 0 || strcmp(argv[2], "thp") == 0)) {
		faults(strcmp(argv[2], "thp") == 0, len, reps);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
