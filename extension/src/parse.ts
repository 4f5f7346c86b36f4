/**
 * Pure functions that read a cell: which nbprod magics it holds and, from its outputs, how
 * the last run went. No widgets here, so the rules are easy to follow and to test.
 */
import type * as nbformat from '@jupyterlab/nbformat';

import {
  CHECK_MIME,
  CheckStatus,
  ICheckResult,
  IPackageBundle,
  IPackageRefusal,
  MAGIC_KINDS,
  MagicKind,
  PACKAGE_MIME,
  STATUS_MIME,
  readCheckBundle,
  readPackageBundle,
  readStatusBundle
} from './contract';
import type { CellStatus, IMagicLine } from './tokens';

const CELL_MAGIC = /^\s*%%nbprod\s+(\S+)\s*(.*)$/;
const LINE_MAGIC = /^\s*%nbprod\s+(\S+)\s*(.*)$/;
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const ORDER: { [status in CheckStatus]: number } = {
  skip: 0,
  pass: 1,
  warn: 2,
  fail: 3
};

/** The most severe of `statuses` (`skip` when there are none), as nbprod.core.results.worst. */
export function worst(statuses: Iterable<CheckStatus>): CheckStatus {
  let out: CheckStatus = 'skip';
  for (const s of statuses) {
    if (ORDER[s] > ORDER[out]) {
      out = s;
    }
  }
  return out;
}

/** Split a magic's arguments like a shell would (quotes group, backslash escapes). */
export function tokenize(args: string): string[] {
  const out: string[] = [];
  const re = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(args)) !== null) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  }
  return out;
}

function flag(tokens: string[], name: string): string | undefined {
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === name) {
      return tokens[i + 1];
    }
    if (tokens[i].startsWith(`${name}=`)) {
      return tokens[i].slice(name.length + 1);
    }
  }
  return undefined;
}

/**
 * The `%nbprod` flags that take no value (switches), of every subcommand. Any other flag takes
 * the next token as its value. Kept equal to the magics' parser by the fixture `flags.json`
 * (tests/test_extension_contract.py checks it against the Python side).
 */
export const SWITCHES: ReadonlyArray<string> = [
  '--force',
  '--no-mlflow',
  '--no-progress',
  '--overwrite',
  '--progress',
  '--register',
  '--static',
  '--widgets'
];

function positional(tokens: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.startsWith('--')) {
      if (!SWITCHES.includes(t) && !t.includes('=')) {
        i++; // skip the flag's value
      }
      continue;
    }
    out.push(t);
  }
  return out;
}

/** A short label for a magic line, as the panel lists it. */
export function describe(kind: MagicKind, args: string): string {
  const tokens = tokenize(args);
  const pos = positional(tokens);
  switch (kind) {
    case 'init':
      return pos[0] ? `model name ${pos[0]}` : 'model name';
    case 'snapshot': {
      const role = flag(tokens, '--role') ?? '?';
      return pos[0] ? `${role} snapshot of ${pos[0]}` : `${role} snapshot`;
    }
    case 'features': {
      const fn = flag(tokens, '--fn');
      return fn ? `features ${fn}()` : 'features';
    }
    case 'model': {
      const name = flag(tokens, '--var');
      return name ? `model ${name}` : 'model';
    }
    case 'check': {
      const what = pos[0] ?? '?';
      const metric = pos[1] ?? flag(tokens, '--metric');
      return metric ? `check ${what} (${metric})` : `check ${what}`;
    }
    case 'package':
      return pos[0] ? `package to ${pos[0]}` : 'package';
    case 'status':
      return 'status';
  }
}

function asKind(word: string): MagicKind | null {
  return (MAGIC_KINDS as ReadonlyArray<string>).includes(word)
    ? (word as MagicKind)
    : null;
}

/**
 * The nbprod magics in a code cell's source: the `%%nbprod` first line of a cell magic, or
 * every `%nbprod ...` line. `%nbprod --help` and unknown subcommands are not magics to badge.
 */
export function parseMagics(source: string): IMagicLine[] {
  const lines = source.split('\n');
  const first = lines.find(l => l.trim() !== '');
  const cell = first === undefined ? null : CELL_MAGIC.exec(first);
  if (cell) {
    const kind = asKind(cell[1]);
    return kind ? [magicLine(kind, cell[2], first!)] : [];
  }
  const out: IMagicLine[] = [];
  for (const line of lines) {
    const m = LINE_MAGIC.exec(line);
    const kind = m ? asKind(m[1]) : null;
    if (m && kind) {
      out.push(magicLine(kind, m[2], line));
    }
  }
  return out;
}

function magicLine(kind: MagicKind, args: string, line: string): IMagicLine {
  const sub = kind === 'check' ? (positional(tokenize(args))[0] ?? null) : null;
  return { kind, sub, args, label: describe(kind, args), source: line.trim() };
}

/** How a cell's last run went, read from its outputs. */
export interface IOutputReading {
  status: CellStatus;
  message: string;
  checks: ICheckResult[];
  packaged: IPackageBundle | null;
  refusal: IPackageRefusal | null;
}

function text(value: nbformat.MultilineString | undefined): string {
  if (value === undefined) {
    return '';
  }
  return (Array.isArray(value) ? value.join('') : value).replace(ANSI, '');
}

function dataOf(output: nbformat.IOutput, mime: string): unknown {
  const data = (output as nbformat.IDisplayData).data;
  return data && mime in data ? data[mime] : undefined;
}

