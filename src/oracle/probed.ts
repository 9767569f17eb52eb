// The model the oracle compares with: the requested profile plus what the probe found the live
// kernel doing where kernels of one version differ by build or boot options (the shared zero
// page), and the scenarios whose point needs a facility this kernel lacks.

import type { Profile, SwitchName } from '../core/profile.js';
import type { RunResult } from '../engine/result.js';
import { runScenario } from '../engine/run.js';
import { withOverrides } from '../profiles/resolve.js';
import type { Scenario } from '../scenario/index.js';
import { mapsHugeZeroPage, type Facilities, type ThpInfo } from './facilities.js';

const QUIET = { trace: false, maxEventsPerStep: 0 };

/** One probed fact, as printed in the header and carried in `--json`. */
export interface ProbedFact {
  name: string;
  value: string;
  /** The profile switch (or scenario config key) it sets (null: printed only, or it decides what is skipped). */
  sets: string | null;
}

export const NO_ZERO_PAGE = 'this kernel maps no shared zero page on a read fault (mm_forbids_zeropage(), e.g. pvm_no_zero_page=1 on the kernel command line)';

/** Facts taken as given instead of probed (`oracle --zero-page yes|no`). */
export interface Assumed {
  zeroPage?: boolean;
}

/** Replaces probed facts by assumed ones; the header then says which were forced. */
export function assumeFacts(f: Facilities, assume: Assumed): void {
  if (assume.zeroPage !== undefined) {
    f.zeroPage = assume.zeroPage;
    f.forced = [...f.forced, 'zeroPage'];
  }
}

/** What the probe found, in the header's words. */
export function probedFacts(f: Facilities): ProbedFact[] {
  const forced = (name: string): string => (f.forced.includes(name) ? ' [forced, not probed]' : '');
  const ksm = f.ksm === null ? 'not in this kernel' : `run=${f.ksm.run} use_zero_pages=${f.ksm.useZeroPages ? 1 : 0} max_page_sharing=${f.ksm.maxPageSharing}`;
  return [
    { name: 'zero page on read fault', value: `${f.zeroPage ? `yes (pfn ${f.zeroPfn || 'hidden'})` : 'no (a fresh exclusive page)'}${forced('zeroPage')}`, sets: f.zeroPage ? null : 'mmForbidsZeropage=true' },
    { name: 'THP', value: thpFact(f), sets: [hugeZeroSetting(f, null), splitZeroSetting(f, null)].filter((x) => x !== null).join(' ') || null },
    ...(f.thpInfo === null ? [] : [{ name: 'khugepaged', value: khugepagedFact(f.thpInfo), sets: null }]),
    { name: 'KSM', value: ksm, sets: f.ksm?.useZeroPages === true ? 'config.ksm_use_zero_pages=1' : null },
    { name: 'soft-dirty', value: f.softDirty ? 'yes' : 'no', sets: null },
    { name: 'zswap', value: f.zswap === null ? 'unknown' : f.zswap ? 'enabled' : 'disabled', sets: null },
    { name: 'swap', value: 'a swap file of the oracle\'s own, set up at the first swapout and removed at the end', sets: null },
  ];
}

/** The THP line of the header: the mode, the huge zero page, khugepaged. */
function thpFact(f: Facilities): string {
  const t = f.thpInfo;
  if (f.thp === null || t === null) return 'not in this kernel';
  const zero = t.hugeZeroPage === null ? `use_zero_page=${t.useZeroPage === null ? '?' : t.useZeroPage ? 1 : 0} (no huge PMD seen in the probe)`
    : t.hugeZeroPage ? 'a read fault maps the huge zero page' : 'a read fault allocates a THP (no huge zero page)';
  const split = t.splitZeropage === null ? '' : t.splitZeropage ? '; a split maps zero-filled pages to the zero page' : '; a split keeps zero-filled pages';
  return `${f.thp}${t.enabled !== f.thp ? ` (enabled=${t.enabled}, hugepages-${t.pmdKb ?? 2048}kB=${f.thp})` : ''}, PMD ${t.pmdKb ?? '?'} kB, defrag=${t.defrag}; ${zero}${split}` +
    (t.pagemapScan ? '' : '; no PAGEMAP_SCAN (6.7+): huge PMDs are not seen');
}

/** The khugepaged line of the header: the machine's settings, and whether the session holds it asleep. */
function khugepagedFact(t: ThpInfo): string {
  const k = t.khugepaged;
  const p = t.khugepagedPaused;
  const machine = `pages_to_scan=${k.pagesToScan} scan_sleep_millisecs=${k.scanSleepMs} max_ptes_none=${k.maxPtesNone}`;
  if (p !== null) {
    const settled = p.settledMs < 0 ? '; it had not gone back to sleep 5 s after the change woke it, so its pass may still run' : '';
    return `${machine}; held asleep for the session (scan_sleep_millisecs=${p.scanSleepMs} pages_to_scan=${p.pagesToScan}), put back at the end${settled}`;
  }
  return `${machine}; ${t.khugepagedWhy ?? 'not held asleep'}`;
}

