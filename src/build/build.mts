/**
 * npm run build: validators, a typecheck, one CommonJS bundle, then a Node single executable
 * application at dist/strict-groups-runtime. Runs on the Node 24 of the node@24
 * devDependency, whose binary becomes the SEA: blob and binary must match.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSea } from './sea.mts';
import { generateValidators } from './validators.mts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
const bundle = join(dist, 'strict-groups-runtime.cjs');
const binary = join(dist, 'strict-groups-runtime');

if (!process.version.startsWith('v24.')) {
  throw new Error(`build with Node 24 (the node@24 devDependency, as npm scripts do), not ${process.version}`);
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

generateValidators(root);
// Typecheck once the generated validators exist; esbuild only strips types.
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', root], { stdio: 'inherit' });
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  define: { STRICT_GROUPS_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
});

buildSea({ root, bundle, nodeBinary: process.execPath, output: binary, useCodeCache: true });
