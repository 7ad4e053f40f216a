use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lowbit_websockets::hyper::{Body, upgrade};
use lowbit_websockets::{AcceptOptions, DeflateOptions, OpCode};
use tokio::net::TcpListener;

/// Upgrades with permessage-deflate and echoes; core answers a bad request with its 4xx.
async fn echo(mut req: Request<Incoming>) -> Result<Response<Body>, std::convert::Infallible> {
    let opts = AcceptOptions { deflate: Some(DeflateOptions::default()), ..AcceptOptions::default() };
    let (response, upgrading) = match upgrade(&mut req, &opts) {
        Ok(upgrade) => upgrade,
        Err(refused) => return Ok(refused.into_response()),
    };
    tokio::spawn(async move {
        let (mut conn, _accepted) = upgrading.await?; // once hyper has sent the 101
        let mut buf = Vec::new();
        loop {
            let (op, payload) = conn.read_message(&mut buf).await?;
            if op == OpCode::Close {
                return Ok::<_, lowbit_websockets::Error>(());
            }
            conn.write_message(op, payload).await?;
        }
    });
    Ok(response)
}

/// Serves `echo` on every connection; `with_upgrades` lets hyper hand the stream over.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(echo));
        tokio::spawn(connection.with_upgrades());
    }
}
