// IPNS records from @helia/ipns (JavaScript), for checking cairn's record code against another
// implementation. No network.
//   node ipns_records.mjs make    -> JSON lines {label, key, record, valid, value} (hex bytes)
//   node ipns_records.mjs check   <- JSON lines {label, key, record}; -> {label, ok, error}
import { createIPNSRecord, IPNSEntry, ipnsValidator, multihashToIPNSRoutingKey } from '@helia/ipns'
import { generateKeyPair, publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { createInterface } from 'node:readline'

const hex = (b) => Buffer.from(b).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))
const keychain = { loadPublicKeyFromProtobuf: async (b) => publicKeyFromProtobuf(b) }
const DAY = 24 * 3600 * 1000

async function make () {
  const out = []
  const emit = (label, key, entry, valid, value) =>
    out.push({ label, key: hex(key), record: hex(IPNSEntry.encode(entry)), valid, value })
  for (const type of ['Ed25519', 'RSA', 'secp256k1']) {
    const priv = await generateKeyPair(type, type === 'RSA' ? 2048 : undefined)
    // @helia/ipns embeds large keys with the newer key interface's toProtobuf().
    priv.publicKey.toProtobuf ??= () => publicKeyToProtobuf(priv.publicKey)
    const key = multihashToIPNSRoutingKey(peerIdFromPublicKey(priv.publicKey).toMultihash())
    const value = '/ipfs/bafkqaddwgevxmmraojswg33smq'
    emit(`${type} v1+v2`, key, await createIPNSRecord(priv, value, 3, DAY, { v1Compatible: true }), true, value)
    emit(`${type} v2 only`, key, await createIPNSRecord(priv, value, 4, DAY, { v1Compatible: false }), true, value)
    const expired = await createIPNSRecord(priv, value, 5, 1, { now: Date.now() - DAY })
    emit(`${type} expired`, key, expired, false, value)
    const tampered = await createIPNSRecord(priv, value, 6, DAY, { v1Compatible: true })
    tampered.signatureV2[5] ^= 1
    emit(`${type} broken signatureV2`, key, tampered, false, value)
    const lying = await createIPNSRecord(priv, value, 7, DAY, { v1Compatible: true })
    lying.value = new TextEncoder().encode('/ipfs/bafkqaaa')
    emit(`${type} v1 value differs from signed data`, key, lying, false, value)
  }
  for (const o of out) console.log(JSON.stringify(o))
}

async function check () {
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    const { label, key, record } = JSON.parse(line)
    try {
      await ipnsValidator(unhex(key), unhex(record), keychain)
      console.log(JSON.stringify({ label, ok: true }))
    } catch (e) {
      console.log(JSON.stringify({ label, ok: false, error: String(e.message ?? e) }))
    }
  }
}

await (process.argv[2] === 'check' ? check() : make())
