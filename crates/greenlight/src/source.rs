//! Where the config and the secrets come from: `GREENLIGHT_CONFIG` (inline, `file:`, `ssm:`,
//! `s3://`) and each secret's source (environment, Secrets Manager, SSM SecureString).
//!
//! This is I/O, done once per cold start; the config schema itself ([`crate::config`]) reads
//! nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use sha2::Digest as _;

use crate::aws::{Aws, AwsReadError};
use crate::config::{Config, MAX_CONFIG_BYTES};
use crate::error::ConfigError;

/// The environment variable that holds the config (the document itself, or `file:PATH`).
pub(crate) const CONFIG_ENV: &str = "GREENLIGHT_CONFIG";

/// The account that must own the config's S3 bucket (the template sets it to its own).
pub(crate) const BUCKET_OWNER_ENV: &str = "GREENLIGHT_CONFIG_BUCKET_OWNER";

/// Where the config came from, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The document was in `GREENLIGHT_CONFIG` itself.
    Inline,
    /// `file:PATH`.
    File(PathBuf),
    /// `ssm:NAME` (Parameter Store).
    Ssm(String),
    /// `s3://BUCKET/KEY`.
    S3 {
        /// BUCKET, owned by `GREENLIGHT_CONFIG_BUCKET_OWNER` (this account by default).
        bucket: String,
        /// KEY, read at its latest version.
        key: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Inline => f.write_str("inline"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Ssm(name) => write!(f, "ssm:{name}"),
            Source::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// A config with where it came from and which version it was.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parsed, validated config.
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    /// The SSM parameter version, the S3 version id or ETag, or a content hash.
    pub version: String,
}

impl Source {
    /// Read a `GREENLIGHT_CONFIG` value: `ssm:NAME`, `s3://BUCKET/KEY`, `file:PATH`, or the
    /// document itself.
    pub fn parse(setting: &str) -> Result<Source, ConfigError> {
        let trimmed = setting.trim();
        if let Some(name) = trimmed.strip_prefix("ssm:") {
            let name = name.trim();
            if name.is_empty() {
                return Err(ConfigError::invalid(
                    CONFIG_ENV,
                    setting,
                    "no parameter name after ssm:",
                    "write ssm:/greenlight/payments",
                ));
            }
            return Ok(Source::Ssm(name.to_owned()));
        }
        if let Some(rest) = trimmed.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Source::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err(ConfigError::invalid(
                    CONFIG_ENV,
                    setting,
                    "not an S3 location",
                    "write s3://BUCKET/KEY, e.g. s3://payments-config/greenlight.yaml",
                )),
            };
        }
        if let Some(path) = trimmed.strip_prefix("file:") {
            return Ok(Source::File(PathBuf::from(path.trim())));
        }
        Ok(Source::Inline)
    }
}

/// Load `GREENLIGHT_CONFIG` from wherever it points, once per cold start.
pub async fn load_env(aws: &Aws) -> Result<Loaded, ConfigError> {
    match std::env::var(CONFIG_ENV) {
        Ok(value) if !value.trim().is_empty() => load(&value, aws).await,
        _ => Err(ConfigError::Missing),
    }
}

/// Load a config from a `GREENLIGHT_CONFIG` value.
pub(crate) async fn load(setting: &str, aws: &Aws) -> Result<Loaded, ConfigError> {
    let source = Source::parse(setting)?;
    let inline = matches!(source, Source::Inline).then_some(setting);
    read(source, inline, aws).await
}

/// Load a config file (the CLI's `--config`).
pub async fn load_file(path: PathBuf) -> Result<Loaded, ConfigError> {
    let text = read_file(&path, "-c/--config").map_err(|err| match err {
        // The size error names GREENLIGHT_CONFIG; the CLI's user gave a flag.
        ConfigError::Invalid { .. } => ConfigError::invalid(
            "--config",
            path.display(),
            "the file is larger than any config could be",
            "point -c/--config at the greenlight config itself",
        ),
        other => other,
    })?;
    parsed(Source::File(path), text, None)
}

