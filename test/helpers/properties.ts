/**
 * Arbitraries and an assert shared by the property suites in test/properties/.
 * Random text alone rarely hits what the parsers treat specially, so every
 * text arbitrary mixes in the characters that matter somewhere: flag dashes
 * and "=", the separators of /etc/passwd and /etc/group, quotes and
 * backslashes, every kind of line break, NUL.
 */
import fc from 'fast-check';

/** Characters with a meaning to argv.ts, etc-files.ts, log.ts or a JSON encoder. */
const MEANINGFUL_CHARS = [
  '-', '=', ':', ',', '#', '+', '/', '.', ' ', '\t', '\n', '\r', '\v', '\f', '\0',
  '"', "'", '\\', '$', '`', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\u3000', '\ufeff', '\ufffd',
];

/** One code point, any of U+0000..U+10FFFF but half surrogates, weighted toward MEANINGFUL_CHARS. */
const codePoint: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...MEANINGFUL_CHARS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** A UTF-16 code unit of a surrogate pair, standing alone unless a neighbour completes it. */
const loneSurrogate: fc.Arbitrary<string> = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));

export interface TextOptions {
  maxLength?: number;
  /** Lone surrogates: any JS string, not only what UTF-8 can carry. */
  loneSurrogates?: boolean;
  /** NUL cannot be passed in argv (execve ends every argument at it). */
  nul?: boolean;
}

/** Strings of MEANINGFUL_CHARS and arbitrary code points. */
export function text(options: TextOptions = {}): fc.Arbitrary<string> {
  const { maxLength = 24, loneSurrogates = false, nul = true } = options;
  const units = loneSurrogates ? fc.oneof({ weight: 6, arbitrary: codePoint }, { weight: 1, arbitrary: loneSurrogate }) : codePoint;
  return fc.string({ unit: nul ? units : units.filter((unit) => unit !== '\0'), maxLength });
}

const UINT32_MAX = 0xffffffff;

/**
 * A gid: mostly from a small pool, so that lists repeat gids and sets
 * overlap; the FACTS seed gids (1000 alice, 50000 from the image, 60000 from
 * the pod); and any uint32.
 */
export const gid: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 6 }),
  fc.constantFrom(1000, 50000, 60000, UINT32_MAX),
  fc.integer({ min: 0, max: UINT32_MAX }),
);

export const gidList: fc.Arbitrary<number[]> = fc.array(gid, { maxLength: 10 });

export const gidSet: fc.Arbitrary<Set<number>> = gidList.map((gids) => new Set(gids));

/** Whether `part` is `whole` with some elements left out, order kept. */
export function isSubsequence<T>(part: readonly T[], whole: readonly T[]): boolean {
  let i = 0;
  for (const item of whole) if (i < part.length && part[i] === item) i++;
  return i === part.length;
}

/** What TAP's parser takes for a line break besides "\n" and "\r". */
const TAP_LINE_BREAKS = /[\u0085\u2028\u2029]/g;

/**
 * fc.assert for tap: on failure, throws one Error holding fast-check's whole
 * report (seed, path, counterexample, the failing assertion). fast-check
 * prints a counterexample's U+0085, U+2028 and U+2029 raw, and tap, breaking
 * its YAML there, drops the report entirely; they are escaped here.
 */
export function assertProperty<Ts>(property: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  const report = fc.defaultReportMessage(fc.check(property, { ...params, includeErrorInReport: true }));
  if (report !== undefined) {
    throw new Error(report.replace(TAP_LINE_BREAKS, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`));
  }
}
