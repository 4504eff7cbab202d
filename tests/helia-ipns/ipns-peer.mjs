#!/usr/bin/env node
// A Helia (JavaScript IPFS) IPNS peer for interop tests.
//
// libp2p over TCP + noise + yamux on 127.0.0.1, identify, ping, Kademlia DHT
// (/ipfs/kad/1.0.0, server mode, loopback addresses kept, no bootstrap),
// GossipSub (/meshsub/1.2.0 .. 1.0.0 + /floodsub/1.0.0, StrictSign), the libp2p
// Fetch service (/libp2p/fetch/0.0.1) and @helia/ipns with two routers: the
// Helia routing (the DHT, through @helia/libp2p's libp2p router) and
// @helia/ipns's PubSub router. Nothing public: no bootstrap list, no delegated
// routing, no HTTP gateways, no mDNS, no AutoNAT/AutoTLS/UPnP, no relay, no
// WebRTC/WebSockets. The node is built the way ../shared/helia-peer builds its
// own (lib/helia-node.mjs there), minus bitswap, plus pubsub/fetch/IPNS.
//
// JSON commands on stdin, one per line; one JSON object per line on stdout.
// Logs go to stderr (DEBUG='helia:*,libp2p:*' for Helia/libp2p debug logs).
// Run `node ipns-peer.mjs --help` for the options and commands.

import './lib/node20.mjs'
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ipns, ipnsValidator, ipnsSelector, multihashToIPNSRoutingKey, pubSubIPNSRouting } from '@helia/ipns'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair, generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { fetch } from '@libp2p/fetch'
import { gossipsub, StrictSign } from '@libp2p/gossipsub'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { createLibp2p } from 'libp2p'
import { userAgent } from 'libp2p/user-agent'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { parseArgv } from './lib/args.mjs'

// The 'helia' and '@helia/libp2p' entry points eagerly load the whole default
// stack (bootstrap list, mDNS, AutoNAT, ...): load the Helia class and the
// libp2p router from their own files, as ../shared/helia-peer does.
const heliaEntry = import.meta.resolve('helia')
const { Helia } = await import(new URL('./helia.js', heliaEntry).href)
const heliaVersion = await import(new URL('./version.js', heliaEntry).href)
const { libp2pRouting } = await import(new URL('./routing.js', import.meta.resolve('@helia/libp2p')).href)

export const KAD_PROTOCOL = '/ipfs/kad/1.0.0'
const LIBP2P_KEY_CODEC = 0x72
const PUBLISH_KEY_NAME = 'ipns-publish'

const HELP = `usage: node ipns-peer.mjs [options]

  --port N          TCP port on 127.0.0.1 (default 0: any free port)
  --host IP         listen address (default 127.0.0.1)
  --seed TEXT       fixed Ed25519 libp2p identity from sha256(TEXT) (default: random)
  --key-seed TEXT   fixed Ed25519 key for "publish", private seed = sha256(TEXT)
                    (default: the node's own identity key, like kubo's "self")
  --fetch / --no-fetch
                    run the libp2p Fetch service /libp2p/fetch/0.0.1 (default on);
                    @helia/ipns's PubSub router uses it to answer and ask for records
  --timeout S       default per-command timeout (default 30)
  --help

Commands on stdin (one JSON object per line; "id" is echoed in the answers):
  {"op":"connect","addr":MADDR}
  {"op":"publish","value":"/ipfs/CID","lifetimeMs":N,"ttlMs":N,"offline":false,
   "keySeed":TEXT?,"v1Compatible":true?}
  {"op":"resolve","name":"k51...","nocache":true,"offline":false,"timeout":S}
  {"op":"subscribe","name":"k51..."}   {"op":"unsubscribe","name":"k51..."}
  {"op":"watch","name":"k51..."}       {"op":"unwatch","name":"k51..."}
  {"op":"topics","name":"k51..."?}     {"op":"peers"}     {"op":"name","keySeed":TEXT?}
  {"op":"stop"}

Events on stdout (one JSON object per line):
  {"event":"ready","peerId":...,"addrs":[...],"protocols":[...],"name":"k51..."}
  {"event":"connected",...} {"event":"published",...} {"event":"resolved",...}
  {"event":"subscribed",...} {"event":"watching",...} {"event":"update",...}
  {"event":"topics",...} {"event":"error","op":...,"message":...} {"event":"stopped"}
`

