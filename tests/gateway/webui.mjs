// The operator's dashboard in a real browser: node B (connected to node A) serves /webui on
// its API port; headless Chromium opens it and checks the peer count, a bandwidth chart with
// traffic in it (B fetched a file from A), adds a file through the page's file picker and sees
// its pin appear (with a link to B's gateway), and saves a screenshot. Then B is restarted with
// `network.api_token` set: the page asks for the token and cannot add anything without it, a
// page of another origin cannot either, and with the token entered the page works and keeps it
// across a reload. Run inside a loopback-only network namespace. Prints one line per check and
// "N passed, M failed".
import { chromium } from 'playwright-core'
import { readFileSync, writeFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { args, cairn, initRepo, startDaemon, swarmAddr } from './cairn.mjs'

const { cairn: bin, work, screenshot, chromium: chromiumPath = '/usr/bin/chromium' } = args(process.argv)
let passed = 0
let failed = 0
const check = (name, ok, detail = '') => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`)
  ok ? passed++ : failed++
}
const browserArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

// The API's URL from the `api` file the daemon writes (`/ip4/127.0.0.1/tcp/PORT`).
const apiBase = repo => {
  const [, , ip, , port] = readFileSync(join(repo, 'api'), 'utf8').trim().split('/')
  return `http://${ip}:${port}`
}
const gatewayOf = repo => readFileSync(join(repo, 'gateway'), 'utf8').trim()
const pins = repo => cairn(bin, repo, ['pin', 'ls', '--type', 'recursive'])

