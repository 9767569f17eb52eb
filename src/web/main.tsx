// The page of `cowlab serve`: pick or edit a scenario, pick one or two kernel profiles, step
// through the run. The model runs here, in the page (the same code as the CLI, bundled by
// esbuild); the server only hands out the page's files and the scenario files.

import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Profile } from '../core/profile.js';
import { loadProfileFile } from '../profiles/file.js';
import { ProfileRegistry } from '../profiles/resolve.js';
import { parseScenario, type Scenario } from '../scenario/index.js';
import { differingSteps, firstDivergence } from './explain.js';
import { type Cursor, clampCursor, formatParams, nextEvent, nextStep, parseParams, prevEvent, prevStep, type ViewParams } from './state.js';
import { traceScenario, type Trace } from './trace.js';
import { Editor, type EditorError, Legend, ProfilePanel, Timeline } from './view.js';

interface ScenarioList {
  root: string;
  files: string[];
}

interface ProfileFiles {
  files: { file: string; text: string }[];
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  return (await r.json()) as T;
}

/** The text of a scenario file; `what` names it in a failure. */
async function getText(url: string, what: string): Promise<string> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${what}: ${r.status === 404 ? 'no such scenario under the served folder' : `${r.status} ${r.statusText}`}`);
  return r.text();
}

function scenarioUrl(file: string): string {
  return '/scenarios/' + file.split('/').map(encodeURIComponent).join('/');
}

function buildRegistry(pf: ProfileFiles | null): { reg: ProfileRegistry; errors: string[] } {
  const reg = new ProfileRegistry();
  const errors: string[] = [];
  for (const f of pf?.files ?? []) {
    const r = loadProfileFile(f.text, f.file, reg);
    for (const e of r.errors) errors.push(`${e.file}:${e.line}:${e.col}: ${e.message}`);
  }
  return { reg, errors };
}

type Parsed = { ok: true; scenario: Scenario } | { ok: false; errors: EditorError[] };

function parse(text: string, file: string): Parsed {
  const r = parseScenario(text, file);
  if (r.ok) return { ok: true, scenario: r.scenario };
  return { ok: false, errors: r.errors.map((e) => ({ line: e.line, col: e.col, message: e.message })) };
}

function App() {
  const initial = useMemo(() => parseParams(location.search), []);
  const [list, setList] = useState<ScenarioList | null>(null);
  const [profileFiles, setProfileFiles] = useState<ProfileFiles | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [file, setFile] = useState<string | null>(initial.text !== null ? null : initial.file);
  const [text, setText] = useState<string>(initial.text ?? '');
  const [edited, setEdited] = useState<boolean>(initial.text !== null);
  const [editing, setEditing] = useState<boolean>(initial.text !== null);
  const [profileA, setProfileA] = useState<string | null>(initial.profile);
  const [profileB, setProfileB] = useState<string | null>(initial.vs);
  const [cursor, setCursor] = useState<Cursor>({ step: initial.step ?? 0, ev: initial.ev });
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    getJson<ScenarioList>('/api/scenarios').then((l) => {
      setList(l);
      if (initial.text === null && initial.file === null && l.files.length > 0) setFile(l.files[0]!);
    }, (e: Error) => setLoadError(e.message));
    getJson<ProfileFiles>('/api/profiles').then(setProfileFiles, () => setProfileFiles({ files: [] }));
  }, []);

  // Load the picked file (unless the text was edited or given in the URL).
  useEffect(() => {
    if (file === null || edited) return;
    let live = true;
    getText(scenarioUrl(file), file).then((t) => {
      if (live) {
        setText(t);
        setLoadError(null);
      }
    }, (e: Error) => live && setLoadError(e.message));
    return () => {
      live = false;
    };
  }, [file, edited]);

  const { reg, errors: profileErrors } = useMemo(() => buildRegistry(profileFiles), [profileFiles]);
  const parsed = useMemo<Parsed | null>(() => (text === '' ? null : parse(text, file ?? 'edited.scn.yaml')), [text, file]);
  const scenario = parsed?.ok ? parsed.scenario : null;

  const nameA = profileA && reg.has(profileA) ? profileA : scenario?.kernel && reg.has(scenario.kernel) ? scenario.kernel : 'v6';
  const nameB = profileB && reg.has(profileB) && profileB !== nameA ? profileB : null;
  const unknownProfiles = [profileA, profileB].filter((p): p is string => !!p && profileFiles !== null && !reg.has(p));

  const traced = useMemo<{ traces: Trace[]; error: string | null }>(() => {
    if (!scenario) return { traces: [], error: null };
    try {
      const ps: Profile[] = [reg.get(nameA), ...(nameB ? [reg.get(nameB)] : [])];
      return { traces: ps.map((p) => traceScenario(scenario, p)), error: null };
    } catch (e) {
      return { traces: [], error: `the model failed on this scenario: ${(e as Error).message}` };
    }
  }, [scenario, reg, nameA, nameB]);
  const traces = traced.traces;
  const cur = traces.length ? clampCursor(traces, cursor) : cursor;

  const differ = useMemo(() => (traces.length === 2 ? differingSteps(traces[0]!, traces[1]!) : new Set<number>()), [traces]);
  const divergence = useMemo(() => (traces.length === 2 ? firstDivergence(traces[0]!, traces[1]!) : null), [traces]);

  // The address bar always holds the view.
  useEffect(() => {
    const p: ViewParams = {
      file: edited ? null : file,
      text: edited ? text : null,
      profile: nameA,
      vs: nameB,
      step: cur.step,
      ev: cur.ev,
    };
    const url = `${location.pathname}${formatParams(p)}`;
    if (url !== `${location.pathname}${location.search}`) history.replaceState(null, '', url);
  }, [file, text, edited, nameA, nameB, cur.step, cur.ev]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const tag = (e.target as HTMLElement | null)?.tagName;
      if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'SELECT' || !traces.length) return;
      let next: Cursor | null = null;
      if (e.key === 'ArrowRight') next = e.shiftKey ? nextEvent(traces, cur) : nextStep(traces, cur);
      else if (e.key === 'ArrowLeft') next = e.shiftKey ? prevEvent(traces, cur) : prevStep(traces, cur);
      else if (e.key === 'Home') next = { step: 0, ev: null };
      else if (e.key === 'End') next = clampCursor(traces, { step: 1e9, ev: null });
      if (next) {
        e.preventDefault();
        setCursor(next);
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [traces, cur]);

  const pickFile = (f: string): void => {
    setEdited(false);
    setFile(f);
    setCursor({ step: 0, ev: null });
  };
  const onEdit = (t: string): void => {
    setText(t);
    setEdited(true);
  };
  const copyLink = (): void => {
    void navigator.clipboard?.writeText(location.href).then(() => {
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    }, () => undefined);
  };

  const groups = new Map<string, string[]>();
  for (const f of list?.files ?? []) {
    const dir = f.includes('/') ? f.slice(0, f.lastIndexOf('/')) : '';
    const g = groups.get(dir) ?? [];
    g.push(f);
    groups.set(dir, g);
  }
  const profileNames = reg.names();
  const steps = traces.length ? Math.max(...traces.map((t) => t.steps.length)) : 0;
  const stepText = traces.length ? traces.reduce((a, b) => (b.steps.length > a.steps.length ? b : a)).steps[cur.step]?.record : undefined;
  const evCount = traces.length ? Math.max(...traces.map((t) => t.steps[cur.step]?.events.length ?? 0)) : 0;

  return (
    <div class="app">
      <header class="top">
        <h1>cowlab <span class="muted">copy-on-write, step by step</span></h1>
        <label>
          scenario{' '}
          <select data-testid="scenario-select" value={edited ? '' : (file ?? '')} onChange={(e) => {
            const v = (e.currentTarget as HTMLSelectElement).value;
            if (v) pickFile(v);
          }}>
            {edited ? <option value="">(edited text)</option> : null}
            {[...groups].map(([dir, fs]) => (
              <optgroup label={dir || (list?.root ?? '.')} key={dir}>
                {fs.map((f) => <option value={f} key={f}>{f.slice(dir ? dir.length + 1 : 0).replace(/\.scn\.yaml$/, '')}</option>)}
              </optgroup>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setEditing(!editing)} aria-pressed={editing} data-testid="edit-toggle">{editing ? 'hide editor' : 'edit / paste'}</button>
        <label>
          profile{' '}
          <select data-testid="profile-a" value={nameA} onChange={(e) => setProfileA((e.currentTarget as HTMLSelectElement).value)}>
            {profileNames.map((n) => <option value={n} key={n}>{n}</option>)}
          </select>
        </label>
        <label>
          beside{' '}
          <select data-testid="profile-b" value={nameB ?? ''} onChange={(e) => setProfileB((e.currentTarget as HTMLSelectElement).value || null)}>
            <option value="">(none)</option>
            {profileNames.filter((n) => n !== nameA).map((n) => <option value={n} key={n}>{n}</option>)}
          </select>
        </label>
        <button type="button" onClick={copyLink} title="the address bar holds this view: scenario, profiles, step and event">{copied ? 'link copied' : 'copy link'}</button>
      </header>

      {loadError && text !== '' ? <div class="error-box" role="alert">{loadError}</div> : null}
      {profileErrors.length ? <div class="error-box" role="alert">profile files: {profileErrors.join('; ')}</div> : null}
      {unknownProfiles.length ? <div class="error-box" role="alert">unknown profile {unknownProfiles.join(', ')} (known: {profileNames.join(', ')}); showing {nameA}</div> : null}
      {traced.error ? <div class="error-box" role="alert">{traced.error}</div> : null}

      <div class="body">
        <aside class="side">
          {scenario ? (
            <div class="about">
              <h2 data-testid="scenario-name">{scenario.name}</h2>
              {scenario.description ? <p class="desc">{scenario.description}</p> : null}
            </div>
          ) : null}
          {editing || (parsed && !parsed.ok) ? (
            <Editor text={text} errors={parsed && !parsed.ok ? parsed.errors : []} onText={onEdit} />
          ) : null}
          {traces.length && scenario ? <Timeline traces={traces} lines={scenario.steps.map((st) => ({ text: st.text, line: st.pos.line }))} cursor={cur} differ={differ} onCursor={setCursor} /> : null}
        </aside>

        <main class="main">
          {traces.length ? (
            <>
              <nav class="controls" aria-label="stepping">
                <button type="button" onClick={() => setCursor({ step: 0, ev: null })} title="first step (Home)">|◀</button>
                <button type="button" onClick={() => setCursor(prevStep(traces, cur))} data-testid="prev-step" title="previous step (←)">◀ step</button>
                <button type="button" onClick={() => setCursor(nextStep(traces, cur))} data-testid="next-step" title="next step (→)">step ▶</button>
                <button type="button" onClick={() => setCursor(clampCursor(traces, { step: 1e9, ev: null }))} title="last step (End)">▶|</button>
                <span class="sep" />
                <button type="button" onClick={() => setCursor(prevEvent(traces, cur))} data-testid="prev-event" title="previous kernel event (Shift+←)">◀ event</button>
                <button type="button" onClick={() => setCursor(nextEvent(traces, cur))} data-testid="next-event" title="next kernel event (Shift+→)">event ▶</button>
                <span class="where" data-testid="position">
                  step <b>{cur.step + 1}</b> of {steps}
                  {cur.ev !== null ? <>, event <b>{cur.ev + 1}</b> of {evCount}</> : evCount ? `, after its ${evCount} event${evCount === 1 ? '' : 's'}` : ''}
                  {stepText ? <> · {stepText.line > 0 ? `line ${stepText.line}: ` : ''}<code>{stepText.text}</code></> : null}
                </span>
              </nav>
              {divergence ? (
                <div class="divergence" data-testid="divergence">
                  <b>Where they part ways:</b> step {divergence.step + 1} ({traces[0]!.steps[divergence.step]?.record.text ?? traces[1]!.steps[divergence.step]?.record.text}).
                  <div><b>{traces[0]!.profile.name}:</b> {divergence.a}</div>
                  <div><b>{traces[1]!.profile.name}:</b> {divergence.b}</div>
                  {cur.step !== divergence.step ? <button type="button" class="link" data-testid="go-to-divergence" onClick={() => setCursor({ step: divergence.step, ev: null })}>go to step {divergence.step + 1}</button> : null}
                </div>
              ) : traces.length === 2 ? <div class="divergence same">{traces[0]!.profile.name} and {traces[1]!.profile.name} behave the same on every step of this scenario.</div> : null}
              <div class={`panels n${traces.length}`}>
                {traces.map((t) => <ProfilePanel trace={t} cursor={cur} onCursor={setCursor} key={t.profile.name} />)}
              </div>
            </>
          ) : parsed && !parsed.ok ? (
            <div class="hint">The scenario does not parse yet: fix the errors listed on the left (line:column).</div>
          ) : loadError !== null && text === '' ? (
            <div class="hint failed" role="alert" data-testid="load-failed">
              <b>Nothing to show: {loadError}.</b> Pick a scenario from the list at the top{list && list.files.length > 0 ? ` (${list.files.length} under ${list.root})` : ''}, or paste one with “edit / paste”.
            </div>
          ) : (
            <div class="hint" data-testid="loading">{list && list.files.length === 0 ? `No *.scn.yaml file under ${list.root}: paste one with “edit / paste”.` : 'Loading…'}</div>
          )}
          <Legend />
        </main>
      </div>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
