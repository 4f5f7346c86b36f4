/**
 * Tokens, MIME types and the shapes of data shared by the nbprod plugins.
 *
 * The JSON shapes mirror what the Python side emits (nbprod/display.py, nbprod/status.py,
 * nbprod/package.py); each bundle carries `version` so a renderer can refuse what it does not
 * know instead of drawing it wrong.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal } from '@lumino/signaling';
import { Token } from '@lumino/coreutils';

/** Check results of one `%nbprod check ...` (nbprod.display.ResultsView). */
export const CHECK_MIME = 'application/vnd.nbprod.check+json';
/** `%nbprod status`: what is captured and which checks passed (nbprod.status.Status). */
export const STATUS_MIME = 'application/vnd.nbprod.status+json';
/** `%nbprod package PATH`: the artifact written (nbprod.package.PackageResult). */
export const PACKAGE_MIME = 'application/vnd.nbprod.package+json';

/** The bundle versions this extension knows how to draw. */
export const BUNDLE_VERSION = 1;

export const PLUGIN_IDS = {
  notebooks: 'nbprod:notebooks',
  badges: 'nbprod:badges',
  panel: 'nbprod:panel',
  renderers: 'nbprod:renderers'
} as const;

export const COMMAND_IDS = {
  openPanel: 'nbprod:open-panel',
  package: 'nbprod:package'
} as const;

/** The status of one check, as nbprod.results.CheckResult has it. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/**
 * What a badge shows for a cell: a check status, or `idle` (never run / cleared) or
 * `running` (executing now).
 */
export type CellStatus = CheckStatus | 'idle' | 'running';

/** The `%nbprod` subcommands a cell can hold. */
export type MagicKind =
  | 'init'
  | 'snapshot'
  | 'features'
  | 'model'
  | 'check'
  | 'package'
  | 'status';

export const MAGIC_KINDS: ReadonlyArray<MagicKind> = [
  'init',
  'snapshot',
  'features',
  'model',
  'check',
  'package',
  'status'
];

/** One `%nbprod ...` line (or the `%%nbprod ...` first line) of a cell. */
export interface IMagicLine {
  kind: MagicKind;
  /** For a check, which one (overfit, metric, ...); else null. */
  sub: string | null;
  /** The arguments after the subcommand, as typed. */
  args: string;
  /** A short human label: "train snapshot of df", "check overfit", "package artifact". */
  label: string;
  /** The whole magic line, trimmed. */
  source: string;
}

/** One check result, as carried by the check bundle (nbprod.results.CheckResult.to_dict). */
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

export interface IPackageBundle {
  version: number;
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
}

/** What the extension knows of one cell that holds nbprod magics. */
export interface IMagicCell {
  /** The cell model's id: stable while the notebook is open. */
  cellId: string;
  /** Position in the notebook at the time of the scan. */
  index: number;
  /** The execution count shown in the prompt, when run. */
  executionCount: number | null;
  magics: IMagicLine[];
  /** The cell's last status, read from its outputs. */
  status: CellStatus;
  /** One line saying why: the error, the worst check's message, or what was captured. */
  message: string;
  /** The check results displayed by the cell, if any. */
  checks: ICheckResult[];
  /** The package bundle displayed by the cell, if any. */
  packaged: IPackageBundle | null;
}

/** The nbprod view of one open notebook, kept current as cells change and run. */
export interface INbprodNotebook {
  readonly panel: NotebookPanel;
  /** The cells holding nbprod magics, in notebook order. */
  readonly cells: ReadonlyArray<IMagicCell>;
  /** Emitted (debounced) after the cells were scanned again. */
  readonly changed: ISignal<INbprodNotebook, ReadonlyArray<IMagicCell>>;
  /** Select the cell, scroll it into view and flash it; false if it is gone. */
  jumpTo(cellId: string): Promise<boolean>;
}

/** Provides the nbprod view of each open notebook. */
export interface INbprodNotebooks {
  /** The view of a notebook panel (made on first request, disposed with the panel). */
  get(panel: NotebookPanel): INbprodNotebook;
  /** The view of the current notebook, if any. */
  readonly current: INbprodNotebook | null;
  /** Emitted when the current notebook changes (null when none is current). */
  readonly currentChanged: ISignal<INbprodNotebooks, INbprodNotebook | null>;
  /** Emitted when a view is made for a newly opened notebook. */
  readonly added: ISignal<INbprodNotebooks, INbprodNotebook>;
}

export const INbprodNotebooks = new Token<INbprodNotebooks>(
  'nbprod:INbprodNotebooks',
  'The nbprod view of open notebooks: which cells hold magics and their last status.'
);

/** Options of `%nbprod package` as the panel collects them. */
export interface IPackageOptions {
  path: string;
  force: boolean;
  overwrite: boolean;
  logToMlflow: boolean;
}

/** What running `%nbprod package` in the kernel gave back. */
export interface IPackageOutcome {
  /** The code that ran in the kernel. */
  code: string;
  /** The parsed package bundle. */
  result: IPackageBundle;
  /** The whole display bundle (JSON, HTML, text), for rendering with rendermime. */
  bundle: { [mime: string]: unknown };
  /** What the kernel printed while packaging. */
  stdout: string;
}
