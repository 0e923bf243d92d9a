/**
 * Turns the runs of a benchmark into medians, a text table, a JSON file and
 * an SVG bar chart of the ratios native/js and native/reference.
 */
import { REFERENCE, type Figure, type LoadgenReport, type RedisWindow, type ScenarioName, type ScenarioPlan, type ServerSamples } from './scenarios';

export interface RunRecord {
  scenario: ScenarioName;
  backend: string;
  round: number;
  ok: boolean;
  /** Wall time of the whole run, server start and stop included. */
  elapsedMs: number;
  error?: string;
  figures: Record<string, number | null>;
  loadgen?: LoadgenReport;
  server?: { command: string[]; samples: ServerSamples };
  /** The cluster scenarios: what their redis-server did in the measured window. */
  redis?: RedisWindow;
  /**
   * CPU used during the measured window by processes other than the server
   * and the load generator (100 = one core): how noisy the machine was.
   */
  othersCpuPct: number | null;
  /** The machine's 1-minute load average at the end of the measured window. */
  loadAvg1?: number;
  /** The server ran with its metrics port on and polled (bench --metrics-port or --metrics-paired). */
  metrics?: boolean;
  warnings: string[];
}

/** One round of --metrics-paired: the same scenario and backend with metrics off and on, back to back. */
export interface MetricsPair {
  scenario: ScenarioName;
  backend: string;
  round: number;
  /** Which ran first. */
  first: 'off' | 'on';
  off: Record<string, number | null>;
  on: Record<string, number | null>;
  /** on / off of the throughput (notifies/s), of the server CPU per notify, and of the chat p99. */
  throughputRatio: number | null;
  cpuPerOpRatio: number | null;
  /** on / off of the JS thread's CPU per notify: where the metrics' own work runs. */
  jsCpuPerOpRatio: number | null;
  p99Ratio: number | null;
  /** The larger of the two runs' load averages and other processes' CPU. */
  loadAvg1: number | null;
  othersCpuPct: number | null;
}

/** The target of issue 14: metrics and dashboard on cost at most 3% of the notifies/s. */
export const METRICS_TARGET_RATIO = 0.97;

export interface ScenarioSummary {
  name: ScenarioName;
  description: string;
  figures: Figure[];
  /** backend -> figure key -> median over the successful rounds (null: not measured). */
  medians: Record<string, Record<string, number | null>>;
  /** figure key -> median(native) / median(js). */
  ratios: Record<string, number | null>;
  /** figure key -> median(native) / median(reference): how close native comes to the yardstick. */
  referenceRatios: Record<string, number | null>;
  okRuns: Record<string, number>;
  /** Median CPU of other processes during the windows of this scenario's runs. */
  othersCpuPct: number | null;
  target?: { text: string; met: boolean | undefined };
  referenceTarget?: { text: string; met: boolean | undefined };
}

