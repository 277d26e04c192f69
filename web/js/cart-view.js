// The cart on the page: lines with quantities, remove buttons and the total.

import { el, keepingFocus } from './dom.js';
import { euros } from './cart.js';

export class CartView {
  constructor(cart, catalog) {
    this.cart = cart;
    this.catalog = catalog;
    this.list = document.getElementById('cart');
    this.empty = document.getElementById('cart-empty');
    this.total = document.getElementById('cart-total');
    this.count = document.getElementById('cart-count');
    cart.onChange(() => this.render());
  }

  render() {
    keepingFocus(this.list, () => this.renderLines());
    this.empty.hidden = this.cart.lines.size > 0;
    const total = this.cart.totalCents(this.catalog.byId);
    this.total.textContent = total === null ? 'price unknown until the catalog loads' : euros(total);
    this.count.textContent = String(this.cart.count);
  }

  renderLines() {
    const books = this.catalog.byId;
    this.list.replaceChildren(...[...this.cart.lines].map(([bookId, quantity]) => {
      const book = books.get(bookId);
      const title = book?.title ?? bookId;
      const over = book && quantity > book.stock;
      return el('li', { class: 'cart-line', dataset: { bookId } },
        el('span', { class: 'title' }, title),
        el('label', { class: 'qty-label' }, 'Qty ',
          el('input', {
            class: 'qty',
            type: 'number',
            min: '0',
            max: book ? String(Math.max(book.stock, quantity)) : null,
            value: String(quantity),
            'aria-label': `Quantity of ${title}`,
            onchange: (e) => {
              const value = Number.parseInt(e.target.value, 10);
              // A field left empty or garbled keeps the line as it was; 0 removes it.
              if (Number.isFinite(value)) this.cart.set(bookId, value);
              else e.target.value = String(quantity);
            },
          })),
        el('span', { class: 'line-price' }, book ? euros(Math.round(book.price * 100) * quantity) : ''),
        el('button', { type: 'button', class: 'remove', 'aria-label': `Remove ${title}`, onclick: () => this.cart.remove(bookId) }, 'Remove'),
        over ? el('p', { class: 'hint shown' }, book.stock === 0 ? 'Out of stock now.' : `Only ${book.stock} in stock.`) : null);
    }));
  }
}
