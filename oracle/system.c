/* What the oracle changes on the machine itself, and always puts back: a swap file of its own
 * (for `swapout` = MADV_PAGEOUT) and KSM switched on for a `ksm merge`.
 *
 * Swap: `swapon PAGES DIR...` makes DIR/cowlab-swap.PID.XXXXXX/swapfile on the first DIR whose
 * filesystem takes swap files (a file of PAGES pages, with a version-1 swap header written
 * here, as mkswap does), and enables it with swapon(2) at priority SWAP_PRIO, so MADV_PAGEOUT
 * goes there first. The swap the machine already had is never touched. `swapoff` disables and
 * deletes it; so do `quit`, the end of the agent's input, a failed answer, and SIGINT, SIGTERM
 * or SIGHUP (system_emergency, from a signal handler: system calls only, every wait bounded). A
 * file a killed agent left (its PID gone) is removed at the next `swapon`, or by `reclaim`,
 * which the driver runs when it finds its agent gone.
 *
 * KSM: `ksm PASSES TIMEOUT_MS [SMART]` saves run, pages_to_scan, sleep_millisecs and smart_scan,
 * lets ksmd scan fast with smart_scan at SMART (the scenario's config.ksm_smart_scan; 0, every
 * page scanned in every pass, when not given) until full_scans has advanced by PASSES, then writes every saved value back and drains every
 * CPU's LRU batches (what ksmd made on its CPU would wait there: lru_drain_all_cpus). An exclusive
 * flock on a lock file keeps two oracles from saving each other's values; the saved values are
 * also written into that file while KSM runs, so that if an agent dies mid-merge the next one
 * puts the machine's settings back first. use_zero_pages, merge_across_nodes and
 * max_page_sharing are left as they are (the probe reports them).
 *
 * Other oracles on the same machine: ksmd merges every mergeable page of every process, so
 * while a scenario has mergeable mappings its agent holds that lock (`ksmhold`, until `reset`):
 * no other oracle's `ksm merge` can merge its pages behind its back. MADV_PAGEOUT may put pages
 * in any oracle's swap file (the highest priority first), so while a scenario may have pages
 * out its agent holds a shared lock on a second file (`swaphold`, until `reset`), and an agent
 * takes that lock exclusively before its swapoff (which would swap them back in). */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SWAP_PRIO 32767
#define KSM_DIR "/sys/kernel/mm/ksm/"
#ifndef FS_IOC_SETFLAGS
#define FS_IOC_SETFLAGS _IOW('f', 2, long)
#endif
#define FS_NOCOW_FL_ 0x00800000 /* btrfs: a swap file must not be copy-on-write */

static char swap_dir[512], swap_path[600];
/* The locks a scenario holds until `reset` (closing the descriptor drops the flock). */
static int ksm_hold_fd = -1, swap_hold_fd = -1;
#define HOLD_TIMEOUT_MS 60000
static volatile sig_atomic_t swap_made, swap_enabled;
static uint64_t swap_pages;

/* The KSM values saved while ksmd runs for us (restored by ksm_restore, also from a handler). */
static struct {
	volatile sig_atomic_t active;
	char run[24], pages[24], sleep_ms[24], smart[24];
	int have_smart;
	int lock_fd;
} ksm_saved = { .lock_fd = -1 };

/* ---- small file helpers (system calls only: these also run in a signal handler) ---------- */

int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int err = errno;
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -(n < 0 ? err : EIO);
}

/* A small text file into out (NUL-terminated, trailing blanks and newline cut); 0 or -errno. */
int read_str(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, out, len - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	return 0;
}

static long read_num(const char *path)
{
	char b[64];
	if (read_str(path, b, sizeof b) < 0)
		return -1;
	return strtol(b, NULL, 10);
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* An flock on a lock file: its descriptor, or -errno (-ETIMEDOUT after timeout_ms). System
 * calls only: also from a signal handler. */
int lock_file(const char *path, int op, uint64_t timeout_ms)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	uint64_t t0 = now_ms();
	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int err = errno;
			close(fd);
			return -err;
		}
		if (now_ms() - t0 > timeout_ms) {
			close(fd);
			return -ETIMEDOUT;
		}
		sleep_ms(5);
	}
	return fd;
}

const char *lock_path(const char *what)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/cowlab-oracle-%s.lock", access("/run", W_OK) == 0 ? "/run" : "/tmp", what);
	return path;
}