/** The first line of a text, for a one-line message. */
function firstLine(value: string): string {
  return value.trim().split('\n')[0];
}

/**
 * The status of a cell from its outputs. nbprod bundles carry their own status; a package
 * refusal (which the magic displays before raising) is a fail that says why. Any other error
 * (or IPython's one-line `UsageError:` on stderr, which is how a refused magic shows) is a fail
 * too; any other output of a run cell is a pass. A cell never run is `idle`. Bundles this
 * extension cannot read (another version) give no status of their own.
 */
export function readOutputs(
  outputs: ReadonlyArray<nbformat.IOutput>,
  executionCount: number | null,
  running = false
): IOutputReading {
  const reading: IOutputReading = {
    status: 'idle',
    message: '',
    checks: [],
    packaged: null,
    refusal: null
  };
  if (running) {
    return { ...reading, status: 'running', message: 'running…' };
  }
  const statuses: CheckStatus[] = [];
  let said = '';
  for (const output of outputs) {
    if (output.output_type === 'error') {
      const err = output as nbformat.IError;
      return failed(reading, `${err.ename}: ${text(err.evalue)}`);
    }
    if (output.output_type === 'stream') {
      const stream = output as nbformat.IStream;
      const body = text(stream.text);
      const usage = /^UsageError: (.*)$/m.exec(body);
      if (stream.name === 'stderr' && usage) {
        return failed(reading, usage[1].trim());
      }
      const lines = body.split('\n').filter(l => l.startsWith('nbprod: '));
      if (lines.length) {
        said = lines[lines.length - 1].slice('nbprod: '.length);
      }
      continue;
    }
    const check = readCheckBundle(dataOf(output, CHECK_MIME));
    if (check.ok) {
      reading.checks.push(...check.value.results);
      statuses.push(check.value.status);
    }
    const pkg = readPackageBundle(dataOf(output, PACKAGE_MIME));
    if (pkg.ok) {
      const reply = pkg.value;
      if (reply.outcome === 'packaged') {
        reading.packaged = reply;
      } else {
        reading.refusal = reply;
      }
      statuses.push(reply.status);
    }
    const status = readStatusBundle(dataOf(output, STATUS_MIME));
    if (status.ok) {
      statuses.push(status.value.status);
      said = said || `status of ${status.value.name ?? 'the captures'}`;
    }
  }
  if (statuses.length) {
    reading.status = worst(statuses);
    reading.message = summarize(reading, said);
    return reading;
  }
  if (outputs.length || executionCount !== null) {
    return { ...reading, status: 'pass', message: said || 'ran' };
  }
  return { ...reading, message: 'not run yet' };
}

/** A failed cell: nbprod's refusal says why when there is one, else the error's line. */
function failed(reading: IOutputReading, error: string): IOutputReading {
  const message = reading.refusal ? summarize(reading) : error;
  return { ...reading, status: 'fail', message };
}

function summarize(reading: IOutputReading, said = ''): string {
  if (reading.refusal) {
    return `not packaged: ${firstLine(reading.refusal.reason)}`;
  }
  if (reading.packaged) {
    const p = reading.packaged;
    const forced = p.override ? ` (forced past ${p.override.checks.join(', ')})` : '';
    return `packaged ${p.name} at ${p.path}${forced}`;
  }
  const bad = reading.checks.filter(c => c.status === reading.status);
  const first = bad[0] ?? reading.checks[0];
  return first ? first.message : said || reading.status;
}

/** A value as the Python side's HTML shows it: 4 significant digits, dicts as "k v" pairs. */
/**
 * A number as nbprod.core.results.number shows it, so a value reads the same in the extension,
 * the CLI, the report and the widgets: a whole number with thousands separators (`10,790`),
 * from 1,000 up rounded to a whole number (`1,597`), below that 4 significant digits as
 * Python's `%.4g` writes them (`0.9923`, `1e-12`); `nan`, `inf`, `-inf`.
 */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) {
    return 'nan';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? 'inf' : '-inf';
  }
  if ((Number.isInteger(value) && Math.abs(value) < 1e15) || Math.abs(value) >= 1000) {
    return wholeNumber(value);
  }
  // %.4g: the exponent after rounding to 4 significant digits picks fixed or exponent notation
  const [mantissa, exp] = value.toExponential(3).split('e');
  const exponent = Number(exp);
  if (exponent >= 3) {
    return wholeNumber(Number(value.toExponential(3))); // 999.96 is 1,000
  }
  if (exponent >= -4) {
    return stripZeros(value.toFixed(3 - exponent));
  }
  const digits = String(Math.abs(exponent)).padStart(2, '0');
  return `${stripZeros(mantissa)}e${exponent < 0 ? '-' : '+'}${digits}`;
}

function wholeNumber(value: number): string {
  let whole = Math.round(value); // ties to even, as Python's format does
  if (Math.abs(value % 1) === 0.5 && whole % 2 !== 0) {
    whole -= 1;
  }
  const grouped = BigInt(Math.abs(whole))
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return whole < 0 ? `-${grouped}` : grouped;
}

function stripZeros(fixed: string): string {
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  if (Array.isArray(value)) {
    return value.map(formatValue).join(', ');
  }
  if (typeof value === 'object') {
    return Object.entries(value as { [key: string]: unknown })
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${formatValue(v)}`)
      .join(', ');
  }
  return String(value);
}
