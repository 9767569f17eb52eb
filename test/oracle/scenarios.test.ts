// The project's scenarios on the live kernel: wherever the kernel can replay them, every
// comparable observation of the v6 model agrees with it.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { openLive, scenariosIn, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

for (const dir of ['scenarios/basic', 'scenarios/seeds', 'scenarios/kernel-tests']) {
  describe(`${dir} on the live kernel`, () => {
    for (const sc of scenariosIn(dir)) {
      test(sc.name, (t) => {
        if (!live.session) {
          t.skip(live.reason);
          return;
        }
        const r = oracleScenario(live.session, sc, v6());
        if (r.status === 'skipped') {
          // Only a story of a facility this kernel lacks is skipped (the zero page, THPs), a THP
          // scenario whose 2 MiB allocation failed here, a hugetlb story where the pool it needs
          // could not be set (oracle/hugetlb.c), or a KSM story written for the other value of
          // the machine's use_zero_pages (left as the machine has it).
          const machineSetting = /THP/.test(r.skip ?? '') || r.skip?.startsWith('could not reserve') || /use_zero_pages/.test(r.skip ?? '');
          if (!machineSetting) assert.equal(live.session.facilities.zeroPage, false, `skipped on a kernel with the zero page: ${r.skip}`);
          t.skip(r.skip ?? '');
          return;
        }
        if (r.counts.compared === 0) {
          // Not runnable here: say why (the first reason a step or observation was skipped).
          const why = r.steps.map((s) => s.skip ?? s.rows.find((x) => x.reason)?.reason).find((x) => x) ?? r.na?.reason ?? 'nothing to compare';
          t.skip(`not runnable on the live kernel: ${why}`);
          return;
        }
        const bad = r.steps.flatMap((s) => s.rows.filter((row) => row.verdict === 'disagree').map((row) => `line ${s.line} ${s.text}: model ${row.model}, kernel ${row.kernel}`));
        assert.deepEqual(bad, [], `${sc.file} disagrees with the kernel`);
        assert.equal(r.error, null, `the live replay failed: ${r.error}`);
        assert.ok(r.status === 'agree' || r.status === 'n/a', `status ${r.status}`);
        // Everything skipped says why.
        for (const s of r.steps) for (const row of s.rows) if (row.verdict === 'skipped') assert.ok(row.reason, `line ${s.line}: skipped without a reason`);
      });
    }
  });
}
