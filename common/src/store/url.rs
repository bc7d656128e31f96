//! Where the store is (`--store`): a SQLite file or a PostgreSQL server, and
//! its URL as logged, a password masked.

use super::error::StoreError;

/// Where the store is: `--store`.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreUrl {
    Sqlite(String),
    Postgres(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://").filter(|path| !path.is_empty()) {
            return Ok(StoreUrl::Sqlite(path.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        Err(StoreError::BadUrl(url.to_string()))
    }

    /// The URL as logged: a password in it is masked.
    pub fn shown(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite://{path}"),
            StoreUrl::Postgres(url) => {
                // postgres://USER:PASSWORD@HOST...: the password is between the first ':' after
                // the scheme and the last '@'.
                let credentials = url.find("://").map(|scheme| scheme + 3).zip(url.rfind('@'));
                match credentials.and_then(|(start, at)| Some((start + url.get(start..at)?.find(':')?, at))) {
                    Some((colon, at)) => format!("{}:******{}", &url[..colon], &url[at..]),
                    None => url.clone(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_passwords_masked() {
        assert_eq!(StoreUrl::parse("sqlite://a/b.db").unwrap(), StoreUrl::Sqlite("a/b.db".into()));
        assert_eq!(StoreUrl::parse("sqlite:///tmp/b.db").unwrap(), StoreUrl::Sqlite("/tmp/b.db".into()));
        let pg = StoreUrl::parse("postgres://pay:secret@db:5432/payments").unwrap();
        assert_eq!(pg.shown(), "postgres://pay:******@db:5432/payments");
        assert_eq!(StoreUrl::parse("postgres://pay@db/p").unwrap().shown(), "postgres://pay@db/p");
        for bad in ["sqlite://", "payments.db", "mysql://x"] {
            assert!(StoreUrl::parse(bad).unwrap_err().to_string().contains("not a store URL"), "{bad}");
        }
    }
}
