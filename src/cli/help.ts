import { DEFAULT_OPS, OP_NAMES } from '../explore/ops.js';
import { ALL_OPS as RANDOM_OPS } from '../oracle/random/generate.js';

const DEFAULT_OPS_TEXT = DEFAULT_OPS.join(',');
const ALL_OPS_TEXT = OP_NAMES.join(',');

// Help texts: what each command does, its options, and an example that works from a clone.

/** `head` then the words, comma-separated, wrapped at 94 columns with `indent` before each further line. */
function wrapWords(head: string, words: readonly string[], indent: string, tail: string): string {
  const lines: string[] = [];
  let line = head;
  words.forEach((w, i) => {
    const word = i < words.length - 1 ? `${w},` : `${w}${tail}`;
    if (line.length + 1 + word.length > 94) {
      lines.push(line);
      line = indent + word;
    } else line += ` ${word}`;
  });
  lines.push(line);
  return lines.join('\n');
}

/** The oracle's --random operations (each declared with its operation: the `random` facet in src/ops). */
const RANDOM_OPS_TEXT = wrapWords('  --ops LIST      the operations to generate, comma-separated (default all:', RANDOM_OPS, ' '.repeat(18), ')');

export const MAIN_HELP = `cowlab: an executable model of Linux anonymous-memory copy-on-write

Run a scenario (processes, mappings, fork, writes, pins ...) on a faithful model of the
kernel's fork/COW/pinning rules, under the rules of a chosen kernel version, and see every
read, fault, copy, refcount and page table, checked against what a program may rely on.

usage: cowlab <command> [options]
       cowlab --version

commands:
  run FILE|DIR...     run scenarios and judge them against their \`outcomes\`
  compare FILE|DIR... every scenario on every kernel profile: a matrix of verdicts
  explore [options]   search all operation sequences for the shortest that breaks an invariant
  profiles [NAME]     list the kernel profiles, or show one profile's switches
  oracle FILE|DIR...  the model beside the live Linux kernel, step by step (--random N)
  export FILE -o F.c  the scenario as a standalone C program checking the live kernel
  serve [PATH]        a web page that steps through scenarios on one or two profiles
  help [COMMAND]      this text, or a command's

examples:
  npx cowlab compare scenarios/seeds
  npx cowlab run scenarios/basic/
  npx cowlab run scenarios/basic/last-sharer-reuses.scn.yaml --trace
  npx cowlab profiles v5.9
  npx cowlab serve scenarios/seeds

exit status: 0 every run matched its outcomes; 1 some did not; 2 bad input; 70 an internal
error (a bug in cowlab; COWLAB_DEBUG=1 shows where); 130 stopped by SIGINT/SIGTERM (explore,
compare, run of several files report what they found first).
The scenario language: docs/scenario-language.md (scenario files: regular files of 1 MiB at most).`;

export const RUN_HELP = `usage: cowlab run FILE|DIR... [options]

Runs each scenario on the model under one kernel profile, beside the ideal semantics, and
prints one line per step saying what happened (the fault, the copy or reuse and why), the
violations found, and the verdict against the file's \`outcomes\` for that profile.
A directory stands for every *.scn.yaml file below it.

options:
  --kernel NAME     the profile to run under (default: the file's \`kernel:\`, else v6);
                    \`cowlab profiles\` lists them; a what-if name as a run prints it
                    (v5.9+forkEarlyCow=false) is taken too
  --set SW=VALUE    override one switch of the profile: a what-if kernel (repeatable)
  --profiles FILE   load user-defined profiles (docs/profiles.md) (repeatable)
  --trace           every kernel event, and every PTE (of every process) and frame each
                    step changed, before → after (fork: the parent's PTE write-protected,
                    the child's new PTE, refcount and mapcount 1 → 2, anon-exclusive
                    cleared); past the first 4 pages of a large range, the rest counted by
                    kind; each step of a kernel path started with \`&\` says what it read
                    and what it decided, under the thread that runs it
  --stats           the counters (PageTables_kB, rss, cow_copies ...) at the end
  --json            one JSON document on stdout (format: docs/json-format.md)
  --quiet           only the verdict line per file
  --max-memory MiB  refuse a scenario whose estimated host memory is more: every page
                    mapped in every process (a fork copies the parent's) at 48 bytes,
                    checked before anything runs (default: half of this machine's memory)
  --progress        several files: a line on stderr per scenario run (on a terminal one
                    line is rewritten in place anyway, without --json)
  -h, --help        this text

SIGINT or SIGTERM (Ctrl-C) on several files: the scenarios that finished are reported, with
the count of those that did not run, exit 130.

exit status: 0 every run matched its outcomes (without outcomes: had no violation);
             1 some run did not; 2 bad input (the message names FILE:LINE:COL), or a
             scenario past --max-memory (named at the step that passes it); 70 an
             internal error (a bug in cowlab); 130 interrupted.

examples:
  npx cowlab run scenarios/basic/                      (exit 0: every file as its outcomes say)
  npx cowlab run scenarios/seeds/cve-2020-29374-vmsplice-leak.scn.yaml --kernel v5.7 --trace
  npx cowlab run scenarios/seeds/rdma-pin-fork-child-exits.scn.yaml --kernel v5.9+forkEarlyCow=false  (exit 1)`;

