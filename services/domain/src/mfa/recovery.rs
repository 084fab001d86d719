//! Recovery codes (M6): five per enrollment, shown once, stored as keyed hashes, each
//! usable once. Ten characters of an unambiguous alphabet (50 bits), shown as XXXXX-XXXXX.

use crate::crypto::SecretKey;
use rand::Rng;
use uuid::Uuid;

/// Codes issued at a time.
pub const COUNT: usize = 5;

/// Crockford's base32 alphabet: no I, L, O or U to misread.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Generates a fresh set of codes, formatted for display.
pub fn generate(rng: &mut impl Rng) -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let chars: String = (0..10)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The canonical form of typed input: upper case, separators dropped, look-alikes mapped.
pub fn normalize(input: &str) -> Option<String> {
    let s: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (s.len() == 10 && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// The stored form of a code for one user; equal inputs give equal hashes, so a used
/// code can be found (and consumed) by its hash in one atomic update.
pub fn keyed_hash(key: &SecretKey, user: Uuid, normalized: &str) -> String {
    key.mac("recovery-code", &[user.as_bytes(), normalized.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m6_five_distinct_readable_codes() {
        let codes = generate(&mut rand::rngs::OsRng);
        assert_eq!(codes.len(), 5);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 5);
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(normalize(c).map(|n| n.len()), Some(10));
        }
    }

    #[test]
    fn m6_typing_variants_normalize_and_hash_per_user() {
        assert_eq!(normalize("abcde-fghjk").as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(normalize("0o1il 23456").as_deref(), Some("0011123456"));
        assert_eq!(normalize("too-short"), None);
        let key = SecretKey::from_bytes([1; 32]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            keyed_hash(&key, a, "ABCDEFGHJK"),
            keyed_hash(&key, a, "ABCDEFGHJK")
        );
        assert_ne!(
            keyed_hash(&key, a, "ABCDEFGHJK"),
            keyed_hash(&key, b, "ABCDEFGHJK")
        );
    }
}
