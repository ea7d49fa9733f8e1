//! Fault injection over the real `xsh` binary: every multi-file certificate change (Server Upload,
//! Client Upload, AlsoAsClient, Server Reset, the first start, the single-store upgrade) is killed
//! at each of its file system calls on the ROOT (`strace -e inject=SYSCALL:signal=KILL:when=N`,
//! the calls found by tracing one clean run), and after each kill:
//!
//! * both stores load through the project's reader (`load_pair`) with key matching certificate,
//!   and `xagent --check` builds (on a root that was prepared before the change);
//! * the next `xsh` start completes or rolls back what was cut off: no intent is left, the files
//!   on disk form matching pairs (public key of the key file = the certificate's), and the pair is
//!   the one readers saw before the recovery (old stays old, a committed new one becomes durable);
//! * the audit log says what happened: an applied record for a change that landed, none or a
//!   rolled-back marker for one that did not;
//! * `xagent --check` passes and the agent starts (`xagent: ready`).
//!
//! The count of kill points per operation is printed (and recorded in RELIABILITY.md).

#[path = "common/mod.rs"]
mod common;
#[path = "crash_support/mod.rs"]
mod crash_support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crash_support::*;
use serde_json::Value;
use xsh::certs::pki::{LeafEku, LeafSpec, TestCa};

const ROLLED_BACK: &str = "rolled back: the certificate change did not land";

/// The file system calls a kill may hit (everything that names a path or an fd).
const TRACE: &str = "trace=%file,%desc,fsync,fdatasync";
/// One multi-file operation under test.
struct Op {
    name: &'static str,
    /// The ROOT as it is before the operation.
    base: PathBuf,
    /// The `xsh -c` command that makes the change.
    cmd: String,
    /// Audit path of the change's record; `None` for the first start (not audited).
    audit_path: Option<&'static str>,
    /// The root is prepared before the change (else the first start or the upgrade).
    prepared: bool,
    /// Files the change removes (a pending CSR it completes): gone exactly when it landed.
    removes: &'static [&'static str],
}

/// A prepared root with its own ports and CA 1 trusted; the upload files beside it.
fn prepared_base(work: &Path) -> PathBuf {
    let base = work.join("base");
    xsh_ok(
        &base,
        &format!("xConfiguration SIP TLS Port: {}", free_port()),
    );
    xsh_ok(
        &base,
        &format!("xConfiguration Tunnel Port: {}", free_port()),
    );
    let ca = TestCa::private_ca1().unwrap();
    let ca_file = work.join("upload-ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    xsh_ok(
        &base,
        &format!(
            "xCommand Security Certificates CA Add File: \"{}\"",
            ca_file.display()
        ),
    );
    base
}

fn upload_files(work: &Path, cn: &str, eku: LeafEku) -> (PathBuf, PathBuf, Vec<u8>) {
    let ca = TestCa::private_ca1().unwrap();
    let l = ca.issue(&LeafSpec::new(cn, eku)).unwrap();
    let (c, k) = (
        work.join(format!("upload-{cn}.pem")),
        work.join(format!("upload-{cn}.key")),
    );
    std::fs::write(&c, &l.chain_pem).unwrap();
    std::fs::write(&k, &l.key_pem).unwrap();
    (c, k, leaf_der(l.cert_pem.as_bytes()).unwrap())
}

