//! The PostgreSQL store over TLS, against throwaway clusters this file starts (see
//! `pg_cluster.rs`) with a CA and a server certificate made for the run: what each `sslmode`
//! connects to and refuses, and what the refusals say.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};

use super::pg_cluster::{Cluster, IAM_USER, SCRAM_PASSWORD, SCRAM_USER, ServerIdentity};
use crate::{ListQuery, PostgresOptions, PostgresStore, SessionStore, SslMode, StoreError};

/// A CA made for one test, its certificate in a PEM file.
struct TestCa {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str, alg: &'static SignatureAlgorithm) -> TestCa {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).unwrap().pem();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pem).unwrap();
        TestCa { dir, issuer: Issuer::new(params, key), pem }
    }

    /// The PEM file of the CA's certificate.
    fn file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    fn server(&self, names: &[&str]) -> ServerIdentity {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerIdentity { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

fn ca() -> TestCa {
    TestCa::new("verbatim test CA", &rcgen::PKCS_ECDSA_P256_SHA256)
}

/// A TLS cluster whose certificate names only `localhost` (not 127.0.0.1), signed by `ca`.
fn tls_cluster(test: &str, ca: &TestCa) -> Option<Cluster> {
    Cluster::start(test, Some(&ca.server(&["localhost"])))
}

async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
    PostgresStore::connect_with(url, PostgresOptions { pool_size: 2, ..options }).await
}

/// Connects, lists sessions (the schema was made), and says whether the connection is
/// encrypted.
async fn encrypted(url: &str, options: PostgresOptions) -> bool {
    let store = connect(url, options).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    store.list(&ListQuery::default()).await.unwrap();
    store.connection_encrypted().await.unwrap()
}

async fn refusal(url: &str, options: PostgresOptions) -> String {
    match connect(url, options).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e.to_string(),
    }
}

fn root(ca: &TestCa) -> String {
    format!("sslrootcert={}", ca.file().display())
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let (ca, other) = (ca(), TestCa::new("another CA", &rcgen::PKCS_ECDSA_P256_SHA256));
    let Some(cluster) = tls_cluster("require_encrypts_without_checking_the_certificate", &ca)
    else {
        return;
    };
    // No root file: nothing is checked (127.0.0.1 is not in the certificate).
    let url = cluster.url("postgres", "127.0.0.1", "sslmode=require");
    assert!(encrypted(&url, PostgresOptions::default()).await);
    // The default, prefer, encrypts too where the server accepts TLS.
    let url = cluster.url("postgres", "127.0.0.1", "connect_timeout=10");
    assert!(encrypted(&url, PostgresOptions::default()).await);
    // disable does not.
    let url = cluster.url("postgres", "127.0.0.1", "sslmode=disable");
    assert!(!encrypted(&url, PostgresOptions::default()).await);
    // With a root file, require checks the chain (as verify-ca): another CA is refused.
    let url = cluster.url("postgres", "127.0.0.1", &format!("sslmode=require&{}", root(&other)));
    let message = refusal(&url, PostgresOptions::default()).await;
    assert!(message.contains("not signed by a CA in sslrootcert"), "{message}");
    let url = cluster.url("postgres", "127.0.0.1", &format!("sslmode=require&{}", root(&ca)));
    assert!(encrypted(&url, PostgresOptions::default()).await);
}

