// ESLint: typescript-eslint's type-checked recommended rules over every TypeScript file of the
// project, each checked with the tsconfig that builds it. `npm run lint` runs it, with knip.
// A rule turned off says why in one line; a single deliberate exception is an inline
// `eslint-disable-next-line rule -- why` at its place.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Tests and benchmarks: the code that drives servers and peers from outside. */
const testsAndBenchmarks = ['test/**', 'bench/**', 'testing.ts', 'adapters/amqp/test/**', 'adapters/amqp/bench/**', 'client/test/**'];

export default tseslint.config(
  { ignores: ['**/dist/', '**/node_modules/', 'data/', 'tmp/'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // The tsconfig nearest each file, with its project references: tsconfig.build.json for the
        // package, samples/, client/ and adapters/amqp/ for theirs, tsconfig.json for tests and benchmarks.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // tsc's noUnusedLocals and noUnusedParameters check this already, with `_` for a parameter kept for its place.
      '@typescript-eslint/no-unused-vars': 'off',
      // An `async` method without `await` implements a port that returns a promise: a throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // The few `any`s erase the options type of plugins and routes, checked at run time by their schemas; no-unsafe-* still watch their use.
      '@typescript-eslint/no-explicit-any': 'off',
      // Callbacks are passed as objects of functions (`{ onData, onClose }`), declared with method shorthand, by design.
      '@typescript-eslint/unbound-method': 'off',
      // `ok ? resolve() : reject(error)` as a statement is the house style for settling a promise.
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true, allowShortCircuit: true }],
      // A rejection passes on what a caller's callback threw, as it came.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    files: testsAndBenchmarks,
    rules: {
      // Tests read JSON answers and the untyped events of peers (rhea) as `any`, and assert on them at run time.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // An assertion's message prints whatever it was given: an array, a function, a number.
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // An async listener that throws crashes the worker or the test run with its stack: what a test or benchmark should do.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    files: ['plugins/rest/**'],
    rules: {
      // koa types `next()` as Promise<any>; a middleware returns it, as koa's own documentation does.
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
