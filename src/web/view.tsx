// The drawing: one panel per profile (the step's sentence, violations, reads, events, and the
// diagram of page tables -> frames <- handles with SVG arrows), the step list, the editor and
// the legend. Preact components over the pure Trace (trace.ts); no model logic here.

import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Observation, Violation } from '../engine/result.js';
import { explainEvent, explainViolation, refBreakdown, stepSentence, verdictLine } from './explain.js';
import { type Cursor, type Diff, diffSnapshots, frameKey, handleKey, pteKey, snapshotsAt, subpageKey } from './state.js';
import type { FrameView, HandleView, ProcView, PteView, Snapshot, Trace } from './trace.js';

// ---- small pieces ----------------------------------------------------------------------------

/** A value that changed shows its old value struck through before the new one. */
function Val(props: { k: string; d: Diff; children: ComponentChildren; title?: string }) {
  const old = props.d.changes.get(props.k);
  const changed = old !== undefined;
  return (
    <span class={changed ? 'val chg' : 'val'} title={changed && old !== '' ? `was ${old}` : props.title}>
      {changed && old !== '' ? <><s class="was">{old}</s>{' '}</> : null}
      {props.children}
    </span>
  );
}

const BIT_SHORT: Record<string, [string, string]> = {
  present: ['P', 'present: the entry maps a frame'],
  write: ['W', 'writable: a write goes straight to the frame, no fault'],
  dirty: ['D', 'dirty: written since mapped'],
  young: ['A', 'accessed (young)'],
  special: ['Z', 'special: maps the shared zero page'],
  'soft-dirty': ['SD', 'soft-dirty: written since the last clear_refs'],
  'uffd-wp': ['UW', 'userfaultfd write-protect'],
  swap: ['SW', 'swap entry: the page is on swap'],
  'swp-exclusive': ['SX', 'swap entry, exclusive'],
  'device-exclusive': ['DX', 'device-exclusive entry'],
  'devexcl-write': ['DXW', 'device-exclusive, writable'],
};

/** The PTE's bits; those the step cleared struck through (`W` when fork write-protects the parent's PTE). */
function Bits(props: { pte: PteView; was?: string }) {
  const { pte } = props;
  const gone = props.was === undefined ? [] : props.was.split(' ').filter((b) => b && b !== 'none' && !pte.bits.includes(b));
  const added = props.was === undefined ? new Set<string>() : new Set(pte.bits.filter((b) => !props.was!.split(' ').includes(b)));
  return (
    <span class="bits">
      {pte.bits.map((b) => {
        const [s, t] = BIT_SHORT[b] ?? [b, b];
        return <span class={`bit bit-${b}${added.has(b) ? ' bit-new' : ''}`} title={added.has(b) ? `${t} (set by this step)` : t} key={b}>{s}</span>;
      })}
      {gone.map((b) => {
        const [s, t] = BIT_SHORT[b] ?? [b, b];
        return <s class={`bit bit-gone bit-${b}`} title={`${t}: cleared by this step`} key={`gone-${b}`} data-testid="bit-gone">{s}</s>;
      })}
      {pte.present && !pte.bits.includes('write') ? (
        <span class="bit bit-wp" title="write-protected: the next write faults into do_wp_page, which copies or reuses the frame">wp</span>
      ) : null}
    </span>
  );
}

function pteTarget(e: PteView): string {
  if (e.swapSlot !== null) return `swap slot ${e.swapSlot}`;
  if (!e.present && e.pfn !== null) return `${frameLabel(e.pfn)} (device-exclusive)`;
  return frameLabel(e.pfn);
}

function frameLabel(pfn: number | null): string {
  if (pfn === null) return 'not present';
  return pfn === 0 ? 'zero page' : `frame ${pfn}`;
}

function hex(vpn: number): string {
  return `0x${(vpn * 4096).toString(16)}`;
}

// ---- the diagram -------------------------------------------------------------------------------

/** Freed frames and cleared PTEs shown struck through (the rest are counted). */
const GHOSTS = 12;

interface Arrow {
  d: string;
  kind: string;
  changed: boolean;
}

