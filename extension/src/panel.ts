/**
 * The nbprod side panel: the current notebook's captures and checks (click one to jump to its
 * cell) and a Package action that runs `%nbprod package` in the kernel and shows the result.
 */
import { MimeModel } from '@jupyterlab/rendermime';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { KernelTalkError, PackageRefusedError, runPackage } from './kernel';
import { h, statusPill } from './renderers';
import {
  CellStatus,
  ICheckResult,
  IMagicCell,
  INbprodNotebook,
  INbprodNotebooks,
  IPackageOptions,
  IPackageOutcome
} from './tokens';

/** Defaults of the Package form, from the settings (schema/panel.json). */
export interface IPanelSettings {
  packagePath: string;
  logToMlflow: boolean;
}

export const DEFAULT_SETTINGS: IPanelSettings = { packagePath: 'artifact', logToMlflow: true };

export class NbprodPanel extends Widget {
  constructor(
    notebooks: INbprodNotebooks,
    private readonly _rendermime: IRenderMimeRegistry
  ) {
    super();
    this.id = 'nbprod-panel';
    this.addClass('nbprod-Panel');
    this.title.caption = 'nbprod: captures, checks and packaging';

    this._title = h('div', 'nbprod-Panel-notebook');
    this._captures = h('ul', 'nbprod-Panel-list nbprod-Panel-captures');
    this._checks = h('ul', 'nbprod-Panel-list nbprod-Panel-checks');
    this._path = document.createElement('input');
    this._path.className = 'jp-mod-styled nbprod-Panel-path';
    this._path.type = 'text';
    this._path.name = 'path';
    this._path.value = DEFAULT_SETTINGS.packagePath;
    this._path.setAttribute('aria-label', 'artifact path');
    this._overwrite = checkbox('overwrite', 'replace an existing artifact at the path');
    this._force = checkbox('force', 'package even though checks failed (recorded in the artifact)');
    this._mlflow = checkbox('log to MLflow', 'log the packaging run to MLflow');
    this._mlflow.input.checked = DEFAULT_SETTINGS.logToMlflow;
    this._button = h('button', 'jp-mod-styled jp-mod-accept nbprod-Panel-package', 'Package') as HTMLButtonElement;
    this._button.addEventListener('click', () => void this.package());
    this._result = h('div', 'nbprod-Panel-result');

    const form = h(
      'div',
      'nbprod-Panel-form',
      h('label', 'nbprod-Panel-pathLabel', 'artifact path', this._path),
      this._overwrite.label,
      this._force.label,
      this._mlflow.label,
      this._button
    );
    this.node.append(
      h('div', 'nbprod-Panel-header', h('b', '', 'nbprod'), this._title),
      h('h3', 'nbprod-Panel-heading', 'Captures'),
      this._captures,
      h('h3', 'nbprod-Panel-heading', 'Checks'),
      this._checks,
      h('h3', 'nbprod-Panel-heading', 'Package'),
      form,
      this._result
    );

    notebooks.currentChanged.connect((_, view) => this._follow(view));
    this._follow(notebooks.current);
  }

  /** Apply the user's settings to the form's defaults. */
  configure(settings: IPanelSettings): void {
    this._path.value = settings.packagePath;
    this._mlflow.input.checked = settings.logToMlflow;
  }

  /** The form's options. */
  get options(): IPackageOptions {
    return {
      path: this._path.value,
      overwrite: this._overwrite.input.checked,
      force: this._force.input.checked,
      logToMlflow: this._mlflow.input.checked
    };
  }

  /** Run `%nbprod package` in the current notebook's kernel and show what came back. */
  async package(): Promise<IPackageOutcome | null> {
    const view = this._view;
    if (!view) {
      this._showError('Open a notebook that uses the nbprod magics first.', 'NoNotebook');
      return null;
    }
    this._button.disabled = true;
    this._result.textContent = '';
    this._result.dataset.state = 'running';
    this._result.append(
      h('div', 'nbprod-Panel-running', 'Packaging… (a parity replay runs in a fresh process)')
    );
    try {
      const outcome = await runPackage(view.panel.sessionContext, this.options);
      await this._showOutcome(outcome);
      return outcome;
    } catch (err) {
      if (err instanceof KernelTalkError) {
        this._showError(err.message, err.name, err instanceof PackageRefusedError ? err.checks : []);
        return null;
      }
      this._showError(String(err), 'Error');
      throw err;
    } finally {
      this._button.disabled = false;
    }
  }

  private _follow(view: INbprodNotebook | null): void {
    if (this._view) {
      this._view.changed.disconnect(this._render, this);
    }
    this._view = view;
    if (view) {
      view.changed.connect(this._render, this);
    }
    this._render();
  }

