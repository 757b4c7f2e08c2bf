import { isAbsolute, join, resolve } from 'node:path';
import { DECISION_ANNOTATION, REMOVED_GIDS_ANNOTATION, type Annotations } from './annotations';
import { readRegularFile, replaceFileAtomically, type FileSnapshot } from './files';
import { validateAnnotations, validateBundleConfig, validateProcess } from './generated/validators.cjs';
import { ShimError } from './errors';
import { parseDocument, serializeDocument } from './json-document';
import { assertValid } from './validate';

/** The OCI user fields the shim reads; everything else rides along untouched. */
export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
  [other: string]: unknown;
}

export interface BundleConfig {
  process: { user: ProcessUser; [other: string]: unknown };
  root: { path: string; [other: string]: unknown };
  annotations?: Record<string, string>;
  [other: string]: unknown;
}

export interface ExecProcess {
  user: ProcessUser;
  [other: string]: unknown;
}

/** config.json is written by the CRI runtime; this bound only stops a runaway. */
const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;

export interface LoadedDocument<T> {
  path: string;
  file: FileSnapshot;
  document: T;
}

/**
 * Go's encoding/json matches object keys case-insensitively (with Unicode
 * simple folding: "ſ" is an "s", "K" a "k"), so runc would take "AdditionalGids"
 * or "additionalGidſ" for additionalGids. A key the shim edits must appear in
 * exactly one spelling, else the shim could edit one and runc read another.
 */
type OwnedKeys = readonly (readonly [path: readonly string[], keys: readonly string[]])[];
const USER_KEYS = ['uid', 'gid', 'additionalGids'];
const BUNDLE_CONFIG_KEYS: OwnedKeys = [
  [[], ['process', 'root', 'annotations']],
  [['process'], ['user']],
  [['process', 'user'], USER_KEYS],
  [['root'], ['path']],
];
const PROCESS_KEYS: OwnedKeys = [
  [[], ['user']],
  [['user'], USER_KEYS],
];

function goFold(key: string): string {
  return key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
}

function assertUnambiguousKeys(document: unknown, owned: OwnedKeys, file: string): void {
  for (const [path, names] of owned) {
    let node: unknown = document;
    for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
    if (node === null || typeof node !== 'object' || Array.isArray(node)) continue;
    for (const key of Object.keys(node)) {
      const name = names.find((candidate) => goFold(candidate) === goFold(key));
      if (name !== undefined && name !== key) {
        throw new ShimError(`${file}: key ${JSON.stringify(key)} in /${path.join('/')} would be read by runc as "${name}"`);
      }
    }
  }
}

/** Reads, parses and key-checks a document; validating it is the caller's part. */
function readDocument(path: string, owned: OwnedKeys): { file: FileSnapshot; document: unknown } {
  const file = readRegularFile(path, MAX_DOCUMENT_BYTES);
  const document = parseDocument(file.content.toString('utf8'), path);
  assertUnambiguousKeys(document, owned, path);
  return { file, document };
}

function load<T>(path: string, validate: typeof validateBundleConfig, owned: OwnedKeys): LoadedDocument<T> {
  const { file, document } = readDocument(path, owned);
  assertValid<T>(validate, document, path);
  return { path, file, document };
}

export function bundleConfigPath(bundle: string): string {
  return join(bundle, 'config.json');
}

export function loadBundleConfig(bundle: string): LoadedDocument<BundleConfig> {
  return load<BundleConfig>(bundleConfigPath(bundle), validateBundleConfig, BUNDLE_CONFIG_KEYS);
}

export function loadExecProcess(path: string): LoadedDocument<ExecProcess> {
  return load<ExecProcess>(path, validateProcess, PROCESS_KEYS);
}

/** The rootfs on the host: root.path, relative to the bundle unless absolute. */
export function rootfsPath(bundle: string, config: BundleConfig): string {
  return isAbsolute(config.root.path) ? config.root.path : resolve(bundle, config.root.path);
}

export function annotationsOf(config: { annotations?: Record<string, string> }): Annotations {
  return config.annotations ?? {};
}

/**
 * A copy of a process user with new additionalGids; every other field and the
 * fields' order stay as they were.
 */
export function withAdditionalGids<T extends { user: ProcessUser }>(holder: T, gids: number[]): T {
  return { ...holder, user: { ...holder.user, additionalGids: gids } };
}

/**
 * The config with the shim's records: the removal record exec reads, set (a
 * list) or dropped (undefined), and the decision record; other annotations
 * keep their order.
 */
export function withRecords(config: BundleConfig, records: { removedGids: string | undefined; decision: string }): BundleConfig {
  const annotations: Record<string, string> = { ...config.annotations };
  if (records.removedGids === undefined) delete annotations[REMOVED_GIDS_ANNOTATION];
  else annotations[REMOVED_GIDS_ANNOTATION] = records.removedGids;
  annotations[DECISION_ANNOTATION] = records.decision;
  return { ...config, annotations };
}

/** Writes a changed document back over its file, atomically, same mode and owner. */
export function saveDocument<T>(loaded: LoadedDocument<T>, document: T, options: { durable?: boolean } = {}): void {
  replaceFileAtomically(loaded.path, serializeDocument(document), loaded.file, options);
}

/**
 * Only the annotations of a bundle's config.json, for exec: a container's
 * process may trip the create-time checks without that mattering here.
 */
export function loadBundleAnnotations(bundle: string): Annotations {
  const path = bundleConfigPath(bundle);
  const { document } = readDocument(path, [[[], ['annotations']]]);
  const annotations = (document as { annotations?: unknown }).annotations ?? {};
  assertValid<Record<string, string>>(validateAnnotations, annotations, `${path}: annotations`);
  return annotations;
}