/** Process cards: only populated page-table paths, grouped by PTE table. */
function ProcCard(props: { p: ProcView; d: Diff; frames: Map<number, FrameView> }) {
  const { p, d, frames } = props;
  const groups = new Map<number, PteView[]>();
  for (const e of p.ptes) {
    const g = groups.get(e.table) ?? [];
    g.push(e);
    groups.set(e.table, g);
  }
  const zapped = d.zapped.filter((z) => z.proc === p.name);
  const isNew = d.changes.has(`proc:${p.name}:new`);
  return (
    <div class={`card proc${p.alive ? '' : ' gone'}${isNew ? ' chg' : ''}`} data-testid="proc" data-proc={p.name}>
      <div class="card-head">
        <span class="proc-name">{p.name}</span>
        {p.threads.length ? <span class="badge" title="threads share one address space: one page table">threads {p.threads.join(', ')}</span> : null}
        {p.forking ? <span class="badge forking" title="its fork has not finished: fork is still copying the page tables">being forked</span> : null}
        {p.alive ? <span class="muted">{p.tables} page table{p.tables === 1 ? '' : 's'} · rss {p.rss}</span> : <span class="badge gone">exited</span>}
        {p.hasPinned ? <span class="badge" title="MMF_HAS_PINNED: FOLL_PIN ran on this mm (fork then copies maybe-pinned pages early)">has_pinned</span> : null}
      </div>
      {p.paths.map((x) => (
        <div class="path-pending" key={x.thread} title="a kernel path started with & runs as atomic steps: `step` runs one, `finish` the rest">
          {x.thread} is inside <code>{x.text}</code> (line {x.line})
        </div>
      ))}
      {p.regions.map((r) => (
        <div class="region muted" key={r.name}>
          <b>{r.name}</b>: {r.pages} page{r.pages === 1 ? '' : 's'} {r.mode} at {hex(r.start)}
        </div>
      ))}
      {[...groups].map(([table, ptes]) => {
        const [a, b, c] = ptes[0]!.path;
        if (ptes[0]!.huge) return <HugePmds table={table} ptes={ptes} p={p} d={d} key={table} />;
        return (
          <div class="ptable" key={table}>
            <div class="path" title="the populated path of the 4-level page table: PGD index → PUD index → PMD index → the PTE table">
              PGD[{a}] › PUD[{b}] › PMD[{c}] › <b>PTE table #{table}</b>
            </div>
            {ptes.map((e) => {
              const f = e.pfn !== null ? frames.get(e.pfn) : undefined;
              const wrong = f !== undefined && e.ideal !== null && f.value !== e.ideal;
              const kind = !e.present ? 'devexcl' : e.writable ? 'map-rw' : 'map-ro';
              const rowNew = d.changes.has(pteKey(p.name, e.vpn, 'new'));
              // Every PTE the step changed is highlighted: new, another frame, or its bits (fork's write-protect).
              const wasBits = d.changes.get(pteKey(p.name, e.vpn, 'bits'));
              const rowChg = rowNew || wasBits !== undefined || d.changes.has(pteKey(p.name, e.vpn, 'pfn'));
              return (
                <div class={`pte${rowChg ? ' chg' : ''}`} key={e.vpn} data-testid="pte" data-src={e.pfn !== null ? String(e.pfn) : undefined} data-kind={kind}
                  data-chg={rowChg ? '1' : undefined} title={rowNew ? 'set by this step' : wasBits !== undefined ? `changed by this step: was [${wasBits}]` : undefined}>
                  <span class="idx" title={`PTE index ${e.path[3]} (address ${hex(e.vpn)})`}>[{e.path[3]}]</span>
                  <span class="page">{e.page}</span>
                  <Bits pte={e} was={wasBits} />
                  <span class="to">→ <Val k={pteKey(p.name, e.vpn, 'pfn')} d={d}>{pteTarget(e)}</Val></span>
                  {f ? (
                    <span class={wrong ? 'reads wrong' : 'reads'} title="what a read of this page returns now, and what the ideal semantics says it must be">
                      reads {f.value}{wrong ? <> ≠ ideal <b>{e.ideal}</b></> : null}
                    </span>
                  ) : null}
                </div>
              );
            })}
          </div>
        );
      })}
      {p.ptesHidden > 0 ? <div class="muted">… {p.ptesHidden} more PTEs not shown</div> : null}
      {p.alive && p.ptes.length === 0 ? <div class="muted empty">no page mapped yet (page tables are filled on first touch)</div> : null}
      {zapped.slice(0, GHOSTS).map((z) => (
        <div class="pte zapped" key={`z${z.pte.vpn}`} title="this PTE was cleared by this step">
          <span class="page">{z.pte.page}</span> <s>→ {pteTarget(z.pte)}</s> <span class="muted">unmapped</span>
        </div>
      ))}
      {zapped.length > GHOSTS ? <div class="muted">… and more PTEs cleared</div> : null}
    </div>
  );
}

/**
 * Huge PMDs of one PMD table: each one entry, a PMD leaf mapping 2 MiB (a THP's 512 pages, or
 * the huge zero page). Once split (__split_huge_pmd) the range shows a PTE table of 512 entries.
 */
