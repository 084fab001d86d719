//! What the load-test driver reports when something goes wrong.

/// Something that went wrong in a scenario: an unexpected answer or a code that never came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw(pub String);

impl std::fmt::Display for Flaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Flaw {}
