// Lint: typescript-eslint's recommended rules over the server, the web app and the
// tests; formatting is prettier's job (npm run format), checked by `npm run lint`.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      'native/build/**',
      'node_modules/**',
      'rootfs/images/**',
      'e2e/artifacts/**',
      'e2e/test-results/**',
      'bench/work/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
