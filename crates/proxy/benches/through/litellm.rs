//! LiteLLM's proxy (PyPI `litellm[proxy]`), the peer the proxy is measured against, started as
//! a child process on a free loopback port with its Bedrock pass-through route
//! (`/bedrock/model/{id}/converse-stream` and `/converse`) pointed at the emulator.
//!
//! The model is a deployment of its `config.yaml` whose `aws_bedrock_runtime_endpoint` is the
//! emulator's URL and whose credentials are the emulator's own dummy SigV4 keys, so LiteLLM
//! signs and sends every call to loopback, never to AWS. Its cost map is read from the package
//! (`LITELLM_LOCAL_MODEL_COST_MAP`), telemetry is off, and every proxy variable is cleared
//! with `no_proxy=*`.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use verbatim_emulator::{DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY};

/// The key clients send LiteLLM (its `master_key`).
pub const MASTER_KEY: &str = "sk-verbatim-bench";

/// How to install it, for the note printed when it is missing.
pub const INSTALL: &str = "pip install 'litellm[proxy]>=1.100,<2'";

/// A running LiteLLM proxy; dropping it kills the process.
pub struct LiteLlm {
    child: Child,
    /// Its Bedrock pass-through base URL (`http://127.0.0.1:PORT/bedrock`).
    pub url: String,
    /// Its version (from `litellm --version`), or empty.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    _dir: tempfile::TempDir,
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `litellm` executable: `VERBATIM_LITELLM`, else `litellm` on `PATH`.
fn executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VERBATIM_LITELLM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("litellm")).find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The environment LiteLLM runs in: offline, no telemetry, no proxy, no AWS profile.
fn offline(command: &mut Command) {
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "DATABASE_URL",
    ] {
        command.env_remove(name);
    }
    command
        .env("no_proxy", "*")
        .env("NO_PROXY", "*")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_MODE", "PRODUCTION")
        .env("DISABLE_ADMIN_UI", "True")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION_NAME", "us-east-1");
}

/// Starts LiteLLM in front of `emulator_url`, serving `model`; `Ok(None)` when it is not
/// installed.
pub fn start(emulator_url: &str, model: &str) -> Result<Option<LiteLlm>, String> {
    let Some(exe) = executable() else { return Ok(None) };
    let version = Command::new(&exe)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.rsplit('=').next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = format!(
        "model_list:\n  - model_name: \"{model}\"\n    litellm_params:\n      model: \"bedrock/{model}\"\n      aws_region_name: us-east-1\n      aws_access_key_id: \"{DEFAULT_ACCESS_KEY_ID}\"\n      aws_secret_access_key: \"{DEFAULT_SECRET_ACCESS_KEY}\"\n      aws_bedrock_runtime_endpoint: \"{emulator_url}\"\ngeneral_settings:\n  master_key: \"{MASTER_KEY}\"\nlitellm_settings:\n  telemetry: false\n  turn_off_message_logging: true\n",
    );
    let path = dir.path().join("config.yaml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(config.as_bytes()))
        .map_err(|e| e.to_string())?;
    let port = free_port().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.path().join("litellm.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new(&exe);
    command
        .arg("--config")
        .arg(&path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--telemetry", "False"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().map_err(|e| e.to_string())?);
    offline(&mut command);
    let child = command.spawn().map_err(|e| format!("{}: {e}", exe.display()))?;
    let pid = child.id();
    let mut litellm =
        LiteLlm { child, url: format!("http://127.0.0.1:{port}/bedrock"), version, pid, _dir: dir };
    // Ready once its liveness route answers (importing LiteLLM takes seconds).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = litellm.child.try_wait() {
            let log = std::fs::read_to_string(litellm._dir.path().join("litellm.log"))
                .unwrap_or_default();
            return Err(format!("litellm exited ({status}):\n{log}"));
        }
        if alive(port) {
            return Ok(Some(litellm));
        }
        if Instant::now() > deadline {
            return Err("litellm did not answer within 120 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether `GET /health/liveliness` answers 200.
fn alive(port: u16) -> bool {
    use std::io::Read as _;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health/liveliness HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