/// Traces one clean run; returns the kill points: (syscall, its ordinal among that syscall's
/// calls) for each call that touched the ROOT.
fn kill_points(op: &Op, run: &Path) -> Vec<(String, usize)> {
    copy_tree(&op.base, run);
    let trace = run.with_extension("trace");
    let st = Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", TRACE, "-o"])
        .arg(&trace)
        .arg(XSH)
        .arg("--root")
        .arg(run)
        .args(["--no-banner", "-c", &op.cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{}: the clean run failed", op.name);
    let text = std::fs::read_to_string(&trace).unwrap();
    let root = run.display().to_string();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut points = Vec::new();
    for line in text.lines() {
        // `PID name(args) = ret` (the pid padded to 5 columns); a resumed call was counted
        // where it started.
        let Some(call) = line.split_once(' ').map(|(_, c)| c.trim_start()) else {
            continue;
        };
        if call.starts_with("<...") || call.starts_with("+++") || call.starts_with("---") {
            continue;
        }
        let Some(name) = call
            .split('(')
            .next()
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        else {
            continue;
        };
        let n = seen.entry(name.to_string()).or_insert(0);
        *n += 1;
        let touches = [format!("{root}/"), format!("{root}>"), format!("{root}\"")]
            .iter()
            .any(|p| call.contains(p.as_str()));
        if touches && name != "execve" {
            points.push((name.to_string(), *n));
        }
    }
    let _ = std::fs::remove_file(&trace);
    points
}

/// Kills the operation at every point and checks the invariants; returns a summary line.
fn run_op(op: &Op, work: &Path) -> String {
    let run = work.join("run");
    let points = kill_points(op, &run);
    assert!(!points.is_empty(), "{}: no kill points traced", op.name);
    let before = if op.prepared {
        let [s, c] = stores_on_disk(&op.base, "base");
        [Some(s), Some(c)]
    } else {
        [None, None]
    };
    let (mut killed, mut landed, mut kept) = (0, 0, 0);
    let mut by_call: BTreeMap<&str, usize> = BTreeMap::new();
    for (call, n) in &points {
        *by_call.entry(call.as_str()).or_insert(0) += 1;
        let ctx = format!("{}: kill at {call} #{n}", op.name);
        copy_tree(&op.base, &run);
        let st = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("trace={call}"))
            .arg("-e")
            .arg(format!("inject={call}:signal=KILL:when={n}"))
            .arg(XSH)
            .arg("--root")
            .arg(&run)
            .args(["--no-banner", "-c", &op.cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if st.signal() == Some(9) || st.code() == Some(128 + 9) {
            killed += 1;
        }
        // Readers see whole pairs before anybody recovers.
        let seen = stores_through_reader(&run, &ctx);
        if op.prepared {
            let (ok, out) = check(&run);
            assert!(ok, "{ctx}: xagent --check before the recovery: {out}");
        }
        // The next start completes or rolls back.
        let o = xsh(&run, "xStatus SystemUnit Product");
        assert!(
            o.status.success(),
            "{ctx}: the next start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !run.join("certs/.intent").exists(),
            "{ctx}: the intent was left"
        );
        let after = stores_on_disk(&run, &ctx);
        for i in 0..2 {
            if let Some(s) = &seen[i] {
                assert_eq!(s, &after[i], "{ctx}: store {i} changed in the recovery");
            }
        }
        let changed = after
            .iter()
            .zip(&before)
            .any(|(a, b)| b.as_ref() != Some(a));
        if changed {
            landed += 1;
        } else {
            kept += 1;
        }
        if let Some(path) = op.audit_path {
            check_audit(&run, path, changed, &ctx);
        }
        for f in op.removes {
            assert_eq!(
                run.join("certs").join(f).exists(),
                !changed,
                "{ctx}: {f} is not as the change left the stores"
            );
        }
        let (ok, out) = check(&run);
        assert!(ok, "{ctx}: xagent --check after the recovery: {out}");
        if let Err(out) = agent_starts(&run) {
            panic!("{ctx}: the agent does not start: {out}");
        }
    }
    let calls: Vec<String> = by_call.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let line = format!(
        "crash_certs: {}: {} kill points ({}), {killed} killed, new state after {landed}, old state after {kept}",
        op.name,
        points.len(),
        calls.join(", ")
    );
    say(&line);
    // Tracing is deterministic here (one thread, same paths): every point is reached.
    assert!(
        killed * 100 >= points.len() * 95,
        "{}: only {killed} of {} kill points were reached",
        op.name,
        points.len()
    );
    line
}

/// The audit log agrees with the files: one applied record for a change that landed, none (or
/// one marked rolled back) for one that did not.
fn check_audit(root: &Path, path: &str, changed: bool, ctx: &str) {
    let recs = audit(root);
    let rolled: Vec<&str> = recs
        .iter()
        .filter(|r| r["result"] == ROLLED_BACK)
        .filter_map(|r| r["change"].as_str())
        .collect();
    let live: Vec<&Value> = recs
        .iter()
        .filter(|r| r["path"] == path)
        .filter(|r| {
            r["result"]
                .as_str()
                .is_some_and(|s| s.starts_with("applied"))
        })
        .filter(|r| !r["change"].as_str().is_some_and(|c| rolled.contains(&c)))
        .collect();
    if changed {
        assert_eq!(
            live.len(),
            1,
            "{ctx}: the change landed; its audit records: {recs:?}"
        );
    } else {
        assert_eq!(
            live.len(),
            0,
            "{ctx}: the change did not land but is audited as applied: {recs:?}"
        );
    }
}

fn have_strace() -> bool {
    common::require_tool("strace", "-V", "strace")
}

fn prepared_op(name: &'static str, work: &Path, cmd: String, audit_path: &'static str) -> Op {
    Op {
        name,
        base: work.join("base"),
        cmd,
        audit_path: Some(audit_path),
        prepared: true,
        removes: &[],
    }
}

#[test]
fn server_upload_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    prepared_base(d.path());
    let (c, k, _) = upload_files(d.path(), "crash-server.example", LeafEku::Both);
    let cmd = format!(
        "xCommand Security Certificates Server Upload CertificateFile: \"{}\" KeyFile: \"{}\"",
        c.display(),
        k.display()
    );
    let op = prepared_op(
        "Server Upload",
        d.path(),
        cmd,
        "Security Certificates Server Upload",
    );
    run_op(&op, d.path());
}

#[test]
fn client_upload_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    prepared_base(d.path());
    let (c, k, _) = upload_files(d.path(), "crash-client.example", LeafEku::ClientAuth);
    let cmd = format!(
        "xCommand Security Certificates Client Upload CertificateFile: \"{}\" KeyFile: \"{}\"",
        c.display(),
        k.display()
    );
    let op = prepared_op(
        "Client Upload",
        d.path(),
        cmd,
        "Security Certificates Client Upload",
    );
    run_op(&op, d.path());
}

#[test]
fn also_as_client_upload_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    prepared_base(d.path());
    let (c, k, _) = upload_files(d.path(), "crash-both.example", LeafEku::Both);
    let cmd = format!(
        "xCommand Security Certificates Server Upload CertificateFile: \"{}\" KeyFile: \"{}\" AlsoAsClient: True",
        c.display(),
        k.display()
    );
    let op = prepared_op(
        "Server Upload AlsoAsClient",
        d.path(),
        cmd,
        "Security Certificates Server Upload",
    );
    run_op(&op, d.path());
}