function HugePmds(props: { table: number; ptes: PteView[]; p: ProcView; d: Diff }) {
  const { table, ptes, p, d } = props;
  const [a, b] = ptes[0]!.path;
  return (
    <div class="ptable ptable-pmd">
      <div class="path" title="the populated path down to the PMD table: a huge PMD maps 2 MiB itself, with no PTE table under it">
        PGD[{a}] › PUD[{b}] › <b>PMD table #{table}</b>
      </div>
      {ptes.map((e) => {
        const rowNew = d.changes.has(pteKey(p.name, e.vpn, 'new'));
        const wasBits = d.changes.get(pteKey(p.name, e.vpn, 'bits'));
        const rowChg = rowNew || wasBits !== undefined || d.changes.has(pteKey(p.name, e.vpn, 'pfn'));
        return (
          <div class={`pte pmd${rowChg ? ' chg' : ''}`} key={e.vpn} data-testid="pmd" data-src={e.pfn !== null ? String(e.pfn) : undefined}
            data-kind={e.writable ? 'map-rw' : 'map-ro'} data-chg={rowChg ? '1' : undefined}
            title={rowNew ? 'set by this step' : wasBits !== undefined ? `changed by this step: was [${wasBits}]` : undefined}>
            <span class="idx" title={`PMD index ${e.path[2]} (address ${hex(e.vpn)})`}>[{e.path[2]}]</span>
            <span class="page">{e.page}</span>
            <span class="huge-badge" title="a huge PMD (PMD leaf): this one entry maps 512 pages, 2 MiB; a split (__split_huge_pmd) turns it into a PTE table of 512 entries">PMD · 2 MiB</span>
            <Bits pte={e} was={wasBits} />
            <span class="to">→ <Val k={pteKey(p.name, e.vpn, 'pfn')} d={d}>{e.pfn === 0 ? 'huge zero page' : `folio of frame ${e.pfn}`}</Val></span>
          </div>
        );
      })}
    </div>
  );
}

/** The pages of a large folio, under its card: folded until asked for. */
function FolioPages(props: { f: FrameView; d: Diff }) {
  const { f, d } = props;
  const folio = f.folio!;
  const n = folio.subpages.length + folio.subpagesHidden;
  return (
    <details class="subpages" data-testid="folio-pages">
      <summary title="each page of the folio keeps its own PTE mapcount and references; the folio's counts above are their sums">
        {n} of its {folio.pages} pages mapped by a PTE, referenced or written
      </summary>
      {folio.subpages.map((sp) => (
        <div class={`subpage${d.changes.has(subpageKey(sp.pfn, 'new')) ? ' chg' : ''}`} key={sp.pfn} data-frame={String(sp.pfn)} data-testid="subpage">
          <span class="idx">[{sp.pfn - f.pfn}]</span> frame {sp.pfn}
          {' '}· value <Val k={subpageKey(sp.pfn, 'value')} d={d}><b>{sp.value}</b></Val>
          {' '}· <span title="PTEs mapping this page (the folio's PMD mappings are its entire mapcount)">mapcount <Val k={subpageKey(sp.pfn, 'mapcount')} d={d}>{sp.mapcount}</Val></span>
          {' '}· <span title="references taken through this page; the kernel keeps them all on the folio (page_count of any page is the folio's refcount)">refs <Val k={subpageKey(sp.pfn, 'refcount')} d={d}>{sp.refcount}</Val></span>
          {sp.pins > 0 ? <> · pins <Val k={subpageKey(sp.pfn, 'pins')} d={d}>{sp.pins}</Val></> : null}
        </div>
      ))}
      {folio.subpagesHidden > 0 ? <div class="muted">… {folio.subpagesHidden} more pages not listed</div> : null}
    </details>
  );
}

function FolioCard(props: { f: FrameView; d: Diff; involved: boolean }) {
  const { f, d } = props;
  const folio = f.folio!;
  const isNew = d.changes.has(frameKey(f.pfn, 'new'));
  return (
    <div class={`card frame folio${isNew ? ' chg' : ''}${props.involved ? ' involved' : ''}`} data-frame={String(f.pfn)} data-large="1" data-testid="frame">
      <div class="card-head">
        <span class="frame-name">folio of frame {f.pfn}</span>
        <span class="huge-badge" title={`a large folio: ${folio.pages} frames (${f.pfn}-${f.pfn + folio.pages - 1}) allocated, mapped and freed as one`}>{folio.pages} pages · 2 MiB</span>
      </div>
      <div class="counts">
        <span title="folio_ref_count: every reference to any of its pages (each PMD mapping 1, each PTE 1, each pin 1: large folios count pins exactly)">refcount <Val k={frameKey(f.pfn, 'refcount')} d={d}><b>{f.refcount}</b></Val></span>
        <span title="folio_mapcount: the PTEs mapping its pages plus its PMD mappings">mapcount <Val k={frameKey(f.pfn, 'mapcount')} d={d}><b>{f.mapcount}</b></Val></span>
        <span title="folio->_entire_mapcount: huge PMDs mapping the whole folio">entire mapcount <Val k={frameKey(f.pfn, 'entire')} d={d}><b>{folio.entireMapcount}</b></Val></span>
        <span title="folio->_pincount: FOLL_PIN pins on its pages (exact for large folios)">pins <Val k={frameKey(f.pfn, 'pins')} d={d}><b>{f.pins}</b></Val></span>
      </div>
      <div class="muted breakdown" title="where the refcount comes from">{refBreakdown(f)}</div>
      <div class="flags">
        <Val k={frameKey(f.pfn, 'flags')} d={d}>
          {f.flags.map((fl) => <span class={`flag flag-${fl}`} key={fl}>{fl}</span>)}
        </Val>
      </div>
      <FolioPages f={f} d={d} />
    </div>
  );
}

