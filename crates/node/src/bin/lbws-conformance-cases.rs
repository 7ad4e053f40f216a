//! Prints the shared conformance list (`host-tests/conformance/cases.rs`) as JSON lines, one
//! case each, so the Node and Deno test suites run exactly the cases the native and
//! component faces run: `{"name", "maxReadLimit", "deflate", "bytes" (hex), "expect"}`.

#[allow(dead_code)]
mod conformance {
    include!("../../../../host-tests/conformance/cases.rs");
}

use std::fmt::Write as _;
use std::io::Write as _;

use conformance::{Expect, cases};

fn main() {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
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
        let mut hex = String::with_capacity(case.bytes.len() * 2);
        for b in &case.bytes {
            let _ = write!(hex, "{b:02x}");
        }
        writeln!(
            out,
            r#"{{"name":"{}","maxReadLimit":{},"deflate":{},"expect":{expect},"bytes":"{hex}"}}"#,
            case.name, case.max_read_limit, case.deflate
        )
        .expect("stdout");
    }
}
