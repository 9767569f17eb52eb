// khugepaged held asleep for a live session (oracle/khugepaged.c, thp.ts: pauseKhugepaged): its
// scan_sleep_millisecs and pages_to_scan are the session's while it runs, and the machine's
// again when it ends, after SIGINT, SIGTERM or SIGHUP to the agent, after a SIGKILLed agent
// (`cowlab-oracle reclaim`, or the next session, which keeps the recorded values as the
// machine's), and with two sessions side by side (the last one out puts them back).
//
// Other cowlab oracles on this machine (another test file, another engineer) may hold the pause
// too; then the settings stay the session's after ours ends. The tests see that in /proc/locks
// (a shared flock on the users' file held by a process other than the ones they started) and
// check the other outcome: the settings still held, the machine's values still recorded.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { Agent } from '../../src/oracle/agent.js';
import { ensureHelper, OracleUnavailable } from '../../src/oracle/build.js';
import { probedFacts } from '../../src/oracle/probed.js';
import { OracleSession } from '../../src/oracle/session.js';
import { waitGone } from './helpers.js';

const KH = '/sys/kernel/mm/transparent_hugepage/khugepaged/';
const DIR = existsSync('/run') ? '/run' : '/tmp';
const RECORD = `${DIR}/cowlab-oracle-khugepaged.lock`;
const USERS = `${DIR}/cowlab-oracle-khugepaged-users.lock`;
/** What the session sets (oracle/khugepaged.c: KH_SLEEP_MS, KH_PAGES). */
const PAUSED = { sleep: '86400000', pages: '8' };

interface Settings {
  sleep: string;
  pages: string;
}

function settings(): Settings {
  const v = (f: string): string => readFileSync(KH + f, 'utf8').trim();
  return { sleep: v('scan_sleep_millisecs'), pages: v('pages_to_scan') };
}

function record(): string {
  return existsSync(RECORD) ? readFileSync(RECORD, 'utf8') : '';
}

/** The machine's own values: the record's when a pause is in place, else the current ones. */
function machine(): Settings {
  const w = record().trim().split(/\s+/);
  return w.length === 3 ? { sleep: w[1]!, pages: w[2]! } : settings();
}

/** Live processes other than `mine` holding a flock on the users' file: other oracles' agents. */
function otherHolders(mine: number[]): number[] {
  if (!existsSync(USERS)) return [];
  const ino = statSync(USERS).ino;
  const out: number[] = [];
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    // "1: FLOCK  ADVISORY  READ  PID MAJ:MIN:INODE 0 EOF"
    if (f[1] !== 'FLOCK' || !f[5]?.endsWith(`:${ino}`)) continue;
    const pid = Number(f[4]);
    if (!mine.includes(pid) && existsSync(`/proc/${pid}`)) out.push(pid);
  }
  return out;
}

/** After the pause ended for `mine`: the machine's values are back, or another oracle still holds the pause. */
function assertPutBack(before: Settings, mine: number[], what: string): void {
  const others = otherHolders(mine);
  if (others.length === 0) {
    assert.deepEqual(settings(), before, `${what}: khugepaged's settings put back`);
    assert.equal(record(), '', `${what}: the record is cleared`);
  } else {
    assert.deepEqual(settings(), PAUSED, `${what}: another oracle (pid ${others.join(', ')}) holds the pause`);
    assert.deepEqual(machine(), before, `${what}: the machine's values are still recorded`);
  }
}

function skipWhy(): string | null {
  if (process.platform !== 'linux') return `the oracle needs Linux; this is ${process.platform}`;
  if (!existsSync(`${KH}scan_sleep_millisecs`)) return `this kernel has no khugepaged (${KH} is missing)`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'changing khugepaged\'s settings needs root';
  try {
    ensureHelper();
  } catch (e) {
    if (e instanceof OracleUnavailable) return e.message;
    throw e;
  }
  return null;
}