  private _render(): void {
    const view = this._view;
    this._title.textContent = view ? view.panel.context.path : 'no notebook open';
    this._captures.textContent = '';
    this._checks.textContent = '';
    if (!view) {
      this._captures.append(h('li', 'nbprod-Panel-empty', 'Open a notebook to see its captures.'));
      return;
    }
    const cells = view.cells;
    for (const cell of cells) {
      for (const magic of cell.magics.filter(m => m.kind !== 'check')) {
        this._captures.append(this._item(view, cell, magic.kind, magic.label, cell.status, cell.message));
      }
      if (cell.magics.some(m => m.kind === 'check')) {
        if (cell.checks.length) {
          for (const check of cell.checks) {
            this._checks.append(this._item(view, cell, 'check', check.name, check.status, check.message));
          }
        } else {
          for (const magic of cell.magics.filter(m => m.kind === 'check')) {
            this._checks.append(this._item(view, cell, 'check', magic.label, cell.status, cell.message));
          }
        }
      }
    }
    if (!this._captures.childElementCount) {
      this._captures.append(
        h('li', 'nbprod-Panel-empty', 'No captures: %nbprod snapshot, %%nbprod features, %%nbprod model.')
      );
    }
    if (!this._checks.childElementCount) {
      this._checks.append(h('li', 'nbprod-Panel-empty', 'No checks: %nbprod check KIND ...'));
    }
  }

  private _item(
    view: INbprodNotebook,
    cell: IMagicCell,
    kind: string,
    label: string,
    status: CellStatus,
    message: string
  ): HTMLElement {
    const prompt = cell.executionCount === null ? '[ ]' : `[${cell.executionCount}]`;
    const item = h(
      'li',
      'nbprod-Panel-item',
      h('span', 'nbprod-Panel-label', label),
      statusOf(status),
      h('span', 'nbprod-Panel-prompt', prompt)
    );
    item.title = `${kind}: ${message}\nClick to jump to cell ${cell.index + 1}.`;
    item.dataset.cellId = cell.cellId;
    item.dataset.cellIndex = String(cell.index);
    item.dataset.nbprodKind = kind;
    item.dataset.nbprodStatus = status;
    item.tabIndex = 0;
    const jump = (): void => void view.jumpTo(cell.cellId);
    item.addEventListener('click', jump);
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        jump();
      }
    });
    return item;
  }

  private async _showOutcome(outcome: IPackageOutcome): Promise<void> {
    this._result.textContent = '';
    this._result.dataset.state = 'done';
    this._result.dataset.nbprodStatus = outcome.result.status;
    const mimeType = this._rendermime.preferredMimeType(outcome.bundle as never, 'any');
    if (!mimeType) {
      this._result.append(h('pre', '', String(outcome.bundle['text/plain'] ?? '')));
      return;
    }
    this._renderer?.dispose();
    const renderer = (this._renderer = this._rendermime.createRenderer(mimeType));
    await renderer.renderModel(new MimeModel({ data: outcome.bundle as never, trusted: false }));
    this._result.append(h('code', 'nbprod-Panel-code', outcome.code), renderer.node);
  }

  private _showError(message: string, name: string, checks: ReadonlyArray<ICheckResult> = []): void {
    this._result.textContent = '';
    this._result.dataset.state = 'error';
    this._result.dataset.error = name;
    const error = h('div', 'nbprod-Panel-error', h('b', '', 'Not packaged. '), message);
    if (checks.length) {
      const items = checks.map(c => {
        const item = h('li', 'nbprod-Panel-failedCheck', statusPill(c.status), ' ', h('code', '', c.name), ` ${c.message}`);
        item.dataset.check = c.name;
        return item;
      });
      error.append(h('ul', 'nbprod-Panel-failedChecks', ...items));
    }
    this._result.append(error);
  }

  private _view: INbprodNotebook | null = null;
  private _renderer: Widget | null = null;
  private _title: HTMLElement;
  private _captures: HTMLElement;
  private _checks: HTMLElement;
  private _path: HTMLInputElement;
  private _overwrite: ICheckbox;
  private _force: ICheckbox;
  private _mlflow: ICheckbox;
  private _button: HTMLButtonElement;
  private _result: HTMLElement;
}

interface ICheckbox {
  label: HTMLElement;
  input: HTMLInputElement;
}

function checkbox(text: string, title: string): ICheckbox {
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.name = text.replace(/\s+/g, '-');
  const label = h('label', 'nbprod-Panel-option', input, ` ${text}`);
  label.title = title;
  return { label, input };
}

function statusOf(status: CellStatus): HTMLElement {
  if (status === 'idle' || status === 'running') {
    const el = h('span', `nbprod-Status nbprod-Status-${status}`, status === 'idle' ? 'not run' : 'running');
    el.dataset.nbprodStatus = status;
    return el;
  }
  return statusPill(status);
}
