// The YAML envelope of a scenario: the top-level keys, their types and values, with the
// position of every mistake. The steps text is handed on, with how its lines map onto
// the file, to the steps parser.

import { isAlias, isMap, isScalar, isSeq, Scalar, type Document, type LineCounter, type Node } from 'yaml';
import { VIOLATION_KINDS, type Expected, type Pos, type ScenarioConfig, type ViolationKind } from './ast.js';
import { ScenarioError, unknownWord } from './errors.js';
import { blockOrigin, fixedOrigin, type StepOrigin } from './steps.js';

export const TOP_KEYS = ['name', 'description', 'kernel', 'config', 'outcomes', 'steps'] as const;
/**
 * The config key of each field of ScenarioConfig: the one list of them. The reader (config()) and
 * the writer (configLines()) go by it, and a field without its key fails to compile.
 */
const CONFIG_KEY_OF = { frames: 'frames', pinBias: 'pin_bias', thp: 'thp', hugepages: 'hugepages', ksmUseZeroPages: 'ksm_use_zero_pages', ksmSmartScan: 'ksm_smart_scan' } as const satisfies Record<keyof ScenarioConfig, string>;
export const CONFIG_KEYS: readonly (typeof CONFIG_KEY_OF)[keyof ScenarioConfig][] = Object.values(CONFIG_KEY_OF);

/**
 * The largest pin_bias: the model keeps refcounts in 32 bits, as the kernel does. A 1 MiB file
 * holds at most about 62,000 pin steps (`  P pin b as xyz`, 17 bytes), which at this bias stay
 * below 2^31 on one page; past it a few pins wrapped the refcount round to a false `accounting`
 * or `kernel-bug` violation.
 */
const PIN_BIAS_MAX = { n: 16384, why: "the kernel's is 1024; the model's refcounts are 32-bit, as the kernel's" };
/** config.ksm_use_zero_pages: a switch, as the sysfs file is. */
const KSM_USE_ZERO_PAGES_MAX = { n: 1, why: '/sys/kernel/mm/ksm/use_zero_pages is 0 or 1' };
/** config.ksm_smart_scan: a switch, as the sysfs file is. */
const KSM_SMART_SCAN_MAX = { n: 1, why: '/sys/kernel/mm/ksm/smart_scan is 0 or 1' };
/** config.thp (v1.2): /sys/kernel/mm/transparent_hugepage/enabled. */
export const THP_MODES = ['always', 'madvise', 'never'] as const;
export const OUTCOME_WORDS = ['ok', 'fail', 'n/a'] as const;
export const NAME_PATTERN = /^[a-z0-9-]+$/;

export interface StepsSource {
  text: string;
  origin: StepOrigin;
  /** Where the steps value starts (for errors about the block as a whole). */
  pos: Pos;
}

export interface Envelope {
  name: string | null;
  description: string | null;
  kernel: string | null;
  kernelPos: Pos | null;
  config: ScenarioConfig;
  outcomes: Map<string, { expected: Expected; pos: Pos }>;
  steps: StepsSource | null;
}

/**
 * A plain scalar the YAML 1.2 core schema reads as a number or a boolean (this reader keeps every
 * scalar a string): where text is expected, one is a value of the wrong type, not a word.
 */
const CORE_NUMBER_OR_BOOL = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE)$/;

/** A plain scalar the YAML core schema reads as null. */
const NULL_WORDS = new Set(['', '~', 'null', 'Null', 'NULL']);

class EnvelopeReader {
  readonly errors: ScenarioError[] = [];

  constructor(
    private readonly doc: Document,
    private readonly text: string,
    private readonly lc: LineCounter,
    private readonly file: string,
  ) {}

  pos(node: Node | null | undefined, fallback: Pos = { line: 1, col: 1 }): Pos {
    const offset = node?.range?.[0];
    return offset === undefined ? fallback : this.lc.linePos(offset);
  }

  /** Where a value is; for a missing (null) value, where its key is. */
  valuePos(node: Node | null, at: Pos): Pos {
    return this.isNull(node) ? at : this.pos(node, at);
  }

  error(pos: Pos, message: string): void {
    this.errors.push(ScenarioError.at(this.file, pos, message));
  }

