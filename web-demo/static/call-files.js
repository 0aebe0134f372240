// Switchyard call page: the "Files & chat" tab (file transfers with progress, chat, the recipient
// selector) and the sidebar's tabs. File transfer and chat themselves live in transfer.js; this
// module only draws them. It never touches the video tiles or the signaling client's media.

import { $, ICONS, formatBytes, formatDuration, showBanner, toast } from './call-ui.js';

/** @type {import('./switchyard.js').SwitchyardClient} */
let client = null;
/** @type {import('./transfer.js').FileTransfers} */
let files = null;
/** identity -> display name, kept after people leave (for transfer and chat labels) */
const knownNames = new Map();
let activeTab = 'people';
/** transfers whose row needs redrawing, and the timer that will do it */
const dirtyTransfers = new Map();
let transferTimer = null;

/** Resolves with the transfer's snapshot once the sender is done, whatever the outcome. */
export async function sendFileHook(file, to) {
  const before = new Set(files.list().map((t) => t.id));
  try {
    return await files.send(file, to || null);
  } catch {
    return files.list().find((t) => t.direction === 'send' && !before.has(t.id)) || null;
  }
}

/** Wires the tabs, the drop zone, the chat form and the transfer list to `theFiles`. */
export function initFiles(theClient, theFiles) {
  client = theClient;
  files = theFiles;
  $('tab-people').onclick = () => showTab('people');
  $('tab-files').onclick = () => showTab('files');
  $('toggle-files').innerHTML = `${ICONS.files}<span>Files &amp; chat</span>`;
  $('toggle-files').onclick = () => {
    const open = document.body.classList.contains('people-open') && activeTab === 'files';
    showTab('files');
    document.body.classList.toggle('people-open', !open);
  };

  const input = $('file-input');
  input.onchange = () => {
    sendFiles(input.files);
    input.value = '';
  };
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    sendFiles(e.dataTransfer.files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the call.
  for (const type of ['dragover', 'drop']) document.addEventListener(type, (e) => e.preventDefault());

  $('file-to').onchange = () => {
    const to = $('file-to').value;
    $('chat-input').placeholder = to ? `Message ${nameOf(to)} privately` : 'Message everyone';
  };
  $('chat-form').onsubmit = (e) => {
    e.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text) return;
    files
      .chat(text, $('file-to').value || null)
      .then(() => ($('chat-input').value = ''))
      .catch((err) => showBanner(`Message not sent: ${err.message}`, 'error'));
  };

  client.addEventListener('dataOpen', renderDataStatus);
  client.addEventListener('dataClose', renderDataStatus);
  client.addEventListener('dataError', ({ detail }) => {
    if (detail.code === 'permission_denied') showBanner(detail.message || 'You may not send files or messages.', 'error', detail.code);
    else console.warn('switchyard data error', detail);
  });
  files.addEventListener('update', ({ detail }) => scheduleTransferRender(detail));
  files.addEventListener('chat', ({ detail }) => {
    addChatLine(detail);
    if (!detail.self) noteUnread();
  });
  renderDataStatus();
}

export function showTab(tab) {
  activeTab = tab;
  for (const name of ['people', 'files']) {
    const on = name === tab;
    $(`tab-${name}`).setAttribute('aria-selected', String(on));
    $(`tab-${name}`).classList.toggle('active', on);
    $(`panel-${name}`).hidden = !on;
  }
  if (tab === 'files') {
    $('unread-count').hidden = true;
    $('unread-count').textContent = '0';
  }
}

function noteUnread() {
  if (activeTab === 'files' && (document.body.classList.contains('people-open') || innerWidth > 860)) return;
  const badge = $('unread-count');
  badge.textContent = String(Number(badge.textContent) + 1);
  badge.hidden = false;
}

function renderDataStatus() {
  const el = $('data-status');
  el.dataset.ready = String(client.dataReady);
  el.textContent = client.dataReady
    ? 'Ready: files and messages go through the server to the people in this call.'
    : 'File transfer and chat: connecting…';
}

function sendFiles(list) {
  const to = $('file-to').value || null;
  for (const file of [...(list || [])]) files.send(file, to).catch(() => {}); // outcome shown in its row
  showTab('files');
}

export function nameOf(identity) {
  if (!identity) return 'someone';
  if (identity === client.you?.identity) return 'you';
  for (const p of client.participants.values()) if (p.identity === identity) return p.name;
  return knownNames.get(identity) || identity;
}

