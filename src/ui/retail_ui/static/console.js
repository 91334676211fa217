/* The staff console: login, then /api/console/stream renders the dashboard. */
'use strict';

let consoleMap = null;
let stopStream = null;
let previewTimer = null;
let current = null;
let lastEnrolment = {id: ''};

const $ = (id) => document.getElementById(id);
const ago = (t) => t ? new Date(t * 1000).toLocaleTimeString() : '';

function showLogin(message) {
  if (stopStream) { stopStream(); stopStream = null; }
  if (previewTimer) { clearInterval(previewTimer); previewTimer = null; }
  $('dashboard').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-message').textContent = message || '';
}

async function showDashboard() {
  const response = await fetch('/api/console/state', {credentials: 'same-origin'});
  if (response.status === 401) return showLogin('');
  if (!csrfToken) {
    const session = await fetch('/api/console/session', {credentials: 'same-origin'});
    if (session.status === 401) return showLogin('');
    csrfToken = (await session.json()).csrf_token || '';
  }
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('logout').hidden = false;
  render(await response.json());
  stopStream = liveStream('/api/console/stream', render, (up) => {
    $('link-status').textContent = up ? 'live · 在线' : 'reconnecting · 重连中';
    if (!up) fetch('/api/console/state').then(r => { if (r.status === 401) { csrfToken = ''; showLogin('Session ended · 会话已结束'); } });
  });
  refreshMembers();
  previewTimer = setInterval(refreshPreview, 1000);
}

function refreshPreview() {
  const img = $('preview');
  const next = new Image();
  next.onload = () => { img.src = next.src; img.hidden = false; $('preview-status').hidden = true; };
  next.onerror = () => { img.hidden = true; $('preview-status').hidden = false; };
  next.src = '/api/console/preview.jpg?t=' + Date.now();
}

function render(s) {
  current = s;
  if (s.map) consoleMap.setInfo(s.map);
  const mission = s.mission || {kind: 'idle'};
  consoleMap.draw({pose: s.pose, path: s.path, people: s.people, goal: mission.goal});
  $('mission').textContent = mission.kind === 'guide'
    ? `Guiding to ${mission.name_en} · 带路去${mission.name_zh}` + (mission.remaining_m !== null ? ` (${mission.remaining_m} m left)` : '')
    : mission.kind === 'tour_stop' ? `Tour stop ${mission.stop_index + 1}/${mission.stop_count}: ${mission.name_en}`
    : `Idle · 空闲 — ${s.customers_present} customer(s) in front`;
  $('pose-text').textContent = s.pose ? `Robot at x ${s.pose[0].toFixed(2)} m, y ${s.pose[1].toFixed(2)} m (${s.pose_source})`
                                      : 'Robot pose unknown';
  const b = s.battery;
  $('battery').textContent = b ? `${b.percent === null ? '?' : b.percent + ' %'} · ${b.voltage} V${b.charging ? ' · charging' : ''}` : 'unknown';
  $('link').textContent = `${s.link.state} (${s.link.level})`;
  const safety = s.safety;
  const box = $('safety');
  box.className = safety.latched ? 'alarm' : 'ok';
  box.textContent = !safety.known ? 'unknown' : safety.latched
    ? `STOPPED · 已停止: ${safety.reason || 'latched'}` + (safety.active.length ? ` [still triggered: ${safety.active.join(', ')}]` : ' [sensors clear: ready to reset]')
    : (safety.reason ? `clear · 正常 (${safety.reason})` : 'clear · 正常');
  $('reset-safety').disabled = !safety.latched;

  const log = clear($('reset-log'));
  for (const entry of s.reset_log) log.append(el('li', {}, `${ago(entry.at)} ${entry.who}: ${entry.success ? 'cleared' : 'refused'} — ${entry.message}`));

  const requests = clear($('requests'));
  for (const r of s.staff_requests.slice(0, 30)) {
    requests.append(el('li', {class: 'request ' + r.state, 'data-id': r.id},
      el('span', {}, `#${r.id} ${ago(r.at)} ${r.reason}` + (r.meeting_point ? ` → ${r.meeting_point}` : '') + ` [${r.state}]`),
      r.state === 'open' ? el('button', {onclick: () => postJson(`/api/console/requests/${r.id}/ack`)}, 'Acknowledge · 收到') : null,
      r.state !== 'done' ? el('button', {onclick: () => postJson(`/api/console/requests/${r.id}/done`)}, 'Done · 完成') : null));
  }
  const body = clear($('appointments').tBodies[0]);
  for (const a of s.appointments) {
    body.append(el('tr', {'data-id': a.appointment_id}, el('td', {}, a.time), el('td', {}, a.name), el('td', {}, a.purpose),
      el('td', {}, a.staff), el('td', {class: a.checked_in ? 'ok' : ''}, a.checked_in || 'not yet · 未签到')));
  }
  const sync = clear($('sync'));
  if (s.sync) {
    for (const [label, value] of [['Status', `${s.sync.level}: ${s.sync.message}`], ['Backlog · 待上传', s.sync.backlog],
        ['Oldest pending · 最早待传 (s)', s.sync.oldest_pending_s], ['Last upload · 上次上传 (s ago)', s.sync.last_upload_age_s],
        ['Quarantined · 隔离', s.sync.quarantined], ['Upload error', s.sync.upload_error || '–']]) {
      sync.append(el('dt', {}, label), el('dd', {}, String(value)));
    }
  } else {
    sync.append(el('dt', {}, 'Status'), el('dd', {}, 'no report from the sync agent'));
  }
  $('enroll-person').textContent = s.person_in_front
    ? `Person in front of the robot: track ${s.person_in_front} · 机器人前的顾客：${s.person_in_front} 号`
    : 'Nobody in front of the robot · 机器人前无人';
  const e = s.enrolment;
  if (e && e.id + e.state !== lastEnrolment.id) {
    lastEnrolment = {id: e.id + e.state};
    $('enroll-message').textContent = {
      waiting: 'Waiting for the customer to agree on the robot\'s screen · 等待顾客在屏幕上确认',
      enrolling: 'The customer agreed; enrolling… · 顾客已同意，登记中',
      enrolled: `Enrolled · 已登记: ${e.customer_id}`,
      declined: 'Not enrolled · 未登记: the customer declined · 顾客不同意',
      expired: 'Not enrolled · 未登记: no answer on the screen · 顾客未确认',
      failed: 'Not enrolled · 未登记: ' + e.message}[e.state] || e.state;
    if (e.state === 'enrolled') refreshMembers();
  }
  const diag = clear($('diagnostics').tBodies[0]);
  for (const d of s.diagnostics) {
    diag.append(el('tr', {class: 'level-' + d.level}, el('td', {}, d.name), el('td', {}, d.level), el('td', {}, d.message)));
  }
}

