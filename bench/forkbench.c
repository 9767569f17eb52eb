/* cowlab bench: time fork() of a populated anonymous region on the live kernel.
 * usage: forkbench MIB REPS
 * Maps MIB MiB private anonymous memory (MADV_NOHUGEPAGE: 4 KiB pages, like the model),
 * writes every page, then forks REPS times (the child exits at once; the parent writes one
 * word per page again between forks, so every fork finds writable, exclusive pages) and prints
 * one JSON line: populate time, fork times (min, median) in nanoseconds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s MIB REPS\n", argv[0]);
		return 2;
	}
	size_t mib = strtoull(argv[1], NULL, 10);
	int reps = atoi(argv[2]);
	if (reps < 1 || reps > 1000) reps = 5;
	size_t len = mib << 20, pages = len / 4096;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		printf("{\"error\":\"mmap failed\"}\n");
		return 1;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < pages; i++) p[i * 4096] = 1;
	uint64_t populate = now_ns() - t0;
	uint64_t *forks = calloc((size_t)reps, sizeof *forks);
	for (int r = 0; r < reps; r++) {
		for (size_t i = 0; i < pages; i++) p[i * 4096] = (char)r;
		uint64_t a = now_ns();
		pid_t pid = fork();
		if (pid == 0) _exit(0);
		uint64_t b = now_ns();
		if (pid < 0) {
			printf("{\"error\":\"fork failed\"}\n");
			return 1;
		}
		waitpid(pid, NULL, 0);
		forks[r] = b - a;
	}
	qsort(forks, (size_t)reps, sizeof *forks, cmp_u64);
	printf("{\"mib\":%zu,\"pages\":%zu,\"populateNs\":%llu,\"forkMinNs\":%llu,\"forkMedianNs\":%llu,\"reps\":%d}\n",
	       mib, pages, (unsigned long long)populate, (unsigned long long)forks[0],
	       (unsigned long long)forks[reps / 2], reps);
	return 0;
}