export const PROFILES_HELP = `usage: cowlab profiles [NAME] [--profiles FILE] [--json]

Lists the kernel profiles (name and what it models), or with NAME shows every behaviour
switch of that profile and where it comes from. A switch can be overridden in any run with
--set SWITCH=VALUE; NAME may be such a what-if kernel as a run prints it
(cowlab profiles v5.9+forkEarlyCow=false).

options:
  --profiles FILE   load user-defined profiles too (docs/profiles.md) (repeatable)
  --json            one JSON document: the profiles, or the one named, with every switch's
                    values (docs/json-format.md)
  -h, --help        this text

exit status: 0 listed; 2 bad input (an unknown profile, a bad --profiles file).

examples:
  npx cowlab profiles
  npx cowlab profiles v5.19 --json`;

export const COMPARE_HELP = `usage: cowlab compare FILE|DIR... [options]

Runs every scenario on every kernel profile and prints a matrix scenario x profile: ok, n/a
(the profile lacks an operation the scenario uses), or the violation kinds found. A cell that
contradicts the file's \`outcomes\` for that profile is marked "!" and explained below.

options:
  --kernels a,b,...   only these profiles (default: all but the long-term kernels, oldest
                      first); what-if names like v5.9+forkEarlyCow=false are taken too, and
                      \`lts\` stands for the long-term kernels 5.4,5.10,5.15,6.1,6.6,6.12
  --set SW=VALUE      override a switch on every profile: what-if kernels (repeatable)
  --profiles FILE     load user-defined profiles (docs/profiles.md) (repeatable)
  --json              the matrix as one JSON document
  --max-memory MiB    refuse a scenario whose estimated host memory is more (as in
                      cowlab run; default: half of this machine's memory)
  --progress          a line on stderr per scenario done (on a terminal one line is
                      rewritten in place anyway, without --json)
  -h, --help          this text

A cell where cowlab itself fails (an internal error, a bug) shows ERROR; the other cells go on.
SIGINT or SIGTERM (Ctrl-C): the rows of the scenarios that finished are printed, exit 130.

exit status: 0 no cell contradicts its outcomes; 1 some cell does; 2 bad input (or a
scenario past --max-memory); 70 some cell is an ERROR; 130 interrupted.

examples:
  npx cowlab compare scenarios/seeds                   (exit 0)
  npx cowlab compare scenarios/seeds --kernels v5.7,v5.8,v5.9+forkEarlyCow=false   (exit 1)
  npx cowlab compare scenarios/seeds --set forkEarlyCow=false   (exit 1: v5.9 on contradict)`;

