//! Lock cycle cost next to the raw Redis floor, on masters this program starts.
//!
//! One cycle = acquire + release. Measured in one run, interleaved, for each scenario:
//! (a) `raw-all`: bare concurrent `SET key value NX PX ttl` on every master, then
//!     concurrent compare-and-delete, each round waiting for every master;
//! (b) `raw-quorum`: the same, each round returning at the quorum (a master's release is
//!     written to its connection after its own acquire);
//! (c) `redis-rs`: `redlock-redis-rs` (`RedisBackend::from_url`);
//! (d) `fred`: `redlock-fred` (`FredBackend::from_url`).
//!
//! ```text
//! cargo run -p redlock-tests --release --bin bench            # the full matrix
//! cargo run -p redlock-tests --release --bin bench -- --quick # a tiny one (CI)
//! ```

use std::{
    env,
    fmt::Write as _,
    fs,
    future::poll_fn,
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use nix::{
    sys::resource::{UsageWho, getrusage},
    unistd::{SysconfVar, sysconf},
};
use rand::RngCore;
use redis::aio::MultiplexedConnection;
use redlock_core::{Redlock, RedlockBuilder, scripts};
use redlock_redis_rs::RedisBackend;
use redlock_tests::{Cluster, Fred, RedisRs, suite::connect_all};

const TTL: Duration = Duration::from_secs(10);
const CONTENDED_RETRY_DELAY: Duration = Duration::from_millis(2);

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// The system allocator, counting allocations: a cost the machine's noise cannot blur.
#[allow(unsafe_code)]
mod counting {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        cell::Cell,
        sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    };

    /// [`System`], counting every allocation and reallocation.
    pub(super) struct Counting;

    /// Counts per thread group, each on its own cache line, so counting adds no contention.
    #[repr(align(64))]
    struct Shard(AtomicU64);

    static SHARDS: [Shard; 8] = [const { Shard(AtomicU64::new(0)) }; 8];
    static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    fn count_allocation() {
        let shard = MY_SHARD
            .try_with(|mine| {
                if mine.get() == usize::MAX {
                    mine.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS.len());
                }
                mine.get()
            })
            .unwrap_or(0);
        SHARDS[shard].0.fetch_add(1, Ordering::Relaxed);
    }

    /// Allocations so far, by every thread.
    pub(super) fn allocations() -> u64 {
        SHARDS
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum()
    }

    // SAFETY: every call is forwarded to `System` unchanged; counting touches no memory the
    // allocator hands out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    RawAll,
    RawQuorum,
    RedisRs,
    RedisRsMux,
    Fred,
    RawFred,
}

impl Impl {
    const ALL: [Self; 4] = [Self::RawAll, Self::RawQuorum, Self::RedisRs, Self::Fred];
    const KNOWN: [Self; 6] = [
        Self::RawAll,
        Self::RawQuorum,
        Self::RedisRs,
        Self::RedisRsMux,
        Self::Fred,
        Self::RawFred,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::RawAll => "raw-all (a)",
            Self::RawQuorum => "raw-quorum (b)",
            Self::RedisRs => "redlock-redis-rs",
            Self::RedisRsMux => "redis-rs (mux)",
            Self::Fred => "redlock-fred",
            Self::RawFred => "raw-fred-quorum",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::RawAll => "raw-all",
            Self::RawQuorum => "raw-quorum",
            Self::RedisRs => "redis-rs",
            Self::RedisRsMux => "redis-rs-mux",
            Self::Fred => "fred",
            Self::RawFred => "raw-fred",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    masters: usize,
    tasks: usize,
    resources: usize,
    contended: bool,
}

impl Scenario {
    fn label(&self) -> String {
        format!(
            "N={} C={} R={} {}",
            self.masters,
            self.tasks,
            self.resources,
            if self.contended {
                "contended"
            } else {
                "uncontended"
            }
        )
    }
}

#[derive(Debug, Clone, Default)]
struct Sample {
    cycles: u64,
    errors: u64,
    seconds: f64,
    cpu_seconds: f64,
    /// CPU time the masters' processes used meanwhile, summed (`None` where it
    /// cannot be read).
    masters_cpu_seconds: Option<f64>,
    allocations: u64,
    latencies_us: Vec<u32>,
    leftover: usize,
    maxrss_kb: i64,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.cycles as f64 / self.seconds
    }

