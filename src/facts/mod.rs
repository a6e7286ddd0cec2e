//! PLACEHOLDER until the facts branch is merged.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default, PartialEq)]
pub struct Facts {
    pub hostname: String,
}
pub const PROBE: &str = "hostname";
#[derive(Debug, thiserror::Error)]
#[error("bad facts")]
pub struct FactsError;
pub fn parse(s: &str) -> Result<Facts, FactsError> {
    Ok(Facts {
        hostname: s.trim().into(),
    })
}
pub fn render_table(_rows: &[(String, Facts)]) -> String {
    String::new()
}
pub fn render_csv(_rows: &[(String, Facts)]) -> String {
    String::new()
}
