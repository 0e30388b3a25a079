//! One `redis-server` process on a free loopback port.

use std::{
    env,
    ffi::OsString,
    fs,
    io::{self, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use nix::{sys::signal, unistd::Pid};

use super::tls::TlsMaterial;

/// What can go wrong while starting or controlling a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No `redis-server` binary was found.
    #[error(
        "redis-server not found: install it (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y redis-server`) or set REDIS_SERVER_BIN to its path"
    )]
    NotInstalled,
    /// `REDIS_SERVER_BIN` names a file that does not exist.
    #[error("REDIS_SERVER_BIN={0} does not exist")]
    BadBinary(PathBuf),
    /// The server could not bind its port (another process took it).
    #[error("port {0} is already in use")]
    PortInUse(u16),
    /// The server did not answer PING in time or exited; the log's tail says why.
    #[error("redis-server on port {port} did not become ready: {log}")]
    NotReady {
        /// The server's port.
        port: u16,
        /// The last lines of its log.
        log: String,
    },
    /// Generating TLS material failed.
    #[error("tls material: {0}")]
    Tls(String),
    /// A control command failed.
    #[error("control command on port {port} failed")]
    Control {
        /// The server's port.
        port: u16,
        /// The client error.
        #[source]
        source: redis::RedisError,
    },
    /// Process or file I/O failed.
    #[error("harness i/o")]
    Io(#[from] io::Error),
}

/// How to configure a server.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerOptions {
    /// `requirepass`: the default user's password.
    pub password: Option<String>,
    /// An extra ACL user (name, password) with every permission.
    pub acl_user: Option<(String, String)>,
    /// Also listen with TLS on a second port, with certificates generated now.
    pub tls: bool,
    /// Persist every write to an append-only file with `fsync` before replying, so a
    /// killed and restarted server keeps its keys.
    pub aof: bool,
    /// More `--name value` arguments for redis-server.
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    /// Requires `password` for the default user.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds an ACL user with every permission.
    #[must_use]
    pub fn acl_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.acl_user = Some((name.into(), password.into()));
        self
    }

    /// Also listens with TLS.
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Persists to an append-only file with `appendfsync always`.
    #[must_use]
    pub fn aof(mut self) -> Self {
        self.aof = true;
        self
    }
}

/// The `redis-server` binary: `REDIS_SERVER_BIN`, else the first on `PATH`.
///
/// # Errors
///
/// [`HarnessError::NotInstalled`] (with install instructions) or
/// [`HarnessError::BadBinary`].
pub fn redis_server_bin() -> Result<PathBuf, HarnessError> {
    locate(env::var_os("REDIS_SERVER_BIN"), env::var_os("PATH"))
}

/// [`redis_server_bin`] over explicit variables.
fn locate(explicit: Option<OsString>, path: Option<OsString>) -> Result<PathBuf, HarnessError> {
    if let Some(bin) = explicit.filter(|bin| !bin.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(HarnessError::BadBinary(bin))
        };
    }
    env::split_paths(&path.unwrap_or_default())
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .ok_or(HarnessError::NotInstalled)
}

