/**
 * The contract with the kernel: the MIME types and JSON shapes nbprod displays, their versions,
 * and pure readers that turn what arrived into typed values or say, in words a user can act on,
 * why they cannot. No JupyterLab imports here, so this is unit-tested as is.
 *
 * The shapes mirror the Python side: nbprod/jupyter/display.py (check), nbprod/jupyter/status.py
 * (status), nbprod/capture/package.py and nbprod/jupyter/frontend.py (package). Every bundle
 * carries `version`.
 */

/** Check results of one `%nbprod check ...` (nbprod.jupyter.display.ResultsView). */
export const CHECK_MIME = 'application/vnd.nbprod.check+json';
/** `%nbprod status`: what is captured and which checks passed (nbprod.jupyter.status.Status). */
export const STATUS_MIME = 'application/vnd.nbprod.status+json';
/** `%nbprod package PATH`: the artifact written, or why none was (nbprod.capture.contract). */
export const PACKAGE_MIME = 'application/vnd.nbprod.package+json';

/** The version of the check and status bundles this extension draws. */
export const BUNDLE_VERSION = 1;
/**
 * The package bundle version this extension asks the kernel for (nbprod.frontend.PACKAGE_VERSION).
 * Version 2 added `outcome` ("packaged", "refused", "error"); version 1 only ever meant
 * "packaged" and is still read, for notebooks saved with its outputs.
 */
export const PACKAGE_VERSION = 2;
const PACKAGE_VERSIONS_READ: ReadonlyArray<number> = [1, 2];

/** The status of one check, as nbprod.core.results.CheckResult has it. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

const CHECK_STATUSES: ReadonlyArray<string> = ['pass', 'warn', 'fail', 'skip'];

export function isCheckStatus(value: unknown): value is CheckStatus {
  return typeof value === 'string' && CHECK_STATUSES.includes(value);
}

/** The `%nbprod` subcommands a cell can hold. */
export type MagicKind = 'init' | 'snapshot' | 'features' | 'model' | 'check' | 'package' | 'status';

export const MAGIC_KINDS: ReadonlyArray<MagicKind> = [
  'init',
  'snapshot',
  'features',
  'model',
  'check',
  'package',
  'status'
];

/** One check result, as carried by the bundles (nbprod.core.results.CheckResult.to_dict). */
export interface ICheckResult {
  name: string;
  kind: string;
  status: CheckStatus;
  message: string;
  value?: unknown;
  threshold?: unknown;
  details?: { [key: string]: unknown };
}

export interface ICheckBundle {
  version: number;
  status: CheckStatus;
  title?: string;
  results: ICheckResult[];
}

export interface IStatusBundle {
  version: number;
  status: CheckStatus;
  name: string | null;
  captures: Array<{ capture: string; state: string; captured?: boolean }>;
  checks: ICheckResult[];
}

/** `%nbprod package` wrote an artifact (nbprod.capture.package.PackageResult.to_json). */
export interface IPackageBundle {
  version: number;
  outcome: 'packaged';
  /** `warn` when packaged past failed checks (`--force`), else `pass`. */
  status: CheckStatus;
  name: string;
  path: string;
  digest: string;
  task?: string;
  model?: string;
  files: number;
  parity_rows: number;
  mlflow: { run_id: string; tracking_uri: string } | null;
  override: { by: string; at: string; checks: string[] } | null;
  checks: ICheckResult[];
  timings?: { [key: string]: number };
  /** Fingerprint of the Ed25519 key that signed the artifact (`--sign`), else null. */
  signed_by?: string | null;
}

/** `%nbprod package` wrote nothing (nbprod.jupyter.frontend.PackageRefusal.to_json). */
export interface IPackageRefusal {
  version: number;
  /** `refused`: nbprod said no (the cell raised UsageError); `error`: an unexpected exception. */
  outcome: 'refused' | 'error';
  status: 'fail';
  /** The PATH asked for. */
  path: string;
  /** The Python exception's class name (ChecksFailedError, PackagingError, UsageError, ...). */
  error: string;
  /** nbprod's own words: what was wrong and how to go on. For people, never parsed. */
  reason: string;
  /** The checks whose failure was the reason (empty for any other reason). */
  failed_checks: ICheckResult[];
}

/** Whatever `%nbprod package` displayed. */
export type PackageReply = IPackageBundle | IPackageRefusal;

/** A bundle read: the typed value, or why it cannot be used, said for the user. */
export type Reading<T> = { ok: true; value: T } | { ok: false; problem: string };

/** JSON bundles arrive parsed or, from some frontends, as a string. */
export function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') {
    return value;
  }
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Why a bundle of `version` cannot be read by this extension, which reads `known`; the fix
 * depends on which side is older.
 */
