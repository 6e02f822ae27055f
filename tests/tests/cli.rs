//! The `hotspot` binary starts as a process and answers its basic commands.

use std::process::Command;

fn hotspot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hotspot-node"))
}

/// `--help` lists the subcommands a newcomer is told about.
#[test]
fn help_lists_demo() {
    let out = hotspot().arg("--help").output().expect("start hotspot");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("demo"), "{text}");
}

/// An unknown subcommand is refused with a non-zero exit and a message naming it.
#[test]
fn unknown_subcommand_is_refused() {
    let out = hotspot().arg("frobnicate").output().expect("start hotspot");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("frobnicate"), "{text}");
}