/* ---- records: what a lock file says is to be put back ("PID WORD...\n", fsync'ed) --------- */

int write_record(int fd, const char *const *words, int n)
{
	char rec[REC_LEN];
	int len = snprintf(rec, sizeof rec, "%d", (int)getpid());
	for (int i = 0; i < n && len < (int)sizeof rec; i++)
		len += snprintf(rec + len, sizeof rec - (size_t)len, " %s", words[i]);
	if (len >= (int)sizeof rec - 1)
		return -E2BIG;
	rec[len++] = '\n';
	if (ftruncate(fd, 0) < 0)
		return -errno;
	ssize_t w = pwrite(fd, rec, (size_t)len, 0);
	if (w != len)
		return w < 0 ? -errno : -EIO;
	return fsync(fd) < 0 ? -errno : 0;
}

int read_record(int fd, int *pid, char words[][REC_WORD], int max)
{
	char rec[REC_LEN];
	ssize_t n = pread(fd, rec, sizeof rec - 1, 0);
	if (n <= 0)
		return -1;
	rec[n] = 0;
	char *save = NULL, *end;
	char *t = strtok_r(rec, " \n", &save);
	long p = t ? strtol(t, &end, 10) : 0;
	if (!t || *end || p <= 0)
		return -1;
	*pid = (int)p;
	int k = 0;
	while (k < max && (t = strtok_r(NULL, " \n", &save)) != NULL)
		snprintf(words[k++], REC_WORD, "%s", t);
	return k;
}

void clear_record(int fd)
{
	if (ftruncate(fd, 0) == 0)
		fsync(fd);
}

/* The end of a scenario: its processes are gone, so are its mergeable pages and swap entries. */
void system_release_holds(void)
{
	if (ksm_hold_fd >= 0)
		close(ksm_hold_fd);
	if (swap_hold_fd >= 0)
		close(swap_hold_fd);
	ksm_hold_fd = swap_hold_fd = -1;
	hugetlb_restore(); /* the scenario's hugetlb pool (hugetlb.c) */
}

/* ---- swap --------------------------------------------------------------------------------- */

/* wait: first let other oracles' scenarios with pages on our file end (not from a handler).
 * A file we made is always switched off before it is deleted, whatever swap_enabled says: a
 * signal may have come between swapon() and the flag (or swapoff() and the flag); swapoff of a
 * file that is not swap fails with EINVAL, which means it is off. */
static void swap_remove(int wait)
{
	int lock = -1;
	if (wait && swap_enabled) {
		system_release_holds();
		lock = lock_file(lock_path("swap"), LOCK_EX, 30000);
	}
	if ((swap_made || swap_enabled) && (swapoff(swap_path) == 0 || errno == EINVAL || errno == ENOENT))
		swap_enabled = 0;
	if (swap_enabled) {
		/* Still enabled (pages could not come back): keep the file, say so. */
		static const char msg[] = "cowlab-oracle: swapoff of the oracle's swap file failed; remove it by hand: swapoff ";
		ssize_t w = write(2, msg, sizeof msg - 1);
		w = write(2, swap_path, strlen(swap_path));
		w = write(2, "\n", 1);
		(void)w;
		if (lock >= 0)
			close(lock);
		return;
	}
	if (swap_made) {
		unlink(swap_path);
		rmdir(swap_dir);
		swap_made = 0;
	}
	if (lock >= 0)
		close(lock);
}

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683EUL: return "btrfs";
	case 0xF2F52010UL: return "f2fs";
	case 0x01021994: return "tmpfs";
	case 0x794C7630: return "overlayfs";
	case 0x65735546: return "fuse";
	case 0x6969: return "nfs";
	case 0x2FC12FC1: return "zfs";
	default: return "an unknown filesystem";
	}
}

