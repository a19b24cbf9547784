//! `verbatim serve`: the recording, validating Bedrock Runtime proxy (`verbatim-proxy`) as a
//! server any Bedrock client can point at.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::ValueEnum;
use verbatim_proxy::{ClientAuth, IssuedCredentials, Limits, Mode, Proxy, ProxyConfig, Tls};
use verbatim_transport::{HttpConfig, HttpTransport, MessagesHost, Secret};

use super::{StoreArgs, secret_arg};

/// Serve a Bedrock Runtime endpoint that forwards every call upstream and records it.
///
/// Point any SDK at it: AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:8788 (boto3 and every
/// AWS SDK), ANTHROPIC_BEDROCK_BASE_URL (the Anthropic SDK's AnthropicBedrock, Claude Code),
/// or a base URL of http://127.0.0.1:8788/anthropic (AnthropicBedrockMantle). Clients
/// authenticate with the proxy's own API keys or SigV4 credentials (--api-key,
/// --access-key-id/--secret-access-key); the upstream call is signed with the standard AWS
/// chain's credentials (or AWS_BEARER_TOKEN_BEDROCK), which never reach a client.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    #[command(flatten)]
    store: StoreArgs,
    /// observe: forward and note rules broken; guard: refuse a request that breaks a rule
    /// with Bedrock's own answer, before any model call; repair: fix it and note the fixes.
    #[arg(long, value_enum, default_value_t = ModeArg::Observe)]
    mode: ModeArg,
    /// `bedrock` (region and credentials from the standard AWS chain) or the URL of anything
    /// speaking Bedrock Runtime's wire (the emulator).
    #[arg(long, default_value = "bedrock")]
    upstream: String,
    /// Which host serves Messages API calls upstream.
    #[arg(long, value_enum, default_value_t = HostArg::Runtime)]
    messages_host: HostArg,
    /// An API key clients may send (bearer or x-api-key); repeat for more.
    #[arg(long = "api-key", env = "VERBATIM_PROXY_API_KEY", hide_env_values = true, value_parser = secret_arg)]
    api_keys: Vec<Secret>,
    /// The access key id of the SigV4 credentials clients may sign with.
    #[arg(long, env = "VERBATIM_PROXY_ACCESS_KEY_ID", requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Its secret.
    #[arg(long, env = "VERBATIM_PROXY_SECRET_ACCESS_KEY", hide_env_values = true, requires = "access_key_id", value_parser = secret_arg)]
    secret_access_key: Option<Secret>,
    /// Serve HTTPS with this certificate chain (PEM; botocore sends a bearer token only over
    /// HTTPS).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("store", &self.store)
            .field("mode", &self.mode)
            .field("upstream", &self.upstream)
            .field("api_keys", &self.api_keys)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Observe,
    Guard,
    Repair,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HostArg {
    Runtime,
    Mantle,
}

pub(crate) fn serve(args: &ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verbatim serve: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let message = run(args).await;
        eprintln!("verbatim serve: {message}");
        ExitCode::FAILURE
    })
}

/// Serves until stopped; what stopped it.
async fn run(args: &ServeArgs) -> String {
    match start(args).await {
        Ok(proxy) => {
            proxy.wait().await;
            "the server stopped".to_owned()
        }
        Err(message) => message,
    }
}

async fn start(args: &ServeArgs) -> Result<Proxy, String> {
    let mut config = HttpConfig::from_env().await.map_err(|e| format!("upstream: {e}"))?;
    if args.upstream != "bedrock" {
        config.endpoint_url = Some(args.upstream.clone());
        config.mantle_endpoint_url = Some(args.upstream.clone());
    }
    config.messages_host = match args.messages_host {
        HostArg::Runtime => MessagesHost::Runtime,
        HostArg::Mantle => MessagesHost::Mantle,
    };
    let upstream = HttpTransport::new(config).map_err(|e| format!("upstream: {e}"))?;
    let store = args.store.open().await?;
    let mut auth = ClientAuth { api_keys: args.api_keys.clone(), credentials: Vec::new() };
    if let (Some(access_key_id), Some(secret)) = (&args.access_key_id, &args.secret_access_key) {
        auth.credentials.push(IssuedCredentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
        });
    }
    let mode = match args.mode {
        ModeArg::Observe => Mode::Observe,
        ModeArg::Guard => Mode::Guard,
        ModeArg::Repair => Mode::Repair,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &std::path::PathBuf| {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            };
            Some(Tls { cert_pem: read(cert)?, key_pem: read(key)? })
        }
        _ => None,
    };
    let config = ProxyConfig { upstream, store, auth, mode, limits: Limits::default(), tls };
    let proxy = Proxy::bind(args.listen, config).await.map_err(|e| e.to_string())?;
    say!(
        "verbatim serve listening on {} (mode {}, sessions {})",
        proxy.url(),
        mode.as_str(),
        args.store.describe()
    );
    say!("  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={}", proxy.url());
    say!("  export ANTHROPIC_BEDROCK_BASE_URL={}", proxy.url());
    Ok(proxy)
}
