//! One module per subcommand. Each has `Args` (clap) and `run`.

pub mod completions;
pub mod edit;
pub mod exec;
pub mod fetch_key;
pub mod hook;
pub mod keygen;
pub mod migrate;
pub mod pubkey;
pub mod render;
pub mod reseal;
pub mod seal;
pub mod unseal;
pub mod verify;
