//! Suggestions (event f): to be written.
