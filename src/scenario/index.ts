// The scenario language: its AST, and the parser that produces it.

export * from './ast.js';
export { ScenarioError, MAX_ERRORS, escapeControls, byPosition, closest, editDistance, unknownWord } from './errors.js';
export { parseScenario, type ParseResult } from './parse.js';
export {
  parseSteps,
  blockOrigin,
  fixedOrigin,
  PROCESS_OPS,
  THREAD_OPS,
  ASYNC_OPS,
  SYSTEM_OPS,
  STAT_NAMES,
  STAT_OPS,
  DEVICE_OPS,
  PROTS,
  ADVICES,
  EXPECTATIONS,
  OPTIONS,
  ATOMIC_OUTCOMES,
  UFFD_ACTIONS,
  MAX_REGION_PAGES,
  type StepOrigin,
  type StepsResult,
} from './steps.js';
export {
  NameEnv,
  StepFail,
  describeKind,
  describeProc,
  type HandleKind,
  type HandleInfo,
  type PendingPath,
  type ProcInfo,
  type RegionInfo,
} from './resolve.js';
export { readEnvelope, configLines, TOP_KEYS, CONFIG_KEYS, OUTCOME_WORDS, NAME_PATTERN, type Envelope, type StepsSource } from './envelope.js';
export { lexLine, LexError, type Token, type TokenKind, type LexedLine } from './lexer.js';
