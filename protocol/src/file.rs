//! Streaming UnixFS file DAG builders: balanced (kubo and Helia's default) and trickle.
//!
//! The caller cuts the file into chunks (see [`crate::chunker`]), turns each chunk into a
//! [`Leaf`] with [`Leaf::new`] (a pure function, so leaves can be hashed on any thread), and
//! pushes leaves in file order. The builder emits every block as soon as it is final: leaves
//! first, inner nodes after their children, the root last. It holds at most one pending node per
//! tree level (`max_links` links each), so memory does not grow with the file.
//!
//! Shapes follow boxo exactly (`importer/balanced/builder.go`, `importer/trickle/trickledag.go`):
//! balanced never collapses a single-child inner node below the root and a one-leaf file is its
//! own root; trickle always makes an inner root, with `max_links` leaves per node followed by
//! `trickle_repeat` sub-trees of each increasing depth.

use bytes::Bytes;
use cid::Cid;

use crate::block::Block;
use crate::dagpb::{PbLink, PbNode};
use crate::profile::{ImportSettings, Layout};
use crate::unixfs::{Data, DataType, Metadata};

/// A leaf block ready to be linked into a file DAG.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The leaf block (raw chunk bytes, or a dag-pb UnixFS node wrapping them).
    pub block: Block,
    /// File bytes in this leaf.
    pub file_size: u64,
}

impl Leaf {
    /// Make the leaf for `chunk` under `settings`: a raw block with raw leaves, else a dag-pb
    /// node of UnixFS type File (balanced) or Raw (trickle), as kubo writes them.
    pub fn new(settings: &ImportSettings, chunk: Bytes) -> Leaf {
        let file_size = chunk.len() as u64;
        if settings.raw_leaves {
            let cid = settings.raw_cid(&chunk);
            return Leaf { block: Block::new_unchecked(cid, chunk), file_size };
        }
        let kind = match settings.layout {
            Layout::Balanced => DataType::File,
            Layout::Trickle => DataType::Raw,
        };
        let mut data = Data::new(kind);
        data.data = (!chunk.is_empty()).then_some(chunk);
        data.filesize = Some(file_size);
        let bytes = Bytes::from(PbNode { links: vec![], data: Some(data.to_bytes()) }.encode());
        let cid = settings.node_cid(&bytes);
        Leaf { block: Block::new_unchecked(cid, bytes), file_size }
    }
}

/// What a finished file DAG is known by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRoot {
    /// Root CID.
    pub cid: Cid,
    /// Cumulative size of every block in the DAG (the `Tsize` of a link to it).
    pub tsize: u64,
    /// File bytes.
    pub size: u64,
}

/// A child link being collected into an inner node.
#[derive(Clone, Copy, Debug)]
struct Child {
    cid: Cid,
    tsize: u64,
    file_size: u64,
}

/// Builds one file DAG from leaves pushed in order.
pub struct FileBuilder {
    settings: ImportSettings,
    meta: Metadata,
    shape: Shape,
}

enum Shape {
    /// `levels[0]` holds leaves, `levels[i]` nodes of height `i`.
    Balanced { levels: Vec<Vec<Child>> },
    /// Open trickle nodes, outermost first.
    Trickle { frames: Vec<Frame> },
}

/// A trickle node under construction.
struct Frame {
    children: Vec<Child>,
    /// Still adding direct leaves.
    leaf_phase: bool,
    /// Sub-trees may have depth < this (`None` for the root: unbounded).
    max_depth: Option<usize>,
    /// Depth of the sub-trees currently being added.
    depth: usize,
    /// Sub-trees of `depth` added so far.
    repeat: usize,
}

impl Frame {
    fn new(max_depth: Option<usize>) -> Self {
        Frame { children: Vec::new(), leaf_phase: true, max_depth, depth: 1, repeat: 0 }
    }
}

impl FileBuilder {
    /// A builder for one file under `settings`.
    pub fn new(settings: &ImportSettings) -> Self {
        let shape = match settings.layout {
            Layout::Balanced => Shape::Balanced { levels: vec![Vec::new()] },
            Layout::Trickle => Shape::Trickle { frames: vec![Frame::new(None)] },
        };
        FileBuilder { settings: settings.clone(), meta: Metadata::default(), shape }
    }

    /// Record mode and/or mtime on the root node (UnixFS 1.5).
    pub fn with_metadata(mut self, meta: Metadata) -> Self {
        self.meta = meta;
        self
    }

    /// Add the next leaf; emits it and any inner node that became final.
    pub fn push(&mut self, leaf: Leaf, emit: &mut dyn FnMut(Block)) {
        let child = Child { cid: leaf.block.cid, tsize: leaf.block.data.len() as u64, file_size: leaf.file_size };
        emit(leaf.block);
        match &mut self.shape {
            Shape::Balanced { levels } => {
                let max = self.settings.max_links;
                push_balanced(&self.settings, levels, 0, child, max, emit);
            }
            Shape::Trickle { frames } => push_trickle(&self.settings, frames, child, emit),
        }
    }

