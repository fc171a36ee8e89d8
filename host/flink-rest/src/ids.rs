//! Identifiers Flink hands out or accepts: validated at the edge so a typo is caught here,
//! not as a confusing 400 from Flink.

use crate::FlinkError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

macro_rules! hex_id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A Flink ", $what, ": 32 hexadecimal characters.")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, FlinkError> {
                if is_hex_id(text) {
                    Ok(Self(text.to_ascii_lowercase()))
                } else {
                    Err(FlinkError::InvalidArgument(format!(
                        concat!("a ", $what, " is 32 hexadecimal characters, got {:?}"),
                        text
                    )))
                }
            }

            /// From 128 bits chosen by the caller (derived or random): the caller decides, so
            /// retries can reuse the same id and tests stay deterministic.
            pub fn from_u128(bits: u128) -> Self {
                Self(format!("{bits:032x}"))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hex_id!(JobId, "job id");
hex_id!(TriggerId, "trigger id");

/// An uploaded jar as Flink names it (`<uuid>_<file name>.jar`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JarId(pub String);

impl fmt::Display for JarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_characters() {
        assert!(JobId::parse("aaaabbbbccccddddeeeeffff00001111").is_ok());
        assert_eq!(
            JobId::parse("AAAABBBBCCCCDDDDEEEEFFFF00001111")
                .unwrap()
                .as_str(),
            "aaaabbbbccccddddeeeeffff00001111"
        );
        assert!(JobId::parse("zzz").is_err());
        assert_eq!(
            TriggerId::from_u128(255).as_str(),
            "000000000000000000000000000000ff"
        );
    }
}
