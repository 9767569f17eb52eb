/* Transparent huge pages on the live kernel: what the probe reports of them, and which pages of
 * a process's range a PMD maps (PAGEMAP_SCAN's PAGE_IS_HUGE, Linux 6.7+; pagemap alone cannot
 * tell a PMD-mapped THP from a PTE-mapped one). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

/* The PAGEMAP_SCAN ABI (include/uapi/linux/fs.h of 6.7+), declared here for older headers. */
struct cl_page_region {
	uint64_t start, end, categories;
};
struct cl_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define CL_PAGEMAP_SCAN _IOWR('f', 16, struct cl_pm_scan_arg)
#define CL_PAGE_IS_PRESENT (1u << 3)
#define CL_PAGE_IS_PFNZERO (1u << 5)
#define CL_PAGE_IS_HUGE (1u << 6)

#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"

/* Calls fn(start, end, zero) for each run of pages of [addr, addr + len) that a present huge
 * PMD maps (zero: the huge zero page). 0, or -errno (-ENOTTY/-EINVAL: no PAGEMAP_SCAN here). */
static int scan_huge(int fd, uint64_t addr, uint64_t len, void (*fn)(void *, uint64_t, uint64_t, int), void *arg)
{
	struct cl_page_region vec[64];
	uint64_t at = addr, end = addr + len;
	while (at < end) {
		struct cl_pm_scan_arg a = {
			.size = sizeof a, .start = at, .end = end, .vec = (uint64_t)(uintptr_t)vec, .vec_len = 64,
			.category_mask = CL_PAGE_IS_HUGE | CL_PAGE_IS_PRESENT,
			.return_mask = CL_PAGE_IS_HUGE | CL_PAGE_IS_PRESENT | CL_PAGE_IS_PFNZERO,
		};
		long n = ioctl(fd, CL_PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			fn(arg, vec[i].start, vec[i].end, (vec[i].categories & CL_PAGE_IS_PFNZERO) != 0);
		if (a.walk_end <= at)
			break;
		at = a.walk_end;
	}
	return 0;
}

struct scan_out {
	char *buf;
	size_t len, used;
	uint64_t base;
	int truncated;
};

static void put_run(void *arg, uint64_t start, uint64_t end, int zero)
{
	struct scan_out *o = arg;
	int n = snprintf(o->buf + o->used, o->len - o->used, " %llu-%llu%s",
			 (unsigned long long)((start - o->base) / PAGE_BYTES),
			 (unsigned long long)((end - o->base) / PAGE_BYTES - 1), zero ? "z" : "");
	if (n < 0 || (size_t)n >= o->len - o->used)
		o->truncated = 1;
	else
		o->used += (size_t)n;
}

/* `thpscan ID ADDR PAGES`: "ok LO-HI[z] ..." the page ranges (from ADDR) a huge PMD maps. */
void cmd_thpscan(struct sproc *p, uint64_t addr, uint64_t pages)
{
	char path[64], runs[1536];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("err %d pagemap", errno);
		return;
	}
	struct scan_out o = { .buf = runs, .len = sizeof runs, .base = addr };
	runs[0] = 0;
	int rc = scan_huge(fd, addr, pages * PAGE_BYTES, put_run, &o);
	close(fd);
	if (rc < 0)
		say("err %d PAGEMAP_SCAN", -rc);
	else if (o.truncated)
		say("err %d too many runs", E2BIG);
	else
		say("ok%s", runs);
}

static void note_run(void *arg, uint64_t start, uint64_t end, int zero)
{
	(void)start;
	(void)end;
	*(int *)arg = zero ? 1 : 0;
}

static int read_u64_at(const char *path, uint64_t index, uint64_t *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, out, sizeof *out, (off_t)(index * sizeof *out));
	close(fd);
	return n == (ssize_t)sizeof *out ? 0 : -EIO;
}

volatile char *thp_range(char **m)
{
	*m = mmap(NULL, 2 * PMD_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*m == MAP_FAILED) {
		*m = NULL;
		return NULL;
	}
	volatile char *p = (char *)(((uintptr_t)*m + PMD_BYTES - 1) & ~(uintptr_t)(PMD_BYTES - 1));
	madvise((void *)p, PMD_BYTES, MADV_HUGEPAGE);
	return p;
}

/* A read fault on an untouched, 2 MiB-aligned MADV_HUGEPAGE range: 1 the huge zero page is
 * mapped, 0 a THP is allocated, -1 neither seen (no THP: mode never, or the allocation fell
 * back to 4 KiB). *scan: PAGEMAP_SCAN works here. */
static int probe_huge_zero(int *scan)
{
	size_t pmd = PMD_BYTES;
	char *m;
	*scan = 0;
	volatile char *p = thp_range(&m);
	if (!p)
		return -1;
	int verdict = -1;
	(void)p[0];
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		int found = -1;
		int rc = scan_huge(fd, (uint64_t)(uintptr_t)p, pmd, note_run, &found);
		if (rc == 0) {
			*scan = 1;
			verdict = found;
		} else {
			/* cow.c's check: the last sub-page present after touching the first. */
			uint64_t first = 0, last = 0, flags = 0;
			uint64_t vpn = (uint64_t)(uintptr_t)p / PAGE_BYTES;
			if (pread(fd, &first, 8, (off_t)(vpn * 8)) == 8 && pread(fd, &last, 8, (off_t)((vpn + 511) * 8)) == 8 &&
			    (last >> 63) & 1) {
				uint64_t pfn = first & ((1ULL << 55) - 1);
				if (pfn && read_u64_at("/proc/kpageflags", pfn, &flags) == 0)
					verdict = (int)((flags >> 24) & 1); /* KPF_ZERO_PAGE */
				else
					verdict = !((first >> 56) & 1); /* a huge zero page is never mapped once */
			}
		}
		close(fd);
	}
	munmap(m, 2 * pmd);
	return verdict;
}

