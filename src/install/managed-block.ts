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
  let result = '';
  let at = 0;
  for (const block of findBlocks(text, where)) {
    const before = result + text.slice(at, block.begin);
    result = before.endsWith('\n\n') ? before.slice(0, -1) : before;
    at = block.after;
  }
  return result + text.slice(at);
}

/** What stands between the markers of each block. */
export function blockBodies(text: string, where: string): string[] {
  return findBlocks(text, where).map((block) => text.slice(block.bodyStart, block.bodyEnd));
}

interface BlockSpan {
  begin: number;
  bodyStart: number;
  bodyEnd: number;
  /** Just past the END line. */
  after: number;
}

function findBlocks(text: string, where: string): BlockSpan[] {
  const spans: BlockSpan[] = [];
  for (let from = 0; ; ) {
    const begin = findLine(text, BEGIN, from);
    if (begin < 0) return spans;
    const end = findLine(text, END, begin);
    // Guessing where a damaged block ends could cut the operator's settings.
    if (end < 0) throw new ShimError(`${where}: a "${BEGIN}" line has no "${END}" line after it; mend the file by hand`);
    const lineEnd = text.indexOf('\n', end);
    const after = lineEnd < 0 ? text.length : lineEnd + 1;
    spans.push({ begin, bodyStart: text.indexOf('\n', begin) + 1, bodyEnd: end, after });
    from = after;
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
