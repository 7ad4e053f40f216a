//! `cargo xtask bench`: the benchmarks. For now, the criterion benches of the core crate
//! (`cargo bench -p lowbit-websockets`); what they measure and the numbers are in
//! BENCHMARKS.md. A load generator against the echo server belongs here too.

use crate::util::{Ctx, Result, run};

/// Runs the core benches; `args` go to the bench harness (e.g. a filter).
pub fn run_benches(ctx: &Ctx, args: &[String]) -> Result {
    let mut cmd = ctx.cargo();
    cmd.args(["bench", "-p", "lowbit-websockets"]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    run(&mut cmd)?;
    println!("see BENCHMARKS.md for what the benches measure and the recorded numbers");
    Ok(())
}
