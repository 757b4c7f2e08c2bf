import { ShimError } from '../errors';

/**
 * The marked block install.sh appends to a configuration file it shares with
 * the operator. Everything between the markers is the installer's and is
 * rewritten on every run; everything outside is never touched, so taking the
 * block out gives back the operator's file as it was.
 */

const BEGIN = '# BEGIN strict-groups';
const END = '# END strict-groups';
const BEGIN_LINE = `${BEGIN}: added by strict-groups install.sh, removed by "install.sh --uninstall"; edits inside are replaced\n`;

/** `text` with `body` appended as a block, after a blank line. */
export function appendBlock(text: string, body: string): string {
  const separator = text === '' ? '' : text.endsWith('\n') ? '\n' : '\n\n';
  return `${text}${separator}${BEGIN_LINE}${body.endsWith('\n') ? body : `${body}\n`}${END}\n`;
}

/** `text` without any block and the blank line appendBlock put before it. */
export function stripBlocks(text: string, where: string): string {
  let result = text;
  for (;;) {
    const begin = findLine(result, BEGIN, 0);
    if (begin < 0) return result;
    const end = findLine(result, END, begin);
    // Guessing where a damaged block ends could cut the operator's settings.
    if (end < 0) throw new ShimError(`${where}: a "${BEGIN}" line has no "${END}" line after it; mend the file by hand`);
    const lineEnd = result.indexOf('\n', end);
    const before = result.slice(0, begin);
    result = (before.endsWith('\n\n') ? before.slice(0, -1) : before) + (lineEnd < 0 ? '' : result.slice(lineEnd + 1));
  }
}

/** The offset of the first line from `from` on that starts with `prefix`, or -1. */
function findLine(text: string, prefix: string, from: number): number {
  for (let at = from; at < text.length; ) {
    if ((at === 0 || text[at - 1] === '\n') && text.startsWith(prefix, at)) return at;
    const next = text.indexOf('\n', at);
    if (next < 0) return -1;
    at = next + 1;
  }
  return -1;
}
