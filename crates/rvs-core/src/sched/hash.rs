//! The kernel hash functions the hashing schedulers need (spec §4.7–§4.9, test vectors §10.2).
//! Implemented by the `sched` work (see the issue for schedulers).
