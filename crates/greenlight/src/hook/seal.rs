//! A watch's state proves where it came from. Whatever leaves the process to come back in a
//! later invocation (a CodeDeploy continuation's payload, ECS's `hookDetails`) is sealed with
//! HMAC-SHA-256 under a key the invoker does not hold, over the state *and* what it belongs to:
//! the deployment, the hook execution, the stage and the function. Invoke rights on a hook are
//! therefore not approve rights: a state that does not verify is refused before anything runs.
//!
//! The state travels as the exact text that was MAC'd (a JSON string inside the envelope), so
//! verification never depends on how a JSON value re-serializes.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// The envelope's format; a state in any other shape (an unsealed one included) is refused.
pub(crate) const SEAL_VERSION: u8 = 2;

/// The shortest key accepted, in bytes: HMAC-SHA-256's own block of randomness.
pub(crate) const MIN_KEY_BYTES: usize = 32;

/// Where the key comes from, in the environment: the key itself (local runs, tests, the demo).
pub(crate) const KEY_ENV: &str = "GREENLIGHT_STATE_KEY";

/// Or the ARN of a Secrets Manager secret holding it (the deployed stack creates one).
pub(crate) const KEY_SECRET_ENV: &str = "GREENLIGHT_STATE_KEY_SECRET";

/// The key that seals watch states. Never logged, never in a report.
#[derive(Clone)]
pub struct StateKey(Vec<u8>);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(…)")
    }
}

/// Why no usable key is at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Neither variable is set.
    #[error(
        "no key to seal a watch's state: the deployed stack sets {KEY_SECRET_ENV} to the secret \
         it creates; for a local run set {KEY_ENV} to at least {MIN_KEY_BYTES} random bytes \
         (e.g. `openssl rand -hex 32`)"
    )]
    Missing,
    /// The key is too short to resist guessing.
    #[error(
        "the watch state key ({source_name}) is {len} bytes: use at least {MIN_KEY_BYTES} random \
         bytes (e.g. `openssl rand -hex 32`)"
    )]
    Short {
        /// Where it came from.
        source_name: String,
        /// Its length.
        len: usize,
    },
    /// The secret could not be read.
    #[error("the watch state key could not be read: {0}")]
    Unreadable(String),
}

impl StateKey {
    /// A key from its bytes; shorter than `MIN_KEY_BYTES` (32) is refused.
    pub fn new(bytes: impl Into<Vec<u8>>, source_name: &str) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::Short {
                source_name: source_name.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(StateKey(bytes))
    }

    /// The key as the environment gives it: `GREENLIGHT_STATE_KEY` itself, else the secret `GREENLIGHT_STATE_KEY_SECRET`
    /// names (read once, at cold start). An empty variable counts as unset.
    pub async fn from_env(aws: &crate::aws::Aws) -> Result<Self, KeyError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(key) = var(KEY_ENV) {
            return StateKey::new(key.into_bytes(), KEY_ENV);
        }
        let Some(secret) = var(KEY_SECRET_ENV) else {
            return Err(KeyError::Missing);
        };
        let value = aws
            .secret_string(&secret)
            .await
            .map_err(|err| KeyError::Unreadable(format!("{}; {}", err.problem, err.fix)))?;
        StateKey::new(value.into_bytes(), KEY_SECRET_ENV)
    }

    fn mac(&self, binding: &Binding<'_>, state: &str) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; ours is at least 32 bytes.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"greenlight/watch-state/v2");
        // Length-prefixed, so no two bindings run together into the same bytes.
        for part in [
            binding.deployment_id,
            binding.execution_id,
            binding.stage,
            binding.function,
            state,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// Seal a state's JSON for the invocation that will resume it.
    pub fn seal(&self, binding: &Binding<'_>, state: &Value) -> Value {
        let text = state.to_string();
        let tag = self.mac(binding, &text).finalize().into_bytes();
        serde_json::to_value(Envelope {
            v: SEAL_VERSION,
            state: text,
            mac: hex(&tag),
        })
        .unwrap_or_default()
    }

    /// Verify a carried envelope (in constant time) and return the state it seals.
    pub fn open(&self, binding: &Binding<'_>, carried: &Value) -> Result<Value, SealError> {
        let envelope: Envelope =
            serde_json::from_value(carried.clone()).map_err(|_| SealError::NotSealed)?;
        if envelope.v != SEAL_VERSION {
            return Err(SealError::Version(envelope.v));
        }
        let tag = unhex(&envelope.mac).ok_or(SealError::BadMac)?;
        self.mac(binding, &envelope.state)
            .verify_slice(&tag)
            .map_err(|_| SealError::BadMac)?;
        serde_json::from_str(&envelope.state).map_err(|_| SealError::NotSealed)
    }
}

/// What a sealed state belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// CodeDeploy's `d-…`, or ECS's service deployment.
    pub deployment_id: &'a str,
    /// The hook execution (CodeDeploy's `LifecycleEventHookExecutionId`, ECS's `executionId`).
    pub execution_id: &'a str,
    /// The stage the watch checks.
    pub stage: &'a str,
    /// The function that sealed it (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function: &'a str,
}

