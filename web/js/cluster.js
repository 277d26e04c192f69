// The cluster view: the books database's Raft nodes as each sees itself (role, term, vote, log,
// commit and applied index), the leader's newest log entries and the order queue's depth, from
// GET /status, refreshed while the page is visible; and the leaders seen, as a timeline of
// elections, with the fault controls' actions among them.

import { getStatus } from './api.js';
import { el } from './dom.js';
import { renderLog } from './raft-log.js';

const refreshEvery = 2000;
const electionsKept = 20;

export class ClusterView {
  constructor() {
    this.rows = document.querySelector('#nodes tbody');
    this.queue = document.getElementById('queue-depth');
    this.deadLetter = document.getElementById('dlq-size');
    this.state = document.getElementById('cluster-state');
    this.elections = document.getElementById('elections');
    this.log = document.getElementById('raft-log');
    this.leaders = new LeaderHistory();
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

  /** An action of the fault controls, on the timeline. */
  showFault(event) {
    const at = new Date(event.at);
    this.elections.prepend(el('li', { class: 'fault', dataset: { action: event.action, node: event.node == null ? '' : String(event.node) } },
      `fault: ${event.detail} `, el('time', { datetime: at.toISOString() }, at.toLocaleTimeString())));
    this.trim();
  }

  trim() {
    while (this.elections.children.length > electionsKept) this.elections.lastElementChild.remove();
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
        el('th', { scope: 'row' }, `node ${node.node}`), el('td', { colspan: '6' }, `unreachable: ${node.error}`))
      : el('tr', { class: `node ${node.role}`, dataset: { role: node.role } },
        el('th', { scope: 'row' }, `node ${node.node}`),
        el('td', { class: 'role' }, node.role),
        el('td', { class: 'term' }, String(node.term)),
        el('td', { class: 'voted-for' }, node.votedFor == null ? '–' : `node ${node.votedFor}`),
        el('td', { class: 'log' }, String(node.lastLogIndex ?? '–')),
        el('td', { class: 'committed' }, String(node.committed ?? '–')),
        el('td', { class: 'applied' }, String(node.lastApplied ?? '–')))));
    const change = this.leaders.observe(status.booksDb ?? [], Date.now());
    if (change) {
      this.elections.prepend(el('li', { dataset: { term: String(change.term), leader: String(change.leader) } },
        describeLeader(change), ' ', el('time', { datetime: new Date(change.at).toISOString() }, new Date(change.at).toLocaleTimeString())));
      this.trim();
    }
    const depth = (name) => {
      const queue = (status.queues ?? []).find((q) => q.name === name);
      if (!queue) return 'not configured';
      if (queue.error) return 'unavailable';
      return `${queue.waiting ?? '?'} waiting, ${queue.inFlight ?? '?'} in flight`;
    };
    renderLog(this.log, status.raftLog?.entries ?? []);
    this.queue.textContent = depth('orders');
    this.deadLetter.textContent = depth('dead-letter');
    this.state.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }
}

/**
 * The leaders seen across looks at the cluster: `observe` answers a change of leader (a new term
 * or a new node leading), with the nodes that voted for it and how long no leader was seen.
 */
export class LeaderHistory {
  constructor() {
    this.known = null;
    this.leaderlessSince = null;
  }

  observe(nodes, now) {
    const leading = nodes.filter((n) => !n.error && n.role === 'leader').sort((a, b) => b.term - a.term)[0];
    if (!leading) {
      if (this.known && this.leaderlessSince == null) this.leaderlessSince = now;
      return null;
    }
    const current = { term: leading.term, leader: leading.id };
    // A deposed leader cut off from the others may still call itself leader, of an older term.
    if (this.known && current.term < this.known.term) return null;
    if (this.known && this.known.term === current.term && this.known.leader === current.leader) return null;
    const votes = nodes.filter((n) => !n.error && n.term === current.term && n.votedFor === current.leader).map((n) => n.id);
    const change = {
      ...current,
      votes,
      first: this.known == null,
      leaderlessFor: this.leaderlessSince == null ? null : now - this.leaderlessSince,
      at: now,
    };
    this.known = current;
    this.leaderlessSince = null;
    return change;
  }
}

/** A change of leader, in words. */
export function describeLeader(change) {
  const voters = `node${change.votes.length === 1 ? '' : 's'} ${change.votes.join(', ')}`;
  const votes = change.votes.length ? `votes from ${voters}` : 'no vote seen yet';
  let gap = '';
  if (!change.first) {
    gap = change.leaderlessFor == null
      ? '; the change fell between two looks'
      : `; no leader seen for ${(change.leaderlessFor / 1000).toFixed(1)} s`;
  }
  return `term ${change.term}: node ${change.leader} leads (${votes})${gap}`;
}
