/* The robot's touch screen: renders /api/screen/stream; touches go to /api/screen/say as utterances. */
'use strict';

const TEXT = {
  zh: {
    title: '导购助手', lang_button: 'English', attract_hint: '您好！请对我说"你好"，或点击下方按钮',
    offers: '今日优惠', best_sellers: '热销商品', welcome: '欢迎光临！请问有什么可以帮您？',
    welcome_member: '{name}，欢迎回来！', welcome_vip: '{name}，欢迎光临！',
    appointment: '您的预约：{time} · {purpose} · {place}', you_said: '您说', robot_said: '机器人', staff_said: '店员',
    yes: '是的', no: '不用了', products: '为您找到', recommendations: '为您推荐',
    code: '结账时出示此码：{code}',
    in_stock: '有货', sold_out: '缺货', where: '在哪里？', take_me_there: '带我去',
    destination: '正在前往：{zone}', remaining: '剩余约 {m} 米', follow_me: '请跟我来',
    arrived: '已到达：{zone}', tour_stop: '参观第 {i} / {n} 站', take_me_to: '带我去…', call_staff: '呼叫店员',
    vip_checkin: '贵宾签到（无需刷脸）', send: '发送', ask_placeholder: '请输入您的问题，例如：华为手机多少钱',
    close: '关闭', checkin_hint: '请输入预约时登记的姓名和预约时间。', name: '姓名', booking_time: '预约时间',
    check_in: '签到', face_notice: '人脸识别已开启 · 说明与退出', face_title: '人脸识别说明',
    face_text: '本机器人仅识别已书面同意的会员，用于问候和个性化推荐。未登记的人脸不会被保存，也不会显示任何个人信息。',
    face_optout: '不想被识别？您无需刷脸即可使用全部功能：直接说话或点击屏幕；贵宾可用姓名和预约时间签到。如需撤回同意并删除人脸数据，请联系服务台店员。',
    safety_stop: '我已安全停止，店员马上过来，请稍候。', promotion: '优惠',
    say_where: '{name}在哪里', say_take: '带我去{name}', say_category: '我想看看{name}', say_zone: '带我去{name}',
    say_staff: '叫工作人员', say_yes: '是的', say_no: '不用', say_checkin: '我是{name}，预约{time}',
    consent_title: '人脸识别会员登记', consent_agree: '我同意', consent_decline: '不同意',
    consent_text: '店员想为您登记人脸识别会员：机器人将保存您的人脸特征（不保存照片），用于下次到店时问候您并提供个性化推荐。',
    consent_rights: '这是您的自愿选择。您可以随时在服务台撤回同意，我们将删除您的人脸数据。只有您本人在本屏幕上点击"我同意"才会登记。',
  },
  en: {
    title: 'Store assistant', lang_button: '中文', attract_hint: 'Hello! Say "hello" or tap a button below',
    offers: "Today's offers", best_sellers: 'Best sellers', welcome: 'Welcome! How can I help you?',
    welcome_member: 'Welcome back, {name}!', welcome_vip: 'Welcome, {name}!',
    appointment: 'Your appointment: {time} · {purpose} · {place}', you_said: 'You', robot_said: 'Robot', staff_said: 'Staff',
    yes: 'Yes', no: 'No, thanks', products: 'Found for you', recommendations: 'Recommended for you',
    code: 'Show this code at the till: {code}',
    in_stock: 'In stock', sold_out: 'Sold out', where: 'Where is it?', take_me_there: 'Take me there',
    destination: 'On the way to: {zone}', remaining: 'About {m} m to go', follow_me: 'Please follow me',
    arrived: 'Here we are: {zone}', tour_stop: 'Tour stop {i} of {n}', take_me_to: 'Take me to…', call_staff: 'Call staff',
    vip_checkin: 'VIP check-in (no face needed)', send: 'Send', ask_placeholder: 'Type your question, e.g. how much is the iPhone',
    close: 'Close', checkin_hint: 'Enter the name and the time of your booking.', name: 'Name', booking_time: 'Booking time',
    check_in: 'Check in', face_notice: 'Face recognition on · info & opt-out', face_title: 'About face recognition',
    face_text: 'This robot recognises only members who gave written consent, to greet them and personalise suggestions. Faces of other people are never stored and nothing personal is shown.',
    face_optout: "Prefer not to be recognised? Everything works without your face: just talk or tap. VIP guests can check in with their name and booking time. To withdraw consent and delete your face data, ask staff at the service desk.",
    safety_stop: 'I have stopped for safety. A member of staff is on the way.', promotion: 'Offer',
    say_where: 'where is the {name}', say_take: 'take me to the {name}', say_category: "I'm looking for {name}",
    say_zone: 'take me to {name}', say_staff: 'call staff', say_yes: 'yes', say_no: 'no',
    say_checkin: 'My name is {name}, my appointment is at {time}',
    consent_title: 'Face recognition membership', consent_agree: 'I agree', consent_decline: 'No, thanks',
    consent_text: 'Staff would like to enrol you for face recognition: the robot keeps a description of your face (never a photo) to greet you and personalise suggestions on your next visits.',
    consent_rights: 'This is your choice. You can withdraw at the service desk at any time and your face data is deleted. Only you, tapping "I agree" on this screen, can enrol.',
  },
};