/**
 * The thpUseZeroPage the live kernel has, where it differs from what `model` does (null: no
 * change): the probe's read fault when it saw a huge PMD, else use_zero_page and the 4 KiB zero page.
 */
function hugeZeroSetting(f: Facilities, model: Profile | null): string | null {
  const live = mapsHugeZeroPage(f);
  if (live === null) return null;
  // Without a profile: as a default profile (use_zero_page on) with the 4 KiB zero page probed.
  const modelHas = model === null ? f.zeroPage : model.thpUseZeroPage && !model.mmForbidsZeropage;
  if (modelHas === live) return null;
  return `thpUseZeroPage=${live}`;
}

/** thpSplitZeropage as the probe found it, where it differs from `model` (null: no change, or not probed). */
function splitZeroSetting(f: Facilities, model: Profile | null): string | null {
  const live = f.thpInfo?.splitZeropage ?? null;
  if (live === null || (model !== null && model.thpSplitZeropage === live)) return null;
  return model === null ? (live ? null : 'thpSplitZeropage=false') : `thpSplitZeropage=${live}`;
}

/**
 * The switches probedProfile sets from the live machine (whatever the profile says): facts of
 * a machine, not rules of a kernel version. A what-if kernel for the oracle may not set them.
 */
export const PROBED_SWITCHES = ['mmForbidsZeropage', 'thpUseZeroPage', 'thpSplitZeropage'] as const satisfies readonly SwitchName[];

/**
 * The profile the live kernel is compared with: `base` with the switches the probe decides
 * (named like a `--set` what-if, e.g. `v6+mmForbidsZeropage=true`). Idempotent.
 */
export function probedProfile(base: Profile, f: Facilities): Profile {
  const sets: string[] = [];
  if (base.mmForbidsZeropage === f.zeroPage) sets.push(`mmForbidsZeropage=${!f.zeroPage}`);
  const zeroed = withOverrides(base, sets);
  const huge = [hugeZeroSetting(f, zeroed), splitZeroSetting(f, zeroed)].filter((x): x is string => x !== null);
  return huge.length === 0 ? zeroed : withOverrides(zeroed, huge);
}

/**
 * Why a scenario cannot make its point on this kernel (null: it can): its `expect` steps hold
 * on `base` but not on the probed model, so what they check is a facility the kernel lacks
 * (a zero-page story where there is no zero page). Such a scenario is skipped, not compared.
 */
export function missingFacility(sc: Scenario, base: Profile, probed: Profile, f: Facilities, onProbed?: RunResult, written: Scenario = sc): string | null {
  if (probed === base && written === sc) return null;
  onProbed ??= runScenario(sc, probed, QUIET);
  const onBase = runScenario(written, base, QUIET);
  const failedOnBase = new Set(onBase.violations.filter((v) => v.kind === 'expect').map((v) => v.step));
  const first = onProbed.violations.find((v) => v.kind === 'expect' && !failedOnBase.has(v.step));
  if (first === undefined) return null;
  const step = sc.steps[first.step];
  const what = step ? `line ${step.pos.line} (\`${step.text}\`)` : 'its end';
  const thp = written.config.thp !== sc.config.thp ? ` with config.thp ${sc.config.thp ?? 'madvise'}` : '';
  // The machine's use_zero_pages is the cause only if the step holds with the written one.
  const zeroPages = sc.config.ksmUseZeroPages ?? 0;
  const asWritten = { ...sc, config: { ...sc.config, ksmUseZeroPages: written.config.ksmUseZeroPages ?? null } };
  const ksmCause = (written.config.ksmUseZeroPages ?? 0) !== zeroPages && !runScenario(asWritten, probed, QUIET).violations.some((v) => v.kind === 'expect' && v.step === first.step);
  const ksm = ksmCause ? ` with config.ksm_use_zero_pages ${zeroPages}` : '';
  const facility = thp !== '' ? `this machine gives no 2 MiB THPs (THP mode ${f.thp ?? 'none: no THP in this kernel'})`
    : ksm !== '' ? `KSM's use_zero_pages is ${zeroPages} on this machine (/sys/kernel/mm/ksm/use_zero_pages, left as it is): ksmd merges pages of zeros ${zeroPages ? 'with the shared zero page' : 'into KSM pages'}`
    : f.zeroPage ? 'a facility of this kernel' : NO_ZERO_PAGE;
  return `the scenario's point needs what ${base.name} has and this kernel lacks: ${what} holds on ${base.name} but not on ${probed.name}${thp}${ksm}; ${facility}`;
}
