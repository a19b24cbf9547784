//! `verbatim emulator`: the local Bedrock Runtime as a server, for SDKs and apps pointed at it
//! by endpoint URL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use verbatim_emulator::{
    DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY, Emulator, EmulatorConfig,
    Pace, Script,
};

/// Arguments of `verbatim emulator`. Its `Debug` hides the secret and the key.
#[derive(clap::Args)]
pub(crate) struct EmulatorArgs {
    /// The port to listen on (0: one the system picks).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// The address to listen on. Loopback unless you mean to share it.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The access key id SigV4 requests must be signed with.
    #[arg(long, default_value = DEFAULT_ACCESS_KEY_ID)]
    access_key_id: String,
    /// The secret access key SigV4 requests must be signed with.
    #[arg(long, env = "VERBATIM_EMULATOR_SECRET_ACCESS_KEY", default_value = DEFAULT_SECRET_ACCESS_KEY, hide_env_values = true)]
    secret_access_key: String,
    /// The Bedrock API key accepted as `Authorization: Bearer`.
    #[arg(long, env = "VERBATIM_EMULATOR_API_KEY", default_value = DEFAULT_API_KEY, hide_env_values = true)]
    api_key: String,
    /// A script (JSON): behaviour per model id, faults to inject, the model's pace. Fault
    /// rates must lie between 0 and 1 and add up to 1 at most.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers (also while idle between
    /// requests); past it the connection is closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a client may take to send a request's body; past it the answer is HTTP 408.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Milliseconds the model takes to a streamed answer's first event (a whole answer waits
    /// as long as its stream would take). Overrides the script's `pace`.
    #[arg(long)]
    first_event_millis: Option<u64>,
    /// Milliseconds between a streamed answer's events. Overrides the script's `pace`.
    #[arg(long)]
    event_millis: Option<u64>,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("api_key", &"[redacted]")
            .field("script", &self.script)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("first_event_millis", &self.first_event_millis)
            .field("event_millis", &self.event_millis)
            .finish()
    }
}

pub(crate) fn emulator(args: &EmulatorArgs) -> ExitCode {
    let mut script = match &args.script {
        Some(path) => match Script::load(path) {
            Ok(script) => script,
            Err(error) => {
                eprintln!("verbatim emulator: {error}");
                return ExitCode::from(2);
            }
        },
        None => Script::default(),
    };
    script.pace.first_event_millis =
        args.first_event_millis.unwrap_or(script.pace.first_event_millis);
    script.pace.event_millis = args.event_millis.unwrap_or(script.pace.event_millis);
    let pace = script.pace;
    let config = EmulatorConfig {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        api_key: Some(args.api_key.clone()),
        script,
        header_read_timeout: Duration::from_secs(args.header_timeout),
        body_read_timeout: Duration::from_secs(args.body_timeout),
        ..EmulatorConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("verbatim emulator: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let emulator = match Emulator::bind(SocketAddr::new(args.host, args.port), config).await {
            Ok(emulator) => emulator,
            Err(error) => {
                eprintln!(
                    "verbatim emulator: cannot listen on {}:{}: {error}",
                    args.host, args.port
                );
                return ExitCode::FAILURE;
            }
        };
        say!("verbatim emulator listening on {}", emulator.url());
        say!("  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={}", emulator.url());
        say!("  export AWS_ACCESS_KEY_ID={}", args.access_key_id);
        // The defaults are public test values; a secret of the user's own is never printed.
        if args.secret_access_key == DEFAULT_SECRET_ACCESS_KEY {
            say!("  export AWS_SECRET_ACCESS_KEY={DEFAULT_SECRET_ACCESS_KEY}");
        } else {
            say!("  export AWS_SECRET_ACCESS_KEY=<the secret access key you gave>");
        }
        if args.api_key == DEFAULT_API_KEY {
            say!("  or: export AWS_BEARER_TOKEN_BEDROCK={DEFAULT_API_KEY}");
        }
        if pace != Pace::default() {
            say!(
                "  the model answers at its pace: first event after {} ms, then one every {} ms",
                pace.first_event_millis,
                pace.event_millis
            );
        }
        std::future::pending::<()>().await;
        drop(emulator);
        ExitCode::SUCCESS
    })
}
