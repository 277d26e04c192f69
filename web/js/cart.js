// The cart: book id → quantity, kept in localStorage so it survives a reload.

import { storage } from './dom.js';

const key = 'bookstore.cart';

export class Cart {
  constructor() {
    this.lines = new Map();
    try {
      for (const [bookId, quantity] of JSON.parse(storage.get(key) ?? '[]')) {
        if (typeof bookId === 'string' && Number.isInteger(quantity) && quantity > 0) {
          this.lines.set(bookId, quantity);
        }
      }
    } catch {
      // A damaged saved cart starts empty rather than breaking the page.
    }
    this.listeners = [];
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  save() {
    storage.set(key, JSON.stringify([...this.lines]));
    for (const listener of this.listeners) listener();
  }

  add(bookId, quantity = 1) {
    this.set(bookId, (this.lines.get(bookId) ?? 0) + quantity);
  }

  /** A quantity of 0 or less removes the line. */
  set(bookId, quantity) {
    if (quantity > 0) this.lines.set(bookId, quantity);
    else this.lines.delete(bookId);
    this.save();
  }

  remove(bookId) {
    this.set(bookId, 0);
  }

  clear() {
    this.lines.clear();
    this.save();
  }

  get count() {
    let count = 0;
    for (const quantity of this.lines.values()) count += quantity;
    return count;
  }

  /** Total in cents (prices are EUR with two decimals), or null while a line's price is unknown. */
  totalCents(booksById) {
    let cents = 0;
    for (const [bookId, quantity] of this.lines) {
      const book = booksById.get(bookId);
      if (!book) return null;
      cents += Math.round(book.price * 100) * quantity;
    }
    return cents;
  }
}

export const euros = (cents) => new Intl.NumberFormat('en-IE', { style: 'currency', currency: 'EUR' }).format(cents / 100);
