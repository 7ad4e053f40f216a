//! The crate as crates.io would hand it out: `cargo package -p lowbit-websockets`, the `.crate`
//! unpacked into a temporary directory, and a new crate beside it, outside the workspace, that
//! depends on it by path and runs README.md's server and client
//! (`crates/core/examples/readme/`, which README.md's first two Rust blocks are verbatim).
//! Its docs must build without a warning, as docs.rs builds them.

use std::process::Command;

use crate::util::{Context, Ctx, Result, run};

/// The step of `cargo xtask test`.
pub fn check(ctx: &Ctx) -> Result {
    // No `--verify`: building and running the unpacked crate below checks more than cargo's
    // verification build (which only compiles the library) and shares a target directory.
    // `--allow-dirty`: a developer may run the tests before committing.
    run(ctx.cargo().args(["package", "-p", "lowbit-websockets", "--no-verify", "--allow-dirty"]))?;
    // docs.rs builds with every feature; a broken link or bad doc markup fails here.
    run(ctx
        .cargo()
        .args(["doc", "-p", "lowbit-websockets", "--no-deps", "--features", "tokio,hyper,axum"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    let version = package_version(ctx)?;
    let name = format!("lowbit-websockets-{version}");
    let dot_crate = ctx.target.join("package").join(format!("{name}.crate"));

    let dir = std::env::temp_dir().join(format!("lowbit-crate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let app = dir.join("readme-user");
    std::fs::create_dir_all(app.join("src")).context(format!("cannot create {}", app.display()))?;
    run(Command::new("tar").arg("xzf").arg(&dot_crate).arg("-C").arg(&dir))?;

    let manifest = format!(
        "[package]\nname = \"readme-user\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nlowbit-websockets = {{ path = \"../{name}\" }}\n\n\
         # Its own workspace: nothing above the temporary directory is part of it.\n[workspace]\n"
    );
    std::fs::write(app.join("Cargo.toml"), manifest).context("cannot write Cargo.toml")?;
    // The versions this workspace tested, rather than whatever is newest today.
    std::fs::copy(ctx.root.join("Cargo.lock"), app.join("Cargo.lock")).context("cannot copy Cargo.lock")?;
    let examples = ctx.root.join("crates/core/examples/readme");
    for (from, to) in [("main.rs", "main.rs"), ("server.rs", "server.rs"), ("client.rs", "client.rs")] {
        std::fs::copy(examples.join(from), app.join("src").join(to)).context(format!("cannot copy {from}"))?;
    }

    let mut cargo = ctx.cargo();
    cargo
        .current_dir(&app)
        .args(["run", "--quiet"])
        // Dependencies built once, across runs (each run's crate is new, its dependencies not).
        .env("CARGO_TARGET_DIR", ctx.target.join("outside-crate"));
    let output = cargo.output().context("cannot run cargo run in the new crate")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        return Err(format!(
            "the README's server and client, built against the packaged crate in {}, failed: {}",
            app.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // The README's client prints the server's echo of its "hello".
    if stdout.trim() != "Text: hello" {
        return Err(format!("expected the client to print \"Text: hello\", got {stdout:?}"));
    }
    println!("README.md's server and client ran against {name}.crate, unpacked outside the workspace");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn package_version(ctx: &Ctx) -> Result<String> {
    let manifest =
        std::fs::read_to_string(ctx.root.join("crates/core/Cargo.toml")).context("crates/core/Cargo.toml")?;
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| "crates/core/Cargo.toml has no version line".to_owned())
}
