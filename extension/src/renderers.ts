/**
 * Renderers for nbprod's JSON bundles. They build the DOM from the data (text only, never
 * HTML from the kernel), so they are safe in untrusted notebooks too. Frontends without this
 * extension show the HTML that travels in the same bundle.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import {
  CHECK_MIME,
  CheckStatus,
  ICheckBundle,
  ICheckResult,
  IPackageRefusal,
  IStatusBundle,
  PACKAGE_MIME,
  PackageReply,
  Reading,
  STATUS_MIME,
  isCheckStatus,
  readCheckBundle,
  readPackageBundle,
  readStatusBundle
} from './contract';
import { formatValue } from './parse';

type Child = Node | string;

/** Make an element with classes and children (strings become text nodes). */
export function h(tag: string, className: string, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (className) {
    el.className = className;
  }
  el.append(...children);
  return el;
}

export function statusPill(status: string): HTMLElement {
  const known = isCheckStatus(status) ? status : 'skip';
  const pill = h('span', `nbprod-Status nbprod-Status-${known}`, status.toUpperCase());
  pill.dataset.nbprodStatus = known;
  return pill;
}

function table(headers: string[], rows: Child[][], className: string): HTMLElement {
  const head = h('tr', '', ...headers.map(t => h('th', '', t)));
  const body = rows.map(cells => h('tr', '', ...cells.map(c => h('td', '', c))));
  return h('table', `nbprod-Table ${className}`, h('thead', '', head), h('tbody', '', ...body));
}

function checkRows(results: ReadonlyArray<ICheckResult>): Child[][] {
  return results.map(r => [
    statusPill(r.status),
    h('code', '', r.name),
    r.message,
    formatValue(r.value),
    formatValue(r.threshold)
  ]);
}

function details(results: ReadonlyArray<ICheckResult>): HTMLElement | null {
  const withDetails = results.filter(r => r.details && Object.keys(r.details).length);
  if (!withDetails.length) {
    return null;
  }
  const pre = h(
    'pre',
    'nbprod-Details-body',
    JSON.stringify(Object.fromEntries(withDetails.map(r => [r.name, r.details])), null, 1)
  );
  return h('details', 'nbprod-Details', h('summary', '', 'details'), pre);
}

/** Base renderer: reads the bundle (version included), draws it or explains why it cannot. */
abstract class BundleRenderer<T> extends Widget implements IRenderMime.IRenderer {
  constructor(protected readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('nbprod-Renderer');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const reading = this.read(model.data[this.options.mimeType]);
    this.node.textContent = '';
    if (!reading.ok) {
      this.node.append(h('div', 'nbprod-Renderer-unknown', `nbprod: ${reading.problem}`));
      const text = model.data['text/plain'];
      if (typeof text === 'string') {
        this.node.append(h('pre', '', text));
      }
      return;
    }
    this.node.dataset.nbprodStatus = String((reading.value as { status?: unknown }).status ?? '');
    this.node.append(...this.draw(reading.value));
  }

  protected abstract read(data: unknown): Reading<T>;
  protected abstract draw(data: T): HTMLElement[];
}

export class CheckRenderer extends BundleRenderer<ICheckBundle> {
  constructor(options: IRenderMime.IRendererOptions) {
    super(options);
    this.addClass('nbprod-CheckView');
  }

  protected read(data: unknown): Reading<ICheckBundle> {
    return readCheckBundle(data);
  }

  protected draw(data: ICheckBundle): HTMLElement[] {
    const results = data.results ?? [];
    const kinds = [...new Set(results.map(r => r.kind))];
    const title = data.title ?? `nbprod check ${kinds.join(', ')}`;
    const header = h('div', 'nbprod-Renderer-header', statusPill(data.status), h('b', '', title));
    const out = [header, table(['status', 'check', 'result', 'value', 'threshold'], checkRows(results), 'nbprod-CheckTable')];
    const more = details(results);
    return more ? [...out, more] : out;
  }
}

export class StatusRenderer extends BundleRenderer<IStatusBundle> {
  constructor(options: IRenderMime.IRendererOptions) {
    super(options);
    this.addClass('nbprod-StatusView');
  }

  protected read(data: unknown): Reading<IStatusBundle> {
    return readStatusBundle(data);
  }

