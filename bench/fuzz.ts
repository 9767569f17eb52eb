// `npm run fuzz -- --count N [--seed S] [--one-profile] [--max-steps K] [--fail-on KIND,...]
// [--profiles a,b]`: the long mode of the
// fuzz campaign (test/fuzz/campaign.ts). Random scenarios over every operation, each run on
// every built-in profile (or on one, in turn, with --one-profile); any internal error stops it
// with the seed and the shrunk scenario; so does a violation of a kind named by --fail-on (to
// find and shrink one). Progress goes to stderr; the summary to stdout.

import { parseArgs } from 'node:util';
import { runCampaign, type CampaignStats } from '../test/fuzz/campaign.js';
import { BUILTIN_PROFILES } from '../src/profiles/builtin.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    'one-profile': { type: 'boolean', default: false },
    'max-steps': { type: 'string', default: '24' },
    'fail-on': { type: 'string' },
    profiles: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run fuzz -- [--count N] [--seed S] [--one-profile] [--max-steps K] [--fail-on KIND,...] [--profiles a,b,...]\n');
  process.exit(0);
}
const count = Number(values.count);
const seed = values.seed === undefined ? (Math.random() * 0x7fffffff) | 0 : Number(values.seed);
const maxSteps = Number(values['max-steps']);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(maxSteps) || maxSteps < 1) {
  process.stderr.write('fuzz: --count, --seed and --max-steps take integers (count and max-steps 1 or more)\n');
  process.exit(2);
}
const names = values.profiles?.split(',').map((n) => n.trim()).filter(Boolean);
const profiles = names === undefined ? BUILTIN_PROFILES : BUILTIN_PROFILES.filter((p) => names.includes(p.name));
if (names !== undefined && (profiles.length !== names.length || profiles.length === 0)) {
  process.stderr.write(`fuzz: --profiles: built-in profile names (${BUILTIN_PROFILES.map((p) => p.name).join(', ')})\n`);
  process.exit(2);
}
const t0 = performance.now();
const line = (done: number, s: CampaignStats): string => {
  const secs = (performance.now() - t0) / 1000;
  return `${done} scenarios, ${s.runs} runs, ${Math.round(s.runs / secs)} runs/s, ${secs.toFixed(0)} s; status ${JSON.stringify(s.status)}`;
};
process.stderr.write(`fuzz: ${count} scenarios, seed ${seed}, ${values['one-profile'] ? 'one profile each' : 'every profile'}\n`);
try {
  const stats = runCampaign({
    count, seed, everyProfile: !values['one-profile'], maxSteps, profiles,
    failOn: values['fail-on']?.split(',').map((k) => k.trim()).filter(Boolean) ?? [],
    progress: (done, s) => {
      if (done % 10000 === 0 || done === count) process.stderr.write(`  ${line(done, s)}\n`);
    },
  });
  process.stdout.write(`fuzz: 0 internal errors in ${line(stats.scenarios, stats)} (seed ${seed})\n`);
  process.stdout.write(`violation kinds per profile (runs): ${JSON.stringify(stats.kinds)}\n`);
} catch (e) {
  process.stdout.write(`fuzz: FAILED (seed ${seed}): an internal error${values['fail-on'] ? ', or a violation of a kind --fail-on names' : ''}\n${(e as Error).message}\n`);
  process.exit(1);
}
