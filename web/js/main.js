// Wires the storefront together: catalog, cart, checkout, the order and the cluster.

import { getBooks, mayRetry, newIdempotencyKey, postCheckout } from './api.js';
import { Cart } from './cart.js';
import { CartView } from './cart-view.js';
import { CatalogView } from './catalog.js';
import { checkoutBody, demoDefaults, hints, readForm } from './checkout.js';
import { ClusterView } from './cluster.js';
import { clearMessage, showMessage } from './dom.js';
import { FaultPanel } from './faults.js';
import { OrderView } from './order.js';

// Whatever goes wrong is said in words, never left as a silent, half-drawn page.
addEventListener('error', (e) => showMessage(`Something went wrong on this page: ${e.message}`, 'page'));
addEventListener('unhandledrejection', (e) => showMessage(`Something went wrong on this page: ${e.reason?.message ?? e.reason}`, 'page'));

const cart = new Cart();
const catalog = new CatalogView(cart);
const cartView = new CartView(cart, catalog);

// Answers can overtake each other (a refresh, and one after an order committed): only the
// newest request's answer is shown.
let booksRequest = 0;
async function loadBooks() {
  const request = ++booksRequest;
  try {
    const books = await getBooks();
    if (request !== booksRequest) return;
    if (catalog.update(books)) {
      cartView.render();
      orderView.renderSuggestions();
    }
    clearMessage('catalog');
  } catch (e) {
    if (request !== booksRequest) return;
    document.getElementById('catalog-state').textContent = 'The catalog could not be loaded.';
    showMessage(e.message, 'catalog');
  }
}

const orderView = new OrderView(cart, catalog, () => loadBooks());
cart.onChange(() => orderView.renderSuggestions());

const form = document.getElementById('checkout-form');
for (const [name, value] of Object.entries(demoDefaults())) {
  form.elements[name].value = value;
}

function showHints() {
  const found = hints(readForm(form), cart.lines.size);
  for (const hint of form.querySelectorAll('[data-hint-for]')) {
    const text = found[hint.dataset.hintFor] ?? '';
    hint.textContent = text;
    hint.classList.toggle('shown', Boolean(text));
    const field = form.elements[hint.dataset.hintFor];
    if (field instanceof HTMLInputElement) field.setAttribute('aria-invalid', String(Boolean(text)));
  }
}
form.addEventListener('input', showHints);
cart.onChange(showHints);

// The checkout last sent without a final answer: pressing "Place order" again on the same cart
// and form sends it with the same key, so a dropped connection never makes a second order.
let unanswered = null;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = document.getElementById('place-order');
  button.disabled = true;
  button.textContent = 'Placing the order…';
  const text = JSON.stringify(checkoutBody(readForm(form), cart, catalog.byId));
  const key = unanswered?.text === text ? unanswered.key : newIdempotencyKey();
  unanswered = { text, key };
  try {
    const answer = await postCheckout(text, key);
    unanswered = null;
    clearMessage('checkout');
    if (answer.status === 'Order Approved') cart.clear();
    orderView.showDecision(answer);
    orderView.focus();
  } catch (e) {
    if (!mayRetry(e)) unanswered = null;
    showMessage(e.message, 'checkout');
  } finally {
    button.disabled = false;
    button.textContent = 'Place order';
  }
});

cartView.render();
showHints();
orderView.restore();
loadBooks();
// The stock others buy shows up too.
setInterval(() => { if (!document.hidden) loadBooks(); }, 15000);
const clusterView = new ClusterView();
clusterView.start();
new FaultPanel((event) => clusterView.showFault(event)).start();
