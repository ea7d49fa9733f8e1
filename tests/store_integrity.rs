//! Integrity of the configuration store, on the real `xsh` binary: dump round trips, XML dumps
//! against the committed XSDs (xmllint) and Python's parser, parallel writers (no lost update),
//! SIGKILL at random moments (the file always loads and holds every acknowledged change),
//! hand-edited files with a bad line, exit status and `--stop-on-error`.
//!
//! Nothing here asserts on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use xsh::store::{AuditRecord, Config};

const XSH: &str = env!("CARGO_BIN_EXE_xsh");

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn xsh(root: &Path) -> Command {
    let mut c = Command::new(XSH);
    c.arg("--root").arg(root);
    c.env_remove("XSH_NO_GROUP_COMMIT")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .env_remove("XSH_ROOT");
    c
}

/// Runs `xsh --root ROOT ARGS` with `input` on stdin.
fn run(root: &Path, args: &[&str], input: &str) -> Output {
    run_chunked(root, args, input, usize::MAX)
}

/// Like [`run`], writing stdin in pieces of `chunk` bytes so the shell sees several batches.
fn run_chunked(root: &Path, args: &[&str], input: &str, chunk: usize) -> Output {
    let mut child = xsh(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xsh");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        for piece in input.as_bytes().chunks(chunk.max(1)) {
            if stdin.write_all(piece).and_then(|_| stdin.flush()).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("wait xsh");
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Prepares a root (default certificate, stores) so parallel tests do not race on that.
fn fresh_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["-c", "xConfiguration SIP TLS Port"], "");
    assert!(o.status.success(), "preparing root: {o:?}");
    d
}

fn xconf_text(root: &Path) -> String {
    std::fs::read_to_string(root.join("config/xconf.txt")).unwrap_or_default()
}

/// Loads `xconf.txt` and insists that it loads without problems.
fn load_clean(root: &Path) -> Config {
    let text = xconf_text(root);
    let c = Config::from_text(&text);
    assert!(
        c.problems.is_empty(),
        "xconf.txt has problems {:?}:\n{text}",
        c.problems
    );
    c
}

/// The stored values by their path words (`Zones Zone 3 Name` -> value).
fn values_by_words(c: &Config) -> BTreeMap<String, String> {
    let tree = &xsh::schema::schema().config;
    c.values
        .iter()
        .map(|(k, v)| (k.words(tree), v.clone()))
        .collect()
}

