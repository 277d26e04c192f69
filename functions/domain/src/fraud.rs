//! Fraud detection (events d, e): to be written.
