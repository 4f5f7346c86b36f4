/**
 * All talk with the notebook's kernel happens here. Failures are typed errors whose message
 * says what to do about them.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { KernelMessage } from '@jupyterlab/services';

import { BUNDLE_VERSION, IPackageBundle, IPackageOptions, IPackageOutcome, PACKAGE_MIME } from './tokens';

const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** Root of the errors met while running nbprod in the kernel. */
export class KernelTalkError extends Error {
  // names are spelled out: the production build shortens class names
  name = 'KernelTalkError';
}

/** The notebook has no kernel to run in. */
export class NoKernelError extends KernelTalkError {
  name = 'NoKernelError';
  constructor() {
    super(
      'The notebook has no running kernel. Start one (Kernel ▸ Restart Kernel), run the ' +
        "notebook's nbprod cells, then package."
    );
  }
}

/** The kernel does not know `%nbprod`: the extension was not loaded, or nbprod is missing. */
export class MagicsNotLoadedError extends KernelTalkError {
  name = 'MagicsNotLoadedError';
  constructor() {
    super(
      'The kernel does not know %nbprod. Run `%load_ext nbprod` in the notebook (and ' +
        "`pip install nbprod` in the kernel's environment if that fails), capture, then package."
    );
  }
}

/** nbprod refused to package (a failed check, a missing capture, an existing PATH, ...). */
export class PackageRefusedError extends KernelTalkError {
  name = 'PackageRefusedError';
  /** The names of the failed checks when that was the reason, else empty. */
  readonly failedChecks: string[];
  constructor(message: string) {
    super(message);
    const m = /check\(s\) failed: (.*?)\. Fix them/.exec(message);
    this.failedChecks = m ? m[1].split(', ') : [];
  }
}

/** The code raised something that is not one of nbprod's usage errors. */
export class KernelExecutionError extends KernelTalkError {
  name = 'KernelExecutionError';
  constructor(
    readonly ename: string,
    readonly evalue: string
  ) {
    super(`${ename}: ${evalue}`);
  }
}

/** The kernel answered, but not with the package result this extension understands. */
export class UnexpectedReplyError extends KernelTalkError {
  name = 'UnexpectedReplyError';
}

/** Quote a path for `%nbprod` (parsed with shlex on the Python side). */
export function shellQuote(value: string): string {
  if (/^[\w@%+=:,./-]+$/.test(value)) {
    return value;
  }
  return `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** The `%nbprod package` line for these options. */
export function packageCode(options: IPackageOptions): string {
  const path = options.path.trim();
  if (!path) {
    throw new PackageRefusedError('Give the artifact a path, e.g. `artifact` or `models/churn`.');
  }
  const flags = [
    options.overwrite ? '--overwrite' : '',
    options.force ? '--force' : '',
    options.logToMlflow ? '' : '--no-mlflow'
  ].filter(Boolean);
  return ['%nbprod package', shellQuote(path), ...flags].join(' ');
}

/**
 * Run `%nbprod package` in the notebook's kernel and return the package result it displays.
 * Queues behind whatever the kernel is running; does not touch the notebook's cells.
 */
export async function runPackage(
  sessionContext: ISessionContext,
  options: IPackageOptions
): Promise<IPackageOutcome> {
  const code = packageCode(options);
  const kernel = sessionContext.session?.kernel;
  if (!kernel || kernel.status === 'dead') {
    throw new NoKernelError();
  }
  let bundle: { [mime: string]: unknown } | null = null;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const seen: { error: KernelMessage.IErrorMsg['content'] | null } = { error: null };
  const future = kernel.requestExecute({
    code,
    silent: false,
    store_history: false,
    allow_stdin: false,
    stop_on_error: false
  });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage): void => {
    const type = msg.header.msg_type;
    if (type === 'display_data' || type === 'execute_result') {
      const data = (msg.content as KernelMessage.IDisplayDataMsg['content']).data;
      if (PACKAGE_MIME in data) {
        bundle = { ...data };
      }
    } else if (type === 'stream') {
      const content = msg.content as KernelMessage.IStreamMsg['content'];
      (content.name === 'stderr' ? stderr : stdout).push(content.text);
    } else if (type === 'error') {
      seen.error = msg.content as KernelMessage.IErrorMsg['content'];
    }
  };
  const reply = await future.done;
  const content = reply.content;
  if (content.status === 'error' || seen.error) {
    const err = seen.error ?? (content as KernelMessage.IReplyErrorContent);
    throw classify(err.ename, err.evalue.replace(ANSI, ''));
  }
  if (content.status !== 'ok') {
    throw new KernelExecutionError('Aborted', 'the kernel aborted the request; run it again.');
  }
  if (bundle === null) {
    throw new UnexpectedReplyError(
      `%nbprod package ran but displayed no ${PACKAGE_MIME} result. The kernel's nbprod may ` +
        'be older than this extension: upgrade nbprod in the kernel environment. Kernel said: ' +
        ([...stdout, ...stderr].join('').trim() || '(nothing)')
    );
  }
  const result = readPackageBundle((bundle as { [mime: string]: unknown })[PACKAGE_MIME]);
  return { code, result, bundle, stdout: stdout.join('') };
}

function classify(ename: string, evalue: string): KernelTalkError {
  if (ename === 'UsageError' && /magic function `%?nbprod` not found/i.test(evalue)) {
    return new MagicsNotLoadedError();
  }
  if (ename === 'UsageError') {
    return new PackageRefusedError(evalue);
  }
  return new KernelExecutionError(ename, evalue);
}

function readPackageBundle(value: unknown): IPackageBundle {
  const parsed = typeof value === 'string' ? safeParse(value) : value;
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    (parsed as { version?: unknown }).version !== BUNDLE_VERSION
  ) {
    throw new UnexpectedReplyError(
      `The package result is not a version ${BUNDLE_VERSION} bundle; upgrade nbprod or this ` +
        'extension so that they match.'
    );
  }
  return parsed as IPackageBundle;
}

function safeParse(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}
