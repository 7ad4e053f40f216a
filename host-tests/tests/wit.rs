//! The built component against `wit/`: it validates, its exports are the `websockets`
//! world's interfaces with the same functions and types (what `wasm-tools component wit`
//! would show), and `wit/deps` is the wasi:io wasmtime-wasi implements.

use std::collections::BTreeMap;

use host_tests::{component_path, workspace};
use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{Resolve, WorldId, WorldItem, WorldKey};

/// Interface ID (`lowbit:websockets/framing@0.1.0`) → sorted function and type names, with
/// each function's parameter names and whether it returns something.
fn exports(resolve: &Resolve, world: WorldId) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut out = BTreeMap::new();
    for (key, item) in &resolve.worlds[world].exports {
        let (WorldKey::Interface(id), WorldItem::Interface { .. }) = (key, item) else {
            panic!("unexpected export {key:?}");
        };
        let iface = &resolve.interfaces[*id];
        let mut funcs: Vec<String> = iface
            .functions
            .values()
            .map(|f| {
                let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
                format!("{}({}){}", f.name, params.join(","), if f.result.is_some() { "->" } else { "" })
            })
            .collect();
        funcs.sort();
        let mut types: Vec<String> = iface.types.keys().cloned().collect();
        types.sort();
        out.insert(resolve.id_of(*id).expect("named interface"), (funcs, types));
    }
    out
}

#[test]
fn component_validates_and_exports_the_websockets_world() {
    let bytes = std::fs::read(component_path()).expect("component");
    eprintln!("component: {} bytes ({})", bytes.len(), component_path().display());
    wasmparser::Validator::new().validate_all(&bytes).expect("valid component");

    let DecodedWasm::Component(built, built_world) = decode(&bytes).expect("decodes") else {
        panic!("not a component")
    };
    let mut source = Resolve::default();
    let (pkg, _) = source.push_dir(workspace().join("wit")).expect("wit/ parses");
    let world = source.select_world(&[pkg], Some("websockets")).expect("world");
    let (want, got) = (exports(&source, world), exports(&built, built_world));
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (name, w) in &want {
        assert_eq!(Some(w), got.get(name), "{name} differs between wit/ and the component");
    }
    // The only non-WASI imports would be protocol dependencies: there are none.
    for key in built.worlds[built_world].imports.keys() {
        let name = built.name_world_key(key);
        assert!(name.starts_with("wasi:"), "unexpected import {name}");
    }
}

#[test]
fn framing_only_world_is_a_subset() {
    let mut source = Resolve::default();
    let (pkg, _) = source.push_dir(workspace().join("wit")).expect("wit/ parses");
    let full = exports(&source, source.select_world(&[pkg], Some("websockets")).unwrap());
    let small = exports(&source, source.select_world(&[pkg], Some("framing-only")).unwrap());
    assert!(small.len() < full.len());
    for (name, item) in &small {
        assert_eq!(Some(item), full.get(name), "{name}");
    }
}

#[test]
fn wit_deps_match_wasmtime_wasi() {
    let vendored = std::fs::read(workspace().join("wit/deps/io/io.wit")).expect("vendored io.wit");
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let Ok(indexes) = std::fs::read_dir(home.join("registry/src")) else {
        return host_tests::skip("no cargo registry sources to compare wit/deps/io with");
    };
    let mut checked = false;
    for index in indexes.flatten() {
        let upstream = index.path().join("wasmtime-wasi-48.0.8/src/p2/wit/deps/io.wit");
        if let Ok(upstream) = std::fs::read(&upstream) {
            assert!(upstream == vendored, "wit/deps/io/io.wit differs from {}", upstream.len());
            checked = true;
        }
    }
    if !checked {
        host_tests::skip("wasmtime-wasi 48.0.8 sources not in the cargo registry");
    }
}
