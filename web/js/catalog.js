// The catalog: the books with their live stock, searchable and filtered by genre.

import { el, keepingFocus } from './dom.js';
import { euros } from './cart.js';

export class CatalogView {
  constructor(cart) {
    this.cart = cart;
    this.books = [];
    this.byId = new Map();
    this.list = document.getElementById('catalog');
    this.state = document.getElementById('catalog-state');
    this.search = document.getElementById('search');
    this.genre = document.getElementById('genre');
    this.inStockOnly = document.getElementById('in-stock-only');
    for (const control of [this.search, this.genre, this.inStockOnly]) {
      control.addEventListener('input', () => this.render());
    }
    cart.onChange(() => this.render());
  }

  /** New books from GET /books; false when nothing changed (nothing is redrawn then). */
  update(books) {
    if (JSON.stringify(books) === JSON.stringify(this.books)) return false;
    this.books = books;
    this.byId = new Map(books.map((b) => [b.bookId, b]));
    const genres = [...new Set(books.map((b) => b.genre))].sort();
    const chosen = this.genre.value;
    this.genre.replaceChildren(el('option', { value: '' }, 'All genres'), ...genres.map((g) => el('option', { value: g }, label(g))));
    this.genre.value = genres.includes(chosen) ? chosen : '';
    this.render();
    return true;
  }

  /** Copies of a book that can still go into the cart. */
  copiesLeft(bookId) {
    return (this.byId.get(bookId)?.stock ?? 0) - (this.cart.lines.get(bookId) ?? 0);
  }

  render() {
    const words = this.search.value.trim().toLowerCase();
    const shown = this.books.filter((b) =>
      (!words || `${b.title} ${b.author}`.toLowerCase().includes(words)) &&
      (!this.genre.value || b.genre === this.genre.value) &&
      (!this.inStockOnly.checked || b.stock > 0));
    keepingFocus(this.list, () => this.list.replaceChildren(...shown.map((book) => this.card(book))));
    this.state.textContent = shown.length === this.books.length
      ? `${this.books.length} books`
      : `${shown.length} of ${this.books.length} books`;
  }

  card(book) {
    const left = this.copiesLeft(book.bookId);
    const stock = book.stock === 0 ? 'Out of stock' : `${book.stock} in stock`;
    return el('li', { class: 'book', dataset: { bookId: book.bookId } },
      el('h3', { class: 'title' }, book.title),
      el('p', { class: 'author' }, book.author),
      el('p', { class: 'meta' }, `${label(book.genre)} · ${book.year ?? ''}`),
      el('p', { class: 'price' }, euros(Math.round(book.price * 100))),
      el('p', { class: book.stock === 0 ? 'stock out' : 'stock' }, stock),
      el('button', {
        type: 'button',
        class: 'add',
        disabled: left <= 0,
        'aria-label': `Add ${book.title} to the cart`,
        onclick: () => this.cart.add(book.bookId),
      }, left <= 0 && book.stock > 0 ? 'All in cart' : 'Add to cart'));
  }
}

/** `science-fiction` → `Science fiction`. */
export const label = (genre) => {
  const words = String(genre ?? '').replaceAll('-', ' ').replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
};
