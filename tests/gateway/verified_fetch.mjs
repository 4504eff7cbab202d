// @helia/verified-fetch against cairn's trustless gateway: cairn's gateway is its only
// gateway and it has no routers and no libp2p, so every block comes from cairn over HTTP and is verified by
// Helia's code. Fetches a 3 MiB file and a file inside a directory; bytes must match.
// Run inside a loopback-only network namespace. Prints one line per check and
// "N passed, M failed".
import { withHTTP } from '@helia/http'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { createHeliaLight } from 'helia'
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { args, cairn, initRepo, startDaemon } from './cairn.mjs'

// Node 20 (Debian's) lacks Promise.withResolvers, which libp2p's queues use.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const { cairn: bin, work } = args(process.argv)
const repo = initRepo(bin, join(work, 'vf'))
const daemon = await startDaemon(bin, repo, join(work, 'vf-daemon.log'))
let passed = 0
let failed = 0
const check = (name, ok, detail = '') => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`)
  ok ? passed++ : failed++
}

try {
  const file = join(work, 'vf-file.bin')
  const data = randomBytes(3 * 1024 * 1024 + 12345)
  writeFileSync(file, data)
  const fileCid = cairn(bin, repo, ['add', '-Q', file]).trim()

  const dir = join(work, 'vf-dir')
  mkdirSync(join(dir, 'nested'), { recursive: true })
  writeFileSync(join(dir, 'nested', 'note.txt'), 'a note inside a directory\n')
  writeFileSync(join(dir, 'other.txt'), 'other\n')
  const dirCid = cairn(bin, repo, ['add', '-r', '-Q', dir]).trim()

  // A Helia without libp2p whose only block source is cairn's gateway, with no routers.
  const light = withHTTP(createHeliaLight(), {
    delegatedRouters: [],
    recursiveGateways: [daemon.gateway],
    allowInsecure: true,
    allowLocal: true
  })
  // Helia asks its non-fallback routers first and waits for them to finish; with none at all
  // it never does. A router that finds nothing lets it move on to the gateway.
  light.routing.addRouter({ name: 'none', async * findProviders () {} })
  const helia = await light.start()
  const verifiedFetch = await createVerifiedFetch(helia)
  try {
    const signal = AbortSignal.timeout(120_000)
    const r1 = await verifiedFetch(`ipfs://${fileCid}`, { signal })
    const got1 = Buffer.from(await r1.arrayBuffer())
    check('verified-fetch: a 3 MiB file', r1.status === 200 && got1.equals(data), `status ${r1.status}, ${got1.length} bytes`)

    const r2 = await verifiedFetch(`ipfs://${dirCid}/nested/note.txt`, { signal })
    const got2 = await r2.text()
    check('verified-fetch: a directory entry', r2.status === 200 && got2 === readFileSync(join(dir, 'nested', 'note.txt'), 'utf8'),
      `status ${r2.status}, ${JSON.stringify(got2)}`)
  } finally {
    await verifiedFetch.stop()
    await helia.stop()
  }
} catch (e) {
  check('verified-fetch run', false, e.stack ?? String(e))
} finally {
  await daemon.stop()
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
