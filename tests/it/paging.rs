//! Paging as Graph pages: default and clamped page sizes, `$top`, next links that neither skip
//! nor repeat while records are being ingested.

use serde_json::json;

use crate::support::*;

both!(list_pages_sixty_at_a_time_in_start_then_id_order);
async fn list_pages_sixty_at_a_time_in_start_then_id_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = minute_records("r", 150);
    app.ingest_ok(&records).await;

    let first = app.graph("/communications/callRecords").await;
    assert_eq!(first.json()["value"].as_array().unwrap().len(), 60);
    assert_eq!(first.header("preference-applied"), None);
    let (items, pages) = app.collect_pages("/communications/callRecords", &[]).await;
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..150).map(|n| format!("r-{n:04}")).collect();
    assert_eq!(ids(&items), expected);
}

both!(maxpagesize_is_honoured_reported_and_clamped);
async fn maxpagesize_is_honoured_reported_and_clamped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&minute_records("r", 70)).await;

    let small = app
        .graph_with("/communications/callRecords", &[("Prefer", "odata.maxpagesize=25")])
        .await;
    assert_eq!(small.header("preference-applied"), Some("odata.maxpagesize=25"));
    assert_eq!(small.json()["value"].as_array().unwrap().len(), 25);
    let (items, pages) = app
        .collect_pages("/communications/callRecords", &[("Prefer", "odata.maxpagesize=25")])
        .await;
    assert_eq!((items.len(), pages), (70, 3));

    let large = app
        .graph_with("/communications/callRecords", &[("Prefer", "odata.maxpagesize=1000")])
        .await;
    assert_eq!(large.header("preference-applied"), Some("odata.maxpagesize=60"));
    assert_eq!(large.json()["value"].as_array().unwrap().len(), 60);
}

both!(top_caps_the_total_across_pages);
async fn top_caps_the_total_across_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&minute_records("r", 100)).await;
    let (items, pages) = app.collect_pages("/communications/callRecords?$top=70", &[]).await;
    assert_eq!((items.len(), pages), (70, 2));
    let (items, pages) = app.collect_pages("/communications/callRecords?$top=60", &[]).await;
    assert_eq!((items.len(), pages), (60, 1));
}

both!(paging_neither_skips_nor_repeats_while_records_arrive);
async fn paging_neither_skips_nor_repeats_while_records_arrive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&minute_records("old", 120)).await;
    let headers = [("Prefer", "odata.maxpagesize=20")];

    let mut answer = app.graph_with("/communications/callRecords", &headers).await;
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let body = answer.json();
        seen.extend(ids(body["value"].as_array().unwrap()));
        // Between pages, records arrive both before and after the cursor.
        let early = record(&format!("new-early-{round}"), "2024-02-01T00:00:00Z", 1, &["a"]);
        let late = record(&format!("new-late-{round}"), "2024-04-01T00:00:00Z", 1, &["a"]);
        app.ingest_ok(&[early, late]).await;
        round += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => answer = app.follow(next, &headers).await,
            None => break,
        }
    }
    let old: Vec<&String> = seen.iter().filter(|id| id.starts_with("old-")).collect();
    let expected: Vec<String> = (0..120).map(|n| format!("old-{n:04}")).collect();
    assert_eq!(
        old,
        expected.iter().collect::<Vec<_>>(),
        "every old record exactly once, in order"
    );
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no record repeated");
    assert!(
        seen.iter().any(|id| id.starts_with("new-late-")),
        "records after the cursor are reached"
    );
}

