/**
 * Differential: the shim against Kubernetes' native Strict.
 *
 * The oracle is containerd 2.1 itself with `supplemental_groups_policy =
 * Strict` in the CRI request (KEP-3619), on the plain runc handler: the
 * pod's primary gid and declared gids, nothing the image added. The subject
 * is the shim, through the strict-groups handler with the Strict annotation
 * and no native policy (a cluster before 1.31), behind containerd 1.6, 1.7
 * and 2.1. For every image x security context of the matrix
 * (differential-cases.ts), the container's `id -G` and an ExecSync `id -G`
 * must equal the oracle's; every difference is reported with version,
 * image, context, process, expected and got, and fails the case.
 *
 * Beside them, each version's plain Merge (the runc handler, no policy) is
 * recorded, to show what each case would leak without the shim.
 */
import t from 'tap';
import { ContainerdNode, HANDLER, prerequisites, type Pod, type PodSpec } from '../helpers/containerd';
import type { ContainerStatus } from '../helpers/cri';
import { POLICY } from '../helpers/oci';
import type { ContainerdBuild, ContainerdLine } from '../helpers/runtimes';
import { CASES, IMAGES, type DifferentialCase } from './differential-cases';

const ORACLE_LINE: ContainerdLine = '2.1';
const SUBJECT_LINES: readonly ContainerdLine[] = ['1.6', '1.7', '2.1'];
/**
 * Pods in flight per containerd at once; the three containerds run side by
 * side. On the 2-CPU test machines three at once per containerd was as
 * reliable but no faster (76 s against 70 s for the 140 pods, both runs on
 * a loaded machine): the CPUs, not the waits, are the limit.
 */
const PODS_AT_ONCE = 1;

/** The container prints its groups to the CRI log first, then stays up for exec. */
const ID_THEN_SLEEP = ['sh', '-c', 'id -G; exec sleep 3600'];

/** The oracle (native Strict, runc), the subject (the shim, Strict annotation), the control (Merge, runc). */
type Role = 'oracle' | 'subject' | 'merge';

/** What one pod showed: `id -G` of the container and of an exec, or why there was none. */
interface Observation {
  container: string;
  /** Not asked of the Merge control. */
  exec?: string;
  /** ContainerStatus.user: null where containerd predates it (1.6, 1.7). */
  user?: ContainerStatus['user'];
  /** The container's audit line under the shim: [containerType, policy, policySource]. */
  audit?: unknown[];
}

interface Difference {
  version: string;
  image: string;
  context: string;
  process: 'container' | 'exec';
  expected: string;
  got: string;
}

function podSpec(c: DifferentialCase, role: Role): PodSpec {
  const { context } = c;
  return {
    name: `${c.id}-${role}`,
    runtimeHandler: role === 'subject' ? HANDLER : 'runc',
    annotations: role === 'subject' ? { [POLICY]: 'Strict' } : {},
    image: IMAGES[c.image].name,
    ...(context.runAsUser !== undefined && { runAsUser: context.runAsUser }),
    ...(context.runAsGroup !== undefined && { runAsGroup: context.runAsGroup }),
    supplementalGroups: context.supplementalGroups,
    ...(role === 'oracle' && { supplementalGroupsPolicy: 'Strict' as const }),
    command: ID_THEN_SLEEP,
  };
}

/** Runs one pod and reads what it shows; a pod that fails to start is an observation too. */
async function observe(node: ContainerdNode, c: DifferentialCase, role: Role): Promise<Observation> {
  const spec = podSpec(c, role);
  let pod: Pod | undefined;
  try {
    pod = await node.runPod(spec);
    const observation: Observation = { container: await node.firstOutputLine(pod) };
    if (role === 'merge') return observation;
    observation.exec = (await node.exec(pod, ['id', '-G'])).split('\n')[0] ?? '';
    observation.user = (await node.containerStatus(pod)).user;
    if (role === 'subject') {
      const line = node.auditEntries(spec.name).find((entry) => entry['containerType'] === 'container');
      observation.audit = [line?.['containerType'], line?.['policy'], line?.['policySource']];
    }
    return observation;
  } catch (error) {
    const failed = `no output: ${(error as Error).message}`;
    return { container: failed, exec: failed };
  } finally {
    if (pod !== undefined) await node.removePod(pod);
  }
}

/** Runs `work` over `items`, `limit` at a time. */
async function inPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
}

const key = (line: ContainerdLine, role: Role, c: DifferentialCase): string => `${line}/${role}/${c.id}`;

const readiness = [...new Set([ORACLE_LINE, ...SUBJECT_LINES])].map((line) => ({ line, ...prerequisites(line) }));
const missing = readiness.flatMap((ready) => (ready.skip === false ? [] : [`containerd ${ready.line}: ${ready.skip}`]));