export const EXPLORE_HELP = `usage: cowlab explore [options]

Breadth-first search over every sequence of operations (writes, reads, forks, exits, pins,
vmsplice, device I/O ...) from a start state, on one kernel profile. Every write writes a fresh
value, so leaks and lost writes show; states are deduplicated up to renaming of frames, values
and processes. The first violation found is a shortest counterexample: it is printed as a
scenario file that \`cowlab run\` replays with the same violation, under a one-line name of
its cause (the kernel decisions that produced it: which fault copied or reused which page by
which rule, what GUP pinned, what fork shared) and, when it is one up to renaming, the story
of scenarios/seeds or scenarios/kernel-tests it is ("this is cve-2020-29374-vmsplice-leak").

options:
  --kernel NAME       the profile (default v6); --set SW=VALUE for a what-if kernel, or a
                      what-if name as a run prints it (v5.9+forkEarlyCow=false)
  --profiles FILE     user-defined profiles (docs/profiles.md) (repeatable)
  --procs N           most processes alive at once (default 2)
  --pages N           pages of the start mapping P has (default 2); with --start thp or
                      --from FILE, how many of each region's first pages the page operations
                      touch (default: all of them with --from)
  --start thp         start from one PMD-mapped THP (P's buf: 512 pages, MADV_HUGEPAGE, its
                      first page written) instead of N small pages. Operations that
                      split it: munmap, mprotect, dontneed, dontfork, mremap of a page;
                      collapse (MADV_COLLAPSE, 6.1+) makes a PTE-mapped range one THP
                      again
  --handles N         most pins/references/pipes live at once (default 2)
  --threads N         most threads per process, for the interleaving ops (default 2)
  --depth D           most operations in a sequence (default 6)
  --ops LIST          the operations, comma-separated (default: ${DEFAULT_OPS_TEXT})
                      all: every operation, ${ALL_OPS_TEXT}
                      interleavings (v1.1): thread, fork&, pin-fast&, write& start split
                      kernel paths; step advances one (enabled while one is pending)
                      uffd: the userfaultfd write-protect set (the monitor's requests, and
                      what may move a protected page: fork, pins, swap, a device)
  --kinds LIST        only these violation kinds count (default: all)
  --from FILE         start from the end state of this scenario (at most 4096 pages
                      mapped in its processes: every state holds every page)
  --all               go on after the first violation: one counterexample per cause (two
                      violations with the same kernel decisions are one finding; one that
                      adds no fault or fork-copy decision to an earlier one is that one),
                      and the first of each violation kind
  --baseline KERNEL   regression search: only sequences that violate on --kernel and are
                      clean on KERNEL (every step applies there, no violation; a what-if
                      name is taken too), one per cause, shortest first. A patch reviewer's question:
                      --kernel v6 --set SW=VALUE --baseline v6
  --baseline-set SW=VALUE   a what-if baseline (repeatable)
  --reverse           with --baseline: the other way round, sequences that violate on the
                      baseline and are clean on --kernel (what the change fixed)
  --max-states N      stop after N states (default: no count; --max-memory and --time
                      bound the search)
  --max-memory MiB    stop when the process's resident memory is more (default: half
                      of this machine's memory). With one worker, once it passes 80%
                      of this the search tree (8 bytes a state) goes to a temporary
                      file instead and the search goes on; what must fit is then the
                      visited set (16-24 bytes a state, more with --exact): the search
                      stops only when that no longer fits. The output says how many
                      states went to the file and its size; the file is removed at the
                      end (and on SIGINT/SIGTERM). Several workers stop at
                      --max-memory, without spilling
  --spill-dir DIR     where the search tree spills (default: the system's temporary
                      directory)
  --time S            stop after S seconds (default 600)
                      both are checked by the clock, every 25 ms and between any two
                      transitions: the search stops within a second of either
  --out FILE          write the counterexample scenario(s) there (with --all, the second
                      to FILE-2.scn.yaml and so on); checked before the search starts
  --progress          a progress line on stderr every quarter second (states, depth being
                      searched, rate); on a terminal the line is rewritten in place anyway
  --workers N         threads that expand states (default 1): breadth-first one depth at a
                      time, sharing the visited set; the same states, counts and
                      counterexamples as one thread. More workers than the machine
                      has CPUs do not search faster (the header says so)
  --exact             keep the visited states' canonical encodings, not 64-bit
                      fingerprints (the default; the output gives the probability that a
                      fingerprint collision hid a state, about n^2/2^65 for n states)
  --json              one JSON document (result: ok, violation or bound; the always and
                      sometimes properties; stats; counterexamples with their scenario text;
                      docs/json-format.md)
  -h, --help          this text

SIGINT or SIGTERM (Ctrl-C) stops the search as a bound does: the summary, the counterexamples
found so far and their --out files, exit 130.

exit status: 1 a violation was found (with --baseline: one clean on the baseline); 0 none
exists within the bound (the output says how far the search got when a bound stopped it);
2 bad input (also an --out file that could not be written, after the report); 70 an internal
error (a bug in cowlab); 130 interrupted.

examples: npx cowlab explore --kernel v5.9-rc4 --depth 5     (exit 1: the shortest violation)
          npx cowlab explore --kernel v5.7 --all --depth 4   (exit 1: one counterexample per cause)
          npx cowlab explore --kernel v5.9-rc4 --baseline v5.8 --depth 4   (exit 1: what v5.9-rc4 broke)`;