/// Why a carried state is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not an envelope greenlight writes.
    #[error(
        "the watch state carried by this invocation is not sealed by greenlight; failing closed \
         (only the hook itself hands a watch on)"
    )]
    NotSealed,
    /// Another format.
    #[error(
        "the watch state is sealed in format {0}, this greenlight reads {SEAL_VERSION}: a \
         deployment must not span an upgrade of the hooks"
    )]
    Version(u8),
    /// The MAC does not verify: forged, altered, or another deployment's, execution's, stage's
    /// or function's.
    #[error(
        "the watch state carried by this invocation does not verify (forged, altered, or sealed \
         for another deployment, hook execution, stage or function); failing closed, no check run"
    )]
    BadMac,
    /// A state came, and there is no key to check it with.
    #[error("this invocation carries a watch state and it cannot be verified: {0}")]
    NoKey(KeyError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: u8,
    state: String,
    mac: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> StateKey {
        StateKey::new(b"0123456789abcdef0123456789abcdef".to_vec(), "test").unwrap()
    }

    fn binding() -> Binding<'static> {
        Binding {
            deployment_id: "d-ABC",
            execution_id: "exec-1",
            stage: "AfterAllowTraffic",
            function: "after-allow-traffic",
        }
    }

    #[test]
    fn a_sealed_state_opens_for_its_own_binding_only() {
        let state = json!({"v": 1, "seq": 3, "note": "ünïcode \"quoted\""});
        let sealed = key().seal(&binding(), &state);
        assert_eq!(key().open(&binding(), &sealed).unwrap(), state);
        let others = [
            Binding {
                deployment_id: "d-OTHER",
                ..binding()
            },
            Binding {
                execution_id: "exec-2",
                ..binding()
            },
            Binding {
                stage: "BeforeAllowTraffic",
                ..binding()
            },
            Binding {
                function: "before-allow-traffic",
                ..binding()
            },
            // Length prefixes: moving a character across a boundary changes the MAC.
            Binding {
                deployment_id: "d-ABCe",
                execution_id: "xec-1",
                ..binding()
            },
        ];
        for other in others {
            assert_eq!(
                key().open(&other, &sealed),
                Err(SealError::BadMac),
                "{other:?}"
            );
        }
        let other_key = StateKey::new(vec![7u8; 32], "test").unwrap();
        assert_eq!(other_key.open(&binding(), &sealed), Err(SealError::BadMac));
    }

    #[test]
    fn an_altered_or_unsealed_state_is_refused() {
        let sealed = key().seal(&binding(), &json!({"seq": 1}));
        let mut altered = sealed.clone();
        altered["state"] = json!("{\"seq\":2}");
        assert_eq!(key().open(&binding(), &altered), Err(SealError::BadMac));
        let mut bad_mac = sealed.clone();
        bad_mac["mac"] = json!("00".repeat(32));
        assert_eq!(key().open(&binding(), &bad_mac), Err(SealError::BadMac));
        let mut short_mac = sealed.clone();
        short_mac["mac"] = json!("00");
        assert_eq!(key().open(&binding(), &short_mac), Err(SealError::BadMac));
        // What greenlight handed on before states were sealed: refused, not believed.
        assert_eq!(
            key().open(
                &binding(),
                &json!({"v": 1, "run_id": "gl-1", "repeats": []})
            ),
            Err(SealError::NotSealed)
        );
        let mut old = sealed;
        old["v"] = json!(1);
        assert_eq!(key().open(&binding(), &old), Err(SealError::Version(1)));
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        let err = StateKey::new(b"short".to_vec(), KEY_ENV).unwrap_err();
        assert!(err.to_string().contains("5 bytes"), "{err}");
        assert!(err.to_string().contains("openssl rand"), "{err}");
        assert_eq!(format!("{:?}", key()), "StateKey(…)");
    }
}