    /// Finish the DAG, emitting the remaining inner nodes and the root.
    pub fn finish(self, emit: &mut dyn FnMut(Block)) -> FileRoot {
        let FileBuilder { settings, meta, shape } = self;
        match shape {
            Shape::Balanced { levels } => finish_balanced(&settings, levels, &meta, emit),
            Shape::Trickle { frames } => finish_trickle(&settings, frames, &meta, emit),
        }
    }
}

/// Put `child` into `levels[level]`, first closing that level into its parent if it is full.
fn push_balanced(
    settings: &ImportSettings,
    levels: &mut Vec<Vec<Child>>,
    mut level: usize,
    mut child: Child,
    max: usize,
    emit: &mut dyn FnMut(Block),
) {
    // Iteratively carry full levels upward, then place the child.
    let mut pending: Vec<(usize, Child)> = Vec::new();
    loop {
        if levels[level].len() < max {
            levels[level].push(child);
            break;
        }
        let full = std::mem::take(&mut levels[level]);
        let node = inner_node(settings, &full, &Metadata::default(), emit);
        pending.push((level, child));
        if levels.len() == level + 1 {
            levels.push(Vec::new());
        }
        level += 1;
        child = node;
    }
    // Children that waited for their level to be emptied go in now, lowest level last so the
    // order of links matches the file order.
    while let Some((lvl, c)) = pending.pop() {
        levels[lvl].push(c);
    }
}

fn finish_balanced(
    settings: &ImportSettings,
    mut levels: Vec<Vec<Child>>,
    meta: &Metadata,
    emit: &mut dyn FnMut(Block),
) -> FileRoot {
    let top = levels.len() - 1;
    if top == 0 {
        match levels[0].len() {
            0 => return empty_file(settings, meta, emit),
            1 if meta.mode.is_none() && meta.mtime.is_none() => {
                let leaf = levels[0][0];
                return FileRoot { cid: leaf.cid, tsize: leaf.tsize, size: leaf.file_size };
            }
            _ => {}
        }
    }
    for level in 0..top {
        let items = std::mem::take(&mut levels[level]);
        if items.is_empty() {
            continue;
        }
        let node = inner_node(settings, &items, &Metadata::default(), emit);
        let max = settings.max_links;
        push_balanced(settings, &mut levels, level + 1, node, max, emit);
    }
    // Carrying may have grown a new top level; close every level below the final top.
    let mut level = top;
    while level + 1 < levels.len() {
        let items = std::mem::take(&mut levels[level]);
        if !items.is_empty() {
            let node = inner_node(settings, &items, &Metadata::default(), emit);
            let max = settings.max_links;
            push_balanced(settings, &mut levels, level + 1, node, max, emit);
        }
        level += 1;
    }
    let root_items = levels.pop().unwrap_or_default();
    let root = inner_node(settings, &root_items, meta, emit);
    FileRoot { cid: root.cid, tsize: root.tsize, size: root.file_size }
}

fn push_trickle(settings: &ImportSettings, frames: &mut Vec<Frame>, leaf: Child, emit: &mut dyn FnMut(Block)) {
    loop {
        let top = frames.last_mut().expect("the root frame stays until finish");
        if top.leaf_phase {
            if top.children.len() < settings.max_links {
                top.children.push(leaf);
                return;
            }
            top.leaf_phase = false;
            continue;
        }
        if top.max_depth.is_some_and(|m| top.depth >= m) {
            close_trickle_frame(settings, frames, emit);
            continue;
        }
        let depth = top.depth;
        frames.push(Frame::new(Some(depth)));
    }
}

/// Close the innermost frame into a node and link it from its parent.
fn close_trickle_frame(settings: &ImportSettings, frames: &mut Vec<Frame>, emit: &mut dyn FnMut(Block)) {
    let frame = frames.pop().expect("a frame to close");
    let node = inner_node(settings, &frame.children, &Metadata::default(), emit);
    let parent = frames.last_mut().expect("the root frame is never closed here");
    parent.children.push(node);
    parent.repeat += 1;
    if parent.repeat == settings.trickle_repeat {
        parent.repeat = 0;
        parent.depth += 1;
    }
}

fn finish_trickle(
    settings: &ImportSettings,
    mut frames: Vec<Frame>,
    meta: &Metadata,
    emit: &mut dyn FnMut(Block),
) -> FileRoot {
    while frames.len() > 1 {
        close_trickle_frame(settings, &mut frames, emit);
    }
    let root = frames.pop().expect("root frame");
    if root.children.is_empty() {
        return empty_file(settings, meta, emit);
    }
    let node = inner_node(settings, &root.children, meta, emit);
    FileRoot { cid: node.cid, tsize: node.tsize, size: node.file_size }
}

