/* khugepaged held asleep for a live session, and always woken back to the machine's settings.
 *
 * khugepaged collapses a PTE-mapped range of an MADV_HUGEPAGE (or, in mode `always`, any)
 * mapping into a THP whenever its scan reaches it, every scan_sleep_millisecs (10 s by
 * default), taking up to pages_to_scan pages a pass. A scenario that has PTE-mapped a THP on
 * purpose (an mprotect, a partial munmap, a write after fork) would then see a collapse that no
 * step asked for between two steps. `khpause` stops that for the session:
 *
 *   - pages_to_scan is set to KH_PAGES and then scan_sleep_millisecs to KH_SLEEP_MS (a day).
 *     Writing scan_sleep_millisecs wakes khugepaged at once for one pass (a short one now),
 *     after which it sleeps for the new time; nothing else ends that sleep early (a new mm
 *     registering wakes it, but its wait goes on until the time is up). `khpause` answers once
 *     the thread sleeps again (KH_SETTLE_MS at most): at nice 19 on a busy machine it may run
 *     that pass a second later, when a scenario has started.
 *   - It sleeps that long only while it has an mm to scan: with none it waits, without a time
 *     limit, for the next mm that registers (an MADV_HUGEPAGE) and scans at once. So the agent
 *     registers its own mm first (an MADV_HUGEPAGE range, unmapped again: an mm stays on
 *     khugepaged's list until it exits), and khugepaged has work for the whole session.
 *   - max_ptes_none is left alone: below 511 it would make the shrinker of underused THPs
 *     (6.12+: thp_underused(), run under memory pressure) split THPs with zero-filled pages,
 *     another change no step asked for. max_ptes_swap and max_ptes_shared only limit the
 *     khugepaged scan that no longer runs. MADV_COLLAPSE (`madvise ... collapse`) is
 *     synchronous and ignores all of these, so it is replayed as before.
 *
 * The machine's two values are recorded first in DIR/cowlab-oracle-khugepaged.lock ("PID
 * SLEEP PAGES\n", write_record), whose exclusive flock is held only while the record or the
 * settings change. Sessions side by side share the pause: each holds a shared flock on
 * DIR/cowlab-oracle-khugepaged-users.lock while it runs; the first one records and writes, the
 * last one out (no other shared flock) writes the recorded values back and clears the record.
 * khugepaged_restore (quit, the end of the input, SIGINT, SIGTERM, SIGHUP: system calls only)
 * does that; an agent killed with SIGKILL loses its shared flock with its descriptors, and its
 * record is put back by `cowlab-oracle reclaim` (the driver runs it when its agent is gone)
 * when no session holds the pause any more, or kept by the next session's `khpause` as the
 * machine's values. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#define KH_DIR "/sys/kernel/mm/transparent_hugepage/khugepaged/"
#define KH_SLEEP_MS "86400000"
#define KH_PAGES "8"
#define KH_LOCK_MS 10000
#define KH_SETTLE_MS 5000

static volatile sig_atomic_t kh_active; /* paused by this agent, not yet given up */
static char kh_old_sleep[REC_WORD], kh_old_pages[REC_WORD];
static char kh_rec_path[128], kh_users_path[128];
static int kh_users_fd = -1;

static void kh_paths(void)
{
	snprintf(kh_rec_path, sizeof kh_rec_path, "%s", lock_path("khugepaged"));
	snprintf(kh_users_path, sizeof kh_users_path, "%s", lock_path("khugepaged-users"));
}

/* Writes name = value unless it holds that already (a write of scan_sleep_millisecs wakes
 * khugepaged); 1 written, 0 held already, or -errno. */
static int kh_set(const char *name, const char *value)
{
	char path[128], now[REC_WORD];
	snprintf(path, sizeof path, KH_DIR "%s", name);
	if (read_str(path, now, sizeof now) == 0 && !strcmp(now, value))
		return 0;
	int rc = write_str(path, value);
	return rc < 0 ? rc : 1;
}

/* The recorded values back (the sleep last: its write wakes khugepaged with both in place). */
static void kh_put_back(const char *sleep_ms, const char *pages)
{
	write_str(KH_DIR "pages_to_scan", pages);
	write_str(KH_DIR "scan_sleep_millisecs", sleep_ms);
}

