//! Where a command runs: in this process on the repo ([`Local`]), or through a running
//! daemon's RPC API ([`Api`]). Both take the same typed requests of `cairn_node::ops` and
//! give the same typed answers, so each command is written once, above this module.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use cairn_node::ops::{self, Ctx, Op, OpError, PartKind, UploadOp, WriteOp};
use cairn_node::repo::Repo;
use cairn_node::upload;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::{self, Api};
use crate::multipart;
use crate::waiting::Waiter;

/// Pieces in flight between an in-process producer and its reader.
const PIPE_PIECES: usize = 8;

/// Bytes an in-process producer collects before handing a piece over.
const PIPE_PIECE: usize = 256 * 1024;

/// Where commands run.
pub enum Backend {
    /// No daemon: the repo, opened (and locked) by this process.
    Local(Local),
    /// A daemon holds the repo: talk to its API.
    Daemon(Api),
}

/// Operations run in this process, over a repo or (in tests) a running node.
pub struct Local {
    ctx: Ctx,
    rt: tokio::runtime::Runtime,
}

impl Local {
    /// Run operations on an open repo, without the network.
    pub fn new(repo: Repo) -> Result<Local> {
        Local::over(Ctx::Offline(Arc::new(repo)))
    }

    /// Run operations over any context.
    pub fn over(ctx: Ctx) -> Result<Local> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the command's runtime")?;
        Ok(Local { ctx, rt })
    }

    /// The repo.
    pub fn repo(&self) -> &Repo {
        self.ctx.repo()
    }
}

/// An operation's error as the CLI reports it: the same words in-process and through a daemon.
fn op_error(e: OpError) -> anyhow::Error {
    anyhow!("{}", e.message())
}

impl Backend {
    /// Run a command answering one value.
    pub fn call<O: Op>(&self, op: O) -> Result<O::Output> {
        match self {
            Backend::Local(l) => l.rt.block_on(op.run(l.ctx.clone())).map_err(op_error),
            Backend::Daemon(api) => api.op(op),
        }
    }

    /// Run a command answering a byte stream. An error before the first byte is returned
    /// here; after it, reading fails.
    pub fn open<W: WriteOp>(&self, op: W) -> Result<Box<dyn Read + Send>> {
        match self {
            Backend::Local(l) => l.open(op),
            Backend::Daemon(api) => Ok(Box::new(client::bytes(api.call(W::NAME, &op.to_args())?))),
        }
    }

    /// Run a command over uploaded parts, read one after the other as they are sent.
    pub fn upload<U: UploadOp>(&self, op: U, parts: ops::Parts) -> Result<U::Output> {
        match self {
            Backend::Local(l) => l.rt.block_on(op.run(l.ctx.clone(), parts)).map_err(op_error),
            Backend::Daemon(api) => {
                let parts = parts.map(|p| {
                    p.map(|p| multipart::Part {
                        field: upload::field_name(&p.meta),
                        content_type: p.kind.content_type(),
                        body: (p.kind != PartKind::Dir).then(|| Box::new(p.data) as Box<dyn Read>),
                        path: p.name,
                    })
                });
                let body = multipart::Body::new(Box::new(parts), None);
                let ct = body.content_type();
                let resp = api.call_with(U::NAME, &op.to_args(), &ct, body)?;
                api.decode(U::NAME, resp)
            }
        }
    }

    /// Say what a long call through a daemon waits for (nothing in-process: no network).
    pub fn waiter(&self, what: &str) -> Option<Waiter> {
        match self {
            Backend::Daemon(api) => Some(Waiter::start(api, what)),
            Backend::Local(_) => None,
        }
    }

    /// Context for a stream that broke off.
    pub fn stream_broke(&self) -> String {
        match self {
            Backend::Daemon(api) => format!("the daemon at {} stopped sending (see its log)", api.addr()),
            Backend::Local(_) => "reading from the repo".into(),
        }
    }
}

impl Local {
    fn open<W: WriteOp>(&self, op: W) -> Result<Box<dyn Read + Send>> {
        let (tx, rx) = sync_channel(PIPE_PIECES);
        let token = CancellationToken::new();
        let (ctx, t) = (self.ctx.clone(), token.clone());
        self.rt.spawn_blocking(move || {
            let mut w = PipeWriter { tx, buf: Vec::with_capacity(PIPE_PIECE) };
            let end = match op.write(&ctx, &mut w, &t).and_then(|()| Ok(w.flush()?)) {
                Ok(()) => Piece::End,
                Err(e) => Piece::Failed(e.message()),
            };
            let _ = w.tx.send(end);
        });
        let (first, done) = match rx.recv() {
            Ok(Piece::Data(first)) => (first, false),
            Ok(Piece::Failed(msg)) => return Err(anyhow!("{msg}")),
            Ok(Piece::End) => (Vec::new(), true),
            Err(_) => return Err(anyhow!("the command stopped before it finished (see the log)")),
        };
        Ok(Box::new(PipeReader { rx, cur: io::Cursor::new(first), done, _stop: token.drop_guard() }))
    }
}

/// What an in-process producer hands its reader.
enum Piece {
    Data(Vec<u8>),
    /// Everything was written.
    End,
    /// The command failed after this point.
    Failed(String),
}

/// The producer's end of an in-process stream.
struct PipeWriter {
    tx: SyncSender<Piece>,
    buf: Vec<u8>,
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIPE_PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_PIECE));
        self.tx.send(Piece::Data(piece)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

/// The reader's end; dropping it cancels the producer. A producer that ends without saying
/// so (it panicked) is an error, never a short stream taken for a whole one.
struct PipeReader {
    rx: Receiver<Piece>,
    cur: io::Cursor<Vec<u8>>,
    done: bool,
    _stop: DropGuard,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.cur.read(out)?;
            if n > 0 || out.is_empty() || self.done {
                return Ok(n);
            }
            match self.rx.recv() {
                Ok(Piece::Data(piece)) => self.cur = io::Cursor::new(piece),
                Ok(Piece::End) => self.done = true,
                Ok(Piece::Failed(msg)) => return Err(io::Error::other(msg)),
                Err(_) => return Err(io::Error::other("the command stopped before it finished (see the log)")),
            }
        }
    }
}