/* An agent that is no more: no such process, or a zombie (its driver has not reaped it yet). */
static int agent_gone(long pid)
{
	if (pid <= 0 || pid == (long)getpid())
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 1;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Swap files an agent that no longer exists left enabled (it was killed before it could clean
 * up): their paths carry its PID. Only files named the way this helper names them. */
static void swap_remove_stale(void)
{
	static char buf[16384];
	int fd = open("/proc/swaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *line = strchr(buf, '\n'); line && *++line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char path[600];
		if (sscanf(line, "%599s", path) == 1) {
			char *base = strstr(path, "/cowlab-swap.");
			long pid = base ? strtol(base + 13, NULL, 10) : 0;
			char *slash = base ? strrchr(path, '/') : NULL;
			if (pid > 0 && slash && !strcmp(slash, "/swapfile") && agent_gone(pid) && swapoff(path) == 0) {
				unlink(path);
				*slash = 0;
				rmdir(path);
				fprintf(stderr, "cowlab-oracle: removed a swap file a killed oracle left enabled: %s/swapfile\n", path);
			}
		}
		if (!nl)
			break;
		line = nl;
	}
}

/* Fills the file with PAGES pages (no holes: swapon refuses them) and writes a swap header. */
static int swap_fill(int fd, uint64_t pages, int zeros)
{
	if (!zeros && fallocate(fd, 0, 0, (off_t)(pages * PAGE_BYTES)) == 0)
		goto header;
	static char zero[1 << 16];
	if (ftruncate(fd, 0) < 0)
		return -errno;
	for (uint64_t done = 0; done < pages * PAGE_BYTES;) {
		ssize_t w = write(fd, zero, sizeof zero);
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (uint64_t)w;
	}
header:;
	/* union swap_header (include/linux/swap.h), version 1: what mkswap writes. */
	static unsigned char page[PAGE_BYTES];
	memset(page, 0, sizeof page);
	uint32_t info[3] = { 1, (uint32_t)(pages - 1), 0 }; /* version, last_page, nr_badpages */
	memcpy(page + 1024, info, sizeof info);
	for (int i = 0; i < 16; i++) /* a uuid, for tools that show one */
		page[1024 + 12 + i] = (unsigned char)(rand() & 0xff);
	memcpy(page + 1024 + 12 + 16, "cowlab-oracle", 13); /* the volume label */
	memcpy(page + PAGE_BYTES - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, page, sizeof page, 0) != (ssize_t)sizeof page)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* Tries one directory; on failure writes why into `why`. */
static int swap_try(const char *dir, uint64_t pages, char *why, size_t len)
{
	struct statfs sf;
	const char *fs = statfs(dir, &sf) == 0 ? fs_name((long)sf.f_type) : "?";
	snprintf(swap_dir, sizeof swap_dir, "%s/cowlab-swap.%d.XXXXXX", dir, (int)getpid());
	snprintf(swap_path, sizeof swap_path, "%s/swapfile", swap_dir);
	/* No handler between making the directory and recording it. */
	sigset_t old;
	system_signals_block(&old);
	if (!mkdtemp(swap_dir)) {
		int err = errno;
		system_signals_restore(&old);
		snprintf(why, len, "%s (%s): cannot make a directory there: %s", dir, fs, strerror(err));
		return -err;
	}
	snprintf(swap_path, sizeof swap_path, "%s/swapfile", swap_dir);
	swap_made = 1; /* from here on swap_remove deletes the file (if any) and the directory */
	system_signals_restore(&old);
	int fd = open(swap_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = errno;
		snprintf(why, len, "%s (%s): cannot create a file there: %s", dir, fs, strerror(err));
		swap_remove(0);
		return -err;
	}
	int attr = 0;
	if (ioctl(fd, FS_IOC_SETFLAGS, &attr) == 0) { /* an empty file: NOCOW can still be set */
		attr |= FS_NOCOW_FL_;
		ioctl(fd, FS_IOC_SETFLAGS, &attr);
	}
	int rc = swap_fill(fd, pages, 0);
	int err = 0;
	if (rc == 0 && swapon(swap_path, SWAP_FLAG_PREFER | (SWAP_PRIO & SWAP_FLAG_PRIO_MASK)) < 0) {
		err = errno;
		/* Preallocated extents are refused by some filesystems: write it out, once more. */
		if (err == EINVAL && swap_fill(fd, pages, 1) == 0 &&
		    swapon(swap_path, SWAP_FLAG_PREFER | (SWAP_PRIO & SWAP_FLAG_PRIO_MASK)) == 0)
			err = 0;
	} else if (rc < 0) {
		err = -rc;
	}
	close(fd);
	if (rc == 0 && err == 0) {
		swap_enabled = 1;
		swap_pages = pages;
		return 0;
	}
	if (rc < 0)
		snprintf(why, len, "%s (%s): cannot write a %llu MiB file there: %s", dir, fs,
			 (unsigned long long)(pages * PAGE_BYTES >> 20), strerror(err));
	else
		snprintf(why, len, "%s (%s): swapon refuses a swap file there: %s%s", dir, fs, strerror(err),
			 err == EINVAL ? " (this filesystem does not support swap files)" :
			 err == EPERM ? " (needs root: CAP_SYS_ADMIN)" : "");
	swap_remove(0);
	return -err;
}

void cmd_swapon(char **tok, int n)
{
	if (swap_enabled) {
		say("ok %s %llu %d", swap_path, (unsigned long long)swap_pages, SWAP_PRIO);
		return;
	}
	uint64_t pages = n > 1 ? strtoull(tok[1], NULL, 10) : 0;
	if (pages < 16 || n < 3) {
		say("err %d usage: swapon PAGES DIR...", EINVAL);
		return;
	}
	swap_remove_stale();
	char why[1024] = "", one[400];
	int err = EINVAL;
	for (int i = 2; i < n; i++) {
		int rc = swap_try(tok[i], pages, one, sizeof one);
		if (rc == 0) {
			say("ok %s %llu %d", swap_path, (unsigned long long)swap_pages, SWAP_PRIO);
			return;
		}
		if (rc < 0)
			err = -rc;
		size_t used = strlen(why);
		snprintf(why + used, sizeof why - used, "%s%s", used ? "; " : "", one);
	}
	say("err %d %s", err, why);
}

/* `swapinfo`: size and use of our swap file, in pages, from /proc/swaps. */
void cmd_swapinfo(void)
{
	static char buf[16384];
	if (!swap_enabled) {
		say("err %d no swap file", ENOENT);
		return;
	}
	int fd = open("/proc/swaps", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		say("err %d /proc/swaps", EIO);
		return;
	}
	buf[n] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char path[600], type[32];
		unsigned long long size, used;
		if (sscanf(line, "%599s %31s %llu %llu", path, type, &size, &used) == 4 && !strcmp(path, swap_path)) {
			say("ok %llu %llu", size / 4, used / 4);
			return;
		}
	}
	say("err %d not in /proc/swaps", ENOENT);
}