#[tokio::test]
async fn verify_full_with_the_ca_connects_to_the_name_in_the_certificate() {
    let ca = ca();
    let Some(cluster) =
        tls_cluster("verify_full_with_the_ca_connects_to_the_name_in_the_certificate", &ca)
    else {
        return;
    };
    let url = cluster.url("postgres", "localhost", &format!("sslmode=verify-full&{}", root(&ca)));
    assert!(encrypted(&url, PostgresOptions::default()).await);
    // The same settings through the options instead of the URL.
    let url = format!("postgres://postgres@localhost:{}/postgres", cluster.port);
    let options =
        PostgresOptions::default().with_ssl_mode(SslMode::VerifyFull).with_ssl_root_cert(ca.file());
    assert!(encrypted(&url, options).await);
    // verify-ca checks the chain, not the name: 127.0.0.1 is not in the certificate.
    let url = cluster.url("postgres", "127.0.0.1", &format!("sslmode=verify-ca&{}", root(&ca)));
    assert!(encrypted(&url, PostgresOptions::default()).await);
    // The options win over the URL: verify-full there, verify-ca here.
    let options = PostgresOptions::default().with_ssl_mode(SslMode::VerifyCa);
    let url = cluster.url("postgres", "127.0.0.1", &format!("sslmode=verify-full&{}", root(&ca)));
    assert!(encrypted(&url, options).await);
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_hold() {
    let ca = ca();
    let Some(cluster) =
        tls_cluster("verify_full_refuses_a_host_name_the_certificate_does_not_hold", &ca)
    else {
        return;
    };
    let url = cluster.url(
        "postgres:s3cr3t-pw",
        "127.0.0.1",
        &format!("sslmode=verify-full&{}", root(&ca)),
    );
    let message = refusal(&url, PostgresOptions::default()).await;
    assert!(
        message.contains("the server's certificate is not valid for the host name `127.0.0.1`"),
        "{message}"
    );
    assert!(
        message.contains(&format!("postgres:PASSWORD@127.0.0.1:{}", cluster.port)),
        "{message}"
    );
    assert!(!message.contains("s3cr3t-pw"), "{message}");
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_from_another_ca() {
    let (ca, other) = (ca(), TestCa::new("another CA", &rcgen::PKCS_ECDSA_P256_SHA256));
    let Some(cluster) = tls_cluster("verify_full_refuses_a_certificate_from_another_ca", &ca)
    else {
        return;
    };
    for mode in ["verify-full", "verify-ca"] {
        let url = cluster.url("postgres", "localhost", &format!("sslmode={mode}&{}", root(&other)));
        let message = refusal(&url, PostgresOptions::default()).await;
        let expected = format!(
            "the server's certificate is not signed by a CA in sslrootcert {} (sslmode={mode})",
            other.file().display()
        );
        assert!(message.contains(&expected), "{message}");
        assert!(message.contains(&format!("postgres@localhost:{}", cluster.port)), "{message}");
    }
    // The platform's CAs do not hold the test CA either (sslrootcert=system: verify-full).
    for query in ["sslmode=verify-full", "sslrootcert=system"] {
        let url = cluster.url("postgres", "localhost", query);
        let message = refusal(&url, PostgresOptions::default()).await;
        assert!(
            message.contains("not signed by a CA in the platform's CA store (sslmode=verify-full)")
                || message.contains("no CA certificates found in the platform's store"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_server_without_tls_is_refused_when_tls_is_required_and_used_plain_by_prefer() {
    let test = "a_server_without_tls_is_refused_when_tls_is_required_and_used_plain_by_prefer";
    let Some(cluster) = Cluster::start(test, None) else {
        return;
    };
    for mode in ["require", "verify-full"] {
        let url = cluster.url("postgres:pw", "localhost", &format!("sslmode={mode}"));
        let message = refusal(&url, PostgresOptions::default()).await;
        let expected = format!(
            "cannot connect to postgres://postgres:PASSWORD@localhost:{}/postgres?sslmode={mode}: \
             the server does not accept TLS; sslmode={mode} needs it",
            cluster.port
        );
        assert!(message.contains(&expected), "{message}");
    }
    let url = cluster.url("postgres", "127.0.0.1", "sslmode=prefer");
    assert!(!encrypted(&url, PostgresOptions::default()).await);
}

/// SCRAM-SHA-256-PLUS: the password exchange is bound to the server's certificate, whose hash
/// (`tls-server-end-point`) the server computes too; with `channel_binding=require` a wrong
/// hash is a refused login.
#[tokio::test]
async fn a_scram_login_is_bound_to_the_certificate() {
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384] {
        let ca = TestCa::new("verbatim test CA", alg);
        let Some(cluster) = tls_cluster("a_scram_login_is_bound_to_the_certificate", &ca) else {
            return;
        };
        let admin = cluster.url("postgres", "localhost", "sslmode=require");
        let (client, connection) =
            tokio_postgres::connect(&admin.replace("?sslmode=require", ""), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE ROLE {SCRAM_USER} LOGIN SUPERUSER PASSWORD '{SCRAM_PASSWORD}'"
            ))
            .await
            .unwrap();
        let url = cluster.url(
            &format!("{SCRAM_USER}:{SCRAM_PASSWORD}"),
            "localhost",
            &format!("sslmode=verify-full&{}&channel_binding=require", root(&ca)),
        );
        assert!(encrypted(&url, PostgresOptions::default()).await, "{}", ca.pem);
        // The wrong password is refused, so the login above did check it.
        let url = cluster.url(
            &format!("{SCRAM_USER}:wrong"),
            "localhost",
            "sslmode=require&channel_binding=require",
        );
        let message = refusal(&url, PostgresOptions::default()).await;
        assert!(message.contains("password authentication failed"), "{message}");
    }
}

#[tokio::test]
async fn tls_settings_that_cannot_work_are_refused_before_connecting() {
    // Nothing listens at port 1: these are refused before any connection is tried.
    let unknown =
        refusal("postgres://app@127.0.0.1:1/db?sslmode=allow", PostgresOptions::default()).await;
    assert!(unknown.contains("sslmode `allow` is not one this store knows"), "{unknown}");
    let missing = tempfile::tempdir().unwrap().path().join("missing.pem");
    let url = format!(
        "postgres://app@127.0.0.1:1/db?sslmode=verify-full&sslrootcert={}",
        missing.display()
    );
    let message = refusal(&url, PostgresOptions::default()).await;
    assert!(
        message.contains(&format!("sslrootcert {}: cannot be read", missing.display())),
        "{message}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let options =
        PostgresOptions::default().with_ssl_mode(SslMode::VerifyCa).with_ssl_root_cert(&empty);
    let message = refusal("postgres://app@127.0.0.1:1/db", options).await;
    assert!(message.contains("holds no usable CA certificate"), "{message}");
    let message = refusal(
        "postgres://app@127.0.0.1:1/db?sslmode=require&sslrootcert=system",
        PostgresOptions::default(),
    )
    .await;
    assert!(message.contains("sslrootcert=system needs sslmode=verify-full"), "{message}");
}

/// Credentials that count how often they are asked for, or fail.
#[derive(Debug, Clone)]
struct Counting {
    asked: Arc<AtomicUsize>,
    fail: bool,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "no profile here",
            )));
        }
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
    }
}

