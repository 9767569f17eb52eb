/* What this kernel and these privileges offer the oracle, as `key=value` words:
 * uring (0 or -errno of a buffer registration), pfns (pagemap shows frame numbers),
 * zeropage (1: a read fault maps the shared zero page, 0: it allocates a page, -1: unknown),
 * zeropfn (0 where there is none or it is hidden), the THP words (thp.c: probe_thp), softdirty (pagemap bit 55 set on a fresh page: CONFIG_MEM_SOFT_DIRTY),
 * kpageflags, kpagecount, anonexcl (bit 34 set on a freshly written page); KSM's settings
 * (ksmrun, ksmzero = use_zero_pages, ksmnodes = merge_across_nodes, ksmmaxshare =
 * max_page_sharing, ksmsmart = smart_scan; -1 where missing) and zswap (1 enabled, 0 not,
 * -1 unknown); uffd (0: userfaultfd write-protect works on anonymous memory, else -errno) and
 * uffdfeatures (what UFFDIO_API offers). */
#include "oracle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int read_u64(const char *path, uint64_t index, uint64_t *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, out, sizeof *out, (off_t)(index * sizeof *out));
	int err = errno;
	close(fd);
	return n == (ssize_t)sizeof *out ? 0 : -(n < 0 ? err : EIO);
}

static int probe_uring(void)
{
	struct ring r;
	int rc = ring_open(&r, 4);
	if (rc < 0)
		return rc;
	void *page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		rc = -errno;
	} else {
		page_fill(page, 1);
		struct iovec iov = { .iov_base = page, .iov_len = PAGE_BYTES };
		rc = ring_register_buffers(r.fd, &iov, 1);
		if (rc == 0)
			ring_unregister_buffers(&r);
		munmap(page, PAGE_BYTES);
	}
	ring_close(&r);
	return rc;
}

static long sysfs_num(const char *path)
{
	char b[32];
	if (read_str(path, b, sizeof b) < 0 || !b[0])
		return -1;
	if (b[0] == 'Y' || b[0] == 'N') /* a boolean module parameter */
		return b[0] == 'Y';
	return strtol(b, NULL, 10);
}

/* Does a read fault on untouched private anonymous memory map the shared zero page? Two
 * read-faulted pages of two mappings are one frame, or (frame numbers hidden) the page is not
 * mapped exclusively (pagemap bit 56): the zero page has no mapcount. 1 yes, 0 no, -1 unknown. */
static int probe_zero_page(uint64_t *zero_pfn)
{
	int verdict = -1;
	volatile uint64_t *a = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile uint64_t *b = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((void *)a != MAP_FAILED && (void *)b != MAP_FAILED) {
		uint64_t ea = 0, eb = 0;
		(void)a[0];
		(void)b[0];
		if (read_u64("/proc/self/pagemap", (uint64_t)(uintptr_t)a / PAGE_BYTES, &ea) == 0 &&
		    read_u64("/proc/self/pagemap", (uint64_t)(uintptr_t)b / PAGE_BYTES, &eb) == 0 && (ea >> 63) && (eb >> 63)) {
			uint64_t pa = ea & ((1ULL << 55) - 1), pb = eb & ((1ULL << 55) - 1);
			if (pa && pb)
				verdict = pa == pb;
			else
				verdict = !((ea >> 56) & 1);
			if (verdict == 1)
				*zero_pfn = pa;
		}
	}
	if ((void *)a != MAP_FAILED)
		munmap((void *)a, PAGE_BYTES);
	if ((void *)b != MAP_FAILED)
		munmap((void *)b, PAGE_BYTES);
	return verdict;
}

/* userfaultfd write-protect: 0 when a private anonymous page can be registered in WP mode and
 * write-protected, else -errno (of userfaultfd(), UFFDIO_API or UFFDIO_REGISTER); *features:
 * what UFFDIO_API offers. */
static int probe_uffd(uint64_t *features)
{
	*features = 0;
	int fd = uffd_open();
	if (fd < 0)
		return fd;
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int rc = 0;
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		rc = -errno;
	else
		*features = api.features;
	if (rc == 0 && !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		rc = -EOPNOTSUPP;
	void *page = MAP_FAILED;
	if (rc == 0) {
		page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			rc = -errno;
	}
	if (rc == 0) {
		page_fill(page, 1);
		struct uffdio_register reg = { .range = { .start = (uint64_t)(uintptr_t)page, .len = PAGE_BYTES }, .mode = UFFDIO_REGISTER_MODE_WP };
		struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0 || ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0)
			rc = -errno;
	}
	if (page != MAP_FAILED)
		munmap(page, PAGE_BYTES);
	close(fd);
	return rc;
}

void probe_report(char *out, size_t len)
{
	uint64_t uffd_features = 0;
	int uffd = probe_uffd(&uffd_features);
	uint64_t zero_pfn = 0, pfn = 0, entry = 0, flags = 0, count = 0;
	int pagemap = 0, softdirty = 0, kpf = 0, kpc = 0, anonexcl = 0;
	volatile uint64_t *page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((void *)page != MAP_FAILED) {
		uint64_t vpn = (uint64_t)(uintptr_t)page / PAGE_BYTES;
		if (read_u64("/proc/self/pagemap", vpn, &entry) == 0)
			pagemap = 1;
		page[0] = 1; /* a fresh anonymous page */
		if (read_u64("/proc/self/pagemap", vpn, &entry) == 0 && (entry >> 63)) {
			pfn = entry & ((1ULL << 55) - 1);
			softdirty = (int)((entry >> 55) & 1);
		}
		if (pfn && read_u64("/proc/kpageflags", pfn, &flags) == 0) {
			kpf = 1;
			anonexcl = (int)((flags >> 34) & 1);
		}
		if (pfn && read_u64("/proc/kpagecount", pfn, &count) == 0)
			kpc = 1;
		munmap((void *)page, PAGE_BYTES);
	}
	int zeropage = probe_zero_page(&zero_pfn);
	char thp[320];
	probe_thp(thp, sizeof thp);
	snprintf(out, len, "uring=%d pagemap=%d pfns=%d zeropage=%d zeropfn=%llu %s softdirty=%d kpageflags=%d kpagecount=%d anonexcl=%d"
		 " ksmrun=%ld ksmzero=%ld ksmnodes=%ld ksmmaxshare=%ld ksmsmart=%ld zswap=%ld uffd=%d uffdfeatures=%llu",
		 probe_uring(), pagemap, pfn != 0, zeropage, (unsigned long long)zero_pfn, thp, softdirty, kpf, kpc, anonexcl,
		 sysfs_num("/sys/kernel/mm/ksm/run"), sysfs_num("/sys/kernel/mm/ksm/use_zero_pages"),
		 sysfs_num("/sys/kernel/mm/ksm/merge_across_nodes"), sysfs_num("/sys/kernel/mm/ksm/max_page_sharing"),
		 sysfs_num("/sys/kernel/mm/ksm/smart_scan"), sysfs_num("/sys/module/zswap/parameters/enabled"),
		 uffd, (unsigned long long)uffd_features);
}
