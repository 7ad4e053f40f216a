//! The npm packages as napi-rs lays them out, and the checks that they work as users install
//! them: `@lowbit/websockets` (JavaScript, the generated loader, the Deno module) with
//! `optionalDependencies` on one `@lowbit/websockets-<platform>` package per addon build, and
//! `@lowbit/websockets-wasm32-wasi`, the WebAssembly fallback for platforms without one.
//!
//! `cargo xtask package` builds every platform this machine can (Linux x64 glibc and musl,
//! arm64 glibc with Debian's cross toolchains, and the wasm32-wasip1-threads fallback) and
//! packs them into `target/npm-dist/`. `cargo xtask test` builds only the host's addon and the
//! fallback, packs, and installs the tarballs into an empty project with cargo off `PATH`
//! (`install_check`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::{self, Json};
use crate::util::{Context, Ctx, Result, run};

/// One addon build: napi-rs's platform name (the package suffix) and how to build it.
pub struct Addon {
    /// `linux-x64-gnu`, `wasm32-wasi`, ...
    pub platform: &'static str,
    /// The Rust target; `None` builds for the host into `target/release`, the build the tests
    /// share.
    triple: Option<&'static str>,
    /// Debian packages with the cross toolchain, and the environment that points cargo at it.
    apt: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

/// The host build (CI and this machine are x86_64 glibc Linux).
pub const HOST: Addon = Addon { platform: "linux-x64-gnu", triple: None, apt: &[], env: &[] };

/// The WebAssembly fallback: napi-rs's wasm32-wasip1-threads build on emnapi, loaded by
/// `@napi-rs/wasm-runtime` where no native package fits (or with `NAPI_RS_FORCE_WASI`).
pub const WASM: Addon = Addon { platform: "wasm32-wasi", triple: Some("wasm32-wasip1-threads"), apt: &[], env: &[] };

/// Every platform package `cargo xtask package` builds.
pub const ALL: [Addon; 4] = [
    HOST,
    Addon {
        platform: "linux-x64-musl",
        triple: Some("x86_64-unknown-linux-musl"),
        apt: &["musl-tools"],
        env: &[("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER", "musl-gcc")],
    },
    Addon {
        platform: "linux-arm64-gnu",
        triple: Some("aarch64-unknown-linux-gnu"),
        apt: &["gcc-aarch64-linux-gnu"],
        env: &[("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")],
    },
    WASM,
];

fn npm_dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("npm")
}

fn dist(ctx: &Ctx) -> PathBuf {
    ctx.target.join("npm-dist")
}

/// `cargo xtask package`: every platform, packed, with the sizes.
pub fn package_all(ctx: &Ctx) -> Result {
    npm_ci(ctx)?;
    for addon in &ALL {
        build(ctx, addon)?;
    }
    // Only the host's addon can be loaded here; the others are checked for what Node and
    // Deno look up in them, and for what they link.
    for addon in ALL.iter().filter(|a| a.platform != WASM.platform) {
        exports(&npm_dir(ctx).join(format!("lowbit-websockets.{}.node", addon.platform)))?;
    }
    pack(ctx, &ALL)?;
    Ok(())
}

/// Fails unless `lib` exports Node-API's entry point and the C ABI's, and prints what it links.
fn exports(lib: &Path) -> Result {
    let readelf = |args: &[&str]| -> Result<String> {
        let out = Command::new("readelf").args(args).arg(lib).output().context("readelf")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let symbols = readelf(&["-W", "--dyn-syms"])?;
    for wanted in ["napi_register_module_v1", "lbws_receive_at", "lbws_contract"] {
        if !symbols.lines().any(|l| l.contains(" FUNC ") && l.contains(" GLOBAL ") && l.ends_with(wanted)) {
            return Err(format!("{} does not export {wanted}", lib.display()));
        }
    }
    let needed: Vec<String> = readelf(&["-d"])?
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|n| n.trim_end_matches(']').to_owned()))
        .collect();
    println!("{}: exports the Node-API and C entry points; links {}", lib.display(), needed.join(", "));
    Ok(())
}

