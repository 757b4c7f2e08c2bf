import { totals, type ContainerReport } from './classify';

/**
 * The report's three forms: a table for people, JSON for programs, and the
 * Prometheus text format for node-exporter's textfile collector. Pure.
 */

export interface RootReport {
  root: string;
  runtime: string;
  containers: ContainerReport[];
  /** Why this root could not be listed, if it could not. */
  error?: string;
}

export interface Report {
  generatedAt: Date;
  roots: RootReport[];
}

const list = (gids: readonly number[] | undefined): string => (gids === undefined || gids.length === 0 ? '-' : gids.join(','));

/** One line per container, in columns; unmanaged containers say so. */
export function formatTable(report: Report): string {
  const header = ['NAMESPACE', 'POD', 'CONTAINER', 'TYPE', 'POLICY', 'SOURCE', 'RULE', 'REMOVED', 'WOULD REMOVE', 'GIDS', 'ID'];
  const rows: string[][] = [];
  for (const root of report.roots) {
    for (const c of root.containers) {
      const policy = !c.managed ? 'not through strict-groups' : (c.policy ?? '?');
      rows.push([
        c.namespace ?? '-',
        c.pod ?? '-',
        c.container ?? '-',
        c.containerType ?? '-',
        c.wouldRefuse !== undefined ? `${policy} (Strict would refuse)` : policy,
        c.policySource ?? '-',
        c.rule ?? '-',
        list(c.removed),
        list(c.wouldRemove),
        c.problem !== undefined ? `? (${c.problem})` : list(c.additionalGids),
        c.id.slice(0, 12),
      ]);
    }
  }
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  const out = [line(header), ...rows.map(line)];
  for (const root of report.roots) {
    if (root.error !== undefined) out.push(`# ${root.root}: ${root.error}`);
  }
  return out.join('\n') + '\n';
}

export function formatJson(report: Report): string {
  return JSON.stringify({ generatedAt: report.generatedAt.toISOString(), roots: report.roots }, null, 2) + '\n';
}

/** A label value in the text format: backslash, double quote and newline escaped. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Gauges for node-exporter's textfile collector (the Prometheus text
 * exposition format, version 0.0.4): each metric's HELP and TYPE once, then
 * its samples, sorted so that an unchanged node gives unchanged text.
 */
export function formatPrometheus(report: Report): string {
  const containers = report.roots.flatMap((root) => root.containers);
  const counts = totals(containers);
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: [labels: string, value: number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${name}${labels === '' ? '' : `{${labels}}`} ${value}`);
  };
  gauge(
    'strict_groups_containers',
    'Containers under the runtime roots, by the policy strict-groups applied and the rule that decided (policy "unmanaged": not created through strict-groups).',
    [...counts.byPolicyAndRule]
      .sort(([a], [b]) => a.localeCompare(b))
      .flatMap(([policy, byRule]) =>
        [...byRule].sort(([a], [b]) => a.localeCompare(b)).map(([rule, value]): [string, number] => [`policy="${label(policy)}",rule="${label(rule)}"`, value]),
      ),
  );
  gauge('strict_groups_containers_removing_gids', 'Containers whose gids Strict removed (policy "Strict") or would remove (policy "Audit").', [
    ['policy="Audit"', counts.removing.Audit],
    ['policy="Strict"', counts.removing.Strict],
  ]);
  gauge(
    'strict_groups_image_rule_fallbacks',
    "containerd pod containers whose groups the image rule decided because containerd's CRI could not say what the pod declared.",
    [['', counts.fallbacks]],
  );
  gauge('strict_groups_audit_would_refuse', 'Audit containers that Strict would refuse to start (their image cannot be read safely).', [['', counts.wouldRefuse]]);
  gauge(
    'strict_groups_report_root_up',
    'Whether the runtime root could be listed (1) or not (0).',
    report.roots.map((root) => [`root="${label(root.root)}"`, root.error === undefined ? 1 : 0]),
  );
  gauge('strict_groups_report_timestamp_seconds', 'When the report was made, in seconds since the epoch.', [['', Math.floor(report.generatedAt.getTime() / 1000)]]);
  return lines.join('\n') + '\n';
}
