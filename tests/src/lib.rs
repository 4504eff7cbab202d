//! Multi-node and end-to-end tests live in `tests/`.
