/**
 * The image's /etc/passwd and /etc/group, read the way the CRI runtimes read
 * them (runc's libcontainer/user, later moby/sys/user), so that Strict removes
 * exactly what containerd or CRI-O could have derived, quirks included. Where
 * readers disagree, the answer here is the union: removing a gid the pod also
 * declared is the safe failure, leaving an image gid in place is the leak.
 */

const UINT32 = 2n ** 32n;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * Go's `strconv.Atoi` on a 64-bit platform, errors ignored as the readers
 * ignore them: an optional sign and decimal digits; anything else is 0; out of
 * range clamps to the int64 bounds.
 */
export function goAtoi(field: string): bigint {
  if (!/^[+-]?[0-9]+$/.test(field)) return 0n;
  const value = BigInt(field);
  if (value > INT64_MAX) return INT64_MAX;
  if (value < INT64_MIN) return INT64_MIN;
  return value;
}

/** Go's `uint32(int)` conversion: the low 32 bits, two's complement. */
export function toUint32(value: bigint): number {
  return Number(((value % UINT32) + UINT32) % UINT32);
}

/**
 * White space as Go's `unicode.IsSpace` sees it; `bytes.TrimSpace` trims it
 * from both ends of every line.
 */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'gu');

/**
 * The trimmed, non-empty lines of a file. Lines end at "\n" only, as with
 * bufio; a "\r" before it is white space and goes with the trim. Invalid UTF-8
 * decodes to U+FFFD: names that differ only there compare equal, which can only
 * widen what counts as image-derived.
 */
function lines(content: Uint8Array): string[] {
  const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(content);
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(TRIM, '');
    if (line !== '') out.push(line);
  }
  return out;
}

export interface PasswdEntry {
  name: string;
  /** The uid field as Go's int (Atoi, clamped). */
  uid: bigint;
}

/**
 * /etc/passwd entries. No comment syntax here: the passwd reader keeps a line
 * starting with "#" as a user of that name, so it does too.
 */
export function parsePasswd(content: Uint8Array): PasswdEntry[] {
  return lines(content).map((line) => {
    const fields = line.split(':');
    return { name: fields[0] ?? '', uid: goAtoi(fields[2] ?? '') };
  });
}

export interface GroupEntry {
  name: string;
  /** The gid as it ends up in additionalGids: uint32(Atoi(field)). */
  gid: number;
  /** Split on "," with no trimming: "bob, alice" does not contain "alice". */
  members: string[];
}

/** /etc/group entries; lines starting with "#" are skipped. */
export function parseGroup(content: Uint8Array): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of lines(content)) {
    if (line.startsWith('#')) continue;
    const fields = line.split(':');
    const list = fields[3] ?? '';
    out.push({
      name: fields[0] ?? '',
      gid: toUint32(goAtoi(fields[2] ?? '')),
      members: list === '' ? [] : list.split(','),
    });
  }
  return out;
}

/**
 * Every name the CRI runtime could have taken for this uid. containerd takes
 * the first entry whose int uid equals it; with an image `USER name` it takes
 * that name, whose uid then reaches the spec as uint32. Any entry matching
 * either way counts.
 */
export function namesForUid(passwd: readonly PasswdEntry[], uid: number): Set<string> {
  const names = new Set<string>();
  for (const entry of passwd) {
    if (entry.uid === BigInt(uid) || toUint32(entry.uid) === uid) names.add(entry.name);
  }
  return names;
}

/**
 * The gids the image's /etc/group grants any of these names. containerd skips
 * a group named like the user, CRI-O does not: such groups count.
 */
export function imageGids(groups: readonly GroupEntry[], names: ReadonlySet<string>): Set<number> {
  const gids = new Set<number>();
  if (names.size === 0) return gids;
  for (const group of groups) {
    if (group.members.some((member) => names.has(member))) gids.add(group.gid);
  }
  return gids;
}

/** The gids the image grants the names of any of these uids, from the raw contents of both files. */
export function imageGidsFor(uids: number | readonly number[], passwd: Uint8Array | null, group: Uint8Array | null): Set<number> {
  if (passwd === null || group === null) return new Set();
  const entries = parsePasswd(passwd);
  const names = new Set<string>();
  for (const uid of typeof uids === 'number' ? [uids] : uids) {
    for (const name of namesForUid(entries, uid)) names.add(name);
  }
  return names.size === 0 ? new Set() : imageGids(parseGroup(group), names);
}

/**
 * The uids whose image groups a CRI runtime may have merged into a process
 * running as `processUid`. containerd 1.6/1.7 looks up the pod's runAsUser,
 * and when the pod sets none it looks up uid 0 (its source: "Even if
 * RunAsUser is not set, we still call GetValue to get uid 0"), while the
 * process runs as the image's USER. So root's image groups count too.
 */
export function criLookupUids(processUid: number): number[] {
  return processUid === 0 ? [0] : [processUid, 0];
}
