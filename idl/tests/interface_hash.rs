//! The interface hash the image tool compares across a channel's two ends: it must
//! change with anything that changes the wire format and nothing else.

fn hash(src: &str) -> u64 {
    let iface = gaon_idl::parse("t.idl", src).expect("valid IDL");
    gaon_idl::interface_hash(&iface)
}

const BASE: &str = "interface Kv {\n    error KvError { Missing = 1 }\n    fn get(key: u32) -> Result<u64, KvError>;\n    oneway fn poke(v: u8);\n}\n";

#[test]
fn comments_and_layout_do_not_count() {
    let documented = "/// A store.\ninterface Kv {\n    /// Errors.\n    error KvError {\n        /// Not there.\n        Missing = 1,\n    }\n    /// Get.\n    fn get(key: u32) -> Result<u64, KvError>;\n\n    oneway fn poke(v: u8);\n}\n";
    assert_eq!(hash(BASE), hash(documented));
}

#[test]
fn wire_changes_count() {
    let base = hash(BASE);
    for changed in [
        BASE.replace("key: u32", "key: u64"),
        BASE.replace("Missing = 1", "Missing = 2"),
        BASE.replace("oneway fn poke", "fn poke"),
        BASE.replace("Result<u64, KvError>", "u64"),
        BASE.replace("interface Kv", "interface Kv2"),
        BASE.replace("key: u32", "key: [u32; 2]"),
        BASE.replace("key: u32", "key: vec<u32, 2>"),
        BASE.replace(
            "fn get(key: u32) -> Result<u64, KvError>;\n    oneway fn poke(v: u8);",
            "oneway fn poke(v: u8);\n    fn get(key: u32) -> Result<u64, KvError>;",
        ),
    ] {
        assert_ne!(hash(&changed), base, "{changed}");
    }
}