const spec = {
  port: { type: 'string', default: '0' },
  host: { type: 'string', default: '127.0.0.1' },
  seed: { type: 'string' },
  'key-seed': { type: 'string' },
  fetch: { type: 'boolean', default: true },
  timeout: { type: 'string', default: '30' },
  help: { type: 'boolean', alias: ['h'] }
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function log (...parts) {
  process.stderr.write(`[ipns-peer] ${parts.join(' ')}\n`)
}

const round = (x, d = 3) => Number(x.toFixed(d))
const nowMs = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

function withTimeout (seconds) {
  const signal = AbortSignal.timeout(Math.round(seconds * 1000))
  setMaxListeners(Infinity, signal)
  return signal
}

// ---------------------------------------------------------------- names

/** Ed25519 private key (@libp2p/crypto) whose 32-byte seed is sha256(text). */
export async function keyFromSeedText (text) {
  return generateKeyPairFromSeed('Ed25519', createHash('sha256').update(text).digest())
}

/** Multihash digest of an IPNS name: k51.../bafz... (CIDv1 libp2p-key), 12D3Koo.../Qm... (base58 peer ID), optional /ipns/ prefix. */
export function nameToDigest (name) {
  let s = String(name).trim()
  if (s.startsWith('/ipns/')) s = s.slice('/ipns/'.length).split('/')[0]
  if (s.startsWith('1') || s.startsWith('Q')) return Digest.decode(base58btc.decode(`z${s}`))
  const cid = s.startsWith('k') ? CID.parse(s, base36) : CID.parse(s)
  if (cid.code !== LIBP2P_KEY_CODEC) throw new Error(`${name}: CID codec 0x${cid.code.toString(16)} is not libp2p-key`)
  return cid.multihash
}

/** The canonical name: CIDv1, libp2p-key codec, base36 ("k51..." for Ed25519). */
export function digestToName (digest) {
  return CID.createV1(LIBP2P_KEY_CODEC, digest).toString(base36)
}

/** The IPNS routing key: "/ipns/" + multihash bytes. */
export function routingKeyOf (digest) {
  return multihashToIPNSRoutingKey(digest)
}

/** The pubsub topic @helia/ipns uses (routing/pubsub.js keyToTopic): "/record/" + base64url(routing key), no padding. */
export function topicOf (digest) {
  return `/record/${uint8ArrayToString(routingKeyOf(digest), 'base64url')}`
}

/** Value, sequence, validity, TTL of a (validated) IPNSEntry, from its signed CBOR data. */
function describeRecord (record) {
  let value, sequence, validity, ttl
  if (record.data != null) {
    const data = dagCbor.decode(record.data)
    value = data.Value
    sequence = data.Sequence
    validity = data.Validity
    ttl = data.TTL
  } else {
    value = record.value
    sequence = record.sequence
    validity = record.validity
    ttl = record.ttl
  }
  let valueStr
  try {
    valueStr = `/ipfs/${CID.decode(value)}` // legacy: raw CID bytes
  } catch {
    valueStr = new TextDecoder().decode(value)
  }
  return {
    value: valueStr,
    sequence: sequence != null ? Number(sequence) : null,
    validity: validity != null ? new TextDecoder().decode(validity) : null,
    ttlMs: ttl != null ? Number(BigInt(ttl) / 1000000n) : null,
    v1Compatible: record.signatureV1 != null
  }
}

// ---------------------------------------------------------------- node

function libp2pOptions ({ host, port, privateKey, withFetch }) {
  return {
    privateKey,
    addresses: { listen: [`/ip4/${host}/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    // keep measuring RTT, never abort a connection for a failed ping (see
    // ../shared/helia-peer/lib/helia-node.mjs)
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      dht: kadDHT({
        protocol: KAD_PROTOCOL,
        clientMode: false,
        // keep loopback/private addresses: this DHT only ever sees test peers
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true
      }),
      // @helia/ipns's PubSub router looks for `libp2p.services.pubsub`
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: true,
        emitSelf: false
      }),
      // ... and for `libp2p.services.fetch` (optional)
      ...(withFetch ? { fetch: fetch() } : {})
    }
  }
}

/** Same as @helia/libp2p's withLibp2pLight, with a fixed libp2p config. */
function withLibp2p (helia, opts) {
  let libp2p
  Object.defineProperty(helia, 'libp2p', {
    configurable: true,
    enumerable: true, // @helia/ipns looks for it in Object.values(helia) to install its DHT validator/selector
    get () {
      if (libp2p != null) return libp2p
      throw new Error('Helia is not started')
    }
  })
  helia.addMixin({
    name: 'libp2p',
    start: async (h) => {
      if (libp2p == null) {
        opts.datastore ??= h.datastore
        opts.nodeInfo = {
          name: h.info.name,
          version: h.info.version,
          userAgent: `${h.info.name}/${h.info.version} ${userAgent()}`
        }
        libp2p = await createLibp2p(opts)
      }
      if (!h.hasRouter('libp2p-router')) h.addRouter(libp2pRouting(libp2p))
      await libp2p.start()
    },
    stop: async () => { await libp2p?.stop() }
  })
  return helia
}

async function createNode ({ host, port, privateKey, withFetch }) {
  const helia = new Helia({
    name: heliaVersion.name,
    version: heliaVersion.version,
    blockstore: new MemoryBlockstore(),
    datastore: new MemoryDatastore()
  })
  withLibp2p(helia, libp2pOptions({ host, port, privateKey, withFetch }))
  await helia.start()
  // both need a started libp2p (the PubSub router reads libp2p.services at construction)
  const pubsubRouter = pubSubIPNSRouting(helia)
  await pubsubRouter.start() // registers the fetch topology (what @helia/ipns's own wiring would do on Helia start)
  const name = ipns(helia, { routers: [pubsubRouter] })
  return { helia, name, pubsubRouter }
}

/** Import a @libp2p/crypto private key into Helia's keychain (@ipshipyard/crypto keys) under `keyName`. */
async function importKey (helia, keyName, libp2pKey) {
  const crypto = await helia.getCrypto('Ed25519')
  const key = await crypto.privateKeyFromProtobuf(privateKeyToProtobuf(libp2pKey))
  try {
    await helia.keychain.removeKey(keyName)
  } catch {}
  await helia.keychain.importKey(keyName, key)
  return key
}

// ---------------------------------------------------------------- commands

async function waitForRoutingTable (helia, peerId, ms) {
  const dht = helia.libp2p.services.dht
  const deadline = nowMs() + ms
  while (nowMs() < deadline) {
    if ((await dht.routingTable?.find?.(peerId)) != null) return true
    await sleep(50)
  }
  return false
}

async function waitForPubsubPeer (helia, peerId, ms) {
  const pubsub = helia.libp2p.services.pubsub
  const deadline = nowMs() + ms
  while (nowMs() < deadline) {
    if (pubsub.getPeers().some(p => p.equals(peerId))) return true
    await sleep(50)
  }
  return false
}

async function connect (ctx, cmd, tag) {
  const { helia } = ctx
  const timeout = cmd.timeout ?? ctx.timeout
  const ma = multiaddr(cmd.addr)
  const t0 = nowMs()
  const identified = new Map()
  const onIdentify = (evt) => { identified.set(evt.detail.peerId.toString(), evt.detail.protocols) }
  helia.libp2p.addEventListener('peer:identify', onIdentify)
  let conn
  let protocols = []
  try {
    conn = await helia.libp2p.dial(ma, { signal: withTimeout(timeout) })
    const remote = conn.remotePeer.toString()
    const deadline = nowMs() + Math.min(timeout, 10) * 1000
    while (nowMs() < deadline) {
      if (identified.has(remote)) { protocols = identified.get(remote); break }
      const known = (await helia.libp2p.peerStore.get(conn.remotePeer).catch(() => null))?.protocols ?? []
      if (known.some(p => p !== '/ipfs/id/1.0.0' && p !== '/ipfs/id/push/1.0.0')) { protocols = known; break }
      await sleep(20)
    }
  } finally {
    helia.libp2p.removeEventListener('peer:identify', onIdentify)
  }
  // a DHT server peer is queried only once it is in our routing table
  let inRoutingTable = false
  if (protocols.includes(KAD_PROTOCOL)) {
    inRoutingTable = await waitForRoutingTable(helia, conn.remotePeer, Math.min(timeout, 10) * 1000)
  }
  // pubsub messages flow once gossipsub has an open stream to the peer
  let pubsubPeer = false
  if (protocols.some(p => p.startsWith('/meshsub/') || p.startsWith('/floodsub/'))) {
    pubsubPeer = await waitForPubsubPeer(helia, conn.remotePeer, Math.min(timeout, 10) * 1000)
  }
  emit(tag({
    event: 'connected',
    peerId: conn.remotePeer.toString(),
    addr: conn.remoteAddr.toString(),
    protocols,
    dhtRoutingTable: inRoutingTable,
    pubsubPeer,
    ms: round(nowMs() - t0)
  }))
}

async function publishKeyName (ctx, keySeed) {
  if (keySeed == null) return PUBLISH_KEY_NAME
  const keyName = `seed-${createHash('sha256').update(keySeed).digest('hex').slice(0, 16)}`
  if (!ctx.importedKeys.has(keyName)) {
    await importKey(ctx.helia, keyName, await keyFromSeedText(keySeed))
    ctx.importedKeys.add(keyName)
  }
  return keyName
}

async function publish (ctx, cmd, tag) {
  if (typeof cmd.value !== 'string') throw new Error('publish: "value" (a path such as /ipfs/<cid>) is required')
  const keyName = await publishKeyName(ctx, cmd.keySeed)
  const t0 = nowMs()
  const options = {
    offline: cmd.offline === true,
    signal: withTimeout(cmd.timeout ?? ctx.timeout),
    ...(cmd.lifetimeMs != null ? { lifetime: Number(cmd.lifetimeMs) } : {}),
    ...(cmd.ttlMs != null ? { ttl: Number(cmd.ttlMs) } : {}),
    ...(cmd.v1Compatible === false ? { v1Compatible: false } : {})
  }
  const result = await ctx.name.publish(keyName, cmd.value, options)
  const digest = result.publicKey.toMultihash()
  emit(tag({
    event: 'published',
    name: digestToName(digest),
    ...describeRecord(result.record),
    topic: topicOf(digest),
    offline: options.offline,
    ms: round(nowMs() - t0)
  }))
}

async function resolve (ctx, cmd, tag) {
  const digest = nameToDigest(cmd.name)
  const t0 = nowMs()
  const chain = []
  for await (const { record, value } of ctx.name.resolve(digest, {
    nocache: cmd.nocache === true,
    offline: cmd.offline === true,
    signal: withTimeout(cmd.timeout ?? ctx.timeout)
  })) {
    chain.push({ value, record })
  }
  if (chain.length === 0) throw new Error('no record')
  const last = chain[chain.length - 1]
  const first = describeRecord(chain[0].record)
  emit(tag({
    event: 'resolved',
    name: digestToName(digest),
    value: last.value,
    sequence: first.sequence,
    validity: first.validity,
    ttlMs: first.ttlMs,
    ...(chain.length > 1 ? { chain: chain.map(c => c.value) } : {}),
    ms: round(nowMs() - t0)
  }))
}

/**
 * Subscribe the way @helia/ipns does it: the PubSub router's get() subscribes
 * to the name's topic, registers it as an IPNS topic (records arriving there
 * are validated and stored), and asks current topic subscribers for the record
 * over libp2p Fetch; it throws NotFoundError when nobody had one.
 */
async function subscribe (ctx, digest, timeout) {
  const topic = topicOf(digest)
  const already = ctx.pubsubRouter.getSubscriptions().includes(topic)
  let fetched = null
  try {
    const rec = await ctx.pubsubRouter.get(routingKeyOf(digest), { signal: withTimeout(timeout) })
    if (rec != null) {
      const record = await ipnsValidator(routingKeyOf(digest), rec, ctx.helia.keychain)
      fetched = describeRecord(record)
    }
  } catch (err) {
    if (err.name !== 'NotFoundError' && err.name !== 'AggregateError' && err.name !== 'AbortError' && err.name !== 'TimeoutError') throw err
  }
  return { topic, already, fetched }
}

const watched = new Map() // topic -> { digest, name, last }

function onPubsubMessage (ctx, evt) {
  const msg = evt.detail
  const w = watched.get(msg.topic)
  if (w == null) return
  const routingKey = routingKeyOf(w.digest)
  ipnsValidator(routingKey, msg.data, ctx.helia.keychain).then(record => {
    if (w.last != null) {
      if (Buffer.from(w.lastBytes).equals(Buffer.from(msg.data))) return
      if (ipnsSelector(routingKey, [w.last, record]) === 0) return
    }
    w.last = record
    w.lastBytes = msg.data
    emit({
      event: 'update',
      name: w.name,
      ...describeRecord(record),
      from: msg.type === 'signed' ? msg.from.toString() : null,
      topic: msg.topic,
      via: 'pubsub'
    })
  }).catch(err => {
    emit({ event: 'invalid-record', name: w.name, topic: msg.topic, from: msg.from?.toString?.() ?? null, message: err.message })
  })
}

function topics (ctx, cmd, tag) {
  const pubsub = ctx.helia.libp2p.services.pubsub
  const named = new Map()
  for (const w of watched.values()) named.set(topicOf(w.digest), w.name)
  const out = {
    event: 'topics',
    topics: pubsub.getTopics().map(topic => ({
      topic,
      ...(named.has(topic) ? { name: named.get(topic) } : {}),
      peers: pubsub.getSubscribers(topic).map(p => p.toString())
    })),
    ipnsTopics: ctx.pubsubRouter.getSubscriptions(),
    pubsubPeers: pubsub.getPeers().map(p => p.toString())
  }
  if (cmd.name != null || cmd.topic != null) {
    const topic = cmd.topic ?? topicOf(nameToDigest(cmd.name))
    // gossipsub also tracks topics of other peers that we are not subscribed to ourselves
    out.topic = topic
    out.subscribers = pubsub.getSubscribers(topic).map(p => p.toString())
  }
  emit(tag(out))
}

async function runCommand (ctx, cmd) {
  const op = cmd.op ?? cmd.cmd
  const tag = (obj) => (cmd.id !== undefined ? { ...obj, id: cmd.id } : obj)
  try {
    switch (op) {
      case 'connect': await connect(ctx, cmd, tag); break
      case 'publish': await publish(ctx, cmd, tag); break
      case 'resolve': await resolve(ctx, cmd, tag); break
      case 'subscribe': {
        const digest = nameToDigest(cmd.name)
        const r = await subscribe(ctx, digest, cmd.timeout ?? ctx.timeout)
        emit(tag({ event: 'subscribed', name: digestToName(digest), topic: r.topic, alreadySubscribed: r.already, fetched: r.fetched }))
        break
      }
      case 'unsubscribe': {
        const digest = nameToDigest(cmd.name)
        ctx.pubsubRouter.cancel(digest)
        watched.delete(topicOf(digest))
        emit(tag({ event: 'unsubscribed', name: digestToName(digest), topic: topicOf(digest) }))
        break
      }
      case 'watch': {
        const digest = nameToDigest(cmd.name)
        const topic = topicOf(digest)
        const name = digestToName(digest)
        if (!watched.has(topic)) watched.set(topic, { digest, name, last: null, lastBytes: null })
        // a watched name is always subscribed (through the IPNS PubSub router)
        let sub = { already: true, fetched: null }
        if (!ctx.pubsubRouter.getSubscriptions().includes(topic)) sub = await subscribe(ctx, digest, cmd.timeout ?? ctx.timeout)
        emit(tag({ event: 'watching', name, topic, subscribedNow: !sub.already, fetched: sub.fetched }))
        break
      }
      case 'unwatch': {
        const digest = nameToDigest(cmd.name)
        watched.delete(topicOf(digest))
        emit(tag({ event: 'unwatched', name: digestToName(digest) }))
        break
      }
      case 'topics': topics(ctx, cmd, tag); break
      case 'name': {
        const keyName = await publishKeyName(ctx, cmd.keySeed)
        const key = await ctx.helia.keychain.exportKey(keyName)
        const digest = key.publicKey.toMultihash()
        emit(tag({ event: 'name', name: digestToName(digest), topic: topicOf(digest) }))
        break
      }
      case 'peers':
        emit(tag({
          event: 'peers',
          peers: ctx.helia.libp2p.getConnections().map(c => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString() }))
        }))
        break
      case 'stop': await ctx.shutdown(0); break
      default:
        throw new Error(`unknown op ${JSON.stringify(op)} (connect, publish, resolve, subscribe, unsubscribe, watch, unwatch, topics, name, peers, stop)`)
    }
  } catch (err) {
    emit(tag({ event: 'error', op, message: err.message, ...(err.name && err.name !== 'Error' ? { name: err.name } : {}) }))
    if (process.env.DEBUG != null) log(`${op} failed:`, err.stack ?? err.message)
  }
}

async function main () {
  const args = parseArgv(process.argv.slice(2), spec)
  if (args.help) { process.stdout.write(HELP); return }
  if (args._.length > 0) throw new Error(`unexpected argument ${args._[0]} (see --help)`)
  const port = Number.parseInt(args.port, 10)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${args.port}`)
  const timeout = Number(args.timeout)
  if (!(timeout > 0)) throw new Error(`bad --timeout ${args.timeout}`)

  const privateKey = args.seed != null ? await keyFromSeedText(args.seed) : await generateKeyPair('Ed25519')
  const { helia, name, pubsubRouter } = await createNode({ host: args.host, port, privateKey, withFetch: args.fetch })
  // the key "publish" signs with: --key-seed, or the node identity (kubo's "self")
  const publishKey = args['key-seed'] != null ? await keyFromSeedText(args['key-seed']) : privateKey
  await importKey(helia, PUBLISH_KEY_NAME, publishKey)

  let stopping = false
  const shutdown = async (code) => {
    if (stopping) return
    stopping = true
    try {
      await pubsubRouter.stop()
      await helia.stop()
    } catch (err) {
      log('error while stopping:', err.message)
    }
    emit({ event: 'stopped' })
    process.exit(code)
  }
  process.on('SIGTERM', () => { shutdown(0) })
  process.on('SIGINT', () => { shutdown(0) })

  const ctx = { helia, name, pubsubRouter, timeout, shutdown, importedKeys: new Set() }
  helia.libp2p.services.pubsub.addEventListener('message', (evt) => onPubsubMessage(ctx, evt))

  const publishDigest = publishKey.publicKey.toMultihash()
  emit({
    event: 'ready',
    peerId: helia.libp2p.peerId.toString(),
    addrs: helia.libp2p.getMultiaddrs().map(ma => ma.toString()),
    protocols: helia.libp2p.getProtocols(),
    name: digestToName(publishDigest),
    topic: topicOf(publishDigest),
    helia: heliaVersion.version
  })

  const rl = createInterface({ input: process.stdin })
  let queue = Promise.resolve()
  rl.on('line', (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch (err) {
      emit({ event: 'error', op: 'parse', message: `bad JSON command: ${err.message}` })
      return
    }
    if ((cmd.op ?? cmd.cmd) === 'stop') { runCommand(ctx, cmd); return } // never queued behind a slow command
    // commands run one after another, in the order received
    queue = queue.then(() => runCommand(ctx, cmd))
  })
  rl.on('close', () => { queue.then(() => shutdown(0)) }) // stdin closed: the driver is gone
}

// a stray rejection inside Helia/libp2p must not kill a long-running test peer
process.on('unhandledRejection', (err) => {
  log('unhandled rejection:', err?.stack ?? String(err))
})

main().catch(err => {
  emit({ event: 'error', op: 'start', message: err.message })
  log(err.stack ?? err.message)
  process.exit(1)
})
