//! parc: agentless deployment, verification and imaging for fleets of workstations.
//!
//! The library holds all logic; `src/main.rs` only calls [`cli::main`]. See the
//! README's architecture section for how the modules fit together.

pub mod cli;
pub mod confine;
pub mod engine;
pub mod error;
pub mod events;
pub mod facts;
pub mod image;
pub mod inventory;
pub mod journal;
pub mod lab;
pub mod location;
pub mod playbook;
pub mod profile;
pub mod render;
pub mod report;
pub mod resources;
pub mod transport;
pub mod ui;
pub mod verify;
