// The JSON Schema of the envelope agrees with the parser on keys and kinds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_KEYS, TOP_KEYS, VIOLATION_KINDS } from '../../src/scenario/index.js';

// dist/test/scenario -> the repository root.
const schemaUrl = new URL('../../../schema/scenario.schema.json', import.meta.url);

interface Schema {
  $schema: string;
  additionalProperties: boolean;
  required: string[];
  properties: Record<string, { pattern?: string; properties?: Record<string, unknown>; additionalProperties?: unknown; description?: string }>;
  $defs: { violationKind: { enum: string[] }; expected: { oneOf: { enum?: string[] }[] } };
}

test('schema/scenario.schema.json describes the envelope the parser reads', () => {
  const schema = JSON.parse(readFileSync(schemaUrl, 'utf8')) as Schema;
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['name', 'steps']);
  assert.deepEqual(Object.keys(schema.properties).sort(), [...TOP_KEYS].sort());
  assert.deepEqual(Object.keys(schema.properties['config']!.properties!).sort(), [...CONFIG_KEYS].sort());
  assert.equal(schema.properties['config']!.additionalProperties, false);
  assert.equal(schema.properties['name']!.pattern, '^[a-z0-9-]+$');
  assert.deepEqual(schema.$defs.violationKind.enum, [...VIOLATION_KINDS]);
  assert.deepEqual(schema.$defs.expected.oneOf[0]!.enum, ['ok', 'fail', 'n/a']);
  for (const [key, prop] of Object.entries(schema.properties)) {
    assert.ok((prop.description ?? '').length > 0, `${key} has a description`);
  }
});