    fn cpu_us_per_cycle(&self) -> f64 {
        if self.cycles == 0 {
            0.0
        } else {
            self.cpu_seconds * 1e6 / self.cycles as f64
        }
    }

    /// The masters' CPU time per cycle, summed over the masters; NaN when unknown.
    fn masters_us_per_cycle(&self) -> f64 {
        match self.masters_cpu_seconds {
            Some(seconds) if self.cycles > 0 => seconds * 1e6 / self.cycles as f64,
            _ => f64::NAN,
        }
    }

    /// Allocations (and reallocations) per cycle, by the whole client process.
    fn allocations_per_cycle(&self) -> f64 {
        if self.cycles == 0 {
            0.0
        } else {
            self.allocations as f64 / self.cycles as f64
        }
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank]
    }
}

/// What one task uses to lock: raw connections or a Redlock.
#[derive(Clone)]
enum Locker {
    Raw {
        masters: Arc<RawMasters>,
        at_quorum: bool,
    },
    Redlock(Redlock),
}

/// The raw floors' connections, one per master: bare redis-rs, or fred for a floor of
/// the fred client itself (`--impls raw-fred`, at the quorum like (b)).
enum RawMasters {
    RedisRs(Vec<MultiplexedConnection>),
    Fred(Vec<fred::clients::Client>),
}

impl RawMasters {
    fn len(&self) -> usize {
        match self {
            Self::RedisRs(connections) => connections.len(),
            Self::Fred(clients) => clients.len(),
        }
    }

    fn acquire(&self, master: usize, keys: &Arc<Vec<String>>, value: &Arc<str>) -> Reply {
        let (keys, value) = (Arc::clone(keys), Arc::clone(value));
        match self {
            Self::RedisRs(connections) => raw_acquire(connections[master].clone(), keys, value),
            Self::Fred(clients) => fred_acquire(clients[master].clone(), keys, value),
        }
    }

    fn release(&self, master: usize, keys: &Arc<Vec<String>>, value: &Arc<str>) -> Reply {
        let (keys, value) = (Arc::clone(keys), Arc::clone(value));
        match self {
            Self::RedisRs(connections) => raw_release(connections[master].clone(), keys, value),
            Self::Fred(clients) => fred_release(clients[master].clone(), keys, value),
        }
    }
}

fn new_value() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

