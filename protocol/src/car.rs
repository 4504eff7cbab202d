//! CAR (content archive) reading and writing (placeholder until implemented).
