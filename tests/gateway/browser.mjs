// A real browser on cairn's gateway: node A adds a small site (HTML, CSS, three PNG images
// and a ~20 MB WAV file, all generated here), node B pins it over Bitswap, and headless
// Chromium opens it on B's gateway at the site's own origin, {cid}.ipfs.localhost. Checks:
// every image decoded (naturalWidth > 0); seeking the audio element to its middle makes
// Chromium send a Range request starting past byte 0, answered 206 with the file's bytes;
// with A stopped, a fresh browser still loads the page from B.
// Run inside a loopback-only network namespace. Prints one line per check and
// "N passed, M failed".
import { chromium } from 'playwright-core'
import { deflateSync, crc32 } from 'node:zlib'
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { args, cairn, initRepo, startDaemon, swarmAddr } from './cairn.mjs'

const { cairn: bin, work, chromium: chromiumPath = '/usr/bin/chromium' } = args(process.argv)
let passed = 0
let failed = 0
const check = (name, ok, detail = '') => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`)
  ok ? passed++ : failed++
}

// A solid-colour RGB PNG of w×h pixels.
function png (w, h, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(w, 0)
  ihdr.writeUInt32BE(h, 4)
  ihdr.set([8, 2, 0, 0, 0], 8)
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => [r, g, b]).flat())])
  const raw = Buffer.concat(Array.from({ length: h }, () => row))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))
  ])
}

// 16-bit mono PCM WAV of `seconds` of a slowly sweeping tone (different bytes everywhere).
function wav (seconds, rate = 44100) {
  const n = seconds * rate
  const data = Buffer.alloc(n * 2)
  for (let i = 0; i < n; i++) {
    const f = 220 + 220 * (i / n)
    data.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * f * i / rate)), i * 2)
  }
  const h = Buffer.alloc(44)
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8)
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22)
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34)
  h.write('data', 36); h.writeUInt32LE(data.length, 40)
  return Buffer.concat([h, data])
}

function makeSite (dir) {
  mkdirSync(join(dir, 'img'), { recursive: true })
  writeFileSync(join(dir, 'index.html'), `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cairn site</title><link rel="stylesheet" href="style.css"></head>