/// The empty file: an empty raw block with raw leaves (balanced), else a dag-pb File node with
/// `filesize: 0` and no data.
fn empty_file(settings: &ImportSettings, meta: &Metadata, emit: &mut dyn FnMut(Block)) -> FileRoot {
    let no_meta = meta.mode.is_none() && meta.mtime.is_none();
    if settings.raw_leaves && settings.layout == Layout::Balanced && no_meta {
        let cid = settings.raw_cid(&[]);
        emit(Block::new_unchecked(cid, Bytes::new()));
        return FileRoot { cid, tsize: 0, size: 0 };
    }
    let node = inner_node(settings, &[], meta, emit);
    FileRoot { cid: node.cid, tsize: node.tsize, size: 0 }
}

/// Encode and emit a File node over `children`; returns the link to it.
fn inner_node(settings: &ImportSettings, children: &[Child], meta: &Metadata, emit: &mut dyn FnMut(Block)) -> Child {
    let file_size: u64 = children.iter().map(|c| c.file_size).sum();
    let mut data = Data::new(DataType::File);
    data.filesize = Some(file_size);
    data.blocksizes = children.iter().map(|c| c.file_size).collect();
    meta.apply(&mut data);
    let links =
        children.iter().map(|c| PbLink { hash: c.cid, name: Some(String::new()), tsize: Some(c.tsize) }).collect();
    let bytes = Bytes::from(PbNode { links, data: Some(data.to_bytes()) }.encode());
    let cid = settings.node_cid(&bytes);
    let tsize = bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
    emit(Block::new_unchecked(cid, bytes));
    Child { cid, tsize, file_size }
}

/// Import an in-memory buffer: chunk, build, and collect every block (tests, small inputs).
pub fn import_bytes(settings: &ImportSettings, data: &[u8]) -> (Vec<Block>, FileRoot) {
    let mut chunker = settings.chunker.build();
    let mut builder = FileBuilder::new(settings);
    let mut blocks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let window = rest.len().min(chunker.max_size());
        let n = chunker.cut(&rest[..window]);
        let leaf = Leaf::new(settings, Bytes::copy_from_slice(&rest[..n]));
        builder.push(leaf, &mut |b| blocks.push(b));
        rest = &rest[n..];
    }
    let root = builder.finish(&mut |b| blocks.push(b));
    (blocks, root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerSpec;

    fn cid_of(settings: &ImportSettings, data: &[u8]) -> String {
        import_bytes(settings, data).1.cid.to_string()
    }

    fn trickle() -> ImportSettings {
        ImportSettings { layout: Layout::Trickle, ..ImportSettings::v0_2015() }
    }

    #[test]
    fn small_vectors() {
        let v0 = ImportSettings::v0_2015();
        let v1 = ImportSettings::v1_2025();
        assert_eq!(cid_of(&v0, b""), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        assert_eq!(cid_of(&v0, b"hello world\n"), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
        assert_eq!(cid_of(&v1, b""), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert_eq!(cid_of(&trickle(), b"a"), "QmTY8XAaaSqy5ZN39neMeSSf1v769dmV8YqnH9yZR4JSws");
        assert_eq!(cid_of(&trickle(), b""), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
    }

    #[test]
    fn multi_level_vectors() {
        let v0 = ImportSettings::v0_2015();
        let zeros = vec![0u8; 175 * 262144];
        assert_eq!(cid_of(&v0, &zeros[..262145]), "QmbVuw4C4vcmVKqxoWtgDVobvcHrSn51qsmQmyxjk4sB2Q");
        assert_eq!(cid_of(&v0, &zeros[..174 * 262144]), "QmY4HSz1oVGdUzb8poVYPLsoqBZjH6LZrtgnme9wWn2Qko");
        assert_eq!(cid_of(&v0, &zeros), "QmaL1KiQRV8secNszpjjFPg722T53c77k2dz5UsNua59ZT");
        assert_eq!(cid_of(&trickle(), &zeros), "QmZvA6JQzbTBcP9nYL3d2dyudX15Xui5QNR5uWgVgDMU6q");
    }

    #[test]
    fn deep_balanced_tree_has_every_leaf() {
        // 3 links per node and 1-byte chunks: 40 leaves make a 4-level tree.
        let s = ImportSettings { max_links: 3, chunker: ChunkerSpec::Fixed(1), ..ImportSettings::v1_2025() };
        let data: Vec<u8> = (0..40u8).collect();
        let (blocks, root) = import_bytes(&s, &data);
        assert_eq!(root.size, 40);
        assert_eq!(blocks.last().unwrap().cid, root.cid);
        let total: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();
        assert_eq!(total, root.tsize);
    }
}
