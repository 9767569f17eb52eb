// parseScenario: YAML text -> a Scenario with every name resolved, or every error found
// (each with file, line and column).

import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { Scenario } from './ast.js';
import { readEnvelope } from './envelope.js';
import { MAX_ERRORS, ScenarioError, byPosition } from './errors.js';
import { parseSteps } from './steps.js';

export type ParseResult = { ok: true; scenario: Scenario } | { ok: false; errors: ScenarioError[] };

/** The message of a YAML reader error, in the words of cowlab (never a JavaScript engine message). */
export function yamlMessage(e: YAMLError): string {
  switch (e.code) {
    case 'DUPLICATE_KEY':
      return 'invalid YAML: duplicate key (each key may appear once)';
    case 'MULTIPLE_DOCS':
      return "invalid YAML: more than one document (a scenario file holds one; remove the '---')";
    case 'RESOURCE_EXHAUSTION':
      // The YAML reader ran out of stack on nested collections.
      return 'invalid YAML: collections nested too deeply';
    default:
      // Some of the reader's messages are a JavaScript engine's (an exception it caught): not for the user.
      if (ENGINE_MESSAGE.test(e.message)) return `invalid YAML: the YAML reader cannot read this (${e.code.toLowerCase().replace(/_/g, ' ')})`;
      return `invalid YAML: ${e.message}`;
  }
}

/** A message of the JavaScript engine rather than of the YAML reader. */
const ENGINE_MESSAGE = /\b[A-Z][A-Za-z]*Error\b|Maximum call stack|Cannot (read|set) propert|is not a function|is not iterable|is not defined|Invalid (string|array) length|undefined/;

/**
 * A hint for a YAML error on a line indented with a tab (YAML allows only spaces there, and
 * the reader's own message does not say so): the commonest cause of its indentation errors.
 */
function tabHint(text: string, lc: LineCounter, line: number): string {
  const from = lc.lineStarts[line - 1];
  if (from === undefined) return '';
  return /^ *\t/.test(text.slice(from, from + 200)) ? ' (this line is indented with a tab: YAML indents with spaces only)' : '';
}

/** At most MAX_ERRORS errors in file order, then one saying there were more. */
function capped(errors: ScenarioError[]): ScenarioError[] {
  const sorted = [...errors].sort(byPosition);
  if (sorted.length <= MAX_ERRORS) return sorted;
  const kept = sorted.slice(0, MAX_ERRORS);
  const next = sorted[MAX_ERRORS]!;
  kept.push(new ScenarioError(next.file, next.line, next.col, `too many errors; stopped after ${MAX_ERRORS}`));
  return kept;
}

export function parseScenario(text: string, file: string): ParseResult {
  const lc = new LineCounter();
  // failsafe: every scalar stays a string; the envelope reader types the values itself.
  let doc;
  try {
    doc = parseDocument(text, { lineCounter: lc, schema: 'failsafe', prettyErrors: false, uniqueKeys: true });
  } catch {
    return { ok: false, errors: [new ScenarioError(file, 1, 1, 'invalid YAML: the YAML reader cannot read this file')] };
  }
  if (doc.errors.length > 0) {
    return { ok: false, errors: capped(doc.errors.map((e) => {
      const pos = lc.linePos(e.pos[0]);
      return ScenarioError.at(file, pos, yamlMessage(e) + tabHint(text, lc, pos.line));
    })) };
  }
  const { envelope, errors } = readEnvelope(doc, text, lc, file);
  let steps: Scenario['steps'] = [];
  if (envelope.steps !== null) {
    const r = parseSteps(envelope.steps.text, file, envelope.steps.origin);
    steps = r.steps;
    errors.push(...r.errors);
    if (r.steps.length === 0 && r.errors.length === 0) {
      errors.push(ScenarioError.at(file, envelope.steps.pos, "no steps: 'steps' holds only blank lines and comments (expected at least one operation)"));
    }
  }
  if (errors.length > 0 || envelope.name === null || envelope.steps === null) {
    return { ok: false, errors: capped(errors) };
  }
  return {
    ok: true,
    scenario: {
      file,
      name: envelope.name,
      description: envelope.description,
      kernel: envelope.kernel,
      kernelPos: envelope.kernelPos,
      config: envelope.config,
      outcomes: envelope.outcomes,
      steps,
    },
  };
}
