//! cairn node