fn audit(root: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(root.join("config/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

fn dump_config(root: &Path, fmt: &str) -> String {
    let o = run(root, &["--dump-config", fmt], "");
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

fn dump_status(root: &Path, fmt: &str) -> String {
    let o = run(root, &["--dump-status", fmt], "");
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

fn count_ok(s: &str) -> usize {
    s.lines().filter(|l| *l == "OK").count()
}

// ---------------------------------------------------------------------------------------------
// XSD files

#[test]
fn committed_xsds_equal_the_generated_ones() {
    for (which, file) in [
        ("config", "xconf/xconf_dump.xsd"),
        ("status", "xconf/xstat_dump.xsd"),
    ] {
        let o = Command::new(XSH)
            .args(["--print-xsd", which])
            .output()
            .unwrap();
        assert!(o.status.success());
        let generated = stdout(&o);
        let path = manifest(file);
        if std::env::var_os("XSH_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{file} is not what `xsh --print-xsd {which}` prints; the schema changed. Regenerate: \
             cargo run --bin xsh -- --print-xsd {which} > {file}  (or XSH_BLESS=1 cargo test --test store_integrity)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dump round trip

const TRICKY: &str = r#"a "quoted" word, a back\slash, two  spaces and \"both\""#;
/// Within the 50 characters of a zone name.
const TRICKY_SHORT: &str = r#"z "q" back\slash  two spaces \"both\""#;

fn configure_several(root: &Path) {
    let esc = TRICKY.replace('\\', "\\\\").replace('"', "\\\"");
    let esc_short = TRICKY_SHORT.replace('\\', "\\\\").replace('"', "\\\"");
    let push = format!(
        "xConfiguration SystemUnit Name: \"edge-1\"\n\
         xConfiguration SystemUnit Description: \"{esc}\"\n\
         xConfiguration SIP TLS Port: 5062\n\
         xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode: Off\n\
         xConfiguration Logging Level: Debug\n\
         xConfiguration Zones Zone 1 Name: \"first zone\"\n\
         xConfiguration Zones Zone 1 Type: TraversalClient\n\
         xConfiguration Zones Zone 1 TraversalClient Peer 1 Address: \"peer.example.com\"\n\
         xConfiguration Zones Zone 1 TraversalClient SIP Port: 5071\n\
         xConfiguration Zones Zone 7 Neighbor SIP TLS Verify Subject Name: \"sip.example.com\"\n\
         xConfiguration Zones Zone 1000 Name: \"{esc_short}\"\n\
         xConfiguration Zones Zone 1000 Neighbor SIP TLS Verify Mode: Off\n"
    );
    let o = run(root, &["--no-banner"], &push);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(count_ok(&stdout(&o)), 12, "{}", stdout(&o));
}

#[test]
fn txt_dump_restores_exactly_that_configuration() {
    let a = fresh_root();
    configure_several(a.path());
    let dump_a = dump_config(a.path(), "txt");
    assert!(dump_a.contains("*c xConfiguration Zones Zone 1000 Name: "));
    assert!(dump_a.contains("*c xConfiguration SIP TLS Port: \"5062\""));
    // Defaults are in the dump too.
    assert!(dump_a.contains("*c xConfiguration Tunnel Port: \"2222\""));

    let b = fresh_root();
    let o = run(b.path(), &["--no-banner"], &dump_a);
    assert!(o.status.success(), "restore failed:\n{}", stdout(&o));
    assert_eq!(count_ok(&stdout(&o)), dump_a.lines().count());
    let dump_b = dump_config(b.path(), "txt");
    assert_eq!(dump_a, dump_b);

    let va = values_by_words(&load_clean(a.path()));
    let vb = values_by_words(&load_clean(b.path()));
    assert_eq!(va, vb);
    assert_eq!(va["SystemUnit Description"], TRICKY);
    assert_eq!(va["Zones Zone 1000 Name"], TRICKY_SHORT);
    assert_eq!(va.len(), 12);

    // Restoring the same dump again changes nothing: no new generation, no audit record.
    let gen = load_clean(b.path()).generation;
    let n_audit = audit(b.path()).len();
    let o = run(b.path(), &["--no-banner"], &dump_a);
    assert!(o.status.success());
    assert_eq!(load_clean(b.path()).generation, gen);
    assert_eq!(audit(b.path()).len(), n_audit);
}

// ---------------------------------------------------------------------------------------------
// XML dumps

fn need_tool(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is required (apt-get install libxml2-utils python3; .ci/run does)"
    );
}

fn validate_xml(file: &Path, xsd: &str) {
    need_tool("xmllint");
    need_tool("python3");
    let o = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(manifest(xsd))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xmllint --schema {xsd} {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("python3")
        .args([
            "-c",
            "import xml.etree.ElementTree as E,sys; E.parse(sys.argv[1])",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python xml.etree on {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn check_xml_dumps(root: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.xml");
    std::fs::write(&cfg, dump_config(root, "xml")).unwrap();
    validate_xml(&cfg, "xconf/xconf_dump.xsd");
    let st = dir.path().join("status.xml");
    std::fs::write(&st, dump_status(root, "xml")).unwrap();
    validate_xml(&st, "xconf/xstat_dump.xsd");

    // The files written by the shell command.
    let folder = dir.path().join("dumps");
    let o = run(
        root,
        &[
            "-c",
            &format!("xCommand SystemUnit Dump Folder: \"{}\"", folder.display()),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let mut seen = BTreeSet::new();
    for e in std::fs::read_dir(&folder).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = if name.starts_with("xconf_dump_") {
            "xconf"
        } else if name.starts_with("xstat_dump_") {
            "xstat"
        } else {
            panic!("unexpected file {name}");
        };
        let ext = p.extension().unwrap().to_string_lossy().into_owned();
        seen.insert(format!("{kind}.{ext}"));
        if ext == "xml" {
            validate_xml(&p, &format!("xconf/{kind}_dump.xsd"));
        } else {
            let text = std::fs::read_to_string(&p).unwrap();
            if kind == "xconf" {
                assert_eq!(text, dump_config(root, "txt"));
            }
        }
    }
    let want: BTreeSet<String> = ["xconf.txt", "xconf.xml", "xstat.txt", "xstat.xml"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn xml_dumps_validate_against_the_xsd() {
    let r = fresh_root();
    check_xml_dumps(r.path());
    configure_several(r.path());
    let xml = dump_config(r.path(), "xml");
    assert!(xml.contains("item=\"1000\""));
    check_xml_dumps(r.path());
}

#[test]
fn xml_dumps_validate_with_1000_zones() {
    let r = fresh_root();
    let mut push = String::new();
    for z in 1..=1000 {
        push.push_str(&format!(
            "xConfiguration Zones Zone {z} Name: \"zone <{z}> & 'co' \\\"x\\\"\"\n\
             xConfiguration Zones Zone {z} Type: TraversalServer\n\
             xConfiguration Zones Zone {z} Neighbor Peer 1 Address: \"10.0.{}.{}\"\n\
             xConfiguration Zones Zone {z} Neighbor SIP Port: {}\n\
             xConfiguration Zones Zone {z} Neighbor Tunnel Port: {}\n\
             xConfiguration Zones Zone {z} Neighbor SIP TLS Verify Mode: Off\n\
             xConfiguration Zones Zone {z} Neighbor SIP TLS Verify Subject Name: \"peer{z}.example.com\"\n",
            z / 256,
            z % 256,
            6000 + z,
            7000 + z
        ));
    }
    let o = run(r.path(), &["--no-banner"], &push);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(count_ok(&stdout(&o)), 7000);
    let c = load_clean(r.path());
    assert_eq!(c.values.len(), 7000);
    let xml = dump_config(r.path(), "xml");
    assert_eq!(xml.matches("<Zone item=").count(), 1000);
    check_xml_dumps(r.path());
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// The 500 sets of process `p`: four leaves of 125 zones of its own.
fn sets_of(p: usize) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for i in 0..125 {
        let z = p * 125 + i + 1;
        v.push((format!("Zones Zone {z} Name"), format!("p{p} zone {z}")));
        v.push((
            format!("Zones Zone {z} Neighbor Peer 1 Address"),
            format!("h{p}-{z}.example.com"),
        ));
        v.push((
            format!("Zones Zone {z} Neighbor SIP Port"),
            format!("{}", 10000 + z),
        ));
        v.push((
            format!("Zones Zone {z} Neighbor SIP TLS Verify Subject Name"),
            format!("s{z}"),
        ));
    }
    v
}

fn set_line(words: &str, value: &str) -> String {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        format!("xConfiguration {words}: {value}")
    } else {
        format!("xConfiguration {words}: \"{value}\"")
    }
}

/// Checks the audit log of a root where every change was a distinct leaf set once: one record per
/// change, generations contiguous and never decreasing in log order, the last one current.
fn check_audit(root: &Path, expected: &BTreeMap<String, String>) -> u64 {
    let cfg = load_clean(root);
    let recs: Vec<AuditRecord> = audit(root)
        .into_iter()
        .filter(|r| r.result == "applied" && r.path.starts_with("Zones"))
        .collect();
    assert_eq!(recs.len(), expected.len(), "one audit record per change");
    let mut last = 0;
    let mut gens = BTreeSet::new();
    for r in &recs {
        assert!(
            r.generation >= last,
            "generation went back in the audit log"
        );
        last = r.generation;
        gens.insert(r.generation);
        assert_eq!(expected.get(&r.path), Some(&r.new), "audit record {r:?}");
    }
    let paths: BTreeSet<&String> = recs.iter().map(|r| &r.path).collect();
    assert_eq!(paths.len(), recs.len(), "a change recorded twice");
    // Every transaction that changed something took the next generation.
    assert_eq!(gens.len() as u64, cfg.generation);
    assert_eq!(
        gens.iter().copied().collect::<Vec<_>>(),
        (1..=cfg.generation).collect::<Vec<_>>()
    );
    cfg.generation
}

#[test]
fn parallel_pushes_lose_no_update() {
    let r = fresh_root();
    let root = r.path().to_path_buf();
    let handles: Vec<_> = (0..8)
        .map(|p| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut push = String::new();
                for (w, v) in sets_of(p) {
                    push.push_str(&set_line(&w, &v));
                    push.push('\n');
                }
                let o = run_chunked(&root, &["--no-banner"], &push, 1500);
                (o.status.success(), count_ok(&stdout(&o)), stdout(&o))
            })
        })
        .collect();
    for h in handles {
        let (ok, oks, text) = h.join().unwrap();
        assert!(ok, "{text}");
        assert_eq!(oks, 500, "every set acknowledged");
    }
    let expected: BTreeMap<String, String> = (0..8).flat_map(sets_of).collect();
    assert_eq!(expected.len(), 4000);
    let got = values_by_words(&load_clean(&root));
    assert_eq!(got, expected, "an acknowledged update was lost");
    let generation = check_audit(&root, &expected);
    assert!(generation >= 8, "at least one transaction per process");
}

#[test]
fn parallel_single_command_processes_lose_no_update() {
    let r = fresh_root();
    let root = r.path().to_path_buf();
    let per = 25;
    let handles: Vec<_> = (0..8)
        .map(|p| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for (w, v) in sets_of(p).into_iter().take(per) {
                    let o = run(&root, &["-c", &set_line(&w, &v)], "");
                    assert!(o.status.success(), "{}", stdout(&o));
                    assert_eq!(stdout(&o), "OK\n");
                    acked.push((w, v));
                }
                acked
            })
        })
        .collect();
    let mut expected = BTreeMap::new();
    for h in handles {
        expected.extend(h.join().unwrap());
    }
    assert_eq!(expected.len(), 8 * per);
    assert_eq!(values_by_words(&load_clean(&root)), expected);
    // One change per process run: the generation counts them exactly.
    assert_eq!(check_audit(&root, &expected), (8 * per) as u64);
}

/// Eight first starts on an empty root at once: one default key pair (the certificate matches
/// its key, and the client store is a copy of it), one migration record, no lost set.
#[test]
fn parallel_first_starts_prepare_the_root_once() {
    need_tool("openssl");
    for _ in 0..3 {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let handles: Vec<_> = (1..=8)
            .map(|p| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let line = format!("xConfiguration Zones Zone {p} Name: \"p{p}\"");
                    run(&root, &["-c", &line], "").status.success()
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        assert_eq!(load_clean(&root).values.len(), 8);
        let pubkey = |args: &[&str], file: &str| {
            let o = Command::new("openssl")
                .args(args)
                .arg(root.join("certs").join(file))
                .output()
                .unwrap();
            assert!(o.status.success(), "openssl {args:?} {file}");
            o.stdout
        };
        let cert = pubkey(&["x509", "-noout", "-pubkey", "-in"], "server.pem");
        assert_eq!(cert, pubkey(&["pkey", "-pubout", "-in"], "privkey.pem"));
        assert_eq!(
            cert,
            pubkey(&["x509", "-noout", "-pubkey", "-in"], "client.pem")
        );
        assert_eq!(
            cert,
            pubkey(&["pkey", "-pubout", "-in"], "clientprivkey.pem")
        );
        let migrations = audit(&root)
            .iter()
            .filter(|r| r.path == "Security Certificates Migration")
            .count();
        assert!(migrations <= 1, "{migrations} migration records");
    }
}

// ---------------------------------------------------------------------------------------------
// Crash

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn sigkill_at_random_moments_keeps_every_acknowledged_change() {
    let seed = std::env::var("XSH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (XSH_CRASH_SEED={seed} to repeat)");
    let mut rng = Rng(seed);
    let r = fresh_root();
    let root = r.path();
    let mut prev_generation = 0;
    let rounds = 30;
    for round in 0..rounds {
        let group = round % 3 == 2;
        let n = 300usize;
        let lines: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    format!("Zones Zone {} Name", i + 1),
                    format!("r{round} n{i}"),
                )
            })
            .collect();
        let push: Vec<String> = lines.iter().map(|(w, v)| set_line(w, v) + "\n").collect();
        let mut cmd = xsh(root);
        cmd.arg("--no-banner");
        if !group {
            cmd.arg("--no-group-commit");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The writer keeps only a few lines in flight, so batches stay small, commits are many
        // and the kill can land anywhere in the push.
        let acked_shared = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let window = 1 + rng.below(24) as usize;
        let writer = {
            let acked = acked_shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for (i, l) in push.iter().enumerate() {
                    while i >= acked.load(Ordering::Acquire) + window {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        std::thread::yield_now();
                    }
                    if stdin
                        .write_all(l.as_bytes())
                        .and_then(|_| stdin.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        let k = 1 + rng.below(n as u64) as usize;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut acked = 0usize;
        let mut line = String::new();
        while acked < k {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            assert_eq!(line, "OK\n", "round {round}");
            acked += 1;
            acked_shared.store(acked, Ordering::Release);
        }
        // A random moment after the K-th acknowledgement.
        let spin = rng.below(3000);
        let t = std::time::Instant::now();
        while t.elapsed().as_micros() < spin as u128 {
            std::hint::spin_loop();
        }
        let _ = child.kill(); // SIGKILL
        stop.store(true, Ordering::Release);
        // Replies that were already written before the kill are acknowledgements too.
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        acked += count_ok(&rest);
        let _ = child.wait();
        writer.join().unwrap();

        let cfg = load_clean(root);
        let got = values_by_words(&cfg);
        for (w, v) in lines.iter().take(acked) {
            assert_eq!(
                got.get(w),
                Some(v),
                "round {round} (seed {seed}): acknowledged set of {w} lost after SIGKILL ({acked} acked)"
            );
        }
        assert!(cfg.generation >= prev_generation, "generation went back");
        if !group {
            // One transaction per acknowledged set at least.
            assert!(cfg.generation >= prev_generation + acked as u64);
        }
        prev_generation = cfg.generation;
    }
    // The root still works after all that.
    let o = run(root, &["-c", "xConfiguration SIP TLS Port: 5099"], "");
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(values_by_words(&load_clean(root))["SIP TLS Port"], "5099");
}

// ---------------------------------------------------------------------------------------------
// Hand-edited file

#[test]
fn hand_edited_bad_line_is_reported_and_kept() {
    let r = fresh_root();
    let root = r.path();
    let bad = "xConfiguration SIP TLS Portt: 5070   # typo";
    std::fs::write(
        root.join("config/xconf.txt"),
        format!(
            "# generation: 5\n\
             xConfiguration SystemUnit Name: \"hand\"\n\
             \n\
             {bad}\n\
             xConfiguration Zones Zone 3 Name: \"z3\"\n"
        ),
    )
    .unwrap();
    let o = run(root, &[], "xConfiguration SIP TLS Port: 5080\n");
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("*w xconf.txt line 4: ignored:")),
        "banner does not report line 4:\n{text}"
    );
    // The other lines loaded...
    let dump = dump_config(root, "txt");
    assert!(dump.contains("*c xConfiguration SystemUnit Name: \"hand\""));
    assert!(dump.contains("*c xConfiguration Zones Zone 3 Name: \"z3\""));
    assert!(dump.contains("*c xConfiguration SIP TLS Port: \"5080\""));
    // ... and the set kept the bad line verbatim.
    let after = xconf_text(root);
    assert!(after.lines().any(|l| l == bad), "bad line lost:\n{after}");
    let c = Config::from_text(&after);
    assert_eq!(c.generation, 6);
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.kept, vec![bad.to_string()]);
    let v = values_by_words(&c);
    assert_eq!(v["SystemUnit Name"], "hand");
    assert_eq!(v["Zones Zone 3 Name"], "z3");
    assert_eq!(v["SIP TLS Port"], "5080");
    // A second set keeps it too, still once.
    let o = run(root, &["-c", "xConfiguration Logging Level: Warn"], "");
    assert!(o.status.success());
    assert_eq!(xconf_text(root).matches(bad).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Exit status and --stop-on-error

const GOOD_A: &str = "xConfiguration SIP TLS Port: 5063";
const GOOD_B: &str = "xConfiguration Zones Zone 4 Name: \"four\"";
const BAD: &str = "xConfiguration SIP TLS Port: 70000";
const GOOD_C: &str = "xConfiguration Logging Level: Trace";

fn push_with_error() -> String {
    format!("{GOOD_A}\n{GOOD_B}\n{BAD}\n{GOOD_C}\n")
}

#[test]
fn exit_status_reflects_failures() {
    let r = fresh_root();
    let o = run(r.path(), &["--no-banner"], &format!("{GOOD_A}\n{GOOD_B}\n"));
    assert_eq!(o.status.code(), Some(0));
    let o = run(r.path(), &["-c", GOOD_C], "");
    assert_eq!(o.status.code(), Some(0));
    let o = run(r.path(), &["-c", BAD], "");
    assert_eq!(o.status.code(), Some(1));
    let o = run(r.path(), &["-c", "xConfiguration Nope: 1"], "");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn error_line_stores_nothing_and_the_session_goes_on() {
    for args in [&["--no-banner"][..], &["--no-banner", "--no-group-commit"]] {
        let r = fresh_root();
        let o = run(r.path(), args, &push_with_error());
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert_eq!(count_ok(&text), 3, "{text}");
        assert_eq!(text.lines().filter(|l| *l == "ERROR").count(), 1);
        let v = values_by_words(&load_clean(r.path()));
        assert_eq!(v.get("SIP TLS Port").map(String::as_str), Some("5063"));
        assert_eq!(v.get("Zones Zone 4 Name").map(String::as_str), Some("four"));
        assert_eq!(v.get("Logging Level").map(String::as_str), Some("Trace"));
        assert_eq!(v.len(), 3);
        assert!(!audit(r.path()).iter().any(|a| a.new == "70000"));
    }
}

#[test]
fn stop_on_error_stores_only_the_earlier_sets() {
    for args in [
        &["--no-banner", "--stop-on-error"][..],
        &["--no-banner", "--stop-on-error", "--no-group-commit"],
    ] {
        let r = fresh_root();
        let o = run(r.path(), args, &push_with_error());
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert_eq!(count_ok(&text), 2, "{text}");
        assert_eq!(text.lines().last(), Some("ERROR"), "{text}");
        let v = values_by_words(&load_clean(r.path()));
        assert_eq!(v.get("SIP TLS Port").map(String::as_str), Some("5063"));
        assert_eq!(v.get("Zones Zone 4 Name").map(String::as_str), Some("four"));
        assert!(
            !v.contains_key("Logging Level"),
            "a set after the error was stored"
        );
    }
    // The same through the environment switch for the baseline.
    let r = fresh_root();
    let o = xsh(r.path())
        .args(["--no-banner", "--stop-on-error"])
        .env("XSH_NO_GROUP_COMMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(push_with_error().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v = values_by_words(&load_clean(r.path()));
    assert_eq!(v.len(), 2);
}

#[test]
fn failed_batch_commit_fails_a_configuration_reset_too() {
    let r = fresh_root();
    let o = run(r.path(), &["-c", GOOD_A], "");
    assert!(o.status.success(), "{o:?}");
    // The audit log cannot be appended to: the batch's transaction fails after running.
    let log = r.path().join("config/audit.log");
    let _ = std::fs::remove_file(&log);
    std::fs::create_dir(&log).unwrap();
    let input = format!("{GOOD_C}\nxCommand Configuration Reset Path: \"SIP TLS Port\"\n");
    let o = run(r.path(), &["--no-banner"], &input);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_eq!(
        count_ok(&text),
        0,
        "a change that is not durable was acknowledged:\n{text}"
    );
    assert!(
        text.contains("ConfigurationResetResult (status=Error)"),
        "{text}"
    );
    assert!(xconf_text(r.path()).contains("5063"));
}
