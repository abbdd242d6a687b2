//! Reference parsing must never panic and must round-trip what it accepts.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(ocirepl::reference::ImageRef::Registry(r)) = ocirepl::reference::ImageRef::parse(s)
    {
        let again = ocirepl::reference::Reference::parse(&r.to_string()).expect("round trip");
        assert_eq!(again, r);
    }
});