export function versionProblem(mime: string, version: unknown, known: ReadonlyArray<number>): string {
  const reads = `this extension reads version ${known.join(' or ')}`;
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    return `This ${mime} output has no version number (${shown(version)}); it was not written by nbprod.`;
  }
  if (version > Math.max(...known)) {
    return (
      `This ${mime} output has version ${version}, newer than this extension (${reads}). ` +
      'Upgrade nbprod where JupyterLab runs (pip install -U nbprod) and reload the page.'
    );
  }
  return (
    `This ${mime} output has version ${version}, older than this extension (${reads}). ` +
    "Upgrade nbprod in the kernel's environment, restart the kernel and run the cell again."
  );
}

function shown(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function versioned(mime: string, data: unknown, known: ReadonlyArray<number>): Reading<{ [key: string]: unknown }> {
  if (!isObject(data)) {
    return { ok: false, problem: `This ${mime} output is not a JSON object (${shown(data)}).` };
  }
  if (!known.includes(data.version as number)) {
    return { ok: false, problem: versionProblem(mime, data.version, known) };
  }
  return { ok: true, value: data };
}

/** The fields of `data` that do not have the type `want` ("string", "number", "array", ...). */
function wrongFields(data: { [key: string]: unknown }, want: { [field: string]: string }): string[] {
  return Object.entries(want)
    .filter(([field, type]) => {
      const value = data[field];
      if (type === 'array') {
        return !Array.isArray(value);
      }
      if (type === 'status') {
        return !isCheckStatus(value);
      }
      return typeof value !== type;
    })
    .map(([field, type]) => `${field} (want ${type}, got ${shown(data[field])})`);
}

function malformed(mime: string, what: string, wrong: string[]): Reading<never> {
  return {
    ok: false,
    problem: `This ${mime} output is a malformed ${what}: ${wrong.join('; ')}. Upgrade nbprod and the extension together.`
  };
}

/** One check result from a bundle, or the list of what is wrong with it. */
function wrongCheck(value: unknown, where: string): string[] {
  if (!isObject(value)) {
    return [`${where} is not an object`];
  }
  return wrongFields(value, { name: 'string', status: 'status', message: 'string' }).map(w => `${where}.${w}`);
}

/** Read a `%nbprod package` bundle of any version this extension knows. */
export function readPackageBundle(value: unknown): Reading<PackageReply> {
  const read = versioned(PACKAGE_MIME, parseJson(value), PACKAGE_VERSIONS_READ);
  if (!read.ok) {
    return read;
  }
  const data = read.value;
  const outcome = data.version === 1 ? 'packaged' : data.outcome;
  if (outcome === 'packaged') {
    const wrong = wrongFields(data, { name: 'string', path: 'string', digest: 'string', status: 'status' });
    return wrong.length
      ? malformed(PACKAGE_MIME, 'package result', wrong)
      : { ok: true, value: { ...data, outcome: 'packaged', checks: Array.isArray(data.checks) ? data.checks : [] } as IPackageBundle };
  }
  if (outcome === 'refused' || outcome === 'error') {
    const wrong = wrongFields(data, { reason: 'string', error: 'string', failed_checks: 'array' });
    if (Array.isArray(data.failed_checks)) {
      data.failed_checks.forEach((c, i) => wrong.push(...wrongCheck(c, `failed_checks[${i}]`)));
    }
    return wrong.length
      ? malformed(PACKAGE_MIME, 'refusal', wrong)
      : { ok: true, value: { ...data, outcome, status: 'fail', path: String(data.path ?? '') } as IPackageRefusal };
  }
  return {
    ok: false,
    problem:
      `This ${PACKAGE_MIME} output has an outcome this extension does not know (${shown(outcome)}). ` +
      'Upgrade nbprod where JupyterLab runs (pip install -U nbprod) and reload the page.'
  };
}

/** Read a `%nbprod check` bundle. */
export function readCheckBundle(value: unknown): Reading<ICheckBundle> {
  const read = versioned(CHECK_MIME, parseJson(value), [BUNDLE_VERSION]);
  if (!read.ok) {
    return read;
  }
  const data = read.value;
  const wrong = wrongFields(data, { status: 'status', results: 'array' });
  if (Array.isArray(data.results)) {
    data.results.forEach((c, i) => wrong.push(...wrongCheck(c, `results[${i}]`)));
  }
  return wrong.length ? malformed(CHECK_MIME, 'check result', wrong) : { ok: true, value: data as unknown as ICheckBundle };
}

/** Read a `%nbprod status` bundle. */
export function readStatusBundle(value: unknown): Reading<IStatusBundle> {
  const read = versioned(STATUS_MIME, parseJson(value), [BUNDLE_VERSION]);
  if (!read.ok) {
    return read;
  }
  const data = read.value;
  const wrong = wrongFields(data, { status: 'status', captures: 'array', checks: 'array' });
  if (Array.isArray(data.checks)) {
    data.checks.forEach((c, i) => wrong.push(...wrongCheck(c, `checks[${i}]`)));
  }
  return wrong.length ? malformed(STATUS_MIME, 'status', wrong) : { ok: true, value: data as unknown as IStatusBundle };
}