  /** The node an alias points to, or the node itself. */
  deref(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null) ?? null;
  }

  isNull(node: Node | null): boolean {
    return node === null || (isScalar(node) && node.type === Scalar.PLAIN && NULL_WORDS.has(String(node.value)));
  }

  /** A string scalar (any style); reports `what` expected otherwise. */
  string(node: Node | null, at: Pos, what: string): string | null {
    if (isScalar(node) && !this.isNull(node)) return String(node.value);
    this.error(this.valuePos(node, at), `expected ${what}, got ${this.describe(node)}`);
    return null;
  }

  /** A plain integer scalar at least `min`. */
  integer(node: Node | null, at: Pos, key: string, min: number, what: string, max: { n: number; why: string } | null = null): number | null {
    const p = this.valuePos(node, at);
    if (isScalar(node) && node.type === Scalar.PLAIN && /^[0-9]+$/.test(String(node.value))) {
      const n = Number(node.value);
      if (max !== null && n > max.n && n >= min) {
        this.error(p, `expected '${key}' to be at most ${max.n} (${max.why}), got ${String(node.value)}`);
        return null;
      }
      if (Number.isSafeInteger(n) && n >= min) return n;
      this.error(p, `expected '${key}' to be ${what}, got ${String(node.value)}`);
      return null;
    }
    this.error(p, `expected '${key}' to be ${what}, got ${this.describe(node)}`);
    return null;
  }

  describe(node: Node | null): string {
    if (this.isNull(node)) return 'nothing';
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) {
      const s = String(node.value);
      return s.length > 40 || s.includes('\n') ? 'a text' : `'${s}'`;
    }
    return 'something else';
  }

  read(): Envelope {
    const env: Envelope = {
      name: null,
      description: null,
      kernel: null,
      kernelPos: null,
      config: { frames: null, pinBias: null },
      outcomes: new Map(),
      steps: null,
    };
    const top = this.deref(this.doc.contents);
    const topPos = this.pos(top);
    if (!isMap(top)) {
      this.error(topPos, `expected a mapping with the keys ${TOP_KEYS.join(', ')} (name and steps required), got ${this.describe(top)}`);
      return env;
    }
    const seen = new Set<string>();
    for (const pair of top.items) {
      const key = this.deref(pair.key);
      const keyPos = this.pos(key, topPos);
      if (!isScalar(key)) {
        this.error(keyPos, `expected a key (one of: ${TOP_KEYS.join(', ')})`);
        continue;
      }
      const k = String(key.value);
      const value = this.deref(pair.value);
      seen.add(k);
      switch (k) {
        case 'name': {
          const name = this.string(value, keyPos, "the scenario's name (lower-case letters, digits and '-', like vmsplice-leak)");
          if (name === null) break;
          if (NAME_PATTERN.test(name)) env.name = name;
          else this.error(this.pos(value, keyPos), `invalid name '${name}': expected lower-case letters, digits and '-' only (like vmsplice-leak)`);
          break;
        }
        case 'description':
          if (this.isNull(value)) break;
          env.description = this.string(value, keyPos, "'description' to be a text");
          break;
        case 'kernel':
          env.kernel = this.string(value, keyPos, 'a kernel profile name (like v6)');
          if (env.kernel === '' || env.kernel?.includes('\n')) {
            // A block (`kernel: |`, or an alias of the steps) is no name: not "unknown profile" quoting every line.
            this.error(this.pos(value, keyPos), `expected a kernel profile name (like v6), got ${env.kernel === '' ? 'an empty text' : 'a text of several lines'}`);
            env.kernel = null;
          }
          if (env.kernel !== null) env.kernelPos = this.pos(value, keyPos);
          break;
        case 'config':
          this.config(value, keyPos, env.config);
          break;
        case 'outcomes':
          this.outcomes(value, keyPos, env.outcomes);
          break;
        case 'steps':
          env.steps = this.steps(value, keyPos);
          break;
        default:
          this.error(keyPos, unknownWord('key', k, TOP_KEYS));
      }
    }
    for (const required of ['name', 'steps']) {
      if (!seen.has(required)) {
        const what = required === 'name' ? "the scenario's name, like 'name: vmsplice-leak'" : "the operations, as a block 'steps: |'";
        this.error(topPos, `missing required key '${required}' (${what})`);
      }
    }
    return env;
  }

  config(node: Node | null, at: Pos, config: ScenarioConfig): void {
    if (this.isNull(node)) return;
    if (!isMap(node)) {
      this.error(this.valuePos(node, at), `expected 'config' to be a mapping (keys: ${CONFIG_KEYS.join(', ')}), got ${this.describe(node)}`);
      return;
    }
    for (const pair of node.items) {
      const key = this.deref(pair.key);
      const keyPos = this.pos(key, at);
      const k = isScalar(key) ? String(key.value) : '';
      const value = this.deref(pair.value);
      if (k === 'frames') config.frames = this.integer(value, keyPos, k, 1, 'a positive integer (physical frames)');
      else if (k === 'pin_bias') config.pinBias = this.integer(value, keyPos, k, 2, 'an integer 2 or more (GUP_PIN_COUNTING_BIAS)', PIN_BIAS_MAX);
      else if (k === 'thp') config.thp = this.thpMode(value, keyPos);
      else if (k === 'hugepages') config.hugepages = this.integer(value, keyPos, k, 0, 'an integer 0 or more (free 2 MiB huge pages in the hugetlb pool)');
      else if (k === 'ksm_use_zero_pages') config.ksmUseZeroPages = this.integer(value, keyPos, k, 0, '0 or 1 (/sys/kernel/mm/ksm/use_zero_pages)', KSM_USE_ZERO_PAGES_MAX);
      else if (k === 'ksm_smart_scan') config.ksmSmartScan = this.integer(value, keyPos, k, 0, '0 or 1 (/sys/kernel/mm/ksm/smart_scan)', KSM_SMART_SCAN_MAX);
      else this.error(keyPos, unknownWord('config key', k, CONFIG_KEYS));
    }
  }

  /** config.thp: one of THP_MODES. */
  thpMode(node: Node | null, at: Pos): ScenarioConfig['thp'] {
    const v = isScalar(node) ? String(node.value) : '';
    if ((THP_MODES as readonly string[]).includes(v)) return v as ScenarioConfig['thp'];
    this.error(this.valuePos(node, at), `expected 'thp' to be one of ${THP_MODES.join(', ')} (the THP mode of /sys/kernel/mm/transparent_hugepage/enabled), got ${this.describe(node)}`);
    return null;
  }

  outcomes(node: Node | null, at: Pos, out: Envelope['outcomes']): void {
    if (this.isNull(node)) return;
    if (!isMap(node)) {
      this.error(this.valuePos(node, at), `expected 'outcomes' to be a mapping from profile name (or "*") to ok, fail, n/a or a list of violation kinds, got ${this.describe(node)}`);
      return;
    }
    for (const pair of node.items) {
      const key = this.deref(pair.key);
      const keyPos = this.pos(key, at);
      const profile = isScalar(key) ? String(key.value) : '';
      if (profile === '') {
        this.error(keyPos, 'expected a profile name (like v6) or "*" as the key of an outcome');
        continue;
      }
      const expected = this.expected(this.deref(pair.value), keyPos);
      if (expected !== null) out.set(profile, { expected, pos: keyPos });
    }
  }

  expected(node: Node | null, at: Pos): Expected | null {
    const p = this.valuePos(node, at);
    const usage = 'expected ok, fail, n/a, or a list of violation kinds like [leak]';
    if (isSeq(node)) {
      if (node.items.length === 0) {
        this.error(p, `empty list of violation kinds: give at least one (${VIOLATION_KINDS.join(', ')}), or write 'ok' for no violation`);
        return null;
      }
      const kinds: ViolationKind[] = [];
      let good = true;
      for (const item of node.items) {
        const it = this.deref(item);
        const ip = this.pos(it, p);
        if (!isScalar(it) || this.isNull(it)) {
          this.error(ip, `expected a violation kind (one of: ${VIOLATION_KINDS.join(', ')}), got ${this.describe(it)}`);
          good = false;
          continue;
        }
        const kind = String(it.value);
        if (!(VIOLATION_KINDS as readonly string[]).includes(kind)) {
          this.error(ip, unknownWord('violation kind', kind, VIOLATION_KINDS));
          good = false;
        } else if (kinds.includes(kind as ViolationKind)) {
          this.error(ip, `duplicate violation kind '${kind}'`);
          good = false;
        } else {
          kinds.push(kind as ViolationKind);
        }
      }
      return good ? { kind: 'violations', kinds } : null;
    }
    if (isScalar(node) && !this.isNull(node)) {
      const word = String(node.value);
      if (word === 'ok' || word === 'fail' || word === 'n/a') return { kind: word };
      if ((VIOLATION_KINDS as readonly string[]).includes(word)) {
        this.error(p, `unknown outcome '${word}': a violation kind goes in a list, like [${word}]`);
      } else {
        this.error(p, `${unknownWord('outcome', word, OUTCOME_WORDS)}; or a list of violation kinds like [leak]`);
      }
      return null;
    }
    this.error(p, `${usage}, got ${this.describe(node)}`);
    return null;
  }

  steps(node: Node | null, at: Pos): StepsSource | null {
    const p = this.valuePos(node, at);
    if (!isScalar(node) || this.isNull(node)) {
      this.error(p, `expected 'steps' to be a block of lines ('steps: |' then one operation a line), got ${this.describe(node)}`);
      return null;
    }
    const text = String(node.value);
    if (node.type === Scalar.PLAIN && CORE_NUMBER_OR_BOOL.test(text)) {
      // `steps: 5` (a count, not the operations): say what steps holds, not that '5' is no process name.
      this.error(p, `expected 'steps' to be a block of lines ('steps: |' then one operation a line), got ${/^[tTfF]/.test(text) ? 'a boolean' : 'a number'}, '${text}'`);
      return null;
    }
    if (node.type === Scalar.BLOCK_FOLDED || (node.type !== Scalar.BLOCK_LITERAL && this.spansLines(node))) {
      // The YAML reader joined the lines into one: the steps would run together as one step.
      const how = node.type === Scalar.BLOCK_FOLDED ? "'steps: >' folds" : node.type === Scalar.PLAIN ? "without '|', YAML folds" : 'in a quoted text, YAML folds';
      this.error(p, `expected 'steps' to be a literal block ('steps: |' then one operation a line): ${how} the lines into one line`);
      return null;
    }
    if (node.type === Scalar.BLOCK_LITERAL) {
      const origin = this.literalOrigin(node, text);
      if (origin !== null) return { text, origin, pos: p };
    }
    if (node.type === Scalar.PLAIN && !text.includes('\n')) {
      return { text, origin: (_line, col) => ({ line: p.line, col: p.col + col }), pos: p };
    }
    return { text, origin: fixedOrigin(p), pos: p };
  }

  /** Whether a scalar's text runs over more than one line of the file. */
  spansLines(node: Scalar): boolean {
    const r = node.range;
    return r !== undefined && r !== null && this.lc.linePos(r[0]).line !== this.lc.linePos(r[1]).line;
  }

  /**
   * Line i of a literal block is the i-th line after its header; its columns are shifted
   * by the block's indentation, found on the first line that is not empty.
   */
  literalOrigin(node: Scalar, text: string): StepOrigin | null {
    const header = this.pos(node);
    const firstLine = header.line + 1;
    const lines = text.split('\n');
    const k = lines.findIndex((l) => l.length > 0);
    if (k < 0) return blockOrigin(firstLine, 0);
    const src = this.sourceLine(firstLine + k);
    const valueLine = lines[k]!;
    const indent = src.length - valueLine.length;
    if (indent < 0 || !src.endsWith(valueLine) || src.slice(0, indent).trim() !== '') return null;
    return blockOrigin(firstLine, indent);
  }

  /** The text of file line `line` (1-based), without its line break. */
  sourceLine(line: number): string {
    const starts = this.lc.lineStarts;
    const from = starts[line - 1];
    if (from === undefined) return '';
    const to = starts[line] ?? this.text.length;
    return this.text.slice(from, to).replace(/\r?\n$/, '');
  }
}

/**
 * A config as scenario-file lines: `config:` and a line for each key set, in CONFIG_KEYS order
 * (none when nothing is set), as the file that set them says them.
 */
export function configLines(config: ScenarioConfig): string[] {
  const lines: string[] = [];
  for (const field of Object.keys(CONFIG_KEY_OF) as (keyof ScenarioConfig)[]) {
    const v = config[field];
    if (v !== null && v !== undefined) lines.push(`  ${CONFIG_KEY_OF[field]}: ${v}`);
  }
  return lines.length > 0 ? ['config:', ...lines] : [];
}

/** Reads the envelope of a parsed YAML document (of `text`, counted by `lc`). */
export function readEnvelope(
  doc: Document,
  text: string,
  lc: LineCounter,
  file: string,
): { envelope: Envelope; errors: ScenarioError[] } {
  const reader = new EnvelopeReader(doc, text, lc, file);
  const envelope = reader.read();
  return { envelope, errors: reader.errors };
}
