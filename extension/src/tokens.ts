/**
 * Tokens and the shapes of data shared by the nbprod plugins. What the kernel sends (MIME
 * types, JSON shapes, versions) is in contract.ts, re-exported here.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { ISignal } from '@lumino/signaling';
import { Token } from '@lumino/coreutils';

import type { CheckStatus, ICheckResult, IPackageBundle, IPackageRefusal, MagicKind } from './contract';

export * from './contract';

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

/**
 * What a badge shows for a cell: a check status, or `idle` (never run / cleared) or
 * `running` (executing now).
 */
export type CellStatus = CheckStatus | 'idle' | 'running';

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
  /** Why the cell's `%nbprod package` wrote nothing, if it did not. */
  refusal: IPackageRefusal | null;
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