type Reply = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Polls `calls` until `needed` of them said yes (or can no longer), or all finished;
/// meanwhile drives `stragglers` (earlier calls still unanswered) along.
async fn until(
    calls: &mut [Option<Reply>],
    needed: usize,
    wait_all: bool,
    stragglers: &mut Vec<Reply>,
) -> usize {
    let n = calls.len();
    let (mut yes, mut no) = (0, 0);
    poll_fn(|cx| {
        stragglers.retain_mut(|call| call.as_mut().poll(cx).is_pending());
        for slot in calls.iter_mut() {
            if let Some(call) = slot
                && let Poll::Ready(ok) = call.as_mut().poll(cx)
            {
                *slot = None;
                if ok { yes += 1 } else { no += 1 }
            }
        }
        let decided = yes >= needed || no > n - needed;
        if yes + no == n || (!wait_all && decided) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    yes
}

fn raw_acquire(
    mut connection: MultiplexedConnection,
    keys: Arc<Vec<String>>,
    value: Arc<str>,
) -> Reply {
    Box::pin(async move {
        let mut pipe = redis::pipe();
        for key in keys.iter() {
            pipe.cmd("SET")
                .arg(key)
                .arg(&*value)
                .arg("NX")
                .arg("PX")
                .arg(TTL.as_millis() as u64);
        }
        let replies: Result<Vec<Option<String>>, _> = pipe.query_async(&mut connection).await;
        replies.is_ok_and(|replies| replies.iter().all(Option::is_some))
    })
}

fn raw_release(
    mut connection: MultiplexedConnection,
    keys: Arc<Vec<String>>,
    value: Arc<str>,
) -> Reply {
    Box::pin(async move {
        let reply: Result<i64, _> = redis::cmd("EVALSHA")
            .arg(scripts::RELEASE.sha1())
            .arg(keys.len())
            .arg(&keys[..])
            .arg(&*value)
            .query_async(&mut connection)
            .await;
        reply.is_ok()
    })
}

/// fred's `SET key value NX PX ttl` on a client or a pipeline.
async fn fred_set<C: fred::interfaces::KeysInterface + Sync>(
    target: &C,
    key: &str,
    value: &str,
) -> Result<fred::types::Value, fred::error::Error> {
    use fred::types::{Expiration, SetOptions};
    target
        .set(
            key,
            value,
            Some(Expiration::PX(TTL.as_millis() as i64)),
            Some(SetOptions::NX),
            false,
        )
        .await
}

/// One command for one key, a pipeline for several.
fn fred_acquire(client: fred::clients::Client, keys: Arc<Vec<String>>, value: Arc<str>) -> Reply {
    Box::pin(async move {
        if let [key] = &keys[..] {
            return fred_set(&client, key, &value)
                .await
                .is_ok_and(|reply| !reply.is_null());
        }
        let pipeline = client.pipeline();
        for key in keys.iter() {
            // Queued: the replies come from `try_all`.
            let _ = fred_set(&pipeline, key, &value).await;
        }
        pipeline
            .try_all::<fred::types::Value>()
            .await
            .iter()
            .all(|reply| reply.as_ref().is_ok_and(|reply| !reply.is_null()))
    })
}

fn fred_release(client: fred::clients::Client, keys: Arc<Vec<String>>, value: Arc<str>) -> Reply {
    use fred::interfaces::LuaInterface;
    Box::pin(async move {
        client
            .evalsha::<i64, _, _, _>(scripts::RELEASE.sha1(), keys.to_vec(), value.to_string())
            .await
            .is_ok()
    })
}

/// One raw lock cycle; `false` when the lock was not granted. At the quorum, releases
/// still unanswered go to `stragglers`, which later rounds drive to completion.
async fn raw_cycle(
    masters: &RawMasters,
    keys: &Arc<Vec<String>>,
    at_quorum: bool,
    stragglers: &mut Vec<Reply>,
) -> bool {
    let quorum = masters.len() / 2 + 1;
    let value: Arc<str> = new_value().into();
    let mut acquires: Vec<Option<Reply>> = (0..masters.len())
        .map(|master| Some(masters.acquire(master, keys, &value)))
        .collect();
    let granted = until(&mut acquires, quorum, !at_quorum, stragglers).await;
    // Acquires still unanswered are dropped before the releases start, as Redlock does:
    // one whose request is already queued is still applied, ahead of its release; one
    // still waiting for room in the connection's queue is never sent. Kept alive, it
    // could be queued after its own release and leave its key behind.
    drop(acquires);
    let mut releases: Vec<Option<Reply>> = (0..masters.len())
        .map(|master| Some(masters.release(master, keys, &value)))
        .collect();
    until(&mut releases, quorum, !at_quorum, stragglers).await;
    stragglers.extend(releases.into_iter().flatten());
    granted >= quorum
}

async fn task(
    locker: Locker,
    keys: Vec<String>,
    deadline: Instant,
    contended: bool,
) -> (u64, u64, Vec<u32>) {
    let keys = Arc::new(keys);
    let (mut cycles, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    let mut stragglers: Vec<Reply> = Vec::new();
    while Instant::now() < deadline {
        let start = Instant::now();
        let ok = match &locker {
            Locker::Raw { masters, at_quorum } => loop {
                if raw_cycle(masters, &keys, *at_quorum, &mut stragglers).await {
                    break true;
                }
                if !contended || Instant::now() >= deadline {
                    break false;
                }
                tokio::time::sleep(CONTENDED_RETRY_DELAY).await;
            },
            Locker::Redlock(redlock) => match redlock.acquire(keys.iter(), TTL).await {
                Ok(lock) => lock.release().await.is_ok(),
                Err(_) => false,
            },
        };
        if ok {
            cycles += 1;
            latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
        } else if Instant::now() < deadline {
            errors += 1;
        }
    }
    // Let the last stragglers finish so no key is left behind.
    let drain = poll_fn(|cx| {
        stragglers.retain_mut(|call| call.as_mut().poll(cx).is_pending());
        if stragglers.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    (cycles, errors, latencies)
}

fn cpu_seconds() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let (user, system) = (usage.user_time(), usage.system_time());
    user.tv_sec() as f64
        + user.tv_usec() as f64 / 1e6
        + system.tv_sec() as f64
        + system.tv_usec() as f64 / 1e6
}

/// CPU time (user + system) the masters' processes have used so far, from
/// `/proc/<pid>/stat`; `None` where that cannot be read (not Linux, a server stopped).
fn masters_cpu_seconds(cluster: &Cluster) -> Option<f64> {
    let ticks = sysconf(SysconfVar::CLK_TCK).ok()?? as f64;
    cluster
        .servers()
        .iter()
        .map(|server| {
            let stat = fs::read_to_string(format!("/proc/{}/stat", server.pid()?)).ok()?;
            // The fields after the command name (which may hold spaces) start with the
            // third; utime and stime are the 14th and 15th.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks_used =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks_used as f64 / ticks)
        })
        .sum()
}

fn maxrss_kb() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|usage| usage.max_rss())
        .unwrap_or(0)
}

async fn locker(implementation: Impl, cluster: &Cluster, contended: bool) -> Locker {
    let redlock = |builder: RedlockBuilder| {
        let builder = if contended {
            builder
                .retry_count(100_000)
                .retry_delay(CONTENDED_RETRY_DELAY)
                .retry_jitter(Duration::ZERO)
        } else {
            builder.retry_count(0)
        };
        Locker::Redlock(builder.build().expect("settings"))
    };
    match implementation {
        Impl::RawAll | Impl::RawQuorum => {
            let mut connections = Vec::new();
            for url in cluster.urls() {
                let client = redis::Client::open(url).expect("url");
                connections.push(
                    client
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connect"),
                );
                // Load the compare-and-delete script once.
                let _: String = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(scripts::RELEASE.source())
                    .query_async(connections.last_mut().expect("just pushed"))
                    .await
                    .expect("SCRIPT LOAD");
            }
            Locker::Raw {
                masters: Arc::new(RawMasters::RedisRs(connections)),
                at_quorum: implementation == Impl::RawQuorum,
            }
        }
        Impl::RawFred => {
            use fred::interfaces::{ClientLike, LuaInterface};
            let mut clients = Vec::new();
            for url in cluster.urls() {
                let config = fred::types::config::Config::from_url(&url).expect("url");
                let client = fred::types::Builder::from_config(config)
                    .build()
                    .expect("client");
                client.init().await.expect("connect");
                let _: String = client
                    .script_load(scripts::RELEASE.source())
                    .await
                    .expect("SCRIPT LOAD");
                clients.push(client);
            }
            Locker::Raw {
                masters: Arc::new(RawMasters::Fred(clients)),
                at_quorum: true,
            }
        }
        Impl::RedisRs => redlock(Redlock::builder(connect_all::<RedisRs>(cluster).await)),
        Impl::Fred => redlock(Redlock::builder(connect_all::<Fred>(cluster).await)),
        Impl::RedisRsMux => {
            let mut backends = Vec::new();
            for url in cluster.urls() {
                let client = redis::Client::open(url.as_str()).expect("url");
                let connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect");
                backends.push(RedisBackend::new(connection).with_name(url));
            }
            redlock(Redlock::builder(backends))
        }
    }
}

async fn measure(
    implementation: Impl,
    scenario: Scenario,
    cluster: &Cluster,
    duration: Duration,
    warmup: Duration,
) -> Sample {
    let locker = locker(implementation, cluster, scenario.contended).await;
    let tag = implementation.key();
    let keys_for = |task: usize| -> Vec<String> {
        (0..scenario.resources)
            .map(|r| {
                if scenario.contended {
                    format!("bench:{tag}:shared:{r}")
                } else {
                    format!("bench:{tag}:{task}:{r}")
                }
            })
            .collect()
    };
    // Warm-up: connections, scripts, allocator.
    let warm = Instant::now() + warmup;
    join_all(
        (0..scenario.tasks)
            .map(|t| tokio::spawn(task(locker.clone(), keys_for(t), warm, scenario.contended))),
    )
    .await;

    let cpu_before = cpu_seconds();
    let masters_before = masters_cpu_seconds(cluster);
    let allocations_before = counting::allocations();
    let start = Instant::now();
    let deadline = start + duration;
    let results = join_all((0..scenario.tasks).map(|t| {
        tokio::spawn(task(
            locker.clone(),
            keys_for(t),
            deadline,
            scenario.contended,
        ))
    }))
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let masters_cpu = masters_before
        .zip(masters_cpu_seconds(cluster))
        .map(|(before, after)| after - before);
    let allocations = counting::allocations() - allocations_before;
    let mut sample = Sample {
        seconds,
        cpu_seconds: cpu,
        masters_cpu_seconds: masters_cpu,
        allocations,
        maxrss_kb: maxrss_kb(),
        ..Sample::default()
    };
    for result in results {
        let (cycles, errors, latencies) = result.expect("bench task");
        sample.cycles += cycles;
        sample.errors += errors;
        sample.latencies_us.extend(latencies);
    }
    sample.latencies_us.sort_unstable();
    // fred clients keep their connection task running until they quit.
    if let Locker::Raw { masters, .. } = &locker
        && let RawMasters::Fred(clients) = &**masters
    {
        use fred::interfaces::ClientLike;
        for client in clients {
            let _ = client.quit().await;
        }
    }
    drop(locker);
    // Releases already returned; requests to the remaining masters get up to two
    // seconds to land (as in the tests' `assert_no_keys`).
    let grace = Instant::now() + Duration::from_secs(2);
    sample.leftover = loop {
        let left = cluster.total_keys();
        if left == 0 || Instant::now() >= grace {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for server in cluster.servers() {
        server.flush();
    }
    sample
}

/// One decimal, or `-` for an unknown (NaN) value.
fn fixed(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else {
        format!("{value:.1}")
    }
}

/// A JSON number, or `null` for an unknown (NaN) value.
fn json_number(value: f64) -> String {
    if value.is_nan() {
        "null".to_owned()
    } else {
        format!("{value:.2}")
    }
}

fn median_by<F: Fn(&Sample) -> f64>(samples: &[Sample], f: F) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Options {
    masters: Vec<usize>,
    tasks: Vec<usize>,
    duration: Duration,
    warmup: Duration,
    reps: usize,
    json: String,
    impls: Vec<Impl>,
    /// Which scenario kinds run: one resource, several resources, contended.
    kinds: Vec<String>,
    quick: bool,
}

fn list(text: &str) -> Vec<usize> {
    text.split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        masters: vec![1, 3, 5],
        tasks: vec![1, 16, 64],
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(300),
        reps: 3,
        json: "target/bench.jsonl".into(),
        impls: Impl::ALL.to_vec(),
        kinds: KINDS.iter().map(|&kind| kind.to_owned()).collect(),
        quick: false,
    };
    let mut args = env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--masters" => options.masters = list(&value()?),
            "--tasks" => options.tasks = list(&value()?),
            "--duration-ms" => {
                options.duration =
                    Duration::from_millis(value()?.parse().map_err(|_| "bad --duration-ms")?)
            }
            "--reps" => options.reps = value()?.parse::<usize>().map_err(|_| "bad --reps")?.max(1),
            "--json" => options.json = value()?,
            "--impls" => {
                let names = value()?;
                options.impls = names
                    .split(',')
                    .map(|name| {
                        Impl::KNOWN
                            .into_iter()
                            .find(|i| i.key() == name)
                            .ok_or(format!("unknown impl {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--kinds" => {
                options.kinds = value()?.split(',').map(str::to_owned).collect();
                if let Some(kind) = options.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                    return Err(format!("unknown kind {kind:?}"));
                }
            }
            "--quick" => {
                options.quick = true;
                options.masters = vec![3];
                options.tasks = vec![1, 4];
                options.duration = Duration::from_millis(300);
                options.warmup = Duration::from_millis(50);
                options.reps = 1;
            }
            "--help" | "-h" => {
                return Err("usage: bench [--quick] [--masters 1,3,5] [--tasks 1,16,64] [--duration-ms 2000] [--reps 3] [--impls raw-all,raw-quorum,redis-rs,redis-rs-mux,fred,raw-fred] [--kinds single,resources,contended] [--json PATH]".into());
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

/// Scenario kinds: uncontended with one resource per lock, uncontended with four,
/// contended.
const KINDS: [&str; 3] = ["single", "resources", "contended"];

fn scenarios(options: &Options) -> Vec<Scenario> {
    let kind = |name: &str| options.kinds.iter().any(|k| k == name);
    let mut list = Vec::new();
    for &masters in options.masters.iter().filter(|_| kind("single")) {
        for &tasks in &options.tasks {
            list.push(Scenario {
                masters,
                tasks,
                resources: 1,
                contended: false,
            });
        }
    }
    let top = *options.masters.iter().max().unwrap_or(&5);
    for &tasks in options
        .tasks
        .iter()
        .filter(|&&t| t <= 16 && kind("resources"))
    {
        list.push(Scenario {
            masters: top,
            tasks,
            resources: 4,
            contended: false,
        });
    }
    let contended_tasks = if options.quick { 4 } else { 16 };
    if kind("contended") {
        list.push(Scenario {
            masters: top,
            tasks: contended_tasks,
            resources: 1,
            contended: true,
        });
    }
    list
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut json = String::new();
    let mut failures = 0;
    println!(
        "bench: {} ms per measurement, {} repetition(s), interleaved; medians shown; cycle = acquire + release",
        options.duration.as_millis(),
        options.reps
    );
    let mut clusters: Vec<(usize, Cluster)> = Vec::new();
    for scenario in scenarios(&options) {
        if !clusters.iter().any(|(n, _)| *n == scenario.masters) {
            clusters.push((scenario.masters, Cluster::start(scenario.masters)));
        }
        let cluster = &clusters
            .iter()
            .find(|(n, _)| *n == scenario.masters)
            .expect("started")
            .1;
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); options.impls.len()];
        // For several resources per lock, the same scenario with one resource, measured
        // right before in every repetition, so their cost ratio is not skewed by the
        // machine's load drifting between scenarios.
        let single = Scenario {
            resources: 1,
            ..scenario
        };
        let mut paired: Vec<Vec<Sample>> = vec![Vec::new(); options.impls.len()];
        for rep in 0..options.reps {
            for (i, &implementation) in options.impls.iter().enumerate() {
                if scenario.resources > 1 {
                    paired[i].push(runtime.block_on(measure(
                        implementation,
                        single,
                        cluster,
                        options.duration,
                        options.warmup,
                    )));
                }
                let sample = runtime.block_on(measure(
                    implementation,
                    scenario,
                    cluster,
                    options.duration,
                    options.warmup,
                ));
                let _ = writeln!(
                    json,
                    "{{\"scenario\":\"{}\",\"impl\":\"{}\",\"masters\":{},\"tasks\":{},\"resources\":{},\"contended\":{},\"rep\":{},\"cycles_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"cpu_us_per_cycle\":{:.2},\"masters_cpu_us_per_cycle\":{},\"allocs_per_cycle\":{:.1},\"maxrss_kb\":{},\"errors\":{},\"leftover_keys\":{}}}",
                    scenario.label(),
                    implementation.key(),
                    scenario.masters,
                    scenario.tasks,
                    scenario.resources,
                    scenario.contended,
                    rep,
                    sample.rate(),
                    sample.percentile(50.0),
                    sample.percentile(99.0),
                    sample.percentile(100.0),
                    sample.cpu_us_per_cycle(),
                    json_number(sample.masters_us_per_cycle()),
                    sample.allocations_per_cycle(),
                    sample.maxrss_kb,
                    sample.errors,
                    sample.leftover
                );
                samples[i].push(sample);
            }
        }
        println!("\n{}", scenario.label());
        println!(
            "  {:<18}{:>11}{:>9}{:>9}{:>9}{:>8}{:>8}{:>12}{:>11}{:>9}{:>11}{:>11}{:>9}{:>7}{:>6}",
            "implementation",
            "cycles/s",
            "p50 us",
            "p99 us",
            "max us",
            "x(a)",
            "x(b)",
            "x(b) reps",
            "cpu us/cyc",
            "cpu x(a)",
            "srv us/cyc",
            "allocs/cyc",
            "rss MB",
            "errors",
            "left"
        );
        // Ratios are to the raw floors when they ran; a column is `-` otherwise.
        let median_of = |which: Impl, f: fn(&Sample) -> f64| {
            let index = options.impls.iter().position(|&i| i == which)?;
            Some(median_by(&samples[index], f))
        };
        let base_a = median_of(Impl::RawAll, Sample::rate);
        let base_b = median_of(Impl::RawQuorum, Sample::rate);
        let cpu_a = median_of(Impl::RawAll, Sample::cpu_us_per_cycle);
        let ratio = |value: f64, base: Option<f64>| {
            base.map_or_else(|| "-".to_owned(), |base| format!("{:.2}", value / base))
        };
        // The spread of the ratio to (b) over repetitions, each measured right after
        // (b)'s sample of the same repetition: how far one run's ratio can be trusted.
        let b_index = options.impls.iter().position(|&i| i == Impl::RawQuorum);
        let spread = |s: &[Sample]| {
            let Some(b) = b_index else {
                return "-".to_owned();
            };
            let ratios: Vec<f64> = s
                .iter()
                .zip(&samples[b])
                .map(|(x, b)| x.rate() / b.rate())
                .collect();
            let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let high = ratios.iter().copied().fold(0.0, f64::max);
            format!("{low:.2}-{high:.2}")
        };
        for (i, &implementation) in options.impls.iter().enumerate() {
            let s = &samples[i];
            let rate = median_by(s, Sample::rate);
            let cpu = median_by(s, Sample::cpu_us_per_cycle);
            let errors: u64 = s.iter().map(|x| x.errors).sum();
            let leftover: usize = s.iter().map(|x| x.leftover).sum();
            if leftover > 0 {
                failures += 1;
            }
            println!(
                "  {:<18}{:>11.0}{:>9.0}{:>9.0}{:>9.0}{:>8}{:>8}{:>12}{:>11.1}{:>9}{:>11}{:>11.1}{:>9.1}{:>7}{:>6}",
                implementation.name(),
                rate,
                median_by(s, |x| f64::from(x.percentile(50.0))),
                median_by(s, |x| f64::from(x.percentile(99.0))),
                median_by(s, |x| f64::from(x.percentile(100.0))),
                ratio(rate, base_a),
                ratio(rate, base_b),
                spread(s),
                cpu,
                ratio(cpu, cpu_a),
                fixed(median_by(s, Sample::masters_us_per_cycle)),
                median_by(s, Sample::allocations_per_cycle),
                s.iter().map(|x| x.maxrss_kb).max().unwrap_or(0) as f64 / 1024.0,
                errors,
                leftover
            );
        }
        if scenario.resources > 1 {
            println!(
                "  cost of {} resources vs 1 (R={} over R=1, each repetition measured back to back; median and range):",
                scenario.resources, scenario.resources
            );
            println!(
                "    {:<18}{:>19}{:>21}{:>21}",
                "", "time per cycle", "client CPU/cycle", "masters' CPU/cycle"
            );
            for (i, &implementation) in options.impls.iter().enumerate() {
                let paired_ratio = |f: fn(&Sample) -> f64| {
                    let mut ratios: Vec<f64> = paired[i]
                        .iter()
                        .zip(&samples[i])
                        .map(|(one, many)| f(many) / f(one))
                        .filter(|ratio| ratio.is_finite())
                        .collect();
                    if ratios.is_empty() {
                        return "-".to_owned();
                    }
                    ratios.sort_by(f64::total_cmp);
                    format!(
                        "{:.2} ({:.2}-{:.2})",
                        ratios[ratios.len() / 2],
                        ratios[0],
                        ratios[ratios.len() - 1]
                    )
                };
                println!(
                    "    {:<18}{:>19}{:>21}{:>21}",
                    implementation.name(),
                    paired_ratio(|x| 1.0 / x.rate()),
                    paired_ratio(Sample::cpu_us_per_cycle),
                    paired_ratio(Sample::masters_us_per_cycle)
                );
            }
        }
    }
    if let Err(error) = fs::write(&options.json, json) {
        eprintln!("cannot write {}: {error}", options.json);
    } else {
        println!("\nJSON lines: {}", options.json);
    }
    if failures > 0 {
        eprintln!("lock keys were left behind");
        std::process::exit(1);
    }
}
