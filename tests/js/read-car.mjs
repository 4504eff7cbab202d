// Read a CAR with the JavaScript CAR library (@ipld/car) and check every block's hash.
// Usage: node read-car.mjs FILE.car   -> prints {"roots":[...],"blocks":[{"cid","ok","size"}]}
import './lib/node20.mjs'
import { CarReader } from '@ipld/car'
import { readFile } from 'node:fs/promises'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const bytes = await readFile(process.argv[2])
const reader = await CarReader.fromBytes(bytes)
const roots = (await reader.getRoots()).map(c => c.toString())
const blocks = []
for await (const { cid, bytes: data } of reader.blocks()) {
  let ok = false
  if (cid.multihash.code === sha256.code) {
    const digest = await sha256.digest(data)
    ok = equals(digest.digest, cid.multihash.digest)
  }
  blocks.push({ cid: cid.toString(), ok, size: data.length })
}
console.log(JSON.stringify({ roots, blocks }))
