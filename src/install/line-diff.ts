/**
 * The lines that differ between two texts, as "- old" and "+ new", for the
 * installer's edits: each appends or takes out one block, so the lines around
 * the one changed stretch are what both texts share.
 */
export function lineDiff(before: string, after: string): string[] {
  const a = splitLines(before);
  const b = splitLines(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  return [...a.slice(start, a.length - end).map((line) => `- ${line}`), ...b.slice(start, b.length - end).map((line) => `+ ${line}`)];
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
