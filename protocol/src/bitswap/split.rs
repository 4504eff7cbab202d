//! Packing wants, presences and blocks into as many messages as a size target needs.

use super::*;

/// Upper bound on what a message adds around its items: the wantlist field's key and length
/// (≤ 6 bytes), `full` (2) and `pendingBytes` (≤ 11, a negative int32 takes 10 varint bytes).
const SPLIT_OVERHEAD: usize = 6 + 2 + 11;

/// Pack `msg`, as a peer speaking `version` receives it ([`Message::for_version`]), into as few
/// messages as keep each encoding within `target` bytes and [`MAX_ENTRIES_PER_MESSAGE`]
/// entries. Items keep their order: wants, then presences, then blocks. A block is never split;
/// one too large for `target` travels alone. Always returns at least one message.
///
/// Only the first message carries `full` (the rest extend the wantlist it replaced). For 1.2.0,
/// each message's `pending_bytes` is `msg.pending_bytes` plus the block bytes in the messages
/// after it, saturating at `i32::MAX`.
pub fn split_into_messages(msg: &Message, version: Version, target: usize) -> Vec<Message> {
    let msg = msg.for_version(version);
    let mut packer = Packer::new(target);
    for w in msg.wants {
        let cost = field_cost(entry_to_proto(&w).encoded_len());
        packer.room(cost).wants.push(w);
    }
    for (cid, p) in msg.presences {
        let cost = field_cost(presence_to_proto(&cid, p).encoded_len());
        packer.room(cost).presences.push((cid, p));
    }
    for b in msg.blocks {
        let cost = match version {
            Version::V1_0_0 => field_cost(b.data.len()),
            Version::V1_1_0 | Version::V1_2_0 => field_cost(block_to_proto(&b).encoded_len()),
        };
        packer.room(cost).blocks.push(b);
    }
    let mut out = packer.finish();
    out[0].full = msg.full;
    if version.supports_have() {
        let mut later: i64 = 0;
        for m in out.iter_mut().rev() {
            let pending = i64::from(msg.pending_bytes) + later;
            m.pending_bytes = i32::try_from(pending).unwrap_or(i32::MAX);
            later += m.blocks.iter().map(|b| b.data.len() as i64).sum::<i64>();
        }
    }
    out
}

/// Bytes an item takes inside its repeated field: key, length, body.
fn field_cost(body_len: usize) -> usize {
    1 + prost::length_delimiter_len(body_len) + body_len
}

struct Packer {
    target: usize,
    out: Vec<Message>,
    cur: Message,
    size: usize,
    items: usize,
}

impl Packer {
    fn new(target: usize) -> Self {
        Packer { target, out: Vec::new(), cur: Message::default(), size: SPLIT_OVERHEAD, items: 0 }
    }

    /// The message the next item (of `cost` bytes) goes into, starting a new one if needed.
    fn room(&mut self, cost: usize) -> &mut Message {
        let full = self.size + cost > self.target || self.items == MAX_ENTRIES_PER_MESSAGE;
        if full && self.items > 0 {
            self.out.push(std::mem::take(&mut self.cur));
            self.size = SPLIT_OVERHEAD;
            self.items = 0;
        }
        self.size += cost;
        self.items += 1;
        &mut self.cur
    }

    fn finish(mut self) -> Vec<Message> {
        if self.items > 0 || self.out.is_empty() {
            self.out.push(self.cur);
        }
        self.out
    }
}
