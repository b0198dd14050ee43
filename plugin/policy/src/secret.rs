//! A string that never shows up in `Debug` output or logs.

use serde::Deserialize;

/// A secret value (HMAC key, edge signing secret). Its `Debug` is redacted so a config
/// printed for diagnostics cannot leak it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value. Prefer loading secrets from config or the environment.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for keying a MAC. Deliberately not `Display`.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The text, for validation only (never for messages).
    pub(crate) fn expose_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes, for validation messages that must not show the value.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty secret (always a configuration error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let s = Secret::new("hunter2-very-secret");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), b"hunter2-very-secret");
    }
}
