// The cairn dashboard: reads the node's state through the RPC API (POST /api/v0/…) and the
// metrics endpoint, and changes it only through the API (add). Served by the daemon itself
// from the binary; no build step, no external requests.
'use strict'

const TOKEN_KEY = 'cairn-api-token'
const REFRESH_MS = 2000
const CHART_SAMPLES = 90
const HEALTH_MAX_AGE_MS = 5 * 60 * 1000

const $ = id => document.getElementById(id)
const state = { gateway: null, bw: [], lastBw: null, health: new Map(), checking: false, locked: false }

class Unauthorized extends Error {}

function token () { return sessionStorage.getItem(TOKEN_KEY) || '' }

function headers () {
  const t = token()
  return t ? { Authorization: `Bearer ${t}` } : {}
}

// One API command; the answer as JSON (or ndjson rows as an array), errors as exceptions
// carrying the node's message.
async function call (cmd, params = {}, body = undefined) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    for (const one of [].concat(v)) q.append(k, String(one))
  }
  const resp = await fetch(`/api/v0/${cmd}?${q}`, { method: 'POST', headers: headers(), body })
  const text = await resp.text()
  if (resp.status === 401) throw new Unauthorized(messageOf(text))
  if (!resp.ok) throw new Error(messageOf(text) || `${cmd}: HTTP ${resp.status}`)
  if (!text.trim()) return null
  const lines = text.trim().split('\n')
  return lines.length > 1 ? lines.map(l => JSON.parse(l)) : JSON.parse(lines[0])
}

function messageOf (text) {
  try { return JSON.parse(text).Message } catch { return text }
}

function el (tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')))
  return e
}

function bytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`
}

function short (s, keep = 10) {
  return s.length > 2 * keep + 1 ? `${s.slice(0, keep)}…${s.slice(-keep)}` : s
}

// The gateway as this browser reaches it: an unspecified bind address becomes the page's host.
function gatewayBase () {
  if (!state.gateway) return null
  const u = new URL(state.gateway)
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = location.hostname
  return u.origin
}

function gatewayLink (cid) {
  const base = gatewayBase()
  if (!base) return el('span', { class: 'muted' }, 'no gateway')
  return el('a', { href: `${base}/ipfs/${cid}/`, target: '_blank', rel: 'noopener', class: 'gateway-link' }, 'open')
}

function setStatus (text, kind) {
  const s = $('status')
  s.textContent = text
  s.className = `badge ${kind || ''}`
}

async function showIdentity () {
  const id = await call('id')
  state.gateway = id.Gateway || null
  $('peer-id').textContent = id.ID
  $('agent').textContent = id.AgentVersion
  $('profile').textContent = id.Profile || '—'
  const c = id.Connections || {}
  const reach = c.Reachability || 'unknown'
  const r = $('reachability')
  r.textContent = reach + (reach === 'private' && c.RelayReservations ? ` (reachable through ${c.RelayReservations} relay(s))` : '')
  r.className = `state-${reach}`
  $('port-mapping').textContent = c.PortMapping || 'off'
  $('connections').textContent =
    `${c.Direct || 0} direct, ${c.Relayed || 0} relayed, ${c.HolePunched || 0} hole-punched (${c.HolePunchFailed || 0} punches failed)`
  $('addresses').replaceChildren(...(id.Addresses || []).map(a => el('li', {}, a)))
}

async function showPeers () {
  const list = (await call('swarm/peers')).Peers || []
  const relayed = list.filter(p => p.Addr.includes('/p2p-circuit')).length
  $('peer-count').textContent = list.length
  $('peers-direct').textContent = list.length - relayed
  $('peers-relayed').textContent = relayed
  $('peer-rows').replaceChildren(...list.map(p => el('tr', { class: 'peer' },
    el('td', { class: 'mono', title: p.Peer }, short(p.Peer)),
    el('td', {}, p.Addr.includes('/p2p-circuit') ? 'relayed' : 'direct'),
    el('td', { class: 'mono small' }, p.Addr))))
}

// libp2p's byte counters summed by direction, from the Prometheus text.
async function bandwidthTotals () {
  const resp = await fetch('/debug/metrics/prometheus', { headers: headers() })
  if (resp.status === 401) throw new Unauthorized('the metrics need the API token')
  if (!resp.ok) throw new Error(`metrics: HTTP ${resp.status}`)
  const totals = { in: 0, out: 0 }
  for (const line of (await resp.text()).split('\n')) {
    if (!line.startsWith('libp2p_bandwidth_bytes_total{')) continue
    const value = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (line.includes('direction="Inbound"')) totals.in += value
    else if (line.includes('direction="Outbound"')) totals.out += value
  }
  return totals
}

async function sampleBandwidth () {
  const now = performance.now()
  const t = await bandwidthTotals()
  $('total-in').textContent = bytes(t.in)
  $('total-out').textContent = bytes(t.out)
  if (state.lastBw) {
    const secs = Math.max((now - state.lastBw.at) / 1000, 0.001)
    const sample = { in: Math.max(0, t.in - state.lastBw.in) / secs, out: Math.max(0, t.out - state.lastBw.out) / secs }
    state.bw.push(sample)
    if (state.bw.length > CHART_SAMPLES) state.bw.shift()
    $('rate-in').textContent = `${bytes(sample.in)}/s`
    $('rate-out').textContent = `${bytes(sample.out)}/s`
  }
  state.lastBw = { at: now, ...t }
  drawChart()
}

function drawChart () {
  const canvas = $('bw-chart')
  const ctx = canvas.getContext('2d')
  const { width: w, height: h } = canvas
  ctx.clearRect(0, 0, w, h)
  const peak = Math.max(1, ...state.bw.map(s => Math.max(s.in, s.out)))
  canvas.dataset.samples = state.bw.length
  canvas.dataset.peak = Math.round(Math.max(0, ...state.bw.map(s => Math.max(s.in, s.out))))
  ctx.strokeStyle = '#d9dee6'
  ctx.beginPath()
  for (let i = 1; i < 4; i++) { ctx.moveTo(0, (h * i) / 4); ctx.lineTo(w, (h * i) / 4) }
  ctx.stroke()
  ctx.fillStyle = '#6a7383'
  ctx.font = '11px sans-serif'
  ctx.fillText(`${bytes(peak)}/s`, 4, 12)
  for (const [dir, colour] of [['in', '#2f7dd1'], ['out', '#d1742f']]) {
    ctx.strokeStyle = colour
    ctx.lineWidth = 2
    ctx.beginPath()
    state.bw.forEach((s, i) => {
      const x = w - (state.bw.length - 1 - i) * (w / (CHART_SAMPLES - 1))
      const y = h - 2 - (s[dir] / peak) * (h - 16)
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)
    })
    ctx.stroke()
  }
}

function healthCell (path) {
  const h = state.health.get(path)
  if (!h) return el('td', { class: 'health muted' }, 'not checked yet')
  if (h.error) return el('td', { class: 'health error', title: h.error }, 'check failed')
  // The check counts other hosts: this node is left out.
  const r = h.report
  const text = r.MinHolders === 0
    ? 'no other host holds all of it: losing this node would lose blocks'
    : `${r.Holders} other host(s) hold all of it; its weakest block is held by ${r.MinHolders}` +
      (r.SurvivesSingleLoss ? ', so losing any one host loses nothing' : '')
  return el('td', { class: `health ${r.SurvivesSingleLoss ? 'good-text' : 'error'}` }, text)
}

async function showPins () {
  const keys = (await call('pin/ls')).Keys || {}
  const cids = Object.keys(keys)
  $('pin-count').textContent = cids.length
  state.pins = cids
  $('pin-rows').replaceChildren(...cids.map(cid => el('tr', { class: 'pin', 'data-cid': cid },
    el('td', { class: 'mono', title: cid }, short(cid, 12)),
    el('td', {}, keys[cid].Type),
    healthCell(cid),
    el('td', {}, gatewayLink(cid)))))
}

async function showFollows () {
  const rows = [].concat((await call('follow/ls')) || []).filter(r => r && r.Target)
  $('follow-count').textContent = rows.length
  state.follows = rows.map(r => r.Target)
  $('follow-rows').replaceChildren(...rows.map(r => el('tr', { class: 'follow' },
    el('td', {}, r.Label || '—'),
    el('td', { class: 'mono', title: r.Target }, short(r.Target)),
    el('td', { class: 'mono' }, r.Held ? short(r.Held.Cid, 12) : 'none yet'),
    el('td', {}, r.LastError ? `error: ${r.LastError}` : r.Fetching ? `fetching ${r.Fetching.Blocks} blocks` : 'up to date',
      ...(r.Warnings || []).map(w => el('div', { class: 'error small' }, w))),
    healthCell(r.Target))))
}

// One health check at a time, for the pin or follow checked longest ago.
async function checkHealth () {
  if (state.checking) return
  const due = [...(state.follows || []), ...(state.pins || [])]
    .find(p => !state.health.has(p) || Date.now() - state.health.get(p).at > HEALTH_MAX_AGE_MS)
  if (!due) return
  state.checking = true
  try {
    state.health.set(due, { at: Date.now(), report: await call('health', { arg: due, timeout: '60s' }) })
  } catch (e) {
    if (e instanceof Unauthorized) throw e
    state.health.set(due, { at: Date.now(), error: e.message })
  } finally {
    state.checking = false
  }
}

async function addFiles (files) {
  const out = $('add-result')
  for (const file of files) {
    out.textContent = `adding ${file.name} (${bytes(file.size)})…`
    out.className = 'small'
    const form = new FormData()
    form.append('file', file, file.name)
    try {
      const rows = [].concat(await call('add', { pin: true, 'cid-version': 1 }, form))
      const root = rows.filter(r => r.Hash).pop()
      out.replaceChildren(`added ${file.name}: `, el('span', { class: 'mono', id: 'added-cid' }, root.Hash), ' ', gatewayLink(root.Hash))
    } catch (e) {
      out.textContent = `adding ${file.name} failed: ${e.message}`
      out.className = 'small error'
      if (e instanceof Unauthorized) askToken()
      return
    }
  }
  await refresh()
}

function askToken (message = '') {
  state.locked = true
  setStatus('locked: API token needed', 'bad')
  $('token-error').textContent = message
  const d = $('token-dialog')
  if (!d.open) d.showModal()
}

async function refresh () {
  try {
    await showIdentity()
    await Promise.all([showPeers(), showPins(), showFollows(), sampleBandwidth()])
    state.locked = false
    setStatus('running', 'ok')
    checkHealth().catch(() => {})
  } catch (e) {
    if (e instanceof Unauthorized) {
      askToken(token() ? 'That token was refused.' : '')
    } else {
      setStatus(`unreachable: ${e.message}`, 'bad')
    }
  }
}

function wire () {
  $('token-form').addEventListener('submit', () => {
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim())
    state.locked = false
    refresh()
  })
  $('file-input').addEventListener('change', e => addFiles([...e.target.files]))
  const zone = $('drop-zone')
  zone.addEventListener('dragover', e => { e.preventDefault(); zone.classList.add('over') })
  zone.addEventListener('dragleave', () => zone.classList.remove('over'))
  zone.addEventListener('drop', e => {
    e.preventDefault()
    zone.classList.remove('over')
    addFiles([...e.dataTransfer.files])
  })
  refresh()
  setInterval(() => { if (!state.locked) refresh() }, REFRESH_MS)
}

wire()