test('a session holds khugepaged asleep while it runs, and puts its settings back when it closes (also after its agent died and a new one took over)', (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = machine();
  const s = OracleSession.open();
  const agents = [s.agentPid];
  try {
    assert.deepEqual(settings(), PAUSED, 'the session\'s values while it runs');
    assert.deepEqual(machine(), before, 'the machine\'s values are recorded');
    const k = s.facilities.thpInfo!;
    assert.deepEqual(k.khugepagedPaused && { sleep: String(k.khugepagedPaused.scanSleepMs), pages: String(k.khugepagedPaused.pagesToScan) }, PAUSED);
    assert.deepEqual({ sleep: String(k.khugepaged.scanSleepMs), pages: String(k.khugepaged.pagesToScan) }, before, 'the probe line reports the machine\'s values');
    assert.ok(k.khugepagedPaused!.settledMs >= 0, 'khugepaged went back to sleep after the change woke it');
    const line = probedFacts(s.facilities).find((f) => f.name === 'khugepaged');
    assert.match(line?.value ?? '', /held asleep for the session .*put back at the end/);

    // The agent dies (SIGKILL): the driver's reclaim puts the values back, the next agent pauses again.
    process.kill(s.agentPid, 'SIGKILL');
    assert.match(s.cleanSlate() ?? '', /the helper died/);
    assertPutBack(before, agents, 'after the agent was killed');
    assert.deepEqual(s.census(), { procs: 0, handles: 0 }); // starts the new agent
    agents.push(s.agentPid);
    assert.deepEqual(settings(), PAUSED, 'the new agent holds khugepaged asleep again');
    assert.deepEqual(machine(), before);
  } finally {
    s.close();
  }
  assertPutBack(before, agents, 'after close');
});

test('two sessions side by side: the second reports the machine\'s values, and the last one out puts them back', (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = machine();
  const a = OracleSession.open();
  let b: OracleSession | null = null;
  try {
    b = OracleSession.open();
    const k = b.facilities.thpInfo!.khugepaged;
    assert.deepEqual({ sleep: String(k.scanSleepMs), pages: String(k.pagesToScan) }, before, 'the recorded values, not the paused ones');
    assert.equal(b.facilities.thpInfo!.khugepagedPaused!.settledMs, 0, 'the second session wrote nothing (khugepaged not woken)');
    a.close();
    assert.deepEqual(settings(), PAUSED, 'still held while the second session runs');
    assert.deepEqual(machine(), before);
  } finally {
    a.close();
    b?.close();
  }
  assertPutBack(before, [a.agentPid, b!.agentPid], 'after both closed');
});

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`${sig} to the agent puts khugepaged's settings back`, async (t) => {
    const why = skipWhy();
    if (why) return t.skip(why);
    const before = machine();
    const agent = Agent.start(ensureHelper());
    const r = agent.call('khpause');
    assert.equal(r[0], 'ok', r.join(' '));
    assert.deepEqual({ sleep: r[1], pages: r[2] }, before);
    assert.deepEqual(settings(), PAUSED);
    process.kill(agent.pid, sig);
    await waitGone(agent.pid);
    agent.close();
    assertPutBack(before, [agent.pid], `after ${sig}`);
  });
}

test('a SIGKILLed agent leaves its record: reclaim puts the values back; the next agent keeps them as the machine\'s', async (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = machine();
  for (const repair of ['reclaim', 'next agent'] as const) {
    const agent = Agent.start(ensureHelper());
    assert.equal(agent.call('khpause')[0], 'ok');
    process.kill(agent.pid, 'SIGKILL');
    await waitGone(agent.pid);
    agent.close();
    assert.deepEqual(settings(), PAUSED, `${repair}: a SIGKILLed agent cannot put them back itself`);
    assert.deepEqual(machine(), before, `${repair}: its record holds the machine's values`);
    if (repair === 'reclaim') {
      execFileSync(ensureHelper(), ['reclaim'], { stdio: ['ignore', 'ignore', 'pipe'] });
      assertPutBack(before, [agent.pid], 'after reclaim');
    } else {
      const next = Agent.start(ensureHelper());
      const r = next.call('khpause');
      assert.deepEqual({ ok: r[0], sleep: r[1], pages: r[2] }, { ok: 'ok', ...before }, 'the next agent answers the recorded values');
      next.quit();
      assertPutBack(before, [agent.pid, next.pid], 'after the next agent quit');
    }
  }
});
