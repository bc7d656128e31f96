//! librdkafka properties from the command line, for every Kafka client of a
//! process: repeatable `-X key=value` (kcat's convention) and `--kafka-config FILE`
//! (`key=value` lines, `#` comments). This is how a service reaches a secured
//! broker (TLS, SASL) or tunes librdkafka without a rebuild.
//!
//! librdkafka checks each property as it is parsed, so a misspelt name is a usage
//! error at start; so is a setting the services do not support (see
//! [`Property::unsupported`]). Secrets (`sasl.password`, `ssl.key.password`, ...)
//! are masked wherever properties are shown, error messages included.

use clap::builder::TypedValueParser;
use clap::error::{Error, ErrorKind};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// How a secret's value is shown.
const MASK: &str = "******";

/// The librdkafka properties given to every Kafka client.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClientProperties {
    /// A librdkafka property for every Kafka client, as KEY=VALUE; repeatable,
    /// applied after --kafka-config. E.g. -X security.protocol=SSL
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = PropertyParser)]
    pub properties: Vec<Property>,
    /// A file of librdkafka properties for every Kafka client: KEY=VALUE lines, # comments.
    #[arg(long, value_name = "FILE", value_parser = PropertiesFileParser)]
    pub kafka_config: Option<PropertiesFile>,
}

impl ClientProperties {
    /// A client configuration for `brokers` with every property: the file's, then `-X`'s.
    pub fn client_config(&self, brokers: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        self.apply(&mut config);
        config
    }

    /// Sets every property on `config`, over what it holds: the file's, then `-X`'s.
    pub fn apply(&self, config: &mut ClientConfig) {
        for property in self.iter() {
            config.set(&property.key, &property.value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &Property> {
        self.kafka_config.iter().flat_map(|file| &file.properties).chain(&self.properties)
    }
}

impl fmt::Display for ClientProperties {
    /// `security.protocol=SASL_SSL sasl.password=****** (from client.properties and -X)`, secrets masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.iter().map(Property::to_string).collect();
        write!(f, "{}", shown.join(" "))?;
        match &self.kafka_config {
            Some(file) => write!(f, " (from {} and -X)", file.path.display()),
            None => write!(f, " (from -X)"),
        }
    }
}

/// One librdkafka property.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

impl Property {
    /// Parses `key=value` and has librdkafka check it. The error never shows the text,
    /// which may hold a secret.
    pub fn parse(text: &str) -> Result<Property, String> {
        let Some((key, value)) = text.split_once('=') else {
            return Err("is not KEY=VALUE".to_string());
        };
        let property = Property { key: key.trim().to_string(), value: value.trim().to_string() };
        if property.key.is_empty() {
            return Err("has no key before its `=`".to_string());
        }
        match ClientConfig::new().set(&property.key, &property.value).create_native_config() {
            Ok(_) => Ok(property),
            // librdkafka's description repeats the value: shown only if it is no secret.
            Err(KafkaError::ClientConfig(_, description, ..)) if !property.is_secret() => {
                Err(format!("is refused by librdkafka: {description}"))
            }
            Err(_) => Err(format!("is refused by librdkafka: {} does not take that value", property.key)),
        }
    }

    /// Why the services refuse this property, if they do: it makes rebalances
    /// incremental (some partitions revoked while the others stay), and a consumer
    /// here assumes eager ones (every partition revoked, then the new assignment):
    /// on an incremental revoke it would forget what it holds for the partitions it
    /// keeps, and store offsets past orders never handled.
    pub fn unsupported(&self) -> Option<String> {
        let value = self.value.to_ascii_lowercase();
        let (why, instead) = match self.key.as_str() {
            "partition.assignment.strategy" if value.split(',').any(|s| s.trim() == "cooperative-sticky") => {
                (
                    "cooperative-sticky rebalances incrementally",
                    "range or roundrobin, or leave it unset (range,roundrobin)",
                )
            }
            "group.protocol" if value == "consumer" => (
                "Kafka 4's consumer protocol rebalances incrementally",
                "group.protocol=classic, or leave it unset",
            ),
            _ => return None,
        };
        Some(format!(
            "{self} is not supported: {why}, and the services support only eager rebalancing (on an \
             incremental one they would commit offsets past orders never handled); use {instead}"
        ))
    }

    /// Whether the value must never be shown: passwords, private keys, client secrets.
    pub fn is_secret(&self) -> bool {
        let key = self.key.to_ascii_lowercase();
        ["password", "secret", "passphrase", "key.pem", "sasl.oauthbearer.config", "sasl.jaas.config"]
            .iter()
            .any(|word| key.contains(word))
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.is_secret() { MASK } else { &self.value };
        write!(f, "{}={value}", self.key)
    }
}

/// The properties of a `--kafka-config` file.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertiesFile {
    pub path: PathBuf,
    pub properties: Vec<Property>,
}

impl PropertiesFile {
    /// Reads `path`: one KEY=VALUE per line; blank lines and lines starting with `#` or `!` are skipped.
    pub fn read(path: &Path) -> Result<PropertiesFile, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut properties = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let at = format!("{} line {}", path.display(), number + 1);
            let property = Property::parse(line).map_err(|why| {
                format!("{at} {why} (the file holds librdkafka properties, KEY=VALUE per line)")
            })?;
            if let Some(why) = property.unsupported() {
                return Err(format!("{at}: {why}"));
            }
            properties.push(property);
        }
        Ok(PropertiesFile { path: path.to_path_buf(), properties })
    }
}

