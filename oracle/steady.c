/* Fault counts must belong to the scenario alone. A scenario process measures its minor
 * faults only around the scenario's own operations, and makes sure its own memory (stack,
 * data, libc, text) cannot fault there: every page of its own mappings is populated up front,
 * writable private ones with write faults (breaking COW), and again after each fork (which
 * write-protects them) and clear_refs. A populate that reuses a page makes its PTE writable
 * without a TLB flush, so a stale read-only TLB entry could still fault once (a spurious
 * fault, which counts): each writable page is then also written once from user space. */
#include "oracle.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Grow the stack well past what any operation (or a signal frame) needs. */
static void __attribute__((noinline)) grow_stack(void)
{
	volatile char deep[256 * 1024];
	for (size_t i = 0; i < sizeof deep; i += 1024)
		deep[i] = 0;
}

void steady_init(void)
{
	/* An explicit memory policy without MPOL_F_MOF keeps automatic NUMA balancing from
	 * scanning our mappings (task_numa_work skips them), so no NUMA hinting fault ever makes a
	 * PTE inaccessible behind the scenario's back or adds to its fault count. Inherited by fork;
	 * without CONFIG_NUMA the call fails and there is nothing to avoid. */
	syscall(SYS_set_mempolicy, 4 /* MPOL_LOCAL */, NULL, 0UL);
	grow_stack();
	steady_retouch();
}

void steady_retouch(void)
{
	static char maps[1 << 17];
	size_t len = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (;;) {
		ssize_t n = read(fd, maps + len, sizeof maps - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	maps[len] = 0;
	for (char *line = maps; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && perms[0] == 'r' &&
		    !(hi > SCEN_LO && lo < SCEN_HI) && !strstr(line, "[vsyscall]") &&
		    !strstr(line, "[vvar")) {
			int write = perms[1] == 'w' && perms[3] == 'p';
			madvise((void *)lo, hi - lo, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
			for (unsigned long a = lo; write && a < hi; a += PAGE_BYTES) {
				volatile char *c = (volatile char *)a;
				*c = *c; /* the same byte: single-threaded, harmless */
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
}