function FrameCard(props: { f: FrameView; d: Diff; involved: boolean }) {
  const { f, d } = props;
  if (f.folio) return <FolioCard f={f} d={d} involved={props.involved} />;
  const isNew = d.changes.has(frameKey(f.pfn, 'new'));
  return (
    <div class={`card frame${isNew ? ' chg' : ''}${props.involved ? ' involved' : ''}${f.pfn === 0 ? ' zero' : ''}`} data-frame={String(f.pfn)} data-testid="frame">
      <div class="card-head">
        <span class="frame-name">{f.pfn === 0 ? 'zero page' : `frame ${f.pfn}`}</span>
        <span class="value" title="the page's content">value <Val k={frameKey(f.pfn, 'value')} d={d}><b>{f.value}</b></Val></span>
      </div>
      {f.pfn !== 0 ? (
        <>
          <div class="counts">
            <span title="page_count: every reference (mappings, pins count GUP_PIN_COUNTING_BIAS each, GUP references, pipe buffers)">refcount <Val k={frameKey(f.pfn, 'refcount')} d={d}><b>{f.refcount}</b></Val></span>
            <span title="page_mapcount: how many PTEs map it">mapcount <Val k={frameKey(f.pfn, 'mapcount')} d={d}><b>{f.mapcount}</b></Val></span>
            <span title="live FOLL_PIN pins (pin_user_pages)">pins <Val k={frameKey(f.pfn, 'pins')} d={d}><b>{f.pins}</b></Val></span>
          </div>
          <div class="muted breakdown" title="where the refcount comes from">{refBreakdown(f)}</div>
        </>
      ) : <div class="muted">shared by every read of untouched memory</div>}
      <div class="flags">
        <Val k={frameKey(f.pfn, 'flags')} d={d}>
          {f.flags.map((fl) => <span class={`flag flag-${fl}`} key={fl}>{fl}</span>)}
        </Val>
      </div>
    </div>
  );
}

