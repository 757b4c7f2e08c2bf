/**
 * The differential suite's matrix: images (busybox-static userland, built
 * locally) and pod security contexts as the kubelet sends them over CRI.
 * Every image and every context appears at least once; each image family
 * has a case where the pod itself declares a gid the image also grants.
 */
import type { ImageOptions } from '../helpers/oci-image';
import { SEED_GROUP, SEED_PASSWD } from '../helpers/oci';

const SLEEP = ['sleep', '3600'];

function image(key: string, options: Omit<ImageOptions, 'name' | 'cmd'>): ImageOptions {
  return { name: `localhost/strict-groups-diff/${key}:1`, cmd: SLEEP, ...options };
}

export const IMAGES = {
  /** FACTS.md's seed: alice (1000) in group-in-image (50000). */
  seed: image('seed', { passwd: SEED_PASSWD, group: SEED_GROUP, user: '1000' }),
  /** The seed with `USER alice`: the image names its user rather than numbering it. */
  seedNamed: image('seed-named', { passwd: SEED_PASSWD, group: SEED_GROUP, user: 'alice' }),
  /**
   * The readers' quirks (runc's libcontainer/user, moby/sys/user): CRLF and
   * indented lines are trimmed and grant (50000, 50001); members are not
   * trimmed, so "bob, alice" does not grant 50002; a gid that is not a
   * number reads as 0 and grants root's gid; containerd skips a group named
   * like the user (50003), CRI-O counts it.
   */
  quirks: image('quirks', {
    passwd: 'root:x:0:0:root:/root:/bin/sh\r\nalice:x:1000:1000:alice:/home/alice:/bin/sh\r\n',
    group: [
      'root:x:0:\r\n',
      'crlf:x:50000:alice\r\n',
      '   indented:x:50001:alice\n',
      'spaced:x:50002:bob, alice\n',
      'weird:x:notanumber:alice\n',
      'alice:x:50003:alice\n',
    ].join(''),
    user: '1000',
  }),
  /** /etc/passwd and /etc/group absolute links to the seed's files elsewhere in the image (read on the host, they would not exist). */
  symlinks: image('symlinks', {
    files: { '/etc/passwd.real': SEED_PASSWD, '/etc/group.real': SEED_GROUP },
    links: { '/etc/passwd': '/etc/passwd.real', '/etc/group': '/etc/group.real' },
    user: '1000',
  }),
  /** Root listed in disk (6) and wheel (10), as Alpine does; alice (1000) in nothing. */
  rootGroups: image('root-groups', {
    passwd: SEED_PASSWD,
    group: 'root:x:0:\ndisk:x:6:root\nwheel:x:10:root\nalice:x:1000:\n',
    user: '1000',
  }),
  /** alice (1000) and bob (1001), each in a group of their own and both in a shared one. */
  users: image('users', {
    passwd: `${SEED_PASSWD}bob:x:1001:1001:bob:/home/bob:/bin/sh\n`,
    group: 'root:x:0:\nalice-only:x:50000:alice\nbob-only:x:50001:bob\nshared:x:50010:alice,bob\n',
    user: '1000',
  }),
  /** No /etc/passwd and no /etc/group at all. */
  noEtc: image('no-etc', { user: '1000' }),
} satisfies Record<string, ImageOptions>;

export type ImageKey = keyof typeof IMAGES;

/**
 * A pod security context as it reaches the CRI: the kubelet folds fsGroup
 * and volume gids (pv.beta.kubernetes.io/gid) into supplemental_groups, after
 * the pod's supplementalGroups. That folding is the kubelet's and is not
 * reachable here; these contexts send what it would send.
 */
export interface Context {
  /** The pod spec it stands for, and what reaches the CRI when they differ. */
  title: string;
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups: number[];
}

/** The seed pod: runAsUser 1000, supplementalGroups [60000]. */
const seed: Context = { title: 'runAsUser 1000, supplementalGroups [60000]', runAsUser: 1000, supplementalGroups: [60000] };

function declares(uid: number, groups: number[], why: string): Context {
  return { title: `runAsUser ${uid}, supplementalGroups [${groups.join(', ')}] (${why})`, runAsUser: uid, supplementalGroups: groups };
}

function fsGroup(gid: number): Context {
  return { title: `runAsUser 1000, supplementalGroups [60000], fsGroup ${gid} (CRI: [60000, ${gid}]; the image grants ${gid})`, runAsUser: 1000, supplementalGroups: [60000, gid] };
}

function volumeGid(gid: number): Context {
  return { title: `runAsUser 1000, a volume of gid ${gid} (CRI: [${gid}]; the image grants ${gid})`, runAsUser: 1000, supplementalGroups: [gid] };
}

const runAsGroup: Context = { title: 'runAsUser 1000, runAsGroup 3000, supplementalGroups [60000]', runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [60000] };
const imageUser: Context = { title: 'no runAsUser (the image USER runs), supplementalGroups [60000]', supplementalGroups: [60000] };

function root(groups: number[], why: string): Context {
  return { title: `runAsUser 0, supplementalGroups [${groups.join(', ')}] (${why})`, runAsUser: 0, supplementalGroups: groups };
}

export interface DifferentialCase {
  /** Short and unique: the pods' names. */
  id: string;
  image: ImageKey;
  context: Context;
}

export const CASES: readonly DifferentialCase[] = [
  { id: 'seed', image: 'seed', context: seed },
  { id: 'seed-declared', image: 'seed', context: declares(1000, [50000, 60000], 'the image grants 50000') },
  { id: 'seed-fsgroup', image: 'seed', context: fsGroup(50000) },
  { id: 'seed-volume', image: 'seed', context: volumeGid(50000) },
  { id: 'seed-runasgroup', image: 'seed', context: runAsGroup },
  { id: 'seed-imageuser', image: 'seed', context: imageUser },
  { id: 'named-imageuser', image: 'seedNamed', context: imageUser },
  { id: 'quirks', image: 'quirks', context: seed },
  { id: 'quirks-declared', image: 'quirks', context: declares(1000, [50001, 50002, 60000], 'the indented line grants 50001; "bob, alice" does not grant 50002') },
  { id: 'quirks-usernamed', image: 'quirks', context: declares(1000, [50003, 60000], 'a group named like the user: CRI-O grants 50003, containerd does not') },
  { id: 'symlinks', image: 'symlinks', context: seed },
  { id: 'symlinks-fsgroup', image: 'symlinks', context: fsGroup(50000) },
  { id: 'root-declared', image: 'rootGroups', context: root([10], 'the image lists root in wheel, 10') },
  { id: 'root', image: 'rootGroups', context: root([60000], 'the image lists root in disk and wheel') },
  { id: 'root-imageuser', image: 'rootGroups', context: imageUser },
  { id: 'users-bob', image: 'users', context: declares(1001, [60000], 'bob') },
  { id: 'users-declared', image: 'users', context: declares(1001, [50000, 50001, 60000], "bob; 50000 is alice's group, 50001 bob's") },
  { id: 'noetc', image: 'noEtc', context: seed },
  { id: 'noetc-runasgroup', image: 'noEtc', context: runAsGroup },
  { id: 'noetc-declared', image: 'noEtc', context: declares(1000, [50000, 60000], 'no image files: nothing is granted') },
];
