/**
 * npm run bench: what strict-groups-runtime costs on top of plain runc, next
 * to a bare start of the same Node, all measured in one run on this machine.
 *
 * - state: `state ID` of a created container (every CRI poll pays this);
 * - create: `create` of the seed bundle under Strict (config.json rewritten,
 *   image /etc files read), each on a fresh copy of the original config;
 * - exec: `exec --process FILE ID` of `true` in a running Strict container,
 *   as an exec probe makes it, each with a fresh process file.
 *
 * Every call is run by test/bench/rusage.py, one long-lived process that
 * forks, execs and wait4s: wall time, the CPU time (user + sys) of the call's
 * whole process tree to the microsecond, and its peak RSS; its fork counts
 * alike for every variant. Calls alternate between
 * the variants so that drift hits all of them alike; medians are reported.
 * The probe-load line turns the CPU per exec into what N exec probes per
 * second cost a node. BENCH_RUNS sets the rounds (default 40), BENCH_PROBES
 * the probes per second (default 10: a hundred pods probing every 10 s).
 * Needs root, runc, busybox-static and python3.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, SEED_GIDS, SHIM, makeBundle, processFile } from '../helpers/oci';

const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 40);
const PROBES = Number(process.env['BENCH_PROBES'] ?? 10);

const work = mkdtempSync(join(tmpdir(), 'sg-bench-'));
/**
 * Bundles and runtime state on a tmpfs, as on a node (/run): the rewrite's
 * fsyncs cost nothing there, and on this machine's disk they would dominate.
 */
const run = join(work, 'run');
mkdirSync(run);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'tmpfs', run]);
const stateRoot = join(run, 'state');
const configFile = join(work, 'strict-groups.json');
writeFileSync(configFile, JSON.stringify({ runtime: 'runc', auditLog: join(work, 'audit.log') }));
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', STRICT_GROUPS_CONFIG: configFile };
interface Sample {
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
}

const runner = spawn('python3', [join(__dirname, 'rusage.py')], { env, stdio: ['pipe', 'pipe', 'inherit'] });
const answers = createInterface({ input: runner.stdout })[Symbol.asyncIterator]();

/** One call: wall, user+sys CPU and peak RSS of its process tree. */
async function timed(file: string, args: string[]): Promise<Sample> {
  const program = file.startsWith('/') ? file : execFileSync('sh', ['-c', 'command -v "$1"', 'sh', file], { encoding: 'utf8' }).trim();
  runner.stdin.write(JSON.stringify([program, ...args]) + '\n');
  const answer = await answers.next();
  if (answer.done === true) throw new Error('test/bench/rusage.py ended');
  const { status, ...sample } = JSON.parse(answer.value) as Sample & { status: number };
  if (status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${status}`);
  return sample;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

type Variant = 'node' | 'runcState' | 'shimState' | 'runcCreate' | 'shimCreate' | 'runcExec' | 'shimExec';

async function main(): Promise<void> {
  const createBundle = makeBundle(join(run, 'create'), { args: ['sleep', '1000'] });
  const pristine = join(work, 'config.json.orig');
  copyFileSync(join(createBundle, 'config.json'), pristine);
  // A running Strict container, created through the shim, for state and exec.
  const running = makeBundle(join(run, 'running'), { args: ['sleep', '100000'] });
  execFileSync(SHIM, ['--root', stateRoot, 'run', '--detach', '--bundle', running, 'bench'], { env, stdio: 'ignore' });

  const samples = Object.fromEntries((['node', 'runcState', 'shimState', 'runcCreate', 'shimCreate', 'runcExec', 'shimExec'] as Variant[]).map((v) => [v, [] as Sample[]])) as Record<Variant, Sample[]>;
  const create = async (file: string, i: number): Promise<Sample> => {
    copyFileSync(pristine, join(createBundle, 'config.json'));
    const id = `bench-create-${i}`;
    const sample = await timed(file, ['--root', stateRoot, 'create', '--bundle', createBundle, id]);
    execFileSync('runc', ['--root', stateRoot, 'delete', '--force', id], { stdio: 'ignore' });
    return sample;
  };
  const exec = (file: string): Promise<Sample> => timed(file, ['--root', stateRoot, 'exec', '--process', processFile(run, ['true'], SEED_GIDS), 'bench']);

  // Three warm-up rounds fill the page cache and are not counted.
  for (let i = -3; i < RUNS; i++) {
    const round: Record<Variant, Sample> = {
      node: await timed(NODE, ['-e', '0']),
      runcState: await timed('runc', ['--root', stateRoot, 'state', 'bench']),
      shimState: await timed(SHIM, ['--root', stateRoot, 'state', 'bench']),
      runcCreate: await create('runc', 2 * i + 100),
      shimCreate: await create(SHIM, 2 * i + 101),
      runcExec: await exec('runc'),
      shimExec: await exec(SHIM),
    };
    if (i >= 0) for (const variant of Object.keys(round) as Variant[]) samples[variant].push(round[variant]);
  }

  const m = (variant: Variant, field: keyof Sample): number => median(samples[variant].map((sample) => sample[field]));
  const bare = m('node', 'wallMs');
  const ms = (value: number): string => `${value.toFixed(1).padStart(6)} ms`;
  const mb = (kb: number): string => `${(kb / 1024).toFixed(0).padStart(3)} MB`;
  const row = (name: string, runc: Variant, shim: Variant): string => {
    const extra = m(shim, 'wallMs') - m(runc, 'wallMs');
    return (
      `  ${name.padEnd(7)} runc ${ms(m(runc, 'wallMs'))}  shim ${ms(m(shim, 'wallMs'))}  extra ${ms(extra)} = ${(extra / bare).toFixed(2)}x a bare Node start` +
      `   CPU runc ${ms(m(runc, 'cpuMs'))}  shim ${ms(m(shim, 'cpuMs'))}   peak RSS runc ${mb(m(runc, 'maxRssKb'))}  shim ${mb(m(shim, 'maxRssKb'))}`
    );
  };
  const probeCpu = (variant: Variant): string => `${((PROBES * m(variant, 'cpuMs')) / 10).toFixed(1)}% of a CPU`;
  const lines = [
    `strict-groups-runtime benchmark: ${RUNS} alternating rounds, medians (${process.arch}, ${execFileSync('nproc').toString().trim()} CPUs, ${execFileSync(NODE, ['--version']).toString().trim()})`,
    `  bare Node start (node -e 0): wall ${ms(bare)}  CPU ${ms(m('node', 'cpuMs'))}  peak RSS ${mb(m('node', 'maxRssKb'))}`,
    row('state', 'runcState', 'shimState'),
    row('create', 'runcCreate', 'shimCreate'),
    row('exec', 'runcExec', 'shimExec'),
    `  probe load: ${PROBES} exec probes a second cost ${probeCpu('shimExec')} through the shim, ${probeCpu('runcExec')} through runc alone`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    runner.stdin.end();
    spawnSync('runc', ['--root', stateRoot, 'delete', '--force', 'bench'], { stdio: 'ignore' });
    spawnSync('umount', [run], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  });
