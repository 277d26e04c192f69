// The order's events as a space-time diagram: a line per process, each event a point on the line
// of the process whose counter it ticked, and an arrow from every event to the events whose
// clocks it directly precedes. Everything is derived from the recorded vector clocks alone, so
// the picture shows what the clocks say: x → y exactly when VC(x) < VC(y).

import { svg } from './dom.js';

const preferred = ['tv-a', 'tv-b', 'fraud', 'suggestions'];

const at = (clock, process) => clock[process] ?? 0;

/** VC(x) < VC(y): every counter ≤, and they differ. */
export function happenedBefore(x, y, processes) {
  return processes.every((p) => at(x, p) <= at(y, p)) && processes.some((p) => at(x, p) < at(y, p));
}

/** Places events: lane (process), column (longest causal chain before it) and direct arrows. */
export function layout(events) {
  const names = new Set(events.flatMap((e) => Object.keys(e.vectorClock ?? {})));
  const processes = [...preferred.filter((p) => names.has(p)), ...[...names].filter((p) => !preferred.includes(p)).sort()];
  const clocks = events.map((e) => e.vectorClock ?? {});
  const before = (i, j) => happenedBefore(clocks[i], clocks[j], processes);
  const indices = events.map((_, i) => i);
  const placed = events.map((event, i) => {
    const predecessors = indices.filter((j) => before(j, i));
    // The process this event ticked: its counter is above every predecessor's.
    const lane = processes.find((p) => at(clocks[i], p) > Math.max(0, ...predecessors.map((j) => at(clocks[j], p))))
      ?? processes[0];
    return { event, predecessors, lane };
  });
  const column = new Map();
  const depth = (i) => {
    if (!column.has(i)) column.set(i, 1 + Math.max(-1, ...placed[i].predecessors.map(depth)));
    return column.get(i);
  };
  const arrows = [];
  for (const i of indices) {
    for (const j of placed[i].predecessors) {
      const direct = !placed[i].predecessors.some((k) => k !== j && before(j, k));
      if (direct) arrows.push([j, i]);
    }
  }
  return { processes, points: placed.map((p, i) => ({ ...p, column: depth(i) })), arrows };
}

export function render(container, events) {
  if (!events?.length) {
    container.textContent = 'No events recorded yet.';
    return;
  }
  const { processes, points, arrows } = layout(events);
  const laneGap = 78;
  const columnGap = 150;
  const left = 120;
  const top = 44;
  const columns = 1 + Math.max(...points.map((p) => p.column));
  const width = left + columns * columnGap + 40;
  const height = top + (processes.length - 1) * laneGap + 44;
  const x = (p) => left + 40 + p.column * columnGap;
  const y = (p) => top + processes.indexOf(p.lane) * laneGap;

  const drawing = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width: String(width),
    role: 'img',
    'aria-label': 'Space-time diagram of the order\'s events',
  });
  drawing.append(svg('defs', {}, svg('marker', {
    id: 'arrowhead', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))));
  drawing.append(svg('text', { x: String(left), y: '16', class: 'legend' }, document.createTextNode(`clocks are (${processes.join(', ')})`)));

  processes.forEach((process, i) => {
    const laneY = top + i * laneGap;
    drawing.append(
      svg('line', { x1: String(left), y1: String(laneY), x2: String(width - 10), y2: String(laneY), class: 'lane' }),
      svg('text', { x: '8', y: String(laneY + 4), class: 'lane-name' }, document.createTextNode(process)),
    );
  });

  const radius = 13;
  for (const [from, to] of arrows) {
    const a = points[from];
    const b = points[to];
    const dx = x(b) - x(a);
    const dy = y(b) - y(a);
    const length = Math.hypot(dx, dy) || 1;
    drawing.append(svg('line', {
      x1: String(x(a) + (dx / length) * radius),
      y1: String(y(a) + (dy / length) * radius),
      x2: String(x(b) - (dx / length) * (radius + 2)),
      y2: String(y(b) - (dy / length) * (radius + 2)),
      class: 'message-arrow',
      'marker-end': 'url(#arrowhead)',
    }));
  }

  for (const point of points) {
    const { event } = point;
    const clock = `(${processes.map((p) => at(event.vectorClock ?? {}, p)).join(',')})`;
    const title = `${event.event}: ${event.service}${event.passed === false ? ` — failed: ${event.reason ?? ''}` : ''}\n` +
      processes.map((p) => `${p}=${at(event.vectorClock ?? {}, p)}`).join(' ');
    drawing.append(svg('g', { class: event.passed === false ? 'event failed' : 'event', 'data-event': event.event },
      svg('title', {}, document.createTextNode(title)),
      svg('circle', { cx: String(x(point)), cy: String(y(point)), r: String(radius) }),
      svg('text', { x: String(x(point)), y: String(y(point) + 5), class: 'event-name' }, document.createTextNode(event.event)),
      svg('text', { x: String(x(point)), y: String(y(point) + radius + 16), class: 'clock' }, document.createTextNode(clock))));
  }
  container.replaceChildren(drawing);
}
