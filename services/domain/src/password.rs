//! Passwords (P1, P2): Argon2id hashing with OWASP parameters, and the tenant's policy.

use crate::Error;
use crate::settings::PasswordPolicy;
use crate::validation::FieldError;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Longest password accepted: bounds the cost of hashing attacker-supplied input.
pub const MAX_PASSWORD_LEN: usize = 128;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl HashParams {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 iterations, 1 lane.
    pub const OWASP: HashParams = HashParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    fn argon2(self) -> Result<Argon2<'static>, Error> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, None)
            .map_err(|e| Error::Conflict(format!("invalid Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::OWASP
    }
}

/// Hashing failed: only possible with broken parameters.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl From<argon2::Error> for HashError {
    fn from(e: argon2::Error) -> Self {
        HashError(e.to_string())
    }
}

impl From<argon2::password_hash::Error> for HashError {
    fn from(e: argon2::password_hash::Error) -> Self {
        HashError(e.to_string())
    }
}

/// Argon2's working memory, kept between computations by the thread that owns it.
///
/// Allocating 19 MiB per hash costs thousands of page faults each time, and the freed
/// memory tends to stay with whichever thread's allocator arena it came from; a fixed
/// set of hashing threads that each reuse one buffer keeps memory bounded and flat.
#[derive(Default)]
pub struct Workspace {
    blocks: Vec<argon2::Block>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workspace({} blocks)", self.blocks.len())
    }
}

impl Workspace {
    fn blocks(&mut self, count: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, argon2::Block::default());
        }
        &mut self.blocks[..count]
    }
}

/// Hashes a password to a PHC string with a fresh random salt, using `ws` as working memory.
pub fn hash_password_in(
    ws: &mut Workspace,
    params: HashParams,
    password: &SecretString,
) -> Result<String, HashError> {
    let argon = params.argon2().map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let salt = salt.as_salt();
    // As argon2's own PasswordHasher does: the hash input is the decoded salt.
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let blocks = ws.blocks(argon.params().block_count());
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon
            .hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                out,
                &mut *blocks,
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Hashes a password with working memory of its own (for one-off use).
pub fn hash_password(params: HashParams, password: &SecretString) -> Result<String, HashError> {
    hash_password_in(&mut Workspace::default(), params, password)
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or an unreadable hash).
    No,
    /// Right password; `rehash` when the stored hash uses outdated parameters.
    Yes { rehash: bool },
}

/// Recomputes a stored PHC hash's output for `password`; `None` when the hash is unreadable.
fn recompute(ws: &mut Workspace, parsed: &PasswordHash<'_>, password: &[u8]) -> Option<bool> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
    let blocks = ws.blocks(params.block_count());
    let argon = Argon2::new(algorithm, version, params);
    let actual = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut *blocks)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .ok()?;
    // Output's equality is constant-time.
    Some(actual == expected)
}

/// Verifies a password against a PHC hash, using `ws` as working memory.
pub fn verify_password_in(
    ws: &mut Workspace,
    current: HashParams,
    stored: &str,
    password: &SecretString,
) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    // Verification uses the parameters recorded in the hash itself.
    match recompute(ws, &parsed, password.expose_secret().as_bytes()) {
        Some(true) => Verified::Yes {
            rehash: is_outdated(current, &parsed),
        },
        _ => Verified::No,
    }
}

/// Verifies a password with working memory of its own (for one-off use).
pub fn verify_password(current: HashParams, stored: &str, password: &SecretString) -> Verified {
    verify_password_in(&mut Workspace::default(), current, stored, password)
}

/// A hash is outdated when it is not Argon2id v1.3 or any cost is below the current one.
fn is_outdated(current: HashParams, hash: &PasswordHash<'_>) -> bool {
    if hash.algorithm.as_str() != "argon2id" || hash.version != Some(0x13) {
        return true;
    }
    let Ok(p) = Params::try_from(hash) else {
        return true;
    };
    p.m_cost() < current.m_cost || p.t_cost() < current.t_cost || p.p_cost() < current.p_cost
}

