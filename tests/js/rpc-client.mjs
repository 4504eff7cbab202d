// Drive cairn's RPC API with kubo's own JavaScript client (kubo-rpc-client): add bytes and a
// small tree, cat, pin ls and id. Prints one JSON object for the Rust test to check.
// Usage: node rpc-client.mjs http://127.0.0.1:PORT
import { create } from 'kubo-rpc-client'

const api = create({ url: process.argv[2] })
const enc = new TextEncoder()
const text = 'hello from kubo-rpc-client\n'

const added = await api.add(enc.encode(text))
const tree = []
for await (const e of api.addAll([
  { path: 'd/a.txt', content: enc.encode('file a\n') },
  { path: 'd/sub/b.txt', content: enc.encode('file b\n') }
])) {
  tree.push({ path: e.path, cid: e.cid.toString(), size: e.size })
}
const chunks = []
for await (const c of api.cat(added.cid)) chunks.push(c)
const cat = Buffer.concat(chunks).toString()
const pins = []
for await (const p of api.pin.ls({ type: 'recursive' })) pins.push({ cid: p.cid.toString(), type: p.type })
const id = await api.id()

console.log(JSON.stringify({
  added: { cid: added.cid.toString(), path: added.path, size: added.size },
  tree,
  cat,
  pins,
  id: { id: id.id.toString(), addresses: (id.addresses ?? []).map(String), agentVersion: id.agentVersion }
}))
