//! The gateway against the IPFS HTTP gateway specs, one table row per rule, each citing the
//! spec section it checks (specs.ipfs.tech/http-gateways/: `path-gateway`, `trustless-gateway`,
//! `subdomain-gateway`). Requests go through `curl` to a real daemon; the `Host` header is sent
//! by hand, since the system resolver does not resolve `*.localhost` (browsers do).

use std::fs;

use anyhow::{Context, Result};
use cairn_protocol::cids;
use cairn_tests::{curl, set_config, Daemon, TestRepo};

/// What a header or the body must be.
enum Want {
    /// Exactly this.
    Is(String),
    /// Containing this.
    Has(String),
    /// Not sent at all.
    Absent,
}

use Want::{Absent, Has, Is};

/// One rule: its spec section, the request, what must come back.
struct Row {
    spec: &'static str,
    path: String,
    args: Vec<String>,
    status: u16,
    headers: Vec<(&'static str, Want)>,
    body: Option<Want>,
}

fn row(spec: &'static str, path: impl Into<String>, args: &[&str], status: u16) -> Row {
    Row {
        spec,
        path: path.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        status,
        headers: vec![],
        body: None,
    }
}

impl Row {
    fn header(mut self, name: &'static str, want: Want) -> Row {
        self.headers.push((name, want));
        self
    }

    fn body(mut self, want: Want) -> Row {
        self.body = Some(want);
        self
    }

    /// Run it; what went wrong, if anything.
    fn check(&self, gw: &str) -> Result<Vec<String>> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let r = curl(&format!("{gw}{}", self.path), &args)?;
        let mut wrong = Vec::new();
        if r.status != self.status {
            wrong.push(format!("status {} (wanted {}): {}", r.status, self.status, String::from_utf8_lossy(&r.body)));
        }
        for (name, want) in &self.headers {
            let got = r.header(name);
            let ok = match (want, got) {
                (Is(w), Some(g)) => w == g,
                (Has(w), Some(g)) => g.contains(w.as_str()),
                (Absent, None) => true,
                _ => false,
            };
            if !ok {
                wrong.push(format!("header {name}: {got:?}"));
            }
        }
        if let Some(want) = &self.body {
            let body = String::from_utf8_lossy(&r.body);
            let ok = match want {
                Is(w) => body == w.as_str(),
                Has(w) => body.contains(w.as_str()),
                Absent => body.is_empty(),
            };
            if !ok {
                wrong.push(format!("body {body:?}"));
            }
        }
        Ok(wrong)
    }
}

