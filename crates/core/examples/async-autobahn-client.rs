//! The Autobahn|Testsuite client for the async face: the same cases as `autobahn-client.rs`,
//! over [`AsyncConn`] on one current-thread tokio runtime.
//!
//! ```sh
//! AUTOBAHN_URL=ws://127.0.0.1:9001 AUTOBAHN_AGENT=lowbit \
//!     cargo run --release -p lowbit-websockets --features tokio --example async-autobahn-client
//! ```

use std::process::ExitCode;
use std::time::Duration;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{
    AsyncConn, Config, ConnectOptions, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role, connect_async,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error>;

/// The suite sends messages of up to 16 MiB (9.1.6, 9.2.6).
const MAX_MESSAGE: usize = READ_LIMIT_LARGE;
/// The largest frame written.
const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// How long to wait for the server to hang up after the close handshake.
const LINGER: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".to_owned());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "lowbit".to_owned());
    let Some(host) = url.strip_prefix("ws://").map(|h| h.trim_end_matches('/').to_owned()) else {
        eprintln!("async-autobahn-client: AUTOBAHN_URL must be ws://HOST:PORT, not {url}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("async-autobahn-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(&host, &agent))
}

async fn run(host: &str, agent: &str) -> ExitCode {
    let count = match case_count(host).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("async-autobahn-client: getCaseCount failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("async-autobahn-client: {count} cases");
    for case in 1..=count {
        if let Err(e) = echo(host, &format!("/runCase?case={case}&agent={agent}")).await {
            eprintln!("case {case}: {e}");
        }
    }
    match echo(host, &format!("/updateReports?agent={agent}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async-autobahn-client: updateReports failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(host: &str, path: &str) -> Result<AsyncConn<TcpStream>, BoxError> {
    let stream = TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let opts = ConnectOptions {
        request: ClientOptions::new(host.to_owned()).path(path.to_owned()),
        config: Config::new(Role::Client).max_read_limit(MAX_MESSAGE).max_chunk_size(MAX_CHUNK_SIZE),
        // As the blocking client: offer client_no_context_takeover so the suite runs those cases.
        deflate: Some(DeflateOptions { client_no_context_takeover: true, ..DeflateOptions::default() }),
    };
    let (conn, _connected) = connect_async(stream, &opts).await?;
    Ok(conn)
}

async fn case_count(host: &str) -> Result<u32, BoxError> {
    let mut conn = connect(host, "/getCaseCount").await?;
    let mut buf = Vec::new();
    let (op, payload) = conn.read_message(&mut buf).await?;
    if op != OpCode::Text {
        return Err(format!("expected a text message, got {op:?}").into());
    }
    let count = std::str::from_utf8(payload)?.trim().parse()?;
    while conn.read_message(&mut buf).await?.0 != OpCode::Close {}
    wait_for_hangup(conn.into_inner()).await;
    Ok(count)
}

async fn echo(host: &str, path: &str) -> Result<(), BoxError> {
    let mut conn = connect(host, path).await?;
    let mut buf = Vec::new();
    loop {
        match conn.read_message(&mut buf).await? {
            (OpCode::Close, _) => break,
            (op, payload) => conn.write_message(op, payload).await?,
        }
    }
    wait_for_hangup(conn.into_inner()).await;
    Ok(())
}

/// RFC 6455 §7.1.1: the server closes the TCP connection first; a client waits for that.
async fn wait_for_hangup(mut stream: TcpStream) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
