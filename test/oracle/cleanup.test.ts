// The helper leaves nothing behind: no scenario process, no io_uring instance, no pipe, after
// each scenario, after a scenario process dies in the middle, and after the session ends.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { openLive, steps, v6 } from './helpers.js';

/** Gone, or a zombie waiting for its parent. */
function gone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function uringFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).includes('io_uring');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

const HANDLES = steps('handles',
  'P mmap a 4 rw private', 'P write a = 1', 'P pin a[0..1] as h', 'P fork Q', 'Q vmsplice a[2..3] as p', 'P pin a[3] as k', 'Q exit');

test('nothing is left after a scenario with pins, pipes and processes', (t) => {
  const live = openLive();
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const s = live.session;
  try {
    const r = oracleScenario(s, HANDLES, v6());
    assert.equal(r.error, null);
    assert.deepEqual(s.census(), { procs: 0, handles: 0 });
    assert.equal(uringFds(s.agentPid), 0, 'the agent still holds an io_uring');
  } finally {
    s.close();
  }
});

test('a scenario process that dies mid-scenario is an error, and leaves nothing behind', (t) => {
  const live = openLive();
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const s = live.session;
  try {
    // Replay the first steps by hand, kill P, then let the replay go on.
    const sc = steps('dies', 'P mmap a 2 rw private', 'P write a = 1', 'P pin a[0] as h', 'P fork Q', 'P write a = 2', 'Q read a[0]');
    const rp = s.replayer(sc);
    assert.equal(rp.run(4).error, null);
    const pids = rp.liveProcs().map((p) => p.pid);
    assert.equal(pids.length, 2);
    process.kill(pids[0]!, 'SIGKILL');
    const rest = rp.run(6, 4);
    assert.match(rest.error ?? '', /line \d+: a scenario process died/);
    assert.ok(rest.steps.every((st) => st.skip !== null), 'steps after the failure must say they were not replayed');
    assert.equal(s.cleanSlate(), null);
    assert.deepEqual(s.census(), { procs: 0, handles: 0 });
    assert.equal(uringFds(s.agentPid), 0, 'the agent still holds an io_uring');
    for (const pid of pids) assert.ok(gone(pid), `process ${pid} is still there`);
    // The session goes on working.
    assert.equal(oracleScenario(s, HANDLES, v6()).status, 'agree');
  } finally {
    s.close();
  }
});

test('the agent and its processes are gone once the session is closed', (t) => {
  const live = openLive();
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const s = live.session;
  const agentPid = s.agentPid;
  s.close();
  // The agent answered `bye` after releasing everything; it exits right after.
  for (let i = 0; i < 200 && !gone(agentPid); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  assert.ok(gone(agentPid), 'the agent is still running');
});