/// Read the document from its source, parse and validate it.
async fn read(source: Source, inline: Option<&str>, aws: &Aws) -> Result<Loaded, ConfigError> {
    let from_aws =
        |err: AwsReadError| ConfigError::invalid(CONFIG_ENV, &source, err.problem, err.fix);
    let (text, version) = match &source {
        Source::Inline => (inline.unwrap_or_default().to_owned(), None),
        Source::File(path) => (read_file(path, "GREENLIGHT_CONFIG=file:PATH")?, None),
        Source::Ssm(name) => {
            let parameter = aws.ssm_parameter(name).await.map_err(from_aws)?;
            (
                parameter.value,
                Some(format!("ssm version {}", parameter.version)),
            )
        }
        Source::S3 { bucket, key } => {
            let owner = std::env::var(BUCKET_OWNER_ENV)
                .ok()
                .filter(|owner| !owner.trim().is_empty());
            let object = aws
                .s3_object(bucket, key, MAX_CONFIG_BYTES, owner.as_deref())
                .await
                .map_err(from_aws)?;
            let version = object.version;
            let text = String::from_utf8(object.body).map_err(|_| {
                ConfigError::invalid(
                    CONFIG_ENV,
                    &source,
                    "the object is not UTF-8 text",
                    "upload the YAML or JSON config itself",
                )
            })?;
            (text, Some(format!("s3 {version}")))
        }
    };
    parsed(source, text, version)
}

/// Parse and validate a config's text; its version is the source's, else a digest of the text.
fn parsed(source: Source, text: String, version: Option<String>) -> Result<Loaded, ConfigError> {
    let version = version.unwrap_or_else(|| {
        let digest = sha2::Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("sha256 {hex}")
    });
    Ok(Loaded {
        config: Config::parse(&text)?,
        source,
        version,
    })
}

/// A config file, refused unread when it is larger than any config could be.
fn read_file(path: &std::path::Path, via: &'static str) -> Result<String, ConfigError> {
    let read_error = |err: std::io::Error| ConfigError::Read {
        path: path.to_owned(),
        reason: err.to_string(),
        via,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_CONFIG_BYTES as u64 {
        return Err(ConfigError::invalid(
            CONFIG_ENV,
            path.display(),
            format!(
                "the file has {size} bytes, more than the {MAX_CONFIG_BYTES} a config may have"
            ),
            "point at the greenlight config itself",
        ));
    }
    std::fs::read_to_string(path).map_err(read_error)
}

/// The config's secrets as a cold start found them: the values it could read, and why each of
/// the others could not be. A missing secret fails the stages whose checks use it (their
/// templates say why), not the others.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Name → value.
    pub values: BTreeMap<String, String>,
    /// Name → why it could not be read, with the fix.
    pub missing: BTreeMap<String, ConfigError>,
}

impl Resolved {
    /// Every secret, or the first one missing.
    pub(crate) fn all(mut self) -> Result<BTreeMap<String, String>, ConfigError> {
        match self.missing.pop_first() {
            Some((_, err)) => Err(err),
            None => Ok(self.values),
        }
    }
}

/// Resolve every secret of the config: environment, Secrets Manager, SSM SecureString. A
/// missing or empty one is kept as missing, with why: a stage that uses it fails closed instead
/// of sending an empty API key.
pub(crate) async fn secrets(config: &Config, aws: &Aws) -> Resolved {
    let mut resolved = Resolved::default();
    for (name, from) in &config.secrets {
        match secret(name, from, aws).await {
            Ok(value) => {
                resolved.values.insert(name.clone(), value);
            }
            Err(err) => {
                resolved.missing.insert(name.clone(), err);
            }
        }
    }
    resolved
}