/// Checks a new password against the tenant policy, reporting every broken rule by name.
pub fn check_policy(
    policy: &PasswordPolicy,
    field: &str,
    password: &SecretString,
    username: &str,
) -> Result<(), Error> {
    let pw = password.expose_secret();
    let len = pw.chars().count();
    let mut errors = Vec::new();
    if len < policy.min_length as usize {
        errors.push(FieldError::rule(
            field,
            "min_length",
            format!("must be at least {} characters", policy.min_length),
        ));
    }
    if len > MAX_PASSWORD_LEN {
        errors.push(FieldError::rule(
            field,
            "max_length",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    if policy.require_upper && !pw.chars().any(char::is_uppercase) {
        errors.push(FieldError::rule(
            field,
            "require_upper",
            "must contain an upper-case letter",
        ));
    }
    if policy.require_lower && !pw.chars().any(char::is_lowercase) {
        errors.push(FieldError::rule(
            field,
            "require_lower",
            "must contain a lower-case letter",
        ));
    }
    if policy.require_digit && !pw.chars().any(|c| c.is_ascii_digit()) {
        errors.push(FieldError::rule(
            field,
            "require_digit",
            "must contain a digit",
        ));
    }
    if policy.require_special
        && !pw
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        errors.push(FieldError::rule(
            field,
            "require_special",
            "must contain a special character",
        ));
    }
    let user = username.trim().to_lowercase();
    if !user.is_empty() && pw.to_lowercase().contains(&user) {
        errors.push(FieldError::rule(
            field,
            "contains_username",
            "must not contain the username",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::PasswordPolicy(errors))
    }
}

/// Who set a password, and so whether it is temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordVia {
    /// The user, at `POST /v1/me/password`.
    SelfService,
    /// The user, replacing a temporary password while signing in.
    SignInFlow,
    /// A practice admin (`POST .../users/{user_id}/password`).
    AdminReset,
    /// The vendor's support, through an approved escalation (S2).
    Escalation,
}

impl PasswordVia {
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordVia::SelfService => "self_service",
            PasswordVia::SignInFlow => "sign_in_flow",
            PasswordVia::AdminReset => "admin_reset",
            PasswordVia::Escalation => "escalation",
        }
    }

    /// Set by someone other than the user: it must be changed at the next sign-in.
    pub fn temporary(self) -> bool {
        matches!(self, PasswordVia::AdminReset | PasswordVia::Escalation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    const CHEAP: HashParams = HashParams {
        m_cost: 1024,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn p1_hash_verifies_and_detects_outdated_parameters() -> Result<(), HashError> {
        let h = hash_password(CHEAP, &s("Correct-Horse-9"))?;
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            verify_password(CHEAP, &h, &s("Correct-Horse-9")),
            Verified::Yes { rehash: false }
        );
        assert_eq!(verify_password(CHEAP, &h, &s("wrong")), Verified::No);
        let stronger = HashParams { t_cost: 2, ..CHEAP };
        assert_eq!(
            verify_password(stronger, &h, &s("Correct-Horse-9")),
            Verified::Yes { rehash: true }
        );
        assert_eq!(verify_password(CHEAP, "not a hash", &s("x")), Verified::No);
        Ok(())
    }

    #[test]
    fn p1_workspace_hashes_interoperate_with_argon2s_own_api() -> Result<(), HashError> {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = HashParams {
            m_cost: 2048,
            t_cost: 2,
            p_cost: 1,
        };
        let mut ws = Workspace::default();
        // Ours verify with argon2's verifier...
        let ours = hash_password_in(&mut ws, params, &s("Blue-Harbor-77!"))?;
        let parsed = PasswordHash::new(&ours)?;
        assert!(
            Argon2::default()
                .verify_password(b"Blue-Harbor-77!", &parsed)
                .is_ok()
        );
        // ...and argon2's hashes (e.g. made before this pool existed) verify with ours,
        // reusing one workspace across different memory sizes.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = params
            .argon2()
            .map_err(|e| HashError(e.to_string()))?
            .hash_password(b"Blue-Harbor-77!", &salt)?
            .to_string();
        assert_eq!(
            verify_password_in(&mut ws, params, &theirs, &s("Blue-Harbor-77!")),
            Verified::Yes { rehash: false }
        );
        assert_eq!(
            verify_password_in(&mut ws, params, &theirs, &s("Blue-Harbor-78!")),
            Verified::No
        );
        assert_eq!(
            verify_password_in(&mut ws, params, &ours, &s("Blue-Harbor-77!")),
            Verified::Yes { rehash: false }
        );
        let bigger = HashParams {
            m_cost: 4096,
            ..params
        };
        let big = hash_password_in(&mut ws, bigger, &s("x-Y-1!"))?;
        assert_eq!(
            verify_password_in(&mut ws, params, &big, &s("x-Y-1!")),
            Verified::Yes { rehash: false }
        );
        Ok(())
    }

    #[test]
    fn p2_every_broken_rule_is_reported_by_name() {
        let policy = PasswordPolicy::default();
        let Err(Error::PasswordPolicy(errs)) =
            check_policy(&policy, "new_password", &s("jdoe"), "jdoe")
        else {
            panic!("expected policy errors");
        };
        let rules: Vec<_> = errs.iter().filter_map(|e| e.rule.as_deref()).collect();
        assert_eq!(
            rules,
            [
                "min_length",
                "require_upper",
                "require_digit",
                "require_special",
                "contains_username"
            ]
        );
        assert!(errs.iter().all(|e| e.field == "new_password"));
        assert!(check_policy(&policy, "p", &s("Winter-Garden-42"), "jdoe").is_ok());
    }

    #[test]
    fn p2_relaxed_policy_and_length_cap() {
        let policy = PasswordPolicy {
            min_length: 8,
            require_upper: false,
            require_lower: false,
            require_digit: false,
            require_special: false,
        };
        assert!(check_policy(&policy, "p", &s("plainpassword"), "x").is_ok());
        let long = "a".repeat(MAX_PASSWORD_LEN + 1);
        assert!(matches!(
            check_policy(&policy, "p", &s(&long), "x"),
            Err(Error::PasswordPolicy(e)) if e[0].rule.as_deref() == Some("max_length")
        ));
    }
}