function ratiosOf(
  figures: Figure[],
  a: Record<string, number | null> | undefined,
  b: Record<string, number | null> | undefined,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const f of figures) {
    const x = a?.[f.key];
    const y = b?.[f.key];
    out[f.key] = typeof x === 'number' && typeof y === 'number' && y !== 0 ? x / y : null;
  }
  return out;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function summarize(plans: ScenarioPlan[], backends: string[], runs: RunRecord[]): ScenarioSummary[] {
  return plans.map((plan) => {
    const medians: Record<string, Record<string, number | null>> = {};
    const okRuns: Record<string, number> = {};
    for (const backend of backends) {
      const mine = runs.filter((r) => r.scenario === plan.name && r.backend === backend && r.ok);
      okRuns[backend] = mine.length;
      medians[backend] = {};
      for (const f of plan.figures) {
        const values = mine.map((r) => r.figures[f.key]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
        medians[backend][f.key] = median(values);
      }
    }
    const native = medians.native;
    const js = medians.js;
    const reference = medians[REFERENCE];
    const noise = runs.filter((r) => r.scenario === plan.name && r.ok && r.othersCpuPct !== null).map((r) => r.othersCpuPct as number);
    const summary: ScenarioSummary = {
      name: plan.name,
      description: plan.description,
      figures: plan.figures,
      medians,
      ratios: ratiosOf(plan.figures, native, js),
      referenceRatios: ratiosOf(plan.figures, native, reference),
      okRuns,
      othersCpuPct: median(noise),
    };
    if (plan.target && native) summary.target = { text: plan.target.text, met: plan.target.check(native, js ?? {}) };
    if (plan.referenceTarget && native && reference) {
      summary.referenceTarget = { text: plan.referenceTarget.text, met: plan.referenceTarget.check(native, reference) };
    }
    return summary;
  });
}

/** The rounds of --metrics-paired whose two runs both succeeded. */
export function metricsPairs(plans: ScenarioPlan[], backends: string[], runs: RunRecord[]): MetricsPair[] {
  const out: MetricsPair[] = [];
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
    typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null;
  const max = (a: number | null | undefined, b: number | null | undefined): number | null =>
    typeof a === 'number' && typeof b === 'number' ? Math.max(a, b) : (a ?? b ?? null);
  for (const plan of plans) {
    if (plan.server !== 'chat') continue;
    for (const backend of backends) {
      const mine = runs.filter((r) => r.scenario === plan.name && r.backend === backend);
      for (const round of [...new Set(mine.map((r) => r.round))]) {
        const off = mine.find((r) => r.round === round && !r.metrics);
        const on = mine.find((r) => r.round === round && r.metrics);
        if (off === undefined || on === undefined || !off.ok || !on.ok) continue;
        out.push({
          scenario: plan.name,
          backend,
          round,
          first: mine.indexOf(off) < mine.indexOf(on) ? 'off' : 'on',
          off: off.figures,
          on: on.figures,
          throughputRatio: ratio(on.figures.throughput, off.figures.throughput),
          cpuPerOpRatio: ratio(on.figures.cpu_us_per_op, off.figures.cpu_us_per_op),
          jsCpuPerOpRatio: ratio(on.figures.js_cpu_us_per_op, off.figures.js_cpu_us_per_op),
          p99Ratio: ratio(on.figures.p99_us, off.figures.p99_us),
          loadAvg1: max(off.loadAvg1, on.loadAvg1),
          othersCpuPct: max(off.othersCpuPct, on.othersCpuPct),
        });
      }
    }
  }
  return out;
}

/** The pairs, round by round, and the medians of their ratios against the 0.97 target. */
export function formatPairs(pairs: MetricsPair[], scrapeS: number): string {
  const lines: string[] = [];
  const groups = new Map<string, MetricsPair[]>();
  for (const p of pairs) groups.set(`${p.scenario} ${p.backend}`, [...(groups.get(`${p.scenario} ${p.backend}`) ?? []), p]);
  const fmtRatio = (r: number | null): string => (r === null ? 'n/a' : r.toFixed(3));
  for (const [name, list] of groups) {
    lines.push(`${name}: metrics on (the dashboard's /stats.json polled once a second, /metrics scraped every ${scrapeS} s) / off, paired rounds`);
    const rows: string[][] = [['  round', 'first', 'off /s', 'on /s', 'on/off', 'CPU/op on/off', 'JS CPU/op on/off', 'p99 on/off', 'load avg', 'others CPU %']];
    for (const p of list) {
      rows.push([
        `  ${p.round}`,
        p.first,
        formatValue(p.off.throughput),
        formatValue(p.on.throughput),
        fmtRatio(p.throughputRatio),
        fmtRatio(p.cpuPerOpRatio),
        fmtRatio(p.jsCpuPerOpRatio),
        fmtRatio(p.p99Ratio),
        p.loadAvg1 === null ? 'n/a' : p.loadAvg1.toFixed(2),
        p.othersCpuPct === null ? 'n/a' : p.othersCpuPct.toFixed(0),
      ]);
    }
    const med = (key: 'throughputRatio' | 'cpuPerOpRatio' | 'jsCpuPerOpRatio' | 'p99Ratio'): number | null =>
      median(list.map((p) => p[key]).filter((x): x is number => x !== null));
    const t = med('throughputRatio');
    rows.push(['  median', '', '', '', fmtRatio(t), fmtRatio(med('cpuPerOpRatio')), fmtRatio(med('jsCpuPerOpRatio')), fmtRatio(med('p99Ratio')), '', '']);
    lines.push(...pad(rows));
    const verdict = t === null ? 'not measured' : t >= METRICS_TARGET_RATIO ? 'met' : 'NOT met';
    lines.push(`  target: metrics on >= ${METRICS_TARGET_RATIO} x off notifies/s (median of ${list.length} paired ratios): ${verdict}`);
    lines.push('');
  }
  return lines.join('\n');
}

export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Whether native is better than the other on this figure, by more than 2%. */
function verdict(f: Figure, ratio: number | null): string {
  if (ratio === null || f.better === 'info') return '';
  if (Math.abs(ratio - 1) <= 0.02) return 'same';
  const nativeBetter = f.better === 'higher' ? ratio > 1 : ratio < 1;
  return nativeBetter ? 'native better' : 'native worse';
}

function pad(cells: string[][]): string[] {
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return cells.map((row) =>
    row
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** The table of medians, one block per scenario. */
export function formatTable(summaries: ScenarioSummary[], backends: string[], rounds: number): string {
  const lines: string[] = [];
  const both = backends.includes('native') && backends.includes('js');
  const withReference = backends.includes('native') && backends.includes(REFERENCE);
  for (const s of summaries) {
    lines.push(`${s.name}: ${s.description}`);
    const runsNote = backends.map((b) => `${b} ${s.okRuns[b]}/${rounds}`).join(', ');
    const header = ['  figure', 'unit', ...backends, ...(both ? ['native/js', ''] : []), ...(withReference ? ['native/reference', ''] : [])];
    const rows: string[][] = [header];
    for (const f of s.figures) {
      const row = [`  ${f.label}`, f.unit, ...backends.map((b) => formatValue(s.medians[b]?.[f.key]))];
      const cells = (r: number | null): string[] => [r === null ? 'n/a' : `${r.toFixed(2)}x`, verdict(f, r)];
      if (both) row.push(...cells(s.ratios[f.key]));
      if (withReference) row.push(...cells(s.referenceRatios[f.key]));
      rows.push(row);
    }
    lines.push(...pad(rows));
    lines.push(`  successful runs: ${runsNote}`);
    if (s.othersCpuPct !== null) {
      const busy = s.othersCpuPct > 20 ? ' (a busy machine: figures are noisy)' : '';
      lines.push(`  other processes during the windows: ${s.othersCpuPct.toFixed(0)}% CPU (median)${busy}`);
    }
    for (const t of [s.target, s.referenceTarget]) {
      if (t === undefined) continue;
      const met = t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met';
      lines.push(`  target: ${t.text}: ${met}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar per figure and comparison: the ratios native/js and
 * native/reference on a log2 axis centred on 1. Green where native is
 * better, red where it is worse.
 */
export function renderSvg(summaries: ScenarioSummary[], title: string): string {
  type Bar = { label: string; ratio: number; good: boolean | undefined };
  const rows: Array<Bar | { heading: string }> = [];
  for (const s of summaries) {
    const pairs: Array<[string, Record<string, number | null>]> = [
      ['/ js', s.ratios],
      ['/ reference', s.referenceRatios],
    ];
    const bars = pairs.flatMap(([versus, ratios]) =>
      s.figures.flatMap((f): Bar[] => {
        const ratio = ratios[f.key];
        if (ratio === null || ratio === undefined) return [];
        if (f.better === 'info') return [{ label: `${f.label}, native ${versus}`, ratio, good: undefined }];
        return [{ label: `${f.label}, native ${versus} (${f.better} is better)`, ratio, good: f.better === 'higher' ? ratio >= 1 : ratio <= 1 }];
      }),
    );
    if (bars.length === 0) continue;
    rows.push({ heading: `${s.name}` }, ...bars);
  }
  // A ratio of 0 (native measured nothing, e.g. CPU at rest) is drawn at the left edge.
  const ratios = rows.flatMap((r) => ('ratio' in r && r.ratio > 0 ? [r.ratio] : []));
  const lo = Math.floor(Math.log2(Math.min(0.25, ...ratios)));
  const hi = Math.ceil(Math.log2(Math.max(4, ...ratios)));
  const labelW = 470;
  const plotW = 520;
  const rowH = 22;
  const top = 58;
  const width = labelW + plotW + 90;
  const height = top + rows.length * rowH + 40;
  const x = (r: number): number => labelW + ((Math.log2(Math.max(r, 2 ** lo)) - lo) / (hi - lo)) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">ratios native / js and native / reference, log scale; green: native better, red: native worse, grey: context</text>`,
  );
  const bottom = top + rows.length * rowH;
  for (let e = lo; e <= hi; e++) {
    const gx = x(2 ** e);
    const label = e >= 0 ? `${2 ** e}x` : `1/${2 ** -e}x`;
    out.push(
      `<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${bottom}" stroke="${e === 0 ? '#000' : '#ddd'}" stroke-width="${e === 0 ? 1.5 : 1}"/>`,
    );
    out.push(`<text x="${gx.toFixed(1)}" y="${bottom + 16}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    if ('heading' in r) {
      out.push(`<text x="8" y="${y + 15}" font-weight="bold">${escapeXml(r.heading)}</text>`);
      return;
    }
    const x0 = x(1);
    const x1 = x(r.ratio);
    const left = Math.min(x0, x1);
    const w = Math.max(1, Math.abs(x1 - x0));
    out.push(`<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${escapeXml(r.label)}</text>`);
    out.push(
      `<rect x="${left.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${r.good === undefined ? '#9e9e9e' : r.good ? '#2e7d32' : '#c62828'}"/>`,
    );
    const tx = Math.max(x0, x1) + 6;
    out.push(`<text x="${tx.toFixed(1)}" y="${y + 15}">${r.ratio.toFixed(2)}x</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
