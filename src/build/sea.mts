/**
 * A Node single executable application: the bundle as a SEA blob, injected
 * with postject into a copy of a node binary of the same Node version (blob
 * and binary must match). The code cache is V8's compiled code for the
 * architecture that makes the blob, so it is only for a binary of this
 * machine's architecture; a cross build goes without one.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** postject's marker for the SEA blob; fixed by Node. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export interface SeaBuild {
  root: string;
  /** The CommonJS bundle to run. */
  bundle: string;
  /** The node binary to inject into: this process's own, or another architecture's of the same version. */
  nodeBinary: string;
  output: string;
  useCodeCache: boolean;
}

export function buildSea({ root, bundle, nodeBinary, output, useCodeCache }: SeaBuild): void {
  const blob = `${output}.blob`;
  const seaConfig = `${output}.sea-config.json`;
  // Built beside the target and renamed over it: a plain node binary must
  // never stand at the output path, even while a build runs.
  const unfinished = `${output}.${process.pid}.tmp`;
  try {
    writeFileSync(
      seaConfig,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        useCodeCache,
        // NODE_OPTIONS from the caller's environment must not reach the runtime.
        execArgvExtension: 'none',
        // Nothing may be printed on stderr: it is the container's during create/exec.
        execArgv: ['--no-warnings'],
      }),
    );
    execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });
    copyFileSync(nodeBinary, unfinished);
    chmodSync(unfinished, 0o755);
    execFileSync(
      join(root, 'node_modules', '.bin', 'postject'),
      [unfinished, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE],
      // postject warns about ELF notes it does not know; only failures matter.
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    renameSync(unfinished, output);
  } finally {
    for (const path of [unfinished, blob, seaConfig]) rmSync(path, { force: true });
  }
}
