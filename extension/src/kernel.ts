/**
 * All talk with the notebook's kernel happens here. Failures are typed errors whose message
 * says what to do about them.
 *
 * Packaging is two requests. First a silent one whose IPython user expressions ask the kernel
 * which nbprod it has, which package bundle version that nbprod speaks and whether `%nbprod` is
 * loaded (`PROBE`, read by `readProbe`); nothing runs when the answer does not fit. Then
 * `%nbprod package ...`, which displays one JSON bundle whatever happens (`readPackageReply`).
 * Decisions come from those structured answers and the error's class name, never from the
 * English of a message.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { Kernel, KernelMessage } from '@jupyterlab/services';

import { ICheckResult, IPackageRefusal, PACKAGE_MIME, PACKAGE_VERSION, readPackageBundle } from './contract';
import type { IPackageOptions, IPackageOutcome } from './tokens';

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

/** The kernel's Python cannot import nbprod. */
export class NbprodMissingError extends KernelTalkError {
  name = 'NbprodMissingError';
  constructor(readonly ename: string, readonly evalue: string) {
    super(
      `The kernel cannot import nbprod (${ename}: ${cut(evalue)}). Install it where the kernel ` +
        'runs (`%pip install nbprod` in the notebook), restart the kernel, run the notebook, then package.'
    );
  }
}

/** The kernel does not know `%nbprod`: the extension was not loaded in this kernel. */
export class MagicsNotLoadedError extends KernelTalkError {
  name = 'MagicsNotLoadedError';
  constructor() {
    super(
      'The kernel does not know %nbprod. Run `%load_ext nbprod` in the notebook, capture, then package.'
    );
  }
}

/** The kernel's nbprod speaks another version of the package bundle than this extension. */
export class VersionMismatchError extends KernelTalkError {
  name = 'VersionMismatchError';
  constructor(
    readonly kernelVersion: number,
    readonly nbprodVersion: string
  ) {
    const kernel = `The kernel's nbprod ${nbprodVersion} speaks package bundle version ${kernelVersion}`;
    const fix =
      kernelVersion < PACKAGE_VERSION
        ? "Upgrade nbprod in the kernel's environment (`%pip install -U nbprod`) and restart the kernel."
        : 'Upgrade nbprod where JupyterLab runs (`pip install -U nbprod`) and reload the page.';
    super(`${kernel}; this JupyterLab extension speaks version ${PACKAGE_VERSION}. Nothing was packaged. ${fix}`);
  }
}

/** nbprod refused to package (a failed check, a missing capture, an existing PATH, ...). */
export class PackageRefusedError extends KernelTalkError {
  name = 'PackageRefusedError';
  /** What the kernel said, when it got as far as saying it in JSON. */
  readonly refusal: IPackageRefusal | null;
  /** The failed checks when they were the reason, else empty. */
  readonly checks: ReadonlyArray<ICheckResult>;
  constructor(message: string, refusal: IPackageRefusal | null = null) {
    super(message);
    this.refusal = refusal;
    this.checks = refusal?.failed_checks ?? [];
  }

  /** The names of the failed checks when they were the reason, else empty. */
  get failedChecks(): string[] {
    return this.checks.map(c => c.name);
  }
}

/** The code raised something that is not one of nbprod's refusals. */
export class KernelExecutionError extends KernelTalkError {
  name = 'KernelExecutionError';
  constructor(
    readonly ename: string,
    readonly evalue: string
  ) {
    super(`${ename}: ${evalue}`);
  }
}

/** The kernel answered, but not with what this extension understands. */
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
 * IPython user expressions asking the kernel about its nbprod. The answers are the reprs of a
 * str, an int and a bool; an expression that raises answers with its exception's class name.
 */
export const PROBE: { readonly [name: string]: string } = {
  nbprod: "__import__('nbprod').__version__",
  contract: "__import__('nbprod.frontend', fromlist=['PACKAGE_VERSION']).PACKAGE_VERSION",
  magic: "get_ipython().find_line_magic('nbprod') is not None"
};

/** What the probe learnt: the kernel's nbprod version and its package bundle version. */
export interface IKernelNbprod {
  version: string;
  contract: number;
}

type ExpressionResult =
  | { status: 'ok'; data: { [mime: string]: unknown } }
  | { status: 'error'; ename: string; evalue: string };

function expression(answers: { [name: string]: unknown }, name: string): ExpressionResult {
  const answer = answers[name] as Partial<{ status: string; data: unknown; ename: unknown; evalue: unknown }>;
  if (answer?.status === 'ok' && typeof answer.data === 'object' && answer.data !== null) {
    return { status: 'ok', data: answer.data as { [mime: string]: unknown } };
  }
  if (answer?.status === 'error') {
    return { status: 'error', ename: String(answer.ename ?? 'Error'), evalue: String(answer.evalue ?? '') };
  }
  throw new UnexpectedReplyError(
    `The kernel did not answer nbprod's question about its version (user expression ${name}). ` +
      'nbprod packages from a Python (IPython) kernel: choose one in Kernel ▸ Change Kernel.'
  );
}

function plain(result: ExpressionResult & { status: 'ok' }): string {
  const text = result.data['text/plain'];
  return typeof text === 'string' ? text.trim() : '';
}

/**
 * Read the kernel's answers to `PROBE` (the execute reply's `user_expressions`). Throws the
 * typed error whose message says how to fix the setup; returns what the kernel has otherwise.
 */
