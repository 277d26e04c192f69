// The cluster view: the books database's Raft nodes as each sees itself (role, term, applied
// index) and the order queue's depth, from GET /status, refreshed while the page is visible.

import { getStatus } from './api.js';
import { el } from './dom.js';

const refreshEvery = 2000;

export class ClusterView {
  constructor() {
    this.rows = document.querySelector('#nodes tbody');
    this.queue = document.getElementById('queue-depth');
    this.deadLetter = document.getElementById('dlq-size');
    this.state = document.getElementById('cluster-state');
  }

  start() {
    const tick = async () => {
      try {
        if (!document.hidden) await this.refresh();
      } catch (e) {
        this.state.textContent = `Cluster status unreadable: ${e.message}`;
      } finally {
        setTimeout(tick, refreshEvery);
      }
    };
    tick();
  }

  async refresh() {
    let status;
    try {
      status = await getStatus();
    } catch (e) {
      this.state.textContent = `Cluster status unavailable: ${e.message}`;
      return;
    }
    this.rows.replaceChildren(...(status.booksDb ?? []).map((node) => node.error
      ? el('tr', { class: 'node down', dataset: { role: 'unreachable' } },
        el('th', { scope: 'row' }, `node ${node.node}`), el('td', { colspan: '3' }, `unreachable: ${node.error}`))
      : el('tr', { class: `node ${node.role}`, dataset: { role: node.role } },
        el('th', { scope: 'row' }, `node ${node.node}`),
        el('td', { class: 'role' }, node.role),
        el('td', { class: 'term' }, String(node.term)),
        el('td', { class: 'applied' }, String(node.lastApplied ?? '–')))));
    const depth = (name) => {
      const queue = (status.queues ?? []).find((q) => q.name === name);
      if (!queue) return 'not configured';
      if (queue.error) return 'unavailable';
      return `${queue.waiting ?? '?'} waiting, ${queue.inFlight ?? '?'} in flight`;
    };
    this.queue.textContent = depth('orders');
    this.deadLetter.textContent = depth('dead-letter');
    this.state.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }
}