let lang = 'zh';
let state = null;
let config = {zones: [], categories: [], map: null};
let routeMap = null;
/* The robot's own screen is opened by its kiosk as /?screen=<per-boot secret read from the robot's
   disk>: it carries the customer's consent. Kept for this tab only and taken out of the address bar.
   Pages opened elsewhere have none and never show the consent question. */
const screenToken = (() => {
  const params = new URLSearchParams(location.search);
  const given = params.get('screen');
  if (given) {
    sessionStorage.setItem('robot-screen', given);
    params.delete('screen');
    history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : ''));
  }
  return sessionStorage.getItem('robot-screen') || '';
})();
let consentShown = null;

function t(key, values) {
  let text = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
  for (const [k, v] of Object.entries(values || {})) text = text.split('{' + k + '}').join(v);
  return text;
}
const name = (item) => (lang === 'en' ? item.name_en : item.name_zh) || item.name_zh || item.name_en;

async function say(text) {
  /* The dialogue takes typed text as the words of the person in front of the robot (a "yes" to
     the face-enrolment question is consent): only the robot's own screen may send it. */
  await fetch('/api/screen/say', {method: 'POST', credentials: 'same-origin',
                                  headers: {'Content-Type': 'application/json', 'X-Screen-Token': screenToken},
                                  body: JSON.stringify({text, language: lang})});
}

function setLanguage(next) {
  lang = next;
  document.documentElement.lang = lang;
  document.querySelectorAll('[data-i18n]').forEach(node => { node.textContent = t(node.dataset.i18n); });
  document.getElementById('lang-toggle').textContent = t('lang_button');
  document.getElementById('ask-text').placeholder = t('ask_placeholder');
  document.getElementById('face-notice').textContent = t('face_notice');
  renderButtons();
  if (state) render(state);
}

function productCard(card, withActions) {
  const node = el('article', {class: 'card' + (card.in_stock ? '' : ' sold-out'), 'data-sku': card.sku},
    el('h3', {class: 'card-name'}, name(card)),
    el('div', {class: 'card-price'}, '¥' + card.price),
    card.promotion ? el('div', {class: 'card-promotion'}, t('promotion') + ': ' + card.promotion) : null,
    el('div', {class: 'card-stock'}, card.in_stock ? t('in_stock') : t('sold_out')),
    el('div', {class: 'card-zone'}, lang === 'en' ? card.zone_en : card.zone_zh),
    (lang === 'en' ? card.reason_en : card.reason_zh)
      ? el('p', {class: 'card-reason'}, lang === 'en' ? card.reason_en : card.reason_zh) : null);
  if (withActions) {
    node.append(el('div', {class: 'card-actions'},
      el('button', {class: 'where', onclick: () => say(t('say_where', {name: name(card)}))}, t('where')),
      el('button', {class: 'take-me-there', onclick: () => say(t('say_take', {name: name(card)}))}, t('take_me_there'))));
  }
  return node;
}

function renderCaptions(container, captions, limit) {
  clear(container);
  for (const line of captions.slice(-limit)) {
    container.append(el('p', {class: 'caption ' + line.who},
      el('span', {class: 'who'}, line.who === 'robot' ? t('robot_said') : line.who === 'staff' ? t('staff_said') : t('you_said')), line.text));
  }
  container.parentElement.scrollTop = container.parentElement.scrollHeight;   // the latest line in view
}

