//! The component's frame-level writes keep core's outgoing fragmentation rule: after a frame
//! without FIN, only continuation (or control) frames may follow until the message ends.

use std::io::Read;
use std::net::{TcpListener, TcpStream};

use host_tests::*;
use lowbit_ws_host::bindings::exports::lowbit::websockets::types::Role;
use lowbit_ws_host::{Error, Limits, Opcode};

#[test]
fn a_data_frame_after_fin_false_is_misuse_in_the_component() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (tcp, _) = listener.accept().expect("accept");
    let mut session = host().session().expect("session");
    let conn = session.wrap(tcp, Role::Server, Limits { max_read_limit: 0, max_chunk_size: 0 }).expect("wrap");
    let (ws, store) = session.0.exports();
    let framing = ws.lowbit_websockets_framing().connection();
    let mut write = |fin: bool, op: Opcode, payload: &[u8]| {
        lowbit_ws_host::block_on(framing.call_write_frame(&mut *store, conn, fin, 0, op, payload)).expect("no trap")
    };
    write(false, Opcode::Text, b"a").expect("first fragment");
    write(true, Opcode::Ping, b"p").expect("a control frame between fragments");
    for op in [Opcode::Text, Opcode::Binary] {
        match write(true, op, b"x") {
            Err(Error::Misuse(why)) => assert!(why.contains("fragmented message"), "{why}"),
            other => panic!("{op:?} after fin: false: {other:?}"),
        }
    }
    write(true, Opcode::Continuation, b"b").expect("the continuation ends the message");
    match write(true, Opcode::Continuation, b"c") {
        Err(Error::Misuse(why)) => assert!(why.contains("continuation"), "{why}"),
        other => panic!("a continuation with no message: {other:?}"),
    }
    session.drop_connection(conn).expect("drop");
    drop(session);
    // The refusals wrote nothing: the peer sees one message around the ping.
    let mut wire = Vec::new();
    peer.read_to_end(&mut wire).expect("read");
    let frames = parse_server_frames(&wire);
    assert_eq!(frames, [(9, b"p".to_vec()), (1, b"ab".to_vec())]);
}
