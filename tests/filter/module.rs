//! The module's shape: proxy-wasm ABI 0.2.1 imports only, no WASI, the exports Envoy needs.

use sse_tests::filter_wasm;
use wasmparser::{Parser, Payload, TypeRef};

struct Shape {
    imports: Vec<(String, String)>,
    exports: Vec<String>,
}

fn shape() -> Shape {
    let bytes = std::fs::read(filter_wasm()).unwrap();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid wasm module") {
            Payload::ImportSection(section) => {
                for import in section {
                    let import = import.unwrap();
                    assert!(
                        matches!(import.ty, TypeRef::Func(_)),
                        "only function imports: {}",
                        import.name
                    );
                    imports.push((import.module.to_owned(), import.name.to_owned()));
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    exports.push(export.unwrap().name.to_owned());
                }
            }
            _ => {}
        }
    }
    Shape { imports, exports }
}

#[test]
fn filter_imports_only_proxy_wasm_functions_from_env() {
    let shape = shape();
    assert!(!shape.imports.is_empty());
    for (module, name) in &shape.imports {
        assert_eq!(
            module, "env",
            "{module}.{name}: no WASI or wasm-bindgen imports (Envoy would refuse to load it)"
        );
        assert!(
            name.starts_with("proxy_"),
            "env.{name} is not a proxy-wasm ABI function"
        );
    }
}

#[test]
fn filter_exports_the_abi_version_allocator_and_callbacks() {
    let exports = shape().exports;
    for needed in [
        "proxy_abi_version_0_2_1",
        "malloc",
        "memory",
        "_initialize",
        "proxy_on_context_create",
        "proxy_on_configure",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_log",
        "proxy_on_done",
        "proxy_on_delete",
    ] {
        assert!(exports.iter().any(|e| e == needed), "missing export {needed}");
    }
}
