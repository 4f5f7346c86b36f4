/**
 * The nbprod JupyterLab extension: plugin objects only. The work lives in the modules they
 * wire together (scanner, badges, panel, kernel, renderers).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { BadgeManager } from './badges';
import { nbprodIcon } from './icons';
import { DEFAULT_SETTINGS, IPanelSettings, NbprodPanel } from './panel';
import { NbprodNotebook, NbprodNotebooks } from './scanner';
import { COMMAND_IDS, INbprodNotebooks, PLUGIN_IDS } from './tokens';

/** Which cells of each open notebook hold nbprod magics, and how they last ran. */
const notebooks: JupyterFrontEndPlugin<INbprodNotebooks> = {
  id: PLUGIN_IDS.notebooks,
  description: 'Tracks the nbprod magic cells of open notebooks and their last status.',
  autoStart: true,
  requires: [INotebookTracker],
  provides: INbprodNotebooks,
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker): INbprodNotebooks =>
    new NbprodNotebooks(tracker)
};

/** A badge with kind and last status on every cell that holds nbprod magics. */
const badges: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_IDS.badges,
  description: 'Badges cells holding nbprod magics with their kind and last status.',
  autoStart: true,
  requires: [INbprodNotebooks, INotebookTracker],
  activate: (_app: JupyterFrontEnd, views: INbprodNotebooks, tracker: INotebookTracker): void => {
    const managed = new WeakSet<object>();
    const manage = (view: NbprodNotebook): void => {
      if (!managed.has(view)) {
        managed.add(view);
        new BadgeManager(view);
      }
    };
    views.added.connect((_, view) => manage(view as NbprodNotebook));
    tracker.forEach(panel => manage(views.get(panel) as NbprodNotebook));
  }
};

/** The side panel: captures, checks with jump-to-cell, and the Package action. */
const panel: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_IDS.panel,
  description: "Side panel listing the notebook's nbprod captures and checks, with Package.",
  autoStart: true,
  requires: [INbprodNotebooks, IRenderMimeRegistry],
  optional: [ILayoutRestorer, ISettingRegistry, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    views: INbprodNotebooks,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null,
    settings: ISettingRegistry | null,
    palette: ICommandPalette | null
  ): void => {
    const widget = new NbprodPanel(views, rendermime);
    widget.title.icon = nbprodIcon;
    app.shell.add(widget, 'left', { rank: 650 });
    restorer?.add(widget, widget.id);

    app.commands.addCommand(COMMAND_IDS.openPanel, {
      label: 'nbprod: Show Captures and Checks',
      icon: nbprodIcon,
      execute: () => app.shell.activateById(widget.id)
    });
    app.commands.addCommand(COMMAND_IDS.package, {
      label: 'nbprod: Package the Current Notebook',
      icon: nbprodIcon,
      isEnabled: () => views.current !== null,
      execute: async () => {
        app.shell.activateById(widget.id);
        return widget.package();
      }
    });
    for (const command of [COMMAND_IDS.openPanel, COMMAND_IDS.package]) {
      palette?.addItem({ command, category: 'nbprod' });
    }

    if (settings) {
      settings
        .load(PLUGIN_IDS.panel)
        .then(loaded => {
          const apply = (): void =>
            widget.configure({ ...DEFAULT_SETTINGS, ...(loaded.composite as Partial<IPanelSettings>) });
          apply();
          loaded.changed.connect(apply);
        })
        .catch(reason => console.error('nbprod: could not load the panel settings.', reason));
    }
  }
};

export default [notebooks, badges, panel];
