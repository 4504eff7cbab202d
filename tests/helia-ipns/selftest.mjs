#!/usr/bin/env node
// Self-test: real ipns-peer.mjs processes on 127.0.0.1, real DHT, GossipSub and
// libp2p Fetch traffic. Prints one line per check, then "N passed, M failed";
// exit code 1 on any failure. PEER_EVENTS=1 / PEER_STDERR=1 show the peers' output.

import './lib/node20.mjs'
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { base36 } from 'multiformats/bases/base36'
import { base64url } from 'multiformats/bases/base64'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { startPeer } from './lib/spawn.mjs'

const results = []
const peers = []
let broken = null // a failed step that later steps depend on

async function check (name, fn, { needs = true } = {}) {
  const t0 = Date.now()
  if (needs && broken != null) {
    results.push({ name, ok: false })
    console.log(`FAIL ${name}: skipped, an earlier step failed (${broken})`)
    return
  }
  try {
    const detail = await fn()
    results.push({ name, ok: true })
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(2)} s)${detail ? ' - ' + detail : ''}`)
  } catch (err) {
    results.push({ name, ok: false })
    console.log(`FAIL ${name}: ${err.message}`)
    if (needs) broken = name
  }
}

function assertEq (actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

function expectEvent (ev, event) {
  if (ev.event !== event) throw new Error(`expected a "${event}" event, got ${JSON.stringify(ev)}`)
  return ev
}

function peer (args, name) {
  const p = startPeer(args, { name })
  peers.push(p)
  return p
}

async function cidOf (text) {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text))).toString()
}

// Computed here independently of ipns-peer.mjs: the name of the key whose
// Ed25519 seed is sha256(text), and its pubsub topic.
async function expectedNameAndTopic (text) {
  const key = await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(text).digest())
  const name = key.publicKey.toCID().toString(base36)
  const routingKey = new Uint8Array([...new TextEncoder().encode('/ipns/'), ...key.publicKey.toMultihash().bytes])
  // multibase base64url without its "u" prefix (RFC 4648 §5, no padding)
  const topic = '/record/' + base64url.encode(routingKey).slice(1)
  return { name, topic }
}

async function pollUntil (fn, { timeoutMs, what }) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await fn()
    if (r) return r
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function main () {
  const KEY_SEED = 'selftest-ipns-key'
  const expected = await expectedNameAndTopic(KEY_SEED)
  const v1 = `/ipfs/${await cidOf('first value')}`
  const v2 = `/ipfs/${await cidOf('second value')}`
  const v3 = `/ipfs/${await cidOf('third value')}`
  let A, B, C, readyA, readyB, readyC

  await check('two peers start on 127.0.0.1; A\'s name and topic as computed from --key-seed', async () => {
    A = peer(['--seed', 'selftest-A', '--key-seed', KEY_SEED], 'A')
    B = peer(['--seed', 'selftest-B'], 'B')
    ;[readyA, readyB] = await Promise.all([A.waitFor(e => e.event === 'ready'), B.waitFor(e => e.event === 'ready')])
    for (const r of [readyA, readyB]) {
      if (!r.addrs.every(a => a.startsWith('/ip4/127.0.0.1/tcp/'))) throw new Error(`non-loopback address in ${JSON.stringify(r.addrs)}`)
      for (const p of ['/ipfs/kad/1.0.0', '/meshsub/1.1.0', '/libp2p/fetch/0.0.1']) {
        if (!r.protocols.includes(p)) throw new Error(`${p} missing from ${JSON.stringify(r.protocols)}`)
      }
    }
    assertEq(readyA.name, expected.name, 'name')
    assertEq(readyA.topic, expected.topic, 'topic')
    return `${expected.name}, topic ${expected.topic}`
  })

  await check('B connects to A (and A to B): in each other\'s DHT routing table and gossipsub peers', async () => {
    const ab = expectEvent(await B.request({ op: 'connect', addr: readyA.addrs[0] }), 'connected')
    const ba = expectEvent(await A.request({ op: 'connect', addr: readyB.addrs[0] }), 'connected')
    for (const c of [ab, ba]) {
      if (!c.dhtRoutingTable) throw new Error(`not in the DHT routing table: ${JSON.stringify(c)}`)
      if (!c.pubsubPeer) throw new Error(`not a gossipsub peer: ${JSON.stringify(c)}`)
    }
    assertEq(ab.peerId, readyA.peerId, 'peer id')
  })

  await check('A publishes (DHT + pubsub): name = CIDv1 libp2p-key base36 of the key, sequence 1', async () => {
    const p = expectEvent(await A.request({ op: 'publish', value: v1, lifetimeMs: 3_600_000, ttlMs: 60_000 }), 'published')
    assertEq(p.name, expected.name, 'name')
    assertEq(p.value, v1, 'value')
    assertEq(p.sequence, 1, 'sequence')
    assertEq(p.ttlMs, 60_000, 'ttl')
    return `${p.ms} ms`
  })

  await check('B resolves A\'s name through the DHT (nocache)', async () => {
    const r = expectEvent(await B.request({ op: 'resolve', name: expected.name, nocache: true, timeout: 20 }), 'resolved')
    assertEq(r.value, v1, 'value')
    assertEq(r.sequence, 1, 'sequence')
    return `${r.ms} ms`
  })

  await check('a fresh peer D (connected to A only) resolves the name with a DHT GET_VALUE query', async () => {
    const D = peer(['--seed', 'selftest-D'], 'D')
    await D.waitFor(e => e.event === 'ready')
    expectEvent(await D.request({ op: 'connect', addr: readyA.addrs[0] }), 'connected')
    const r = expectEvent(await D.request({ op: 'resolve', name: expected.name, nocache: true, timeout: 20 }), 'resolved')
    assertEq(r.value, v1, 'value')
    D.send({ op: 'stop' })
    await D.exit
    return `${r.ms} ms`
  })

  await check('B subscribes to the name\'s topic and watches it; A sees B as a topic subscriber', async () => {
    const s = expectEvent(await B.request({ op: 'subscribe', name: expected.name, timeout: 5 }), 'subscribed')
    assertEq(s.topic, expected.topic, 'topic')
    expectEvent(await B.request({ op: 'watch', name: expected.name }), 'watching')
    const bt = expectEvent(await B.request({ op: 'topics' }), 'topics')
    if (!bt.topics.some(t => t.topic === expected.topic)) throw new Error(`B not subscribed: ${JSON.stringify(bt)}`)
    // ipnsTopics comes from @helia/ipns itself (its private keyToTopic()): the exact topic string Helia uses
    if (!bt.ipnsTopics.includes(expected.topic)) throw new Error(`@helia/ipns topics ${JSON.stringify(bt.ipnsTopics)} do not include ${expected.topic}`)
    await pollUntil(async () => {
      const t = await A.request({ op: 'topics', name: expected.name })
      return t.subscribers?.includes(readyB.peerId)
    }, { timeoutMs: 5_000, what: 'A to see B subscribed' })
  })

  await check('A publishes again: B gets an "update" over pubsub within 5 s', async () => {
    const from = B.events.length
    const t0 = Date.now()
    const p = expectEvent(await A.request({ op: 'publish', value: v2, lifetimeMs: 3_600_000, ttlMs: 60_000 }), 'published')
    assertEq(p.sequence, 2, 'published sequence')
    const u = await B.waitFor(e => e.event === 'update' && e.sequence === 2, { timeoutMs: 5_000, from })
    assertEq(u.name, expected.name, 'name')
    assertEq(u.value, v2, 'value')
    assertEq(u.from, readyA.peerId, 'pubsub message from')
    return `update after ${Date.now() - t0} ms (publish took ${p.ms} ms)`
  })

  await check('the pubsub record was stored: B resolves offline to the second value', async () => {
    const r = expectEvent(await B.request({ op: 'resolve', name: expected.name, offline: true }), 'resolved')
    assertEq(r.value, v2, 'value')
    assertEq(r.sequence, 2, 'sequence')
  })

  await check('a V2-only record (v1Compatible false) also arrives as an update', async () => {
    const from = B.events.length
    expectEvent(await A.request({ op: 'publish', value: v3, v1Compatible: false }), 'published')
    const u = await B.waitFor(e => e.event === 'update' && e.sequence === 3, { timeoutMs: 5_000, from })
    assertEq(u.value, v3, 'value')
    assertEq(u.v1Compatible, false, 'v1Compatible')
  })

  await check('a third peer C subscribing gets the record from subscriber B over /libp2p/fetch/0.0.1', async () => {
    C = peer(['--seed', 'selftest-C'], 'C')
    readyC = await C.waitFor(e => e.event === 'ready')
    expectEvent(await C.request({ op: 'connect', addr: readyB.addrs[0] }), 'connected')
    await pollUntil(async () => {
      const t = await C.request({ op: 'topics', name: expected.name })
      return t.subscribers?.includes(readyB.peerId)
    }, { timeoutMs: 5_000, what: 'C to see B subscribed' })
    const s = expectEvent(await C.request({ op: 'subscribe', name: expected.name, timeout: 5 }), 'subscribed')
    if (s.fetched == null) throw new Error(`nothing fetched: ${JSON.stringify(s)}`)
    assertEq(s.fetched.value, v3, 'fetched value')
    assertEq(s.fetched.sequence, 3, 'fetched sequence')
  })

  await check('resolving a name nobody published gives an "error" event', async () => {
    const other = await expectedNameAndTopic('selftest-nobody')
    const r = await B.request({ op: 'resolve', name: other.name, nocache: true, timeout: 5 }, { timeoutMs: 15_000 })
    expectEvent(r, 'error')
    assertEq(r.op, 'resolve', 'op')
    return r.message
  }, { needs: false })

  await check('"stop" ends the processes cleanly', async () => {
    for (const p of [A, B, C].filter(Boolean)) {
      p.send({ op: 'stop' })
      await p.waitFor(e => e.event === 'stopped', { timeoutMs: 15_000 })
      const r = await p.exit
      assertEq(r.code, 0, 'exit code')
    }
  }, { needs: false })
}

try {
  await main()
} finally {
  await Promise.all(peers.map(p => p.stop()))
}
const passed = results.filter(r => r.ok).length
const failed = results.length - passed
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
