// The operations the explorer tries from a state: each a packed integer (so a state's path costs
// 4 bytes) that decodes, against the state it applies to, into a scenario Step and its text.
// Each is declared with its operation (the `explore` facet in src/ops); src/ops/explore.ts
// enumerates and decodes them.

export { DEFAULT_OPS, OP_NAMES, PROC_NAMES, decodeOp, enabledOps, enabledOpsInto, opsOnProfile, type ExploreShape } from '../ops/explore.js';
/** `explore --ops uffd`: the userfaultfd write-protect set. */
export { UFFD_EXPLORE_OPS } from '../ops/uffd.js';

/** An explorer operation's name (`explore --ops`). */
export type OpName = string;
