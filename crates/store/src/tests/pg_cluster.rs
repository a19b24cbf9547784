//! A throwaway PostgreSQL cluster for the TLS tests: `initdb` into a temporary directory, a
//! free loopback port, TLS with a certificate the test made (or none), stopped when dropped
//! (also when the test panics).
//!
//! It needs the server's binaries (`initdb`, `pg_ctl`): from `VERBATIM_PG_BIN`, or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout). Without them the tests say they skipped, unless
//! `VERBATIM_REQUIRE_PG_TLS=1` (as `.ci/run` sets), when they fail. PostgreSQL refuses to run as
//! root: as root, the cluster's directory is given to the `postgres` user and the binaries run
//! through `runuser -u postgres --`.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A certificate and its key, PEM, for the server.
pub(crate) struct ServerIdentity {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

/// A running cluster; stopped and removed when dropped.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The loopback port it listens on (127.0.0.1).
    pub(crate) port: u16,
}

/// The role the TLS tests log in as with a SCRAM password (over TLS only).
pub(crate) const SCRAM_USER: &str = "scram_user";
/// Its password.
pub(crate) const SCRAM_PASSWORD: &str = "scram-pw";
/// The role the IAM test logs in as (a SCRAM password, over TLS only).
pub(crate) const IAM_USER: &str = "iam_user";

impl Cluster {
    /// A cluster on a free loopback port, with TLS when `identity` is given, or `None` (having
    /// said so) when the binaries are not here and not required.
    pub(crate) fn start(test: &str, identity: Option<&ServerIdentity>) -> Option<Cluster> {
        Cluster::start_with(test, identity, "")
    }

    /// [`Cluster::start`] with `settings` (`postgresql.conf` lines) added.
    pub(crate) fn start_with(
        test: &str,
        identity: Option<&ServerIdentity>,
        settings: &str,
    ) -> Option<Cluster> {
        let Some(bin) = binaries() else {
            let required = std::env::var("VERBATIM_REQUIRE_PG_TLS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{test}: VERBATIM_REQUIRE_PG_TLS=1 but no PostgreSQL binaries (initdb, pg_ctl) \
                 were found in VERBATIM_PG_BIN or /usr/lib/postgresql/*/bin"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {test}: no PostgreSQL binaries (initdb, pg_ctl) found");
            }
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = running_as_root();
        let port = free_port();
        let mut cluster = Cluster { dir, bin, as_postgres, port };
        cluster.init(identity, settings);
        let data = cluster.data();
        let log = cluster.dir.path().join("server.log");
        let started = cluster
            .run("pg_ctl", &["-D", path(&data), "-l", path(&log), "-w", "-t", "60", "start"]);
        assert!(
            started.status.success(),
            "pg_ctl start: {}\n{}\n{}",
            String::from_utf8_lossy(&started.stderr),
            String::from_utf8_lossy(&started.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(cluster)
    }

    /// A URL for `user` on this cluster's `postgres` database, with `query` after `?`.
    pub(crate) fn url(&self, user_info: &str, host: &str, query: &str) -> String {
        format!("postgres://{user_info}@{host}:{}/postgres?{query}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `initdb` with trust authentication on loopback, the SCRAM role's line first (TLS
    /// only), the certificate, and the settings of a small fast cluster.
    fn init(&mut self, identity: Option<&ServerIdentity>, settings: &str) {
        if self.as_postgres {
            chown_to_postgres(self.dir.path());
        }
        let data = self.data();
        let init = self.run(
            "initdb",
            &["-D", path(&data), "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"],
        );
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let hba = data.join("pg_hba.conf");
        let defaults = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!(
                "hostssl all {SCRAM_USER} 127.0.0.1/32 scram-sha-256\n\
                 hostssl all {SCRAM_USER} ::1/128 scram-sha-256\n\
                 hostssl all {IAM_USER} 127.0.0.1/32 scram-sha-256\n{defaults}"
            ),
        )
        .unwrap();
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 30\n",
            self.port,
            self.dir.path().display()
        );
        if let Some(identity) = identity {
            for (name, text) in
                [("server.crt", &identity.cert_pem), ("server.key", &identity.key_pem)]
            {
                let file = data.join(name);
                std::fs::write(&file, text).unwrap();
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
                if self.as_postgres {
                    chown_to_postgres(&file);
                }
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        } else {
            conf.push_str("ssl = off\n");
        }
        conf.push_str(settings);
        let mut file =
            std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
        std::io::Write::write_all(&mut file, conf.as_bytes()).unwrap();
    }

    /// Runs one of the server's binaries, as `postgres` when running as root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path()).output().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The directory of `initdb` and `pg_ctl`, if any.
fn binaries() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("VERBATIM_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn chown_to_postgres(p: &Path) {
    let out = Command::new("chown").args(["postgres:postgres", path(p)]).output().unwrap();
    assert!(
        out.status.success(),
        "chown {}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
