//! The lowbit websockets WebAssembly component: core's blocking [`Conn`] driven over
//! `wasi:io` streams the host hands in, exported as the `lowbit:websockets` WIT package
//! (`wit/` at the workspace root).
//!
//! This crate is glue and nothing else: it converts WIT types to core's ([`convert`]), moves
//! bytes between core and the streams ([`io`]), and calls core for every decision. Build it
//! with `cargo build --release --target wasm32-wasip2 -p lowbit-websockets-component`.
//!
//! Buffers are reused: a connection keeps one message buffer, core keeps its codec buffers,
//! and reads land in core's buffer without a copy, so the in-component echo loop allocates
//! nothing per message once warm. Functions that return a message to the caller
//! (`read-message`, `read-frame`) allocate the returned `list<u8>`, as the canonical ABI
//! requires; it is freed when the call returns.

#![warn(missing_docs)]

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "websockets",
        generate_all,
    });
}

mod convert;
pub mod io;

use std::cell::RefCell;

use lowbit_websockets::deflate::DeflateConfig as CoreConfig;
use lowbit_websockets::deflate::negotiate::{client_offer, client_verify, server_accept};
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{
    AcceptOptions, CloseCode, Config, ConnectOptions, DeflateOptions, OpCode, Role, SubprotocolPolicy,
};

use bindings::exports::lowbit::websockets::{deflate, echo, framing, handshake, types};
use bindings::wasi::io::streams::{InputStream, OutputStream};
use convert::*;
use types::{DeflateConfig, Error, Frame, Limits, Message, Opcode};

type Conn = lowbit_websockets::Conn<io::Streams>;

struct Component;

bindings::export!(Component with_types_in bindings);

/// The state behind one `connection` resource. WIT methods take `&self`, hence the cell;
/// calls never nest, so the borrow never fails.
struct Connection {
    inner: RefCell<Inner>,
}

struct Inner {
    conn: Conn,
    /// The message buffer, reused across reads.
    buf: Vec<u8>,
    config: Config,
    deflate: Option<CoreConfig>,
}

impl Connection {
    fn wrap(conn: Conn, config: Config, deflate: Option<CoreConfig>) -> Self {
        Self { inner: RefCell::new(Inner { conn, buf: Vec::new(), config, deflate }) }
    }
}

impl types::Guest for Component {
    fn close_code(e: Error) -> Option<u16> {
        convert::close_code(&e)
    }
}

impl framing::Guest for Component {
    type Connection = Connection;
}

impl framing::GuestConnection for Connection {
    fn new(input: InputStream, output: OutputStream, role: types::Role, limits: Limits) -> Self {
        let config = config(role_in(role), limits);
        Self::wrap(Conn::with_config(io::Streams::new(input, output), config), config, None)
    }

    fn read_message(&self) -> Result<Message, Error> {
        let mut inner = self.inner.borrow_mut();
        let Inner { conn, buf, .. } = &mut *inner;
        let (op, payload) = conn.read_message(buf).map_err(error_out)?;
        Ok(Message { op: opcode_out(op), payload: payload.to_vec() })
    }

    fn read_frame(&self) -> Result<Frame, Error> {
        let mut inner = self.inner.borrow_mut();
        let Inner { conn, buf, .. } = &mut *inner;
        let f = conn.read_frame(buf).map_err(error_out)?;
        Ok(Frame { is_final: f.is_final, rsv: f.rsv, op: opcode_out(f.op), payload: f.payload.to_vec() })
    }

    fn write_frame(&self, is_final: bool, rsv: u8, op: Opcode, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.borrow_mut().conn.write_frame(is_final, rsv, opcode_in(op), &payload).map_err(error_out)
    }

    fn write_message(&self, op: Opcode, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.borrow_mut().conn.write_message(opcode_in(op), &payload).map_err(error_out)
    }

    fn stream_message(&self, op: Opcode, chunk_size: u32, source: &InputStream) -> Result<(), Error> {
        let mut reader = io::Reader(source);
        self.inner.borrow_mut().conn.stream_message(opcode_in(op), chunk_size as usize, &mut reader).map_err(error_out)
    }

    fn ping(&self, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.borrow_mut().conn.ping(&payload).map_err(error_out)
    }

    fn pong(&self, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.borrow_mut().conn.pong(&payload).map_err(error_out)
    }

