//! dagpb
