// A live-kernel session: the compiled helper's agent, what the machine offers, and a clean
// slate between scenarios (every process killed and reaped, every ring and pipe released).
// The swap file (set up at the first swapout) lasts the session; close() removes it. khugepaged
// is held asleep from open() to close() (thp.ts: pauseKhugepaged; the agent puts it back).

import { release } from 'node:os';
import type { Scenario } from '../scenario/index.js';
import { Agent, type AgentOptions, OracleError } from './agent.js';
import { type BuildOptions, ensureHelper } from './build.js';
import { type Facilities, parseProbe } from './facilities.js';
import { assumeFacts } from './probed.js';
import { errnoName } from './names.js';
import { Replay } from './replay.js';
import { SystemOps } from './system.js';
import { pauseKhugepaged } from './thp.js';
import type { KernelRun, ModelSide } from './types.js';

export class OracleSession {
  private agent: Agent;
  /** The agent died; a new one is started when one is next needed (not at all if the session ends first). */
  private agentDead = false;
  /** Swap and KSM, changed on the machine for the session and put back. */
  readonly system: SystemOps;

  private constructor(
    private readonly binary: string,
    private readonly agentOpts: AgentOptions,
    agent: Agent,
    readonly facilities: Facilities,
  ) {
    this.agent = agent;
    this.system = new SystemOps(() => this.live(), facilities);
  }

  /** Builds the helper if needed and starts its agent (throws OracleUnavailable where it cannot run). */
  static open(opts: BuildOptions = {}, agentOpts: AgentOptions = {}): OracleSession {
    const binary = ensureHelper(opts);
    const agent = Agent.start(binary, agentOpts);
    try {
      const r = agent.call('probe');
      if (r[0] !== 'ok') throw new OracleError(`the helper's probe failed: ${r.join(' ')}`);
      const root = typeof process.getuid === 'function' && process.getuid() === 0;
      const facilities = parseProbe(r.slice(1), release(), root, errnoName);
      // COWLAB_ORACLE_ZERO_PAGE=yes|no: take that answer instead of the probe's (to run the live
      // tests as the other kind of machine would compare; `oracle --zero-page` on the command line).
      const forced = process.env.COWLAB_ORACLE_ZERO_PAGE;
      if (forced === 'yes' || forced === 'no') assumeFacts(facilities, { zeroPage: forced === 'yes' });
      pauseKhugepaged(agent, facilities);
      return new OracleSession(binary, agentOpts, agent, facilities);
    } catch (e) {
      agent.quit();
      throw e;
    }
  }

  /** Replays steps [0, count) of a scenario; afterwards nothing of it is left. */
  replay(sc: Scenario, count: number, model?: ModelSide): KernelRun {
    const run = this.replayer(sc, model).run(count);
    const leftover = this.cleanSlate();
    if (leftover !== null && run.error === null) run.error = leftover;
    return run;
  }

  /** A replay to drive step by step (`run(count, from)`); `cleanSlate()` ends it. */
  replayer(sc: Scenario, model?: ModelSide): Replay {
    return new Replay(this.live(), this.facilities, sc, this.system, model);
  }

  /** Resets the agent and checks it holds nothing; if it died, a new one is started when next needed. Returns a problem, or null. */
  cleanSlate(): string | null {
    try {
      const agent = this.live();
      agent.call('reset');
      const c = agent.call('census');
      if (c[0] === 'ok' && c[1] === 'procs=0' && c[2] === 'handles=0') return null;
      return `the helper still holds something after the scenario: ${c.join(' ')}`;
    } catch (e) {
      if (!(e instanceof OracleError)) throw e;
      this.agent.close();
      this.agentDead = true;
      this.system.agentRestarted();
      return `the helper died (${e.message}); a new one takes over`;
    }
  }

  /** The agent, started anew if the last one died. */
  private live(): Agent {
    if (this.agentDead) {
      this.agent = Agent.start(this.binary, this.agentOpts);
      this.agentDead = false;
      pauseKhugepaged(this.agent, this.facilities); // the dead one's pause was put back by reclaim
    }
    return this.agent;
  }

  /** The agent's process id (tests check it is gone after close). */
  get agentPid(): number {
    return this.agent.pid;
  }

  /** Counts of live scenario processes and handles held (tests). */
  census(): { procs: number; handles: number } {
    const c = this.live().call('census');
    return { procs: Number(c[1]?.split('=')[1]), handles: Number(c[2]?.split('=')[1]) };
  }

  /** A problem putting the machine back at close() (the helper also says it on stderr), or null. */
  closeProblem: string | null = null;

  /** Ends the session: the swap file is switched off and deleted, the agent quits. */
  close(): void {
    if (this.agentDead) return; // gone, and what it left is reclaimed
    try {
      this.closeProblem = this.system.swapOff();
    } catch (e) {
      if (!(e instanceof OracleError)) throw e;
      // the agent is gone: it removed its swap file when its input closed
    }
    this.agent.quit();
  }
}