export const SERVE_HELP = `usage: cowlab serve [PATH] [--port N] [--profiles FILE]

Serves a web page on http://127.0.0.1:N/ (this machine only) that runs scenarios in the
browser and draws them step by step: each process's page tables, the frames (refcount,
mapcount, pins, value), pins and pipes as arrows, and why each fault copied or reused a
page. Pick a scenario from PATH (a folder: every *.scn.yaml below it; or one such file) or
paste and edit one; pick a profile, or two side by side; step through the steps and the
kernel events inside them. The address bar always holds a link to the view.

options:
  --port N, -p N    the port (default 7357; 0 picks a free one)
  --profiles FILE   user-defined profiles (docs/profiles.md), offered in the page (repeatable)
  -h, --help        this text

The server only hands out the page and the *.scn.yaml files under PATH; the scenario text
is parsed and run by the page, never evaluated. docs/web.md has more.

exit status: it serves until stopped (Ctrl-C); 2 bad input (no such PATH, a bad --port or
--profiles file, the port in use, the page not built).

example:
  npx cowlab serve scenarios/seeds     then open the address it prints`;

export const ORACLE_HELP = `usage: cowlab oracle FILE|DIR... [--kernel NAME] [--json] [--quiet]
       cowlab oracle --random N [--seed S] [--ops LIST] [--avoid GAPS] [--out DIR] [--kernel NAME] [--json]

Runs each scenario on the model (v6, or --kernel) and replays it on the live Linux kernel of
this machine, one real process per scenario process, step by step in the file's order; then
shows, step by step, what the model and the kernel observed (values read, faults, same frame,
mapped once, PG_anon_exclusive, counters) and whether they agree. Swap-out and KSM merges are
replayed (on a swap file and a stopped ksmd the oracle sets up and puts back). What the kernel
cannot do from user space (R/O or short-term pins, gup references, device-exclusive access) is
skipped with the reason, and so is whatever depends on it. Needs Linux, a C compiler (the
helper is built on first use into ~/.cache/cowlab) and, for frame numbers, root.

Kernels of one version differ by build and boot options, so the oracle first probes what this
kernel does (whether a read fault maps the shared zero page, the THP mode, KSM's settings,
soft-dirty, zswap), prints it, and compares with the profile plus those facts (on a kernel
booted with pvm_no_zero_page=1: v6+mmForbidsZeropage=true; with KSM's use_zero_pages=1:
config.ksm_use_zero_pages 1). A scenario whose expectations
hold only with a facility this kernel lacks (a zero-page story here) is skipped with the
reason, never counted as a disagreement.

options:
  --kernel NAME   the model's profile (default v6, the newest behaviour), or a what-if
                  kernel PROFILE+SWITCH=VALUE,... (as run --kernel takes it): a hypothesis
                  about the live kernel, the model with those rules compared with it. Not
                  the switches the probe sets from the machine (mmForbidsZeropage,
                  thpUseZeroPage, thpSplitZeropage): a what-if of them is refused, since
                  the model compared would not have it (use --zero-page for the zero page)
  --zero-page yes|no  take this as the probe's answer on the zero page instead of probing
                  (shows what the other kind of machine compares; expect disagreements)
  --profiles FILE load user-defined profiles (repeatable)
  --random N      N generated scenarios (2-4 processes, 1-8 pages) with the model's answers
                  as expectations, replayed on the kernel; every disagreement is shrunk and
                  written to --out as a replayable scenario
  --seed S        the generator's seed (default: from the clock; printed)
${RANDOM_OPS_TEXT}
  --avoid GAPS    do not generate what the model gets or once got wrong (docs/oracle.md,
                  Findings): protnone-gup-fast, mprotect-hole, vma-boundaries,
                  shmem-fault-around, shmem-pageout, ksm-swapout, mergeable-shared,
                  ksm-merge-order, thp-ksm, uffd-mremap, thp-uffd-wp, thp-mremap,
                  hugetlb-fork-enomem (all fixed, kept to bisect a regression; none is
                  avoided by default); or 'known' for all
  --out DIR       where disagreeing scenarios go (default oracle-failures/)
  --json          one JSON document on stdout (docs/oracle.md)
  --quiet         one line per scenario (with --random: no progress lines)
  -h, --help      this text

exit status: 0 every comparable observation agrees; 1 some disagree (or the live replay
failed); 2 bad input, or the oracle cannot run here (not Linux, no C compiler); 130 stopped
by SIGINT or SIGTERM (after the replay in flight, with the summary of what was found so far;
with --random the failures found are written to --out as usual).

examples:
  npx cowlab oracle scenarios/basic
  npx cowlab oracle --random 1000 --seed 1`;
