// Lint: the recommended JavaScript and TypeScript rules, and the layers' import rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (message, ...group) => ({ 'no-restricted-imports': ['error', { patterns: [{ group, message }] }] });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: { process: 'readonly', setTimeout: 'readonly', console: 'readonly' } } },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // The layers: api and worker on top never import each other; nothing below imports them.
  { files: ['src/api/**'], rules: layer('src/api never imports src/worker: shared rules live in src/domain.', '**/worker/**') },
  { files: ['src/worker/**'], rules: layer('src/worker never imports src/api: shared rules live in src/domain.', '**/api/**') },
  {
    files: ['src/domain/**', 'src/core/**', 'src/providers/**'],
    rules: layer('Lower layers never import src/api or src/worker.', '**/api/**', '**/worker/**'),
  },
  // The wire contract sits just above core: types of core's records, and core's errors, nothing else.
  {
    files: ['src/openai/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/api/**', '**/worker/**', '**/domain/**', '**/providers/**', '**/emulator/**', '**/client/**'],
              message: 'src/openai is the OpenAI wire contract: it imports only core/errors and types from core.',
            },
            {
              group: ['../core/*', '../core/**', '!../core/errors.js'],
              allowTypeImports: true,
              message: 'src/openai takes only types from core, and its errors.',
            },
          ],
        },
      ],
    },
  },
  // The CLI client talks to Ferry over HTTP, as any client does.
  {
    files: ['src/client/**'],
    rules: layer(
      'src/client speaks to Ferry over HTTP: it may use the wire contract (src/openai) and the openai SDK, not the service inside.',
      '**/api/**',
      '**/worker/**',
      '**/domain/**',
      '**/providers/**',
      '**/core/**',
    ),
  },
  // Every function stays readable at a glance.
  { files: ['src/**'], rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }] } },
  { files: ['bench/**'], rules: { 'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }] } },
);
