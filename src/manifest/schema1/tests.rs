use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it (then review the diff).
fn golden(name: &str, actual: &[u8]) {
    let path = format!("{FIXTURES}/{name}");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = fixture(name);
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{name} differs (UPDATE_GOLDEN=1 to accept a reviewed change)"
    );
}

fn diff(n: char) -> Digest {
    format!("sha256:{}", n.to_string().repeat(64))
        .parse()
        .unwrap()
}

#[test]
fn schema1_to_schema2_golden() {
    let s1 = Schema1::parse(&fixture("schema1.json")).unwrap();
    // The duplicate v1 ID collapsed: 3 entries remain, oldest first.
    assert_eq!(s1.entries.len(), 3);
    let layers = s1.layers();
    assert_eq!(layers.len(), 2, "the throwaway entry is not a layer");
    assert_eq!(layers[0].blob, diff('2'));
    assert_eq!(layers[1].blob, diff('1'));
    let (config, manifest) = s1
        .to_schema2(&[(diff('d'), 100), (diff('e'), 200)])
        .unwrap();
    golden("schema1-to-schema2-config.json", &config);
    golden("schema1-to-schema2.json", &manifest.bytes);
    assert_eq!(manifest.digest, Digest::sha256(&manifest.bytes));
    let m: Value = serde_json::from_slice(&manifest.bytes).unwrap();
    assert_eq!(m["config"]["digest"], Digest::sha256(&config).to_string());
    let c: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(c["history"].as_array().unwrap().len(), 3);
    assert!(c.get("id").is_none() && c.get("parent").is_none() && c.get("Size").is_none());
}

fn entry(id: &str, parent: Option<&str>) -> String {
    let p = parent
        .map(|p| format!(r#","parent":"{p}""#))
        .unwrap_or_default();
    serde_json::to_string(&format!(r#"{{"id":"{id}"{p}}}"#)).unwrap()
}

fn doc(entries: &[String], layers: usize) -> Vec<u8> {
    let fs: Vec<String> = (0..layers)
        .map(|i| {
            format!(
                r#"{{"blobSum":"sha256:{}"}}"#,
                format!("{i:x}")
                    .repeat(64)
                    .chars()
                    .take(64)
                    .collect::<String>()
            )
        })
        .collect();
    let h: Vec<String> = entries
        .iter()
        .map(|e| format!(r#"{{"v1Compatibility":{e}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":1,"fsLayers":[{}],"history":[{}]}}"#,
        fs.join(","),
        h.join(",")
    )
    .into_bytes()
}

#[test]
fn invalid_structures_are_rejected() {
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let ok = doc(&[entry(&b, Some(&a)), entry(&a, None)], 2);
    assert!(Schema1::parse(&ok).is_ok());
    assert!(matches!(
        Schema1::parse(&doc(&[entry(&a, None)], 2)),
        Err(Schema1Error::LengthMismatch {
            layers: 2,
            history: 1
        })
    ));
    assert!(matches!(
        Schema1::parse(&doc(&[], 0)),
        Err(Schema1Error::Empty)
    ));
    assert!(matches!(
        Schema1::parse(&doc(&[entry("not-hex", None)], 1)),
        Err(Schema1Error::BadId(_))
    ));
    assert!(matches!(
        Schema1::parse(&doc(&[entry(&b, Some(&c)), entry(&a, None)], 2)),
        Err(Schema1Error::BrokenChain { .. })
    ));
    assert!(matches!(
        Schema1::parse(&doc(
            &[entry(&a, Some(&b)), entry(&b, Some(&a)), entry(&a, None)],
            3
        )),
        Err(Schema1Error::DuplicateId(_) | Schema1Error::BrokenChain { .. })
    ));
    assert!(matches!(
        Schema1::parse(&doc(&[entry(&b, Some(&a)), entry(&a, Some(&c))], 2)),
        Err(Schema1Error::BrokenChain { .. })
    ));
    let s1 = Schema1::parse(&ok).unwrap();
    assert!(matches!(
        s1.to_schema2(&[]),
        Err(Schema1Error::DiffIds {
            expected: 2,
            got: 0
        })
    ));
    assert!(Schema1::parse(b"{").is_err());
    assert!(matches!(
        Schema1::parse(&doc(&[r#""{not json""#.to_string()], 1)),
        Err(Schema1Error::History { index: 0, .. })
    ));
}