/* With the record's flock held (fd): puts the record's values back if no session holds the
 * pause any more; 1 when it did. System calls only. */
static int kh_put_back_if_last(int rec_fd, const char *sleep_ms, const char *pages)
{
	int users = open(kh_users_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (users < 0)
		return 0;
	int last = flock(users, LOCK_EX | LOCK_NB) == 0;
	if (last) {
		kh_put_back(sleep_ms, pages);
		clear_record(rec_fd);
	}
	close(users);
	return last;
}

/* This agent gives the pause up; the last session to do so puts the settings back. Also from
 * a signal handler (system calls only; the wait for the record's flock is bounded). */
void khugepaged_restore(void)
{
	if (!kh_active)
		return;
	kh_active = 0;
	if (kh_users_fd >= 0)
		close(kh_users_fd); /* drops this session's shared flock first */
	kh_users_fd = -1;
	int rec = lock_file(kh_rec_path, LOCK_EX, 2000);
	if (rec < 0)
		return; /* whoever holds it sees the users' lock as it is now */
	kh_put_back_if_last(rec, kh_old_sleep, kh_old_pages);
	close(rec);
}

/* `cowlab-oracle reclaim`: the values an agent that is no more left recorded, put back unless
 * a session still holds the pause (its end puts them back). */
void khugepaged_reclaim(void)
{
	kh_paths();
	if (access(kh_rec_path, F_OK) < 0)
		return;
	int rec = lock_file(kh_rec_path, LOCK_EX, 2000);
	if (rec < 0)
		return;
	char w[2][REC_WORD];
	int pid;
	if (read_record(rec, &pid, w, 2) == 2 && kh_put_back_if_last(rec, w[0], w[1]))
		fprintf(stderr, "cowlab-oracle: put back khugepaged's scan_sleep_millisecs=%s pages_to_scan=%s, which an oracle (pid %d) left changed\n",
			w[0], w[1], pid);
	close(rec);
}

/* The khugepaged thread's pid (a kernel thread of that name), or -1. */
static long kh_thread(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	long pid = -1;
	struct dirent *e;
	while (pid < 0 && (e = readdir(d)) != NULL) {
		char *end, path[64], comm[32];
		long n = strtol(e->d_name, &end, 10);
		if (n <= 0 || *end)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/comm", n);
		if (read_str(path, comm, sizeof comm) == 0 && !strcmp(comm, "khugepaged")) {
			snprintf(path, sizeof path, "/proc/%ld/exe", n);
			char exe[8];
			if (readlink(path, exe, sizeof exe) < 0 && errno == ENOENT) /* a kernel thread has no exe */
				pid = n;
		}
	}
	closedir(d);
	return pid;
}

/* The thread's voluntary context switches (-1: unknown), and whether it sleeps where it
 * waits between passes: in khugepaged() itself (khugepaged_wait_work is inlined there). */
static long kh_switches(long pid, int *waiting)
{
	static const char vol[] = "\nvoluntary_ctxt_switches:", state[] = "\nState:";
	char path[64], buf[4096], wchan[64];
	long n = -1;
	*waiting = 0;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if (read_str(path, buf, sizeof buf) < 0)
		return -1;
	char *v = strstr(buf, vol), *st = strstr(buf, state);
	if (v)
		n = strtol(v + sizeof vol - 1, NULL, 10);
	if (st) {
		st += sizeof state - 1;
		st += strspn(st, " \t");
		snprintf(path, sizeof path, "/proc/%ld/wchan", pid);
		*waiting = *st == 'S' && read_str(path, wchan, sizeof wchan) == 0 && !strcmp(wchan, "khugepaged");
	}
	return n;
}

/* Registers this agent's mm with khugepaged (see above): an MADV_HUGEPAGE range, unmapped. */
static void kh_register(void)
{
	char *m;
	thp_range(&m);
	if (m)
		munmap(m, 2 * PMD_BYTES);
}

/* Records the machine's values (or takes the record's: paused already), joins the pause and
 * writes the session's values; 1 when scan_sleep_millisecs was written (khugepaged woken), 0
 * when it held the value already, else -errno with `why` said. Signals held back. */
static int kh_pause(const char **why)
{
	char w[2][REC_WORD];
	int pid, rc;
	*why = "";
	kh_paths();
	int rec = lock_file(kh_rec_path, LOCK_EX, KH_LOCK_MS);
	if (rec < 0) {
		*why = "cannot lock the record";
		return rec;
	}
	int users = open(kh_users_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* No one holds it exclusively without the record's flock, which we hold. */
	if (users < 0 || flock(users, LOCK_SH | LOCK_NB) < 0) {
		rc = -errno;
		*why = "cannot lock the users' file";
		goto fail;
	}
	if (read_record(rec, &pid, w, 2) == 2) {
		/* Paused already: by a session still running, or by an agent killed before it put the
		 * values back. Either way the record holds the machine's values. */
		snprintf(kh_old_sleep, sizeof kh_old_sleep, "%s", w[0]);
		snprintf(kh_old_pages, sizeof kh_old_pages, "%s", w[1]);
	} else if (read_str(KH_DIR "scan_sleep_millisecs", kh_old_sleep, sizeof kh_old_sleep) < 0 ||
		   read_str(KH_DIR "pages_to_scan", kh_old_pages, sizeof kh_old_pages) < 0) {
		rc = -EIO;
		*why = "cannot read the settings";
		goto fail;
	} else {
		const char *vals[2] = { kh_old_sleep, kh_old_pages };
		rc = write_record(rec, vals, 2);
		if (rc < 0) {
			*why = "cannot write the record";
			goto fail;
		}
	}
	kh_users_fd = users;
	kh_active = 1;
	kh_register();
	rc = kh_set("pages_to_scan", KH_PAGES);
	if (rc >= 0)
		rc = kh_set("scan_sleep_millisecs", KH_SLEEP_MS);
	close(rec);
	if (rc < 0) {
		khugepaged_restore();
		*why = "cannot write the settings";
	}
	return rc;
fail:
	if (users >= 0)
		close(users);
	close(rec);
	return rc;
}

/* `khpause`: khugepaged asleep until this agent ends. Answers "ok SLEEP PAGES NEWSLEEP NEWPAGES
 * SETTLED" (the machine's values, put back at the end, the session's, and how many ms khugepaged
 * took to go back to sleep after the change woke it: 0 not woken, -1 not seen within
 * KH_SETTLE_MS), or "err ERRNO why". */
void cmd_khpause(void)
{
	if (kh_active) {
		say("ok %s %s %s %s 0", kh_old_sleep, kh_old_pages, KH_SLEEP_MS, KH_PAGES);
		return;
	}
	if (access(KH_DIR "scan_sleep_millisecs", F_OK) < 0 || access(KH_DIR "pages_to_scan", F_OK) < 0) {
		say("err %d this kernel has no khugepaged (" KH_DIR " is missing: no THP)", ENOENT);
		return;
	}
	if (access(KH_DIR "scan_sleep_millisecs", W_OK) < 0 || access(KH_DIR "pages_to_scan", W_OK) < 0) {
		int err = errno;
		say("err %d cannot write " KH_DIR "scan_sleep_millisecs%s", err, err == EACCES || err == EPERM || err == EROFS ? ": needs root" : "");
		return;
	}
	long thread = kh_thread();
	int waiting;
	long before = thread > 0 ? kh_switches(thread, &waiting) : -1;
	uint64_t t0 = now_ms();
	/* No handler in the middle: it would wait for the record's flock this agent holds. */
	sigset_t old;
	const char *why;
	system_signals_block(&old);
	int rc = kh_pause(&why);
	system_signals_restore(&old);
	if (rc < 0) {
		say("err %d %s (" KH_DIR ", %s)%s", -rc, why, kh_rec_path, -rc == EACCES || -rc == EPERM ? ": needs root" : "");
		return;
	}
	/* The write woke khugepaged for one pass: wait until it sleeps again, so that the pass
	 * cannot come while a scenario runs (on a busy machine the thread, at nice 19, may start
	 * it a second later: measured). */
	long settled = 0;
	if (rc == 1 && before >= 0) {
		settled = -1;
		while (now_ms() - t0 < KH_SETTLE_MS) {
			long now = kh_switches(thread, &waiting);
			if (now > before && waiting) {
				settled = (long)(now_ms() - t0);
				break;
			}
			sleep_ms(1);
		}
	}
	say("ok %s %s %s %s %ld", kh_old_sleep, kh_old_pages, KH_SLEEP_MS, KH_PAGES, settled);
}
