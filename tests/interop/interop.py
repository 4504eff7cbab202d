"""Interop between cairn daemons and real Helia 7 and kubo v0.22 peers.

Runs inside a network namespace that has nothing but loopback (tests/tests/interop.rs starts it
with `unshare -n`): kubo would otherwise dial the public network. Every peer listens on
127.0.0.1. Each check moves a file of random bytes and compares sha256; the DHT checks ask one
implementation to find another as a provider through `/ipfs/kad/1.0.0`.

usage: python3 interop.py --cairn BIN --helia DIR --kubo DIR --work DIR [--mb N] [--only helia,kubo]
Ends with 'N passed, M failed' and exits non-zero if anything failed.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def random_file(path, mb):
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    return sha256_file(path)


class Cairn:
    """A `cairn daemon` on a fresh repo (local profile: loopback only, DHT server)."""

    def __init__(self, binary, repo, log):
        self.bin, self.repo = binary, repo
        subprocess.run([binary, "--repo", repo, "init", "--profile", "local"], check=True,
                       stdout=subprocess.DEVNULL)
        self.log = open(log, "ab")
        self.p = subprocess.Popen([binary, "--repo", repo, "daemon"], stdout=self.log,
                                  stderr=self.log)
        deadline = time.time() + 60
        while b"Daemon is ready" not in open(log, "rb").read():
            if self.p.poll() is not None or time.time() > deadline:
                raise RuntimeError("cairn daemon did not become ready (see %s)" % log)
            time.sleep(0.1)
        ident = json.loads(self.cli("id", "--json"))
        self.peer_id = ident["ID"]
        # Dialable addresses, each ending in /p2p/<ID>.
        self.addrs = [a if "/p2p/" in a else a + "/p2p/" + self.peer_id
                      for a in ident["Addresses"] if "/tcp/" in a]
        self.addr = self.addrs[0]

    def cli(self, *args, timeout=600):
        out = subprocess.run([self.bin, "--repo", self.repo] + list(args), capture_output=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError("cairn %s failed: %s" % (" ".join(args), out.stderr.decode()))
        return out.stdout.decode()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Run:
    def __init__(self, args):
        self.args = args
        self.passed, self.failed = 0, 0
        self.procs = []

    def check(self, name, fn):
        """Run one check; a failure is reported and counted, and the other checks still run."""
        t = time.time()
        try:
            detail = fn()
            self.passed += 1
            print("ok   %-48s %5.1fs %s" % (name, time.time() - t, detail or ""), flush=True)
        except Exception as e:
            self.failed += 1
            print("FAIL %-48s %5.1fs %s" % (name, time.time() - t, e), flush=True)
            traceback.print_exc(file=sys.stderr)

    def path(self, name):
        return os.path.join(self.args.work, name)

    def cairn(self, name):
        c = Cairn(self.args.cairn, self.path(name), self.path(name + ".log"))
        self.procs.append(c)
        return c

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                (p.quit if hasattr(p, "quit") else p.stop)()
            except Exception:
                pass


_ids = iter(range(1, 1 << 30))


def helia_cmd(h, wait, **c):
    """Send a command with a fresh id; return its events, up to its own done/error."""
    cid = next(_ids)
    h.send(dict(c, id=cid))
    evs = []
    while True:
        m = h.next(wait)
        evs.append(m)
        if m.get("event") in ("done", "error") and m.get("id") == cid:
            return evs


def helia_checks(run, procs):
    mb = run.args.mb
    a = run.cairn("cairn-a")
    src = run.path("to-helia.bin")
    digest = random_file(src, mb)
    cid = a.cli("add", "-Q", src).strip()
    h = procs.Helia(run.args.helia, extra=["--bootstrap", a.addr],
                    log_path=run.path("helia.log"))
    run.procs.append(h)

    def helia_finds_cairn():
        deadline = time.time() + 60
        while time.time() < deadline:
            evs = helia_cmd(h, 60, cmd="find-providers", cid=cid, max=1)
            found = [e["peerId"] for e in evs if e.get("event") == "provider"]
            if a.peer_id in found:
                return "provider %s" % a.peer_id
            time.sleep(1)
        raise AssertionError("Helia never found cairn as provider of %s" % cid)

    def helia_fetches_from_cairn():
        out = run.path("helia-got.bin")
        evs = helia_cmd(h, 600, cmd="fetch", cid=cid, out=out)
        fetched = [e for e in evs if e.get("event") == "fetched"]
        assert fetched, "no fetched event: %r" % evs[-1]
        assert sha256_file(out) == digest, "bytes differ"
        return "%.1f MB/s" % fetched[0]["mbps"]

    run.check("helia finds cairn as provider through the DHT", helia_finds_cairn)
    run.check("helia fetches %d MiB from cairn" % mb, helia_fetches_from_cairn)

    def cairn_fetches_from_helia():
        src2 = run.path("from-helia.bin")
        digest2 = random_file(src2, mb)
        evs = helia_cmd(h, 300, cmd="add", path=src2, opts="cidVersion=1", provide=True)
        cid2 = [e for e in evs if e.get("event") == "added"][0]["cid"]
        b = run.cairn("cairn-b")
        b.cli("swarm", "connect", h.addr)
        out = run.path("cairn-got-from-helia.bin")
        t = time.time()
        b.cli("get", cid2, "-o", out)
        assert sha256_file(out) == digest2, "bytes differ"
        return "%.1f MB/s" % (mb * 1.048576 / (time.time() - t))

    run.check("cairn fetches %d MiB from helia" % mb, cairn_fetches_from_helia)


def kubo_checks(run, procs):
    mb = run.args.mb
    k = procs.Kubo(run.path("kubo-repo"), force_public=True, log_path=run.path("kubo.log"))
    run.procs.append(k)
    # Two cairn DHT servers that know each other, both connected to kubo; `c` never fetches
    # from kubo, it only asks the DHT.
    a = run.cairn("cairn-k")
    c = run.cairn("cairn-c")
    a.cli("swarm", "connect", c.addr)
    a.cli("swarm", "connect", k.addr)
    c.cli("swarm", "connect", k.addr)
    time.sleep(2)

    def kubo_fetches_from_cairn():
        src = run.path("to-kubo.bin")
        digest = random_file(src, mb)
        cid = a.cli("add", "-Q", src).strip()
        out = run.path("kubo-got.bin")
        r = k.cmd(cmd="get", cid=cid, out=out, timeout=300)
        assert not r.get("error"), r
        assert sha256_file(out) == digest, "bytes differ"
        return "%.1f MB/s" % r.get("mbps", 0)

    kubo_cid = {}

    def cairn_fetches_from_kubo():
        src = run.path("from-kubo.bin")
        digest = random_file(src, mb)
        r = k.cmd(cmd="add", path=src)
        assert not r.get("error"), r
        kubo_cid["cid"] = r["cid"]
        out = run.path("cairn-got-from-kubo.bin")
        t = time.time()
        a.cli("get", r["cid"], "-o", out)
        assert sha256_file(out) == digest, "bytes differ"
        return "%.1f MB/s" % (mb * 1.048576 / (time.time() - t))

    def cairn_finds_kubo_via_dht():
        # kubo v0.22 runs two DHTs over one provider datastore. On loopback its WAN DHT
        # (/ipfs/kad/1.0.0) has an empty routing table, so kubo's own provides go to its LAN DHT,
        # whose provider manager buffers writes in an autobatch of 256 entries that the WAN side
        # cannot read until it flushes. Traced with GOLOG_LOG_LEVEL=dht=debug: before the flush,
        # kubo answers GET_PROVIDERS on /ipfs/kad/1.0.0 with no provider (Helia sees the same);
        # after it, cairn and Helia both find kubo. 300 more blocks make kubo flush.
        filler = run.path("kubo-filler.bin")
        random_file(filler, 75)
        r = k.cmd(cmd="add", path=filler)
        assert not r.get("error"), r
        deadline = time.time() + 60
        while time.time() < deadline:
            out = c.cli("dht", "findprovs", kubo_cid["cid"], timeout=90)
            if k.peer_id in out:
                return "provider %s (RSA key)" % k.peer_id
            time.sleep(1)
        raise AssertionError("cairn never found kubo as provider of %s" % kubo_cid["cid"])

    run.check("kubo fetches %d MiB from cairn" % mb, kubo_fetches_from_cairn)
    run.check("cairn fetches %d MiB from kubo" % mb, cairn_fetches_from_kubo)
    run.check("cairn finds kubo as provider through the DHT", cairn_finds_kubo_via_dht)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--helia", required=True)
    ap.add_argument("--kubo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--only", default="helia,kubo")
    args = ap.parse_args()
    sys.path.insert(0, args.kubo)
    import procs  # the kubo-peer copy's driver for kubo_peer.py and helia-peer/peer.mjs

    procs.require_netns()
    os.makedirs(args.work, exist_ok=True)
    run = Run(args)
    try:
        if "helia" in args.only:
            helia_checks(run, procs)
        if "kubo" in args.only:
            kubo_checks(run, procs)
    finally:
        run.stop_all()
    print("%d passed, %d failed" % (run.passed, run.failed))
    sys.exit(1 if run.failed else 0)


if __name__ == "__main__":
    main()
