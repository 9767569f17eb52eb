// The hugetlb pool on the live kernel (oracle/hugetlb.c): the oracle sets nr_hugepages for a
// scenario and puts the machine's value back after the scenario, on SIGINT, and after a killed
// agent (the next agent, or `cowlab-oracle reclaim`); the hugetlb scenarios agree with the kernel.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { Agent } from '../../src/oracle/agent.js';
import { ensureHelper } from '../../src/oracle/build.js';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { openLive, parse, v6, waitGone } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

const NR = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';

function nr(): number {
  return Number(readFileSync(NR, 'utf8').trim());
}

function skipWhy(): string | null {
  if (!live.session) return live.reason;
  if (!existsSync(NR)) return 'this kernel has no 2 MiB hugetlb pool';
  return null;
}

const OWNER = parse(`name: owner
config:
  hugepages: 1
steps: |
  P mmap huge 512 rw private hugetlb
  P write huge = 1
  P fork Q
  P write huge[0] = 2
  P read huge[0] expect 2
  Q read huge[0]
`);

test('a hugetlb scenario: the pool is set for it, the kernel agrees (the owner takes the page back, the child dies of SIGBUS), and nr_hugepages is put back', (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = nr();
  const r = oracleScenario(live.session!, OWNER, v6());
  if (r.status === 'skipped') return t.skip(r.skip ?? '');
  const bad = r.steps.flatMap((s) => s.rows.filter((row) => row.verdict === 'disagree').map((row) => `line ${s.line}: model ${row.model}, kernel ${row.kernel}`));
  assert.deepEqual(bad, []);
  assert.equal(r.status, 'agree');
  const last = r.steps[r.steps.length - 1]!;
  assert.deepEqual(last.rows.map((x) => [x.model, x.kernel]), [['fault', 'fault']], "Q's read is a SIGBUS on both sides");
  assert.equal(nr(), before, 'nr_hugepages put back after the scenario');
});

test('SIGINT to the agent puts nr_hugepages back', async (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = nr();
  const agent = Agent.start(ensureHelper());
  const r = agent.call(`hugetlb ${before + 2}`);
  assert.equal(r[0], 'ok', r.join(' '));
  assert.ok(nr() >= 2, 'the pool was raised');
  process.kill(agent.pid, 'SIGINT');
  await waitGone(agent.pid);
  agent.close();
  assert.equal(nr(), before);
});

test('a SIGKILLed agent leaves its record: reclaim, or the next agent, puts nr_hugepages back', async (t) => {
  const why = skipWhy();
  if (why) return t.skip(why);
  const before = nr();
  for (const repair of ['reclaim', 'next agent'] as const) {
    const agent = Agent.start(ensureHelper());
    assert.equal(agent.call('hugetlb 3')[0], 'ok');
    const raised = nr();
    process.kill(agent.pid, 'SIGKILL');
    await waitGone(agent.pid);
    agent.close();
    assert.equal(nr(), raised, `${repair}: a SIGKILLed agent cannot put it back itself`);
    if (repair === 'reclaim') {
      execFileSync(ensureHelper(), ['reclaim'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } else {
      const next = Agent.start(ensureHelper());
      assert.equal(next.call('hugetlb 1')[0], 'ok');
      next.quit();
    }
    assert.equal(nr(), before, `${repair}: nr_hugepages put back`);
  }
});
