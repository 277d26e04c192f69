// The order after checkout: the decision, suggested books, and the order's live status from
// GET /orders/{orderId} until it is committed or failed, with its events as a space-time diagram.

import { getOrder, getStatus } from './api.js';
import { el, keepingFocus, storage } from './dom.js';
import { logIndexOf, renderLog } from './raft-log.js';
import * as spacetime from './spacetime.js';

const lastOrder = 'bookstore.lastOrder';
const final = new Set(['committed', 'failed', 'rejected']);
const pollEvery = 400;

export class OrderView {
  /** `onFinal` runs once an order is committed or failed (the stock shown is then stale). */
  constructor(cart, catalog, onFinal) {
    this.cart = cart;
    this.catalog = catalog;
    this.onFinal = onFinal;
    this.section = document.getElementById('order');
    this.decision = document.getElementById('decision');
    this.orderId = document.getElementById('order-id');
    this.suggestionsBox = document.getElementById('suggestions-box');
    this.suggestions = document.getElementById('suggestions');
    this.status = document.getElementById('order-status');
    this.timeline = document.getElementById('status-timeline');
    this.trail = document.getElementById('trail');
    this.diagram = document.getElementById('spacetime');
    this.orderLog = document.getElementById('order-log');
    this.following = null;
  }

  /** The answer of POST /checkout. */
  showDecision(answer) {
    this.section.hidden = false;
    const approved = answer.status === 'Order Approved';
    this.decision.className = approved ? 'decision approved' : 'decision rejected';
    this.decision.textContent = approved ? answer.status : `${answer.status}${answer.reason ? `: ${answer.reason}` : ''}`;
    this.orderId.textContent = answer.orderId;
    const suggested = answer.suggestedBooks ?? [];
    this.suggestionsBox.hidden = suggested.length === 0;
    this.suggested = suggested;
    this.renderSuggestions();
    this.setStatus('…');
    this.timeline.replaceChildren();
    this.trail.replaceChildren(el('li', { class: 'muted' }, approved ? 'Waiting for an executor…' : 'Not executed: the order was rejected.'));
    this.orderLog.replaceChildren(el('li', { class: 'muted' }, approved ? 'Shown once the order is final.' : 'None: the order was rejected.'));
    this.diagram.textContent = '';
    storage.set(lastOrder, JSON.stringify({ decision: answer }));
    this.follow(answer.orderId);
  }

  /** Suggested books can be added while the catalog has copies left for them. */
  renderSuggestions() {
    keepingFocus(this.suggestions, () => this.suggestions.replaceChildren(...(this.suggested ?? []).map((book) => {
      const room = this.catalog.copiesLeft(book.bookId) > 0;
      return el('li', { dataset: { bookId: book.bookId } },
        el('button', {
          type: 'button',
          class: 'suggestion',
          disabled: !room,
          'aria-label': room ? `Add ${book.title} to the cart` : `${book.title}: none left to add`,
          onclick: () => this.cart.add(book.bookId),
        }, el('span', { class: 'title' }, book.title), ' ', el('span', { class: 'author' }, `by ${book.author}`), room ? ' +' : ''));
    })));
  }

  /** Takes the shopper's focus to the order just placed. */
  focus() {
    this.section.scrollIntoView({ behavior: 'smooth', block: 'start' });
    document.getElementById('order-heading').focus({ preventScroll: true });
  }

  /** After a reload: the last order placed, if any. */
  restore() {
    try {
      const saved = JSON.parse(storage.get(lastOrder) ?? 'null');
      if (saved?.decision?.orderId) this.showDecision(saved.decision);
    } catch {
      storage.remove(lastOrder);
    }
  }

