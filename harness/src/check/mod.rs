//! Assertions: what came back (an HTTP answer, an exec's output, a log, an image's configuration, a file of a
//! container or an image) against what the file expects.
//! Each check gives every expectation that did not hold as text for "expected" and "actual".

pub mod capture;
pub mod exec;
pub mod file;
pub mod http;
pub mod image;
pub mod logs;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
    pub actual: String,
}

impl Mismatch {
    pub fn new(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Mismatch { expected: expected.into(), actual: actual.into() }
    }
}
