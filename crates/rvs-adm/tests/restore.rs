//! `ipvsadm -S` / `ipvsadm -R` round trips and restore semantics, through `run_with`.

mod common;

use common::{MemBackend, golden, run_cmd, vm_names};
use rvs_adm::resolve::StaticResolver;
use rvs_core::command::Command;

/// The scenario's own sequence: the error commands (one of which adds a weight-70000 real
/// server), `-S -n`, `-C`, `-Ln`, `-R`, `-S -n`.
#[test]
fn scenario_save_clear_restore() {
    let names = vm_names();
    let mut b = MemBackend::golden("ipvsadm-Ln.txt");
    for line in golden("ipvsadm-errors.txt")
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
    {
        run_cmd(&mut b, &names, line, "");
    }
    let (code, rules, err) = run_cmd(&mut b, &names, "ipvsadm -S -n", "");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(run_cmd(&mut b, &names, "ipvsadm -C", "").0, 0);
    let (_, out, _) = run_cmd(&mut b, &names, "ipvsadm -Ln", "");
    assert_eq!(out, golden("ipvsadm-Ln-after-C.txt"));
    let (code, out, err) = run_cmd(&mut b, &names, "ipvsadm -R", &rules);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (_, out, _) = run_cmd(&mut b, &names, "ipvsadm -S -n", "");
    assert_eq!(out, golden("ipvsadm-S-n-after-R.txt"));
}

fn round_trip(mut b: MemBackend, names: &StaticResolver, save: &str) {
    let (_, first, _) = run_cmd(&mut b, names, save, "");
    let mut fresh = MemBackend::empty();
    let (code, out, err) = run_cmd(&mut fresh, names, "ipvsadm -R", &first);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{first}");
    let (_, second, _) = run_cmd(&mut fresh, names, save, "");
    assert_eq!(second, first);
}

#[test]
fn golden_state_round_trips() {
    round_trip(
        MemBackend::golden("ipvsadm-Ln.txt"),
        &vm_names(),
        "ipvsadm -S -n",
    );
    round_trip(
        MemBackend::golden("ipvsadm-Ln.txt"),
        &vm_names(),
        "ipvsadm -S",
    );
}

#[test]
fn every_saved_feature_round_trips() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let setup = [
        "ipvsadm -A -t 10.1.0.1:80 -s wrr -p 600 -M 255.255.0.0",
        "ipvsadm -A -u 10.1.0.1:53 -s sh -b sh-port -o",
        "ipvsadm -A --sctp-service 10.1.0.2:3868 -s rr -b flag-1,flag-3",
        "ipvsadm -A -t [fd00::1]:443 -p -M 64",
        "ipvsadm -A -f 7 -6 -s mh -b mh-fallback,mh-port -p 30",
        "ipvsadm -A -f 8 -s lc -p 20 -M 255.255.255.0",
        "ipvsadm -a -t 10.1.0.1:80 -r 192.168.0.2:8080 -m -w 5 -x 100 -y 10",
        "ipvsadm -a -t 10.1.0.1:80 -r 192.168.0.3 -i --tun-type gue --tun-port 6080 --tun-remcsum",
        "ipvsadm -a -t 10.1.0.1:80 -r 192.168.0.4 -i --tun-type gre --tun-csum -w 0",
        "ipvsadm -a -t 10.1.0.1:80 -r 192.168.0.5 -i",
        "ipvsadm -a -t 10.1.0.1:80 -r fd00::9 -i --tun-type gue --tun-port 1",
        "ipvsadm -a -u 10.1.0.1:53 -r 192.168.0.2 -g",
        "ipvsadm -a -t [fd00::1]:443 -r [fd00::2]:8443 -m",
        "ipvsadm -a -f 7 -6 -r fd00::3 -m",
        "ipvsadm -a -f 8 -r 192.168.0.6:0 -w 2",
        // rvs's extension: full NAT.
        "ipvsadm -a -u 10.1.0.1:53 -r 192.168.0.7:5353 --fullnat -w 3",
    ];
    for line in setup {
        let (code, _, err) = run_cmd(&mut b, &names, line, "");
        assert_eq!((code, err.as_str()), (0, ""), "{line}");
    }
    let (_, saved, _) = run_cmd(&mut b, &names, "ipvsadm -S -n", "");
    assert_eq!(
        saved,
        "-A -t 10.1.0.1:80 -s wrr -p 600 -M 255.255.0.0\n\
         -a -t 10.1.0.1:80 -r 192.168.0.2:8080 -m -w 5\n\
         -a -t 10.1.0.1:80 -r 192.168.0.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum\n\
         -a -t 10.1.0.1:80 -r 192.168.0.4:80 -i -w 0 --tun-type gre --tun-csum\n\
         -a -t 10.1.0.1:80 -r 192.168.0.5:80 -i -w 1 --tun-type ipip\n\
         -a -t 10.1.0.1:80 -r [fd00::9]:80 -i -w 1 --tun-type gue --tun-port 1 --tun-nocsum\n\
         -A -u 10.1.0.1:53 -s sh -o -b sh-port\n\
         -a -u 10.1.0.1:53 -r 192.168.0.2:53 -g -w 1\n\
         -a -u 10.1.0.1:53 -r 192.168.0.7:5353 --fullnat -w 3\n\
         -A --sctp-service 10.1.0.2:3868 -s rr -b flag-1,flag-3\n\
         -A -t [fd00::1]:443 -s wlc -p 360 -M 64\n\
         -a -t [fd00::1]:443 -r [fd00::2]:8443 -m -w 1\n\
         -A -f 7 -6 -s mh -p 30 -b mh-fallback,mh-port\n\
         -a -f 7 -6 -r [fd00::3]:0 -m -w 1\n\
         -A -f 8 -s lc -p 20 -M 255.255.255.0\n\
         -a -f 8 -r 192.168.0.6:0 -g -w 2\n"
    );
    round_trip(b, &names, "ipvsadm -S -n");
}