const a = initRepo(bin, join(work, 'a'))
const b = initRepo(bin, join(work, 'b'))
const da = await startDaemon(bin, a, join(work, 'a.log'))
let db = await startDaemon(bin, b, join(work, 'b.log'))
let browser
try {
  cairn(bin, b, ['swarm', 'connect', swarmAddr(bin, a)])
  const api = apiBase(b)
  browser = await chromium.launch({ executablePath: chromiumPath, args: browserArgs, timeout: 60_000 })
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  const errors = []
  page.on('pageerror', e => errors.push(String(e)))
  await page.goto(`${api}/webui/`, { waitUntil: 'load', timeout: 60_000 })

  await page.waitForFunction(() => document.getElementById('peer-count').textContent === '1', null, { timeout: 30_000 })
    .catch(() => {})
  const peerCount = await page.textContent('#peer-count')
  check('the page shows one connected peer', peerCount === '1', `peer count ${peerCount}`)
  const direct = await page.textContent('#peers-direct')
  check('the peer is shown as direct', direct === '1', `direct ${direct}`)

  // Traffic for the chart: B fetches 4 MiB from A while the page samples.
  const src = join(work, 'traffic.bin')
  writeFileSync(src, Buffer.alloc(4 << 20, 7).map((_, i) => (i * 2654435761) >>> 24))
  const fetched = cairn(bin, a, ['add', '-Q', src]).trim()
  cairn(bin, b, ['cat', fetched], { encoding: 'buffer' })
  await page.waitForFunction(() => {
    const c = document.getElementById('bw-chart')
    return Number(c.dataset.peak) > 1_000_000 && Number(c.dataset.samples) >= 2
  }, null, { timeout: 30_000 })
    .catch(() => {})
  const chart = await page.$eval('#bw-chart', c => ({ samples: Number(c.dataset.samples), peak: Number(c.dataset.peak) }))
  check('the bandwidth chart has samples with the transfer in them', chart.samples >= 2 && chart.peak > 1_000_000,
    JSON.stringify(chart))
  // The canvas really was drawn on: some pixels are not blank.
  const painted = await page.$eval('#bw-chart', c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
    let n = 0
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++
    return n
  })
  check('the chart is drawn', painted > 500, `${painted} painted pixels`)

  // Add a file through the file picker; its pin appears in the table.
  const content = Buffer.from(`added through the dashboard at ${Date.now()}\n`)
  await page.setInputFiles('#file-input', { name: 'hello.txt', mimeType: 'text/plain', buffer: content })
  await page.waitForSelector('#added-cid', { timeout: 30_000 }).catch(() => {})
  const added = (await page.textContent('#added-cid').catch(() => '')) || ''
  check('the page added the file', added.startsWith('baf'), `CID ${added}`)
  await page.waitForSelector(`tr.pin[data-cid="${added}"]`, { timeout: 15_000 }).catch(() => {})
  const row = await page.$(`tr.pin[data-cid="${added}"]`)
  check('the new pin appears in the pin table', row !== null)
  check('the node really pinned it', pins(b).includes(added))
  const href = row ? await row.$eval('a.gateway-link', l => l.href).catch(() => '') : ''
  const gateway = gatewayOf(b)
  check('the pin links to the gateway', href === `${gateway}/ipfs/${added}/`, href)
  const served = await (await fetch(`${gateway}/ipfs/${added}`)).text()
  check('the gateway serves the added bytes', served === content.toString())
  // The pin's health is checked in the background (one check at a time).
  await page.waitForFunction(cid => {
    const cell = document.querySelector(`tr.pin[data-cid="${cid}"] td.health`)
    return cell && /holds?/.test(cell.textContent)
  }, added, { timeout: 60_000 }).catch(() => {})
  const health = await page.$eval(`tr.pin[data-cid="${added}"] td.health`, c => c.textContent).catch(e => String(e))
  check("the pin's health is shown", /holds?/.test(health), health)
  await page.screenshot({ path: screenshot, fullPage: true })
  check('a screenshot was saved', statSync(screenshot).size > 10_000, `${statSync(screenshot).size} bytes`)
  check('no script errors on the page', errors.length === 0, errors.join('; '))
  await page.close()

  // With a token: restart B with network.api_token set.
  await db.stop()
  cairn(bin, b, ['config', 'set', 'network.api_token', 'sesame-7f3a'])
  db = await startDaemon(bin, b, join(work, 'b2.log'))
  const api2 = apiBase(b)
  const before = pins(b)
  const context = await browser.newContext()
  const locked = await context.newPage()
  await locked.goto(`${api2}/webui/`, { waitUntil: 'load', timeout: 60_000 })
  await locked.waitForSelector('#token-dialog[open]', { timeout: 15_000 }).catch(() => {})
  check('without the token the page asks for it', await locked.$('#token-dialog[open]') !== null)
  // Try to add anyway (the picker sits under the dialog; set the file directly).
  await locked.setInputFiles('#file-input', { name: 'sneaky.txt', mimeType: 'text/plain', buffer: Buffer.from('no token\n') })
  await locked.waitForFunction(() => /failed/.test(document.getElementById('add-result').textContent), null, { timeout: 15_000 })
    .catch(() => {})
  const refused = await locked.textContent('#add-result')
  check('an add without the token is refused', /failed/.test(refused), refused)
  check('and pinned nothing', pins(b) === before)

  // A page of another origin (B's gateway) posting to the API is refused too.
  const other = await context.newPage()
  const gateway2 = gatewayOf(b)
  await other.goto(`${gateway2}/ipfs/bafkqaaa`, { waitUntil: 'load', timeout: 30_000 })
  await other.evaluate(async url => {
    const form = new FormData()
    form.append('file', new Blob(['cross-origin\n']), 'x.txt')
    await fetch(`${url}/api/v0/add`, { method: 'POST', body: form, mode: 'no-cors', headers: {} }).catch(() => {})
  }, api2)
  check('a page of another origin pinned nothing', pins(b) === before)

  // Enter the token: the page unlocks, adds, and keeps the token across a reload.
  await locked.fill('#token-input', 'sesame-7f3a')
  await locked.click('#token-form button')
  await locked.waitForFunction(() => document.getElementById('status').textContent === 'running', null, { timeout: 15_000 })
    .catch(() => {})
  check('with the token the page unlocks', (await locked.textContent('#status')) === 'running')
  await locked.setInputFiles('#file-input', { name: 'with-token.txt', mimeType: 'text/plain', buffer: Buffer.from(`token ${Date.now()}\n`) })
  await locked.waitForSelector('#added-cid', { timeout: 30_000 }).catch(() => {})
  const second = (await locked.textContent('#added-cid').catch(() => '')) || ''
  check('with the token the page adds and pins', second.startsWith('baf') && pins(b).includes(second), second)
  await locked.reload({ waitUntil: 'load' })
  await locked.waitForFunction(() => document.getElementById('status').textContent === 'running', null, { timeout: 15_000 })
    .catch(() => {})
  check('the token is kept for the session', (await locked.textContent('#status')) === 'running' &&
    await locked.$('#token-dialog[open]') === null)
} catch (e) {
  check('the scenario ran to the end', false, e.stack)
} finally {
  if (browser) await browser.close()
  await db.stop()
  await da.stop()
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
