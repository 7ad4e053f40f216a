//! Autobahn|Testsuite runs in both roles, and the regression gate: every case's result must
//! match `autobahn/expected-results.json` (behavior and close behavior; timings ignored), so a
//! case that slips from OK to NON-STRICT fails even though the suite counts it as passed.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::json::{self, Json};
use crate::util::{Context, Ctx, Result, free_port, run, start_echo_server};

/// The name our results are filed under.
const AGENT: &str = "lowbit";
/// The checked-in results, relative to the workspace root.
const EXPECTED: &str = "autobahn/expected-results.json";

/// Which of our ends is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Our echo server, driven by `wstest -m fuzzingclient`.
    Server,
    /// Our client example, driven by `wstest -m fuzzingserver`.
    Client,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Server, Side::Client];

    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

/// Which Rust driver of the core crate is under test: each has its own echo server and client
/// example, and both must give the results recorded for the native face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The blocking `Conn`: `echo-server`, `autobahn-client`.
    Blocking,
    /// The tokio `AsyncConn`: `async-echo-server`, `async-autobahn-client`.
    Async,
}

impl Driver {
    /// The echo server example's name.
    pub fn server(self) -> &'static str {
        match self {
            Driver::Blocking => "echo-server",
            Driver::Async => "async-echo-server",
        }
    }

    fn client(self) -> &'static str {
        match self {
            Driver::Blocking => "autobahn-client",
            Driver::Async => "async-autobahn-client",
        }
    }
}

/// Which cases to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Comma-separated case patterns; empty = all.
    pub cases: String,
    /// Comma-separated case patterns to leave out.
    pub exclude: String,
}

/// The shared Autobahn folder: `../shared/autobahn` beside the repository, else the machine's
/// copy.
fn suite_dir(ctx: &Ctx) -> Result<PathBuf> {
    let candidates = [ctx.root.join("../shared/autobahn"), PathBuf::from("/work/shared/autobahn")];
    candidates.iter().find(|dir| dir.join("server-test.sh").is_file()).cloned().ok_or_else(|| {
        format!("Autobahn|Testsuite scripts not found in {} or {}", candidates[0].display(), candidates[1].display())
    })
}

/// The venv the suite is installed into, inside our target dir.
fn venv(ctx: &Ctx) -> PathBuf {
    ctx.target.join("autobahn-venv")
}

/// Installs the suite into the venv (instant when done). Needs `python3` and PyPI.
pub fn setup(ctx: &Ctx) -> Result {
    run(Command::new(suite_dir(ctx)?.join("setup.sh")).arg(venv(ctx)))
}

