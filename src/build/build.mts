/**
 * npm run build: validators, a typecheck, one CommonJS bundle, then a Node single executable
 * application at dist/strict-groups-runtime. Runs on the Node 24 of the node@24
 * devDependency, whose binary becomes the SEA: blob and binary must match.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateValidators } from './validators.mts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
const bundle = join(dist, 'strict-groups-runtime.cjs');
const blob = join(dist, 'strict-groups-runtime.blob');
const binary = join(dist, 'strict-groups-runtime');
/** postject's marker for the SEA blob; fixed by Node. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

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

const seaConfig = join(dist, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    // NODE_OPTIONS from the caller's environment must not reach the runtime.
    execArgvExtension: 'none',
    // Nothing may be printed on stderr: it is the container's during create/exec.
    execArgv: ['--no-warnings'],
  }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });

// Built beside the target and renamed over it: a plain node binary must
// never stand at dist/strict-groups-runtime, even while a build runs.
const unfinished = `${binary}.${process.pid}.tmp`;
try {
  copyFileSync(process.execPath, unfinished);
  chmodSync(unfinished, 0o755);
  execFileSync(
    join(root, 'node_modules', '.bin', 'postject'),
    [unfinished, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE],
    // postject warns about ELF notes it does not know; only failures matter.
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  renameSync(unfinished, binary);
} finally {
  rmSync(unfinished, { force: true });
}
rmSync(blob);
rmSync(seaConfig);
