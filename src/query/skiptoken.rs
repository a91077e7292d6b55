//! `$skiptoken`: an opaque keyset position that we issue inside nextLinks. Collections keep a
//! stable order (the list: `startDateTime`, then `id`), so a position is a key, not an offset.
//!
//! The token is URL-safe base64 (no padding) of a compact JSON object holding
//! the sort key of the last item returned, the remaining `$top`, and a short
//! hash of the query options it was issued for. The hash is not a secret: it
//! only detects a token reused with other options, and a hand-made token can
//! at worst move the keyset position within what the caller may already read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::QueryError;

/// Where the next page starts, and how much of `$top` is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkipToken {
    /// The sort key of the last item returned, e.g. `[start_date_time, id]`
    /// for the callRecords list. Never empty in a token we issue.
    pub(crate) key: Vec<String>,
    /// The part of the original `$top` still to return, or `None` without a
    /// `$top`. Never `Some(0)`: no nextLink is written when nothing is left.
    pub(crate) remaining: Option<u64>,
}

const INVALID: &str = "Invalid skip token.";
/// Far above any token we issue; checked before decoding so a huge value
/// costs nothing.
const MAX_TOKEN_LEN: usize = 4096;
const FORMAT_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u8,
    k: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u64>,
    h: String,
}

/// Encodes `token` for a nextLink.
///
/// `options_fingerprint` is a canonical string of everything the token is
/// only valid with: the path and the `$filter`, `$select` and `$expand`
/// values. Pass the same string to [`decode_skiptoken`].
pub(crate) fn encode_skiptoken(token: &SkipToken, options_fingerprint: &str) -> String {
    let wire = Wire {
        v: FORMAT_VERSION,
        k: token.key.clone(),
        r: token.remaining,
        h: fingerprint_hash(options_fingerprint),
    };
    // Serialising strings and integers into a Vec cannot fail.
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token issued by [`encode_skiptoken`] for the same options.
///
/// Anything else (garbage, a token for other options, an empty key, a
/// remaining count of 0) is an error with option `$skiptoken` and the message
/// `Invalid skip token.`
pub(crate) fn decode_skiptoken(text: &str, options_fingerprint: &str) -> Result<SkipToken, QueryError> {
    let invalid = || QueryError::new("$skiptoken", INVALID);
    if text.len() > MAX_TOKEN_LEN {
        return Err(invalid());
    }
    let json = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let wire: Wire = serde_json::from_slice(&json).map_err(|_| invalid())?;
    let valid = wire.v == FORMAT_VERSION
        && wire.h == fingerprint_hash(options_fingerprint)
        && !wire.k.is_empty()
        && wire.r != Some(0);
    if !valid {
        return Err(invalid());
    }
    Ok(SkipToken {
        key: wire.k,
        remaining: wire.r,
    })
}

/// The first 8 bytes of SHA-256, in hex: enough to tell option sets apart,
/// short enough to keep nextLinks readable.
fn fingerprint_hash(options_fingerprint: &str) -> String {
    let digest = Sha256::digest(options_fingerprint.as_bytes());
    digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};
    use proptest::prelude::*;

    fn check_decode(text: &str, fingerprint: &str, expect: Expect) {
        let actual = match decode_skiptoken(text, fingerprint) {
            Ok(token) => format!("{token:?}"),
            Err(err) => format!("error {}: {}", err.option, err.message),
        };
        expect.assert_eq(&actual);
    }

    fn forge(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn encoded_form_is_stable() {
        let token = SkipToken {
            key: vec!["2024-01-01T00:00:00Z".to_owned(), "3cf3bbc8".to_owned()],
            remaining: Some(40),
        };
        let text = encode_skiptoken(&token, "/communications/callRecords|$filter=|$select=|$expand=");
        expect![
            "eyJ2IjoxLCJrIjpbIjIwMjQtMDEtMDFUMDA6MDA6MDBaIiwiM2NmM2JiYzgiXSwiciI6NDAsImgiOiI1MTg4NDExOTE5OTNhNTZlIn0"
        ]
        .assert_eq(&text);
        check_decode(
            &text,
            "/communications/callRecords|$filter=|$select=|$expand=",
            expect![[r#"SkipToken { key: ["2024-01-01T00:00:00Z", "3cf3bbc8"], remaining: Some(40) }"#]],
        );
    }

    #[test]
    fn rejected_tokens() {
        let fingerprint = "fp";
        let token = SkipToken {
            key: vec!["7".to_owned()],
            remaining: None,
        };
        let text = encode_skiptoken(&token, fingerprint);
        check_decode(
            &text,
            fingerprint,
            expect![[r#"SkipToken { key: ["7"], remaining: None }"#]],
        );
        check_decode(&text, "other options", expect!["error $skiptoken: Invalid skip token."]);
        check_decode("", fingerprint, expect!["error $skiptoken: Invalid skip token."]);
        check_decode(
            "not base64!",
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        check_decode(
            &forge("[1,2]"),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        let hash = fingerprint_hash(fingerprint);
        check_decode(
            &forge(&format!(r#"{{"v":1,"k":[],"h":"{hash}"}}"#)),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        check_decode(
            &forge(&format!(r#"{{"v":1,"k":["a"],"r":0,"h":"{hash}"}}"#)),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        check_decode(
            &forge(&format!(r#"{{"v":2,"k":["a"],"h":"{hash}"}}"#)),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        check_decode(
            &forge(&format!(r#"{{"v":1,"k":["a"],"h":"{hash}","x":1}}"#)),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
        check_decode(
            &forge(&format!(r#"{{"v":1,"k":["a"],"r":3,"h":"{hash}"}}"#)),
            fingerprint,
            expect![[r#"SkipToken { key: ["a"], remaining: Some(3) }"#]],
        );
        check_decode(
            &"A".repeat(5000),
            fingerprint,
            expect!["error $skiptoken: Invalid skip token."],
        );
    }

    proptest! {
        #[test]
        fn round_trips(
            key in prop::collection::vec(any::<String>(), 1..4),
            remaining in prop::option::of(1u64..),
            fingerprint in any::<String>(),
        ) {
            let token = SkipToken { key, remaining };
            let text = encode_skiptoken(&token, &fingerprint);
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(decode_skiptoken(&text, &fingerprint), Ok(token));
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}", fingerprint in "\\PC{0,10}") {
            let _ = decode_skiptoken(&text, &fingerprint);
        }
    }
}
