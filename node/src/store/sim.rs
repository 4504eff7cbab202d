//! Power-loss simulation for crash tests: file and metadata layers that keep everything in
//! memory and record every operation in a shared journal. [`Journal::durable_at`] replays a
//! prefix of the journal and keeps only what a sync or flush made durable before that point,
//! which is what a machine that lost power at that moment would find on disk.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};

use super::files::FileLayer;
use super::meta::{MetaLayer, Tree};

/// One recorded operation.
#[derive(Clone, Debug)]
pub enum Op {
    /// A block file written.
    FileWrite(Vec<u8>, Vec<u8>),
    /// A block file removed.
    FileRemove(Vec<u8>),
    /// The file layer synced.
    FileSync,
    /// A metadata value written.
    MetaPut(Tree, Vec<u8>, Vec<u8>),
    /// A metadata value removed.
    MetaRemove(Tree, Vec<u8>),
    /// The metadata layer flushed.
    MetaFlush,
}

/// The shared operation log.
#[derive(Clone, Default)]
pub struct Journal {
    ops: Arc<Mutex<Vec<Op>>>,
}

/// What survives a power loss: durable files and metadata.
#[derive(Debug, Default)]
pub struct Durable {
    /// Block files.
    pub files: HashMap<Vec<u8>, Vec<u8>>,
    /// Metadata trees.
    pub meta: HashMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Journal {
    fn push(&self, op: Op) {
        self.ops.lock().expect("journal lock").push(op);
    }

    /// Number of operations recorded.
    pub fn len(&self) -> usize {
        self.ops.lock().expect("journal lock").len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The durable state if power was lost after the first `n` operations.
    pub fn durable_at(&self, n: usize) -> Durable {
        let ops = self.ops.lock().expect("journal lock");
        let mut durable = Durable::default();
        let mut pending_files: Vec<&Op> = Vec::new();
        let mut pending_meta: Vec<&Op> = Vec::new();
        for op in ops.iter().take(n) {
            match op {
                Op::FileWrite(..) | Op::FileRemove(_) => pending_files.push(op),
                Op::MetaPut(..) | Op::MetaRemove(..) => pending_meta.push(op),
                Op::FileSync => {
                    for op in pending_files.drain(..) {
                        match op {
                            Op::FileWrite(k, v) => {
                                durable.files.insert(k.clone(), v.clone());
                            }
                            Op::FileRemove(k) => {
                                durable.files.remove(k);
                            }
                            _ => unreachable!("only file operations are pending here"),
                        }
                    }
                }
                Op::MetaFlush => {
                    for op in pending_meta.drain(..) {
                        match op {
                            Op::MetaPut(t, k, v) => {
                                durable.meta.entry(*t).or_default().insert(k.clone(), v.clone());
                            }
                            Op::MetaRemove(t, k) => {
                                durable.meta.entry(*t).or_default().remove(k);
                            }
                            _ => unreachable!("only metadata operations are pending here"),
                        }
                    }
                }
            }
        }
        durable
    }
}

/// In-memory file layer that journals its operations.
pub struct SimFiles {
    state: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    journal: Journal,
}

impl SimFiles {
    /// A new empty layer writing to `journal`.
    pub fn new(journal: Journal) -> Self {
        SimFiles { state: Mutex::default(), journal }
    }
}

impl FileLayer for SimFiles {
    fn write(&self, key: &[u8], data: &[u8]) -> io::Result<()> {
        self.state.lock().expect("sim lock").insert(key.to_vec(), data.to_vec());
        self.journal.push(Op::FileWrite(key.to_vec(), data.to_vec()));
        Ok(())
    }
    fn read(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.state.lock().expect("sim lock").get(key).cloned())
    }
    fn size(&self, key: &[u8]) -> io::Result<Option<u64>> {
        Ok(self.state.lock().expect("sim lock").get(key).map(|v| v.len() as u64))
    }
    fn remove(&self, key: &[u8]) -> io::Result<()> {
        self.state.lock().expect("sim lock").remove(key);
        self.journal.push(Op::FileRemove(key.to_vec()));
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.journal.push(Op::FileSync);
        Ok(())
    }
    fn for_each_key(&self, f: &mut dyn FnMut(Vec<u8>) -> bool) -> io::Result<()> {
        let keys: Vec<Vec<u8>> = self.state.lock().expect("sim lock").keys().cloned().collect();
        for k in keys {
            if !f(k) {
                break;
            }
        }
        Ok(())
    }
}

/// The trees of a [`SimMeta`], each an ordered map like sled's.
type SimTrees = HashMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>;

/// In-memory metadata layer that journals its operations.
pub struct SimMeta {
    state: Mutex<SimTrees>,
    journal: Journal,
}

impl SimMeta {
    /// A new empty layer writing to `journal`.
    pub fn new(journal: Journal) -> Self {
        SimMeta { state: Mutex::default(), journal }
    }
}

impl MetaLayer for SimMeta {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.state.lock().expect("sim lock").get(&tree).and_then(|t| t.get(key).cloned()))
    }
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.state.lock().expect("sim lock").entry(tree).or_default().insert(key.to_vec(), value.to_vec());
        self.journal.push(Op::MetaPut(tree, key.to_vec(), value.to_vec()));
        Ok(())
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> io::Result<()> {
        self.state.lock().expect("sim lock").entry(tree).or_default().remove(key);
        self.journal.push(Op::MetaRemove(tree, key.to_vec()));
        Ok(())
    }
    fn for_each(&self, tree: Tree, f: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> io::Result<()> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .state
            .lock()
            .expect("sim lock")
            .get(&tree)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (k, v) in entries {
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        self.journal.push(Op::MetaFlush);
        Ok(())
    }
    fn disk_size(&self) -> io::Result<u64> {
        Ok(0)
    }
}
