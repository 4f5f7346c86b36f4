/**
 * The nbprod view of open notebooks: which cells hold magics and how they last ran, kept
 * current as cells are added, edited, run and cleared.
 */
import type { Cell, ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { parseMagics, readOutputs } from './parse';
import { IMagicCell, INbprodNotebook, INbprodNotebooks } from './tokens';

/** Wait this long after the last change before scanning again (a run emits many changes). */
const DEBOUNCE_MS = 60;
const FLASH_MS = 1500;

/** One notebook's cells that hold nbprod magics. */
export class NbprodNotebook implements INbprodNotebook {
  constructor(readonly panel: NotebookPanel) {
    const model = panel.content.model;
    panel.content.modelChanged.connect(this._onModelChanged, this);
    if (model) {
      model.cells.changed.connect(this._onCellsChanged, this);
    }
    this._watchCells();
    this._scan();
    panel.disposed.connect(this._dispose, this);
  }

  get cells(): ReadonlyArray<IMagicCell> {
    return this._cells;
  }

  get changed(): ISignal<INbprodNotebook, ReadonlyArray<IMagicCell>> {
    return this._changed;
  }

  /** The cell widget of a cell model id, if it is still in the notebook. */
  cellWidget(cellId: string): Cell | undefined {
    return this.panel.content.widgets.find(c => c.model.id === cellId);
  }

  async jumpTo(cellId: string): Promise<boolean> {
    const notebook = this.panel.content;
    const index = notebook.widgets.findIndex(c => c.model.id === cellId);
    if (index < 0) {
      return false;
    }
    notebook.mode = 'command';
    notebook.activeCellIndex = index;
    notebook.deselectAll();
    await notebook.scrollToItem(index, 'center');
    const cell = notebook.widgets[index];
    cell.addClass('nbprod-mod-flash');
    window.setTimeout(() => cell.removeClass('nbprod-mod-flash'), FLASH_MS);
    notebook.activate();
    return true;
  }

  private _onModelChanged(): void {
    this._watched = new WeakSet<ICellModel>();
    this.panel.content.model?.cells.changed.connect(this._onCellsChanged, this);
    this._watchCells();
    this._schedule();
  }

  private _onCellsChanged(): void {
    this._watchCells();
    this._schedule();
  }

  /** Listen to every cell model once: source edits, outputs, execution state. */
  private _watchCells(): void {
    const model = this.panel.content.model;
    if (!model) {
      return;
    }
    for (const cell of model.cells) {
      if (this._watched.has(cell)) {
        continue;
      }
      this._watched.add(cell);
      cell.contentChanged.connect(this._schedule, this);
      if (cell.type === 'code') {
        const code = cell as ICodeCellModel;
        code.outputs.changed.connect(this._schedule, this);
        code.stateChanged.connect(this._schedule, this);
      }
    }
  }

  private _schedule(): void {
    if (this._timer !== 0) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = 0;
      this._scan();
    }, DEBOUNCE_MS);
  }

  private _scan(): void {
    const model = this.panel.content.model;
    const cells: IMagicCell[] = [];
    if (model) {
      let index = 0;
      for (const cell of model.cells) {
        const entry = cell.type === 'code' ? scanCell(cell as ICodeCellModel, index) : null;
        if (entry) {
          cells.push(entry);
        }
        index++;
      }
    }
    this._cells = cells;
    this._changed.emit(cells);
  }

  private _dispose(): void {
    if (this._timer !== 0) {
      window.clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }

  private _cells: IMagicCell[] = [];
  private _changed = new Signal<INbprodNotebook, ReadonlyArray<IMagicCell>>(this);
  private _watched = new WeakSet<ICellModel>();
  private _timer = 0;
}

function scanCell(cell: ICodeCellModel, index: number): IMagicCell | null {
  const magics = parseMagics(cell.sharedModel.getSource());
  if (!magics.length) {
    return null;
  }
  const reading = readOutputs(
    cell.outputs.toJSON(),
    cell.executionCount,
    cell.executionState === 'running'
  );
  return {
    cellId: cell.id,
    index,
    executionCount: cell.executionCount,
    magics,
    ...reading
  };
}

/** Makes and keeps the view of each open notebook; follows the current one. */
export class NbprodNotebooks implements INbprodNotebooks {
  constructor(private readonly _tracker: INotebookTracker) {
    _tracker.widgetAdded.connect((_, panel) => this.get(panel));
    _tracker.currentChanged.connect((_, panel) => {
      this._currentChanged.emit(panel ? this.get(panel) : null);
    });
    _tracker.forEach(panel => this.get(panel));
  }

  get current(): INbprodNotebook | null {
    const panel = this._tracker.currentWidget;
    return panel ? this.get(panel) : null;
  }

  get currentChanged(): ISignal<INbprodNotebooks, INbprodNotebook | null> {
    return this._currentChanged;
  }

  get added(): ISignal<INbprodNotebooks, INbprodNotebook> {
    return this._added;
  }

  get(panel: NotebookPanel): NbprodNotebook {
    let view = this._views.get(panel);
    if (!view) {
      view = new NbprodNotebook(panel);
      this._views.set(panel, view);
      panel.disposed.connect(() => this._views.delete(panel));
      this._added.emit(view);
    }
    return view;
  }

  private _views = new Map<NotebookPanel, NbprodNotebook>();
  private _currentChanged = new Signal<INbprodNotebooks, INbprodNotebook | null>(this);
  private _added = new Signal<INbprodNotebooks, INbprodNotebook>(this);
}