/// The real ipvsadm save files are accepted as they are (`ipvsadm-S.txt` with `http` names).
#[test]
fn real_save_files_restore() {
    let names = vm_names();
    for file in ["ipvsadm-S-n.txt", "ipvsadm-S.txt"] {
        let mut b = MemBackend::empty();
        let (code, out, err) = run_cmd(&mut b, &names, "ipvsadm -R", &golden(file));
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{file}");
        let (_, saved, _) = run_cmd(&mut b, &names, "ipvsadm -S -n", "");
        assert_eq!(saved, golden("ipvsadm-S-n.txt"), "{file}");
        let (_, saved, _) = run_cmd(&mut b, &names, "ipvsadm -S", "");
        assert_eq!(saved, golden("ipvsadm-S.txt"), "{file}");
    }
}

#[test]
fn syntax_error_aborts_leaving_earlier_lines() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let input = "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w -1\n-A -t 10.0.0.2:80\n";
    let (code, out, err) = run_cmd(&mut b, &names, "ipvsadm -R", input);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, "illegal weight specified\n");
    assert_eq!(b.services.len(), 1);
}

#[test]
fn kernel_error_prints_and_continues() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let input = "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr\nipvsadm -A -t 10.0.0.2:80 ipvsadm\n";
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", input);
    assert_eq!(err, "Service already exists\n");
    assert_eq!(code, 0, "the status is the last line's");
    assert_eq!(b.services.len(), 2);
    // A kernel error on the last line makes the status 255.
    let (code, _, _) = run_cmd(&mut b, &names, "ipvsadm -R", "-D -t 10.9.9.9:80\n");
    assert_eq!(code, 255);
}

#[test]
fn popt_error_fails_only_its_line() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let input = "-A --bogus\n-A -t 10.0.0.1:80\n";
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", input);
    assert_eq!(err, "--bogus: unknown option\n");
    assert_eq!(code, 0);
    assert_eq!(b.services.len(), 1);
}

#[test]
fn comment_lines_are_not_comments() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let input = "-A -t 10.0.0.1:80\n# saved by ipvsadm-save\n-A -t 10.0.0.2:80\n";
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", input);
    assert_eq!(code, 255);
    assert_eq!(
        err,
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
    );
    assert_eq!(b.services.len(), 1);
    // A trailing comment after a command is an unexpected argument.
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", "-C # wipe\n");
    assert_eq!((code, err.as_str()), (2, "unexpected argument #\n"));
    // What a comment-stripping wrapper feeds in works.
    let mut b = MemBackend::empty();
    let stripped = rvs_adm::restore::strip_comment_lines(input);
    let (code, _, _) = run_cmd(&mut b, &names, "ipvsadm -R", &stripped);
    assert_eq!(code, 0);
    assert_eq!(b.services.len(), 2);
}

#[test]
fn nested_restore_help_and_listing_in_restore() {
    let names = vm_names();
    let mut b = MemBackend::empty();
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", "-R\n-C\n");
    assert_eq!(code, 255);
    assert!(err.starts_with("Try `ipvsadm -h'"));
    assert!(b.log.is_empty());
    let (code, out, _) = run_cmd(&mut b, &names, "ipvsadm -R", "-A -t 1.2.3.4:80\n-v\n-C\n");
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
        )
    );
    assert_eq!(b.log.len(), 1, "-v ends the restore");
    let (code, out, _) = run_cmd(&mut b, &names, "ipvsadm -R", "-L -n --timeout\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "Timeout (tcp tcpfin udp): 900 120 300\n")
    );
    let (code, _, err) = run_cmd(&mut b, &names, "ipvsadm -R", "-L -n -t 9.9.9.9:1\n-C\n");
    assert_eq!((code, err.as_str()), (1, "No such service\n"));
    assert!(!matches!(b.log.last(), Some(Command::Flush)));
}
