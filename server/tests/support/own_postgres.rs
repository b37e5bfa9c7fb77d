//! A PostgreSQL cluster of a test's or a benchmark's own: initdb in a temporary directory, on a
//! free port, started and stopped at will (as the `postgres` user when run as root). Shared by
//! the outage test and the delivery benchmark through `#[path]`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How the cluster runs.
#[derive(Clone, Copy, Debug)]
pub struct Durability {
    /// fsync, synchronous_commit and full_page_writes on, as PostgreSQL ships.
    pub durable: bool,
    /// TLS on, with a self-signed certificate; clients connect with `sslmode=require`.
    pub tls: bool,
}

pub struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    pub durability: Durability,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl OwnPostgres {
    /// A new cluster, started; `None` when PostgreSQL is not installed.
    pub fn start_new(durability: Durability) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let dir = std::env::temp_dir().join(format!("hookline-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let pg = OwnPostgres { bin, dir, port, durability };
        if durability.tls {
            let ok = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                ])
                .arg("-keyout")
                .arg(pg.dir.join("server.key"))
                .arg("-out")
                .arg(pg.dir.join("server.crt"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl makes a self-signed certificate");
        }
        if is_root() {
            Command::new("chown").args(["-R", "postgres"]).arg(&pg.dir).status().ok()?;
            if durability.tls {
                Command::new("chmod").arg("600").arg(pg.dir.join("server.key")).status().ok()?;
            }
        }
        let data = pg.data();
        assert!(pg.run("initdb", &["-D", data.to_str()?, "-A", "trust", "-U", "postgres"]), "initdb");
        pg.start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        cmd.args(args).current_dir("/").stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    pub fn start(&self) {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        if !self.durability.durable {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        if self.durability.tls {
            let file = |name: &str| -> String { self.dir.join(name).display().to_string() };
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                file("server.crt"),
                file("server.key")
            ));
        }
        let log = self.dir.join("log");
        let data = self.data();
        assert!(
            self.run("pg_ctl", &["-D", path(&data), "-l", path(&log), "-w", "start", "-o", &opts]),
            "PostgreSQL starts: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    #[allow(dead_code)] // The benchmark never stops its cluster before the end.
    pub fn stop(&self) {
        assert!(self.run("pg_ctl", &["-D", path(&self.data()), "-m", "fast", "-w", "stop"]));
    }

    /// The server's `postgres` database, as a URL.
    pub fn url(&self) -> String {
        let tls = if self.durability.tls { "?sslmode=require" } else { "" };
        format!("postgres://postgres@127.0.0.1:{}/postgres{tls}", self.port)
    }

    /// The postmaster's process id, for CPU accounting.
    #[allow(dead_code)] // The outage test does not count CPU.
    pub fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?.lines().next().map(str::to_string)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", path(&self.data()), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
