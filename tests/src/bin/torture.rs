//! Jepsen-style torture run: C clients guard a non-atomic read-modify-write with
//! Redlock on N masters while a nemesis injects faults into a minority of them; the
//! recorded history is checked for overlapping validity windows, lost updates,
//! liveness gaps and leftover lock keys.
//!
//! ```text
//! cargo run -p redlock-tests --release --bin torture -- --duration 60s --nemesis all
//! ```
//!
//! Exits 0 when the checker finds no violation, 1 when it does (with
//! `--expect-violations`, the other way round), 2 on bad arguments.

use std::{
    collections::HashMap,
    env,
    io::{BufRead, BufReader},
    process::{Command, ExitCode, Stdio},
    sync::atomic::AtomicBool,
    thread,
    time::{Duration, Instant},
};

use redlock_tests::{
    Proxy, RedisServer, ServerOptions,
    torture::{
        check::{Report, check},
        client::{AdapterKind, ClientConfig, lock_key, run_clients, value_key},
        history::Cycle,
        nemesis::{self, Masters, Nemesis},
        now_ns,
    },
};

const USAGE: &str = "\
torture: Redlock under faults, checked

options:
  --clients C        concurrent clients (default 32)
  --processes P      spread the clients over P processes (default 1)
  --masters N        independent masters (default 5)
  --resources R      resources the clients share (default 4)
  --duration D       how long clients run, e.g. 60s, 500ms, 2m (default 30s)
  --ttl D            lock TTL (default 2s)
  --nemesis SET      all, none, or a list of: kill, kill-delayed, pause, client-kill,
                     latency, blackhole, reset (default all)
  --adapter A        redis-rs or fred (default redis-rs)
  --seed S           seed for clients and nemesis (default: from the clock)
  --broken-quorum    TEST ONLY: accept a single vote, to show the checker catches it
  --expect-violations  exit 0 only if violations were found (checker self-test)
";

#[derive(Debug, Clone)]
struct Options {
    clients: u32,
    processes: u32,
    masters: usize,
    resources: u32,
    duration: Duration,
    ttl: Duration,
    nemeses: Vec<Nemesis>,
    adapter: AdapterKind,
    seed: u64,
    broken_quorum: bool,
    expect_violations: bool,
    worker: Option<Worker>,
}

/// A child process running some of the clients.
#[derive(Debug, Clone)]
struct Worker {
    urls: Vec<String>,
    data_url: String,
    first_client: u32,
    until_ns: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {text:?} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        clients: 32,
        processes: 1,
        masters: 5,
        resources: 4,
        duration: Duration::from_secs(30),
        ttl: Duration::from_secs(2),
        nemeses: Nemesis::ALL.to_vec(),
        adapter: AdapterKind::RedisRs,
        seed: now_ns(),
        broken_quorum: false,
        expect_violations: false,
        worker: None,
    };
    let mut worker = Worker {
        urls: Vec::new(),
        data_url: String::new(),
        first_client: 0,
        until_ns: 0,
    };
    let mut is_worker = false;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("bad number {text:?}"))
        };
        match flag.as_str() {
            "--clients" => options.clients = number(value()?)? as u32,
            "--processes" => options.processes = (number(value()?)? as u32).max(1),
            "--masters" => options.masters = number(value()?)? as usize,
            "--resources" => options.resources = (number(value()?)? as u32).max(1),
            "--duration" => options.duration = parse_duration(&value()?)?,
            "--ttl" => options.ttl = parse_duration(&value()?)?,
            "--nemesis" => options.nemeses = Nemesis::parse_set(&value()?)?,
            "--adapter" => options.adapter = value()?.parse()?,
            "--seed" => options.seed = number(value()?)?,
            "--broken-quorum" => options.broken_quorum = true,
            "--expect-violations" => options.expect_violations = true,
            "--worker" => is_worker = true,
            "--urls" => worker.urls = value()?.split(',').map(String::from).collect(),
            "--data-url" => worker.data_url = value()?,
            "--first-client" => worker.first_client = number(value()?)? as u32,
            "--until-ns" => worker.until_ns = number(value()?)?,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if options.masters == 0 || options.clients == 0 {
        return Err("--masters and --clients must be at least 1".into());
    }
    if is_worker {
        options.worker = Some(worker);
    }
    Ok(options)
}

