//! What people see on a terminal: live progress bars (under a real pseudo
//! terminal made by `script`), none when stderr is piped, shell
//! completions, the manual page, and examples at the end of every --help.

mod support;

use std::process::Command;

use support::*;

/// A 200 MiB image in an OCI layout: 8 layers of 25 MiB.
fn big_layout(dir: &std::path::Path) {
    let w = LayoutWriter::new(dir);
    let layers = (0..8)
        .map(|i| Layer::random(9100 + i, 25 * 1024 * 1024))
        .collect();
    let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", layers));
    w.tag(&[("v1", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
}

/// Runs ocirepl under `script`, so that its stderr is a terminal; returns
/// everything the terminal received.
fn in_a_terminal(args: &[&str]) -> (bool, String) {
    require("script");
    let line = std::iter::once(env!("CARGO_BIN_EXE_ocirepl"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let home = tempfile::tempdir().expect("home");
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env("HOME", home.path())
        .env("COLUMNS", "120")
        .output()
        .expect("run script");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_terminal_gets_live_bars_and_a_pipe_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    big_layout(&dir.path().join("src"));
    let reg = Registry::start(RegistryConfig::anonymous());
    let src = format!("oci:{}:v1", dir.path().join("src").display());

    let (ok, screen) = in_a_terminal(&["copy", &src, &reg.image("big:v1")]);
    assert!(ok, "{screen}");
    let frames = screen.matches("images 0/1").count();
    assert!(
        frames >= 3,
        "expected live redraws, saw {frames}:\n{screen}"
    );
    assert!(screen.contains("MiB"), "{screen}");
    assert!(screen.contains("eta"), "{screen}");
    assert!(screen.contains("\u{1b}["), "no cursor movement: {screen:?}");
    assert!(
        screen.contains("copied "),
        "the summary line is still printed: {screen}"
    );

    // Piped: the same copy (now up to date, and a fresh one) draws nothing.
    let (code, _, err) = run(&["copy", &src, &reg.image("big2:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes in a pipe: {err:?}");
    assert!(!err.contains("images 0/1"), "{err}");
    assert!(err.contains("copied "), "{err}");

    // -q and --output json keep a terminal free of bars too.
    let (ok, screen) = in_a_terminal(&["copy", "-q", &src, &reg.image("big3:v1")]);
    assert!(ok, "{screen}");
    assert!(!screen.contains("images 0/1"), "{screen}");
    let (ok, screen) = in_a_terminal(&["copy", "--progress", "never", &src, &reg.image("big4:v1")]);
    assert!(ok, "{screen}");
    assert!(!screen.contains("images 0/1"), "{screen}");
    // --progress always draws even into a pipe.
    let (code, _, err) = run(&["copy", "--progress", "always", &src, &reg.image("big5:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("images"), "{err}");
}

#[test]
fn completions_for_three_shells() {
    for (shell, marker) in [
        ("bash", "_ocirepl()"),
        ("zsh", "#compdef ocirepl"),
        ("fish", "complete -c ocirepl"),
    ] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for word in ["copy", "inspect", "platform", "all-tags"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, _) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    // bash accepts what it generated.
    require("bash");
    let (_, script, _) = run(&["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .expect("bash");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_manual_page_from_the_same_definitions() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH ocirepl"),
        "{page}"
    );
    for word in ["copy", "inspect", "tags", "completions"] {
        assert!(page.contains(word), "the page lacks {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["man", "--dir", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let copy_page =
        std::fs::read_to_string(dir.path().join("ocirepl-copy.1")).expect("ocirepl-copy.1");
    assert!(copy_page.contains("platform"), "{copy_page}");
    assert!(dir.path().join("ocirepl.1").exists());
}

#[test]
fn every_help_ends_with_real_examples() {
    for cmd in [
        vec!["copy"],
        vec!["inspect"],
        vec!["tags"],
        vec!["index", "create"],
        vec!["completions"],
        vec!["man"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let (code, out, _) = run(&args);
        assert_eq!(code, 0);
        let examples = out
            .split("EXAMPLES:")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd:?} --help has no EXAMPLES: {out}"));
        let n = examples
            .lines()
            .filter(|l| l.trim_start().starts_with("ocirepl "))
            .count();
        assert!(n >= 2, "{cmd:?}: {n} examples");
    }
}
