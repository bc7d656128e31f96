//! A secured broker for the tests: TLS with a self-signed certificate made on the
//! spot, SASL/SCRAM with one user, or both, and the librdkafka properties a
//! client needs to get in.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};
use std::path::Path;

/// How a broker started with [`crate::Broker::start_secured`] lets clients in.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// TLS only, with a self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// SASL/SCRAM-SHA-512 required, and only this user (name, password) gets in.
    pub user: Option<(String, String)>,
}

impl Security {
    /// The broker's command-line flags; its certificate and key are in `dir`.
    pub(crate) fn broker_flags(&self, dir: &Path) -> Vec<String> {
        let mut flags = Vec::new();
        if self.tls {
            let (cert, key) = (dir.join(CERTIFICATE), dir.join(KEY));
            flags.extend([
                "--cert".into(),
                cert.display().to_string(),
                "--key".into(),
                key.display().to_string(),
            ]);
        }
        if self.user.is_some() {
            flags.push("--authentication".into());
        }
        flags
    }

    /// The librdkafka properties (KEY=VALUE) a client needs to get in.
    pub(crate) fn client_properties(&self, dir: &Path) -> Vec<String> {
        let mut properties = Vec::new();
        let protocol = match (self.tls, self.user.is_some()) {
            (false, false) => return properties,
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        properties.push(format!("security.protocol={protocol}"));
        if self.tls {
            properties.push(format!("ssl.ca.location={}", dir.join(CERTIFICATE).display()));
        }
        if let Some((name, password)) = &self.user {
            properties.push("sasl.mechanism=SCRAM-SHA-512".into());
            properties.push(format!("sasl.username={name}"));
            properties.push(format!("sasl.password={password}"));
        }
        properties
    }
}

const CERTIFICATE: &str = "broker.cert.pem";
const KEY: &str = "broker.key.pem";

/// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`; the
/// certificate is also the one a client must trust (`ssl.ca.location`).
pub(crate) fn write_self_signed_certificate(dir: &Path) {
    let (certificate, key) = self_signed_certificate().expect("OpenSSL makes a self-signed certificate");
    std::fs::write(dir.join(CERTIFICATE), certificate).expect("cannot write the broker's certificate");
    std::fs::write(dir.join(KEY), key).expect("cannot write the broker's key");
}

/// (certificate, PKCS#8 key), both PEM: P-256, valid for a day, for IP 127.0.0.1.
fn self_signed_certificate() -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
    let curve = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&curve)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "127.0.0.1")?;
    let name = name.build();
    let mut certificate = X509::builder()?;
    certificate.set_version(2)?;
    let (serial, from, until) =
        (BigNum::from_u32(1)?.to_asn1_integer()?, Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(1)?);
    certificate.set_serial_number(&serial)?;
    certificate.set_subject_name(&name)?;
    certificate.set_issuer_name(&name)?;
    certificate.set_pubkey(&key)?;
    certificate.set_not_before(&from)?;
    certificate.set_not_after(&until)?;
    // librdkafka checks that the certificate names the address it dialled.
    let address =
        SubjectAlternativeName::new().ip("127.0.0.1").build(&certificate.x509v3_context(None, None))?;
    certificate.append_extension(address)?;
    certificate.sign(&key, MessageDigest::sha256())?;
    Ok((certificate.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}