/// The certificate issued for a pending request, uploaded without a key: the pair and the
/// removal of the request's two files are one change.
#[test]
fn upload_completing_a_request_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = prepared_base(d.path());
    xsh_ok(
        &base,
        "xCommand Security Certificates CSR Generate Store: Client CommonName: crash-csr.example",
    );
    let csr = std::fs::read_to_string(base.join("certs/generated_csr/client.csr")).unwrap();
    let ca = TestCa::private_ca1().unwrap();
    let key = rcgen::KeyPair::from_pem(ca.root_key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca.root_pem(), key).unwrap();
    let signed = rcgen::CertificateSigningRequestParams::from_pem(&csr)
        .unwrap()
        .signed_by(&issuer)
        .unwrap()
        .pem();
    let cert = d.path().join("upload-signed.pem");
    std::fs::write(&cert, signed).unwrap();
    let mut op = prepared_op(
        "Client Upload completing a CSR",
        d.path(),
        format!(
            "xCommand Security Certificates Client Upload CertificateFile: \"{}\"",
            cert.display()
        ),
        "Security Certificates Client Upload",
    );
    op.removes = &[
        "generated_csr/client.csr",
        "generated_csr/client-privkey.pem",
    ];
    run_op(&op, d.path());
}

#[test]
fn server_reset_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    prepared_base(d.path());
    let op = prepared_op(
        "Server Reset",
        d.path(),
        "xCommand Security Certificates Server Reset".into(),
        "Security Certificates Server Reset",
    );
    run_op(&op, d.path());
}

#[test]
fn first_start_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = prepared_base(d.path());
    // A root whose configuration exists (the ports) but whose certificates were never made.
    std::fs::remove_dir_all(base.join("certs")).unwrap();
    let op = Op {
        name: "first start",
        base,
        cmd: "xStatus SystemUnit Product".into(),
        audit_path: None,
        prepared: false,
        removes: &[],
    };
    run_op(&op, d.path());
}

#[test]
fn single_store_upgrade_survives_a_kill_at_every_call() {
    if !have_strace() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = prepared_base(d.path());
    let certs = base.join("certs");
    for f in ["client.pem", "clientprivkey.pem", "ca.pem"] {
        std::fs::remove_file(certs.join(f)).unwrap();
    }
    std::fs::write(certs.join("server-ssh.pem"), "ssh material\n").unwrap();
    let op = Op {
        name: "single-store upgrade",
        base: base.clone(),
        cmd: "xStatus SystemUnit Product".into(),
        audit_path: Some("Security Certificates Migration"),
        prepared: false,
        removes: &[],
    };
    run_op(&op, d.path());
}
