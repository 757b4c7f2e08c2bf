import { ShimError } from '../errors';

/**
 * How a node says it has the handler, with no API credentials: a Node
 * Feature Discovery local feature file, which nfd-worker turns into node
 * labels, and which runtimeclass.yaml's scheduling.nodeSelector selects on.
 * Where NFD is not installed the file is harmless, and the same labels can be
 * set by hand. Pure: what to write, not the writing.
 */

/** nfd-worker's local source reads every file here that does not start with "." (atomic writes leave dot files). */
export const FEATURES_DIR = '/etc/kubernetes/node-feature-discovery/features.d';
export const FEATURE_FILE = `${FEATURES_DIR}/strict-groups`;

/**
 * Full names: NFD prefixes bare names with feature.node.kubernetes.io/ today,
 * but says it will stop (the DisableAutoPrefix feature gate).
 */
export const HANDLER_LABEL = 'feature.node.kubernetes.io/strict-groups.handler';
export const VERSION_LABEL = 'feature.node.kubernetes.io/strict-groups.version';

/** A Kubernetes label value: at most 63 characters, alphanumeric at both ends, "-", "_" and "." between. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** The node's labels while the handler is installed: the handler's name, and the version that installed it. */
export function nodeLabels(handler: string, version: string): Record<string, string> {
  for (const [what, value] of [['handler', handler], ['version', version]] as const) {
    if (!isLabelValue(value)) throw new ShimError(`the ${what} ${JSON.stringify(value)} cannot be a node label value`);
  }
  return { [HANDLER_LABEL]: handler, [VERSION_LABEL]: version };
}

/** The feature file's text: one `name=value` line per label, in NFD's local source format. */
export function featureFile(handler: string, version: string): string {
  const lines = Object.entries(nodeLabels(handler, version)).map(([name, value]) => `${name}=${value}`);
  return [
    '# Written by the strict-groups installer DaemonSet (deploy/daemonset.yaml) once the',
    `# runtime handler "${handler}" is in place; removed by its cleanup DaemonSet.`,
    ...lines,
    '',
  ].join('\n');
}