/** Keep the recipient selector in step with the participant list. */
export function renderRecipients() {
  const select = $('file-to');
  const current = select.value;
  const people = [...client.participants.values()];
  for (const p of people) knownNames.set(p.identity, p.name);
  const signature = JSON.stringify(people.map((p) => [p.identity, p.name]));
  if (select.dataset.signature === signature) return; // unchanged: leave an open menu alone
  select.dataset.signature = signature;
  const options = [new Option('Everyone', ''), ...people.map((p) => new Option(p.name, p.identity))];
  select.replaceChildren(...options);
  select.value = people.some((p) => p.identity === current) ? current : '';
  if (select.value !== current) select.onchange?.();
}

/** Progress updates arrive per 64 KiB chunk: redraw at most ~8 times a second (end states at once). */
function scheduleTransferRender(t) {
  dirtyTransfers.set(t.key, t);
  if (t.state !== 'sending' && t.state !== 'receiving') return flushTransfers();
  if (!transferTimer) transferTimer = setTimeout(flushTransfers, 120);
}

function flushTransfers() {
  clearTimeout(transferTimer);
  transferTimer = null;
  for (const t of dirtyTransfers.values()) renderTransfer(t);
  dirtyTransfers.clear();
}

function renderTransfer(t) {
  const list = $('transfer-list');
  let li = list.querySelector(`[data-key="${CSS.escape(t.key)}"]`);
  if (!li) {
    li = document.createElement('li');
    li.className = 'xfer';
    li.dataset.key = t.key;
    li.dataset.id = t.id;
    li.dataset.direction = t.direction;
    li.innerHTML = `
      <div class="xfer-top"><span class="xfer-dir"></span><span class="xfer-name"></span>
        <button class="icon-btn xfer-cancel" type="button" title="Cancel" aria-label="Cancel transfer">×</button></div>
      <div class="xfer-peer"></div>
      <progress class="xfer-bar" max="1" value="0"></progress>
      <div class="xfer-meta"><span class="xfer-bytes"></span><span class="xfer-rate"></span><span class="xfer-eta"></span></div>
      <div class="xfer-status"><span class="xfer-state"></span><a class="xfer-download" hidden>Download</a></div>`;
    li.querySelector('.xfer-cancel').onclick = () => files.cancel(t.id);
    list.prepend(li);
    if (t.direction === 'receive') {
      noteUnread();
      toast(`${nameOf(t.from)} is sending “${t.name}”`);
    }
  }
  const active = t.state === 'sending' || t.state === 'receiving';
  li.dataset.state = t.state;
  li.querySelector('.xfer-dir').textContent = t.direction === 'send' ? '↑' : '↓';
  li.querySelector('.xfer-name').textContent = t.name;
  li.querySelector('.xfer-name').title = t.name;
  li.querySelector('.xfer-peer').textContent =
    t.direction === 'send' ? `to ${t.to ? nameOf(t.to) : 'everyone'}` : `from ${nameOf(t.from)}`;
  const bar = li.querySelector('.xfer-bar');
  bar.max = Math.max(t.size, 1);
  bar.value = t.size ? t.bytes : t.state === 'sending' || t.state === 'receiving' ? 0 : 1;
  li.querySelector('.xfer-bytes').textContent = `${formatBytes(t.bytes)} / ${formatBytes(t.size)}`;
  li.querySelector('.xfer-rate').textContent = active && t.rate ? `${(t.rate / 1e6).toFixed(1)} MB/s` : '';
  li.querySelector('.xfer-eta').textContent =
    active && t.rate > 0 ? `${formatDuration((t.size - t.bytes) / t.rate)} left` : '';
  li.querySelector('.xfer-cancel').hidden = !active;
  const state = li.querySelector('.xfer-state');
  state.textContent =
    t.state === 'failed' ? `failed: ${t.error || 'unknown error'}`
    : t.state === 'cancelled' ? `cancelled${t.error ? ` (${t.error})` : ''}`
    : t.state === 'verified' ? 'verified ✓ (SHA-256 matches)'
    : t.state === 'sent' && !t.to ? 'sent (to everyone)'
    : t.state;
  state.title = t.sha256 ? `SHA-256 ${t.sha256}` : '';
  const link = li.querySelector('.xfer-download');
  link.hidden = !(t.state === 'verified' && t.url);
  if (t.url) {
    link.href = t.url;
    link.download = t.name;
  }
}

function addChatLine(m) {
  const li = document.createElement('li');
  li.className = m.self ? 'chat-line self' : 'chat-line';
  li.dataset.from = m.from || '';
  const who = document.createElement('span');
  who.className = 'chat-who';
  who.textContent = m.self ? 'You' : nameOf(m.from);
  if (m.to?.length) who.textContent += m.self ? ` → ${m.to.map(nameOf).join(', ')}` : ' (privately)';
  const time = document.createElement('time');
  time.textContent = new Date(m.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = m.text;
  li.append(who, time, text);
  const log = $('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom || m.self) log.scrollTop = log.scrollHeight;
}