    fn close_with_code(&self, code: u16, reason: String) -> Result<(), Error> {
        self.inner.borrow_mut().conn.close_with_code(CloseCode(code), &reason).map_err(error_out)
    }

    fn fail(&self, code: u16, reason: String) -> Result<(), Error> {
        self.inner.borrow_mut().conn.fail(CloseCode(code), &reason).map_err(error_out)
    }

    fn set_deflate(&self, config: Option<DeflateConfig>) {
        let mut inner = self.inner.borrow_mut();
        inner.deflate = config.map(deflate_in);
        let config = inner.deflate;
        inner.conn.set_deflate(config.as_ref(), None);
    }

    fn deflate(&self) -> Option<DeflateConfig> {
        self.inner.borrow().deflate.as_ref().map(deflate_out)
    }

    fn role(&self) -> types::Role {
        role_out(self.inner.borrow().config.role)
    }

    fn limits(&self) -> Limits {
        limits_out(&self.inner.borrow().config)
    }
}

impl deflate::Guest for Component {
    fn default_options() -> types::DeflateOptions {
        options_out(&DeflateOptions::default())
    }

    fn server_accept(offer: String, options: types::DeflateOptions) -> Option<(String, DeflateConfig)> {
        server_accept([offer.as_str()], &options_in(options)).map(|(header, config)| (header, deflate_out(&config)))
    }

    fn client_offer(options: types::DeflateOptions) -> Result<String, Error> {
        client_offer(&options_in(options)).map_err(|e| error_out(lowbit_websockets::Error::Negotiation(e)))
    }

    fn client_verify(response: Option<String>, options: types::DeflateOptions) -> Result<Option<DeflateConfig>, Error> {
        match client_verify(response.as_deref(), &options_in(options)) {
            Ok(config) => Ok(config.as_ref().map(deflate_out)),
            Err(e) => Err(error_out(lowbit_websockets::Error::Negotiation(e))),
        }
    }
}

impl handshake::Guest for Component {
    fn accept(
        input: InputStream,
        output: OutputStream,
        options: handshake::AcceptOptions,
    ) -> Result<(framing::Connection, handshake::Accepted), Error> {
        let opts = AcceptOptions {
            config: config(Role::Server, options.limits),
            deflate: options.deflate.map(options_in),
            protocols: SubprotocolPolicy::FirstSupported(options.protocols),
            ..AcceptOptions::default()
        };
        let (conn, accepted) = lowbit_websockets::accept(io::Streams::new(input, output), &opts).map_err(error_out)?;
        let info = handshake::Accepted {
            path: accepted.path,
            protocol: accepted.protocol,
            extensions: accepted.extensions,
            deflate: accepted.deflate.as_ref().map(deflate_out),
        };
        Ok((framing::Connection::new(Connection::wrap(conn, opts.config, accepted.deflate)), info))
    }

    fn connect(
        input: InputStream,
        output: OutputStream,
        options: handshake::ConnectOptions,
    ) -> Result<(framing::Connection, handshake::Connected), Error> {
        let opts = ConnectOptions {
            config: config(Role::Client, options.limits),
            request: ClientOptions {
                protocols: options.protocols,
                ..ClientOptions::new(options.host).path(options.path)
            },
            deflate: options.deflate.map(options_in),
        };
        let (conn, connected) =
            lowbit_websockets::connect(io::Streams::new(input, output), &opts).map_err(error_out)?;
        let info = handshake::Connected {
            protocol: connected.protocol,
            extensions: connected.extensions,
            deflate: connected.deflate.as_ref().map(deflate_out),
        };
        Ok((framing::Connection::new(Connection::wrap(conn, opts.config, connected.deflate)), info))
    }

    fn accept_key(key: String) -> String {
        lowbit_websockets::handshake::accept_key(&key)
    }
}

impl echo::Guest for Component {
    fn run(conn: framing::ConnectionBorrow<'_>) -> Result<u64, Error> {
        let mut inner = conn.get::<Connection>().inner.borrow_mut();
        let Inner { conn, buf, .. } = &mut *inner;
        let mut echoed = 0;
        loop {
            let (op, payload) = conn.read_message(buf).map_err(error_out)?;
            if op == OpCode::Close {
                return Ok(echoed);
            }
            conn.write_message(op, payload).map_err(error_out)?;
            echoed += 1;
        }
    }
}