  protected draw(data: IStatusBundle): HTMLElement[] {
    const header = h(
      'div',
      'nbprod-Renderer-header',
      statusPill(data.status),
      h('b', '', `nbprod status${data.name ? ` of ${data.name}` : ''}`)
    );
    const captures = table(
      ['capture', 'state'],
      data.captures.map(c => [c.capture, c.state]),
      'nbprod-CaptureTable'
    );
    const checks = data.checks.length
      ? table(['status', 'check', 'result', 'value', 'threshold'], checkRows(data.checks), 'nbprod-CheckTable')
      : h('p', 'nbprod-Renderer-empty', 'No checks run yet: %nbprod check KIND ...');
    return [header, captures, h('b', '', 'Checks'), checks];
  }
}

export class PackageRenderer extends BundleRenderer<PackageReply> {
  constructor(options: IRenderMime.IRendererOptions) {
    super(options);
    this.addClass('nbprod-PackageView');
  }

  protected read(data: unknown): Reading<PackageReply> {
    return readPackageBundle(data);
  }

  protected draw(data: PackageReply): HTMLElement[] {
    if (data.outcome !== 'packaged') {
      return refusalView(data);
    }
    const header = h(
      'div',
      'nbprod-Renderer-header',
      statusPill(data.status),
      h('b', '', `nbprod: packaged ${data.name}`)
    );
    const rows: Child[][] = [
      ['artifact', h('code', 'nbprod-PackageView-path', data.path)],
      ['digest', h('code', '', data.digest.slice(0, 16))],
      ['model', [data.model, data.task && `(${data.task})`].filter(Boolean).join(' ')],
      ['parity replay', `${data.parity_rows} rows identical in a fresh process`],
      ['files', String(data.files)]
    ];
    if (data.mlflow) {
      rows.push(['MLflow run', `${data.mlflow.run_id} (${data.mlflow.tracking_uri})`]);
    }
    if (data.override) {
      rows.push(['override', `${data.override.by} forced past ${data.override.checks.join(', ')}`]);
    }
    if (data.timings?.total_s !== undefined) {
      rows.push(['took', `${data.timings.total_s.toFixed(1)} s`]);
    }
    const out = [header, table(['', ''], rows, 'nbprod-FieldTable')];
    if (data.checks?.length) {
      const counts = countStatuses(data.checks);
      out.push(h('div', 'nbprod-PackageView-checks', `checks recorded: ${counts}`));
    }
    return out;
  }
}

/**
 * Nothing was packaged: which error, and the failed checks when they were the reason. The
 * reason in words is the cell's next output (the UsageError line or the traceback), so it shows
 * here only as the header's tooltip, as in the HTML other frontends show.
 */
export function refusalView(data: IPackageRefusal): HTMLElement[] {
  const what = data.outcome === 'refused' ? 'not packaged' : 'packaging failed';
  const header = h(
    'div',
    'nbprod-Renderer-header',
    statusPill('fail'),
    h('b', '', `nbprod: ${what}${data.path ? ` to ${data.path}` : ''}`),
    h('code', 'nbprod-PackageView-error', data.error)
  );
  header.title = data.reason;
  const out = [header];
  if (data.failed_checks.length) {
    out.push(
      table(['status', 'check', 'result', 'value', 'threshold'], checkRows(data.failed_checks), 'nbprod-CheckTable')
    );
  }
  return out;
}

function countStatuses(checks: ReadonlyArray<ICheckResult>): string {
  const n: { [s in CheckStatus]?: number } = {};
  for (const c of checks) {
    n[c.status] = (n[c.status] ?? 0) + 1;
  }
  return (['pass', 'warn', 'fail', 'skip'] as CheckStatus[])
    .filter(s => n[s])
    .map(s => `${n[s]} ${s}`)
    .join(', ');
}

function factory(
  mimeType: string,
  make: (options: IRenderMime.IRendererOptions) => IRenderMime.IRenderer
): IRenderMime.IRendererFactory {
  return { safe: true, mimeTypes: [mimeType], defaultRank: 0, createRenderer: make };
}

export const checkRendererFactory = factory(CHECK_MIME, o => new CheckRenderer(o));
export const statusRendererFactory = factory(STATUS_MIME, o => new StatusRenderer(o));
export const packageRendererFactory = factory(PACKAGE_MIME, o => new PackageRenderer(o));