/// `npm ci` in `npm/` when its tools (napi-rs CLI, Deno, emnapi) are not installed yet.
pub fn npm_ci(ctx: &Ctx) -> Result {
    if npm_dir(ctx).join("node_modules/.bin/napi").exists() {
        return Ok(());
    }
    run(Command::new("npm").current_dir(npm_dir(ctx)).args(["ci", "--no-audit", "--no-fund"]))
}

/// Builds one addon into `npm/` (`lowbit-websockets.<platform>.node`, or the fallback's
/// `.wasm` and its loaders), stripped by the release profile (Cargo.toml).
pub fn build(ctx: &Ctx, addon: &Addon) -> Result {
    let mut napi = npx(ctx, "napi");
    napi.args(["build", "--platform", "--release", "--manifest-path", "../crates/node/Cargo.toml"]).args([
        "--output-dir",
        ".",
        "--js",
        "binding.js",
        "--dts",
        "binding.d.ts",
    ]);
    if let Some(triple) = addon.triple {
        run(Command::new("rustup").args(["target", "add", triple]))?;
        if !addon.apt.is_empty() && !addon.apt.iter().all(|p| installed(p)) {
            run(Command::new("apt-get").args(["install", "-y", "-qq"]).args(addon.apt))?;
        }
        napi.args(["--target", triple]).envs(addon.env.iter().copied());
        if addon.platform == "linux-x64-musl" {
            // A musl cdylib links libgcc_s (the unwinder) dynamically, as on Alpine; musl-gcc
            // searches only musl's directory, so it is handed a directory holding just that.
            napi.env("RUSTFLAGS", format!("-C link-arg=-L{}", libgcc_dir(ctx)?.display()));
        }
    }
    run(&mut napi)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg").args(["-s", package]).output().is_ok_and(|o| o.status.success())
}