async fn secret(
    name: &str,
    from: &crate::config::SecretSource,
    aws: &Aws,
) -> Result<String, ConfigError> {
    {
        let value = match (&from.env, &from.secretsmanager, &from.ssm) {
            (Some(variable), _, _) => env_secret(name, variable)?,
            (_, Some(id), _) => aws.secret_string(id).await.map_err(|err| {
                ConfigError::invalid(
                    format!("secrets.{name}.secretsmanager"),
                    id,
                    err.problem,
                    err.fix,
                )
            })?,
            (_, _, Some(parameter)) => {
                let read = aws.ssm_parameter(parameter).await.map_err(|err| {
                    ConfigError::invalid(
                        format!("secrets.{name}.ssm"),
                        parameter,
                        err.problem,
                        err.fix,
                    )
                })?;
                if read.kind != "SecureString" {
                    return Err(ConfigError::invalid(
                        format!("secrets.{name}.ssm"),
                        parameter,
                        format!("the parameter is a {}, not a SecureString", read.kind),
                        "store secrets as SecureString parameters (encrypted at rest)",
                    ));
                }
                read.value
            }
            // Validation guarantees exactly one source.
            (None, None, None) => {
                return Err(ConfigError::invalid(
                    format!("secrets.{name}"),
                    "(source)",
                    "no source",
                    "write { env: VARIABLE }, { secretsmanager: ID } or { ssm: NAME }",
                ));
            }
        };
        if value.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("secrets.{name}"),
                "(empty)",
                "the secret's value is empty",
                "store the value, or point at the right source",
            ));
        }
        Ok(value)
    }
}

/// Resolve secrets that all come from the environment (tests; callers without AWS access). A
/// secret read from AWS is missing here, with the fix: use [`secrets`].
pub(crate) fn env_secrets(config: &Config) -> Resolved {
    let mut resolved = Resolved::default();
    for (name, from) in &config.secrets {
        let value = match &from.env {
            Some(variable) => env_secret(name, variable),
            None => Err(ConfigError::invalid(
                format!("secrets.{name}"),
                "(AWS source)",
                "this secret is read from AWS, which this caller does not load",
                "load the suite with Suite::load",
            )),
        };
        match value {
            Ok(value) => {
                resolved.values.insert(name.clone(), value);
            }
            Err(err) => {
                resolved.missing.insert(name.clone(), err);
            }
        }
    }
    resolved
}

/// A secret from an environment variable.
fn env_secret(name: &str, variable: &str) -> Result<String, ConfigError> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::invalid(
            format!("secrets.{name}.env"),
            variable,
            "the environment variable is not set (or is empty)",
            format!("set {variable} on the function (or in the shell that runs greenlight)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_select_the_source() {
        let aws = crate::aws::Aws::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "targets: { t: { url: http://a } }").unwrap();
        let loaded = load(&format!("file:{}", path.display()), &aws)
            .await
            .unwrap();
        assert_eq!(loaded.source, Source::File(path.clone()));
        assert!(loaded.version.starts_with("sha256 "), "{}", loaded.version);
        let loaded = load("targets: { t: { url: http://a } }", &aws)
            .await
            .unwrap();
        assert_eq!(loaded.source, Source::Inline);
        let e = load("file:/nonexistent/greenlight.yaml", &aws)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/greenlight.yaml"), "{e}");
        assert_eq!(
            Source::parse("ssm:/greenlight/payments").unwrap(),
            Source::Ssm("/greenlight/payments".into())
        );
        assert_eq!(
            Source::parse("s3://cfg/env/greenlight.yaml").unwrap(),
            Source::S3 {
                bucket: "cfg".into(),
                key: "env/greenlight.yaml".into()
            }
        );
        for bad in ["ssm:", "s3://bucket-only", "s3:///key"] {
            let e = Source::parse(bad).unwrap_err().to_string();
            assert!(e.contains("GREENLIGHT_CONFIG"), "{bad}: {e}");
        }
    }
}
