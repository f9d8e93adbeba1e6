//! Bad scenario files give errors that name the file, the line and the field.

use rvs_sim::{Scenario, ScenarioError};

const GOOD: &str = r#"name = "t"
duration_s = 10

[service]
replicas = 3

[[clients]]
rate = 10
port_range = [40000, 40009]
"#;

fn err(src: &str) -> ScenarioError {
    Scenario::from_toml(src, "bad.toml").expect_err("should be refused")
}

#[test]
fn the_base_is_good() {
    Scenario::from_toml(GOOD, "good.toml").unwrap();
}

#[test]
fn syntax_error_names_file_and_line() {
    let e = err(&GOOD.replace("duration_s = 10", "duration_s = "));
    assert_eq!(e.file, "bad.toml");
    assert_eq!(e.line.map(|l| l.0), Some(2), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("bad.toml:2:"), "{text}");
}

#[test]
fn wrong_type_names_the_field() {
    let e = err(&GOOD.replace("rate = 10", "rate = \"fast\""));
    assert_eq!(e.line.map(|l| l.0), Some(8), "{e}");
    assert_eq!(e.field.as_deref(), Some("clients[0].rate"), "{e}");
    assert!(e.to_string().contains("field `clients[0].rate`"), "{e}");
}

#[test]
fn unknown_key_is_refused_with_its_name() {
    let e = err(&GOOD.replace("rate = 10", "rate = 10\nrat = 5"));
    assert!(e.message.contains("rat"), "{e}");
    assert_eq!(e.line.map(|l| l.0), Some(9), "{e}");
}

#[test]
fn semantic_error_finds_the_line() {
    let e = err(&GOOD.replace("[40000, 40009]", "[40009, 40000]"));
    assert_eq!(e.field.as_deref(), Some("clients[0].port_range"));
    assert_eq!(e.line.map(|l| l.0), Some(9), "{e}");
    let e = err(&format!(
        "{GOOD}\n[[events]]\nat_s = 1\naction = \"die\"\nserver = 9\n"
    ));
    assert_eq!(e.field.as_deref(), Some("events[0].server"));
    assert_eq!(e.line.map(|l| l.0), Some(14), "{e}");
    assert!(e.message.contains("no initial pod 9"), "{e}");
}

#[test]
fn bad_profile_sysctl_and_missing_section() {
    let e = err(&GOOD.replace(
        "duration_s = 10",
        "duration_s = 10\nprofiles = [\"linux-3.10\"]",
    ));
    assert_eq!(e.field.as_deref(), Some("profiles"));
    assert!(e.message.contains("linux-3.10"), "{e}");
    assert_eq!(e.line.map(|l| l.0), Some(3), "{e}");
    let e = err(&format!("{GOOD}\n[engine]\nsysctls = {{ bogus = 1 }}\n"));
    assert_eq!(e.field.as_deref(), Some("engine.sysctls.bogus"), "{e}");
    assert_eq!(e.line.map(|l| l.0), Some(12), "{e}");
    let e = err("name = \"t\"\nduration_s = 1\n");
    assert!(e.message.contains("service"), "{e}");
    let e = err(&GOOD.replace("rate = 10", "interval_ms = 5\nrate = 10"));
    assert_eq!(e.field.as_deref(), Some("clients[0].interval_ms"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let e = Scenario::from_file(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn shipped_scenarios_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        Scenario::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 4);
}
