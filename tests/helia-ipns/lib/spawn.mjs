// Spawn ipns-peer.mjs as a subprocess and talk JSON lines to it: the way an
// integration test in another language drives it. (Adapted from
// ../shared/helia-peer/lib/spawn.mjs.)

import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const HERE = join(dirname(fileURLToPath(import.meta.url)), '..')
export const PEER = join(HERE, 'ipns-peer.mjs')

/** Start `node ipns-peer.mjs ...args`. PEER_STDERR=1 copies its stderr to ours. */
export function startPeer (args, { name = 'peer' } = {}) {
  const proc = spawn(process.execPath, [PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const events = []
  const waiters = []
  let exited = null
  let stderrText = ''
  let nextId = 1
  proc.stderr.on('data', (d) => {
    stderrText += d.toString()
    if (stderrText.length > 200_000) stderrText = stderrText.slice(-100_000)
    if (process.env.PEER_STDERR) process.stderr.write(`[${name}] ${d}`)
  })
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let ev
    try { ev = JSON.parse(line) } catch { ev = { event: 'non-json', line } }
    events.push(ev)
    if (process.env.PEER_EVENTS) process.stderr.write(`[${name}] ${line}\n`)
    for (const w of [...waiters]) w()
  })
  const exit = new Promise(resolve => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal }
      for (const w of [...waiters]) w()
      resolve(exited)
    })
  })

  /** Wait for the first event (from index `from`) that matches `pred`. */
  function waitFor (pred, { timeoutMs = 60_000, from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < events.length; i++) {
          if (pred(events[i])) { done(); resolve(events[i]); return true }
        }
        if (exited != null) {
          done()
          reject(new Error(`${name} exited (${JSON.stringify(exited)}) before the awaited event; events: ${JSON.stringify(events).slice(-2000)}; stderr tail: ${stderrText.slice(-2000)}`))
          return true
        }
        return false
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${name}: timed out after ${timeoutMs} ms; events: ${JSON.stringify(events).slice(-2000)}; stderr tail: ${stderrText.slice(-2000)}`))
      }, timeoutMs)
      const waiter = () => { check() }
      const done = () => { clearTimeout(timer); const i = waiters.indexOf(waiter); if (i !== -1) waiters.splice(i, 1) }
      waiters.push(waiter)
      check()
    })
  }

  function send (cmd) {
    proc.stdin.write(JSON.stringify(cmd) + '\n')
  }

  /** Send a command with a fresh id and wait for its answer (any event carrying that id). */
  function request (cmd, { timeoutMs = 60_000 } = {}) {
    const id = `${name}-${nextId++}`
    const from = events.length
    send({ ...cmd, id })
    return waitFor(ev => ev.id === id, { timeoutMs, from })
  }

  async function stop () {
    if (exited != null) return exited
    proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    const r = await exit
    clearTimeout(t)
    return r
  }

  return { proc, events, waitFor, send, request, stop, exit, stderr: () => stderrText }
}
