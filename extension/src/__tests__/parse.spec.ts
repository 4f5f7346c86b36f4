/**
 * Reading cells: which nbprod magics a cell holds and, from its outputs, how its last run went.
 */
import type * as nbformat from '@jupyterlab/nbformat';

import { CHECK_MIME, PACKAGE_MIME, STATUS_MIME } from '../contract';
import { SWITCHES, describe as label, formatNumber, formatValue, parseMagics, readOutputs, tokenize, worst } from '../parse';
import check from './fixtures/check.json';
import flags from './fixtures/flags.json';
import numbers from './fixtures/numbers.json';
import packageError from './fixtures/package-error.json';
import packaged from './fixtures/package-packaged.json';
import refused from './fixtures/package-refused.json';
import status from './fixtures/status.json';

function display(mime: string, json: unknown): nbformat.IOutput {
  return {
    output_type: 'display_data',
    data: { [mime]: json as nbformat.IMimeBundle[string], 'text/plain': 'nbprod' },
    metadata: {}
  };
}

function stream(name: 'stdout' | 'stderr', text: string): nbformat.IOutput {
  return { output_type: 'stream', name, text };
}

/** What IPython shows in a notebook for a magic that raised UsageError. */
function usageError(message: string): nbformat.IOutput {
  return stream('stderr', `UsageError: ${message}\n`);
}

describe('tokenize', () => {
  it('splits like a shell: quotes group, backslashes escape', () => {
    expect(tokenize(`package 'my model' --force`)).toEqual(['package', 'my model', '--force']);
    expect(tokenize(`a "b \\"c\\" d" e`)).toEqual(['a', 'b "c" d', 'e']);
    expect(tokenize('   ')).toEqual([]);
  });
});

describe('parseMagics', () => {
  it('reads every %nbprod line of a cell, with a label', () => {
    const magics = parseMagics(
      'x = 1\n%nbprod snapshot train --role train --target y\n  %nbprod snapshot valid --role=valid --target y'
    );
    expect(magics.map(m => [m.kind, m.label])).toEqual([
      ['snapshot', 'train snapshot of train'],
      ['snapshot', 'valid snapshot of valid']
    ]);
    expect(magics[1].source).toBe('%nbprod snapshot valid --role=valid --target y');
  });

  it('reads a cell magic from its first non-blank line only', () => {
    const magics = parseMagics('\n%%nbprod features --fn make\ndef make(df):\n    return df\n%nbprod status');
    expect(magics).toEqual([
      { kind: 'features', sub: null, args: '--fn make', label: 'features make()', source: '%%nbprod features --fn make' }
    ]);
  });

  it('names the check and its metric', () => {
    const [overfit, metric] = parseMagics(
      '%nbprod check overfit --metric roc_auc --max-gap 0.05\n%nbprod check metric accuracy --min 0.9'
    );
    expect([overfit.sub, overfit.label]).toEqual(['overfit', 'check overfit (roc_auc)']);
    expect([metric.sub, metric.label]).toEqual(['metric', 'check metric (accuracy)']);
  });

  it('skips help, unknown subcommands and lookalikes', () => {
    expect(parseMagics('%nbprod --help\n%nbprod snapshto x\n%nbprodx status\n# %nbprod status')).toEqual([]);
    expect(parseMagics('%%nbprod nonsense\nx = 1')).toEqual([]);
    expect(parseMagics('')).toEqual([]);
  });

  it('labels package paths past boolean flags', () => {
    const [pkg] = parseMagics('%nbprod package --force --no-mlflow models/churn --overwrite');
    expect(pkg.label).toBe('package to models/churn');
    expect(label('package', '--notebook train.ipynb out')).toBe('package to out');
    expect(label('package', '--register --no-progress models/churn')).toBe('package to models/churn');
    expect(label('package', '--progress out --sign key.pem')).toBe('package to out');
  });

  it('knows every switch of the magics (the fixture follows the Python parser)', () => {
    expect([...SWITCHES].sort()).toEqual(flags.switches);
  });
});

