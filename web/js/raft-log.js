// Entries of the books database leader's Raft log, as GET /status tells them: index, term, what
// the entry does and the keys it touches (never the values; other orders' keys are masked).

import { el } from './dom.js';

/** Keys named per entry; the seeding of the catalog touches every book's two. */
const keysShown = 4;

/** The keys in words: the first few, then how many more. */
export function describeKeys(keys) {
  if (!keys?.length) return '';
  const more = keys.length - keysShown;
  return ` (${keys.slice(0, keysShown).join(', ')}${more > 0 ? ` and ${more} more` : ''})`;
}

/** Draws `entries` into `list`; with `anchored`, each item is a link target `raft-entry-INDEX`. */
export function renderLog(list, entries, { anchored = false } = {}) {
  list.replaceChildren(...entries.map((entry) => el('li', {
    id: anchored ? `raft-entry-${entry.index}` : null,
    class: `log-${entry.kind}`,
    dataset: { index: String(entry.index), term: String(entry.term), kind: entry.kind },
  },
  el('strong', {}, `#${entry.index}`), ` term ${entry.term}: ${entry.summary}`,
  entry.keys?.length ? el('span', { class: 'keys', title: entry.keys.join(', ') }, describeKeys(entry.keys)) : null)));
}

/** The log index a stock vote names ("yes (Raft log index 42)"), if any. */
export function logIndexOf(outcome) {
  const found = /Raft log index (\d+)/.exec(outcome ?? '');
  return found ? Number(found[1]) : null;
}