void cmd_swapoff(void)
{
	if (!swap_enabled && !swap_made) {
		say("ok");
		return;
	}
	swap_remove(1);
	if (swap_enabled)
		say("err %d swapoff %s", errno, swap_path);
	else
		say("ok");
}

/* `swaphold`: this scenario may have pages out from now on (held until reset). */
void cmd_swaphold(void)
{
	if (swap_hold_fd < 0) {
		int fd = lock_file(lock_path("swap"), LOCK_SH, HOLD_TIMEOUT_MS);
		if (fd < 0) {
			say("err %d cannot lock %s", -fd, lock_path("swap"));
			return;
		}
		swap_hold_fd = fd;
	}
	say("ok");
}

/* Directories (and their swap files, not enabled) that an agent that is no more left in DIR. */
static void swap_remove_stale_dirs(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "cowlab-swap.", 12) != 0)
			continue;
		char *end;
		long pid = strtol(e->d_name + 12, &end, 10);
		if (end == e->d_name + 12 || *end != '.' || strlen(end + 1) != 6 || !agent_gone(pid))
			continue;
		char sub[1024], file[1100];
		snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
		snprintf(file, sizeof file, "%s/swapfile", sub);
		if (swapoff(file) == 0 || errno == EINVAL || errno == ENOENT) {
			unlink(file);
			if (rmdir(sub) == 0)
				fprintf(stderr, "cowlab-oracle: removed what a killed oracle left of its swap file: %s\n", sub);
		}
	}
	closedir(d);
}

/* ---- KSM ---------------------------------------------------------------------------------- */

static void ksm_put_back(const char *run, const char *pages, const char *sleep_ms_, const char *smart)
{
	write_str(KSM_DIR "run", run);
	if (*pages)
		write_str(KSM_DIR "pages_to_scan", pages);
	if (*sleep_ms_)
		write_str(KSM_DIR "sleep_millisecs", sleep_ms_);
	if (*smart)
		write_str(KSM_DIR "smart_scan", smart);
}

