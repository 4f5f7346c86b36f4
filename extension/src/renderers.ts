/**
 * Renderers for nbprod's JSON bundles. They build the DOM from the data (text only, never
 * HTML from the kernel), so they are safe in untrusted notebooks too. Frontends without this
 * extension show the HTML that travels in the same bundle.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { isCheckStatus } from './parse';
import {
  BUNDLE_VERSION,
  CHECK_MIME,
  CheckStatus,
  ICheckBundle,
  ICheckResult,
  IPackageBundle,
  IStatusBundle,
  PACKAGE_MIME,
  STATUS_MIME
} from './tokens';

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

/** A value as the Python side's HTML shows it: 4 significant digits, dicts as "k v" pairs. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+(e|$)/, '$1');
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

/** Base renderer: reads the bundle, checks its version, draws or explains why it cannot. */
abstract class BundleRenderer<T> extends Widget implements IRenderMime.IRenderer {
  constructor(protected readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('nbprod-Renderer');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const raw = model.data[this.options.mimeType];
    const data = typeof raw === 'string' ? JSON.parse(raw) : raw;
    this.node.textContent = '';
    if (typeof data !== 'object' || data === null || (data as { version?: unknown }).version !== BUNDLE_VERSION) {
      const version = (data as { version?: unknown } | null)?.version;
      this.node.append(
        h(
          'div',
          'nbprod-Renderer-unknown',
          `nbprod: this ${this.options.mimeType} bundle has version ${String(version)}; this ` +
            `extension draws version ${BUNDLE_VERSION}. Upgrade nbprod or the extension.`
        )
      );
      const text = model.data['text/plain'];
      if (typeof text === 'string') {
        this.node.append(h('pre', '', text));
      }
      return;
    }
    this.node.dataset.nbprodStatus = String((data as { status?: unknown }).status ?? '');
    this.node.append(...this.draw(data as T));
  }

  protected abstract draw(data: T): HTMLElement[];
}

export class CheckRenderer extends BundleRenderer<ICheckBundle> {
  constructor(options: IRenderMime.IRendererOptions) {
    super(options);
    this.addClass('nbprod-CheckView');
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

export class PackageRenderer extends BundleRenderer<IPackageBundle> {
  constructor(options: IRenderMime.IRendererOptions) {
    super(options);
    this.addClass('nbprod-PackageView');
  }

  protected draw(data: IPackageBundle): HTMLElement[] {
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
