/**
 * The record the installer DaemonSet keeps on the host of what it installed:
 * which version, where, and the binary's SHA-256, so that an operator (or a
 * script over `kubectl debug node/...`) can tell what a node runs without
 * running it. It describes the binary, so it stays with the binary when the
 * cleanup DaemonSet takes the handler out. Pure: the text, not the writing.
 */

export const INSTALLED_RECORD = '/var/lib/strict-groups/installed.json';

export interface InstalledBinary {
  version: string;
  binary: string;
  sha256: string;
}

export function installedRecord(installed: InstalledBinary): string {
  const { version, binary, sha256 } = installed;
  return JSON.stringify({ version, binary, sha256 }, null, 2) + '\n';
}