<body><h1>A site served by cairn</h1>
<img src="img/red.png" alt="red"><img src="img/green.png" alt="green"><img src="img/blue.png" alt="blue">
<audio id="media" src="media/sound.wav" preload="metadata" controls></audio>
</body></html>
`)
  writeFileSync(join(dir, 'style.css'), 'body { font-family: sans-serif; } img { margin: 4px; }\n')
  writeFileSync(join(dir, 'img', 'red.png'), png(64, 48, [220, 30, 30]))
  writeFileSync(join(dir, 'img', 'green.png'), png(32, 32, [30, 200, 30]))
  writeFileSync(join(dir, 'img', 'blue.png'), png(100, 20, [30, 30, 220]))
  mkdirSync(join(dir, 'media'))
  const sound = wav(230) // 230 s × 88.2 kB/s ≈ 20 MB
  writeFileSync(join(dir, 'media', 'sound.wav'), sound)
  return sound
}

const browserArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required']

// Open the site in a fresh browser and return what the page saw.
async function visit (url, onResponse) {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: browserArgs, timeout: 60_000 })
  try {
    const page = await browser.newPage()
    if (onResponse) page.on('response', onResponse)
    await page.goto(url, { waitUntil: 'load', timeout: 60_000 })
    const images = await page.evaluate(() => Array.from(document.images).map(i => ({ src: i.src, complete: i.complete, width: i.naturalWidth })))
    return { browser, page, images }
  } catch (e) {
    await browser.close()
    throw e
  }
}

const a = initRepo(bin, join(work, 'a'))
const b = initRepo(bin, join(work, 'b'))
const daemons = []
try {
  const da = await startDaemon(bin, a, join(work, 'a-daemon.log'))
  daemons.push(da)
  const config = join(b, 'config.toml')
  writeFileSync(config, readFileSync(config, 'utf8').replace('bootstrap = []', `bootstrap = ["${swarmAddr(bin, a)}"]`))
  const db = await startDaemon(bin, b, join(work, 'b-daemon.log'))
  daemons.push(db)

  const site = join(work, 'site')
  const sound = makeSite(site)
  const root = cairn(bin, a, ['add', '-r', '-Q', site]).trim()
  cairn(bin, b, ['pin', 'add', root])
  const pins = cairn(bin, b, ['pin', 'ls', '--type', 'recursive'])
  check('B pinned the site from A over the network', pins.includes(root), pins.trim())

  const port = new URL(db.gateway).port
  const url = `http://${root}.ipfs.localhost:${port}/`
  const media = []
  const first = await visit(url, r => {
    if (r.url().endsWith('/media/sound.wav')) media.push(r)
  })
  try {
    const ok = first.images.length === 3 && first.images.every(i => i.complete && i.width > 0)
    check('every image loaded through B\'s gateway', ok, JSON.stringify(first.images.map(i => i.width)))

    const seek = await first.page.evaluate(async () => {
      const m = document.getElementById('media')
      if (!(m.duration > 0)) await new Promise((resolve, reject) => { m.onloadedmetadata = resolve; m.onerror = () => reject(new Error('media error ' + m.error?.code)) })
      const target = m.duration / 2
      await new Promise((resolve, reject) => { m.onseeked = resolve; m.onerror = () => reject(new Error('media error ' + m.error?.code)); m.currentTime = target })
      return { duration: m.duration, time: m.currentTime }
    })
    check('the audio element seeked to its middle', Math.abs(seek.time - seek.duration / 2) < 1, JSON.stringify(seek))

    // Chromium may ask for the middle more than once; one answer must be a 206 past byte 0.
    const deadline = Date.now() + 30_000
    let ranged = null
    while (ranged == null && Date.now() < deadline) {
      for (const r of media) {
        const range = (await r.request().allHeaders()).range ?? ''
        const from = Number((/bytes=(\d+)-/.exec(range) ?? [])[1] ?? 0)
        if (r.status() === 206 && from > 0) ranged = { r, range, from }
      }
      if (ranged == null) await new Promise(resolve => setTimeout(resolve, 200))
    }
    check('seeking sent a Range request past byte 0, answered 206', ranged != null,
      JSON.stringify(await Promise.all(media.map(async r => [r.status(), (await r.request().allHeaders()).range]))))
    if (ranged != null) {
      const cr = (await ranged.r.allHeaders())['content-range'] ?? ''
      const m = /bytes (\d+)-(\d+)\/(\d+)/.exec(cr)
      check('its Content-Range starts where the request asked', m != null && Number(m[1]) === ranged.from && Number(m[3]) === sound.length, cr)
      // The bytes of that range, asked again with the same header, are the file's own.
      const from = Number(m?.[1] ?? 0)
      const to = Math.min(Number(m?.[2] ?? 0), from + 1024 * 1024 - 1)
      const resp = await fetch(new URL('media/sound.wav', `${db.gateway}/ipfs/${root}/`), { headers: { Range: `bytes=${from}-${to}` } })
      const got = Buffer.from(await resp.arrayBuffer())
      check('the range holds the right bytes', resp.status === 206 && got.equals(sound.subarray(from, to + 1)), `${got.length} bytes`)
    }
  } finally {
    await first.browser.close()
  }

  await da.stop()
  daemons.shift()
  const second = await visit(url)
  try {
    const ok = second.images.length === 3 && second.images.every(i => i.complete && i.width > 0)
    check('with A stopped, a fresh browser still loads the page from B', ok, JSON.stringify(second.images.map(i => i.width)))
  } finally {
    await second.browser.close()
  }
} catch (e) {
  check('browser run', false, e.stack ?? String(e))
} finally {
  for (const d of daemons) await d.stop()
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
