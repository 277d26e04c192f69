// The fault controls' panel (`cargo xtask up --fault-controls`): kill, pause, resume or restart a
// books database node, cut one off the network (the container cluster), and set the order
// executors' delay and failure rate. Hidden unless the page was opened with the link `up`
// prints: its fragment, which the browser never sends, carries the cluster secret.

import { faultControls } from './api.js';
import { el } from './dom.js';

const secretKey = 'bookstore-fault-secret';
const refreshEvery = 2000;

/**
 * The secret from the address's `#faults=SECRET` (then taken out of the address bar, so it is
 * not bookmarked or shared), or the one this tab was given before.
 */
export function takeSecret(location, storage, history) {
  const given = /^#faults=(.+)$/.exec(location.hash)?.[1];
  if (given) {
    try {
      storage.setItem(secretKey, decodeURIComponent(given));
    } catch {
      // A mangled link (a stray %): no secret taken; the panel stays hidden.
    }
    history.replaceState(null, '', location.pathname + location.search);
  }
  return storage.getItem(secretKey);
}

/** The executors' knobs from the form's fields, or an error in words. */
export function readKnobs({ delayMin, delayMax, failureRate }) {
  const number = (text) => (text.trim() === '' ? null : Number(text));
  const [min, max, rate] = [number(delayMin), number(delayMax), number(failureRate)];
  if ((min === null) !== (max === null)) return { error: 'Give both ends of the delay, or neither.' };
  if (min !== null && !(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && min <= max && max <= 30000)) {
    return { error: 'The delay is whole milliseconds, from at most to, up to 30000.' };
  }
  if (rate !== null && !(rate >= 0 && rate <= 1)) return { error: 'The failure rate is between 0 and 1.' };
  return { knobs: { delayMs: min === null ? null : [min, max], failureRate: rate ?? 0 } };
}

export class FaultPanel {
  /** `onEvent` is told each action once, oldest first (for the timeline). */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.box = document.getElementById('faults');
    this.state = document.getElementById('faults-state');
    this.rows = document.querySelector('#fault-nodes tbody');
    this.form = document.getElementById('executor-knobs');
    this.seen = null;
    this.drawn = false;
  }

  start() {
    let secret = null;
    try {
      secret = takeSecret(window.location, window.sessionStorage, window.history);
    } catch {
      // Storage blocked: no place to keep the secret, so no panel.
    }
    if (!secret) return;
    this.api = faultControls(secret);
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.setKnobs();
    });
    document.getElementById('reset-knobs').addEventListener('click', () => this.resetKnobs());
    const tick = async () => {
      let again = true;
      try {
        if (!document.hidden) again = await this.refresh();
      } catch (e) {
        this.state.textContent = `The fault controls could not be drawn: ${e.message}`;
      } finally {
        if (again) setTimeout(tick, refreshEvery);
      }
    };
    tick();
  }

  /** Reads the panel; whether to keep looking (not if the gateway has no fault controls). */
  async refresh() {
    let panel;
    try {
      panel = await this.api.panel();
    } catch (e) {
      if (e.status === 404) {
        this.box.hidden = true;
        return false;
      }
      this.box.hidden = false;
      this.state.textContent = e.message;
      return e.status !== 403;
    }
    this.box.hidden = false;
    if (!this.drawn) this.draw(panel);
    // Actions from before this page was opened are not replayed onto its timeline, which starts
    // now too (its leaders are the ones this page has seen).
    if (this.seen === null) this.seen = Math.max(0, ...panel.events.map((event) => event.seq));
    for (const event of panel.events) {
      if (event.seq > this.seen) {
        this.seen = event.seq;
        this.onEvent(event);
      }
    }
    return true;
  }

  draw(panel) {
    this.drawn = true;
    const actions = [['pause', 'Pause'], ['resume', 'Resume'], ['kill', 'Kill'], ['restart', 'Restart']];
    if (panel.partitionable) actions.push(['partition', 'Cut off'], ['heal', 'Reconnect']);
    this.rows.replaceChildren(...panel.nodes.map((node) => el('tr', { dataset: { node: String(node) } },
      el('th', { scope: 'row' }, `node ${node}`),
      el('td', {}, actions.map(([action, label]) => el('button', {
        type: 'button',
        dataset: { node: String(node), action },
        onclick: (e) => this.act(node, action, e.currentTarget),
      }, label))))));
    const knobs = panel.executor ?? panel.configuredExecutor;
    this.form.elements.delayMin.value = knobs.delayMs?.[0] ?? '';
    this.form.elements.delayMax.value = knobs.delayMs?.[1] ?? '';
    this.form.elements.failureRate.value = knobs.failureRate;
  }

  async act(node, action, button) {
    button.disabled = true;
    try {
      const event = await this.api.node(node, action);
      this.state.textContent = `Done: ${event.detail}.`;
      await this.refresh();
    } catch (e) {
      this.state.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  async setKnobs() {
    const read = readKnobs(Object.fromEntries(new FormData(this.form)));
    if (read.error) {
      this.state.textContent = read.error;
      return;
    }
    await this.send(() => this.api.setKnobs(read.knobs));
  }

  async resetKnobs() {
    await this.send(() => this.api.resetKnobs());
    this.drawn = false;
  }

  async send(call) {
    try {
      const event = await call();
      this.state.textContent = `Done: ${event.detail}.`;
      await this.refresh();
    } catch (e) {
      this.state.textContent = e.message;
    }
  }
}