export function readProbe(userExpressions: unknown): IKernelNbprod {
  if (typeof userExpressions !== 'object' || userExpressions === null) {
    throw new UnexpectedReplyError(
      "The kernel's reply has no user_expressions. nbprod packages from a Python (IPython) " +
        'kernel: choose one in Kernel ▸ Change Kernel.'
    );
  }
  const answers = userExpressions as { [name: string]: unknown };
  const nbprod = expression(answers, 'nbprod');
  if (nbprod.status === 'error') {
    throw new NbprodMissingError(nbprod.ename, nbprod.evalue);
  }
  const version = plain(nbprod).replace(/^(['"])(.*)\1$/, '$2') || '(unknown version)';
  const contract = expression(answers, 'contract');
  let speaks: number;
  if (contract.status === 'error') {
    if (contract.ename !== 'ModuleNotFoundError') {
      throw new UnexpectedReplyError(
        `The kernel's nbprod ${version} failed to say its package bundle version ` +
          `(${contract.ename}: ${cut(contract.evalue)}). Reinstall nbprod in the kernel's environment.`
      );
    }
    speaks = 1; // nbprod before nbprod.frontend spoke version 1
  } else {
    speaks = Number(plain(contract));
    if (!Number.isInteger(speaks)) {
      throw new UnexpectedReplyError(
        `The kernel's nbprod ${version} gave a package bundle version that is not a number ` +
          `(${cut(plain(contract))}). Reinstall nbprod in the kernel's environment.`
      );
    }
  }
  if (speaks !== PACKAGE_VERSION) {
    throw new VersionMismatchError(speaks, version);
  }
  const magic = expression(answers, 'magic');
  if (magic.status === 'error' || plain(magic) !== 'True') {
    throw new MagicsNotLoadedError();
  }
  return { version, contract: speaks };
}

/** What one `%nbprod package` request brought back, as runPackage collects it. */
export interface IPackageReply {
  /** The code that ran. */
  code: string;
  /** The execute reply's status: ok, error or aborted. */
  status: string;
  /** The last display whose data holds PACKAGE_MIME: all of its MIME types. */
  bundle: { [mime: string]: unknown } | null;
  /** The error the request raised, if any. */
  error: { ename: string; evalue: string } | null;
  stdout: string;
  stderr: string;
}

/**
 * What `%nbprod package` ended with: the package outcome, or the typed error saying why there
 * is none. The bundle decides; without one (the magic line itself was refused before packaging
 * began, or the kernel broke) the error's class name does.
 */
export function readPackageReply(reply: IPackageReply): IPackageOutcome {
  const { code, bundle, error, stdout } = reply;
  if (bundle !== null) {
    const read = readPackageBundle(bundle[PACKAGE_MIME]);
    if (!read.ok) {
      throw new UnexpectedReplyError(read.problem);
    }
    const result = read.value;
    if (result.outcome !== 'packaged') {
      throw result.outcome === 'refused'
        ? new PackageRefusedError(result.reason, result)
        : new KernelExecutionError(result.error, result.reason);
    }
    if (error === null && reply.status === 'ok') {
      return { code, result, bundle, stdout };
    }
  }
  if (error !== null) {
    const evalue = error.evalue.replace(ANSI, '');
    throw error.ename === 'UsageError'
      ? new PackageRefusedError(evalue)
      : new KernelExecutionError(error.ename, evalue);
  }
  if (reply.status !== 'ok') {
    throw new KernelExecutionError('Aborted', 'the kernel aborted the request; run it again.');
  }
  throw new UnexpectedReplyError(
    `%nbprod package ran but displayed no ${PACKAGE_MIME} result. Kernel said: ` +
      (cut([stdout, reply.stderr].join('').trim()) || '(nothing)')
  );
}

/** Ask the kernel about its nbprod (`PROBE`); throws the typed error when it does not fit. */
export async function probeKernel(kernel: Kernel.IKernelConnection): Promise<IKernelNbprod> {
  const future = kernel.requestExecute({
    code: '',
    silent: true,
    store_history: false,
    allow_stdin: false,
    stop_on_error: false,
    user_expressions: { ...PROBE }
  });
  const reply = await future.done;
  if (reply.content.status !== 'ok') {
    throw new KernelExecutionError('Aborted', 'the kernel did not answer; wait for it to be idle and try again.');
  }
  return readProbe((reply.content as KernelMessage.IExecuteReply).user_expressions);
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
  await probeKernel(kernel);
  const collected: IPackageReply = { code, status: '', bundle: null, error: null, stdout: '', stderr: '' };
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
        collected.bundle = { ...data };
      }
    } else if (type === 'stream') {
      const content = msg.content as KernelMessage.IStreamMsg['content'];
      collected[content.name === 'stderr' ? 'stderr' : 'stdout'] += content.text;
    } else if (type === 'error') {
      const content = msg.content as KernelMessage.IErrorMsg['content'];
      collected.error = { ename: content.ename, evalue: content.evalue };
    }
  };
  const reply = await future.done;
  collected.status = reply.content.status;
  if (reply.content.status === 'error' && collected.error === null) {
    const content = reply.content as KernelMessage.IReplyErrorContent;
    collected.error = { ename: content.ename, evalue: content.evalue };
  }
  return readPackageReply(collected);
}

function cut(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
