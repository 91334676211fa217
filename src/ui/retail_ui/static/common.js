/* Shared by the screen and the console: DOM helpers, the SVG store map, live updates (SSE). */
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

/* The store map as SVG in map metres: the map PNG, the path, the destination, people, the robot.
   World (x, y) -> SVG (x - ox, H - (y - oy)) so north is up. Robot and destination are elements
   with data-x / data-y in map metres, so tests and staff tools read them from the DOM. */
class StoreMap {
  constructor(container) {
    this.container = container;
    this.info = null;
  }

  setInfo(info) {
    if (!info || (this.info && this.info.width_m === info.width_m && this.info.height_m === info.height_m
                  && this.info.origin[0] === info.origin[0] && this.info.origin[1] === info.origin[1])) return;
    this.info = info;
    clear(this.container);
    const root = svg('svg', {viewBox: `0 0 ${info.width_m} ${info.height_m}`, class: 'map-svg',
                             preserveAspectRatio: 'xMidYMid meet', role: 'img'});
    root.append(svg('image', {href: '/api/map.png?v=' + Date.now(), x: 0, y: 0, width: info.width_m,
                              height: info.height_m, preserveAspectRatio: 'none'}));
    this.layer = svg('g', {});
    root.append(this.layer);
    this.container.append(root);
  }

  xy(p) { return [p[0] - this.info.origin[0], this.info.height_m - (p[1] - this.info.origin[1])]; }

  draw({pose, path, goal, people}) {
    if (!this.info) return;
    clear(this.layer);
    if (path && path.length > 1) {
      this.layer.append(svg('polyline', {class: 'map-path', id: 'route-path', 'data-points': path.length,
                                         points: path.map(p => this.xy(p).join(',')).join(' ')}));
    }
    if (goal) {
      const [gx, gy] = this.xy(goal);
      this.layer.append(svg('circle', {class: 'map-goal', id: 'map-goal', cx: gx, cy: gy, r: 0.6,
                                       'data-x': goal[0], 'data-y': goal[1]}));
    }
    for (const person of people || []) {
      const [px, py] = this.xy(person);
      this.layer.append(svg('circle', {class: 'map-person', cx: px, cy: py, r: 0.3}));
    }
    if (pose) {
      const [rx, ry] = this.xy(pose);
      const deg = -pose[2] * 180 / Math.PI;
      const robot = svg('g', {id: 'map-robot', class: 'map-robot', 'data-x': pose[0], 'data-y': pose[1],
                              transform: `translate(${rx} ${ry}) rotate(${deg})`});
      robot.append(svg('circle', {r: 0.45}));
      robot.append(svg('polygon', {points: '0.75,0 0.15,0.3 0.15,-0.3'}));
      this.layer.append(robot);
    }
  }
}

/* Server-Sent Events with reconnection; onState(document) on every update. */
function liveStream(url, onState, onStatus) {
  let source = null;
  function open() {
    source = new EventSource(url);
    source.onopen = () => onStatus && onStatus(true);
    source.onmessage = (event) => onState(JSON.parse(event.data));
    source.onerror = () => {
      onStatus && onStatus(false);
      if (source.readyState === EventSource.CLOSED) setTimeout(open, 2000);
    };
  }
  open();
  return () => source && source.close();
}

/* The console session's CSRF token (set after login or read from /api/console/session). */
let csrfToken = '';

async function send(url, method, body) {
  const headers = {'Content-Type': 'application/json'};
  if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const response = await fetch(url, {method, headers, credentials: 'same-origin',
                                     body: method === 'DELETE' ? undefined : JSON.stringify(body || {})});
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty body */ }
  return {status: response.status, ok: response.ok, data};
}

const postJson = (url, body) => send(url, 'POST', body);
