/**
 * Unit tests of the extension's pure TypeScript (the kernel contract, cell parsing, the kernel's
 * replies): jest with ts-jest, as JupyterLab extensions use. They run in Node without a DOM;
 * the widgets are exercised in a real JupyterLab by tests/test_extension.py.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};
