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
  // Processors and the rules of each resource stay readable at a glance.
  {
    files: ['src/worker/**', 'src/domain/**'],
    rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }] },
  },
);
