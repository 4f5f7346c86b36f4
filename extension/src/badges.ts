/**
 * Badges on cells that hold nbprod magics: the kind (snapshot, features, model, check,
 * package, ...) and the last status (pass / warn / fail, or not run), in a slim row under the
 * input, where the cell toolbar of the active cell does not cover it.
 */
import type { Cell } from '@jupyterlab/cells';
import type { PanelLayout } from '@lumino/widgets';
import { Widget } from '@lumino/widgets';

import type { NbprodNotebook } from './scanner';
import { CellStatus, IMagicCell } from './tokens';

const STATUS_TEXT: { [status in CellStatus]: string } = {
  pass: 'PASS',
  warn: 'WARN',
  fail: 'FAIL',
  skip: 'SKIP',
  idle: 'not run',
  running: 'running'
};

/** The badge of one cell. Its node carries `data-nbprod-kind` and `data-nbprod-status`. */
export class CellBadge extends Widget {
  constructor() {
    super({ node: document.createElement('div') });
    this.addClass('nbprod-CellBadge');
    this._kind = document.createElement('span');
    this._kind.className = 'nbprod-CellBadge-kind';
    this._status = document.createElement('span');
    this._status.className = 'nbprod-CellBadge-status';
    this.node.append(this._kind, this._status);
  }

  render(entry: IMagicCell): void {
    const kinds = [...new Set(entry.magics.map(m => m.kind))];
    const words = [...new Set(entry.magics.map(m => (m.sub ? `${m.kind} ${m.sub}` : m.kind)))];
    const many = entry.magics.length > 1 ? ` ×${entry.magics.length}` : '';
    this._kind.textContent = `nbprod ${words.join(' + ')}${many}`;
    this._status.textContent = STATUS_TEXT[entry.status];
    this.node.dataset.nbprodKind = kinds.join(' ');
    this.node.dataset.nbprodStatus = entry.status;
    this.node.title = [
      ...entry.magics.map(m => m.label),
      entry.message ? `${STATUS_TEXT[entry.status]}: ${entry.message}` : ''
    ]
      .filter(Boolean)
      .join('\n');
  }

  private _kind: HTMLSpanElement;
  private _status: HTMLSpanElement;
}

/** Keeps one badge on every magic cell of a notebook, in step with its scans. */
export class BadgeManager {
  constructor(private readonly _view: NbprodNotebook) {
    _view.changed.connect(this._update, this);
    this._update();
    _view.panel.disposed.connect(() => this._badges.clear());
  }

  private _update(): void {
    const wanted = new Map(this._view.cells.map(e => [e.cellId, e]));
    for (const [cellId, badge] of this._badges) {
      if (!wanted.has(cellId) || !this._view.cellWidget(cellId)) {
        badge.dispose();
        this._badges.delete(cellId);
      }
    }
    for (const entry of wanted.values()) {
      const cell = this._view.cellWidget(entry.cellId);
      if (!cell) {
        continue;
      }
      let badge = this._badges.get(entry.cellId);
      if (!badge) {
        const made = new CellBadge();
        badge = made;
        this._badges.set(entry.cellId, made);
        void cell.ready.then(() => attach(cell, made));
      }
      badge.render(entry);
      cell.toggleClass('nbprod-mod-magic', true);
    }
    for (const cell of this._view.panel.content.widgets) {
      if (!wanted.has(cell.model.id)) {
        cell.toggleClass('nbprod-mod-magic', false);
      }
    }
  }

  private _badges = new Map<string, CellBadge>();
}

/** Put the badge right under the cell's input, above its outputs. */
function attach(cell: Cell, badge: CellBadge): void {
  if (badge.isDisposed || cell.isDisposed || !cell.inputArea) {
    return;
  }
  const layout = cell.layout as PanelLayout;
  const input = cell.inputArea.parent;
  const at = input ? layout.widgets.indexOf(input) : -1;
  if (at < 0) {
    (cell.inputArea.layout as PanelLayout).addWidget(badge); // unknown layout: beside the input
    return;
  }
  layout.insertWidget(at + 1, badge);
}
