// User-defined profiles: a YAML file with one profile or a list of them, each a base profile
// plus switches. Errors name FILE:LINE:COL.
//
//   name: v5.9-no-early-cow        # [a-z0-9.+-]+
//   base: v5.9                     # any built-in (or earlier in the same file)
//   summary: v5.9 without seed 000 # optional
//   switches:
//     forkEarlyCow: false
//
// A name must be new: not a built-in's, nor one defined before (in this file or an earlier one).

import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { yamlMessage } from '../scenario/parse.js';
import type { Profile } from '../core/profile.js';
import { parseSwitch, ProfileError, type ProfileRegistry } from './resolve.js';

export interface ProfileFileError {
  file: string;
  line: number;
  col: number;
  message: string;
}

const KEYS = ['name', 'base', 'summary', 'source', 'switches'];

export function loadProfileFile(text: string, file: string, registry: ProfileRegistry): { profiles: Profile[]; errors: ProfileFileError[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const errors: ProfileFileError[] = [];
  const at = (node: Node | null | undefined, message: string): void => {
    const off = node?.range?.[0] ?? 0;
    const p = lc.linePos(off);
    errors.push({ file, line: p.line, col: p.col, message });
  };
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0]);
    errors.push({ file, line: p.line, col: p.col, message: yamlMessage(e).split('\n')[0]! });
  }
  if (errors.length) return { profiles: [], errors };
  const root = doc.contents;
  const items = isSeq(root) ? root.items : [root];
  const out: Profile[] = [];
  for (const item of items) {
    if (!isMap(item)) {
      at(item as Node, 'expected a profile: a mapping with name, base and switches');
      continue;
    }
    const get = (k: string): Node | null => (item.get(k, true) as Node | undefined) ?? null;
    for (const pair of item.items) {
      const key = String((pair.key as { value?: unknown }).value ?? pair.key);
      if (!KEYS.includes(key)) at(pair.key as Node, `unknown key '${key}' (expected: ${KEYS.join(', ')})`);
    }
    const nameNode = get('name');
    const baseNode = get('base');
    const name = scalar(nameNode);
    const base = scalar(baseNode);
    if (!name || !/^[a-z0-9][a-z0-9.+_-]*$/.test(name)) {
      at(nameNode ?? item, "expected 'name': lower-case letters, digits, '.', '+', '-'");
      continue;
    }
    // A profile replacing another would be judged by that one's outcomes (a scenario's `v6:` is the built-in's).
    const defined = registry.definedAs(name);
    if (defined !== null) {
      at(nameNode, defined === 'built-in'
        ? `'${name}' is a built-in profile: a user profile needs a name of its own (it would replace the built-in, and be judged by the outcomes scenarios give '${name}')`
        : `profile '${name}' is already defined at ${defined}: each profile needs a name of its own`);
      continue;
    }
    if (!base || !registry.has(base)) {
      at(baseNode ?? item, `expected 'base': a known profile (${registry.names().join(', ')})`);
      continue;
    }
    const p: Record<string, unknown> = {
      ...registry.get(base), name, summary: scalar(get('summary')) ?? `${base} with user switches`,
      source: scalar(get('source')) ?? `user profile from ${file}`,
    };
    const sw = get('switches');
    if (sw !== null) {
      if (!isMap(sw)) at(sw, "expected 'switches': a mapping SWITCH: VALUE");
      else {
        for (const pair of sw.items) {
          const k = String((pair.key as { value?: unknown }).value);
          const v = String((pair.value as { value?: unknown } | null)?.value ?? '');
          try {
            p[k] = parseSwitch(k, v);
          } catch (e) {
            if (e instanceof ProfileError) at(pair.key as Node, e.message);
            else throw e;
          }
        }
      }
    }
    const prof = p as unknown as Profile;
    const where = lc.linePos(nameNode?.range?.[0] ?? 0);
    registry.add(prof, `${file}:${where.line}:${where.col}`);
    out.push(prof);
  }
  return { profiles: out, errors };
}

function scalar(n: Node | null): string | null {
  if (n === null) return null;
  const { value: v, source } = n as { value?: unknown; source?: unknown };
  // A plain `5.10` is the number 5.1 to YAML: a profile name keeps the text as written.
  if (typeof v === 'number' && typeof source === 'string') return source;
  return v === undefined || v === null ? null : String(v);
}
