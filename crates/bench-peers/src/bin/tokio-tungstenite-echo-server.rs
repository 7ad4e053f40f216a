//! An echo server over tokio-tungstenite 0.30 (tungstenite 0.30, the version the workspace
//! tests against). See the crate docs for the shape all the peers share. The read buffer is
//! 64 KiB, as in `tungstenite-echo-server` and our servers (tungstenite's default is 128 KiB).

use std::process::ExitCode;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const READ_BUFFER_SIZE: usize = 64 * 1024;

fn main() -> ExitCode {
    bench_peers::serve("tokio-tungstenite-echo-server", echo)
}

/// Handshake, then echo until the close handshake. Each echo is `send` (write + flush).
/// tungstenite queues the pongs and the answer to the peer's close itself and writes them
/// with the next write or read.
async fn echo(stream: TcpStream) -> Result<(), String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(bench_peers::MAX_MESSAGE))
        .max_frame_size(Some(bench_peers::MAX_MESSAGE));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    while let Some(message) = ws.next().await {
        let message = message.map_err(|e| format!("read failed: {e}"))?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await.map_err(|e| format!("write failed: {e}"))?;
        }
    }
    Ok(())
}
