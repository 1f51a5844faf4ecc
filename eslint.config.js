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
      '.cache/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The server's layers (../shared/ARCHITECTURE.md): imports run downward only, runtime <-
  // playground <- http, and the CLI uses the runtime (the server's entry only by a lazy
  // import() inside `serve`, which this rule does not see). The wire protocol imports nothing.
  ...layer('server/src/runtime/**', ['playground', 'http', 'cli']),
  ...layer('server/src/playground/**', ['http', 'cli']),
  ...layer('server/src/cli/**', ['http', 'playground']),
  {
    files: ['server/src/protocol/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['*'], message: 'the protocol imports nothing' }] }],
    },
  },
);

function layer(files, forbidden) {
  return [
    {
      files: [files],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: forbidden.map((room) => ({
              group: [`**/${room}/*`],
              message: `imports run downward only: runtime <- playground <- http; the CLI uses the runtime`,
            })),
          },
        ],
      },
    },
  ];
}
