//! docs/webhooks.md's event table says exactly what the code sends.

use std::collections::BTreeMap;
use vkyc::domain::events::{event_type, HOSTED_EVENTS};
use vkyc::domain::status::SubStatus;

#[test]
fn the_documented_event_table_is_the_codes() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/webhooks.md")).unwrap();
    let mut documented: BTreeMap<String, String> = BTreeMap::new();
    let mut hosted = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `VKYC_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let event = cells[1].trim_matches('`').to_string();
        if cells[2] == "hosted" {
            hosted.push(event.clone());
        }
        for sub in cells[3].split(',') {
            let sub = sub.trim().trim_matches('`').to_string();
            assert!(
                documented.insert(sub.clone(), event.clone()).is_none(),
                "{sub} twice"
            );
        }
    }
    let code: BTreeMap<String, String> = SubStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), event_type(*s).to_string()))
        .collect();
    assert_eq!(
        documented, code,
        "every sub-status, with the event the code sends"
    );
    hosted.sort();
    let mut expected: Vec<String> = HOSTED_EVENTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(hosted, expected, "the hosted service's ten names");
}
