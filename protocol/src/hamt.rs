//! hamt
