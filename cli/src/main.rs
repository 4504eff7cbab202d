//! The `cairn` binary: everything is in the `cairn_cli` library.

fn main() {
    cairn_cli::main();
}