#ifndef MADV_COLD
#define MADV_COLD 20
#endif

/* Does splitting a THP map its zero-filled pages to the shared zero page (6.12 remap_page with
 * RMP_USE_SHARED_ZEROPAGE, unless mm_forbids_zeropage())? A THP written in its first page, then
 * MADV_COLD on its second (a partial PMD: madvise_cold_or_pageout_pte_range splits the folio):
 * 1 the second page is the zero page now, 0 it is still a page of its own, -1 no THP to split. */
static uint64_t split_zero_pfn; /* the zero page's frame, seen there (0: hidden or not seen) */

static int probe_split_zero(void)
{
	char *m;
	volatile char *p = thp_range(&m);
	if (!p)
		return -1;
	int verdict = -1;
	p[0] = 1;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t vpn = (uint64_t)(uintptr_t)p / PAGE_BYTES, e0 = 0, e1 = 0, flags = 0;
	/* A THP: the second page is present though only the first was touched. */
	if (fd >= 0 && pread(fd, &e1, 8, (off_t)((vpn + 1) * 8)) == 8 && (e1 >> 63) & 1 &&
	    madvise((void *)(p + PAGE_BYTES), PAGE_BYTES, MADV_COLD) == 0 &&
	    pread(fd, &e0, 8, (off_t)(vpn * 8)) == 8 && pread(fd, &e1, 8, (off_t)((vpn + 1) * 8)) == 8 && (e1 >> 63) & 1) {
		uint64_t pfn = e1 & ((1ULL << 55) - 1);
		if (pfn && read_u64_at("/proc/kpageflags", pfn, &flags) == 0) {
			verdict = (int)((flags >> 24) & 1); /* KPF_ZERO_PAGE */
			if (verdict)
				split_zero_pfn = pfn;
		} else {
			verdict = ((e0 >> 56) & 1) && !((e1 >> 56) & 1); /* the zero page is never mapped once */
		}
	}
	if (fd >= 0)
		close(fd);
	munmap(m, 2 * PMD_BYTES);
	return verdict;
}

static long thp_num(const char *name)
{
	char path[160], b[32];
	snprintf(path, sizeof path, THP_DIR "%s", name);
	if (read_str(path, b, sizeof b) < 0 || !b[0])
		return -1;
	return strtol(b, NULL, 10);
}

/* The word in brackets of THP_DIR/name ("always [madvise] never"), or "none". */
static void thp_choice(const char *name, char *out, size_t len)
{
	char path[160], b[128];
	snprintf(path, sizeof path, THP_DIR "%s", name);
	snprintf(out, len, "none");
	if (read_str(path, b, sizeof b) < 0)
		return;
	char *lo = strchr(b, '['), *hi = lo ? strchr(lo, ']') : NULL;
	if (lo && hi && hi > lo + 1 && (size_t)(hi - lo) < len) {
		memcpy(out, lo + 1, (size_t)(hi - lo - 1));
		out[hi - lo - 1] = 0;
	}
}

/* The THP words of the probe: thp (the mode PMD-sized THPs follow: the per-size
 * hugepages-<PMD>kB/enabled of 6.8+ unless `inherit`, else enabled), thptop (enabled),
 * thppmdkb (hpage_pmd_size in kB), thpdefrag, thpzero (use_zero_page), hugezero (the probe's
 * read fault: 1 huge zero page, 0 a THP, -1 not seen), splitzero (probe_split_zero) and
 * splitzeropfn (the zero page's frame it saw), pmscan (PAGEMAP_SCAN works),
 * khpscan/khpsleep/khpnone (khugepaged's pages_to_scan, scan_sleep_millisecs, max_ptes_none). */
void probe_thp(char *out, size_t len)
{
	char top[32], size[32], defrag[32], path[80];
	thp_choice("enabled", top, sizeof top);
	thp_choice("defrag", defrag, sizeof defrag);
	long pmd = thp_num("hpage_pmd_size");
	long kb = pmd > 0 ? pmd / 1024 : 2048;
	snprintf(path, sizeof path, "hugepages-%ldkB/enabled", kb);
	thp_choice(path, size, sizeof size);
	const char *mode = strcmp(size, "none") && strcmp(size, "inherit") ? size : top;
	int scan = 0, hugezero = strcmp(mode, "none") ? probe_huge_zero(&scan) : -1;
	int splitzero = strcmp(mode, "none") ? probe_split_zero() : -1;
	snprintf(out, len, "thp=%s thptop=%s thppmdkb=%ld thpdefrag=%s thpzero=%ld hugezero=%d splitzero=%d splitzeropfn=%llu pmscan=%d khpscan=%ld khpsleep=%ld khpnone=%ld",
		 mode, top, pmd > 0 ? kb : -1, defrag, thp_num("use_zero_page"), hugezero, splitzero, (unsigned long long)split_zero_pfn, scan,
		 thp_num("khugepaged/pages_to_scan"), thp_num("khugepaged/scan_sleep_millisecs"), thp_num("khugepaged/max_ptes_none"));
}