both!(next_link_keeps_filter_select_and_count);
async fn next_link_keeps_filter_select_and_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&minute_records("r", 90)).await;
    let first = app
        .graph("/communications/callRecords?$filter=startDateTime%20ge%202024-03-01T00:10:00Z&$select=id,startDateTime&$count=true")
        .await
        .json();
    assert_eq!(first["@odata.count"], 80);
    assert_eq!(
        first["value"][0],
        json!({ "id": "r-0010", "startDateTime": "2024-03-01T00:10:00Z" })
    );
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&format!("http://{}/v1.0/communications/callRecords?$filter=startDateTime%20ge%202024-03-01T00:10:00Z&$select=id,startDateTime&$count=true&$skiptoken=", app.addr)), "{next}");
    let second = app.follow(next, &[]).await.json();
    assert_eq!(second["@odata.count"], 80);
    assert_eq!(second["value"].as_array().unwrap().len(), 20);
    assert_eq!(
        second["value"][0],
        json!({ "id": "r-0070", "startDateTime": "2024-03-01T01:10:00Z" })
    );
}

both!(skiptoken_is_bound_to_its_query_and_cannot_be_forged);
async fn skiptoken_is_bound_to_its_query_and_cannot_be_forged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&minute_records("r", 70)).await;
    let first = app.graph("/communications/callRecords?$select=id").await.json();
    let next = first["@odata.nextLink"].as_str().unwrap();
    let token = next.split("$skiptoken=").nth(1).unwrap();

    let reused = app
        .graph(&format!("/communications/callRecords?$skiptoken={token}"))
        .await;
    let body = reused.assert_error(400, "BadRequest");
    assert_eq!(body["error"]["message"], "Invalid skip token.");
    app.graph("/communications/callRecords?$skiptoken=garbage")
        .await
        .assert_error(400, "BadRequest");
}

both!(expanded_sessions_page_at_sixty_and_the_next_link_keeps_segments);
async fn expanded_sessions_page_at_sixty_and_the_next_link_keeps_segments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("big", "2024-01-01T00:00:00Z", 75, &["a"])])
        .await;

    let got = app
        .graph("/communications/callRecords/big?$expand=sessions($expand=segments)")
        .await
        .json();
    let sessions = got["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 60);
    assert_eq!(sessions[0]["segments"][0]["id"], "big-s0-g0");
    assert_eq!(
        got["sessions@odata.context"],
        format!(
            "http://{}/v1.0/$metadata#communications/callRecords('big')/sessions(segments())",
            app.addr
        )
    );
    let next = got["sessions@odata.nextLink"].as_str().expect("sessions next link");
    assert!(
        next.contains("/communications/callRecords('big')/sessions?$expand=segments&$skiptoken="),
        "{next}"
    );

    let rest = app.follow(next, &[]).await.json();
    let rest_sessions = rest["value"].as_array().unwrap();
    assert_eq!(rest_sessions.len(), 15);
    assert_eq!(rest_sessions[0]["id"], "big-s60");
    assert_eq!(rest_sessions[0]["segments"][0]["id"], "big-s60-g0");
    assert!(rest.get("@odata.nextLink").is_none());
}

both!(sessions_list_pages_and_counts);
async fn sessions_list_pages_and_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("big", "2024-01-01T00:00:00Z", 130, &["a"])])
        .await;
    let (sessions, pages) = app.collect_pages("/communications/callRecords/big/sessions", &[]).await;
    assert_eq!((sessions.len(), pages), (130, 3));
    assert!(
        sessions.iter().all(|s| s.get("segments").is_none()),
        "segments only when expanded"
    );
    let expected: Vec<String> = (0..130).map(|i| format!("big-s{i}")).collect();
    assert_eq!(ids(&sessions), expected);
    let (with_segments, _) = app
        .collect_pages(
            "/communications/callRecords/big/sessions?$expand=segments&$count=true",
            &[],
        )
        .await;
    assert!(with_segments
        .iter()
        .all(|s| s["segments"].as_array().unwrap().len() == 1));
    assert_eq!(
        app.graph("/communications/callRecords/big/sessions/$count").await.text,
        "130"
    );
}

