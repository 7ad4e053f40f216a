//! Prints the shared conformance list (`host-tests/conformance/cases.rs`) as JSON lines, one
//! case each, so the Node and Deno test suites run exactly the cases the native and
//! component faces run: `{"name", "maxReadLimit", "deflate", "bytes" (hex), "expect"}`.
//! With `--handshakes`, the shared handshake list (`host-tests/conformance/handshakes.rs`)
//! instead: `{"name", "request" (hex), "status": [..], "has", "lacks"}`.

#[allow(dead_code)]
mod conformance {
    include!("../../../../host-tests/conformance/cases.rs");
}

#[allow(dead_code)]
mod handshakes {
    include!("../../../../host-tests/conformance/handshakes.rs");
}

use std::fmt::Write as _;
use std::io::Write as _;

use conformance::{Expect, cases};

fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A JSON string or `null` (the values here need no escaping).
fn string_or_null(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""))
}

fn main() {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if std::env::args().any(|a| a == "--handshakes") {
        for case in handshakes::handshake_cases() {
            let status: Vec<String> = case.status.iter().map(u16::to_string).collect();
            writeln!(
                out,
                r#"{{"name":"{}","status":[{}],"has":{},"lacks":{},"request":"{}"}}"#,
                case.name,
                status.join(","),
                string_or_null(case.has),
                string_or_null(case.lacks),
                hex(&case.request)
            )
            .expect("stdout");
        }
        return;
    }
    for case in cases() {
        let expect = match case.expect {
            Expect::Echo { messages, close } => format!(r#"{{"type":"echo","messages":{messages},"close":{close}}}"#),
            Expect::Fail { kind, code } => {
                let code = code.map_or_else(|| "null".to_owned(), |c| c.to_string());
                format!(r#"{{"type":"fail","kind":"{kind}","code":{code}}}"#)
            }
            Expect::FailAnyOf { codes } => {
                let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
                format!(r#"{{"type":"failAnyOf","codes":[{}]}}"#, codes.join(","))
            }
        };
        writeln!(
            out,
            r#"{{"name":"{}","maxReadLimit":{},"deflate":{},"expect":{expect},"bytes":"{}"}}"#,
            case.name,
            case.max_read_limit,
            case.deflate,
            hex(&case.bytes)
        )
        .expect("stdout");
    }
}
