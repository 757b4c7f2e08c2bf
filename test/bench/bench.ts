/**
 * npm run bench: what strict-groups-runtime costs on top of plain runc, next
 * to a bare start of the same Node, all measured in one run on this machine.
 *
 * - passthrough: `state ID` of a created container (every CRI poll pays this);
 * - create: `create` of the seed bundle under Strict (config.json rewritten,
 *   image /etc files read), each run on a fresh copy of the original config.
 *
 * Runs alternate between the variants so that drift hits all of them alike;
 * medians are reported. Needs root, runc and busybox-static, like the tests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SHIM, makeBundle } from '../helpers/oci';

const shimPath = SHIM;
const nodePath = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const runs = Number(process.env['BENCH_RUNS'] ?? 40);

const work = mkdtempSync(join(tmpdir(), 'sg-bench-'));
const stateRoot = join(work, 'state');
const config = join(work, 'strict-groups.json');
writeFileSync(config, JSON.stringify({ runtime: 'runc', auditLog: join(work, 'audit.log') }));
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', STRICT_GROUPS_CONFIG: config };

const bundle = makeBundle(join(work, 'bundle'), { args: ['sleep', '1000'] });
const pristine = join(work, 'config.json.orig');
copyFileSync(join(bundle, 'config.json'), pristine);

function timed(file: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(file, args, { env, stdio: 'ignore' });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.status ?? result.signal}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function main(): void {
  execFileSync('runc', ['--root', stateRoot, 'create', '--bundle', bundle, 'bench-state'], { stdio: 'ignore' });
  const samples: Record<string, number[]> = { node: [], runcState: [], shimState: [], runcCreate: [], shimCreate: [] };

  const create = (file: string, key: 'runcCreate' | 'shimCreate', i: number): void => {
    copyFileSync(pristine, join(bundle, 'config.json'));
    const id = `bench-${key}-${i}`;
    samples[key]!.push(timed(file, ['--root', stateRoot, 'create', '--bundle', bundle, id]));
    execFileSync('runc', ['--root', stateRoot, 'delete', '--force', id], { stdio: 'ignore' });
  };

  for (let i = -3; i < runs; i++) {
    // Three warm-up rounds fill the page cache and are not counted.
    const round = {
      node: timed(nodePath, ['-e', '0']),
      runcState: timed('runc', ['--root', stateRoot, 'state', 'bench-state']),
      shimState: timed(shimPath, ['--root', stateRoot, 'state', 'bench-state']),
    };
    if (i >= 0) for (const [key, value] of Object.entries(round)) samples[key]!.push(value);
    if (i >= 0) {
      create('runc', 'runcCreate', i);
      create(shimPath, 'shimCreate', i);
    }
  }

  const m = Object.fromEntries(Object.entries(samples).map(([key, values]) => [key, median(values)])) as Record<string, number>;
  const stateOverhead = m['shimState']! - m['runcState']!;
  const createOverhead = m['shimCreate']! - m['runcCreate']!;
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  const lines = [
    `strict-groups-runtime benchmark: ${runs} alternating runs each, medians (${process.arch}, ${execFileSync('nproc').toString().trim()} CPUs)`,
    `  bare Node start (node -e 0, Node ${execFileSync(nodePath, ['--version']).toString().trim()}): ${ms(m['node']!)}`,
    `  state  : runc ${ms(m['runcState']!)}, shim ${ms(m['shimState']!)}; extra ${ms(stateOverhead)} = ${(stateOverhead / m['node']!).toFixed(2)}x a bare Node start, shim/runc ${(m['shimState']! / m['runcState']!).toFixed(2)}x`,
    `  create : runc ${ms(m['runcCreate']!)}, shim ${ms(m['shimCreate']!)}; extra ${ms(createOverhead)} = ${(createOverhead / m['node']!).toFixed(2)}x a bare Node start, shim/runc ${(m['shimCreate']! / m['runcCreate']!).toFixed(2)}x`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

try {
  main();
} finally {
  spawnSync('runc', ['--root', stateRoot, 'delete', '--force', 'bench-state'], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
