/**
 * The playground's build. `root` is site/; `base: './'` makes every URL in the built
 * page relative, so site/dist/ works from any static host under any sub-path. The
 * library is imported as users import it ('nesterov'); the 'nesterov-source' condition
 * maps that to src/ through package.json's exports, as the tests do.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  publicDir: false,
  resolve: { conditions: ['nesterov-source', ...defaultClientConditions] },
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
  // The formula worker (site/formula-worker.ts) is its own ES module file, loaded from the
  // page's origin as the CSP's worker-src 'self' asks; never inlined as a blob: URL.
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
  },
});
