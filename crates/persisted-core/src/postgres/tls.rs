//! How a connection is made: plain, or TLS when the URL asks for it with
//! `sslmode=require` (feature `postgres-tls`: rustls with the `ring`
//! provider, through `tokio-postgres-rustls`). The server's certificate is
//! verified against the Mozilla roots (`webpki-roots`) and, when given, the
//! PEM file of `sslrootcert=` in the URL or of `PGSSLROOTCERT`, as libpq
//! reads them; the host name (or IP address) must match it.

use std::path::PathBuf;

use postgres::config::SslMode;

/// The transport connections use.
pub(super) enum Transport {
    Plain,
    #[cfg(feature = "postgres-tls")]
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// `url` without its `sslrootcert` parameter (which the client does not
/// read), and that parameter's path.
pub(super) fn split_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(PathBuf::from(percent_decode(path)));
                false
            }
            None => true,
        })
        .collect();
    let url = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (url, root)
}

/// `%XX` escapes of a URL parameter decoded (a path with spaces).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Transport {
    /// The transport `config` asks for: TLS for `sslmode=require`, plain
    /// otherwise (`prefer`, the default, connects without TLS: a
    /// certificate that does not verify would fail it, where libpq falls
    /// back). An error says what is missing.
    pub(super) fn for_config(
        config: &postgres::Config,
        root: Option<PathBuf>,
    ) -> Result<Transport, String> {
        if config.get_ssl_mode() != SslMode::Require {
            return Ok(Transport::Plain);
        }
        #[cfg(feature = "postgres-tls")]
        {
            tls(root).map(Transport::Tls)
        }
        #[cfg(not(feature = "postgres-tls"))]
        {
            let _ = root;
            Err(
                "the URL asks for TLS (sslmode=require): build with the feature `postgres-tls`"
                    .into(),
            )
        }
    }

    pub(super) fn connect(
        &self,
        config: &postgres::Config,
    ) -> Result<postgres::Client, postgres::Error> {
        match self {
            Transport::Plain => config.connect(postgres::NoTls),
            #[cfg(feature = "postgres-tls")]
            Transport::Tls(tls) => config.connect(tls.clone()),
        }
    }
}

#[cfg(feature = "postgres-tls")]
fn tls(root: Option<PathBuf>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let root = root.or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
    if let Some(path) = root {
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| format!("cannot read the root certificate `{}`: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                format!("the root certificate `{}` is not PEM: {e}", path.display())
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "the root certificate `{}` is not usable: {e}",
                    path.display()
                )
            })?;
        }
    }
    // ring, not aws-lc-rs (rustls's default, which brings a large C build
    // to every CI run); rustls 0.23.48 marks it deprecated for lacking
    // post-quantum key exchange, which PostgreSQL servers do not offer yet.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A client connected to `url` the way stores connect (`sslrootcert`,
/// TLS for `sslmode=require`): for the `persisted` CLI (`__tool`).
pub fn connect(url: &str, timeout: std::time::Duration) -> Result<postgres::Client, String> {
    let (url, root) = split_root_cert(url);
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    config
        .connect_timeout(timeout)
        .application_name("persisted-cli");
    let transport = Transport::for_config(&config, root)?;
    transport
        .connect(&config)
        .map_err(|e| super::connection::describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_parameter_is_taken_out_of_the_url() {
        let (url, root) = split_root_cert(
            "postgres://u@h/db?sslmode=require&sslrootcert=/etc/my%20ca.pem&connect_timeout=3",
        );
        assert_eq!(url, "postgres://u@h/db?sslmode=require&connect_timeout=3");
        assert_eq!(root, Some(PathBuf::from("/etc/my ca.pem")));
        let (url, root) = split_root_cert("postgres://u@h/db?sslrootcert=ca.pem");
        assert_eq!(
            (url.as_str(), root),
            ("postgres://u@h/db", Some("ca.pem".into()))
        );
        let (url, root) = split_root_cert("postgres://u@h/db");
        assert_eq!((url.as_str(), root), ("postgres://u@h/db", None));
    }
}
