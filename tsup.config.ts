import { defineConfig } from 'tsup';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One entry; every command lives behind a dynamic import() so that esbuild splits it into
// its own chunk and `oz federate issue-token` loads only what signing a token needs.
export default defineConfig({
  entry: { cli: 'src/cli/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  splitting: true,
  treeshake: true,
  minify: false,
  sourcemap: false,
  clean: true,
  outDir: 'dist',
  define: { __OZ_VERSION__: JSON.stringify(version) },
  // Bundle the runtime dependencies too: resolving packages from node_modules at start-up
  // costs more than reading one larger chunk.
  noExternal: [/.*/],
  // commander is CommonJS and requires node built-ins; an ESM bundle has no \`require\` of its own.
  banner: { js: "import { createRequire as __ozCreateRequire } from 'node:module'; const require = __ozCreateRequire(import.meta.url);" },
});
