/**
 * The readers of what the kernel sends. The fixtures are real bundles from nbprod (kept in
 * shape by tests/test_extension_contract.py); the variations test what a reader must refuse.
 */
import {
  CHECK_MIME,
  PACKAGE_MIME,
  PACKAGE_VERSION,
  isCheckStatus,
  parseJson,
  readCheckBundle,
  readPackageBundle,
  readStatusBundle,
  versionProblem
} from '../contract';
import check from './fixtures/check.json';
import packageError from './fixtures/package-error.json';
import packaged from './fixtures/package-packaged.json';
import refused from './fixtures/package-refused.json';
import status from './fixtures/status.json';

/** The problem a reading reports; fails the test when the reading succeeded. */
function problemOf(reading: { ok: true } | { ok: false; problem: string }): string {
  if (reading.ok) {
    throw new Error('expected the reader to refuse this bundle');
  }
  return reading.problem;
}

describe('readPackageBundle', () => {
  it('reads a packaged result', () => {
    const reading = readPackageBundle(packaged);
    expect(reading).toEqual({ ok: true, value: packaged });
    if (reading.ok && reading.value.outcome === 'packaged') {
      expect(reading.value.override?.checks).toEqual(['metric:accuracy']);
    }
  });

  it('reads a refusal with the failed checks as data', () => {
    const reading = readPackageBundle(refused);
    expect(reading.ok).toBe(true);
    if (reading.ok && reading.value.outcome !== 'packaged') {
      expect(reading.value.outcome).toBe('refused');
      expect(reading.value.error).toBe('ChecksFailedError');
      expect(reading.value.failed_checks.map(c => [c.name, c.status])).toEqual([['metric:accuracy', 'fail']]);
    }
  });

  it('reads an unexpected error', () => {
    const reading = readPackageBundle(packageError);
    expect(reading.ok && reading.value.outcome).toBe('error');
    expect(reading.ok && reading.value.status).toBe('fail');
  });

  it('reads the JSON when a frontend hands it over as a string', () => {
    expect(readPackageBundle(JSON.stringify(refused))).toEqual(readPackageBundle(refused));
  });

  it('reads version 1 (before refusals were data) as packaged', () => {
    const { outcome: _outcome, ...v1 } = { ...packaged, version: 1 };
    const reading = readPackageBundle(v1);
    expect(reading.ok && reading.value.outcome).toBe('packaged');
  });

  it('says which side to upgrade when the versions differ', () => {
    const newer = problemOf(readPackageBundle({ ...refused, version: PACKAGE_VERSION + 1 }));
    expect(newer).toContain(`version ${PACKAGE_VERSION + 1}, newer than this extension`);
    expect(newer).toContain('pip install -U nbprod');
    const older = problemOf(readPackageBundle({ ...refused, version: 0 }));
    expect(older).toContain('older than this extension');
    expect(older).toContain("kernel's environment");
  });

  it('refuses what is not an nbprod bundle, saying what it got', () => {
    expect(problemOf(readPackageBundle(undefined))).toContain('not a JSON object');
    expect(problemOf(readPackageBundle('{not json'))).toContain('not a JSON object');
    expect(problemOf(readPackageBundle([1, 2]))).toContain('not a JSON object');
    expect(problemOf(readPackageBundle({ version: '2' }))).toContain('no version number ("2")');
  });

  it('refuses an outcome it does not know rather than drawing it wrong', () => {
    expect(problemOf(readPackageBundle({ ...refused, outcome: 'queued' }))).toContain(
      'outcome this extension does not know ("queued")'
    );
    expect(problemOf(readPackageBundle({ ...refused, outcome: undefined }))).toContain('does not know');
  });

  it('names every malformed field of a refusal', () => {
    const problem = problemOf(
      readPackageBundle({ ...refused, reason: 3, failed_checks: [{ name: 'x', status: 'broken', message: '' }, 7] })
    );
    expect(problem).toContain('reason (want string, got 3)');
    expect(problem).toContain('failed_checks[0].status (want status, got "broken")');
    expect(problem).toContain('failed_checks[1] is not an object');
    expect(problemOf(readPackageBundle({ ...refused, failed_checks: 'metric:accuracy' }))).toContain(
      'failed_checks (want array'
    );
  });

  it('names the malformed fields of a packaged result', () => {
    const problem = problemOf(readPackageBundle({ ...packaged, path: null, status: 'ok' }));
    expect(problem).toContain('path (want string, got null)');
    expect(problem).toContain('status (want status, got "ok")');
  });

  it('cuts long values it echoes', () => {
    const problem = problemOf(readPackageBundle({ ...refused, reason: { text: 'x'.repeat(500) } }));
    expect(problem.length).toBeLessThan(400);
    expect(problem).toContain('…');
  });
});

describe('readCheckBundle and readStatusBundle', () => {
  it('read the real bundles', () => {
    const checks = readCheckBundle(check);
    expect(checks.ok && checks.value.results.map(r => r.name)).toEqual(['metric:accuracy']);
    const captures = readStatusBundle(status);
    expect(captures.ok && captures.value.captures.map(c => c.capture)).toEqual([
      'name',
      'train snapshot',
      'valid snapshot',
      'features',
      'model'
    ]);
  });

  it('refuse other versions and malformed results', () => {
    expect(problemOf(readCheckBundle({ ...check, version: 2 }))).toContain(`This ${CHECK_MIME} output has version 2`);
    expect(problemOf(readCheckBundle({ ...check, results: [{ name: 'a' }] }))).toContain(
      'results[0].status (want status, got undefined)'
    );
    expect(problemOf(readStatusBundle({ ...status, checks: null }))).toContain('checks (want array, got null)');
  });
});

describe('helpers', () => {
  it('isCheckStatus knows the four statuses only', () => {
    expect(['pass', 'warn', 'fail', 'skip'].every(isCheckStatus)).toBe(true);
    expect([undefined, 'ok', 'FAIL', 1, 'toString'].some(isCheckStatus)).toBe(false);
  });

  it('parseJson parses strings and passes objects through', () => {
    expect(parseJson('{"a": 1}')).toEqual({ a: 1 });
    expect(parseJson('nope')).toBeUndefined();
    const value = { a: 1 };
    expect(parseJson(value)).toBe(value);
  });

  it('versionProblem names the MIME type and the versions read', () => {
    expect(versionProblem(PACKAGE_MIME, 9, [1, 2])).toBe(
      `This ${PACKAGE_MIME} output has version 9, newer than this extension (this extension reads ` +
        'version 1 or 2). Upgrade nbprod where JupyterLab runs (pip install -U nbprod) and reload the page.'
    );
  });
});