/* Puts the saved values back (also from a signal handler) and clears the record. */
static void ksm_restore(void)
{
	if (!ksm_saved.active)
		return;
	ksm_put_back(ksm_saved.run, ksm_saved.pages, ksm_saved.sleep_ms, ksm_saved.have_smart ? ksm_saved.smart : "");
	ksm_saved.active = 0;
	if (ksm_saved.lock_fd >= 0)
		clear_record(ksm_saved.lock_fd);
}

/* An agent that died while ksmd ran for it left its saved values in the lock file. */
static void ksm_recover(int lock_fd)
{
	char w[4][REC_WORD]; /* run, pages_to_scan, sleep_millisecs, smart_scan ("-": none) */
	int pid;
	if (read_record(lock_fd, &pid, w, 4) == 4) {
		ksm_put_back(w[0], w[1], w[2], strcmp(w[3], "-") ? w[3] : "");
		fprintf(stderr, "cowlab-oracle: put back the KSM settings an oracle (pid %d) left changed: run=%s pages_to_scan=%s sleep_millisecs=%s\n",
			pid, w[0], w[1], w[2]);
	}
	clear_record(lock_fd);
}

/* `ksmhold`: this scenario has mergeable mappings from now on (held until reset). Answers
 * KSM's run value: anything but 0 means ksmd runs anyway, by the machine's own setting. */
void cmd_ksmhold(void)
{
	char run[24] = "none";
	if (access(KSM_DIR "run", F_OK) == 0 && ksm_hold_fd < 0) {
		int fd = lock_file(lock_path("ksm"), LOCK_EX, HOLD_TIMEOUT_MS);
		if (fd < 0) {
			say("err %d cannot lock %s%s", -fd, lock_path("ksm"), fd == -ETIMEDOUT ? ": another cowlab oracle holds it" : "");
			return;
		}
		ksm_recover(fd);
		ksm_hold_fd = fd;
	}
	if (access(KSM_DIR "run", F_OK) == 0)
		read_str(KSM_DIR "run", run, sizeof run);
	say("ok %s", run);
}

/* Every CPU's LRU batches emptied (lru_add_drain_all), as ksmd does at the start of each full
 * scan (scan_get_next_rmap_item): move_pages(2) of a page of the agent's own to the node it is
 * on moves nothing, but first calls lru_cache_disable(), which drains the batches of all CPUs
 * and waits for that. 0, or an errno (ENOSYS: a kernel without NUMA migration). */
static int lru_drain_all_cpus(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	p[0] = 1;
	void *pages[1] = { p };
	int status[1] = { -1 }, err = 0;
	/* nodes NULL: only where the page is (status), then a move to that node. */
	if (syscall(SYS_move_pages, 0, 1UL, pages, NULL, status, 0) < 0)
		err = errno;
	else if (status[0] < 0)
		err = -status[0];
	else if (syscall(SYS_move_pages, 0, 1UL, pages, status, status, 0) < 0)
		err = errno;
	munmap(p, psz);
	return err;
}

