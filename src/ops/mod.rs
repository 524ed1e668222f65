//! Operator commands beside `serve` and `demo`: the `check` doctor, config `snippet`s for common
//! relying parties and the `clients list` view. They print for a person at a terminal and
//! never show a secret.

pub mod doctor;
