/**
 * The README's record of hostile inputs and faults. Each suite keeps its cases
 * in a table (test/<suite>/*-cases.ts) whose rows carry both the procedure and
 * the words the README shows for it, so the README says exactly what the
 * tests try and assert: `npm run record` writes the section from the tables,
 * and test/record.test.ts fails when the README differs.
 */

export interface RecordRow {
  /** The class of input or fault, e.g. "symlinks", "file types", "disk". */
  area: string;
  /** What was tried, in a few words. */
  tried: string;
  /** What the suite asserts happens, in a few words. */
  outcome: string;
}