/// A free TCP port on 127.0.0.1 (free when asked; the server retries if it is taken).
fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A `redis-server` process on loopback, stopped (SIGKILL) when dropped, also when a
/// test panics.
#[derive(Debug)]
pub struct RedisServer {
    bin: PathBuf,
    options: ServerOptions,
    tls: Option<TlsMaterial>,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisServer {
    /// Starts a plain server; panics with the reason (and install instructions when
    /// redis-server is missing) if it cannot.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `options`; panics with the reason if it cannot.
    pub fn start_with(options: ServerOptions) -> Self {
        Self::try_start_with(options).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a server with `options`.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when redis-server is missing or does not come up.
    pub fn try_start_with(options: ServerOptions) -> Result<Self, HarnessError> {
        let bin = redis_server_bin()?;
        let tls = if options.tls {
            Some(TlsMaterial::generate()?)
        } else {
            None
        };
        let mut last = None;
        for _ in 0..8 {
            let port = free_port()?;
            let tls_port = if tls.is_some() {
                Some(free_port()?)
            } else {
                None
            };
            let mut server = Self {
                bin: bin.clone(),
                options: options.clone(),
                tls: tls.clone(),
                dir: tempfile::Builder::new()
                    .prefix("redlock-redis-")
                    .tempdir()?,
                port,
                tls_port,
                child: None,
                paused: false,
                starts: 0,
            };
            if let Some(material) = &tls {
                material.write(server.dir.path())?;
            }
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error @ HarnessError::PortInUse(_)) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(HarnessError::NotInstalled))
    }

    fn args(&self) -> Vec<String> {
        let dir = self.dir.path();
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            if self.options.aof { "yes" } else { "no" },
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--logfile",
            &self.log_path().display().to_string(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        if let Some(password) = &self.options.password {
            args.extend(["--requirepass".into(), password.clone()]);
        }
        if let Some((name, password)) = &self.options.acl_user {
            args.extend([
                "--user".into(),
                name.clone(),
                "on".into(),
                format!(">{password}"),
                "~*".into(),
                "&*".into(),
                "+@all".into(),
            ]);
        }
        if let Some(tls_port) = self.tls_port {
            let file = |name: &str| dir.join(name).display().to_string();
            args.extend([
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                file("server.crt"),
                "--tls-key-file".into(),
                file("server.key"),
                "--tls-ca-cert-file".into(),
                file("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]);
        }
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("redis-{}.log", self.starts))
    }

    /// Spawns the process and waits until it answers PING.
    fn spawn(&mut self) -> Result<(), HarnessError> {
        self.starts += 1;
        let child = Command::new(&self.bin)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        self.paused = false;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && child.try_wait()?.is_some()
            {
                self.child = None;
                let log = self.log_tail();
                if log.contains("Address already in use") {
                    return Err(HarnessError::PortInUse(self.port));
                }
                return Err(HarnessError::NotReady {
                    port: self.port,
                    log,
                });
            }
            // PONG alone could come from another test's server that took the port
            // first (ours then fails to bind and exits): this start's own log must say
            // that it listens.
            if ping(self.port) && self.says_ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(HarnessError::NotReady {
                    port: self.port,
                    log: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether this start's log (one file per start) says the server listens.
    fn says_ready(&self) -> bool {
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .contains("Ready to accept connections")
    }

    /// The last lines of the current log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// The plain TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`: how adapters name this master.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The socket address of the plain port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:<port>`, with the default user's password when one is set.
    pub fn url(&self) -> String {
        match &self.options.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// `redis://user:password@127.0.0.1:<port>` for the ACL user, if configured.
    pub fn acl_url(&self) -> Option<String> {
        let (name, password) = self.options.acl_user.as_ref()?;
        Some(format!("redis://{name}:{password}@127.0.0.1:{}", self.port))
    }

    /// `rediss://127.0.0.1:<tls port>`, when started with TLS.
    pub fn tls_url(&self) -> Option<String> {
        let port = self.tls_port?;
        match &self.options.password {
            Some(password) => Some(format!("rediss://:{password}@127.0.0.1:{port}")),
            None => Some(format!("rediss://127.0.0.1:{port}")),
        }
    }

    /// The TLS material, when started with TLS.
    pub fn tls_material(&self) -> Option<&TlsMaterial> {
        self.tls.as_ref()
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs (it may be paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Kills the process with SIGKILL; its data is gone.
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it is gone already.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Starts the server again on the same port (killing it first if it runs).
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when it does not come back within a few seconds.
    pub fn try_restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Err(HarnessError::PortInUse(_)) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Starts the server again on the same port; panics if it cannot.
    pub fn restart(&mut self) {
        self.try_restart()
            .unwrap_or_else(|error| panic!("restart of {}: {error}", self.addr()));
    }

    /// Stops the process with SIGSTOP: connections stay open, nothing is answered.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            self.signal(pid, signal::Signal::SIGSTOP);
            self.paused = true;
        }
    }

    /// Continues a paused process with SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            self.signal(pid, signal::Signal::SIGCONT);
            self.paused = false;
        }
    }

    fn signal(&self, pid: u32, signal: signal::Signal) {
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits in i32"));
        signal::kill(pid, signal).unwrap_or_else(|error| panic!("{signal} to {pid}: {error}"));
    }

    /// A synchronous control connection (default user).
    ///
    /// # Errors
    ///
    /// [`HarnessError::Control`] when the server does not accept it.
    pub fn control(&self) -> Result<redis::Connection, HarnessError> {
        let control = |source| HarnessError::Control {
            port: self.port,
            source,
        };
        let client = redis::Client::open(self.url()).map_err(control)?;
        let connection = client
            .get_connection_with_timeout(CONTROL_TIMEOUT)
            .map_err(control)?;
        connection
            .set_read_timeout(Some(CONTROL_TIMEOUT))
            .map_err(control)?;
        connection
            .set_write_timeout(Some(CONTROL_TIMEOUT))
            .map_err(control)?;
        Ok(connection)
    }

    /// Runs one command on a control connection.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Control`] when the command fails.
    pub fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> Result<T, HarnessError> {
        let mut connection = self.control()?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut connection)
            .map_err(|source| HarnessError::Control {
                port: self.port,
                source,
            })
    }

    /// Closes every client connection (`CLIENT KILL TYPE normal`), keeping the data.
    pub fn kill_clients(&self) {
        // Our own control connection is skipped (SKIPME yes is the default).
        self.command::<u64>(&["CLIENT", "KILL", "TYPE", "normal"])
            .unwrap_or_else(|error| panic!("CLIENT KILL on {}: {error}", self.addr()));
    }

    /// How many client connections the server has (our control connection included).
    pub fn client_count(&self) -> usize {
        let list: String = self
            .command(&["CLIENT", "LIST"])
            .unwrap_or_else(|error| panic!("CLIENT LIST on {}: {error}", self.addr()));
        list.lines().count()
    }

    /// Deletes every key.
    pub fn flush(&self) {
        self.command::<()>(&["FLUSHALL"])
            .unwrap_or_else(|error| panic!("FLUSHALL on {}: {error}", self.addr()));
    }

    /// Forgets every cached Lua script.
    pub fn script_flush(&self) {
        self.command::<()>(&["SCRIPT", "FLUSH"])
            .unwrap_or_else(|error| panic!("SCRIPT FLUSH on {}: {error}", self.addr()));
    }

    /// How many keys the server holds.
    pub fn key_count(&self) -> usize {
        self.command::<usize>(&["DBSIZE"])
            .unwrap_or_else(|error| panic!("DBSIZE on {}: {error}", self.addr()))
    }

    /// Every key the server holds, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .command(&["KEYS", "*"])
            .unwrap_or_else(|error| panic!("KEYS on {}: {error}", self.addr()));
        keys.sort();
        keys
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<String> {
        self.command(&["GET", key])
            .unwrap_or_else(|error| panic!("GET on {}: {error}", self.addr()))
    }

    /// The directory holding the server's logs and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `port` answers PING like a Redis server.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    match stream.read(&mut reply) {
        Ok(n) if n > 0 => reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[test]
    fn missing_binary_says_how_to_install_it() {
        let error = locate(None, Some(OsString::new())).unwrap_err();
        assert!(matches!(error, HarnessError::NotInstalled));
        assert!(
            error
                .to_string()
                .contains("apt-get install -y redis-server")
        );
        assert!(error.to_string().contains("REDIS_SERVER_BIN"));
        let error = locate(Some("/nonexistent/redis-server".into()), None).unwrap_err();
        assert!(matches!(error, HarnessError::BadBinary(_)), "{error}");
    }

    #[test]
    fn server_answers_and_is_controlled() {
        let mut server = RedisServer::start();
        let _: () = server.command(&["SET", "k", "v"]).unwrap();
        assert_eq!(server.key_count(), 1);
        assert_eq!(server.keys(), ["k"]);
        server.flush();
        assert_eq!(server.key_count(), 0);
        server.pause();
        assert!(server.is_paused());
        assert!(
            server.command::<String>(&["PING"]).is_err(),
            "a paused server answered"
        );
        server.resume();
        assert_eq!(server.command::<String>(&["PING"]).unwrap(), "PONG");
        let port = server.port();
        server.kill();
        assert!(!server.is_running());
        assert!(server.command::<String>(&["PING"]).is_err());
        server.restart();
        assert_eq!(server.port(), port);
        assert_eq!(server.command::<String>(&["PING"]).unwrap(), "PONG");
    }

    #[test]
    fn servers_stop_on_drop_even_when_a_test_panics() {
        let pids = std::sync::Mutex::new(Vec::new());
        let result = std::panic::catch_unwind(|| {
            let mut paused = RedisServer::start();
            let running = RedisServer::start();
            paused.pause();
            pids.lock()
                .unwrap()
                .extend([paused.pid().unwrap(), running.pid().unwrap()]);
            panic!("test body failed");
        });
        assert!(result.is_err());
        for pid in pids.into_inner().unwrap() {
            assert!(!alive(pid), "redis-server {pid} outlived its test");
        }
    }

    #[test]
    fn password_and_acl_servers_require_credentials() {
        let server =
            RedisServer::start_with(ServerOptions::default().password("pw").acl_user("u", "p"));
        assert_eq!(server.command::<String>(&["PING"]).unwrap(), "PONG");
        let anonymous =
            redis::Client::open(format!("redis://127.0.0.1:{}", server.port())).unwrap();
        let mut connection = anonymous.get_connection().unwrap();
        let denied: Result<String, _> = redis::cmd("GET").arg("x").query(&mut connection);
        assert!(denied.is_err());
        assert!(server.acl_url().unwrap().starts_with("redis://u:p@"));
    }
}