#[test]
fn the_gateway_meets_the_specs_rules() -> Result<()> {
    let repo = TestRepo::new()?;
    let dir = repo.scratch("site");
    fs::create_dir_all(dir.join("docs"))?;
    fs::write(dir.join("hello.txt"), "hello gateway\n")?;
    fs::write(dir.join("docs").join("a b.txt"), "a b\n")?;
    let root = repo.ok(&["add", "-r", "-Q", "--cid-version", "1", dir.to_str().unwrap()])?.trim().to_string();
    let v0 = repo.ok(&["add", "-Q", "--cid-version", "0", dir.join("hello.txt").to_str().unwrap()])?.trim().to_string();
    let v0_as_v1 = cids::to_v1(&cids::parse(&v0)?).to_string();
    let file =
        repo.ok(&["add", "-Q", "--cid-version", "1", dir.join("hello.txt").to_str().unwrap()])?.trim().to_string();
    // A CID no one holds (the hash of bytes never added): the gateway gives up after 2 s.
    let missing = cids::cid_for(cid::Version::V1, cids::RAW, cids::HashFn::Sha2_256, b"nobody has these bytes");
    set_config(&repo, "retrieval_timeout_secs = 30", "retrieval_timeout_secs = 2")?;
    let d = Daemon::start(&repo)?;
    let gw = d.gateway.as_str();
    let port = gw.rsplit(':').next().context("port")?.to_string();
    let localhost = format!("Host: localhost:{port}");
    let loopback = format!("Host: 127.0.0.1:{port}");
    let origin = |cid: &str| format!("Host: {cid}.ipfs.localhost:{port}");
    let name = repo
        .ok(&["id", "--json"])
        .map(|t| serde_json::from_str::<serde_json::Value>(&t).ok().and_then(|v| v["ID"].as_str().map(String::from)))?;
    let name = name.context("the node's peer ID")?;

    let rows = vec![
        // path-gateway
        row("path-gateway: GET /ipfs/{cid}[/{path}]", format!("/ipfs/{root}/hello.txt"), &[], 200)
            .body(Is("hello gateway\n".into())),
        row("path-gateway: HEAD /ipfs/{cid}[/{path}]", format!("/ipfs/{root}/hello.txt"), &["-I"], 200)
            .header("content-length", Is("14".into())),
        row(
            "path-gateway: Range (request header)",
            format!("/ipfs/{root}/hello.txt"),
            &["-H", "Range: bytes=6-12"],
            206,
        )
        .header("content-range", Is("bytes 6-12/14".into()))
        .body(Is("gateway".into())),
        row(
            "path-gateway: Range (request header), unsatisfiable",
            format!("/ipfs/{root}/hello.txt"),
            &["-H", "Range: bytes=99-"],
            416,
        )
        .header("content-range", Is("bytes */14".into())),
        row(
            "path-gateway: If-None-Match (request header)",
            format!("/ipfs/{root}/hello.txt"),
            &["-H", &format!("If-None-Match: \"{file}\"")],
            304,
        )
        .body(Absent),
        row("path-gateway: Etag (response header)", format!("/ipfs/{root}/hello.txt"), &[], 200)
            .header("etag", Is(format!("\"{file}\""))),
        row(
            "path-gateway: Cache-Control (response header), immutable namespace",
            format!("/ipfs/{root}/hello.txt"),
            &[],
            200,
        )
        .header("cache-control", Has("immutable".into())),
        row("path-gateway: X-Ipfs-Path (response header) is the path as requested", format!("/ipfs/{v0}"), &[], 200)
            .header("x-ipfs-path", Is(format!("/ipfs/{v0}"))),
        row(
            "path-gateway: X-Ipfs-Path keeps the request's percent-encoding",
            format!("/ipfs/{root}/docs/a%20b.txt"),
            &[],
            200,
        )
        .header("x-ipfs-path", Is(format!("/ipfs/{root}/docs/a%20b.txt"))),
        row("path-gateway: X-Ipfs-Path is not re-encoded", format!("/ipfs/{root}/%68ello.txt"), &[], 200)
            .header("x-ipfs-path", Is(format!("/ipfs/{root}/%68ello.txt"))),
        row("path-gateway: X-Ipfs-Roots (response header)", format!("/ipfs/{root}/hello.txt"), &[], 200)
            .header("x-ipfs-roots", Is(format!("{root},{file}"))),
        row(
            "path-gateway: Location (response header), directory without a trailing slash",
            format!("/ipfs/{root}/docs"),
            &[],
            301,
        )
        .header("location", Is(format!("/ipfs/{root}/docs/"))),
        row(
            "path-gateway: Content-Location (response header), format from Accept",
            format!("/ipfs/{file}"),
            &["-H", "Accept: application/vnd.ipld.raw"],
            200,
        )
        .header("content-location", Is(format!("/ipfs/{file}?format=raw")))
        .header("vary", Has("Accept".into())),
        row(
            "path-gateway: Content-Location, not sent when ?format= says it",
            format!("/ipfs/{file}?format=raw"),
            &[],
            200,
        )
        .header("content-location", Absent),
        row(
            "path-gateway: Content-Location keeps the query",
            format!("/ipfs/{file}?dag-scope=block"),
            &["-H", "Accept: application/vnd.ipld.car"],
            200,
        )
        .header("content-location", Is(format!("/ipfs/{file}?dag-scope=block&format=car"))),
        row(
            "path-gateway: uri (request query parameter), ipfs://",
            format!("/ipfs/?uri=ipfs%3A%2F%2F{root}%2Fhello.txt"),
            &[],
            301,
        )
        .header("location", Is(format!("/ipfs/{root}/hello.txt"))),
        row(
            "path-gateway: uri (request query parameter), ipns://",
            format!("/ipns/?uri=ipns%3A%2F%2F{name}"),
            &[],
            301,
        )
        .header("location", Is(format!("/ipns/{name}"))),
        row(
            "path-gateway: uri (request query parameter), another scheme",
            "/ipfs/?uri=https%3A%2F%2Fexample.com%2F",
            &[],
            400,
        )
        .body(Has("ipfs://".into())),
        row("path-gateway: 400 Bad Request, invalid CID", "/ipfs/bafynotacid/x", &[], 400),
        row("path-gateway: 400 Bad Request, `..` segment", format!("/ipfs/{root}/docs/../hello.txt"), &[], 400)
            .body(Has("`..`".into())),
        row(
            "path-gateway: 400 Bad Request, NUL in a path (named as such)",
            format!("/ipfs/{root}/hello%00.txt"),
            &[],
            400,
        )
        .body(Has("NUL".into())),
        row("path-gateway: 404 Not Found", format!("/ipfs/{root}/no-such-file"), &[], 404)
            .body(Has("no-such-file".into())),
        row(
            "path-gateway: only GET, HEAD and OPTIONS (405 otherwise)",
            format!("/ipfs/{root}/hello.txt"),
            &["-X", "POST"],
            405,
        )
        .header("allow", Has("GET".into())),
        row(
            "path-gateway: 504 Gateway Timeout, with Retry-After (response header)",
            format!("/ipfs/{missing}"),
            &[],
            504,
        )
        .header("retry-after", Has("".into())),
        // trustless-gateway
        row("trustless-gateway: format=raw (request query parameter)", format!("/ipfs/{file}?format=raw"), &[], 200)
            .header("content-type", Is("application/vnd.ipld.raw".into()))
            .header("x-content-type-options", Is("nosniff".into())),
        row(
            "trustless-gateway: format=car (request query parameter)",
            format!("/ipfs/{root}?format=car&dag-scope=block"),
            &[],
            200,
        )
        .header("content-type", Has("application/vnd.ipld.car".into())),
        row(
            "trustless-gateway: car-version other than 1 is refused",
            format!("/ipfs/{root}?format=car&car-version=2"),
            &[],
            400,
        ),
        row("trustless-gateway: an unknown format is refused", format!("/ipfs/{root}?format=nonsense"), &[], 400),
        row(
            "trustless-gateway: entity-bytes must be from:to",
            format!("/ipfs/{file}?format=car&entity-bytes=9:1"),
            &[],
            400,
        ),
        // subdomain-gateway
        row(
            "subdomain-gateway: path requests on a subdomain host are redirected (301)",
            format!("/ipfs/{root}/hello.txt"),
            &["-H", &localhost],
            301,
        )
        .header("location", Is(format!("http://{root}.ipfs.localhost:{port}/hello.txt"))),
        row(
            "subdomain-gateway: the redirect carries the query",
            format!("/ipfs/{root}/hello.txt?filename=x.txt"),
            &["-H", &localhost],
            301,
        )
        .header("location", Is(format!("http://{root}.ipfs.localhost:{port}/hello.txt?filename=x.txt"))),
        row(
            "subdomain-gateway: CIDv0 is redirected to its base32 CIDv1 label",
            format!("/ipfs/{v0}"),
            &["-H", &localhost],
            301,
        )
        .header("location", Is(format!("http://{v0_as_v1}.ipfs.localhost:{port}/"))),
        row(
            "subdomain-gateway: names are redirected to their origin",
            format!("/ipns/{name}/x"),
            &["-H", &localhost],
            301,
        )
        .header("location", Has(".ipns.localhost:".into())),
        row(
            "subdomain-gateway: a host that is not a subdomain gateway serves paths",
            format!("/ipfs/{root}/hello.txt"),
            &["-H", &loopback],
            200,
        )
        .body(Is("hello gateway\n".into())),
        row("subdomain-gateway: the content's origin serves it", "/hello.txt", &["-H", &origin(&root)], 200)
            .body(Is("hello gateway\n".into()))
            .header("x-ipfs-path", Is(format!("/ipfs/{root}/hello.txt"))),
        row("subdomain-gateway: a non-canonical label is redirected", "/", &["-H", &origin(&v0)], 301)
            .header("location", Is(format!("http://{v0_as_v1}.ipfs.localhost:{port}/"))),
    ];

    // Twice: the second pass meets answers kept whole for hot content, which must not differ.
    let mut failures = Vec::new();
    for pass in 1..=2 {
        for r in &rows {
            let wrong = r.check(gw)?;
            let verdict = if wrong.is_empty() { "PASS" } else { "FAIL" };
            println!("{verdict} (pass {pass}) {}: {} {}", r.spec, r.path, wrong.join("; "));
            if !wrong.is_empty() {
                failures.push(format!("pass {pass}: {} ({}): {}", r.spec, r.path, wrong.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} checks failed:\n{}", failures.len(), 2 * rows.len(), failures.join("\n"));
    Ok(())
}
