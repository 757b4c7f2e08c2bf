/**
 * Pod start latency through the CRI, as the kubelet starts a pod: the seed
 * pod (Strict annotation) under the `strict-groups` handler and under plain
 * `runc`, same image and spec, on a real containerd (BENCH_CONTAINERD: 1.6,
 * the default, 1.7 or 2.1). Two times per pod: the sandbox (RunPodSandbox:
 * the pause container's create and start) and the container (CreateContainer
 * and StartContainer: its create, where the shim asks containerd's CRI what
 * the pod declared, and its start). Each is a real call of the runtime, so
 * these are the shim's costs as a pod sees them.
 *
 * BENCH_PREVIOUS_SHIM names another build of the binary (an earlier commit's
 * dist/strict-groups-runtime, say), run as a third handler in the same
 * containerd, so that a change's cost is measured in one run.
 *
 * Pods alternate between the handlers so that drift hits them alike; each is
 * removed before the next starts; medians are reported, with a bare Node
 * start measured in the same run. BENCH_PODS sets the pods per handler
 * (default 15). Needs what the containerd suites need.
 *
 *   node_modules/node/bin/node --import=@tapjs/typescript/import test/bench/pod-start.ts
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ContainerdNode, HANDLER, prerequisites, type PodSpec } from '../helpers/containerd';
import { POLICY, ROOT } from '../helpers/oci';
import type { ContainerdLine } from '../helpers/runtimes';

/** The Node the shim is built from; its bare start is the shim's floor per call. */
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const PREVIOUS = 'strict-groups-previous';
/** Unmeasured rounds first: page cache, the shim binary's first load. */
const WARM_UP = 2;

function podCount(): number {
  const value = process.env['BENCH_PODS'] ?? '15';
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new Error(`BENCH_PODS must be a positive integer, not ${value}`);
  return count;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const since = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

function timedNodeStart(): number {
  const start = process.hrtime.bigint();
  execFileSync(NODE, ['-e', '0'], { stdio: 'ignore' });
  return since(start);
}

interface PodTimes {
  sandbox: number;
  container: number;
}

/** Starts one pod as the kubelet does, timing its two halves, then tears it down. */
async function timedStart(node: ContainerdNode, spec: PodSpec): Promise<PodTimes> {
  const started = process.hrtime.bigint();
  const sandbox = await node.runSandbox(spec);
  const sandboxMs = since(started);
  const containerStarted = process.hrtime.bigint();
  const id = await node.createContainer(sandbox);
  await node.cri.startContainer(id);
  const containerMs = since(containerStarted);
  await node.removePod(sandbox);
  return { sandbox: sandboxMs, container: containerMs };
}

async function main(): Promise<void> {
  const line = (process.env['BENCH_CONTAINERD'] ?? '1.6') as ContainerdLine;
  const ready = prerequisites(line);
  if (ready.skip !== false) throw new Error(`pod-start bench ${ready.skip}`);
  const previous = process.env['BENCH_PREVIOUS_SHIM'];
  const handlers = ['runc', HANDLER, ...(previous === undefined ? [] : [PREVIOUS])];
  const pods = podCount();
  const node = await ContainerdNode.start({ build: ready.build, extraHandlers: previous === undefined ? [] : [{ name: PREVIOUS, binary: previous }] });
  try {
    const samples = new Map<string, PodTimes[]>(handlers.map((handler) => [handler, []]));
    const nodeStarts: number[] = [];
    for (let round = -WARM_UP; round < pods; round++) {
      for (const handler of handlers) {
        const spec: PodSpec = {
          name: `bench-${handler}-${round + WARM_UP}`,
          runtimeHandler: handler,
          annotations: { [POLICY]: 'Strict' },
          runAsUser: 1000,
          supplementalGroups: [60000],
          command: ['sleep', '3600'],
        };
        const times = await timedStart(node, spec);
        if (round >= 0) samples.get(handler)!.push(times);
      }
      const bare = timedNodeStart();
      if (round >= 0) nodeStarts.push(bare);
    }

    const version = await node.cri.version();
    const bare = median(nodeStarts);
    const of = (handler: string, half: keyof PodTimes): number => median(samples.get(handler)!.map((times) => times[half]));
    const ms = (value: number): string => `${value.toFixed(1).padStart(7)} ms`;
    const x = (value: number): string => `${(value / bare).toFixed(2)}x`;
    const row = (handler: string): string => {
      const sandbox = of(handler, 'sandbox');
      const container = of(handler, 'container');
      if (handler === 'runc') return `  ${handler.padEnd(22)} sandbox ${ms(sandbox)}  container ${ms(container)}`;
      const extraSandbox = sandbox - of('runc', 'sandbox');
      const extraContainer = container - of('runc', 'container');
      return (
        `  ${handler.padEnd(22)} sandbox ${ms(sandbox)}  container ${ms(container)}` +
        `   extra: sandbox ${ms(extraSandbox)} (${x(extraSandbox)}), container ${ms(extraContainer)} (${x(extraContainer)}) a bare Node start`
      );
    };
    const lines = [
      `pod start through the CRI, ${version.runtime_name} ${version.runtime_version}, ${pods} alternating pods per handler, medians ` +
        `(${process.arch}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs); each half is two runtime calls (create, start)`,
      `  bare Node start (node -e 0, same run) ${ms(bare)}`,
      ...handlers.map(row),
    ];
    if (previous !== undefined) {
      const growth = of(HANDLER, 'container') - of(PREVIOUS, 'container');
      lines.push(`  the container's create and start through this build against ${previous}: ${ms(growth).trim()} = ${x(growth)} a bare Node start`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await node.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
