// Helpers of the scenario parser tests.

import assert from 'node:assert/strict';
import { blockOrigin, parseScenario, parseSteps, type ScenarioError, type Scenario, type Step } from '../../src/scenario/index.js';

/** Steps text with one step a line; block line i is file line i + 1, column c + 1. */
export function lines(...ls: string[]): string {
  return ls.join('\n');
}

export function stepsOk(text: string): Step[] {
  const r = parseSteps(text, 't.scn.yaml', blockOrigin(1, 0));
  assert.deepEqual(
    r.errors.map((e) => e.format()),
    [],
    'expected no errors',
  );
  return r.steps;
}

/** The last step of `text` (which must parse). */
export function lastStep(text: string): Step {
  const steps = stepsOk(text);
  assert.ok(steps.length > 0);
  return steps[steps.length - 1]!;
}

export function stepsErrors(text: string): ScenarioError[] {
  return parseSteps(text, 't.scn.yaml', blockOrigin(1, 0)).errors;
}

/** The single error of `text`, checked for its line, column and a fragment of its message. */
export function oneError(text: string, line: number, col: number, fragment: string): ScenarioError {
  const errors = stepsErrors(text);
  assert.equal(errors.length, 1, `expected one error, got: ${errors.map((e) => e.format()).join(' | ')}`);
  const e = errors[0]!;
  assert.deepEqual({ line: e.line, col: e.col }, { line, col }, e.format());
  assert.ok(e.message.includes(fragment), `message '${e.message}' lacks '${fragment}'`);
  return e;
}

export function scenarioOk(text: string): Scenario {
  const r = parseScenario(text, 's.scn.yaml');
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

export function scenarioErrors(text: string): ScenarioError[] {
  const r = parseScenario(text, 's.scn.yaml');
  assert.equal(r.ok, false, 'expected the scenario to be rejected');
  return r.ok ? [] : r.errors;
}

/** Asserts that some error is at line:col and says `fragment`. */
export function hasError(errors: ScenarioError[], line: number, col: number, fragment: string): void {
  const found = errors.find((e) => e.line === line && e.col === col && e.message.includes(fragment));
  assert.ok(found, `no error at ${line}:${col} with '${fragment}' among:\n${errors.map((e) => e.format()).join('\n')}`);
}

/** The common prelude: P maps a 4-page region `buf`. */
export const P4 = 'P mmap buf 4';
