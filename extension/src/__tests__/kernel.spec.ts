/**
 * What the extension makes of the kernel's answers: the probe before packaging and the reply
 * of `%nbprod package`. The answers have the shapes ipykernel sends (user expressions as
 * `{status, data: {'text/plain': repr}}` or `{status: 'error', ename, evalue}`).
 */
import { PACKAGE_MIME, PACKAGE_VERSION } from '../contract';
import {
  IPackageReply,
  KernelExecutionError,
  KernelTalkError,
  MagicsNotLoadedError,
  NbprodMissingError,
  PROBE,
  PackageRefusedError,
  UnexpectedReplyError,
  VersionMismatchError,
  packageCode,
  readPackageReply,
  readProbe,
  shellQuote
} from '../kernel';
import packageError from './fixtures/package-error.json';
import packaged from './fixtures/package-packaged.json';
import refused from './fixtures/package-refused.json';

const ok = (repr: string) => ({ status: 'ok', data: { 'text/plain': repr }, metadata: {} });
const raised = (ename: string, evalue: string) => ({ status: 'error', ename, evalue, traceback: [] });
/** A kernel with nbprod 0.1.0 of this contract, `%nbprod` loaded. */
const healthy = { nbprod: ok("'0.1.0'"), contract: ok(String(PACKAGE_VERSION)), magic: ok('True') };

/** Run `fn`, expecting it to throw; return the error. */
function thrown(fn: () => unknown): KernelTalkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KernelTalkError);
    return err as KernelTalkError;
  }
  throw new Error('expected an error');
}

describe('packageCode and shellQuote', () => {
  it('builds the magic line with the chosen flags', () => {
    expect(packageCode({ path: ' artifact ', force: false, overwrite: false, logToMlflow: true })).toBe(
      '%nbprod package artifact'
    );
    expect(packageCode({ path: 'models/churn', force: true, overwrite: true, logToMlflow: false })).toBe(
      '%nbprod package models/churn --overwrite --force --no-mlflow'
    );
  });

  it('quotes paths for shlex', () => {
    expect(shellQuote('a/b-c_1.d')).toBe('a/b-c_1.d');
    expect(shellQuote('my model')).toBe("'my model'");
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
    expect(shellQuote('x; rm -rf ~')).toBe("'x; rm -rf ~'");
  });

  it('refuses an empty path before talking to the kernel', () => {
    const err = thrown(() => packageCode({ path: '  ', force: false, overwrite: false, logToMlflow: true }));
    expect(err).toBeInstanceOf(PackageRefusedError);
    expect(err.message).toContain('Give the artifact a path');
  });
});

describe('readProbe', () => {
  it('asks for the version, the contract and the magic', () => {
    expect(Object.keys(PROBE).sort()).toEqual(['contract', 'magic', 'nbprod']);
  });

  it('returns what a fitting kernel has', () => {
    expect(readProbe(healthy)).toEqual({ version: '0.1.0', contract: PACKAGE_VERSION });
  });

  it('says how to install nbprod when the kernel cannot import it', () => {
    const err = thrown(() =>
      readProbe({ ...healthy, nbprod: raised('ModuleNotFoundError', "No module named 'nbprod'") })
    );
    expect(err).toBeInstanceOf(NbprodMissingError);
    expect(err.message).toContain("cannot import nbprod (ModuleNotFoundError: No module named 'nbprod')");
    expect(err.message).toContain('%pip install nbprod');
  });

  it('names an nbprod older than this contract (no nbprod.frontend) as a version mismatch', () => {
    const err = thrown(() =>
      readProbe({ ...healthy, contract: raised('ModuleNotFoundError', "No module named 'nbprod.frontend'") })
    );
    expect(err).toBeInstanceOf(VersionMismatchError);
    expect((err as VersionMismatchError).kernelVersion).toBe(1);
    expect(err.message).toBe(
      `The kernel's nbprod 0.1.0 speaks package bundle version 1; this JupyterLab extension speaks ` +
        `version ${PACKAGE_VERSION}. Nothing was packaged. Upgrade nbprod in the kernel's environment ` +
        '(`%pip install -U nbprod`) and restart the kernel.'
    );
  });

  it('tells to upgrade the extension when the kernel is newer', () => {
    const err = thrown(() => readProbe({ ...healthy, contract: ok(String(PACKAGE_VERSION + 1)) }));
    expect(err).toBeInstanceOf(VersionMismatchError);
    expect(err.message).toContain('Upgrade nbprod where JupyterLab runs');
  });

  it('says to load the magics when %nbprod is unknown', () => {
    expect(thrown(() => readProbe({ ...healthy, magic: ok('False') }))).toBeInstanceOf(MagicsNotLoadedError);
    expect(thrown(() => readProbe({ ...healthy, magic: raised('NameError', 'get_ipython') }))).toBeInstanceOf(
      MagicsNotLoadedError
    );
  });

  it('the version check comes before the magic check', () => {
    const err = thrown(() => readProbe({ ...healthy, contract: ok('1'), magic: ok('False') }));
    expect(err).toBeInstanceOf(VersionMismatchError);
  });

  it('says when the kernel is not an IPython kernel', () => {
    for (const answer of [undefined, null, {}, { nbprod: ok("'0.1.0'") }]) {
      const err = thrown(() => readProbe(answer));
      expect(err).toBeInstanceOf(UnexpectedReplyError);
      expect(err.message).toContain('Python (IPython) kernel');
    }
  });

  it('refuses a contract answer that is not a number, or a broken nbprod', () => {
    expect(thrown(() => readProbe({ ...healthy, contract: ok("'two'") })).message).toContain(
      "not a number ('two')"
    );
    const err = thrown(() => readProbe({ ...healthy, contract: raised('SyntaxError', 'bad') }));
    expect(err).toBeInstanceOf(UnexpectedReplyError);
    expect(err.message).toContain('SyntaxError: bad');
  });
});