describe('readOutputs', () => {
  it('a cell never run is idle; a running one says so', () => {
    expect(readOutputs([], null)).toMatchObject({ status: 'idle', message: 'not run yet' });
    expect(readOutputs([], 3, true)).toMatchObject({ status: 'running' });
  });

  it('a capture cell passes with its last nbprod line', () => {
    const outputs = [stream('stdout', 'nbprod: model cancer\nnbprod: captured model = Pipeline\n')];
    expect(readOutputs(outputs, 4)).toMatchObject({ status: 'pass', message: 'captured model = Pipeline' });
  });

  it('a check cell takes the bundle status and the failing message', () => {
    const reading = readOutputs([display(CHECK_MIME, check)], 5);
    expect(reading.status).toBe('fail');
    expect(reading.message).toBe('validation accuracy 0.9645 is below the minimum 0.999');
    expect(reading.checks.map(c => c.name)).toEqual(['metric:accuracy']);
  });

  it('a check message reaches the badge and the panel as the very text nbprod wrote', () => {
    // the badge and the panel put it in text nodes (renderers.ts h()): no Markdown, no HTML
    const hostile = 'column `a ``b`` c` <script>alert(1)</script> | *x* $y$ [l](http://e.example)';
    const bundle = JSON.parse(JSON.stringify(check));
    bundle.results[0].message = hostile;
    const reading = readOutputs([display(CHECK_MIME, bundle)], 5);
    expect(reading.message).toBe(hostile);
    expect(reading.checks[0].message).toBe(hostile);
  });

  it('a status cell takes the worst check status', () => {
    expect(readOutputs([display(STATUS_MIME, status)], 6)).toMatchObject({ status: 'fail', message: 'status of cancer' });
  });

  it('a packaged cell says where, and past which checks it was forced', () => {
    const reading = readOutputs([display(PACKAGE_MIME, packaged)], 7);
    expect(reading.status).toBe('warn');
    expect(reading.message).toBe('packaged cancer at /home/analyst/cancer/artifact (forced past metric:accuracy)');
    expect(reading.refusal).toBeNull();
  });

  it('a refused package fails with the refusal, whichever error line follows', () => {
    const outputs = [display(PACKAGE_MIME, refused), usageError(refused.reason)];
    const reading = readOutputs(outputs, 8);
    expect(reading.status).toBe('fail');
    expect(reading.message).toBe(`not packaged: ${refused.reason}`);
    expect(reading.refusal?.failed_checks.map(c => c.name)).toEqual(['metric:accuracy']);
    expect(reading.packaged).toBeNull();
    // the refusal stands on its own (a frontend that dropped the stderr line)
    expect(readOutputs([display(PACKAGE_MIME, refused)], 8)).toMatchObject({ status: 'fail', message: reading.message });
  });

  it('an unexpected packaging error fails with the bundle, before the traceback', () => {
    const traceback: nbformat.IOutput = {
      output_type: 'error',
      ename: 'FileExistsError',
      evalue: '[Errno 17] File exists',
      traceback: []
    };
    const reading = readOutputs([display(PACKAGE_MIME, packageError), traceback], 9);
    expect(reading).toMatchObject({ status: 'fail', message: `not packaged: ${packageError.reason}` });
    expect(reading.refusal?.outcome).toBe('error');
  });

  it('a UsageError of any other magic fails with its line, ANSI colours dropped', () => {
    const outputs = [stream('stderr', '\u001b[31mUsageError: \u001b[0msnapshot: no variable "trian".\n')];
    expect(readOutputs(outputs, 2)).toMatchObject({ status: 'fail', message: 'snapshot: no variable "trian".' });
    // the same words on stdout are not an error
    expect(readOutputs([stream('stdout', 'UsageError: quoted\n')], 2).status).toBe('pass');
  });

  it('an error output fails the cell', () => {
    const err: nbformat.IOutput = { output_type: 'error', ename: 'NameError', evalue: "name 'x' is not defined", traceback: [] };
    expect(readOutputs([err], 1)).toMatchObject({ status: 'fail', message: "NameError: name 'x' is not defined" });
  });

  it('bundles of another version give no status of their own', () => {
    const outputs = [display(PACKAGE_MIME, { ...refused, version: 3 }), display(CHECK_MIME, { ...check, version: 7 })];
    const reading = readOutputs(outputs, 10);
    expect(reading).toMatchObject({ status: 'pass', message: 'ran', refusal: null, checks: [] });
  });

  it('reads JSON that arrives as a string', () => {
    expect(readOutputs([display(CHECK_MIME, JSON.stringify(check))], 5).status).toBe('fail');
  });
});

describe('worst and formatValue', () => {
  it('worst orders skip < pass < warn < fail', () => {
    expect(worst([])).toBe('skip');
    expect(worst(['pass', 'skip'])).toBe('pass');
    expect(worst(['pass', 'fail', 'warn'])).toBe('fail');
  });

  it('formatNumber gives what nbprod.core.results.number gives (the shared fixture)', () => {
    const input = (v: number | string): number =>
      v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v);
    const cases = numbers.cases as Array<[number | string, string]>;
    expect(cases.length).toBeGreaterThan(20);
    for (const [value, shown] of cases) {
      expect([value, formatNumber(input(value))]).toEqual([value, shown]);
    }
  });

  it('formatValue shows numbers as the Python side does', () => {
    expect(formatValue(0.9644970414201184)).toBe('0.9645');
    expect(formatValue(12)).toBe('12');
    expect(formatValue(1e-7)).toBe('1e-07');
    expect(formatValue(12345.6)).toBe('12,346'); // never 1.235e+4
    expect(formatValue({ min: 0.999, max: null })).toBe('min 0.999');
    expect(formatValue([0.5, 'a'])).toBe('0.5, a');
    expect(formatValue(undefined)).toBe('');
  });
});