t.test('differential: the shim behind containerd 1.6, 1.7 and 2.1 against containerd 2.1 native Strict', { skip: missing.length > 0 ? missing.join('; ') : false }, async (t) => {
  const builds = new Map(readiness.map((ready) => [ready.line, ready.build as ContainerdBuild]));
  const images = Object.values(IMAGES);
  const started = Date.now();
  const nodes = new Map<ContainerdLine, ContainerdNode>();
  t.teardown(async () => {
    for (const node of nodes.values()) await node.stop();
  });
  // Side by side; every node that did start is torn down, whichever failed.
  const starts = await Promise.allSettled([...builds].map(async ([line, build]) => nodes.set(line, await ContainerdNode.start({ build, images }))));
  for (const start of starts) if (start.status === 'rejected') throw start.reason;
  const oracleNode = nodes.get(ORACLE_LINE)!;
  t.comment(`nodes up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${[...nodes.values()].map((node) => node.label).join(', ')}`);

  t.equal(await oracleNode.cri.supportsSupplementalGroupsPolicy(), true, `${oracleNode.label} says it implements SupplementalGroupsPolicy (StatusResponse.features)`);

  const observations = new Map<string, Observation>();
  const running = Date.now();
  await Promise.all(
    [...nodes].map(([line, node]) => {
      const roles: Role[] = line === ORACLE_LINE ? ['oracle', 'subject', 'merge'] : ['subject', 'merge'];
      const work = roles.flatMap((role) => CASES.map((c) => ({ role, c })));
      return inPool(work, PODS_AT_ONCE, async ({ role, c }) => {
        observations.set(key(line, role, c), await observe(node, c, role));
      });
    }),
  );
  t.comment(`${observations.size} pods in ${((Date.now() - running) / 1000).toFixed(1)} s, ${PODS_AT_ONCE} at once per containerd`);

  const seed = CASES.find((c) => c.id === 'seed')!;
  // The anchor: Kubernetes' own e2e case for Strict (FACTS.md). An oracle
  // that merged would make every comparison meaningless.
  t.equal(observations.get(key(ORACLE_LINE, 'oracle', seed))?.container, '1000 60000', 'the oracle gives the seed pod 1000 60000, as the Kubernetes e2e test expects');
  // And the leak is there to remove: every version merges the seed image's gid.
  for (const line of SUBJECT_LINES) {
    t.equal(observations.get(key(line, 'merge', seed))?.container, '1000 50000 60000', `${nodes.get(line)!.label} merges the seed image's 50000 without the shim`);
  }

  const differences: Difference[] = [];
  for (const c of CASES) {
    const image = IMAGES[c.image].name;
    t.test(`${c.id}: ${image} x ${c.context.title}`, async (t) => {
      const oracle = observations.get(key(ORACLE_LINE, 'oracle', c))!;
      t.comment(`oracle (${oracleNode.label}, native Strict, runc): container ${oracle.container} | exec ${oracle.exec}`);
      t.equal(oracle.exec, oracle.container, 'the oracle\'s exec process has the container\'s groups');
      const linux = oracle.user?.linux;
      t.comment(`oracle ContainerStatus.user: ${JSON.stringify(linux ?? null)}`);
      t.same(
        [...new Set(linux?.supplemental_groups ?? [])].sort((a, b) => a - b),
        [...new Set(oracle.container.split(' ').map(Number))].sort((a, b) => a - b),
        'the oracle\'s ContainerStatus.user supplemental_groups, as a set, are its id -G',
      );

      for (const line of SUBJECT_LINES) {
        const node = nodes.get(line)!;
        t.comment(`${node.label} Merge (runc, no policy): ${observations.get(key(line, 'merge', c))!.container}`);
        const got = observations.get(key(line, 'subject', c))!;
        if (got.user) t.comment(`${node.label} subject's ContainerStatus.user (containerd's own spec, not the rewritten config.json): ${JSON.stringify(got.user.linux)}`);
        t.same(got.audit, ['container', 'Strict', 'annotation'], `${node.label}: the container went through the shim under Strict`);
        for (const which of ['container', 'exec'] as const) {
          const difference: Difference = { version: node.label, image, context: c.context.title, process: which, expected: oracle[which] ?? '', got: got[which] ?? '' };
          if (got[which] !== oracle[which]) differences.push(difference);
          t.equal(got[which], oracle[which], `${difference.version}, ${which}: id -G as the oracle's (image ${image}; ${difference.context})`);
        }
      }
    });
  }

  t.test('summary', async (t) => {
    t.comment(`${differences.length} differences from the oracle in ${CASES.length} cases x ${SUBJECT_LINES.length} containerd versions x (container, exec):`);
    for (const d of differences) {
      t.comment(`  ${d.version} | ${d.image} | ${d.context} | ${d.process} | expected ${d.expected} | got ${d.got}`);
    }
    t.same(differences, [], 'no differences from the oracle');
  });
});