void cmd_ksm(uint64_t passes, uint64_t timeout_ms, int smart)
{
	char run[24];
	if (access(KSM_DIR "run", F_OK) < 0) {
		say("err %d this kernel has no KSM (/sys/kernel/mm/ksm is missing: CONFIG_KSM is not set)", ENOENT);
		return;
	}
	int lock = ksm_hold_fd >= 0 ? ksm_hold_fd : lock_file(lock_path("ksm"), LOCK_EX, timeout_ms);
	if (lock < 0) {
		say("err %d cannot lock %s%s", -lock, lock_path("ksm"), lock == -ETIMEDOUT ? ": another cowlab oracle holds it" : "");
		return;
	}
	if (lock != ksm_hold_fd)
		ksm_recover(lock);
	if (read_str(KSM_DIR "run", run, sizeof run) < 0) {
		say("err %d cannot read " KSM_DIR "run", errno);
		goto out;
	}
	if (!strcmp(run, "2")) {
		say("err %d KSM is unmerging everything on this machine (run=2); the oracle leaves it so", EBUSY);
		goto out;
	}
	memset(&ksm_saved, 0, sizeof ksm_saved);
	ksm_saved.lock_fd = lock;
	strcpy(ksm_saved.run, run);
	read_str(KSM_DIR "pages_to_scan", ksm_saved.pages, sizeof ksm_saved.pages);
	read_str(KSM_DIR "sleep_millisecs", ksm_saved.sleep_ms, sizeof ksm_saved.sleep_ms);
	ksm_saved.have_smart = read_str(KSM_DIR "smart_scan", ksm_saved.smart, sizeof ksm_saved.smart) == 0;
	const char *rec[4] = { ksm_saved.run, ksm_saved.pages, ksm_saved.sleep_ms, ksm_saved.have_smart ? ksm_saved.smart : "-" };
	int rrc = write_record(lock, rec, 4);
	if (rrc < 0) {
		say("err %d cannot record the KSM settings in %s", -rrc, lock_path("ksm"));
		goto out;
	}
	ksm_saved.active = 1;
	long start = read_num(KSM_DIR "full_scans");
	/* Fast scanning; pages_to_scan is refused while the advisor tunes it (then it stays). */
	write_str(KSM_DIR "pages_to_scan", "100000");
	write_str(KSM_DIR "sleep_millisecs", "0");
	if (ksm_saved.have_smart)
		write_str(KSM_DIR "smart_scan", smart ? "1" : "0");
	int rc = write_str(KSM_DIR "run", "1");
	if (rc < 0) {
		ksm_restore();
		say("err %d cannot switch KSM on (" KSM_DIR "run)%s", -rc, -rc == EACCES || -rc == EPERM ? ": needs root" : "");
		goto out;
	}
	long scans = start;
	uint64_t t0 = now_ms();
	while (scans - start < (long)passes && now_ms() - t0 < timeout_ms) {
		sleep_ms(1);
		scans = read_num(KSM_DIR "full_scans");
	}
	uint64_t took = now_ms() - t0;
	ksm_restore();
	/* ksmd, stopped (writing run waits for its batch of pages to end), may have left a page in
	 * its CPU's LRU batches: break_cow()'s copy, a page it marked accessed. Its next scan would
	 * drain them; with none to come, a later MADV_PAGEOUT on another CPU (whose own
	 * lru_add_drain() is local) finds that page off the LRU and leaves it. */
	int drained = lru_drain_all_cpus();
	if (scans - start < (long)passes)
		say("err %d KSM made %ld of %llu full scans in %llu ms", ETIMEDOUT, scans - start,
		    (unsigned long long)passes, (unsigned long long)took);
	else
		say("ok %ld %llu %s %d", scans - start, (unsigned long long)took, run, drained);
out:
	ksm_saved.lock_fd = -1;
	if (lock != ksm_hold_fd)
		close(lock);
}

/* ---- cleanup ------------------------------------------------------------------------------ */

/* `cowlab-oracle reclaim DIR...`: what agents that are no more (killed, or stopped by the
 * driver's watchdog) left changed: their swap files switched off and deleted (enabled or not,
 * in /proc/swaps and in each DIR), and the KSM settings one recorded before a merge put back
 * (unless another oracle holds the KSM lock: it has put them back when it took it). */
int system_reclaim(int argc, char **argv)
{
	hugetlb_reclaim();
	khugepaged_reclaim();
	swap_remove_stale();
	for (int i = 0; i < argc; i++)
		swap_remove_stale_dirs(argv[i]);
	const char *kl = lock_path("ksm");
	if (access(kl, F_OK) == 0) {
		int fd = lock_file(kl, LOCK_EX, 2000);
		if (fd >= 0) {
			ksm_recover(fd);
			close(fd);
		}
	}
	return 0;
}

/* Every change to the machine undone (after the scenario processes are gone). */
void system_cleanup(void)
{
	ksm_restore();
	system_release_holds();
	khugepaged_restore();
	swap_remove(1);
}

/* From a signal handler (system calls only): kill and reap the scenario processes, then undo.
 * Every wait in here is bounded (procs_emergency: 5 s), so the agent always goes. */
static void system_emergency(int sig)
{
	if (getpid() != agent_pid) /* a child of the agent before it reset its handlers */
		_exit(128 + sig);
	ksm_restore();
	procs_emergency();
	hugetlb_restore();
	khugepaged_restore();
	swap_remove(0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig); /* dies of the signal, as without a handler */
	_exit(128 + sig);
}

void system_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = system_emergency;
	sigfillset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The signals the handler takes, held back (around a fork and the recording of its child). */
void system_signals_block(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, old);
}

void system_signals_restore(const sigset_t *old)
{
	int err = errno;
	sigprocmask(SIG_SETMASK, old, NULL);
	errno = err;
}

/* In a scenario process: none of the agent's handlers (it must never undo anything). */
void system_signals_default(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}