/// Runs the suite against one of our ends, then checks the results against the expected ones
/// (or, with `ctx.bless`, records them as the expected ones).
pub fn run_side(ctx: &Ctx, driver: Driver, side: Side, sel: &Selection) -> Result {
    let suite = suite_dir(ctx)?;
    ctx.build_examples()?;
    let out = ctx.target.join("autobahn").join(driver.server()).join(side.name());
    std::fs::create_dir_all(&out).context(format!("cannot create {}", out.display()))?;

    let mut cmd = Command::new(suite.join(format!("{}-test.sh", side.name())));
    cmd.env("AUTOBAHN_VENV", venv(ctx)).args(["--agent", AGENT]).arg("--out").arg(&out);
    if !sel.cases.is_empty() {
        cmd.args(["--cases", &sel.cases]);
    }
    if !sel.exclude.is_empty() {
        cmd.args(["--exclude", &sel.exclude]);
    }
    let suite_result = match side {
        Side::Server => {
            // The server logs one line per connection that ended in an error, which many
            // cases do on purpose: keep that out of the summary.
            let log_path = out.join("echo-server.log");
            let log = File::create(&log_path).context(format!("cannot create {}", log_path.display()))?;
            let (_server, addr) = start_echo_server(ctx, driver.server(), Stdio::from(log), &["--deflate"])?;
            println!("echo server listening on {addr} (log: {})", log_path.display());
            run(cmd.args(["--port", &addr.port().to_string()]))
        }
        Side::Client => {
            cmd.args(["--port", &free_port()?.to_string(), "--"]).arg(ctx.example(driver.client()));
            run(&mut cmd)
        }
    };

    let expected_path = ctx.root.join(EXPECTED);
    let gate = read_results(&out.join("index.json")).and_then(|actual| {
        if ctx.bless { bless_results(&expected_path, side, &actual) } else { compare(&expected_path, side, &actual) }
    });
    match (suite_result, gate) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// Case id → (behavior, close behavior).
type Results = BTreeMap<CaseId, (String, String)>;

/// A case id that sorts numerically: 1.2.10 after 1.2.9.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CaseId(Vec<u32>);

impl CaseId {
    fn parse(s: &str) -> Option<Self> {
        s.split('.').map(|p| p.parse().ok()).collect::<Option<_>>().map(CaseId)
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// One agent's (or role's) map of case → {behavior, behaviorClose, ...}.
fn results_of(cases: &Json, what: &str) -> Result<Results> {
    let mut out = Results::new();
    for (id, r) in cases.entries() {
        let case = CaseId::parse(id).ok_or_else(|| format!("{what}: bad case id {id:?}"))?;
        let field = |name: &str| {
            r.get(name)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{what}: case {id} has no {name}"))
        };
        out.insert(case, (field("behavior")?, field("behaviorClose")?));
    }
    Ok(out)
}

/// The results of a run, from the report's `index.json`.
fn read_results(index: &Path) -> Result<Results> {
    let text = std::fs::read_to_string(index).context(format!("no results: cannot read {}", index.display()))?;
    let doc = json::parse(&text).context(index.display())?;
    let cases = doc.get(AGENT).ok_or_else(|| format!("{}: no results for agent {AGENT}", index.display()))?;
    results_of(cases, &index.display().to_string())
}

/// The checked-in results per side (empty when the file does not exist yet).
fn read_expected(path: &Path) -> Result<BTreeMap<&'static str, Results>> {
    let mut all = BTreeMap::new();
    if !path.exists() {
        return Ok(all);
    }
    let text = std::fs::read_to_string(path).context(format!("cannot read {}", path.display()))?;
    let doc = json::parse(&text).context(path.display())?;
    for side in Side::BOTH {
        if let Some(cases) = doc.get(side.name()) {
            all.insert(side.name(), results_of(cases, &path.display().to_string())?);
        }
    }
    Ok(all)
}

fn compare(path: &Path, side: Side, actual: &Results) -> Result {
    let all = read_expected(path)?;
    let empty = Results::new();
    let expected = all.get(side.name()).unwrap_or(&empty);
    let mut diffs = Vec::new();
    for (case, got) in actual {
        match expected.get(case) {
            Some(want) if want == got => {}
            Some(want) => diffs.push(format!("  {case:<9} expected {}/{}, got {}/{}", want.0, want.1, got.0, got.1)),
            None => diffs.push(format!("  {case:<9} not in the expected results, got {}/{}", got.0, got.1)),
        }
    }
    if diffs.is_empty() {
        println!("expected results ({EXPECTED}, {} role): all {} cases match", side.name(), actual.len());
        return Ok(());
    }
    println!(
        "expected results ({EXPECTED}, {} role): {} of {} cases differ (behavior/close behavior):",
        side.name(),
        diffs.len(),
        actual.len()
    );
    for d in &diffs {
        println!("{d}");
    }
    println!("if the new results are right, record them with `cargo xtask autobahn --bless`");
    Err(format!("{} Autobahn case(s) differ from {EXPECTED} ({} role)", diffs.len(), side.name()))
}

/// Records `actual` as the expected results of `side`, keeping the cases that did not run.
fn bless_results(path: &Path, side: Side, actual: &Results) -> Result {
    let mut all = read_expected(path)?;
    all.entry(side.name()).or_default().extend(actual.iter().map(|(k, v)| (k.clone(), v.clone())));
    // One case per line, in case order, so a change shows up as a readable diff.
    let mut text = String::from("{\n");
    let sides: Vec<_> = Side::BOTH.iter().filter_map(|s| all.get(s.name()).map(|r| (s.name(), r))).collect();
    for (i, (name, results)) in sides.iter().enumerate() {
        text.push_str(&format!("  {}: {{\n", json::quote(name)));
        for (j, (case, (b, c))) in results.iter().enumerate() {
            let comma = if j + 1 < results.len() { "," } else { "" };
            text.push_str(&format!(
                "    {}: {{\"behavior\": {}, \"behaviorClose\": {}}}{comma}\n",
                json::quote(&case.to_string()),
                json::quote(b),
                json::quote(c)
            ));
        }
        text.push_str(if i + 1 < sides.len() { "  },\n" } else { "  }\n" });
    }
    text.push_str("}\n");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).context(format!("cannot write {}", path.display()))?;
    println!("recorded {} {} results in {EXPECTED}", actual.len(), side.name());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_sort_numerically() {
        let mut ids: Vec<CaseId> =
            ["9.1.10", "9.1.2", "10.1.1", "1.1.1"].iter().map(|s| CaseId::parse(s).unwrap()).collect();
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["1.1.1", "9.1.2", "9.1.10", "10.1.1"]);
    }

    #[test]
    fn bless_then_compare_round_trips() {
        let dir = std::env::temp_dir().join(format!("xtask-autobahn-{}", std::process::id()));
        let path = dir.join("expected.json");
        let mut results = Results::new();
        results.insert(CaseId::parse("1.1.1").unwrap(), ("OK".into(), "OK".into()));
        results.insert(CaseId::parse("7.1.6").unwrap(), ("INFORMATIONAL".into(), "INFORMATIONAL".into()));
        bless_results(&path, Side::Server, &results).unwrap();
        compare(&path, Side::Server, &results).unwrap();
        assert!(compare(&path, Side::Client, &results).is_err(), "the client side has no expected results yet");

        let mut worse = results.clone();
        worse.insert(CaseId::parse("1.1.1").unwrap(), ("NON-STRICT".into(), "OK".into()));
        assert!(compare(&path, Side::Server, &worse).is_err(), "OK -> NON-STRICT is a regression");
        // A subset run compares only the cases it ran.
        worse.remove(&CaseId::parse("1.1.1").unwrap());
        compare(&path, Side::Server, &worse).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
