// Running `cairn` from the gateway tests: init a repo, start a daemon and wait for it, run
// commands against it. Every wait is bounded.
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'

export function cairn (bin, repo, args, opts = {}) {
  return execFileSync(bin, args, {
    env: { ...process.env, CAIRN_PATH: repo },
    encoding: opts.encoding ?? 'utf8',
    timeout: opts.timeout ?? 300_000,
    maxBuffer: 1 << 30
  })
}

export function initRepo (bin, dir) {
  mkdirSync(dir, { recursive: true })
  const repo = join(dir, 'repo')
  cairn(bin, repo, ['init', '--profile', 'local'])
  return repo
}

// Start `cairn daemon` on `repo`; resolves once it printed "Daemon is ready", with its
// gateway URL and a stop() that asks it to shut down.
export async function startDaemon (bin, repo, logFile) {
  const log = openSync(logFile, 'a')
  const child = spawn(bin, ['daemon'], { env: { ...process.env, CAIRN_PATH: repo }, stdio: ['ignore', 'pipe', log] })
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready in 60 s: ${out}`)), 60_000)
    child.stdout.on('data', d => {
      out += d
      if (out.includes('Daemon is ready')) { clearTimeout(timer); resolve() }
    })
    child.on('exit', code => { clearTimeout(timer); reject(new Error(`daemon exited (${code}): ${out}`)) })
  })
  const gateway = readFileSync(join(repo, 'gateway'), 'utf8').trim()
  const exited = new Promise(resolve => child.on('exit', resolve))
  return {
    gateway,
    child,
    async stop () {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(t)
    }
  }
}

// The daemon's loopback TCP multiaddr with its peer ID.
export function swarmAddr (bin, repo) {
  const id = JSON.parse(cairn(bin, repo, ['id', '--json']))
  const addr = id.Addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
  return addr.includes('/p2p/') ? addr : `${addr}/p2p/${id.ID}`
}

export function args (argv) {
  const out = {}
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1]
  return out
}