both!(participants_page_at_one_hundred_thirty);
async fn participants_page_at_one_hundred_thirty(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let names: Vec<String> = (0..140).map(|i| format!("p{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.ingest_ok(&[record("crowd", "2024-01-01T00:00:00Z", 1, &refs)])
        .await;

    let (participants, pages) = app
        .collect_pages("/communications/callRecords/crowd/participants_v2", &[])
        .await;
    assert_eq!((participants.len(), pages), (140, 2));
    assert_eq!(ids(&participants), names);

    let got = app
        .graph("/communications/callRecords/crowd?$expand=participants_v2")
        .await
        .json();
    assert_eq!(got["participants_v2"].as_array().unwrap().len(), 130);
    let next = got["participants_v2@odata.nextLink"]
        .as_str()
        .expect("participants next link");
    let rest = app.follow(next, &[]).await.json();
    assert_eq!(ids(rest["value"].as_array().unwrap()), names[130..]);
}

/// One way of reading a record's children that the service accepts: the options of an
/// expansion (or of a listing) and a page-size preference.
#[derive(Clone, Debug)]
struct ChildReading {
    sessions: bool,
    /// `None`: no nested `$select`; `Some([])`: `$select=*`.
    select: Option<Vec<&'static str>>,
    /// Sessions only: `$expand=segments`, with its own nested `$select`.
    segments: Option<Option<Vec<&'static str>>>,
    organizer: Option<Option<Vec<&'static str>>>,
    max_page_size: Option<u32>,
    top: Option<u32>,
    listed: bool,
}

const SESSION_PROPERTIES: &[&str] = &[
    "caller",
    "callee",
    "failureInfo",
    "isTest",
    "modalities",
    "startDateTime",
    "endDateTime",
];
const SEGMENT_PROPERTIES: &[&str] = &[
    "caller",
    "callee",
    "failureInfo",
    "media",
    "startDateTime",
    "endDateTime",
];
const PARTICIPANT_PROPERTIES: &[&str] = &["identity", "administrativeUnitInfos"];

fn select_strategy(
    properties: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = Option<Vec<&'static str>>> {
    use proptest::prelude::*;
    prop_oneof![
        Just(None),
        Just(Some(Vec::new())),
        proptest::sample::subsequence(properties, 1..=properties.len().min(3)).prop_map(Some),
    ]
}

fn select_text(select: &[&str]) -> String {
    if select.is_empty() {
        "*".to_owned()
    } else {
        select.join(",")
    }
}

impl ChildReading {
    fn child(&self) -> &'static str {
        if self.sessions {
            "sessions"
        } else {
            "participants_v2"
        }
    }

    fn nested_options(&self) -> Vec<String> {
        let mut options = Vec::new();
        if let Some(select) = &self.select {
            options.push(format!("$select={}", select_text(select)));
        }
        if let Some(segments) = &self.segments {
            match segments {
                Some(select) => options.push(format!("$expand=segments($select={})", select_text(select))),
                None => options.push("$expand=segments".to_owned()),
            }
        }
        options
    }

    fn first_url(&self) -> String {
        let options = self.nested_options();
        if self.listed {
            let mut query = options;
            if let Some(top) = self.top {
                query.push(format!("$top={top}"));
            }
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            return format!("/communications/callRecords/big/{}{query}", self.child());
        }
        let mut expand = self.child().to_owned();
        if !options.is_empty() {
            expand = format!("{expand}({})", options.join(";"));
        }
        if let Some(organizer) = &self.organizer {
            expand.push_str(&match organizer {
                Some(select) => format!(",organizer_v2($select={})", select_text(select)),
                None => ",organizer_v2".to_owned(),
            });
        }
        format!("/communications/callRecords/big?$expand={expand}")
    }
}

// Every next link the service writes, for every way of reading a record's children it
// accepts, is accepted in turn and continues the same listing to its end: no item skipped,
// repeated or projected differently.
both!(every_next_link_is_accepted_and_continues_the_listing);
async fn every_next_link_is_accepted_and_continues_the_listing(backend: Backend) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    let app = TestApp::spawn(backend).await;
    let names: Vec<String> = (0..140).map(|n| format!("p{n:03}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.ingest_ok(&[record("big", "2024-01-01T00:00:00Z", 65, &name_refs)])
        .await;
    let session_ids: Vec<String> = (0..65).map(|n| format!("big-s{n}")).collect();

    let strategy = (
        any::<bool>(),
        select_strategy(SESSION_PROPERTIES),
        select_strategy(PARTICIPANT_PROPERTIES),
        proptest::option::of(select_strategy(SEGMENT_PROPERTIES)),
        proptest::option::of(select_strategy(&["identity"])),
        proptest::option::of(1u32..=150),
        proptest::option::of(1u32..=150),
        any::<bool>(),
    )
        .prop_map(
            |(sessions, session_select, participant_select, segments, organizer, max_page_size, top, listed)| {
                ChildReading {
                    sessions,
                    select: if sessions { session_select } else { participant_select },
                    segments: if sessions { segments } else { None },
                    organizer: if listed { None } else { organizer },
                    max_page_size,
                    top: if listed { top } else { None },
                    listed,
                }
            },
        );
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..40 {
        let reading = strategy.new_tree(&mut runner).unwrap().current();
        let prefer = reading.max_page_size.map(|n| format!("odata.maxpagesize={n}"));
        let headers: Vec<(&str, &str)> = prefer.iter().map(|p| ("Prefer", p.as_str())).collect();
        let first_url = reading.first_url();
        let first = app.graph_with(&first_url, &headers).await;
        assert_eq!(first.status, 200, "{reading:?} {first_url}: {}", first.text);
        if reading.max_page_size.is_some() {
            let applied = first.header("preference-applied").unwrap_or_default();
            assert!(applied.contains("odata.maxpagesize="), "{reading:?}: {applied}");
        }
        let body = first.json();
        let (mut items, mut next) = if reading.listed {
            (
                body["value"].as_array().unwrap().clone(),
                body["@odata.nextLink"].as_str().map(str::to_owned),
            )
        } else {
            if let Some(Some(select)) = &reading.organizer {
                if !select.is_empty() {
                    let organizer = body["organizer_v2"].as_object().unwrap();
                    assert!(
                        organizer.keys().all(|k| k == "id" || select.contains(&k.as_str())),
                        "{organizer:?}"
                    );
                }
            }
            let child = reading.child();
            (
                body[child].as_array().unwrap().clone(),
                body[format!("{child}@odata.nextLink")].as_str().map(str::to_owned),
            )
        };
        let page_limit = reading.max_page_size.unwrap_or(u32::MAX);
        assert!(items.len() as u32 <= page_limit, "{reading:?}: {} items", items.len());
        while let Some(url) = next {
            let page = app.follow(&url, &headers).await;
            assert_eq!(page.status, 200, "{reading:?} {url}: {}", page.text);
            let body = page.json();
            let value = body["value"].as_array().unwrap();
            assert!(
                !value.is_empty() && value.len() as u32 <= page_limit,
                "{reading:?} {url}"
            );
            items.extend(value.iter().cloned());
            next = body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        let all: Vec<String> = if reading.sessions {
            session_ids.clone()
        } else {
            names.clone()
        };
        let expected = match reading.top {
            Some(top) => all[..all.len().min(top as usize)].to_vec(),
            None => all,
        };
        assert_eq!(ids(&items), expected, "{reading:?}");
        for item in &items {
            let keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
            if let Some(select) = reading.select.as_ref().filter(|s| !s.is_empty()) {
                assert!(
                    keys.iter()
                        .all(|k| *k == "id" || *k == "segments" || k.starts_with('@') || select.contains(k)),
                    "{reading:?}: {keys:?}"
                );
            }
            assert_eq!(
                keys.contains(&"segments"),
                reading.segments.is_some(),
                "{reading:?}: {keys:?}"
            );
            if let Some(Some(select)) = reading.segments.as_ref().filter(|_| reading.sessions) {
                if !select.is_empty() {
                    for segment in item["segments"].as_array().unwrap() {
                        let keys = segment.as_object().unwrap().keys();
                        assert!(
                            keys.clone().all(|k| k == "id" || select.contains(&k.as_str())),
                            "{reading:?}"
                        );
                    }
                }
            }
        }
    }
}
