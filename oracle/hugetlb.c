/* The hugetlb pool for `mmap ... hugetlb` scenarios: the oracle sets the number of persistent
 * 2 MiB huge pages so that exactly the scenario's free pool (config.hugepages) is free and
 * unreserved, and always puts the machine's old value back.
 *
 * `hugetlb N` records the old value of nr_hugepages (first in this agent: the machine's own) in
 * a lock file, DIR/cowlab-oracle-hugetlb.lock ("PID OLD\n", fsync'ed before anything changes),
 * held with an exclusive flock while the value is changed, then writes nr_hugepages so that
 * free_hugepages - resv_hugepages is N, and answers "ok AVAILABLE NR FREE RESV" (AVAILABLE may
 * be short of N: the kernel could not find the memory). `reset` (the end of a scenario), quit,
 * the end of input, SIGINT, SIGTERM and SIGHUP put the old value back (hugetlb_restore: system
 * calls only, also from a signal handler). An agent killed before it could leaves the record:
 * the next `hugetlb` command, or `cowlab-oracle reclaim`, puts that value back first.
 * nr_overcommit_hugepages is never touched. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define HP_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

static volatile sig_atomic_t hp_active; /* the old value is recorded and not yet put back */
static char hp_old[24];
static int hp_lock_fd = -1;

static const char *hp_lock_path(void)
{
	return lock_path("hugetlb");
}

static long hp_read(const char *name)
{
	char path[160], b[32];
	snprintf(path, sizeof path, HP_DIR "%s", name);
	if (read_str(path, b, sizeof b) < 0)
		return -1;
	return strtol(b, NULL, 10);
}

/* A record left by an agent that died before it put the value back: put it back now. */
static void hp_recover(int fd)
{
	char old[1][REC_WORD];
	int pid;
	if (read_record(fd, &pid, old, 1) == 1 && pid != (int)getpid()) {
		if (write_str(HP_DIR "nr_hugepages", old[0]) == 0)
			fprintf(stderr, "cowlab-oracle: put back nr_hugepages=%s, which an oracle (pid %d) left changed\n", old[0], pid);
	}
	clear_record(fd);
}

/* Puts the machine's nr_hugepages back and clears the record (also from a signal handler). */
void hugetlb_restore(void)
{
	if (!hp_active)
		return;
	write_str(HP_DIR "nr_hugepages", hp_old);
	hp_active = 0;
	if (hp_lock_fd >= 0) {
		clear_record(hp_lock_fd);
		close(hp_lock_fd); /* drops the flock */
		hp_lock_fd = -1;
	}
}

/* `cowlab-oracle reclaim`: a record of a dead agent put back. */
void hugetlb_reclaim(void)
{
	int fd = open(hp_lock_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		hp_recover(fd);
	close(fd);
}

/* `hugetlb N`: N free unreserved huge pages. */
void cmd_hugetlb(uint64_t want)
{
	if (access(HP_DIR "nr_hugepages", F_OK) < 0) {
		say("err %d this kernel has no 2 MiB hugetlb pool (" HP_DIR " is missing: CONFIG_HUGETLBFS is not set)", ENOENT);
		return;
	}
	if (!hp_active) {
		int fd = open(hp_lock_path(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			say("err %d cannot open %s", errno, hp_lock_path());
			return;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int err = errno;
			close(fd);
			say("err %d %s is held: another cowlab oracle is changing the hugetlb pool", err == EWOULDBLOCK ? EBUSY : err, hp_lock_path());
			return;
		}
		hp_recover(fd);
		long old = hp_read("nr_hugepages");
		if (old < 0) {
			close(fd);
			say("err %d cannot read " HP_DIR "nr_hugepages", EIO);
			return;
		}
		snprintf(hp_old, sizeof hp_old, "%ld", old);
		const char *rec[1] = { hp_old };
		int rrc = write_record(fd, rec, 1);
		if (rrc < 0) {
			close(fd);
			say("err %d cannot record nr_hugepages in %s", -rrc, hp_lock_path());
			return;
		}
		hp_lock_fd = fd;
		hp_active = 1;
	}
	long nr = hp_read("nr_hugepages"), fr = hp_read("free_hugepages"), rs = hp_read("resv_hugepages");
	long target = nr + ((long)want - (fr - rs));
	if (target < 0)
		target = 0;
	char v[32];
	snprintf(v, sizeof v, "%ld", target);
	int rc = write_str(HP_DIR "nr_hugepages", v);
	if (rc < 0) {
		say("err %d cannot write " HP_DIR "nr_hugepages%s", -rc, -rc == EACCES || -rc == EPERM ? ": needs root" : "");
		return;
	}
	nr = hp_read("nr_hugepages");
	fr = hp_read("free_hugepages");
	rs = hp_read("resv_hugepages");
	say("ok %ld %ld %ld %ld", fr - rs, nr, fr, rs);
}
