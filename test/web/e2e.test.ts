// End to end in a real browser: Debian's chromium driven by playwright-core (never a downloaded
// browser). Opens the RDMA story on v5.9-rc4 beside v6, steps to the violation, checks what the
// panels say, reloads the link, edits the text, and saves a screenshot.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Server } from 'node:http';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { startServer } from '../../src/server/server.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CHROMIUM = process.env['COWLAB_CHROMIUM'] ?? '/usr/bin/chromium';
// How Chromium runs on these machines: no sandbox as root, no GPU, no network chatter.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const RDMA = 'seeds/rdma-pin-fork-child-exits.scn.yaml';

const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)`;

/**
 * The page writes the view into the address bar just after it renders: wait for it. Polled from
 * here (page.url() follows history.replaceState): a predicate given to waitForFunction as text is
 * evaluated in the page, which the page's Content-Security-Policy (no 'unsafe-eval') may refuse.
 */
async function urlMatches(page: Page, re: RegExp, timeout = 5000): Promise<void> {
  const t0 = Date.now();
  while (!re.test(page.url())) {
    if (Date.now() - t0 > timeout) assert.match(page.url(), re);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The text of a locator once it matches (the page re-renders just after an action). */
async function textMatches(l: Locator, re: RegExp, timeout = 5000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const text = await l.innerText();
    if (re.test(text) || Date.now() - t0 > timeout) {
      assert.match(text, re);
      return text;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function texts(l: Locator): Promise<string[]> {
  return (await l.allInnerTexts()).map((s) => s.replace(/\s+/g, ' ').trim());
}

if (missing) {
  it('cowlab serve in a browser', (t) => t.skip(missing));
} else describe('cowlab serve in a browser', () => {
  let server: Server;
  let base: string;
  let tmp: string;
  let ctx: BrowserContext;
  let page: Page;
  const outside: string[] = [];
  const errors: string[] = [];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cowlab-e2e-'));
    const s = await startServer({ root: join(ROOT, 'scenarios'), assets: join(ROOT, 'dist/web'), port: 0 });
    server = s.server;
    base = s.url;
    ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1600, height: 1000 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
  });

  after(async () => {
    await ctx?.close();
    server?.close();
    if (!process.env['COWLAB_KEEP_SCREENSHOTS']) rmSync(join(tmp, 'profile'), { recursive: true, force: true });
  });

  it('steps the RDMA story to its violation on v5.9-rc4 beside v6', async (t) => {
    await page.goto(`${base}?file=${encodeURIComponent(RDMA)}&profile=v5.9-rc4&vs=v6`);
    const rc4 = page.locator('[data-testid="panel"][data-profile="v5.9-rc4"]');
    const v6 = page.locator('[data-testid="panel"][data-profile="v6"]');
    await rc4.waitFor();
    assert.equal(await page.getByTestId('scenario-name').innerText(), 'rdma-pin-fork-child-exits');
    await textMatches(page.getByTestId('position'), /step 1 of 10/);
    assert.equal(await rc4.getByTestId('verdict').innerText(), 'pin-incoherent, lost-write');
    assert.equal(await v6.getByTestId('verdict').innerText(), 'ok');

    // Step forward as a user would until the first violation shows.
    let steps = 0;
    while ((await rc4.getByTestId('violation').count()) === 0) {
      assert.ok(steps++ < 12, 'a violation appears');
      await page.getByTestId('next-step').click();
    }
    await textMatches(page.getByTestId('position'), /step 6 of 10.*line 39: P write buf\[0\] = 2/);
    await urlMatches(page, /[?&]step=6(&|$)/);

    const v = rc4.getByTestId('violation');
    assert.equal(await v.count(), 1);
    assert.equal(await v.getAttribute('data-kind'), 'pin-incoherent');
    const vText = (await v.innerText()).replace(/\s+/g, ' ');
    assert.match(vText, /pin-incoherent at step 6, line 39/);
    assert.match(vText, /mr\[0\] pins frame 1 but P now maps frame 2 there/);
    await textMatches(rc4.getByTestId('sentence'), /do_wp_page copied frame 1 to frame 2 because refcount 1025 > 1 with mapcount 1/);

    assert.equal(await v6.getByTestId('violation').count(), 0);
    await textMatches(v6.getByTestId('sentence'), /no fault/i);

    // The frames differ: v5.9-rc4 keeps the pinned frame 1 apart from P's new frame 2; v6 has one frame.
    const framesRc4 = await texts(rc4.locator('[data-testid="frame"] .frame-name'));
    const framesV6 = await texts(v6.locator('[data-testid="frame"] .frame-name'));
    assert.deepEqual(framesRc4, ['frame 1', 'frame 2']);
    assert.deepEqual(framesV6, ['frame 1']);
    assert.notDeepEqual(framesRc4, framesV6);
    const f1 = (await rc4.locator('[data-frame="1"]').innerText()).replace(/\s+/g, ' ');
    assert.match(f1, /refcount 1025 1024/); // the old value struck through, then the new
    assert.match(f1, /mapcount 1 0/);
    assert.match(f1, /1024 = 1024 pin mr/);
    const pteRc4 = (await rc4.locator('[data-proc="P"] [data-testid="pte"]').innerText()).replace(/\s+/g, ' ');
    assert.match(pteRc4, /buf\[0\].*frame 2/);
    const pteV6 = (await v6.locator('[data-proc="P"] [data-testid="pte"]').innerText()).replace(/\s+/g, ' ');
    assert.match(pteV6, /buf\[0\].*frame 1/);
    assert.equal(await rc4.locator('[data-proc="P"] [data-testid="pte"]').getAttribute('data-src'), '2');
    assert.equal(await rc4.locator('[data-handle="mr"] [data-src]').getAttribute('data-src'), '1');

    // Where they part ways: the fork (v6 copies the pinned page for the child at once).
    await textMatches(page.getByTestId('divergence'), /step 4 \(P fork Q\)[\s\S]*v6: fork: copy_present_page/);

    // The arrows are drawn: P's PTE -> frame 2 and the pin mr -> frame 1 on v5.9-rc4.
    assert.ok((await rc4.locator('svg.arrows path.arrow').count()) >= 2);

    const shot = join(tmp, 'rdma-v5.9-rc4-vs-v6-step6.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
  });

  it('steps through the kernel events inside a step', async () => {
    await page.getByTestId('step').filter({ hasText: 'P fork Q' }).click();
    await page.getByTestId('next-event').click();
    await textMatches(page.getByTestId('position'), /step 5 of 10, event 1 of 1/);
    await page.getByTestId('prev-event').click();
    await page.getByTestId('prev-event').click();
    await textMatches(page.getByTestId('position'), /step 4 of 10, event 2 of 2/);
    const v6 = page.locator('[data-testid="panel"][data-profile="v6"]');
    await textMatches(v6.getByTestId('sentence'), /event 2 of 2: P forks Q/);
    await page.getByTestId('prev-event').click();
    await textMatches(v6.getByTestId('sentence'), /event 1 of 2: fork: copy_present_page gave Q its own copy of frame 1/);
    await urlMatches(page, /step=4&ev=1$/);
  });

  it('reproduces the view from its link', async () => {
    const link = `${base}?file=${encodeURIComponent(RDMA)}&profile=v5.9-rc4&vs=v6&step=6`;
    const p2 = await ctx.newPage();
    await p2.goto(link);
    const rc4 = p2.locator('[data-testid="panel"][data-profile="v5.9-rc4"]');
    await rc4.getByTestId('violation').waitFor();
    await textMatches(p2.getByTestId('position'), /step 6 of 10/);
    assert.equal(await rc4.getByTestId('violation').getAttribute('data-kind'), 'pin-incoherent');
    await p2.keyboard.press('ArrowRight');
    await textMatches(p2.getByTestId('position'), /step 7 of 10/);
    await p2.close();
  });

  it('shows parse errors with line:col while a scenario is edited', async () => {
    await page.goto(`${base}?file=${encodeURIComponent(RDMA)}&profile=v6`);
    await page.getByTestId('panel').waitFor();
    await page.getByTestId('edit-toggle').click();
    const ed = page.getByTestId('editor');
    await ed.fill('name: pasted\nsteps: |\n  P mmap buf 1\n  P wrte buf[0] = 1\n');
    const errs = await textMatches(page.getByTestId('parse-errors'), /wrte/);
    assert.match(errs, /^4:5 unknown operation 'wrte': did you mean 'write'\?/m);
    await ed.fill('name: pasted\nsteps: |\n  P mmap buf 1\n  P write buf[0] = 1\n  P fork Q\n  Q write buf[0] = 2\n');
    await textMatches(page.getByTestId('parse-status'), /parses/);
    await page.getByTestId('step').filter({ hasText: 'Q write buf[0] = 2' }).click();
    await textMatches(page.getByTestId('sentence'), /do_wp_page copied frame 1 to frame 2 because refcount 2, mapcount 2: another process maps it/);
    // The edited text is in the link.
    await urlMatches(page, /[?&]text=name%3A\+pasted/);
  });

  // The checks run in the page (the test files are compiled without the DOM's types: strings).
  /** Every step line of the list shows its whole text: nothing cut, nothing scrolled away. */
  async function clippedSteps(p: Page): Promise<string[]> {
    return p.evaluate<string[]>(`(() => {
      const out = [];
      for (const el of document.querySelectorAll('[data-testid="step"] code, .timeline .unreached code')) {
        const box = el.getBoundingClientRect();
        const side = el.closest('.side').getBoundingClientRect();
        const cs = getComputedStyle(el);
        if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1 || box.right > side.right + 1) out.push(el.innerText);
        if (cs.textOverflow === 'ellipsis' && cs.overflow === 'hidden') out.push(el.innerText + ' (ellipsis)');
      }
      return out;
    })()`);
  }

  /** The width of each column of each panel's diagram, and the cards whose text does not fit. */
  async function layout(p: Page): Promise<{ cols: number[]; cut: string[]; hscroll: boolean; tops: number[] }> {
    return p.evaluate<{ cols: number[]; cut: string[]; hscroll: boolean; tops: number[] }>(`(() => ({
      tops: [...document.querySelectorAll('[data-testid="panel"]')].map((c) => Math.round(c.getBoundingClientRect().top)),
      cols: [...document.querySelectorAll('.diagram > .col')].map((c) => Math.round(c.getBoundingClientRect().width)),
      cut: [...document.querySelectorAll('.diagram .card')].filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.innerText.slice(0, 40)),
      hscroll: document.documentElement.scrollWidth > innerWidth,
    }))()`);
  }

  for (const [width, height] of [[1400, 900], [1280, 900], [800, 1000]] as const) {
    it(`side by side at ${width} px: every step line whole, every diagram column readable`, async (t) => {
      const p = await ctx.newPage();
      try {
        await p.setViewportSize({ width, height });
        await p.goto(`${base}?file=${encodeURIComponent(RDMA)}&profile=v5.9-rc4&vs=v6&step=6`);
        await p.locator('[data-testid="panel"][data-profile="v5.9-rc4"]').getByTestId('violation').waitFor();
        assert.deepEqual(await clippedSteps(p), [], 'step lines cut');
        // The longest step of the story is whole in the list.
        const pinLine = await p.getByTestId('step').filter({ hasText: 'P pin buf[0] as mr rw longterm' }).innerText();
        assert.match(pinLine.replace(/\s+/g, ' '), /P pin buf\[0\] as mr rw longterm/);
        const { cols, cut, hscroll, tops } = await layout(p);
        assert.equal(tops.length, 2);
        if (width >= 1280) assert.equal(tops[0], tops[1], 'the two panels side by side');
        else assert.ok(tops[1]! > tops[0]!, 'the two panels one under the other');
        assert.equal(cols.length, 6, 'two panels of three columns');
        for (const w of cols) assert.ok(w >= 150, `a diagram column ${w} px wide (${cols.join(', ')}) at ${width} px`);
        assert.deepEqual(cut, [], 'cards whose text is cut');
        assert.equal(hscroll, false, 'the page scrolls sideways');
        const shot = join(tmp, `rdma-side-by-side-${width}.png`);
        await p.screenshot({ path: shot, fullPage: true });
        t.diagnostic(`screenshot: ${shot}`);
      } finally {
        await p.close();
      }
    });
  }

  it('at fork, every PTE the step changed is highlighted, in the parent and in the child', async (t) => {
    const p = await ctx.newPage();
    try {
      // fork-isolation: P writes buf[0..2], then forks Q (step 3).
      await p.goto(`${base}?file=${encodeURIComponent('basic/fork-isolation.scn.yaml')}&profile=v6&step=3`);
      const panel = p.locator('[data-testid="panel"][data-profile="v6"]');
      await panel.locator('[data-proc="Q"]').waitFor();
      await textMatches(p.getByTestId('position'), /step 3 of .*P fork Q/);
      // The parent's three PTEs lost their write bit: highlighted, the W struck through.
      const parent = panel.locator('[data-proc="P"] [data-testid="pte"]');
      assert.equal(await parent.count(), 3);
      for (let i = 0; i < 3; i++) {
        const row = parent.nth(i);
        assert.match((await row.getAttribute('class')) ?? '', /\bchg\b/, `P's PTE ${i} highlighted`);
        assert.equal(await row.getAttribute('data-chg'), '1');
        assert.equal(await row.getByTestId('bit-gone').innerText(), 'W', `P's PTE ${i} shows its write bit cleared`);
      }
      // The child's three PTEs are new: highlighted too.
      const child = panel.locator('[data-proc="Q"] [data-testid="pte"]');
      assert.equal(await child.count(), 3);
      for (let i = 0; i < 3; i++) assert.match((await child.nth(i).getAttribute('class')) ?? '', /\bchg\b/, `Q's PTE ${i} highlighted`);
      // The step after (an expect line) changes no PTE: nothing highlighted.
      await p.goto(`${base}?file=${encodeURIComponent('basic/fork-isolation.scn.yaml')}&profile=v6&step=4`);
      await textMatches(p.getByTestId('position'), /step 4 of /);
      await p.locator('[data-testid="panel"][data-profile="v6"] [data-proc="Q"]').waitFor();
      assert.equal(await p.locator('[data-testid="panel"][data-profile="v6"] [data-testid="pte"].chg').count(), 0, 'an expect step changes no PTE');
      await p.goto(`${base}?file=${encodeURIComponent('basic/fork-isolation.scn.yaml')}&profile=v6&step=3`);
      await p.locator('[data-testid="panel"][data-profile="v6"] [data-proc="Q"]').waitFor();
      const shot = join(tmp, 'fork-isolation-v6-fork.png');
      await p.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await p.close();
    }
  });

  it('a PMD-mapped THP is one 2 MiB entry and one folio, expandable; after the split, its PTE table', async (t) => {
    const p = await ctx.newPage();
    const THP = 'seeds/cve-2020-29374-thp.scn.yaml';
    try {
      await p.goto(`${base}?file=${encodeURIComponent(THP)}&profile=v6`);
      const panel = p.locator('[data-testid="panel"][data-profile="v6"]');
      await panel.waitFor();
      // The first write maps the whole 2 MiB with one huge PMD: no PTE table.
      await p.getByTestId('step').filter({ hasText: 'P write buf = 1' }).click();
      const pmd = panel.locator('[data-proc="P"] [data-testid="pmd"]');
      await pmd.waitFor();
      assert.equal(await pmd.count(), 1);
      assert.match((await pmd.innerText()).replace(/\s+/g, ' '), /buf\[0\.\.511\].*2 MiB.*folio of frame \d+/);
      assert.equal(await panel.locator('[data-proc="P"] [data-testid="pte"]').count(), 0);
      // Its frames are one folio card with the folio's counts; its pages fold under it.
      const folio = panel.locator('[data-testid="frame"][data-large]');
      assert.equal(await folio.count(), 1);
      const head = Number(await folio.getAttribute('data-frame'));
      assert.equal(await pmd.getAttribute('data-src'), String(head));
      assert.match((await folio.innerText()).replace(/\s+/g, ' '), /refcount 1 mapcount 1 entire mapcount 1 pins 0/);
      const subpages = folio.getByTestId('subpage');
      assert.equal(await subpages.count(), 64);
      assert.equal(await subpages.first().isVisible(), false, 'folded');
      await folio.getByTestId('folio-pages').locator('summary').click();
      await subpages.first().waitFor({ state: 'visible' });
      assert.match((await subpages.nth(1).innerText()).replace(/\s+/g, ' '), new RegExp(`^\\[1\\] frame ${head + 1} · value 1 · mapcount 0`));
      // fork: both processes map the folio by a write-protected PMD.
      await p.getByTestId('step').filter({ hasText: 'P fork Q' }).click();
      await panel.locator('[data-proc="Q"] [data-testid="pmd"]').waitFor();
      await textMatches(folio, /entire mapcount 1 2/); // the old value struck through, then the new
      // P's write fault splits its PMD: a PTE table of 512 entries (64 shown), 511 on the folio's pages.
      await p.getByTestId('step').filter({ hasText: 'P write buf[0] = secret' }).click();
      const ptes = panel.locator('[data-proc="P"] [data-testid="pte"]');
      await ptes.first().waitFor();
      assert.equal(await panel.locator('[data-proc="P"] [data-testid="pmd"]').count(), 0);
      assert.equal(await ptes.count(), 64);
      assert.match(await panel.locator('[data-proc="P"]').innerText(), /448 more PTEs not shown/);
      assert.match((await ptes.nth(1).innerText()).replace(/\s+/g, ' '), new RegExp(`buf\\[1\\].*frame ${head + 1}`));
      assert.equal(await ptes.nth(1).getAttribute('data-src'), String(head + 1));
      await textMatches(folio, /entire mapcount 1 0/); // the old value struck through, then the new
      // Each PTE on a page of the folio has its arrow (to its page's row, unfolded here).
      const arrows = await panel.locator('svg.arrows path.arrow').count();
      assert.ok(arrows >= 64, `${arrows} arrows`);
      const shot = join(tmp, 'thp-split-v6.png');
      await p.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await p.close();
    }
  });

  it('"go to step N" looks like a link and goes there', async () => {
    const p = await ctx.newPage();
    try {
      await p.goto(`${base}?file=${encodeURIComponent(RDMA)}&profile=v5.9-rc4&vs=v6&step=6`);
      const go = p.getByTestId('go-to-divergence');
      await go.waitFor();
      assert.equal(await go.innerText(), 'go to step 4');
      const style = await p.evaluate<{ deco: string; color: string; text: string; cursor: string }>(`(() => {
        const el = document.querySelector('[data-testid="go-to-divergence"]');
        const cs = getComputedStyle(el);
        return { deco: cs.textDecorationLine, color: cs.color, text: getComputedStyle(el.parentElement).color, cursor: cs.cursor };
      })()`);
      assert.match(style.deco, /underline/);
      assert.notEqual(style.color, style.text, 'a link colour, not the text colour');
      assert.equal(style.cursor, 'pointer');
      await go.click();
      await textMatches(p.getByTestId('position'), /step 4 of 10/);
    } finally {
      await p.close();
    }
  });

  it('a file that does not exist: a clear message, and no endless "Loading…"', async (t) => {
    const p = await ctx.newPage();
    try {
      await p.goto(`${base}?file=nope.scn.yaml`);
      const failed = p.getByTestId('load-failed');
      await failed.waitFor({ timeout: 5000 });
      assert.match(await failed.innerText(), /nope\.scn\.yaml.*no such scenario under the served folder.*Pick a scenario/s);
      assert.equal(await p.getByTestId('loading').count(), 0);
      const shot = join(tmp, 'missing-file.png');
      await p.screenshot({ path: shot });
      t.diagnostic(`screenshot: ${shot}`);
      // Picking a scenario from the list then shows it.
      await p.getByTestId('scenario-select').selectOption(RDMA);
      await p.getByTestId('panel').waitFor();
      assert.equal(await p.getByTestId('load-failed').count(), 0);
    } finally {
      await p.close();
    }
  });

  it('asked nothing of any other host and raised no error', () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(errors, []);
  });
});
