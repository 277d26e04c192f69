// A small helper to build elements without innerHTML, so no text from the server is ever parsed
// as markup.

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const svgNs = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

const message = () => document.getElementById('message');
let messageSource = null;

/** Shows a problem in words at the top of the page, on behalf of `source` (the catalog, the checkout). */
export function showMessage(text, source) {
  messageSource = source;
  message().textContent = text;
  message().hidden = false;
}

/** Hides the message if `source` showed it: a catalog refresh does not hide a checkout's error. */
export function clearMessage(source) {
  if (messageSource === source) message().hidden = true;
}

/**
 * localStorage that never throws: where storage is blocked (some private modes) the page still
 * works, it only forgets the cart on reload.
 */
export const storage = {
  get(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch {
      // Not kept: the page goes on without it.
    }
  },
  remove(key) {
    try {
      localStorage.removeItem(key);
    } catch {
      // Nothing was kept.
    }
  },
};

/**
 * Runs `render`, which replaces the children of `container`, and gives the keyboard focus back to
 * the same control of the same book (`[data-book-id] .class`) if it had it.
 */
export function keepingFocus(container, render) {
  const focused = document.activeElement;
  const line = container.contains(focused) ? focused.closest('[data-book-id]') : null;
  const control = line && focused.classList[0];
  render();
  if (line && control) {
    const again = container.querySelector(`[data-book-id="${CSS.escape(line.dataset.bookId)}"] .${CSS.escape(control)}`);
    if (again && !again.disabled) again.focus();
  }
}
