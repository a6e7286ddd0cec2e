//! PLACEHOLDER until the lab branch is merged.
#[derive(Debug, thiserror::Error)]
#[error("lab")]
pub struct LabError;
impl LabError {
    pub fn is_environment(&self) -> bool {
        false
    }
}
pub mod cli {
    #[derive(Debug, Clone, clap::Subcommand)]
    pub enum LabCommand {
        Up,
    }
    pub fn run(_c: LabCommand) -> Result<(), super::LabError> {
        Ok(())
    }
}
