//! parc: agentless deployment, verification and imaging for fleets of workstations.
//!
//! The library holds all logic; `src/main.rs` only calls [`cli::main`]. See the
//! README's architecture section for how the modules fit together.

pub mod cli;
pub mod confine;
pub(crate) mod content;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod facts;
pub(crate) mod image;
pub mod inventory;
pub(crate) mod journal;
pub mod lab;
pub(crate) mod location;
pub(crate) mod numbers;
pub mod playbook;
pub mod profile;
pub mod render;
pub(crate) mod report;
pub(crate) mod resources;
pub(crate) mod transport;
pub(crate) mod ui;
pub(crate) mod verify;
