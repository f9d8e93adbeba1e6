//! The port-reuse decision matrix (issue 2): profile × state of the existing entry × real
//! server (healthy, weight 0, removed) × conn_reuse_mode × expire_nodest_conn × conntrack
//! → decision. Kernel rows reproduce kernel-semantics §2.4.2 and the 6.1 measurements; `safe` gives
//! no drop and never keeps a new connection on a weight-0 or removed server.

use rvs_core::conntrack::CtInfo;
use rvs_core::proto::tcp::TcpState;
use rvs_core::reuse::{Facts, Knobs, Verdict, decide};
use rvs_core::service::Protocol;
use rvs_core::{DropReason, Profile};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rs {
    Healthy,
    Weight0,
    Removed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ct {
    /// netfilter does not track the flows.
    None,
    /// The SYN carries a fresh, unconfirmed entry (old flow reopened).
    Fresh,
    /// The SYN carries the old, confirmed entry.
    Old,
}

fn facts(state: TcpState, rs: Rs, ct: Ct, nfct: bool, new_conn: bool) -> Facts {
    Facts {
        proto: Protocol::Tcp,
        state: state as u8,
        nooutput: false,
        nfct,
        controlled: false,
        n_control: 0,
        weight0: rs == Rs::Weight0,
        available: rs != Rs::Removed,
        new_conn,
        rst: false,
        ct: match ct {
            Ct::None => CtInfo {
                present: false,
                confirmed: false,
            },
            Ct::Fresh => CtInfo {
                present: true,
                confirmed: false,
            },
            Ct::Old => CtInfo {
                present: true,
                confirmed: true,
            },
        },
    }
}

fn run(
    p: Profile,
    mode: i32,
    nodest: bool,
    state: TcpState,
    rs: Rs,
    ct: Ct,
    nfct: bool,
) -> Verdict {
    decide(
        &Knobs {
            profile: p,
            conn_reuse_mode: mode,
            expire_nodest_conn: nodest,
        },
        &facts(state, rs, ct, nfct, true),
    )
}

const RESCHED: Verdict = Verdict::Reschedule {
    expire_old: true,
    clear_nfct: true,
};
const RESCHED_419: Verdict = Verdict::Reschedule {
    expire_old: true,
    clear_nfct: false,
};
const CONT: Verdict = Verdict::Continue;
const DROP_CT: Verdict = Verdict::Drop {
    reason: DropReason::ReuseConntrack,
    expire_old: true,
};
const BLACKHOLE: Verdict = Verdict::Drop {
    reason: DropReason::DestUnavailable,
    expire_old: false,
};

use TcpState::{Established as ES, SynRecv as SR, TimeWait as TW};

/// Linux ≥ 5.16: the rows of kernel-semantics §2.4.2 for a SYN on an uncontrolled entry.
#[test]
fn linux_5_16_rows_spec_2_4_2() {
    let p = Profile::Linux5_16;
    // Case A (E ∧ W0): reschedule whatever the mode; drop when the conntrack is the old one.
    assert_eq!(run(p, 0, true, TW, Rs::Weight0, Ct::Fresh, true), RESCHED);
    assert_eq!(run(p, 0, true, SR, Rs::Weight0, Ct::Old, true), DROP_CT);
    assert_eq!(run(p, 1, true, ES, Rs::Weight0, Ct::None, false), RESCHED);
    // Case B (R ≠ 0 ∧ TIME_WAIT/CLOSE): reschedule; drop with the old conntrack.
    assert_eq!(run(p, 1, false, TW, Rs::Healthy, Ct::Fresh, true), RESCHED);
    assert_eq!(run(p, 1, false, TW, Rs::Healthy, Ct::Old, true), DROP_CT);
    assert_eq!(run(p, 1, false, TW, Rs::Weight0, Ct::Fresh, true), RESCHED);
    // Neither: same real server (the incident's failing row 0/0 sends to weight 0).
    assert_eq!(run(p, 0, false, TW, Rs::Weight0, Ct::Fresh, true), CONT);
    assert_eq!(run(p, 1, false, ES, Rs::Healthy, Ct::Old, true), CONT);
    assert_eq!(run(p, 1, false, SR, Rs::Weight0, Ct::Old, true), CONT);
    // A removed server: black hole without expire_nodest_conn, reschedule with it.
    assert_eq!(run(p, 0, false, ES, Rs::Removed, Ct::Old, true), BLACKHOLE);
    assert_eq!(run(p, 0, true, ES, Rs::Removed, Ct::Fresh, true), RESCHED);
    assert_eq!(
        run(p, 0, true, ES, Rs::Removed, Ct::Old, true),
        Verdict::Drop {
            reason: DropReason::DestUnavailableExpired,
            expire_old: true
        }
    );
}

/// Linux 5.9–5.15: Case A only when conn_reuse_mode ≠ 0 (P3).
#[test]
fn linux_5_9_case_a_needs_mode_p3() {
    let p = Profile::Linux5_9;
    assert_eq!(run(p, 0, true, TW, Rs::Weight0, Ct::Fresh, true), CONT);
    assert_eq!(run(p, 1, true, ES, Rs::Weight0, Ct::Fresh, true), RESCHED);
    assert_eq!(run(p, 1, false, TW, Rs::Healthy, Ct::Fresh, true), RESCHED);
}

/// Linux 4.19: the drop needs NFCT on the entry and any conntrack on the packet (f719e3754ee2,
/// P1); a confirmed or fresh entry makes no difference; NFCT is not cleared.
#[test]
fn linux_4_19_drop_first_syn_p1() {
    let p = Profile::Linux4_19;
    assert_eq!(run(p, 1, false, TW, Rs::Healthy, Ct::Fresh, true), DROP_CT);
    assert_eq!(
        run(p, 1, false, TW, Rs::Healthy, Ct::Fresh, false),
        RESCHED_419
    );
    assert_eq!(
        run(p, 1, false, TW, Rs::Healthy, Ct::None, true),
        RESCHED_419
    );
    assert_eq!(run(p, 0, true, TW, Rs::Weight0, Ct::Fresh, true), CONT);
    assert_eq!(run(p, 0, false, ES, Rs::Removed, Ct::Old, true), BLACKHOLE);
    assert_eq!(
        run(p, 0, true, ES, Rs::Removed, Ct::Old, true),
        Verdict::Drop {
            reason: DropReason::DestUnavailableExpired,
            expire_old: true
        }
    );
}

/// A controlled entry is never rescheduled by port reuse (Case B needs `!controlled`), but
/// Case A ignores control (kernel-semantics §2.4).
#[test]
fn controlled_entries_spec_2_4() {
    let mut f = facts(TW, Rs::Healthy, Ct::Fresh, true, true);
    f.controlled = true;
    let k = Knobs {
        profile: Profile::Linux5_16,
        conn_reuse_mode: 1,
        expire_nodest_conn: true,
    };
    assert_eq!(decide(&k, &f), CONT);
    f.weight0 = true;
    assert_eq!(decide(&k, &f), RESCHED);
}

/// An entry that controls others and carries the old conntrack is not rescheduled by port
/// reuse (kernel-semantics §2.4.2 row "no | yes | yes | yes").
#[test]
fn controlling_entry_with_old_conntrack_stays() {
    let mut f = facts(TW, Rs::Healthy, Ct::Old, true, true);
    f.n_control = 1;
    let k = Knobs {
        profile: Profile::Linux5_16,
        conn_reuse_mode: 1,
        expire_nodest_conn: false,
    };
    assert_eq!(decide(&k, &f), CONT);
    f.ct = CtInfo {
        present: true,
        confirmed: false,
    };
    assert_eq!(
        decide(&k, &f),
        Verdict::Reschedule {
            expire_old: false,
            clear_nfct: true
        }
    );
}

/// The whole product for `safe`: a new connection is never dropped, never stays on a weight-0
/// or removed server, and stays on a healthy server only in a non-closing state. Non-SYN
/// packets of flows to removed servers are reset (TCP). Departs from every kernel.
#[test]
fn safe_over_the_whole_matrix() {
    for state in rvs_core::proto::tcp::ALL {
        for rs in [Rs::Healthy, Rs::Weight0, Rs::Removed] {
            for mode in 0..=3 {
                for nodest in [false, true] {
                    for ct in [Ct::None, Ct::Fresh, Ct::Old] {
                        for nfct in [false, true] {
                            let k = Knobs {
                                profile: Profile::Safe,
                                conn_reuse_mode: mode,
                                expire_nodest_conn: nodest,
                            };
                            let v = decide(&k, &facts(state, rs, ct, nfct, true));
                            let ctx = format!(
                                "{state:?} {rs:?} mode={mode} nodest={nodest} {ct:?} nfct={nfct}"
                            );
                            assert!(!matches!(v, Verdict::Drop { .. }), "{ctx}: {v:?}");
                            if rs != Rs::Healthy || state.is_closing() {
                                assert!(matches!(v, Verdict::Reschedule { .. }), "{ctx}: {v:?}");
                            } else {
                                assert_eq!(v, CONT, "{ctx}");
                            }
                            let mid = decide(&k, &facts(state, rs, ct, nfct, false));
                            match rs {
                                Rs::Removed => assert_eq!(mid, Verdict::ResetAndRetire, "{ctx}"),
                                _ => assert_eq!(mid, CONT, "{ctx}"),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Kernel profiles over the whole product: they never reset, and a drop of a SYN on a
/// healthy or weight-0 server only ever happens for the conntrack reason.
#[test]
fn kernel_profiles_over_the_whole_matrix() {
    for p in [Profile::Linux4_19, Profile::Linux5_9, Profile::Linux5_16] {
        for state in rvs_core::proto::tcp::ALL {
            for rs in [Rs::Healthy, Rs::Weight0, Rs::Removed] {
                for mode in 0..=3 {
                    for nodest in [false, true] {
                        for ct in [Ct::None, Ct::Fresh, Ct::Old] {
                            for nfct in [false, true] {
                                let v = run(p, mode, nodest, state, rs, ct, nfct);
                                assert_ne!(v, Verdict::ResetAndRetire);
                                if rs != Rs::Removed {
                                    if let Verdict::Drop { reason, .. } = v {
                                        assert_eq!(
                                            reason,
                                            DropReason::ReuseConntrack,
                                            "{p} {state:?} {rs:?}"
                                        );
                                    }
                                }
                                // mode 0, no expire_nodest_conn: always the same real server
                                // unless it was removed (then dropped).
                                if mode == 0 && !nodest {
                                    let want = if rs == Rs::Removed { BLACKHOLE } else { CONT };
                                    assert_eq!(v, want, "{p} {state:?} {rs:?}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