fn client_config(
    options: &Options,
    urls: Vec<String>,
    data_url: String,
    clients: u32,
    first: u32,
    until_ns: u64,
) -> ClientConfig {
    ClientConfig {
        urls,
        data_url,
        clients,
        first_client: first,
        resources: options.resources,
        ttl: options.ttl,
        until_ns,
        adapter: options.adapter,
        seed: options.seed,
        broken_quorum: options.broken_quorum,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> ExitCode {
    let options = match parse(env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("torture: {error}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(worker) = &options.worker {
        let config = client_config(
            &options,
            worker.urls.clone(),
            worker.data_url.clone(),
            options.clients,
            worker.first_client,
            worker.until_ns,
        );
        for cycle in runtime().block_on(run_clients(config)) {
            println!("{cycle}");
        }
        return ExitCode::SUCCESS;
    }
    match run(&options) {
        Ok(report) => {
            let found = report.violations() > 0;
            if options.expect_violations {
                println!(
                    "checker self-test: {}",
                    if found {
                        "violations found, as expected"
                    } else {
                        "NO violation found"
                    }
                );
                if found {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            } else if found {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("torture: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(options: &Options) -> Result<Report, String> {
    let kill = options
        .nemeses
        .iter()
        .any(|n| matches!(n, Nemesis::Kill | Nemesis::KillDelayed));
    let server_options = if kill {
        ServerOptions::default().aof()
    } else {
        ServerOptions::default()
    };
    let mut servers = Vec::new();
    for _ in 0..options.masters {
        servers
            .push(RedisServer::try_start_with(server_options.clone()).map_err(|e| e.to_string())?);
    }
    let proxies: Vec<Proxy> = servers
        .iter()
        .map(|server| Proxy::start(server.socket_addr()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let urls: Vec<String> = proxies.iter().map(Proxy::url).collect();
    let data = RedisServer::try_start_with(ServerOptions::default()).map_err(|e| e.to_string())?;
    let mut masters = Masters { servers, proxies };
    let max_faulty = (options.masters - 1) / 2;

    println!(
        "torture: {} clients in {} process(es), {} masters (through proxies), {} resources, ttl {:?}, {:?}, adapter {}, nemesis [{}], seed {}{}",
        options.clients,
        options.processes,
        options.masters,
        options.resources,
        options.ttl,
        options.duration,
        options.adapter.name(),
        options
            .nemeses
            .iter()
            .map(|n| n.name())
            .collect::<Vec<_>>()
            .join(","),
        options.seed,
        if options.broken_quorum {
            ", BROKEN QUORUM (test only)"
        } else {
            ""
        }
    );

    let start_ns = now_ns();
    let warmup = Duration::from_secs(1);
    let until_ns =
        start_ns + u64::try_from((warmup + options.duration).as_nanos()).unwrap_or(u64::MAX);
    let per_process = options.clients.div_ceil(options.processes);
    let mut children = Vec::new();
    let mut first = per_process;
    for _ in 1..options.processes {
        if first >= options.clients {
            break;
        }
        let count = per_process.min(options.clients - first);
        let child = Command::new(env::current_exe().map_err(|e| e.to_string())?)
            .args([
                "--worker",
                "--urls",
                &urls.join(","),
                "--data-url",
                &data.url(),
            ])
            .args([
                "--clients",
                &count.to_string(),
                "--first-client",
                &first.to_string(),
            ])
            .args([
                "--until-ns",
                &until_ns.to_string(),
                "--resources",
                &options.resources.to_string(),
            ])
            .args([
                "--ttl",
                &format!("{}ms", options.ttl.as_millis()),
                "--adapter",
                options.adapter.name(),
            ])
            .args(["--seed", &options.seed.to_string()])
            .args(options.broken_quorum.then_some("--broken-quorum"))
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning a worker: {e}"))?;
        children.push(child);
        first += count;
    }
    let own_clients = per_process.min(options.clients);
    let config = client_config(options, urls.clone(), data.url(), own_clients, 0, until_ns);

    let stop = AtomicBool::new(false);
    let (mut cycles, episodes) = thread::scope(|scope| {
        let nemesis = scope.spawn(|| {
            thread::sleep(warmup);
            let until = Instant::now() + options.duration;
            nemesis::run(
                &mut masters,
                &options.nemeses,
                max_faulty,
                options.ttl,
                options.seed,
                until,
                &stop,
            )
        });
        let cycles = runtime().block_on(run_clients(config));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (cycles, nemesis.join().expect("nemesis thread"))
    });
    for child in children {
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("a worker process failed: {}", output.status));
        }
        for line in BufReader::new(output.stdout.as_slice()).lines() {
            let line = line.map_err(|e| e.to_string())?;
            cycles.push(line.parse::<Cycle>()?);
        }
    }
    let end_ns = now_ns();
    masters.heal();

    // Every lock key must go: released keys at once, keys a fault kept at most a TTL
    // after the faults healed.
    let deadline = Instant::now() + options.ttl * 2 + Duration::from_secs(2);
    let leftover = loop {
        let keys: Vec<String> = masters
            .servers
            .iter()
            .flat_map(|server| {
                let keys: Vec<String> = server
                    .command(&["KEYS", "torture:lock:*"])
                    .unwrap_or_default();
                keys.into_iter()
                    .map(move |key| format!("{}: {key}", server.addr()))
            })
            .collect();
        if keys.is_empty() || Instant::now() > deadline {
            break keys;
        }
        thread::sleep(Duration::from_millis(50));
    };

    let mut final_values = HashMap::new();
    for resource in 0..options.resources {
        let value = data
            .get(&value_key(resource))
            .map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
            .unwrap_or(0);
        final_values.insert(resource, value);
    }
    let from = start_ns + u64::try_from(warmup.as_nanos()).unwrap_or(0);
    let bucket =
        u64::try_from((options.ttl.max(Duration::from_secs(1)) * 2).as_nanos()).unwrap_or(u64::MAX);
    let mut report = check(&cycles, &final_values, from, until_ns.min(end_ns), bucket);
    report.leftover_keys = leftover;

    println!("\nnemesis episodes: {}", episodes.len());
    let mut by_kind: HashMap<Nemesis, usize> = HashMap::new();
    for episode in &episodes {
        *by_kind.entry(episode.kind).or_default() += 1;
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort();
    for (kind, count) in kinds {
        println!("  {:<14}{count:>6}", kind.name());
    }
    println!("\n{report}");
    println!("lock key example: {}", lock_key(0));
    Ok(report)
}