/// Parses `-X` values with errors that never echo them (clap's own would).
#[derive(Clone)]
struct PropertyParser;

impl TypedValueParser for PropertyParser {
    type Value = Property;

    fn parse_ref(&self, _: &clap::Command, _: Option<&clap::Arg>, value: &OsStr) -> Result<Property, Error> {
        let text = value.to_str().ok_or_else(|| usage_error("a -X value is not UTF-8".to_string()))?;
        let property = Property::parse(text).map_err(|why| {
            usage_error(format!(
                "a -X value {why} (-X takes a librdkafka property as KEY=VALUE, e.g. -X security.protocol=SSL)"
            ))
        })?;
        match property.unsupported() {
            Some(why) => Err(usage_error(format!("-X {why}"))),
            None => Ok(property),
        }
    }
}

#[derive(Clone)]
struct PropertiesFileParser;

impl TypedValueParser for PropertiesFileParser {
    type Value = PropertiesFile;

    fn parse_ref(
        &self,
        _: &clap::Command,
        _: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<PropertiesFile, Error> {
        PropertiesFile::read(Path::new(value)).map_err(|why| usage_error(format!("--kafka-config: {why}")))
    }
}

fn usage_error(message: String) -> Error {
    Error::raw(ErrorKind::InvalidValue, format!("{message}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_properties() {
        let property = Property::parse("security.protocol = SSL").unwrap();
        assert_eq!(property, Property { key: "security.protocol".into(), value: "SSL".into() });
        assert_eq!(Property::parse("no equals sign").unwrap_err(), "is not KEY=VALUE");
        assert!(Property::parse("=x").unwrap_err().contains("no key"));
        let unknown = Property::parse("secuirty.protocol=SSL").unwrap_err();
        assert_eq!(
            unknown,
            r#"is refused by librdkafka: No such configuration property: "secuirty.protocol""#
        );
        let bad_value = Property::parse("security.protocol=carrier-pigeon").unwrap_err();
        assert!(bad_value.contains("Invalid value"), "{bad_value}");
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let password = Property::parse("sasl.password=hunter2").unwrap();
        assert_eq!(password.to_string(), "sasl.password=******");
        assert_eq!(Property::parse("sasl.mechanism=PLAIN").unwrap().to_string(), "sasl.mechanism=PLAIN");
        for key in
            ["ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret", "ssl.key.pem"]
        {
            assert!(Property { key: key.into(), value: "x".into() }.is_secret(), "{key}");
        }
    }

    #[test]
    fn reads_a_properties_file() {
        let path = std::env::temp_dir().join(format!("client-properties-{}.properties", std::process::id()));
        std::fs::write(&path, "# a comment\n\nsecurity.protocol=SASL_SSL\nsasl.password=hunter2\n").unwrap();
        let file = PropertiesFile::read(&path).unwrap();
        let client = ClientProperties {
            properties: vec![Property::parse("security.protocol=SSL").unwrap()],
            kafka_config: Some(file),
        };
        let config = client.client_config("127.0.0.1:9092");
        assert_eq!(config.get("security.protocol"), Some("SSL"), "-X comes after the file");
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        let shown = client.to_string();
        assert!(
            shown.starts_with("security.protocol=SASL_SSL sasl.password=****** security.protocol=SSL (from ")
        );
        std::fs::write(&path, "security.protocol=SSL\nsasl.password hunter2\n").unwrap();
        let error = PropertiesFile::read(&path).unwrap_err();
        assert!(error.contains("line 2 is not KEY=VALUE (the file holds"), "{error}");
        std::fs::write(&path, "security.protocol=SSL\ngroup.protocol=consumer\n").unwrap();
        let error = PropertiesFile::read(&path).unwrap_err();
        assert!(error.contains("line 2: group.protocol=consumer is not supported"), "{error}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn incremental_rebalancing_is_refused_with_what_to_use_instead() {
        let refused = |text: &str| Property::parse(text).unwrap().unsupported();
        for strategy in ["cooperative-sticky", "range, cooperative-sticky", "Cooperative-Sticky,roundrobin"] {
            let why = refused(&format!("partition.assignment.strategy={strategy}")).expect(strategy);
            assert!(why.contains("eager rebalancing") && why.contains("use range or roundrobin"), "{why}");
        }
        let why = refused("group.protocol=consumer").expect("Kafka 4's protocol");
        assert!(why.starts_with("group.protocol=consumer is not supported"), "{why}");
        assert!(why.ends_with("use group.protocol=classic, or leave it unset"), "{why}");
        for supported in ["partition.assignment.strategy=range,roundrobin", "group.protocol=classic"] {
            assert_eq!(refused(supported), None, "{supported}");
        }
    }
}
