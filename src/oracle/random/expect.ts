// A generated scenario's expectations are the model's answers: the lines are first run on the
// model with neutral placeholders, then each observing line gets what the model observed, so
// the file passes `cowlab run` on that profile and records what the kernel is compared with.

import type { Profile } from '../../core/profile.js';
import type { RunResult } from '../../engine/result.js';
import { runScenario } from '../../engine/run.js';
import { parseScenario, type Scenario } from '../../scenario/index.js';
import type { GenLine } from './generate.js';

export interface Filled {
  lines: GenLine[];
  /** The final text of each kept step (the lines that are no `config:` entry). */
  texts: string[];
  /** The `config:` entries (`hugepages: 2`). */
  config: string[];
  text: string;
  scenario: Scenario;
  model: RunResult;
}

const NEUTRAL: Record<GenLine['fill'], string> = {
  none: '', read: '', frame: 'same-frame', mapped: 'mapped-once', exclusive: 'anon-exclusive', stat: '0', 'uffd-wp': 'uffd-wp',
};

export function scenarioText(name: string, description: string, steps: readonly string[], profile: string, config: readonly string[] = []): string {
  const desc = description.split('\n').map((l) => `  ${l}`).join('\n');
  const conf = config.length > 0 ? `config:\n${config.map((c) => `  ${c}\n`).join('')}` : '';
  return `name: ${name}\ndescription: >\n${desc}\nkernel: ${profile}\n${conf}steps: |\n${steps.map((s) => `  ${s}`).join('\n')}\n`;
}

function render(line: GenLine, answer: string): string {
  return line.text.replace('{}', answer).replace(/\s+$/, '');
}

function parse(text: string, file: string): Scenario | string {
  const r = parseScenario(text, file);
  return r.ok ? r.scenario : r.errors.map((e) => `${e.line}:${e.col}: ${e.message}`).join('; ');
}

/** Fills the model's answers in; a string is why the lines do not make a valid scenario. */
export function fillFromModel(all: readonly GenLine[], profile: Profile, name: string, description: string, file: string): Filled | string {
  const config = all.filter((l) => l.config).map((l) => l.text);
  const lines = all.filter((l) => !l.config);
  const draft = parse(scenarioText(name, description, lines.map((l) => render(l, NEUTRAL[l.fill])), profile.name, config), file);
  if (typeof draft === 'string') return draft;
  const first = runScenario(draft, profile, { trace: false, maxEventsPerStep: 0 });
  if (first.na !== null) return `the model is n/a at line ${first.na.line}: ${first.na.reason}`;
  const kept: GenLine[] = all.filter((l) => l.config);
  const texts: string[] = [];
  lines.forEach((line, i) => {
    const obs = first.steps[i]?.observations[0];
    let answer = NEUTRAL[line.fill];
    if (line.fill !== 'none' && obs) {
      if (line.fill === 'read') answer = `expect ${obs.actual}`;
      else if (obs.actual === 'not mapped') return; // no such expectation in the language
      else answer = obs.actual;
    }
    kept.push(line);
    texts.push(render(line, answer));
  });
  const text = scenarioText(name, description, texts, profile.name, config);
  const scenario = parse(text, file);
  if (typeof scenario === 'string') return `with the model's answers: ${scenario}`;
  const model = kept.length === all.length && texts.every((t, i) => t === render(lines[i]!, NEUTRAL[lines[i]!.fill]))
    ? first
    : runScenario(scenario, profile, { trace: false, maxEventsPerStep: 0 });
  return { lines: kept, texts, config, text, scenario, model };
}