function renderWelcome(welcome) {
  const box = clear(document.getElementById('welcome'));
  if (!welcome) return;
  box.className = 'welcome ' + welcome.kind;
  if (welcome.kind === 'anonymous') {
    box.append(el('h1', {}, t('welcome')));
    return;
  }
  box.append(el('h1', {class: 'welcome-name'}, t(welcome.kind === 'vip' ? 'welcome_vip' : 'welcome_member',
                                                 {name: welcome.name})));
  if (welcome.kind === 'vip') {
    box.append(el('div', {class: 'vip-badge'}, 'VIP'));
    if (welcome.appointment) {
      const a = welcome.appointment;
      box.append(el('p', {class: 'appointment'}, t('appointment', {time: a.time, purpose: a.purpose,
        place: lang === 'en' ? a.meeting_point_en : a.meeting_point_zh})));
    }
  }
}

/* Redraw a part only when its data changed: a button must not be replaced under a customer's finger. */
const drawn = {};
function changed(part, data) {
  const key = lang + JSON.stringify(data);
  if (drawn[part] === key) return false;
  drawn[part] = key;
  return true;
}

function show(mode) {
  for (const section of document.querySelectorAll('#stage > .mode')) section.hidden = section.id !== mode;
  document.body.dataset.mode = mode;
}

function renderConsent(request) {
  const dialog = document.getElementById('consent-dialog');
  const id = request && screenToken ? request.id : null;
  dialog.hidden = !id;
  consentShown = id;
}

async function answerConsent(agree) {
  const id = consentShown;
  if (!id) return;
  document.getElementById('consent-dialog').hidden = true;
  consentShown = null;
  const response = await fetch('/api/screen/consent', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-Screen-Token': screenToken},
    body: JSON.stringify({request_id: id, agree})});
  if (response.status === 403) console.warn('this page is not the robot screen (or the robot restarted: reopen it from the kiosk)');
}

function render(s) {
  state = s;
  renderConsent(s.consent_request);
  const mode = s.mode;
  show(mode);
  document.getElementById('face-notice').hidden = !s.face_recognition;
  const banner = document.getElementById('safety-banner');
  banner.hidden = s.notice !== 'safety_stop';
  banner.textContent = t('safety_stop');
  if (mode === 'attract' && changed('attract', [s.attract, attractPage])) {
    renderAttract(s.attract);
  } else if (mode === 'customer') {
    if (changed('welcome', s.welcome)) renderWelcome(s.welcome);
    if (changed('captions', s.captions)) renderCaptions(document.getElementById('captions'), s.captions, 3);
    document.getElementById('answer-buttons').hidden = !s.question;
    if (changed('cards', [s.cards, s.cards_kind, s.cards.length ? null : s.attract.promotions])) {
      // nothing asked yet: the store's offers, so the screen is never empty
      const shown = s.cards.length ? s.cards : s.attract.promotions.slice(0, 4);
      document.getElementById('cards-title').textContent = shown.length ? t(s.cards.length ? (s.cards_kind || 'products') : 'offers') : '';
      const cards = clear(document.getElementById('cards'));
      shown.forEach(c => cards.append(productCard(c, true)));
    }
    const code = document.getElementById('purchase-code');
    code.hidden = !s.code;
    code.textContent = s.code ? t('code', {code: s.code}) : '';
  } else if (mode === 'guiding') {
    const r = s.route;
    document.getElementById('route-destination').textContent = t('destination', {zone: name(r)});
    document.getElementById('route-remaining').textContent =
      r.remaining_m === null ? '' : t('remaining', {m: Math.max(0, Math.round(r.remaining_m))});
    if (changed('guide-captions', s.captions)) renderCaptions(document.getElementById('guide-captions'), s.captions, 1);
    if (config.map) {
      routeMap.setInfo(config.map);
      routeMap.draw({pose: s.pose, path: r.path, goal: r.goal});
    } else {
      loadConfig();
    }
  } else if (mode === 'arrived' && changed('arrival', [s.arrival, s.captions])) {
    const a = s.arrival;
    const card = clear(document.getElementById('arrival-card'));
    card.append(el('h1', {class: 'arrival-zone'}, t('arrived', {zone: name(a)})));
    if (a.tour) card.append(el('div', {class: 'tour-stop'}, t('tour_stop', {i: a.stop_index + 1, n: a.stop_count})));
    renderCaptions(document.getElementById('arrival-captions'), s.captions, 2);
    const products = clear(document.getElementById('arrival-products'));
    a.products.forEach(c => products.append(productCard(c, false)));
  }
}

