//! Where a command runs: in this process on the repo ([`Local`]), or through a running
//! daemon's RPC API ([`Api`]). Both take the same typed requests of `cairn_node::ops` and
//! give the same typed answers, so each command is written once, above this module.

use std::io::{self, Read};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use cairn_node::ops::{self, Ctx, Op, OpError, PartKind, UploadOp, WriteOp};
use cairn_node::repo::Repo;
use cairn_node::upload;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::{self, Api};
use crate::multipart;
use crate::waiting::Waiter;

/// Pieces in flight between an in-process command and its reader.
const PIPE_PIECES: usize = 8;

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
    rt: Arc<tokio::runtime::Runtime>,
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
        Ok(Local { ctx, rt: Arc::new(rt) })
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
        let (tx, rx) = tokio::sync::mpsc::channel(PIPE_PIECES);
        let token = CancellationToken::new();
        let out = ops::PieceSender::new(tx, None, token.clone());
        let task = self.rt.spawn(op.write(self.ctx.clone(), out));
        let mut reader =
            PipeReader { rt: self.rt.clone(), rx, task: Some(task), cur: Bytes::new(), _stop: token.drop_guard() };
        // An error before the first byte is the command's answer.
        reader.fill().map_err(|e| anyhow!("{e}"))?;
        Ok(Box::new(reader))
    }
}

/// The reader's end of an in-process stream; reading drives the command's runtime, and
/// dropping the reader cancels the command. A command that ends without finishing (it
/// panicked) is an error, never a short stream taken for a whole one.
struct PipeReader {
    rt: Arc<tokio::runtime::Runtime>,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    task: Option<tokio::task::JoinHandle<Result<(), OpError>>>,
    cur: Bytes,
    _stop: DropGuard,
}

impl PipeReader {
    /// Wait for the next piece: false at the end, an error if the command failed.
    fn fill(&mut self) -> io::Result<bool> {
        if let Some(piece) = self.rt.block_on(self.rx.recv()) {
            self.cur = piece;
            return Ok(true);
        }
        let Some(task) = self.task.take() else { return Ok(false) };
        match self.rt.block_on(task) {
            Ok(Ok(())) => Ok(false),
            Ok(Err(e)) => Err(io::Error::other(e.message())),
            Err(_) => Err(io::Error::other("the command stopped before it finished (see the log)")),
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if out.is_empty() || !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}