async function refreshMembers() {
  const response = await fetch('/api/console/members');
  if (!response.ok) return;
  const body = clear($('members').tBodies[0]);
  for (const m of await response.json()) {
    if (m.error) { body.append(el('tr', {}, el('td', {colspan: 6}, m.error))); continue; }
    body.append(el('tr', {'data-id': m.customer_id}, el('td', {}, m.customer_id), el('td', {}, m.name), el('td', {}, m.vip ? 'VIP' : ''),
      el('td', {}, m.consent_ref), el('td', {}, m.last_seen),
      el('td', {}, el('button', {class: 'danger', onclick: async () => {
        if (!confirm(`Delete ${m.customer_id} and all their face data?`)) return;
        await send('/api/console/members/' + encodeURIComponent(m.customer_id), 'DELETE');
        refreshMembers();
      }}, 'Delete · 删除'))));
  }
}

function wire() {
  consoleMap = new StoreMap($('console-map'));
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await postJson('/api/console/login', {password: $('password').value});
    $('password').value = '';
    if (result.ok) { csrfToken = result.data.csrf_token || ''; return showDashboard(); }
    $('login-message').textContent = result.status === 429 ? 'Too many wrong passwords; wait and try again · 密码错误次数过多，请稍后再试'
                                                            : 'Wrong password · 密码错误';
  });
  $('logout').addEventListener('click', async () => { await postJson('/api/console/logout'); csrfToken = ''; showLogin(''); });
  $('reset-safety').addEventListener('click', async () => {
    $('reset-message').textContent = 'Resetting… · 复位中';
    const result = await postJson('/api/console/reset_safety');
    $('reset-message').textContent = result.status === 401 ? 'Log in again · 请重新登录'
      : (result.data.success ? 'Safety stop cleared · 已复位: ' : 'Not reset · 未复位: ') + (result.data.message || '');
  });
  $('enroll-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await postJson('/api/console/enroll', {customer_id: $('enroll-id').value.trim(),
      display_name: $('enroll-name').value.trim(), vip: $('enroll-vip').checked});
    const detail = Array.isArray(result.data.detail) ? result.data.detail.map(d => d.loc.slice(-1)[0] + ': ' + d.msg).join('; ')
                                                     : (result.data.message || result.data.detail || '');
    if (result.status === 202) {
      lastEnrolment = {id: result.data.request_id + 'waiting'};
      $('enroll-message').textContent = 'Waiting for the customer to agree on the robot\'s screen · 等待顾客在屏幕上确认';
    } else {
      $('enroll-message').textContent = 'Not enrolled · 未登记: ' + detail;
    }
  });
  $('members-refresh').addEventListener('click', refreshMembers);
  showDashboard();
}

document.addEventListener('DOMContentLoaded', wire);
