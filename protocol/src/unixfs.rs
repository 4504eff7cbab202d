//! unixfs
