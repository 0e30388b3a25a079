//! A loopback TCP proxy in front of a master that can add latency, blackhole traffic or
//! reset connections, switchable while a test runs.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::Mutex,
    thread,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything at once.
    Pass,
    /// Hold each chunk this long before forwarding it (both directions).
    Latency(Duration),
    /// Forward nothing (connections stay open, data waits), like a partition.
    Blackhole,
}

/// A proxy listening on a free loopback port, forwarding to `upstream`.
///
/// It runs on its own thread with its own tokio runtime, so it works whatever runtime
/// the test uses. Dropping it closes every connection.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    resets: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` in [`ProxyMode::Pass`].
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(ProxyMode::Pass);
        let (resets, resets_rx) = watch::channel(0u64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let thread = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("proxy listener");
                    serve(listener, upstream, mode_rx, resets_rx, shutdown_rx).await;
                });
            })?;
        Ok(Self {
            addr,
            upstream,
            mode,
            resets,
            shutdown,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn addr_string(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.addr.port())
    }

    /// The master behind the proxy.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches what the proxy does to traffic, for new and open connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// Adds `latency` to every chunk in both directions.
    pub fn set_latency(&self, latency: Duration) {
        self.set_mode(ProxyMode::Latency(latency));
    }

    /// Stops forwarding (data waits until [`heal`](Self::heal)).
    pub fn blackhole(&self) {
        self.set_mode(ProxyMode::Blackhole);
    }

    /// Forwards everything again.
    pub fn heal(&self) {
        self.set_mode(ProxyMode::Pass);
    }

    /// Closes every open connection (clients see them drop and must reconnect).
    pub fn reset(&self) {
        self.resets.send_modify(|epoch| *epoch += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    resets: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let (mode, resets, shutdown) = (mode.clone(), resets.clone(), shutdown.clone());
                tokio::spawn(async move {
                    let _ = connection(client, upstream, mode, resets, shutdown).await;
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    mut resets: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    resets.mark_unchanged();
    let server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upstream_pump = pump(client_read, server_write, mode.clone());
    let downstream_pump = pump(server_read, client_write, mode);
    tokio::select! {
        _ = async { tokio::join!(upstream_pump, downstream_pump) } => {}
        _ = resets.changed() => {}
        _ = shutdown.changed() => {}
    }
    // Dropping both halves closes both connections.
    Ok(())
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                ProxyMode::Pass => break,
                ProxyMode::Latency(latency) => {
                    tokio::time::sleep(latency).await;
                    break;
                }
                ProxyMode::Blackhole => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
