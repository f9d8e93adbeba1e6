//! The suite runs from wherever the repository is: a real CI case (`timeouts-set`) from a copy
//! of `tests/fidelity` and `tests/kernel-vm`, with the rvs binary beside them, all under a
//! /tmp folder whose path has spaces, and its output under /tmp too. host-run.sh gives each
//! run a private /tmp, which used to hide such a checkout and such an output folder.
//!
//! Needs root and network namespaces (the rvs side) and the kernel VM (the kernel side).
//! RVS_SKIP_NETNS=1 skips the test, RVS_SKIP_VM=1 only its kernel side; each skip is recorded
//! as the other tests' are (`rvs_fidelity::record_skip`). The copy is removed afterwards,
//! whatever happened.

use std::path::{Path, PathBuf};

use rvs_fidelity::runner::{self, SideKind};
use rvs_fidelity::{Setup, cases, known, report};

/// A folder removed (with everything in it) when dropped, also when the test panics.
struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `$var` asks to skip `what`; a skip is recorded (`SKIPPED:` line, `$RVS_SKIP_LOG`).
fn skip(what: &str, var: &str) -> bool {
    let asked = std::env::var(var).as_deref() == Ok("1");
    if asked {
        rvs_fidelity::record_skip(what, &format!("{var}=1"));
    }
    asked
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.expect("directory entry");
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dst);
        } else {
            // std::fs::copy keeps the permissions (the scripts stay executable).
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
        }
    }
}

#[test]
fn a_case_runs_from_a_checkout_under_tmp_with_spaces_in_its_path() {
    let name = "timeouts-set";
    if skip(&format!("{name} from /tmp"), "RVS_SKIP_NETNS") {
        return;
    }
    if let Some(why) = runner::host_unavailable() {
        panic!(
            "fidelity {name} from /tmp cannot run here: {why}. Run as root on a machine with \
             network namespaces and /dev/net/tun, or set RVS_SKIP_NETNS=1 to skip it"
        );
    }
    let with_vm = !skip(&format!("{name} from /tmp, kernel side"), "RVS_SKIP_VM");
    let root = runner::repo_root();
    let tmp = TempTree(PathBuf::from(format!(
        "/tmp/rvs fidelity {} anywhere",
        std::process::id()
    )));
    let _ = std::fs::remove_dir_all(&tmp.0);
    let checkout = tmp.0.join("check out");
    let (fid, kvm) = (
        checkout.join("tests/fidelity"),
        checkout.join("tests/kernel-vm"),
    );
    copy_tree(&root.join("tests/fidelity"), &fid);
    copy_tree(&root.join("tests/kernel-vm"), &kvm);

    let out = tmp.0.join("out put");
    let mut setup = Setup::new(out.clone(), false).unwrap_or_else(|e| panic!("setup: {e}"));
    assert!(
        setup.out.starts_with("/tmp") && setup.out.to_string_lossy().contains(' '),
        "the output folder {} is meant to be under /tmp, with a space",
        setup.out.display()
    );
    let bin = checkout.join("target/release/rvs");
    std::fs::create_dir_all(bin.parent().expect("parent")).expect("target folder");
    std::fs::copy(&setup.rvs_bin, &bin).expect("copy the rvs binary");
    setup.rvs_bin = bin;
    setup.fidelity = fid.clone();
    setup.kipvs = kvm.clone();
    let case = cases::ci(&kvm, &fid)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no CI case {name}"));
    assert!(case.spec.scenario.starts_with(&checkout));

    let rvs = runner::run_side(&setup, &case.spec, SideKind::Rvs, &out.join("rvs"));
    assert_eq!(
        rvs.rc,
        Some(0),
        "the rvs side of {name} failed from {}; its log:\n{}\noutput:\n{}",
        checkout.display(),
        rvs.log,
        rvs.output
    );
    for f in ["ts-timeout.txt", "ts-Lnc.txt"] {
        assert!(
            !rvs.file(f).is_empty(),
            "rvs side: files/{f} is missing or empty; output:\n{}",
            rvs.output
        );
    }
    if !with_vm {
        return;
    }
    if let Some(why) = runner::vm_unavailable(&root) {
        panic!("the kernel side of {name} cannot run here: {why} (RVS_SKIP_VM=1 skips it)");
    }
    let kernel = runner::run_side(&setup, &case.spec, SideKind::Kernel, &out.join("kernel"));
    assert_eq!(
        kernel.rc,
        Some(0),
        "the kernel side of {name} failed from {}; its log:\n{}\noutput:\n{}",
        checkout.display(),
        kernel.log,
        kernel.output
    );
    let r = rvs_fidelity::CaseResult {
        checks: cases::compare(&case, &kernel, &rvs).list,
        case,
        kernel,
        rvs,
    };
    let known = known::load(&rvs_fidelity::known_file(&root)).expect("known-differences.toml");
    let (text, t) = report::case_report(&r, &known);
    assert!(t.pass(), "{name} from /tmp: the two sides differ:\n{text}");
}
