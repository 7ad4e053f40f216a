//! What the load test asks of Linux: file descriptors for 10,000 connections, a core for the
//! server and another for the generator, and the server's resident memory.

use std::process::Command;

/// Raises this process's open-file limit to what `connections` need (one descriptor each,
/// plus slack), up to the hard limit. The servers we start inherit it: they need as many.
pub fn raise_open_files(connections: usize) -> Result<(), String> {
    let want = connections as libc::rlim_t + 256;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit to a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if limit.rlim_cur >= want {
        return Ok(());
    }
    if limit.rlim_max < want {
        return Err(format!(
            "{connections} connections need {want} open files, and the hard limit is {} (raise it: ulimit -Hn)",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = want;
    // SAFETY: setrlimit reads one rlimit from a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The CPUs to pin to: the server on the first, the generator on the second. `None` on a
/// single-core machine or without `taskset` (util-linux) to start the server with.
pub fn pinning() -> Option<(usize, usize)> {
    let cpus = allowed_cpus();
    let taskset = Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
    match cpus[..] {
        [server, generator, ..] if taskset => Some((server, generator)),
        _ => None,
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is that of the set passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the set within its size (CPU_SETSIZE).
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`.
pub fn pin_this_thread(cpu: usize) -> Result<(), String> {
    // SAFETY: as in `allowed_cpus`; CPU_SET writes within the set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) } != 0 {
        return Err(format!("cannot pin the generator to CPU {cpu}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The resident set of process `pid` in bytes (VmRSS in /proc/PID/status).
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}