function HandleCard(props: { h: HandleView; d: Diff }) {
  const { h, d } = props;
  const isNew = d.changes.has(handleKey(h.name, -1, 'new'));
  const what = h.kind === 'pin' ? `pin ${h.write ? 'rw' : 'ro'}${h.longterm ? ' longterm' : ' short'}` : h.kind === 'gup' ? `GUP reference${h.write ? ' rw' : ''}` : h.kind === 'pipe' ? 'pipe (vmsplice)' : 'device-exclusive grant';
  const reader = h.kind === 'pipe' ? 'pipe reads' : h.kind === 'gup' ? 'reads' : 'device sees';
  const taken = h.kind === 'exclusive' ? `the device holds ${h.holder}'s ${h.page} exclusively` : `taken by ${h.holder} on ${h.page}`;
  return (
    <div class={`card handle handle-${h.kind}${h.released ? ' gone' : ''}${isNew ? ' chg' : ''}`} data-testid="handle" data-handle={h.name}>
      <div class="card-head">
        <span class="handle-name">{h.name}</span>
        <span class="muted">{what}</span>
      </div>
      <div class="muted">{taken}{h.released ? ' · released' : ''}</div>
      {h.pages.map((pg) => {
        const wrong = pg.ideal !== null && !pg.ideal.split(' or ').includes(pg.value);
        return (
          <div class="hpage" key={pg.index} data-src={!h.released && pg.pfn >= 0 ? String(pg.pfn) : undefined} data-kind={h.kind === 'pin' ? 'pin' : h.kind === 'pipe' ? 'pipe' : h.kind === 'exclusive' ? 'devexcl' : 'ref'}>
            <span class="idx">[{pg.index}]</span> → {pg.pfn < 0 ? 'nothing' : frameLabel(pg.pfn)}
            {pg.pfn >= 0 ? (
              <span class={wrong ? 'reads wrong' : 'reads'}>
                {' '}{reader} <Val k={handleKey(h.name, pg.index, 'value')} d={d}>{pg.value}</Val>
                {pg.ideal !== null ? <> · ideal <Val k={handleKey(h.name, pg.index, 'ideal')} d={d}><b>{pg.ideal}</b></Val></> : null}
                {pg.bound !== null ? <span class="muted" title="a longterm pin stays bound to its owner's page until the owner unmaps it or exits">{pg.bound ? ' (bound)' : ' (unbound)'}</span> : null}
                {pg.revoked ? <span class="muted" title="the MMU notifier told the device it lost exclusive access"> (revoked)</span> : null}
              </span>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}

function Diagram(props: { snap: Snapshot; d: Diff; involved: Set<number> }) {
  const { snap, d } = props;
  const box = useRef<HTMLDivElement>(null);
  const [arrows, setArrows] = useState<Arrow[]>([]);
  const [size, setSize] = useState<[number, number]>([0, 0]);
  const frames = new Map(snap.frames.map((f) => [f.pfn, f]));

  const measure = (): void => {
    const el = box.current;
    if (!el) return;
    const base = el.getBoundingClientRect();
    const targets = new Map<string, DOMRect>();
    // Only what is drawn: a folio's pages folded away are not (getClientRects() is empty).
    el.querySelectorAll<HTMLElement>('[data-frame]').forEach((t) => {
      if (t.getClientRects().length > 0) targets.set(t.dataset['frame']!, t.getBoundingClientRect());
    });
    const folios = new Set<string>();
    el.querySelectorAll<HTMLElement>('[data-large]').forEach((t) => folios.add(t.dataset['frame']!));
    const out: Arrow[] = [];
    el.querySelectorAll<HTMLElement>('[data-src]').forEach((s) => {
      // A page of a large folio whose row is not drawn: the arrow goes to the folio's card.
      const src = Number(s.dataset['src']!);
      const head = String(src - (src % 512));
      const t = targets.get(s.dataset['src']!) ?? (folios.has(head) ? targets.get(head) : undefined);
      if (!t) return;
      const r = s.getBoundingClientRect();
      // A handle under the frames (a narrow panel stacks them in one column): an arrow that
      // leaves on the right and comes back into the frame's right edge.
      const below = r.left < t.right && r.right > t.left;
      const fromLeft = !below && r.left > t.right; // handles sit right of the frames
      const x1 = (fromLeft ? r.left : r.right) - base.left;
      const y1 = r.top + r.height / 2 - base.top;
      const x2 = (fromLeft || below ? t.right : t.left) - base.left;
      const y2 = (below ? t.top + t.height / 2 : Math.min(t.bottom - 8, Math.max(t.top + 8, r.top + r.height / 2))) - base.top;
      const dx = Math.max(16, Math.abs(x2 - x1) / 2) * (fromLeft ? -1 : 1);
      const c1 = below ? Math.max(x1, x2) + 26 : x1 + dx;
      const c2 = below ? c1 : x2 - dx;
      out.push({
        d: `M${x1.toFixed(1)},${y1.toFixed(1)} C${c1.toFixed(1)},${y1.toFixed(1)} ${c2.toFixed(1)},${y2.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`,
        kind: s.dataset['kind'] ?? 'map-rw',
        changed: s.dataset['chg'] === '1',
      });
    });
    const next: [number, number] = [el.scrollWidth, el.scrollHeight];
    if (JSON.stringify(out) !== JSON.stringify(arrows)) setArrows(out);
    if (next[0] !== size[0] || next[1] !== size[1]) setSize(next);
  };
  useLayoutEffect(measure);
  useLayoutEffect(() => {
    const ro = new ResizeObserver(() => measure());
    if (box.current) ro.observe(box.current);
    return () => ro.disconnect();
  }, []);

  return (
    <div class="diagram" ref={box}>
      <svg class="arrows" width={size[0]} height={size[1]} aria-hidden="true">
        <defs>
          {['map-rw', 'map-ro', 'pin', 'ref', 'pipe', 'devexcl'].map((k) => (
            <marker id={`head-${k}`} key={k} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class={`head head-${k}`} />
            </marker>
          ))}
        </defs>
        {arrows.map((a, i) => <path key={i} d={a.d} class={`arrow arrow-${a.kind}${a.changed ? ' arrow-chg' : ''}`} marker-end={`url(#head-${a.kind})`} />)}
      </svg>
      <div class="col">
        <div class="col-title">processes and their page tables</div>
        {snap.procs.length === 0 ? <div class="muted empty">no process yet</div> : null}
        {snap.procs.map((p) => <ProcCard p={p} d={d} frames={frames} key={p.name} />)}
      </div>
      <div class="col">
        <div class="col-title">frames in use: {d.framesUsedBefore !== snap.framesUsed ? <span class="val chg"><s class="was">{d.framesUsedBefore}</s> {snap.framesUsed}</span> : snap.framesUsed}</div>
        {snap.frames.map((f) => <FrameCard f={f} d={d} involved={props.involved.has(f.pfn)} key={f.pfn} />)}
        {snap.framesHidden > 0 ? <div class="muted">… {snap.framesHidden} more frames not shown</div> : null}
        {d.freed.slice(0, GHOSTS).map((f) => (
          <div class="card frame freed" key={`freed${f.pfn}`} data-testid="freed">
            <div class="card-head"><span class="frame-name"><s>frame {f.pfn}</s></span><span class="muted">freed (value was {f.value})</span></div>
          </div>
        ))}
        {d.freed.length > GHOSTS ? <div class="muted">… and more frames freed</div> : null}
        {snap.frames.length === 0 && d.freed.length === 0 ? <div class="muted empty">no frame in use</div> : null}
      </div>
      <div class="col">
        <div class="col-title">handles (pins, references, pipes)</div>
        {snap.handles.length === 0 ? <div class="muted empty">none taken</div> : null}
        {snap.handles.map((h) => <HandleCard h={h} d={d} key={h.name} />)}
      </div>
    </div>
  );
}

// ---- a profile's panel ---------------------------------------------------------------------------

/** Events listed at once under a step (exit of a large mapping frees thousands of frames). */
const EVENT_WINDOW = 40;

function ObservationRow(props: { o: Observation }) {
  const { o } = props;
  const isRead = o.kind === 'read' || o.kind === 'handle-read';
  const ok = o.ideal === null || o.ideal === o.actual || o.ideal.split(' or ').includes(o.actual) || o.kind === 'stat';
  if (isRead) {
    return (
      <div class={`obs${ok ? '' : ' wrong'}`} data-testid="observation">
        {o.kind === 'read' ? `${o.what.split(' ')[0]} reads ${o.what.split(' ').slice(1).join(' ')}` : o.what}: got <b>{o.actual}</b>
        {o.ideal !== null ? <>, ideal <b>{o.ideal}</b> {ok ? '✓' : '✗ (the ideal semantics: what a program may rely on)'}</> : null}
      </div>
    );
  }
  if (o.kind === 'write' || o.kind === 'fork' || o.kind === 'gup') {
    // The sentence above already says it; only a failure is worth a line.
    if (ok) return null;
    return <div class="obs wrong" data-testid="observation">{o.what}: {o.actual}, ideal {o.ideal}</div>;
  }
  return (
    <div class={`obs${ok ? '' : ' wrong'}`} data-testid="observation">
      {o.what}: <b>{o.actual}</b>{o.ideal !== null ? <> · {o.kind === 'stat' ? 'expected' : 'ideal'} <b>{o.ideal}</b> {ok ? '✓' : '✗'}</> : null}
    </div>
  );
}

function ViolationBox(props: { v: Violation; step: number }) {
  const { v } = props;
  return (
    <div class="violation" data-testid="violation" data-kind={v.kind} role="alert">
      <div class="v-head"><span class="v-kind">{v.kind}</span> at step {props.step + 1}{v.line > 0 ? `, line ${v.line}` : ' (end of run)'}</div>
      <div class="v-text">{explainViolation(v)}</div>
    </div>
  );
}

export function ProfilePanel(props: { trace: Trace; cursor: Cursor; onCursor: (c: Cursor) => void }) {
  const { trace: t, cursor } = props;
  const i = Math.min(cursor.step, t.steps.length - 1);
  const s = t.steps[i]!;
  const beyond = cursor.step >= t.steps.length;
  const { now, before } = snapshotsAt(t, cursor);
  const d = diffSnapshots(before, now);
  const verdict = verdictLine(t);
  const sentence = stepSentence(s);
  const ev = cursor.ev !== null && !beyond && cursor.ev < s.events.length ? cursor.ev : null;
  const involved = new Set<number>();
  for (const e of ev !== null ? [s.events[ev]!] : s.events) {
    if (e.pfn > 0) involved.add(e.pfn);
    if (e.pfn2 > 0 && e.type !== 'fork') involved.add(e.pfn2);
  }
  for (const v of s.record.violations) for (const f of v.frames) involved.add(f);
  const winStart = s.events.length > EVENT_WINDOW && ev !== null ? Math.max(0, Math.min(ev - 10, s.events.length - EVENT_WINDOW)) : 0;
  const hiddenAfter = Math.max(0, s.events.length - winStart - EVENT_WINDOW) + s.record.eventsDropped;
  const exp = t.result.expected;
  const expText = exp === null ? 'not stated' : exp.kind === 'violations' ? exp.kinds.join(', ') : exp.kind;
  return (
    <section class="panel" data-testid="panel" data-profile={t.profile.name} aria-label={`profile ${t.profile.name}`}>
      <header class="panel-head">
        <div>
          <span class="profile-name">{t.profile.name}</span>
          <span class={`verdict tone-${verdict.tone}`} data-testid="verdict" title={verdict.text}>{verdict.label}</span>
        </div>
        <div class="muted small">{t.profile.summary}</div>
        <div class="muted small">whole run: {verdict.text}; outcomes expects: {expText}</div>
      </header>
      {beyond ? <div class="sentence muted">This run stopped at step {t.steps.length} ({t.result.na?.reason ?? 'n/a'}).</div> : (
        <div class="sentence" data-testid="sentence">
          <div class="what">{sentence.what}</div>
          {ev !== null ? (
            <div class="why"><b>event {ev + 1} of {s.events.length}:</b> {explainEvent(s.events[ev]!)}</div>
          ) : sentence.why ? <div class="why">{sentence.why}</div> : null}
        </div>
      )}
      {!beyond && s.record.violations.map((v, k) => <ViolationBox v={v} step={i} key={k} />)}
      {!beyond && s.record.observations.length > 0 ? (
        <div class="observations">{s.record.observations.map((o, k) => <ObservationRow o={o} key={k} />)}</div>
      ) : null}
      {!beyond && s.events.length > 0 ? (
        <ol class="events" aria-label="kernel events inside this step">
          {winStart > 0 ? <li class="muted">… {winStart} earlier event{winStart === 1 ? '' : 's'}</li> : null}
          {s.events.slice(winStart, winStart + EVENT_WINDOW).map((e, j) => {
            const k = winStart + j;
            return (
            <li key={k} class={ev === k ? 'current' : ''}>
              <span class="enum">{k + 1}</span>
              <button type="button" class="linklike" onClick={() => props.onCursor({ step: i, ev: k })} title="show the model right after this event">
                <span class={`etype etype-${e.type}`}>{e.type}</span> {explainEvent(e)}
              </button>
            </li>
            );
          })}
          {hiddenAfter > 0 ? <li class="muted">… {hiddenAfter} more event{hiddenAfter === 1 ? '' : 's'} (the model after the step shows their effect)</li> : null}
        </ol>
      ) : null}
      <div class="state-caption muted small">
        {ev !== null ? `The model right after event ${ev + 1}; highlighted: what that event changed.`
          : cursor.ev !== null && !beyond ? `${t.profile.name} has no event ${cursor.ev + 1} in this step: the model after step ${i + 1}; highlighted: what this step changed.`
          : `The model after step ${i + 1}; highlighted: what this step changed.`}
      </div>
      <Diagram snap={now} d={d} involved={involved} />
    </section>
  );
}

// ---- the step list, the editor, the legend ------------------------------------------------------

export function Timeline(props: { traces: Trace[]; lines: { text: string; line: number }[]; cursor: Cursor; differ: Set<number>; onCursor: (c: Cursor) => void }) {
  const { traces, cursor } = props;
  const longest = traces.reduce((a, b) => (b.steps.length > a.steps.length ? b : a), traces[0]!);
  // Steps no run reached (a profile without an operation stops there: n/a), shown greyed.
  const unreached = props.lines.slice(longest.steps.length);
  const ref = useRef<HTMLOListElement>(null);
  useLayoutEffect(() => {
    ref.current?.querySelector('.current')?.scrollIntoView({ block: 'nearest' });
  }, [cursor.step]);
  return (
    <ol class="timeline" ref={ref} aria-label="steps">
      {longest.steps.map((s, i) => (
        <li key={i} class={i === cursor.step ? 'current' : ''}>
          <button type="button" class="step-btn" onClick={() => props.onCursor({ step: i, ev: null })} data-testid="step" data-step={i + 1}>
            <span class="n">{i + 1}</span>
            <span class="line muted">{s.record.line > 0 ? `L${s.record.line}` : ''}</span>
            <code>{s.record.text}</code>
            <span class="marks">
              {traces.map((t) => {
                const r = t.steps[i]?.record;
                if (!r) return <span class="mark na" key={t.profile.name} title={`${t.profile.name}: stopped before`}>·</span>;
                if (r.violations.length) return <span class="mark bad" key={t.profile.name} title={`${t.profile.name}: ${r.violations.map((v) => v.kind).join(', ')}`}>✗</span>;
                if (r.summary.startsWith('n/a')) return <span class="mark na" key={t.profile.name} title={`${t.profile.name}: ${r.summary}`}>n/a</span>;
                return <span class="mark ok" key={t.profile.name} title={`${t.profile.name}: no violation`}>✓</span>;
              })}
              {props.differ.has(i) ? <span class="mark differ" title="the profiles behave differently at this step">≠</span> : null}
            </span>
          </button>
        </li>
      ))}
      {unreached.map((l, j) => (
        <li key={`u${j}`} class="unreached" title="no run reached this step">
          <span class="step-btn">
            <span class="n">{longest.steps.length + j + 1}</span>
            <span class="line muted">L{l.line}</span>
            <code>{l.text}</code>
            <span class="marks"><span class="mark na">·</span></span>
          </span>
        </li>
      ))}
    </ol>
  );
}

export interface EditorError {
  line: number;
  col: number;
  message: string;
}

export function Editor(props: { text: string; errors: EditorError[]; onText: (t: string) => void }) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const lines = props.text.split('\n').length;
  const bad = new Set(props.errors.map((e) => e.line));
  const goTo = (e: EditorError): void => {
    const ta = area.current;
    if (!ta) return;
    const ls = ta.value.split('\n');
    let off = 0;
    for (let i = 0; i < e.line - 1 && i < ls.length; i++) off += ls[i]!.length + 1;
    off += Math.max(0, e.col - 1);
    ta.focus();
    ta.setSelectionRange(off, off + 1);
  };
  return (
    <div class="editor">
      <div class="editor-box">
        <div class="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => <div key={i} class={bad.has(i + 1) ? 'bad' : ''}>{i + 1}</div>)}
        </div>
        <textarea ref={area} spellcheck={false} value={props.text} aria-label="scenario text" data-testid="editor"
          onInput={(e) => props.onText((e.currentTarget as HTMLTextAreaElement).value)}
          onScroll={(e) => { if (gutter.current) gutter.current.scrollTop = (e.currentTarget as HTMLTextAreaElement).scrollTop; }} />
      </div>
      <div class={`parse-status ${props.errors.length ? 'bad' : 'ok'}`} data-testid="parse-status">
        {props.errors.length === 0 ? '✓ parses' : `✗ ${props.errors.length} error${props.errors.length === 1 ? '' : 's'}`}
      </div>
      {props.errors.length > 0 ? (
        <ul class="errors" data-testid="parse-errors">
          {props.errors.map((e, i) => (
            <li key={i}><button type="button" class="link" onClick={() => goTo(e)}>{e.line}:{e.col}</button> {e.message}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Legend() {
  return (
    <details class="legend" open>
      <summary>Legend</summary>
      <div class="legend-grid">
        <div>
          <b>Page-table entries</b> (left): each process shows only the populated path of its 4-level page table
          (PGD › PUD › PMD › PTE table) and, per mapped page, its PTE bits:
          <span class="bit">P</span> present, <span class="bit bit-write">W</span> writable,
          <span class="bit bit-wp">wp</span> write-protected (the next write faults into <code>do_wp_page</code>, which copies or reuses the frame),
          <span class="bit">D</span> dirty, <span class="bit">A</span> accessed, <span class="bit">SD</span> soft-dirty, <span class="bit">Z</span> zero page, <span class="bit">SW</span> swap entry, <span class="bit">DX</span> device-exclusive entry.
          “reads” is what a load returns now; <span class="reads wrong">≠ ideal</span> marks a page whose content differs from what the program may rely on.
        </div>
        <div>
          <b>Huge pages</b>: a <span class="huge-badge">PMD · 2 MiB</span> entry is a huge PMD mapping a whole 2 MiB
          transparent huge page with one entry; once split (<code>__split_huge_pmd</code>) that range shows a PTE table
          of 512 entries. A large folio is one card with the folio's refcount, mapcount, entire mapcount (its PMD
          mappings) and pins; its pages, each with its own counts, unfold under it.
        </div>
        <div>
          <b>Frames</b> (middle): physical pages. <i>refcount</i> counts every reference (each mapping 1, each pin
          GUP_PIN_COUNTING_BIAS = 1024, each GUP reference or pipe buffer 1); <i>mapcount</i> counts the PTEs mapping it;
          the line under them says where the refcount comes from. <span class="flag">anon-exclusive</span> is PG_anon_exclusive (5.19+).
        </div>
        <div>
          <b>Handles</b> (right; under the frames when two profiles share the width): pins (<code>pin_user_pages</code>, the device's view), GUP references and pipes (vmsplice),
          with what a read through them returns and what the ideal semantics allows.
        </div>
        <div>
          <b>Arrows</b>:
          <svg width="34" height="10" aria-hidden="true"><path d="M0,5 L34,5" class="arrow arrow-map-rw" /></svg> writable mapping,
          <svg width="34" height="10" aria-hidden="true"><path d="M0,5 L34,5" class="arrow arrow-map-ro" /></svg> write-protected mapping,
          <svg width="34" height="10" aria-hidden="true"><path d="M0,5 L34,5" class="arrow arrow-pin" /></svg> pin,
          <svg width="34" height="10" aria-hidden="true"><path d="M0,5 L34,5" class="arrow arrow-ref" /></svg> reference or pipe,
          <svg width="34" height="10" aria-hidden="true"><path d="M0,5 L34,5" class="arrow arrow-devexcl" /></svg> device-exclusive.
          <span class="val chg">yellow</span> cells changed in this step (or event), with the old value struck through
          (every PTE the step changed is yellow, in every process; a bit it cleared is struck through: <s class="bit bit-gone bit-write">W</s> is fork's write-protect);
          a <span class="violation-chip">red box</span> is a violation: where the model broke what a program may rely on.
        </div>
        <div>
          <b>Keys</b>: <kbd>→</kbd>/<kbd>←</kbd> next/previous step, <kbd>Shift</kbd>+<kbd>→</kbd>/<kbd>←</kbd> next/previous kernel event
          inside a step, <kbd>Home</kbd>/<kbd>End</kbd> first/last step. The address bar always holds a link to this exact view.
        </div>
      </div>
    </details>
  );
}
