/**
 * Kubernetes manifests checked against the Kubernetes API schema, with
 * kubernetes-models (models generated from the API's OpenAPI document), in
 * two ways: its validator (types, required fields, enums, formats), and its
 * TypeScript interfaces, which the compiler holds a manifest to field by
 * field, so that an unknown field (a misspelt "privilegd", which the API
 * server drops or, under kubectl's strict validation, refuses) fails too:
 * the validator lets unknown fields through.
 */
import ts from 'typescript';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './oci';

export type Manifest = Record<string, unknown> & { apiVersion?: unknown; kind?: unknown };

/** The kinds this project ships, and the kubernetes-models module of each. */
const MODELS = {
  'apps/v1 DaemonSet': { module: 'kubernetes-models/apps/v1/DaemonSet', type: 'IDaemonSet' },
  'node.k8s.io/v1 RuntimeClass': { module: 'kubernetes-models/node.k8s.io/v1/RuntimeClass', type: 'IRuntimeClass' },
} as const;
type ModelKey = keyof typeof MODELS;

/** The one YAML document of a manifest file; any YAML error or warning, or a second document, throws. */
export function parseManifest(text: string, where: string): Manifest {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${where}: no YAML document`);
  if (docs.length !== 1) throw new Error(`${where}: ${docs.length} YAML documents, want 1`);
  const doc = docs[0]!;
  const problem = [...doc.errors, ...doc.warnings][0];
  if (problem !== undefined) throw new Error(`${where}: ${problem.message}`);
  const value = doc.toJS() as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: not a mapping`);
  return value as Manifest;
}

function modelOf(manifest: Manifest, where: string): (typeof MODELS)[ModelKey] {
  const key = `${String(manifest.apiVersion)} ${String(manifest.kind)}`;
  if (!(key in MODELS)) throw new Error(`${where}: no model for ${key}`);
  return MODELS[key as ModelKey];
}

/** What kubernetes-models' validator says is wrong, [] for nothing. */
export async function schemaErrors(manifest: Manifest, where: string): Promise<string[]> {
  const { module, type } = modelOf(manifest, where);
  const exports = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = exports[type.slice(1)]!;
  try {
    new Model(manifest).validate();
    return [];
  } catch (err) {
    return String((err as Error).message).split('\n').filter((line) => line.trim() !== '');
  }
}

/**
 * What the TypeScript compiler says about each manifest typed as its
 * kubernetes-models interface: unknown fields and wrong types, [] for
 * nothing. One program for all of them (a program takes seconds).
 */
export function typeErrors(manifests: readonly { where: string; manifest: Manifest }[]): string[][] {
  const files = manifests.map(({ where, manifest }, i) => {
    const { module, type } = modelOf(manifest, where);
    // .mts: kubernetes-models is an ES module; the files live in the project so its node_modules resolve.
    const path = join(ROOT, 'test', `.manifest-check-${process.pid}-${i}.mts`);
    return { path, text: `import type { ${type} } from '${module}';\nexport const manifest: ${type} = ${JSON.stringify(manifest, null, 2)};\n` };
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map(files.map((file) => [file.path, file.text]));
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (path) => virtual.has(path) || fileExists.call(host, path);
  host.readFile = (path) => virtual.get(path) ?? readFile.call(host, path);
  host.getSourceFile = (path, language, ...rest) => {
    const text = virtual.get(path);
    return text !== undefined ? ts.createSourceFile(path, text, language, true) : getSourceFile.call(host, path, language, ...rest);
  };
  const program = ts.createProgram(files.map((file) => file.path), options, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const general = diagnostics.filter((d) => d.file === undefined || !virtual.has(d.file.fileName));
  if (general.length > 0) throw new Error(`the manifest check itself does not compile: ${ts.flattenDiagnosticMessageText(general[0]!.messageText, ' ')}`);
  return files.map((file) =>
    diagnostics
      .filter((d) => d.file?.fileName === file.path)
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${file.text.split('\n')[line]?.trim()}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      }),
  );
}
