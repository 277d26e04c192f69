// The bookstore's HTTP API. Every failure becomes an ApiError whose message is words for a
// person: the server's own {"error":{"message"}} when it sent one.

/**
 * The API's base URL: the page's <meta name="bookstore-api">, or this origin when it is empty.
 * Only the page's own files choose it (no query parameter): a link must not be able to send a
 * shopper's card to another server.
 */
export function apiBase() {
  const base = document.querySelector('meta[name="bookstore-api"]')?.content ?? '';
  return base.replace(/\/+$/, '');
}

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(apiBase() + path, { ...options, signal: AbortSignal.timeout(30000) });
  } catch (e) {
    const why = e.name === 'TimeoutError' ? 'it did not answer within 30 seconds' : 'the network is down or the server is not running';
    throw new ApiError(`Cannot reach the bookstore: ${why}.`, 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: said below in words.
  }
  if (!response.ok) {
    const message = body?.error?.message ?? `the server answered ${response.status} ${response.statusText}`;
    throw new ApiError(`${response.status >= 500 ? 'The bookstore failed' : 'Refused'}: ${message}`, response.status);
  }
  if (body === null) {
    throw new ApiError('The bookstore sent an answer that is not JSON.', response.status);
  }
  return body;
}

export const getBooks = () => request('/books');
export const getOrder = (orderId) => request(`/orders/${encodeURIComponent(orderId)}`);
/** The cluster; with `orderId`, its log part is that order's entries instead of the tail. */
export const getStatus = (orderId) => request(orderId ? `/status?order=${encodeURIComponent(orderId)}` : '/status');
/** A new Idempotency-Key: random, 32 hex digits (crypto.randomUUID needs a secure context). */
export function newIdempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Whether a checkout that failed so may be sent again with the same key: it may have run. */
export const mayRetry = (e) => e instanceof ApiError && (e.status === 0 || e.status === 409 || e.status >= 500);

/**
 * POST /checkout of `text` (the JSON body) under `key`. A network error or a checkout still
 * running with this key (409) is retried with the same key for 15 s (the checkout function's
 * timeout), so the order is placed once.
 */
export async function postCheckout(text, key) {
  const send = () => request('/checkout', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: text,
  });
  for (const wait of [1000, 2000, 4000, 8000]) {
    try {
      return await send();
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 0 || e.status === 409))) throw e;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  return send();
}

/**
 * The fault controls of `cargo xtask up --fault-controls`, with the cluster secret they ask for.
 * They exist only on that gateway, from this machine; elsewhere they answer 404 or 403.
 */
export function faultControls(secret) {
  const auth = { Authorization: `Bearer ${secret}` };
  const json = { ...auth, 'Content-Type': 'application/json' };
  return {
    panel: () => request('/faults', { headers: auth }),
    node: (node, action) => request(`/faults/nodes/${encodeURIComponent(node)}/${encodeURIComponent(action)}`, { method: 'POST', headers: auth }),
    setKnobs: (knobs) => request('/faults/executor', { method: 'PUT', headers: json, body: JSON.stringify(knobs) }),
    resetKnobs: () => request('/faults/executor', { method: 'DELETE', headers: auth }),
  };
}
