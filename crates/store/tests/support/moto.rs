//! A local DynamoDB-compatible server for tests and benches: moto's server (PyPI
//! `moto[server]`), started on a free loopback port, waited for, and killed when dropped.
//! Without moto it says so and gives `None`, unless `VERBATIM_REQUIRE_DYNAMODB=1`, when the
//! absence fails the test. Compiled into each test target that needs it (`#[path]`), not
//! copied.
//!
//! The server reads no AWS settings of the machine (the environment that could point it
//! elsewhere is cleared); clients sign with dummy credentials given in code
//! (`DynamoOptions::with_static_credentials`), never the machine's.

#![allow(dead_code, clippy::print_stderr)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
}

/// moto's server (`python3 -m moto.server`), one request at a time. Its own command serves
/// requests on threads, and its transactions are not isolated from each other: two
/// `TransactWriteItems` conditioned on the same version can both pass, and a cancelled one
/// puts back a copy of the whole table taken before it, undoing what others wrote meanwhile
/// (moto 5.2; the race tests here found both). DynamoDB applies each request atomically, so
/// the tests serve requests one at a time, which is what that needs.
/// `VERBATIM_MOTO_THREADED=1` serves them on threads as moto's command does.
const SERVE: &str = "
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
run_simple('127.0.0.1', int(sys.argv[1]), app, threaded=sys.argv[2] == '1')
";

/// The variable that makes a missing moto a failure.
pub const REQUIRE: &str = "VERBATIM_REQUIRE_DYNAMODB";

impl Moto {
    /// Starts the server, or says that `test` skipped and gives `None` when moto is not
    /// installed (a failure when [`REQUIRE`] is set).
    pub fn start(test: &str) -> Option<Moto> {
        if !available() {
            assert!(
                std::env::var(REQUIRE).is_err(),
                "{test}: {REQUIRE} is set but python3 has no moto server (pip install 'moto[server]')"
            );
            eprintln!("skipping {test}: python3 has no moto server (pip install 'moto[server]')");
            return None;
        }
        let port = free_port();
        let mut command = python();
        let threaded = if std::env::var_os("VERBATIM_MOTO_THREADED").is_some() { "1" } else { "" };
        command
            .args(["-c", SERVE, &port.to_string(), threaded])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("python3 starts");
        let moto = Moto { child, port };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{test}: moto did not listen on {address} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    /// The server's endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A store URL of a new table (a random name) on this server.
    pub fn new_table_url(&self, prefix: &str) -> String {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        self.url(&format!("{prefix}_{suffix}"))
    }

    /// The store URL of `table` on this server.
    pub fn url(&self, table: &str) -> String {
        format!("dynamodb://{table}?region=us-east-1&endpoint={}", self.endpoint())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `python3 -c "import moto.server"` succeeds (with the server's extras).
pub fn available() -> bool {
    python()
        .args(["-c", "import moto.moto_server.werkzeug_app, flask, flask_cors"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `python3` without the AWS or proxy settings of the environment.
fn python() -> Command {
    let mut command = Command::new("python3");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_") || name.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(&name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    command
}

/// A loopback port no one listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}
