//! ssh config resolution (placeholder until written).
