//! `HttpConfig::from_env` against the environment the AWS SDKs read. The environment of a
//! running test cannot be changed safely, so the test runs itself again as a child process
//! with the variables set; the child sends one call to a loopback server and checks the auth
//! it carried.

use std::process::Command;

use super::server::{Action, Server};
use crate::{Api, Call, HttpConfig, HttpTransport, MessagesHost, Transport};

const CASE: &str = "VERBATIM_FROM_ENV_CASE";
const TEST: &str = "tests::env::from_env_reads_region_endpoint_and_credentials_like_the_sdks";

async fn child(case: &str) {
    let server = Server::start(vec![Action::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{}".to_vec(),
    }])
    .await;
    let config = HttpConfig::from_env().await.unwrap();
    assert_eq!(config.region, "eu-west-3");
    assert_eq!(config.endpoint_url.as_deref(), Some("http://127.0.0.1:9"));
    // The parent could not know this server's port; point the call here.
    let config = config.with_endpoint_url(&server.url);
    let transport = HttpTransport::new(config).unwrap();
    transport.send(Call::new(Api::Converse, "m", "{}")).await.unwrap();
    let authorization = server.received()[0].header("authorization").unwrap().to_owned();
    match case {
        "api-key" => assert_eq!(authorization, "Bearer ABSK-from-env"),
        "sigv4" => assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/")
                && authorization.contains("/eu-west-3/bedrock/aws4_request"),
            "{authorization}"
        ),
        other => panic!("unknown case {other}"),
    }
}

#[tokio::test]
async fn from_env_reads_region_endpoint_and_credentials_like_the_sdks() {
    if let Ok(case) = std::env::var(CASE) {
        return child(&case).await;
    }
    for case in ["sigv4", "api-key"] {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", TEST, "--test-threads=1"])
            .env(CASE, case)
            .env("AWS_REGION", "eu-west-3")
            .env("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
            .env("AWS_SECRET_ACCESS_KEY", "secret-from-env")
            .env("AWS_CONFIG_FILE", "/nonexistent/verbatim-test-config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/verbatim-test-credentials")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_BEARER_TOKEN_BEDROCK");
        if case == "api-key" {
            command.env("AWS_BEARER_TOKEN_BEDROCK", "ABSK-from-env");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{case}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

const ENDPOINTS_CASE: &str = "VERBATIM_FROM_ENV_ENDPOINTS_CASE";
const ENDPOINTS_TEST: &str = "tests::env::from_env_reads_the_endpoints_of_both_hosts";

/// In the child: a Messages call on each host and a Converse call, to whatever endpoints the
/// environment names (the parent's servers, which check where each arrived).
async fn endpoints_child() {
    let config = HttpConfig::from_env().await.unwrap();
    let messages = || Call::new(Api::Messages, "anthropic.claude-opus-4-7", "{}");
    let on_runtime = HttpTransport::new(config.clone()).unwrap();
    on_runtime.send(messages()).await.unwrap();
    on_runtime.send(Call::new(Api::Converse, "m", "{}")).await.unwrap();
    let on_mantle = HttpTransport::new(config.with_messages_host(MessagesHost::Mantle)).unwrap();
    on_mantle.send(messages()).await.unwrap();
}

#[tokio::test]
async fn from_env_reads_the_endpoints_of_both_hosts() {
    if std::env::var(ENDPOINTS_CASE).is_ok() {
        return endpoints_child().await;
    }
    let ok = || Action::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{}".to_vec(),
    };
    for case in ["service-specific", "global"] {
        let runtime = Server::start(vec![ok(), ok(), ok()]).await;
        let mantle = Server::start(vec![ok()]).await;
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", ENDPOINTS_TEST, "--test-threads=1"])
            .env(ENDPOINTS_CASE, case)
            .env("AWS_REGION", "eu-west-3")
            .env("AWS_BEARER_TOKEN_BEDROCK", "ABSK-from-env")
            .env("AWS_CONFIG_FILE", "/nonexistent/verbatim-test-config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/verbatim-test-credentials")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            .env_remove("AWS_ENDPOINT_URL_BEDROCK_MANTLE");
        match case {
            "service-specific" => command
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &runtime.url)
                .env("AWS_ENDPOINT_URL_BEDROCK_MANTLE", &mantle.url),
            _ => command.env("AWS_ENDPOINT_URL", &runtime.url),
        };
        // The child talks to this process's servers: wait for it off the runtime's thread.
        let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{case}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let paths = |server: &Server| -> Vec<String> {
            server.received().into_iter().map(|r| r.path).collect()
        };
        let messages = "/anthropic/v1/messages";
        match case {
            "service-specific" => {
                assert_eq!(paths(&runtime), [messages, "/model/m/converse"], "{case}");
                assert_eq!(paths(&mantle), [messages], "{case}");
            }
            _ => {
                assert_eq!(paths(&runtime), [messages, "/model/m/converse", messages], "{case}");
                assert!(paths(&mantle).is_empty(), "{case}");
            }
        }
    }
}