/* The idle attract loop: the store's offers, then its best sellers, four cards a page, a page every 8 s. */
const ATTRACT_PAGE_SIZE = 4;
const ATTRACT_PERIOD_MS = 8000;
let attractPage = 0;

function attractPages(attract) {
  const pages = [];
  for (const [key, items] of [['offers', attract.promotions], ['best_sellers', attract.best_sellers]]) {
    for (let i = 0; i < items.length; i += ATTRACT_PAGE_SIZE) pages.push({key, cards: items.slice(i, i + ATTRACT_PAGE_SIZE)});
  }
  return pages;
}

function renderAttract(attract) {
  const pages = attractPages(attract);
  const page = pages.length ? pages[attractPage % pages.length] : {key: 'offers', cards: []};
  document.getElementById('attract-title').textContent = t(page.key);
  const cards = clear(document.getElementById('attract-cards'));
  page.cards.forEach(c => cards.append(productCard(c, true)));
  const dots = clear(document.getElementById('attract-pages'));
  pages.forEach((_, i) => dots.append(el('span', {class: 'dot' + (i === attractPage % pages.length ? ' on' : '')})));
}

function nextAttractPage() {
  if (!state || state.mode !== 'attract') return;
  attractPage = (attractPage + 1) % Math.max(1, attractPages(state.attract).length);
  render(state);
}

function renderButtons() {
  const chips = clear(document.getElementById('category-buttons'));
  for (const category of config.categories.slice(0, 12)) {
    chips.append(el('button', {class: 'chip', 'data-category': category.id,
      onclick: () => say(t('say_category', {name: name(category)}))}, name(category)));
  }
  const zones = clear(document.getElementById('zone-buttons'));
  for (const zone of config.zones) {
    zones.append(el('button', {class: 'chip', 'data-zone': zone.id, onclick: () => {
      document.getElementById('zone-dialog').hidden = true;
      say(t('say_zone', {name: name(zone)}));
    }}, name(zone)));
  }
}

async function loadConfig() {
  try {
    const response = await fetch('/api/screen/config');
    config = await response.json();
    renderButtons();
    if (state) render(state);
  } catch (e) { /* retried on the next update */ }
}

function wire() {
  routeMap = new StoreMap(document.getElementById('route-map'));
  document.getElementById('lang-toggle').addEventListener('click', () => setLanguage(lang === 'zh' ? 'en' : 'zh'));
  document.getElementById('ask-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('ask-text');
    const text = input.value.trim();
    if (text) say(text);
    input.value = '';
  });
  document.getElementById('consent-agree').addEventListener('click', () => answerConsent(true));
  document.getElementById('consent-decline').addEventListener('click', () => answerConsent(false));
  document.getElementById('answer-yes').addEventListener('click', () => say(t('say_yes')));
  document.getElementById('answer-no').addEventListener('click', () => say(t('say_no')));
  document.getElementById('call-staff').addEventListener('click', () => say(t('say_staff')));
  document.getElementById('take-me').addEventListener('click', () => { document.getElementById('zone-dialog').hidden = false; });
  const openCheckin = () => {
    document.getElementById('face-dialog').hidden = true;
    document.getElementById('checkin-dialog').hidden = false;
  };
  document.getElementById('vip-checkin').addEventListener('click', openCheckin);
  document.getElementById('face-checkin').addEventListener('click', openCheckin);
  document.getElementById('face-notice').addEventListener('click', () => { document.getElementById('face-dialog').hidden = false; });
  document.getElementById('checkin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const who = document.getElementById('checkin-name').value.trim();
    const time = document.getElementById('checkin-time').value;
    if (!who || !time) return;
    document.getElementById('checkin-dialog').hidden = true;
    say(t('say_checkin', {name: who, time}));
  });
  document.querySelectorAll('[data-close]').forEach(button => button.addEventListener('click', () => {
    document.getElementById(button.dataset.close).hidden = true;
  }));
  const params = new URLSearchParams(location.search);
  setLanguage(params.get('lang') === 'en' ? 'en' : 'zh');
  loadConfig();
  setInterval(nextAttractPage, ATTRACT_PERIOD_MS);
  const streamUrl = '/api/screen/stream' + (screenToken ? '?screen=' + encodeURIComponent(screenToken) : '');
  liveStream(streamUrl, render, (up) => document.body.classList.toggle('offline', !up));
}

document.addEventListener('DOMContentLoaded', wire);