/// The server checks the token as the role's password: the store's token is made the
/// password of a role, and the store logs in with it; asked again within the refresh age, the
/// store keeps its token.
#[tokio::test]
async fn an_iam_token_is_the_password_of_new_connections() {
    let ca = ca();
    let Some(cluster) = tls_cluster("an_iam_token_is_the_password_of_new_connections", &ca) else {
        return;
    };
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let (client, connection) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE ROLE {IAM_USER} LOGIN SUPERUSER")).await.unwrap();

    let asked = Arc::new(AtomicUsize::new(0));
    let url = cluster.url(
        IAM_USER,
        "localhost",
        &format!("sslmode=verify-full&{}&aws_iam=true&aws_region=eu-west-1", root(&ca)),
    );
    let options = PostgresOptions {
        aws_credentials: Some(SharedCredentialsProvider::new(Counting {
            asked: asked.clone(),
            fail: false,
        })),
        pool_size: 2,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::pool(&url, &options).unwrap();
    // The role has no password yet: the token is refused.
    let refused = store.connection_encrypted().await.unwrap_err().to_string();
    assert!(refused.contains("password authentication failed for user \"iam_user\""), "{refused}");
    let token = store.iam_token().unwrap();
    assert!(
        token.starts_with(&format!("localhost:{}/?Action=connect&DBUser=iam_user&", cluster.port)),
        "{token}"
    );
    assert!(token.contains("%2Feu-west-1%2Frds-db%2Faws4_request"), "{token}");
    assert!(!refused.contains(&*token), "the token is a password: {refused}");
    client.batch_execute(&format!("ALTER ROLE {IAM_USER} PASSWORD '{token}'")).await.unwrap();
    assert!(store.connection_encrypted().await.unwrap());
    assert_eq!(store.iam_token(), Some(token));
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // Credentials that cannot be had: the error says so and names the user and host.
    let options = PostgresOptions::default()
        .with_aws_iam(Counting { asked: Arc::new(AtomicUsize::new(0)), fail: true });
    let message = refusal(&url, options).await;
    assert!(
        message.contains(&format!(
            "no AWS credentials for the RDS IAM token of iam_user@localhost:{}",
            cluster.port
        )),
        "{message}"
    );
}

#[tokio::test]
async fn iam_settings_that_cannot_work_are_refused_before_connecting() {
    let url = "postgres://app@127.0.0.1:1/db?aws_iam=true&aws_region=us-east-1";
    let message = refusal(url, PostgresOptions::default()).await;
    assert!(message.contains("needs AWS credentials"), "{message}");
    let counting = Counting { asked: Arc::new(AtomicUsize::new(0)), fail: false };
    let url = "postgres://app@db.internal:5432/db";
    let message = refusal(url, PostgresOptions::default().with_aws_iam(counting.clone())).await;
    assert!(message.contains("needs a region"), "{message}");
    let message =
        refusal("postgres://app@127.0.0.1:1/db?aws_iam=yes", PostgresOptions::default()).await;
    assert!(message.contains("aws_iam `yes`"), "{message}");
    assert_eq!(counting.asked.load(Ordering::SeqCst), 0);
}

/// A server that accepts TLS but shares no cipher with rustls (only TLS 1.2 CBC suites, which
/// rustls leaves out): `prefer` goes on in plain text, as libpq does; `require` says the
/// handshake failed.
#[tokio::test]
async fn prefer_goes_plain_when_the_tls_handshake_fails() {
    let ca = ca();
    let settings = "ssl_max_protocol_version = 'TLSv1.2'\nssl_ciphers = 'AES128-SHA'\n";
    let Some(cluster) = Cluster::start_with(
        "prefer_goes_plain_when_the_tls_handshake_fails",
        Some(&ca.server(&["localhost"])),
        settings,
    ) else {
        return;
    };
    let url = cluster.url("postgres", "127.0.0.1", "sslmode=prefer");
    assert!(!encrypted(&url, PostgresOptions::default()).await);
    let url = cluster.url("postgres", "127.0.0.1", "sslmode=require");
    let message = refusal(&url, PostgresOptions::default()).await;
    assert!(message.contains("the TLS handshake failed"), "{message}");
}