  /** Polls the order until it is final; a newer order stops the older one's polling. */
  async follow(orderId) {
    const ticket = Symbol(orderId);
    this.following = ticket;
    let shownEvents = -1;
    let failures = 0;
    while (this.following === ticket) {
      try {
        const order = await getOrder(orderId);
        if (this.following !== ticket) return;
        failures = 0;
        this.showStatus(order);
        if ((order.events?.length ?? 0) !== shownEvents) {
          shownEvents = order.events?.length ?? 0;
          spacetime.render(this.diagram, order.events);
        }
        if (final.has(order.status)) {
          if (order.status !== 'rejected') {
            this.onFinal(order);
            await this.showLog(orderId, ticket);
          }
          return;
        }
      } catch (e) {
        if (this.following !== ticket) return;
        failures += 1;
        // The checkout records an order before it answers: one that stays unknown is gone (the
        // bookstore was started afresh), and asking on would not bring it back.
        if (e.status === 404 && failures >= 3) {
          this.setStatus('not known to the bookstore (was it started afresh?)');
          storage.remove(lastOrder);
          return;
        }
        this.setStatus(`unknown for now (${e.message}); asking again`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollEvery * 2 ** Math.max(0, failures - 1), 5000)));
    }
  }

  /** The order's entries in the leader's log; asked again a few times while no leader answers. */
  async showLog(orderId, ticket) {
    for (let attempt = 0; attempt < 5 && this.following === ticket; attempt += 1) {
      try {
        const log = (await getStatus(orderId)).raftLog;
        if (this.following !== ticket) return;
        if (log) {
          renderLog(this.orderLog, log.entries, { anchored: true });
          if (log.entries.length === 0) this.orderLog.replaceChildren(el('li', { class: 'muted' }, 'No entry of this order is left in the log (compacted into a snapshot).'));
          return;
        }
      } catch {
        // Said below if it never comes.
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    if (this.following === ticket) this.orderLog.replaceChildren(el('li', { class: 'muted' }, 'The leader\'s log could not be read.'));
  }

  /** Writes the status only when it changes, so a screen reader hears each change once. */
  setStatus(text, className = '') {
    if (this.status.textContent !== text) this.status.textContent = text;
    this.status.className = className;
  }

  showStatus(order) {
    this.setStatus(order.status + (order.status === 'failed' && order.reason ? `: ${order.reason}` : ''), `status-${order.status}`);
    const start = Date.parse(order.history?.[0]?.at ?? '');
    const since = (at) => {
      const offset = Date.parse(at) - start;
      return el('time', { datetime: at }, Number.isFinite(offset) ? `+${offset} ms` : at);
    };
    const history = order.history ?? [];
    if (this.timeline.children.length !== history.length) {
      this.timeline.replaceChildren(...history.map((change) => el('li', { class: `status-${change.status}`, dataset: { status: change.status } },
        el('strong', {}, change.status), ' ', since(change.at))));
    }
    const trail = order.trail ?? [];
    if (trail.length > 0 && this.trail.querySelectorAll('li[data-step]').length !== trail.length) {
      this.trail.replaceChildren(...trail.map((entry) => el('li', {
        class: `step-${entry.step}`,
        dataset: { step: entry.step, participant: entry.participant ?? '' },
      }, describeStep(entry), ' ', since(entry.at), logLink(entry))));
    }
  }
}

/** For a stock vote that names its log entry: a link to the entry below. */
function logLink(entry) {
  const index = entry.participant === 'stock' ? logIndexOf(entry.outcome) : null;
  return index == null ? null : [' ', el('a', { href: `#raft-entry-${index}`, class: 'log-link' }, `see entry #${index}`)];
}

/** One step of the two-phase commit, in words. */
function describeStep(entry) {
  const who = entry.participant === 'stock' ? 'books database (stock)' : entry.participant;
  switch (entry.step) {
    case 'claim': return `delivery ${entry.delivery ?? '?'} took the order up`;
    case 'prepare': return `prepare → ${who} votes ${entry.outcome}`;
    case 'decide': return `decision recorded: ${entry.outcome}`;
    case 'commit': return `commit → ${who} committed`;
    case 'abort': return `abort → ${who} aborted`;
    default: return entry.step;
  }
}
