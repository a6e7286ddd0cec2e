//! PLACEHOLDER until the lab branch lands.