/// A directory with `libgcc_s.so` only (the host gcc's, the same ABI musl systems ship).
fn libgcc_dir(ctx: &Ctx) -> Result<PathBuf> {
    let out = Command::new("gcc").arg("-print-file-name=libgcc_s.so.1").output().context("gcc")?;
    let lib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = ctx.target.join("musl-link");
    std::fs::create_dir_all(&dir).context(format!("cannot create {}", dir.display()))?;
    let link = dir.join("libgcc_s.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&lib, &link).context(format!("cannot link {}", link.display()))?;
    Ok(dir)
}

fn npx(ctx: &Ctx, tool: &str) -> Command {
    let mut cmd = Command::new(npm_dir(ctx).join("node_modules/.bin").join(tool));
    cmd.current_dir(npm_dir(ctx));
    cmd
}

/// The packed tarballs: the main package first, then one per addon.
pub struct Packed {
    pub main: PathBuf,
    pub platforms: Vec<(&'static str, PathBuf)>,
}

/// Lays out and packs the main package and the platform packages of `addons` (built before)
/// into `target/npm-dist/`, and prints every file's size.
pub fn pack(ctx: &Ctx, addons: &[Addon]) -> Result<Packed> {
    let npm = npm_dir(ctx);
    let dist = dist(ctx);
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist).context(format!("cannot create {}", dist.display()))?;
    let manifest = read_json(&npm.join("package.json"))?;
    let version = manifest.get("version").and_then(Json::as_str).ok_or("npm/package.json has no version")?;

    // napi-rs's per-platform package.json files (name, os/cpu/libc, files) from the `napi`
    // block of npm/package.json.
    run(npx(ctx, "napi").args(["create-npm-dirs", "--npm-dir", "platforms"]))?;
    let mut platforms = Vec::new();
    for addon in addons {
        let dir = npm.join("platforms").join(addon.platform);
        let files = read_json(&dir.join("package.json"))?;
        for file in files.get("files").map(Json::items).unwrap_or_default() {
            let name = file.as_str().ok_or("a platform package's files entry is not a string")?;
            copy(&npm.join(name), &dir.join(name))?;
        }
        platforms.push((addon.platform, npm_pack(&dir, &dist)?));
    }

    // The main package: what `files` lists (npm's own list), with the platform packages as
    // optional dependencies (what `napi pre-publish` adds) and without the dev-only fields.
    let stage = dist.join("websockets");
    // Deno runs no TypeScript from node_modules: the FFI module ships as one JavaScript file.
    let deno = npm.join("node_modules/.bin/deno");
    run(Command::new(deno).current_dir(&npm).args([
        "bundle",
        "--platform",
        "deno",
        "-o",
        "deno/mod.js",
        "deno/mod.ts",
    ]))?;
    for file in pack_list(&npm)? {
        copy(&npm.join(&file), &stage.join(&file))?;
    }
    copy(&npm.join("package.json"), &stage.join("package.json"))?;
    let mut set = Command::new("npm");
    set.current_dir(&stage).args(["pkg", "set"]);
    for addon in &ALL {
        set.arg(format!("optionalDependencies[@lowbit/websockets-{}]={version}", addon.platform));
    }
    run(&mut set)?;
    run(Command::new("npm").current_dir(&stage).args(["pkg", "delete", "devDependencies", "scripts"]))?;
    let main = npm_pack(&stage, &dist)?;

    println!("\nnpm packages (target/npm-dist):");
    for tarball in std::iter::once(&main).chain(platforms.iter().map(|(_, t)| t)) {
        println!("  {:>9} B  {}", size(tarball)?, tarball.file_name().unwrap_or_default().display());
    }
    for addon in addons {
        let binary = match addon.triple {
            Some("wasm32-wasip1-threads") => "lowbit-websockets.wasm32-wasi.wasm".to_owned(),
            _ => format!("lowbit-websockets.{}.node", addon.platform),
        };
        println!("  {:>9} B  {binary}", size(&npm.join(&binary))?);
    }
    Ok(Packed { main, platforms })
}

/// `npm pack` of `dir` into `out`; the tarball's path.
fn npm_pack(dir: &Path, out: &Path) -> Result<PathBuf> {
    let output = Command::new("npm")
        .current_dir(dir)
        .args(["pack", "--json", "--pack-destination"])
        .arg(out)
        .output()
        .context("npm pack")?;
    if !output.status.success() {
        return Err(format!("npm pack in {} failed: {}", dir.display(), String::from_utf8_lossy(&output.stderr)));
    }
    let packed = json::parse(&String::from_utf8_lossy(&output.stdout))?;
    let name =
        packed.items().first().and_then(|p| p.get("filename")).and_then(Json::as_str).ok_or("npm pack: no filename")?;
    Ok(out.join(name))
}

/// The files `npm pack` would put in the package at `dir`.
pub fn pack_list(dir: &Path) -> Result<Vec<String>> {
    let output =
        Command::new("npm").current_dir(dir).args(["pack", "--dry-run", "--json"]).output().context("npm pack")?;
    if !output.status.success() {
        return Err(format!("npm pack --dry-run failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let packed = json::parse(&String::from_utf8_lossy(&output.stdout))?;
    let files = packed.items().first().and_then(|p| p.get("files")).map(Json::items).unwrap_or_default();
    Ok(files.iter().filter_map(|f| f.get("path").and_then(Json::as_str).map(str::to_owned)).collect())
}

fn read_json(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path).context(format!("cannot read {}", path.display()))?;
    json::parse(&text).context(path.display())
}

fn copy(from: &Path, to: &Path) -> Result {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).context(format!("cannot create {}", parent.display()))?;
    }
    std::fs::copy(from, to).map(drop).context(format!("cannot copy {} to {}", from.display(), to.display()))
}

fn size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path).context(format!("cannot stat {}", path.display()))?.len())
}