describe('readPackageReply', () => {
  const code = '%nbprod package artifact --no-mlflow';
  const reply = (over: Partial<IPackageReply>): IPackageReply => ({
    code,
    status: 'ok',
    bundle: null,
    error: null,
    stdout: '',
    stderr: '',
    ...over
  });
  const usageError = { ename: 'UsageError', evalue: refused.reason };

  it('returns the packaged result with its whole display bundle', () => {
    const bundle = { [PACKAGE_MIME]: packaged, 'text/plain': 'Packaged' };
    const outcome = readPackageReply(reply({ bundle, stdout: 'nbprod: ...' }));
    expect(outcome).toEqual({ code, result: packaged, bundle, stdout: 'nbprod: ...' });
  });

  it('a refusal carries the failed checks from the payload, not from the message', () => {
    // the message's English is reworded here: the failed checks still come through
    const payload = { ...refused, reason: 'Nein.' };
    const err = thrown(() =>
      readPackageReply(reply({ status: 'error', bundle: { [PACKAGE_MIME]: payload }, error: usageError }))
    ) as PackageRefusedError;
    expect(err).toBeInstanceOf(PackageRefusedError);
    expect(err.name).toBe('PackageRefusedError');
    expect(err.message).toBe('Nein.');
    expect(err.failedChecks).toEqual(['metric:accuracy']);
    expect(err.checks[0].message).toBe('validation accuracy 0.9645 is below the minimum 0.999');
    expect(err.refusal?.error).toBe('ChecksFailedError');
  });

  it('an unexpected error takes its class name from the payload', () => {
    const err = thrown(() =>
      readPackageReply(
        reply({ status: 'error', bundle: { [PACKAGE_MIME]: packageError }, error: { ename: 'FileExistsError', evalue: 'x' } })
      )
    );
    expect(err).toBeInstanceOf(KernelExecutionError);
    expect(err.message).toBe(`FileExistsError: ${packageError.reason}`);
  });

  it('a UsageError without a bundle (the line refused before packaging) is a refusal', () => {
    const err = thrown(() =>
      readPackageReply(reply({ status: 'error', error: { ename: 'UsageError', evalue: '\u001b[0m%nbprod: bad flag' } }))
    ) as PackageRefusedError;
    expect(err).toBeInstanceOf(PackageRefusedError);
    expect(err.message).toBe('%nbprod: bad flag');
    expect(err.failedChecks).toEqual([]);
  });

  it('any other error without a bundle keeps its class name', () => {
    const err = thrown(() =>
      readPackageReply(reply({ status: 'error', error: { ename: 'KeyboardInterrupt', evalue: '' } }))
    );
    expect(err).toBeInstanceOf(KernelExecutionError);
    expect((err as KernelExecutionError).ename).toBe('KeyboardInterrupt');
  });

  it('a packaged bundle followed by an error is not a success', () => {
    const bundle = { [PACKAGE_MIME]: packaged };
    const err = thrown(() =>
      readPackageReply(reply({ status: 'error', bundle, error: { ename: 'MlflowException', evalue: 'registry down' } }))
    );
    expect(err).toBeInstanceOf(KernelExecutionError);
  });

  it('an aborted request says to run it again', () => {
    const err = thrown(() => readPackageReply(reply({ status: 'aborted' })));
    expect(err.message).toContain('aborted');
  });

  it('a bundle of another version is named as such', () => {
    const bundle = { [PACKAGE_MIME]: { ...packaged, version: PACKAGE_VERSION + 1 } };
    const err = thrown(() => readPackageReply(reply({ bundle })));
    expect(err).toBeInstanceOf(UnexpectedReplyError);
    expect(err.message).toContain('newer than this extension');
  });

  it('no bundle and no error: says what the kernel printed', () => {
    const err = thrown(() => readPackageReply(reply({ stdout: 'hello\n', stderr: 'warning' })));
    expect(err).toBeInstanceOf(UnexpectedReplyError);
    expect(err.message).toContain('displayed no application/vnd.nbprod.package+json result');
    expect(err.message).toContain('Kernel said: hello\nwarning');
  });
});
