//! The npm packages as a user gets them: packed, installed from the tarballs into an empty
//! project in a temporary directory with cargo off `PATH`, then used there from CommonJS, ESM,
//! Deno (`npm:` and the FFI module), TypeScript (`tsc` against the installed `index.d.ts`), on
//! the WebAssembly fallback, and through npm/README.md's code blocks. The scripts it runs are
//! `npm/test/installed/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::package::{self, HOST, WASM};
use crate::util::{ChildGuard, Context, Ctx, Result, free_port, run};

/// npm/README.md's code blocks, in order, and the files under `npm/test/installed/readme/`
/// that hold them verbatim; each prints "hello" once its client got the echo.
const README_BLOCKS: [(&str, &str); 2] = [("```js\n", "readme/node.mjs"), ("```ts\n", "readme/deno_ffi.ts")];

/// The ports the README's blocks listen on, replaced by free ones when they run here.
const README_PORTS: [&str; 2] = ["8080", "9001"];

/// The step of `cargo xtask test`.
pub fn check(ctx: &Ctx) -> Result {
    package::npm_ci(ctx)?;
    package::build(ctx, &HOST)?;
    package::build(ctx, &WASM)?;
    let packed = package::pack(ctx, &[HOST, WASM])?;
    let project = std::env::temp_dir().join(format!("lowbit-installed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    let result = check_in(ctx, &project, &packed);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&project);
    } else {
        println!("left {} for a look", project.display());
    }
    result
}

fn check_in(ctx: &Ctx, project: &Path, packed: &package::Packed) -> Result {
    let scripts = ctx.root.join("npm/test/installed");
    copy_tree(&scripts, project)?;
    write(&project.join("package.json"), "{ \"name\": \"installed-check\", \"private\": true }\n")?;
    write(&project.join("deno.json"), "{ \"nodeModulesDir\": \"manual\" }\n")?;
    let path = path_without_cargo()?;
    let cmd = |program: &Path| {
        let mut c = Command::new(program);
        c.current_dir(project).env("PATH", &path).env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
        c
    };
    let npm_bin = ctx.root.join("npm/node_modules/.bin");
    let (node, npm, deno, tsc) =
        (PathBuf::from("node"), PathBuf::from("npm"), npm_bin.join("deno"), npm_bin.join("tsc"));

    // `--force`: the fallback's package says cpu "wasm32", which npm otherwise refuses on x64
    // (napi-rs's own advice is `npm install --cpu=wasm32`; this installs both at once).
    let wasm = &packed.platforms.iter().find(|(p, _)| *p == WASM.platform).ok_or("no wasm package")?.1;
    let host = &packed.platforms.iter().find(|(p, _)| *p == HOST.platform).ok_or("no host package")?.1;
    run(cmd(&npm)
        .args(["install", "--no-audit", "--no-fund", "--force", "--omit=optional"])
        .args([&packed.main, host, wasm])
        .arg("@types/node@20"))?;
    let installed = package::pack_list(&project.join("node_modules/@lowbit/websockets"))?;
    println!("installed @lowbit/websockets: {}", installed.join(" "));

    run(cmd(&node).arg("exchange.cjs"))?;
    run(cmd(&node).arg("exchange.mjs"))?;
    let deno_perms = ["run", "--allow-ffi", "--allow-net", "--allow-read", "--allow-env", "--allow-sys"];
    run(cmd(&deno).args(deno_perms).arg("exchange_deno.ts"))?;
    run(cmd(&deno).args(deno_perms).arg("ffi_deno.ts"))?;
    run(cmd(&tsc)
        .args(["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext"])
        .args(["--target", "es2022", "--types", "node", "types.ts"]))?;
    // The fallback, strictly: `error` fails instead of falling back to the native addon.
    run(cmd(&node).arg("exchange.cjs").env("NAPI_RS_FORCE_WASI", "error"))?;

    for ((_, file), port) in README_BLOCKS.iter().zip(README_PORTS) {
        let source = std::fs::read_to_string(project.join(file)).context(file)?;
        let local =
            project.join(file).with_file_name(format!("run-{}", Path::new(file).file_name().unwrap().display()));
        write(&local, &source.replace(port, &free_port()?.to_string()))?;
        let mut c = if file.ends_with(".ts") {
            let mut c = cmd(&deno);
            c.args(deno_perms).arg(&local);
            c
        } else {
            let mut c = cmd(&node);
            c.arg(&local);
            c
        };
        until_line(&mut c, "hello", Duration::from_secs(30)).context(format!("npm/README.md's {file}"))?;
        println!("npm/README.md's {file}: printed \"hello\"");
    }
    Ok(())
}

/// Runs `cmd` until it prints `line` on stdout (then stops it), or fails after `wait`.
fn until_line(cmd: &mut Command, line: &str, wait: Duration) -> Result {
    let mut child = cmd.stdout(Stdio::piped()).stdin(Stdio::null()).spawn().context("cannot start")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let _guard = ChildGuard::from(child);
    let (tx, rx) = mpsc::channel();
    let want = line.to_owned();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            println!("  | {l}");
            if l.trim() == want {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(wait).map_err(|_| format!("did not print {line:?} within {} s", wait.as_secs()))
}

/// `PATH` without the directories that hold cargo or rustup: the packages must not need Rust.
fn path_without_cargo() -> Result<std::ffi::OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| !d.join("cargo").exists() && !d.join("rustup").exists());
    std::env::join_paths(dirs).context("PATH")
}

fn copy_tree(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).context(format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).context(format!("cannot read {}", from.display()))? {
        let entry = entry.context("read_dir")?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).context(format!("cannot copy to {}", target.display()))?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).context(format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::README_BLOCKS;
    use crate::util::Ctx;

    /// npm/README.md's code blocks are the files the install check runs, verbatim.
    #[test]
    fn npm_readme_code_is_the_installed_check() {
        let root = Ctx::new().root;
        let readme = std::fs::read_to_string(root.join("npm/README.md")).unwrap();
        for (fence, file) in README_BLOCKS {
            let block = readme.split(fence).nth(1).and_then(|rest| rest.split("```").next());
            let script = std::fs::read_to_string(root.join("npm/test/installed").join(file)).unwrap();
            assert_eq!(
                block,
                Some(script.as_str()),
                "npm/README.md's {fence:?} block differs from npm/test/installed/{file}"
            );
        }
    }
}
