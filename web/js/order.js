// The order after checkout: the decision, suggested books, and the order's live status from
// GET /orders/{orderId} until it is committed or failed, with its events as a space-time diagram.

import { getOrder } from './api.js';
import { el } from './dom.js';
import * as spacetime from './spacetime.js';

const lastOrder = 'bookstore.lastOrder';
const final = new Set(['committed', 'failed', 'rejected']);
const pollEvery = 400;

export class OrderView {
  /** `onFinal` runs once an order is committed or failed (the stock shown is then stale). */
  constructor(cart, onFinal) {
    this.cart = cart;
    this.onFinal = onFinal;
    this.section = document.getElementById('order');
    this.decision = document.getElementById('decision');
    this.orderId = document.getElementById('order-id');
    this.suggestionsBox = document.getElementById('suggestions-box');
    this.suggestions = document.getElementById('suggestions');
    this.status = document.getElementById('order-status');
    this.timeline = document.getElementById('status-timeline');
    this.diagram = document.getElementById('spacetime');
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
    this.suggestions.replaceChildren(...suggested.map((book) => el('li', { dataset: { bookId: book.bookId } },
      el('button', {
        type: 'button',
        class: 'suggestion',
        'aria-label': `Add ${book.title} to the cart`,
        onclick: () => this.cart.add(book.bookId),
      }, el('span', { class: 'title' }, book.title), ' ', el('span', { class: 'author' }, `by ${book.author}`), ' +'))));
    this.status.textContent = '…';
    this.timeline.replaceChildren();
    this.diagram.textContent = '';
    localStorage.setItem(lastOrder, JSON.stringify({ decision: answer }));
    this.follow(answer.orderId);
    this.section.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  /** After a reload: the last order placed, if any. */
  restore() {
    try {
      const saved = JSON.parse(localStorage.getItem(lastOrder) ?? 'null');
      if (saved?.decision?.orderId) this.showDecision(saved.decision);
    } catch {
      localStorage.removeItem(lastOrder);
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
          if (order.status !== 'rejected') this.onFinal(order);
          return;
        }
      } catch (e) {
        failures += 1;
        // The checkout records an order before it answers: one that stays unknown is gone (the
        // bookstore was started afresh), and asking on would not bring it back.
        if (e.status === 404 && failures >= 3) {
          this.status.textContent = 'not known to the bookstore (was it started afresh?)';
          return;
        }
        this.status.textContent = `unknown for now (${e.message}); asking again`;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollEvery * 2 ** Math.max(0, failures - 1), 5000)));
    }
  }

  showStatus(order) {
    this.status.textContent = order.status + (order.status === 'failed' && order.reason ? `: ${order.reason}` : '');
    this.status.className = `status-${order.status}`;
    const start = Date.parse(order.history?.[0]?.at ?? '');
    this.timeline.replaceChildren(...(order.history ?? []).map((change) => {
      const offset = Date.parse(change.at) - start;
      return el('li', { class: `status-${change.status}`, dataset: { status: change.status } },
        el('strong', {}, change.status), ' ',
        el('time', { datetime: change.at }, Number.isFinite(offset) ? `+${offset} ms` : change.at));
    }));
  }
}
